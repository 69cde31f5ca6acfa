"""Scheduler benchmark: a backlog of pending pods on a real `skube apiserver`.

Creates 100 Node objects (10 zones, two pools) and 5,000 pending pods — a third
with a nodeSelector, a third spread across zones (DoNotSchedule, maxSkew 1), a
third with required pod anti-affinity per host — then starts the scheduler in
this process and measures until every pod is bound: pods scheduled per second,
and time in the queue (enqueued → popped for the successful attempt) and to
binding (p50/p99). Checks the placements afterwards. Progress goes to stderr;
the last line is one JSON object.

Usage: python benchmarks/scheduler.py [--nodes 100] [--pods 5000] [--profile FILE]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

BIN = Path(sys.executable).parent
ZONE = "topology.kubernetes.io/zone"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def start_apiserver(data_dir: str) -> tuple[subprocess.Popen, str]:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    logf = open(os.path.join(data_dir, "apiserver.log"), "w")
    proc = subprocess.Popen([str(BIN / "skube"), "apiserver", "--data-dir", data_dir, "--port", str(port),
                             "--controllers="], stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"apiserver exited: {open(logf.name).read()}")
        if "ready" in open(logf.name).read():
            return proc, os.path.join(data_dir, "kubeconfig")
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("apiserver not ready")


def node_body(i: int, zones: int) -> dict:
    name = f"node-{i:03d}"
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, ZONE: f"zone-{i % zones}",
                                                  "pool": "highmem" if i % 4 == 0 else "general"}}}


def pod_body(i: int, anti_group_size: int) -> dict:
    kind = i % 3
    c = {"name": "app", "image": "busybox", "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}
    spec: dict = {"containers": [c]}
    labels = {"bench": "1"}
    if kind == 0:
        spec["nodeSelector"] = {"pool": "highmem" if i % 2 else "general"}
        labels["app"] = f"sel-{i % 20}"
    elif kind == 1:
        app = f"spread-{i % 10}"
        labels["app"] = app
        spec["topologySpreadConstraints"] = [{
            "maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": app}}}]
    else:
        app = f"anti-{(i // 3) // anti_group_size}"
        labels["app"] = app
        spec["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchLabels": {"app": app}}, "topologyKey": "kubernetes.io/hostname"}]}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"pod-{i:05d}", "labels": labels},
            "spec": spec}


async def run(args) -> dict:
    from skube.client import Client
    from skube.scheduler import Scheduler
    from skube.scheduler.scheduler import NODES, PODS

    data_dir = tempfile.mkdtemp(prefix="skube-sched-bench-")
    proc, kubeconfig = start_apiserver(data_dir)
    try:
        client = Client.from_kubeconfig(kubeconfig, component="bench")
        sem = asyncio.Semaphore(32)

        async def bounded(coro):
            async with sem:
                return await coro

        t0 = time.monotonic()
        alloc = {"cpu": "32", "memory": "128Gi", "pods": "110"}

        async def make_node(i):
            body = node_body(i, args.zones)
            await client.create(NODES, body)
            await client.patch(NODES, body["metadata"]["name"], {"status": {
                "allocatable": alloc, "capacity": alloc,
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}},
                subresource="status")

        await asyncio.gather(*(bounded(make_node(i)) for i in range(args.nodes)))
        log(f"{args.nodes} nodes in {time.monotonic() - t0:.1f}s")
        t0 = time.monotonic()
        # anti-affinity groups no larger than the node count (each pod needs its own node)
        anti_group = max(1, min(args.nodes // 2, 50))
        done = 0

        async def make_pod(i):
            nonlocal done
            await client.create(PODS, pod_body(i, anti_group), "default")
            done += 1
            if done % 1000 == 0:
                log(f"  {done} pods created")

        await asyncio.gather(*(bounded(make_pod(i)) for i in range(args.pods)))
        log(f"{args.pods} pending pods in {time.monotonic() - t0:.1f}s")

        sched_client = Client.from_kubeconfig(kubeconfig, component="scheduler")
        sched = Scheduler(sched_client, seed=1, record_scheduled_events=not args.no_events)
        stop = asyncio.Event()
        t_start = time.monotonic()
        task = asyncio.create_task(sched.run(stop))
        await sched.ready.wait()
        t_ready = time.monotonic()
        log(f"caches synced in {t_ready - t_start:.2f}s; scheduling")
        profiler = None
        if args.profile:
            import cProfile
            profiler = cProfile.Profile()
            profiler.enable()
        last = 0
        while sched.scheduled < args.pods:
            await asyncio.sleep(0.5)
            if task.done():
                task.result()
            if sched.scheduled - last >= 500 or time.monotonic() - t_ready > 300:
                last = sched.scheduled
                el = time.monotonic() - t_ready
                log(f"  {sched.scheduled} bound in {el:.1f}s ({sched.scheduled / el:.0f}/s), "
                    f"{sched.failures} failed attempts, queue {len(sched.queue)}")
                if el > 600:
                    break
        elapsed = time.monotonic() - t_ready
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        stop.set()
        await task
        await sched_client.close()

        # check the placements
        pods = (await client.list_all(PODS, "default"))["items"]
        nodes = {n["metadata"]["name"]: n["metadata"]["labels"] for n in (await client.list_all(NODES))["items"]}
        bound = [p for p in pods if p["spec"].get("nodeName")]
        violations = 0
        spread: dict[str, Counter] = defaultdict(Counter)
        anti: dict[str, list] = defaultdict(list)
        for p in bound:
            labels, spec, node = p["metadata"]["labels"], p["spec"], p["spec"]["nodeName"]
            sel = spec.get("nodeSelector") or {}
            if any(nodes[node].get(k) != v for k, v in sel.items()):
                violations += 1
            if labels["app"].startswith("spread-"):
                spread[labels["app"]][nodes[node][ZONE]] += 1
            if labels["app"].startswith("anti-"):
                anti[labels["app"]].append(node)
        for app, counts in spread.items():
            values = [counts.get(f"zone-{z}", 0) for z in range(args.zones)]
            if max(values) - min(values) > 1:
                violations += 1
        for app, placed in anti.items():
            violations += len(placed) - len(set(placed))
        per_node = Counter(p["spec"]["nodeName"] for p in bound)
        await client.close()
        return {
            "benchmark": "scheduler", "nodes": args.nodes, "pods": args.pods, "bound": len(bound),
            "seconds": round(elapsed, 2), "pods_per_second": round(sched.scheduled / elapsed, 1),
            "attempts": sched.attempts, "failed_attempts": sched.failures,
            "queue_wait_p50_s": round(pct(sched.queue_wait, 50), 3),
            "queue_wait_p99_s": round(pct(sched.queue_wait, 99), 3),
            "to_bound_p99_s": round(pct(sched.e2e, 99), 3),
            "cache_sync_s": round(t_ready - t_start, 2),
            "pods_per_node_min_max": [min(per_node.values()), max(per_node.values())],
            "violations": violations, "scheduled_events": not args.no_events,
            "cpus": os.cpu_count(),
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--zones", type=int, default=10)
    ap.add_argument("--pods", type=int, default=5000)
    ap.add_argument("--no-events", action="store_true", help="no Scheduled events (FailedScheduling stay)")
    ap.add_argument("--profile", help="write a cProfile of the scheduling phase to this file")
    args = ap.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run(args))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
