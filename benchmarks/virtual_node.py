"""Virtual node throughput: API server -> virtual node (mock provider, zero start
delay) -> pod status, end to end.

Starts `skube apiserver --controllers=` and `skube virtual-node` (mock) as
subprocesses, creates N unbound pods, then binds them all (as a scheduler
would, `pods/binding`, CONCURRENCY in flight) and watches until every pod is
Running. Reports pods/s reaching Running (first bind to last Running), p50/p99
bind->Running latency (bind answered -> Running seen on a watch), and the node
process's RSS growth per 1,000 Running pods. Then deletes them all and times it.

    python benchmarks/virtual_node.py [--pods 10000] [--concurrency 64]

Targets: >= 500 pods/s sustained, 10,000 pods Running in <= 30 s.
Progress on stderr; one JSON line on stdout at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(proc: subprocess.Popen, logfile: Path, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited:\n{logfile.read_text()}")
        if "ready" in logfile.read_text():
            return
        time.sleep(0.05)
    raise SystemExit(f"{what} not ready in {timeout}s:\n{logfile.read_text()}")


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s))) - 1))]


async def bench(kubeconfig: Path, node_pid: int, n: int, concurrency: int, node: str) -> dict:
    from skube.client import Client, resource
    pods_res = resource("v1", "pods")
    ns = "bench"
    async with Client.from_kubeconfig(str(kubeconfig), component="bench", timeout=120) as c:
        await c.create(resource("v1", "namespaces", namespaced=False),
                       {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        sem = asyncio.Semaphore(concurrency)
        names = [f"p-{i:05d}" for i in range(n)]

        async def create(name):
            async with sem:
                await c.create(pods_res, {
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "namespace": ns, "labels": {"app": "bench"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx:1.27",
                                             "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}}],
                             "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}]}},
                    ns)
        t0 = time.monotonic()
        await asyncio.gather(*(create(x) for x in names))
        log(f"created {n} unbound pods in {time.monotonic() - t0:.1f}s")
        rss_before = rss_bytes(node_pid)

        bound_at: dict[str, float] = {}
        running_at: dict[str, float] = {}
        all_running = asyncio.Event()
        listed = await c.list(pods_res, ns, limit=1)
        rv = listed["metadata"]["resourceVersion"]

        async def watch():
            nonlocal rv
            while not all_running.is_set():
                async with c.watch(pods_res, ns, resource_version=rv, timeout_seconds=600) as stream:
                    async for etype, obj in stream:
                        rv = obj["metadata"].get("resourceVersion", rv)
                        if etype == "BOOKMARK":
                            continue
                        name = obj["metadata"]["name"]
                        if (obj.get("status") or {}).get("phase") == "Running" and name not in running_at:
                            running_at[name] = time.monotonic()
                            if len(running_at) == n:
                                all_running.set()
                                return
        watcher = asyncio.ensure_future(watch())

        async def bind(name):
            async with sem:
                await c.request("POST", f"/api/v1/namespaces/{ns}/pods/{name}/binding", body={
                    "apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": ns},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node}})
                bound_at[name] = time.monotonic()

        async def progress():
            while not all_running.is_set():
                await asyncio.sleep(2)
                log(f"bound {len(bound_at)}/{n}, Running {len(running_at)}/{n}")
        prog = asyncio.ensure_future(progress())
        t_bind = time.monotonic()
        await asyncio.gather(*(bind(x) for x in names))
        t_bound = time.monotonic()
        await asyncio.wait_for(all_running.wait(), timeout=600)
        t_running = time.monotonic()
        prog.cancel()
        await watcher
        await asyncio.sleep(1.0)
        rss_after = rss_bytes(node_pid)
        lat = [running_at[x] - bound_at[x] for x in names if x in bound_at and x in running_at]
        elapsed = t_running - t_bind
        log(f"{n} pods Running {elapsed:.1f}s after the first bind ({n / elapsed:.0f} pods/s); "
            f"binding took {t_bound - t_bind:.1f}s")

        # deletion: graceful (node confirms with grace 0)
        t_del = time.monotonic()

        async def delete(name):
            async with sem:
                await c.delete(pods_res, name, ns)
        await asyncio.gather(*(delete(x) for x in names))
        while True:
            left = await c.list(pods_res, ns, limit=1)
            if not left.get("items"):
                break
            await asyncio.sleep(0.5)
        t_deleted = time.monotonic()
        log(f"all {n} pods deleted in {t_deleted - t_del:.1f}s")
        return {
            "benchmark": "virtual_node", "pods": n, "concurrency": concurrency,
            "pods_per_second": round(n / elapsed, 1),
            "seconds_to_all_running": round(elapsed, 2),
            "bind_seconds": round(t_bound - t_bind, 2),
            "latency_p50_ms": round(pct(lat, 50) * 1000, 1),
            "latency_p99_ms": round(pct(lat, 99) * 1000, 1),
            "latency_max_ms": round(max(lat) * 1000, 1) if lat else 0,
            "node_rss_mb_before": round(rss_before / 2**20, 1),
            "node_rss_mb_running": round(rss_after / 2**20, 1),
            "node_rss_mb_per_1000_pods": round((rss_after - rss_before) / 2**20 / (n / 1000), 2),
            "delete_all_seconds": round(t_deleted - t_del, 2),
            "target_500_pods_per_s": n / elapsed >= 500,
            "target_10000_in_30s": (n >= 10000 and elapsed <= 30) if n >= 10000 else None,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--workers", type=int, default=32, help="node pod-sync workers")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="skube-bench-vn-"))
    procs: list[subprocess.Popen] = []
    try:
        port, kport = free_port(), free_port()
        api_log = tmp / "apiserver.log"
        api = subprocess.Popen([str(BIN / "skube"), "apiserver", "--data-dir", str(tmp / "api"),
                                "--port", str(port), "--controllers="],
                               stdout=open(api_log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(api)
        wait_ready(api, api_log, "apiserver")
        node_log = tmp / "node.log"
        (tmp / "mock.yaml").write_text("startDelay: {distribution: fixed, ms: 0}\n")
        node = subprocess.Popen([sys.executable, "-m", "skube.cli_node", "--kubeconfig",
                                 str(tmp / "api" / "kubeconfig"), "--name", "vn-bench", "--provider", "mock",
                                 "--provider-config", str(tmp / "mock.yaml"), "--kubelet-port", str(kport),
                                 "--data-dir", str(tmp / "node"), "--workers", str(args.workers)],
                                stdout=open(node_log, "w"), stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=ROOT)
        procs.append(node)
        wait_ready(node, node_log, "virtual node")
        log(f"apiserver :{port} and virtual node vn-bench up; {args.pods} pods")
        import uvloop
        result = uvloop.run(bench(tmp / "api" / "kubeconfig", node.pid, args.pods, args.concurrency, "vn-bench"))
        print(json.dumps(result), flush=True)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"kept {tmp}")


if __name__ == "__main__":
    main()
