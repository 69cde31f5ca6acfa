"""Pod network, Services and cluster DNS on `skube up` with real containers.

Starts `skube up` on its own pod network, runs a busybox httpd pod behind a ClusterIP
Service and a client pod, then measures from inside the client pod's network namespace
(the request loops are Python run by the host under `ip netns exec`, so every packet
takes the pod's own path: veth, bridge, the service proxy's DNAT):

* HTTP request latency, one small GET per new TCP connection (busybox httpd closes
  each), straight to the pod IP and through the ClusterIP, interleaved; the ratio of the
  medians is the proxy's overhead (target <= 1.2);
* cluster DNS queries/s: UDP A queries for the Service's FQDN to the pod's nameserver
  (the kube-dns ClusterIP), 32 in flight: one query repeated (answered from the server's
  cache of rendered answers) and 30,000 distinct spellings of it (each one resolved);
* endpoint ready -> traffic: a second Service whose only pod flips its readiness probe;
  from the EndpointSlice event saying ready (watched here) to the first request the
  ClusterIP answers, repeated a few times.

    python benchmarks/network.py [--requests 2000] [--dns-seconds 5] [--rounds 3]

Progress on stderr; one JSON line on stdout at the end. A measurement that cannot run
(e.g. no service proxy yet) is reported under "errors" and the exit code is 1.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

BIN = Path(sys.executable).parent
KUBECTL = str(BIN / "kubectl")
IMAGE = "skube.local/busybox:host"
NET = {"cidr": "10.250.0.0/24", "bridge": "skbench0", "name": "skbench0",
       "serviceCIDR": "10.250.1.0/24", "nodePortRange": "32700-32799"}

MANIFEST = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: echo}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: echo}}}}
  template:
    metadata: {{labels: {{app: echo}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: {IMAGE}
        command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
---
apiVersion: v1
kind: Service
metadata: {{name: echo}}
spec:
  selector: {{app: echo}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: flip, labels: {{app: flip}}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: {IMAGE}
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    readinessProbe:
      exec: {{command: ["cat", "/tmp/ready"]}}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata: {{name: flip}}
spec:
  selector: {{app: flip}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {IMAGE}
    command: ["sleep", "36000"]
"""

# Run inside the client pod's netns. argv: rounds, then targets "ip:port"; prints per-target ms.
HTTP_LOOP = textwrap.dedent("""
    import json, socket, sys, time
    rounds, targets = int(sys.argv[1]), sys.argv[2:]
    out = {t: [] for t in targets}
    errors = {t: 0 for t in targets}
    req = b"GET / HTTP/1.0\\r\\nHost: bench\\r\\n\\r\\n"
    for _ in range(rounds):
        for t in targets:
            host, port = t.rsplit(":", 1)
            t0 = time.perf_counter()
            try:
                s = socket.create_connection((host, int(port)), timeout=2)
                s.sendall(req)
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                s.close()
                if not data.startswith(b"HTTP/1.") or b" 200 " not in data.split(b"\\r\\n", 1)[0]:
                    raise OSError("bad response")
            except OSError:
                errors[t] += 1
                continue
            out[t].append((time.perf_counter() - t0) * 1000)
    print(json.dumps({"ms": out, "errors": errors}))
""")

# Run inside the client pod's netns. argv: server, name, seconds, window, variants; prints
# answers/s. variants > 1 spells the name in that many letter cases (as DNS 0x20 clients
# do), so the queries differ byte for byte and the server's answer cache cannot help.
DNS_LOOP = textwrap.dedent("""
    import json, random, select, socket, sys, time
    import dns.message
    server, name, seconds, window, variants = sys.argv[1], sys.argv[2], float(sys.argv[3]), \\
        int(sys.argv[4]), int(sys.argv[5])
    rnd = random.Random(7)
    queries = []
    for i in range(max(window, variants)):
        spelled = name if variants == 1 else "".join(ch.upper() if rnd.random() < 0.5 else ch for ch in name)
        q = dns.message.make_query(spelled, "A")
        q.id = i % 65536
        queries.append(q.to_wire())
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((server, 53))
    ok = bad = 0
    nxt = 0
    for _ in range(window):
        s.send(queries[nxt % len(queries)]); nxt += 1
    t0 = time.perf_counter(); end = t0 + seconds
    while time.perf_counter() < end:
        r, _, _ = select.select([s], [], [], 1.0)
        if not r:
            break              # the window was lost: nothing answers
        data = s.recv(4096)
        if (data[3] & 0x0F) == 0 and int.from_bytes(data[6:8], "big") > 0:
            ok += 1
        else:
            bad += 1
        s.send(queries[nxt % len(queries)]); nxt += 1
    elapsed = time.perf_counter() - t0
    print(json.dumps({"qps": ok / elapsed if ok else 0.0, "answers": ok, "bad": bad, "seconds": elapsed}))
""")

# Run inside the client pod's netns. argv: ip:port, timeout; prints the wall time of the
# first successful GET (requests every ~2 ms, each with a short connect timeout).
FIRST_SUCCESS = textwrap.dedent("""
    import json, socket, sys, time
    host, port = sys.argv[1].rsplit(":", 1)
    end = time.time() + float(sys.argv[2])
    print("polling", flush=True)
    while time.time() < end:
        try:
            s = socket.create_connection((host, int(port)), timeout=0.05)
            s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
            head = s.recv(64)
            s.close()
            if head.startswith(b"HTTP/1.") and b" 200 " in head:
                print(json.dumps({"at": time.time()}), flush=True)
                sys.exit(0)
        except OSError:
            time.sleep(0.002)
    print(json.dumps({"at": None}), flush=True)
""")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="skube-bench-net-"))
        self.data = self.tmp / "cluster"
        self.proc: subprocess.Popen | None = None
        self.errors: dict[str, str] = {}

    # ---- cluster ----------------------------------------------------------------------
    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run([KUBECTL, "--kubeconfig", str(self.data / "kubeconfig"), *args], input=input,
                             capture_output=True, text=True, timeout=180)
        if check and res.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {res.stderr.strip()}")
        return res

    def kjson(self, *args: str) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def start(self) -> None:
        self.data.mkdir(parents=True)
        cfg = self.data / "provider.yaml"
        cfg.write_text("network:\n" + "".join(f"  {k}: {v}\n" for k, v in NET.items()))
        logfile = self.data / "up.log"
        self.proc = subprocess.Popen([str(BIN / "skube"), "up", "--data-dir", str(self.data), "--port",
                                      str(free_port()), "--kubelet-port", "0", "--provider-config", str(cfg)],
                                     stdout=open(logfile, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while "ready" not in logfile.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"skube up did not start:\n{logfile.read_text()}")
            time.sleep(0.1)
        log(f"skube up ready ({self.data})")
        self.kubectl("apply", "-f", "-", input=MANIFEST)
        self.kubectl("rollout", "status", "deployment/echo", "--timeout=120s")
        self.kubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=120s")
        self.kubectl("wait", "--for=jsonpath={.status.phase}=Running", "pod/flip", "--timeout=120s")
        log("echo, flip and client pods running")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kubectl("delete", "-f", "-", "--wait=true", "--timeout=60s", input=MANIFEST, check=False)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        subprocess.run(["ip", "link", "delete", NET["bridge"]], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def in_client(self, script: str, *argv: str, timeout: float = 600) -> dict:
        uid = self.kjson("get", "pod", "client")["metadata"]["uid"]
        res = subprocess.run(["ip", "netns", "exec", f"skube-{uid}", sys.executable, "-c", script, *argv],
                             capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError(res.stderr.strip())
        return json.loads(res.stdout.strip().splitlines()[-1])

    # ---- measurements -------------------------------------------------------------------
    def latency(self) -> dict:
        pod_ip = self.kjson("get", "pods", "-l", "app=echo")["items"][0]["status"]["podIP"]
        svc_ip = self.kjson("get", "svc", "echo")["spec"]["clusterIP"]
        direct, via_svc = f"{pod_ip}:8080", f"{svc_ip}:80"
        self.in_client(HTTP_LOOP, "50", direct, via_svc)          # warm up (ARP, conntrack, caches)
        log(f"{self.args.requests} GETs each to {direct} (pod) and {via_svc} (ClusterIP)")
        out = self.in_client(HTTP_LOOP, str(self.args.requests), direct, via_svc)
        res: dict = {"requests": self.args.requests}
        for key, target in (("pod_ip", direct), ("cluster_ip", via_svc)):
            ms = out["ms"][target]
            res[f"{key}_errors"] = out["errors"][target]
            if len(ms) < self.args.requests * 0.99:
                raise RuntimeError(f"{key} {target}: {out['errors'][target]} of {self.args.requests} "
                                   f"requests failed" + (" (is the service proxy running?)"
                                                         if key == "cluster_ip" else ""))
            res[f"{key}_ms"] = {"p50": round(statistics.median(ms), 3), "p99": round(pct(ms, 99), 3)}
        res["ratio_p50"] = round(res["cluster_ip_ms"]["p50"] / res["pod_ip_ms"]["p50"], 3)
        res["ratio_p99"] = round(res["cluster_ip_ms"]["p99"] / res["pod_ip_ms"]["p99"], 3)
        return res

    def dns_qps(self) -> dict:
        server = self.kjson("-n", "kube-system", "get", "svc", "kube-dns")["spec"]["clusterIP"]
        res: dict = {"dns_server": server, "dns_window": 32}
        for key, variants in (("dns_qps", "1"), ("dns_qps_distinct_queries", "30000")):
            log(f"DNS A queries to {server} for {self.args.dns_seconds} s ({key})")
            out = self.in_client(DNS_LOOP, server, "echo.default.svc.cluster.local.",
                                 str(self.args.dns_seconds), "32", variants)
            if not out["answers"]:
                raise RuntimeError(f"no DNS answers from {server} (kube-dns ClusterIP; is the service "
                                   f"proxy running?): {out}")
            res[key] = round(out["qps"])
            res[f"{key}_bad_answers"] = out["bad"]
        return res

    async def ready_to_traffic(self) -> dict:
        """Readiness flips on: EndpointSlice ready event -> first answer through the ClusterIP."""
        from skube.client import Client, resource
        svc_ip = self.kjson("get", "svc", "flip")["spec"]["clusterIP"]
        uid = self.kjson("get", "pod", "client")["metadata"]["uid"]
        slices = resource("discovery.k8s.io/v1", "endpointslices", kind="EndpointSlice")
        samples = []
        async with Client.from_kubeconfig(str(self.data / "kubeconfig"), component="bench") as client:
            for i in range(self.args.rounds):
                self.kubectl("exec", "flip", "--", "rm", "-f", "/tmp/ready")
                await self._wait_slice(client, slices, ready=False)
                prober = await asyncio.create_subprocess_exec(
                    "ip", "netns", "exec", f"skube-{uid}", sys.executable, "-c", FIRST_SUCCESS,
                    f"{svc_ip}:80", "30", stdout=asyncio.subprocess.PIPE)
                assert (await prober.stdout.readline()).strip() == b"polling"
                await asyncio.sleep(0.3)        # the prober must see no traffic before the flip
                watching = asyncio.Event()      # the flip must come after our list + watch start
                waiter = asyncio.create_task(self._wait_slice(client, slices, ready=True, listed=watching))
                await watching.wait()
                await asyncio.to_thread(self.kubectl, "exec", "flip", "--", "touch", "/tmp/ready")
                ready_at = await waiter
                first = json.loads((await prober.communicate())[0].decode().strip().splitlines()[-1])["at"]
                if first is None:
                    raise RuntimeError(f"ClusterIP {svc_ip} never answered within 30 s of the endpoint "
                                       f"becoming ready (is the service proxy running?)")
                samples.append(max(0.0, (first - ready_at) * 1000))
                log(f"round {i + 1}: endpoint ready -> traffic {samples[-1]:.1f} ms")
        return {"endpoint_ready_to_traffic_ms": {"median": round(statistics.median(samples), 1),
                                                 "max": round(max(samples), 1), "rounds": len(samples)}}

    @staticmethod
    async def _wait_slice(client, slices, *, ready: bool, timeout: float = 60,
                          listed: asyncio.Event | None = None) -> float:
        """Wall time at which flip's EndpointSlice is seen with its endpoint ``ready``."""
        def is_ready(items) -> bool:
            return any((ep.get("conditions") or {}).get("ready") is not False
                       for es in items for ep in es.get("endpoints") or [])
        lst = await client.list(slices, "default", label_selector="kubernetes.io/service-name=flip")
        if is_ready(lst.get("items") or []) == ready:
            if listed is not None:
                raise RuntimeError(f"flip's EndpointSlice was ready={ready} before the flip")
            return time.time()
        if listed is not None:
            listed.set()

        async def watch() -> float:
            async with client.watch(slices, "default", label_selector="kubernetes.io/service-name=flip",
                                    resource_version=lst["metadata"]["resourceVersion"]) as stream:
                async for typ, obj in stream:
                    if typ in ("ADDED", "MODIFIED") and is_ready([obj]) == ready:
                        return time.time()
            raise RuntimeError("watch ended")
        try:
            return await asyncio.wait_for(watch(), timeout)
        except (asyncio.TimeoutError, RuntimeError):
            raise RuntimeError(f"flip's EndpointSlice never became ready={ready}") from None

    def run(self) -> dict:
        result: dict = {"benchmark": "network", "from": "client pod's netns (host runs the loops via "
                                                        "ip netns exec)", "target_ratio": 1.2}
        self.start()
        for name, fn in (("latency", self.latency), ("dns", self.dns_qps),
                         ("ready_to_traffic", lambda: asyncio.run(self.ready_to_traffic()))):
            try:
                result.update(fn())
            except Exception as e:  # noqa: BLE001 - report it, measure the rest
                self.errors[name] = str(e)
                log(f"{name} FAILED: {e}")
        if self.errors:
            result["errors"] = self.errors
        return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--dns-seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    b = Bench(args)
    try:
        result = b.run()
    finally:
        b.stop()
    print(json.dumps(result), flush=True)
    sys.exit(1 if b.errors else 0)


if __name__ == "__main__":
    main()
