"""The evening-classes burst on the mock provider, and the cost simulator's speed.

1. Burst: `skube up --provider mock` (API server, scheduler, controllers, virtual node with
   zero start delay); one Deployment scaled from 0 to N replicas (default 20,000, as the
   evening-classes trace does at 19:00). Figures: seconds until all N pods run, scheduling
   throughput (pods bound per second, first to last binding seen on a watch), p50/p99 of
   pod created → Running.
2. Simulator: `skube cost simulate`'s replay of a trace (default
   examples/traces/evening-classes.yaml, strategy serverless) at --speed; figure: simulated
   seconds per wall-clock second achieved, start-up and shut-down included.

    python benchmarks/burst.py [--pods 20000] [--speed 300] [--no-sim]

Progress on stderr; one JSON line on stdout at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from skube.client.api import Client, resource  # noqa: E402
from skube.sim import strategies  # noqa: E402
from skube.sim.metrics import percentile  # noqa: E402
from skube.sim.runner import Replay, _free_port  # noqa: E402
from skube.sim.trace import load_trace  # noqa: E402

PODS = resource("v1", "pods")
DEPLOYMENTS = resource("apps/v1", "deployments")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


async def burst(n: int, data: Path) -> dict:
    port = _free_port()
    # the virtual node must not be what limits the burst (defaults: 1000 CPU, 10000 pods)
    (data / "config.yaml").write_text(json.dumps({"virtualNode": {"capacity": {
        "cpu": str(max(1000, n)), "memory": f"{max(4096, 2 * n)}Gi", "pods": str(max(10000, 2 * n))}}}))
    logf = data / "up.log"
    proc = subprocess.Popen([sys.executable, "-m", "skube", "up", "--provider", "mock", "--data-dir", str(data),
                             "--port", str(port), "--kubelet-port", "0"],
                            stdout=open(logf, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "ready" not in logf.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(logf.read_text()[-2000:])
            await asyncio.sleep(0.2)
        async with Client.from_kubeconfig(str(data / "kubeconfig"), component="bench-burst") as c:
            lst = await c.list(PODS, "default")
            rv = lst["metadata"]["resourceVersion"]
            created: dict[str, float] = {}
            bound: list[float] = []
            running: dict[str, float] = {}
            done = asyncio.Event()

            async def watch() -> None:
                seen_bound: set[str] = set()
                async with c.watch(PODS, "default", resource_version=rv, timeout_seconds=3600) as w:
                    async for typ, pod in w:
                        if typ not in ("ADDED", "MODIFIED"):
                            continue
                        uid, now = pod["metadata"]["uid"], time.monotonic()
                        created.setdefault(uid, now)
                        if pod["spec"].get("nodeName") and uid not in seen_bound:
                            seen_bound.add(uid)
                            bound.append(now)
                        if (pod.get("status") or {}).get("phase") == "Running" and uid not in running:
                            running[uid] = now
                            if len(running) % 2000 == 0:
                                log(f"{len(running):,} running")
                            if len(running) >= n:
                                done.set()
                                return
            watcher = asyncio.create_task(watch())
            await asyncio.sleep(0.2)
            t0 = time.monotonic()
            await c.create(DEPLOYMENTS, {
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "classroom"},
                "spec": {"replicas": n, "selector": {"matchLabels": {"app": "classroom"}},
                         "template": {"metadata": {"labels": {"app": "classroom"}},
                                      "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                                               "resources": {"requests": {"cpu": "500m",
                                                                                          "memory": "1Gi"}}}]}}}},
                "default")
            log(f"Deployment classroom scaled to {n:,}")
            await asyncio.wait_for(done.wait(), timeout=max(600, n / 20))
            total = time.monotonic() - t0
            watcher.cancel()
            lat = [running[u] - created[u] for u in running if u in created]
            span = (max(bound) - min(bound)) if len(bound) > 1 else 0.0
            return {"pods": n, "all_running_s": round(total, 1),
                    "scheduled_per_s": round(len(bound) / span, 1) if span else None,
                    "created_to_running_p50_s": round(percentile(lat, 50), 2),
                    "created_to_running_p99_s": round(percentile(lat, 99), 2)}
    finally:
        subprocess.run(["kill", "-INT", f"-{proc.pid}"], check=False)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


async def simulate(trace_path: Path, speed: float, data: Path) -> dict:
    trace = load_trace(trace_path)
    s = strategies.build(trace, "serverless")
    t0 = time.monotonic()
    r = await Replay(trace, s, data, speed=speed, progress=log).run()
    wall = time.monotonic() - t0
    return {"sim_trace": trace.name, "sim_strategy": s.name, "sim_speed_requested": speed,
            "sim_speed_achieved": round(trace.duration / wall, 1), "sim_wall_s": round(wall, 1),
            "sim_total_cost": round(r.total_cost, 2), "sim_wait_p99_s": percentile(r.waits, 99)}


async def amain(args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="skube-bench-burst-"))
    try:
        out = {"benchmark": "burst"}
        (tmp / "burst").mkdir()
        log(f"burst of {args.pods:,} pods on the mock provider")
        out.update(await burst(args.pods, tmp / "burst"))
        log(json.dumps(out))
        if not args.no_sim:
            log(f"simulator: {args.trace} at {args.speed:g}x")
            out.update(await simulate(args.trace, args.speed, tmp / "sim"))
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pods", type=int, default=20000)
    p.add_argument("--speed", type=float, default=300.0)
    p.add_argument("--trace", type=Path, default=ROOT / "examples" / "traces" / "evening-classes.yaml")
    p.add_argument("--no-sim", action="store_true", help="only the burst")
    print(json.dumps(asyncio.run(amain(p.parse_args()))), flush=True)


if __name__ == "__main__":
    main()
