"""API server benchmark: creates/s, get latency, list of 10,000 pods, watch delivery, RSS.

Starts a real `skube apiserver` on a temporary data dir and drives it over HTTPS
with a minimal keep-alive HTTP/1.1 client (so the figures measure the server,
not a client library). Progress goes to stderr; the last line is one JSON object.

Usage: python benchmarks/apiserver.py [--pods 10000] [--clients 32] [--watchers 100]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


class Conn:
    """One keep-alive HTTPS connection speaking just enough HTTP/1.1."""

    def __init__(self, reader, writer, host):
        self.r, self.w, self.host = reader, writer, host

    @classmethod
    async def open(cls, port: int, ctx: ssl.SSLContext) -> "Conn":
        r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, limit=2 ** 26)
        return cls(r, w, f"127.0.0.1:{port}")

    async def request(self, method: str, path: str, body: bytes = b"",
                      ctype: str = "application/json") -> tuple[int, bytes]:
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAccept: application/json\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        self.w.write(head + body)
        return await self.read_response()

    async def read_response(self) -> tuple[int, bytes]:
        status_line = await self.r.readline()
        status = int(status_line.split()[1])
        length, chunked = None, False
        while True:
            line = await self.r.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode().partition(":")
            k = k.lower()
            if k == "content-length":
                length = int(v)
            elif k == "transfer-encoding" and "chunked" in v:
                chunked = True
        if chunked:
            parts = []
            while True:
                size = int((await self.r.readline()).strip(), 16)
                if size == 0:
                    await self.r.readline()
                    break
                parts.append(await self.r.readexactly(size))
                await self.r.readline()
            return status, b"".join(parts)
        return status, await self.r.readexactly(length or 0)

    async def close(self):
        self.w.close()


def pod(ns: str, name: str) -> bytes:
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "bench", "tier": "web"}},
        "spec": {"containers": [{"name": "app", "image": "busybox:1.36",
                                 "command": ["sleep", "3600"],
                                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                                 "ports": [{"containerPort": 8080}],
                                 "env": [{"name": "MODE", "value": "bench"}]}]},
    }).encode()


async def run(args) -> dict:
    data = Path(tempfile.mkdtemp(prefix="skube-bench-"))
    port = args.port
    logf = open(data / "apiserver.log", "w")
    proc = subprocess.Popen([str(BIN / "skube"), "apiserver", "--data-dir", str(data), "--port", str(port)],
                            stdout=logf, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            if "ready" in (data / "apiserver.log").read_text():
                break
            await asyncio.sleep(0.05)
        else:
            raise SystemExit("apiserver did not start")
        ctx = ssl.create_default_context(cafile=str(data / "pki" / "ca.crt"))
        ctx.load_cert_chain(str(data / "pki" / "admin.crt"), str(data / "pki" / "admin.key"))
        admin = await Conn.open(port, ctx)
        await admin.request("POST", "/api/v1/namespaces",
                            json.dumps({"apiVersion": "v1", "kind": "Namespace",
                                        "metadata": {"name": "bench"}}).encode())

        # 1. creates/s with N concurrent clients
        total = args.pods
        conns = [await Conn.open(port, ctx) for _ in range(args.clients)]
        counter = iter(range(total))
        done = 0
        errors = 0

        async def creator(c: Conn):
            nonlocal done, errors
            for i in counter:
                status, _ = await c.request("POST", "/api/v1/namespaces/bench/pods", pod("bench", f"p-{i}"))
                if status != 201:
                    errors += 1
                done += 1
                if done % 2000 == 0:
                    log(f"  created {done}/{total}")
        log(f"creating {total} pods with {args.clients} clients…")
        t0 = time.perf_counter()
        await asyncio.gather(*(creator(c) for c in conns))
        create_s = time.perf_counter() - t0
        creates_per_s = total / create_s
        log(f"  {creates_per_s:.0f} creates/s ({errors} errors)")

        # 2. get latency (one client, sequential)
        lat = []
        for i in range(1000):
            t = time.perf_counter()
            status, _ = await admin.request("GET", f"/api/v1/namespaces/bench/pods/p-{(i * 7919) % total}")
            lat.append(time.perf_counter() - t)
            assert status == 200
        log(f"  get p50 {pct(lat, 50) * 1000:.2f} ms, p99 {pct(lat, 99) * 1000:.2f} ms")

        # 3. list all pods
        list_times = []
        for _ in range(3):
            t = time.perf_counter()
            status, body = await admin.request("GET", "/api/v1/pods")
            list_times.append(time.perf_counter() - t)
            n = len(json.loads(body)["items"])
        log(f"  list of {n} pods: {min(list_times):.3f} s (best of 3)")

        # 4. RSS of the server with the pods stored
        rss_kb = 0
        for line in open(f"/proc/{proc.pid}/status"):
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
        log(f"  server RSS {rss_kb / 1024:.0f} MB with {total} pods")

        # 5. watch delivery to many watchers
        log(f"opening {args.watchers} watchers…")
        watchers = [await Conn.open(port, ctx) for _ in range(args.watchers)]
        status, body = await admin.request("GET", "/api/v1/namespaces/bench/configmaps")
        rv = json.loads(body)["metadata"]["resourceVersion"]
        sent: dict[str, float] = {}
        delays: list[float] = []
        n_events = args.events

        async def watcher(c: Conn):
            c.w.write((f"GET /api/v1/namespaces/bench/configmaps?watch=1&resourceVersion={rv} HTTP/1.1\r\n"
                       f"Host: {c.host}\r\nAccept: application/json\r\n\r\n").encode())
            await c.r.readline()                      # status line
            while await c.r.readline() != b"\r\n":    # headers
                pass
            got = 0
            while got < n_events:
                size = int((await c.r.readline()).strip(), 16)
                chunk = await c.r.readexactly(size)
                await c.r.readline()
                for ln in chunk.splitlines():
                    ev = json.loads(ln)
                    name = ev["object"]["metadata"]["name"]
                    delays.append(time.perf_counter() - sent[name])
                    got += 1
        tasks = [asyncio.ensure_future(watcher(c)) for c in watchers]
        await asyncio.sleep(1.0)  # let every watch register before events start
        for i in range(n_events):
            name = f"ev-{i}"
            sent[name] = time.perf_counter()
            await admin.request("POST", "/api/v1/namespaces/bench/configmaps",
                                json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                            "metadata": {"name": name}}).encode())
            await asyncio.sleep(0.01)
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        log(f"  watch delivery p50 {pct(delays, 50) * 1000:.1f} ms, p99 {pct(delays, 99) * 1000:.1f} ms "
            f"over {len(delays)} deliveries")
        for c in conns + watchers + [admin]:
            await c.close()
        return {
            "benchmark": "apiserver", "pods": total, "clients": args.clients,
            "creates_per_s": round(creates_per_s, 1), "create_errors": errors,
            "get_p50_ms": round(pct(lat, 50) * 1000, 3), "get_p99_ms": round(pct(lat, 99) * 1000, 3),
            "list_pods": n, "list_s": round(min(list_times), 3),
            "watchers": args.watchers, "watch_events": len(delays),
            "watch_p50_ms": round(pct(delays, 50) * 1000, 2), "watch_p99_ms": round(pct(delays, 99) * 1000, 2),
            "rss_mb": round(rss_kb / 1024, 1),
            "targets": {"creates_per_s": 1000, "list_s": 0.5, "watch_p99_ms": 100, "rss_mb": 400},
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pods", type=int, default=10000)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--watchers", type=int, default=100)
    p.add_argument("--events", type=int, default=100)
    p.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", "16443")))
    result = asyncio.run(run(p.parse_args()))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
