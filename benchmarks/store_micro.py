"""Micro-benchmark of skube.store: writes/s, read latency, list, list_at, watch fan-out, memory.

    .venv/bin/python benchmarks/store_micro.py [--n 10000] [--dir /tmp]

Objects are pod-sized (~2.2 KB of JSON). Every figure is printed on its own line.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import statistics
import tempfile
import time
import tracemalloc

import orjson

from skube.store import Store


def make_pod(i: int, ns: str = "default") -> dict:
    name = f"web-7d4b9c8f6d-{i:05d}"
    ip = f"10.244.{i // 250}.{i % 250}"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": ns, "uid": f"6f1c2a4e-1b2c-4d5e-8f90-{i:012d}",
            "generateName": "web-7d4b9c8f6d-", "creationTimestamp": "2026-05-01T10:00:00Z",
            "labels": {"app": "web", "pod-template-hash": "7d4b9c8f6d", "tier": "frontend"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-05-01T09:59:00Z"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c8f6d",
                                 "uid": "0a1b2c3d-0000-4000-8000-000000000001", "controller": True,
                                 "blockOwnerDeletion": True}]},
        "spec": {
            "containers": [{
                "name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                              "limits": {"cpu": "500m", "memory": "256Mi"}},
                "env": [{"name": "MODE", "value": "production"}, {"name": "INDEX", "value": str(i)}],
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent"}],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default", "serviceAccount": "default", "nodeName": "virtual-node-1",
            "securityContext": {}, "schedulerName": "default-scheduler", "priority": 0,
            "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority"},
        "status": {
            "phase": "Running",
            "conditions": [{"type": t, "status": "True", "lastProbeTime": None,
                            "lastTransitionTime": "2026-05-01T10:00:01Z"}
                           for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
            "hostIP": "10.0.0.1", "podIP": ip, "podIPs": [{"ip": ip}],
            "startTime": "2026-05-01T10:00:00Z", "qosClass": "Burstable",
            "containerStatuses": [{
                "name": "web", "ready": True, "restartCount": 0, "started": True,
                "image": "docker.io/library/nginx:1.27",
                "imageID": "docker.io/library/nginx@sha256:" + "ab" * 32,
                "containerID": "containerd://" + f"{i:064x}",
                "state": {"running": {"startedAt": "2026-05-01T10:00:01Z"}}, "lastState": {}}]}}


def key(i: int) -> str:
    return f"/registry/pods/default/web-7d4b9c8f6d-{i:05d}"


class GCPauses:
    """Longest pause of the cyclic garbage collector, per generation."""

    def __init__(self) -> None:
        self.longest = [0.0, 0.0, 0.0]
        self._t = 0.0
        gc.callbacks.append(self._cb)

    def _cb(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            g = info["generation"]
            self.longest[g] = max(self.longest[g], time.perf_counter() - self._t)

    def report(self) -> str:
        return ", ".join(f"gen{g} {t * 1e3:.1f} ms" for g, t in enumerate(self.longest))


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


async def bench_creates(path: str, n: int, group_commit: bool, concurrency: int) -> None:
    store = await Store.open(path, compact_interval=0, group_commit=group_commit)
    pods = [make_pod(i) for i in range(n)]
    lat: list[float] = []
    t0 = time.perf_counter()
    if concurrency == 1:
        for i, pod in enumerate(pods):
            t = time.perf_counter()
            await store.create(key(i), pod)
            lat.append(time.perf_counter() - t)
    else:
        async def one(i):
            await store.create(key(i), pods[i])
        for start in range(0, n, concurrency):
            await asyncio.gather(*(one(i) for i in range(start, min(n, start + concurrency))))
    dt = time.perf_counter() - t0
    mode = "group commit" if group_commit else "commit per write"
    extra = (f", latency p50 {statistics.median(lat) * 1e6:.0f} us, p99 {pct(lat, 0.99) * 1e6:.0f} us,"
             f" max {max(lat) * 1e3:.1f} ms") if lat else ""
    wal = os.path.getsize(path + "-wal") / 1e6 if os.path.exists(path + "-wal") else 0
    print(f"create x{n} ({mode}, concurrency {concurrency}): {n / dt:,.0f} creates/s{extra}; WAL {wal:.0f} MB")
    await store.close()


GC_FREEZE = False


async def bench_reads_and_updates(path: str, n: int) -> None:
    t0 = time.perf_counter()
    store = await Store.open(path, compact_interval=0)
    print(f"open (load {n} records): {(time.perf_counter() - t0) * 1e3:.0f} ms")
    if GC_FREEZE:
        gc.freeze()
    assert store.count("/registry/pods/") == n, store.count("/registry/pods/")
    keys = [key(i) for i in range(n)]
    t0 = time.perf_counter()
    for _ in range(10):
        for k in keys:
            store.get(k)
    dt = time.perf_counter() - t0
    print(f"get: {dt / (10 * n) * 1e9:.0f} ns per get")

    runs = []
    for _ in range(20):
        t0 = time.perf_counter()
        recs, _rev = store.list("/registry/pods/")
        runs.append(time.perf_counter() - t0)
    assert len(recs) == n
    print(f"list of {n} records (memory): median {statistics.median(runs) * 1e3:.2f} ms")
    t0 = time.perf_counter()
    body = b"".join([b'{"kind":"PodList","items":[', b",".join([r.raw for r in recs]), b"]}"])
    print(f"  joining their raw JSON ({len(body) / 1e6:.1f} MB): {(time.perf_counter() - t0) * 1e3:.2f} ms")
    t0 = time.perf_counter()
    pages = 0
    start = None
    while True:
        page, _ = store.list("/registry/pods/", start_key=start, limit=500)
        pages += 1
        if len(page) < 500:
            break
        start = page[-1].key
    print(f"list in pages of 500 (memory): {pages} pages in {(time.perf_counter() - t0) * 1e3:.2f} ms")

    # updates (each changes status), concurrency 1 and 100
    rev0 = store.revision
    t0 = time.perf_counter()
    for i in range(n):
        cur = store.get(keys[i])
        obj = orjson.loads(cur.raw)
        obj["status"]["phase"] = "Succeeded"
        await store.update(keys[i], obj, expected_revision=cur.mod_revision)
    dt = time.perf_counter() - t0
    print(f"update x{n} (copy via orjson.loads(raw), concurrency 1): {n / dt:,.0f} updates/s")
    t0 = time.perf_counter()
    for i in range(n):
        cur = store.get(keys[i])
        obj = dict(cur.obj, status=dict(cur.obj["status"], phase="Failed"))
        await store.update(keys[i], obj, expected_revision=cur.mod_revision)
    dt = time.perf_counter() - t0
    print(f"update x{n} (shallow copy, concurrency 1): {n / dt:,.0f} updates/s")
    rev0 = store.revision - n

    # list_at an older revision (sqlite): every pod changed since rev0
    t0 = time.perf_counter()
    start, pages, total = None, 0, 0
    while True:
        page = await store.list_at("/registry/pods/", rev0, start_key=start, limit=500)
        pages += 1
        total += len(page)
        if len(page) < 500:
            break
        start = page[-1].key
    assert total == n, total
    print(f"list_at older revision in pages of 500 (sqlite): {pages} pages in {(time.perf_counter() - t0) * 1e3:.0f} ms")
    t0 = time.perf_counter()
    recs = await store.list_at("/registry/pods/", rev0)
    print(f"list_at older revision, all {len(recs)} at once (sqlite): {(time.perf_counter() - t0) * 1e3:.0f} ms")

    # watch fan-out: 100 watchers on the pods prefix, 100 on other prefixes
    loop = asyncio.get_running_loop()
    watchers = [store.watch("/registry/pods/", store.revision) for _ in range(100)]
    others = [store.watch(f"/registry/configmaps/ns{j}/", store.revision) for j in range(100)]
    delays: list[float] = []

    async def consume(w, count):
        got = 0
        async for ev in w:
            got += 1
            if got == 1:
                delays.append(loop.time())
            if got == count:
                return

    for rnd in range(20):
        delays.clear()
        tasks = [asyncio.create_task(consume(w, 1)) for w in watchers]
        await asyncio.sleep(0)
        t0 = loop.time()
        cur = store.get(keys[rnd])
        obj = orjson.loads(cur.raw)
        obj["status"]["phase"] = "Failed"
        await store.update(keys[rnd], obj)
        await asyncio.gather(*tasks)
        if rnd == 19:
            print(f"watch fan-out: 100 watchers (+100 on other prefixes) all got the event "
                  f"{(max(delays) - t0) * 1e3:.2f} ms after the write started")
    for w in watchers + others:
        w.close()

    # replay history: from the watch cache (last 10k events) and from sqlite
    for label, frm in (("watch cache", store.revision - 5000), ("sqlite", rev0 - 2 * n + 1)):
        w = store.watch("/registry/pods/", frm)
        want = store.revision - frm
        t0 = time.perf_counter()
        got = 0
        async for _ev in w:
            got += 1
            if got == want:
                break
        w.close()
        print(f"watch replay of {want} events from {label}: {want / (time.perf_counter() - t0):,.0f} events/s")

    # compaction of everything but the last 1000 revisions, in chunks of 1000 revisions
    from skube.store import sqlite as store_sqlite
    chunks: list[float] = []
    real = store._transaction

    def timed(statements):
        t = time.perf_counter()
        real(statements)
        chunks.append(time.perf_counter() - t)
    store._transaction = timed
    t0 = time.perf_counter()
    target = await store.compact()
    dt = time.perf_counter() - t0
    print(f"compact to revision {target} ({len(chunks) - 1} chunks of {store_sqlite.COMPACT_CHUNK} revisions): "
          f"{dt * 1e3:.0f} ms, longest chunk (loop stall) {max(chunks) * 1e3:.1f} ms")
    await store.close()


def bench_memory(path: str, n: int) -> None:
    async def run():
        gc.collect()
        tracemalloc.start()
        store = await Store.open(path, compact_interval=0)
        before = tracemalloc.get_traced_memory()[0]
        await asyncio.gather(*(store.create(key(i), make_pod(i)) for i in range(n)))
        gc.collect()
        after_create = tracemalloc.get_traced_memory()[0]
        await store.close()
        tracemalloc.stop()
        gc.collect()
        tracemalloc.start()
        store = await Store.open(path, compact_interval=0)
        loaded = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            cur = store.get(key(i))
            obj = orjson.loads(cur.raw)
            obj["status"]["phase"] = "Succeeded"
            await store.update(key(i), obj)
        gc.collect()
        after_update = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        await store.close()
        print(f"memory for {n} pods: {(after_create - before) / 1e6:.0f} MB after creating, "
              f"{loaded / 1e6:.0f} MB after reopening, {after_update / 1e6:.0f} MB after updating each once "
              f"(watch cache of 10,000 events holding the old versions)")
    asyncio.run(run())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--gc-freeze", action="store_true",
                    help="gc.freeze() after loading the store (what a server would do at start-up)")
    args = ap.parse_args()
    global GC_FREEZE
    GC_FREEZE = args.gc_freeze
    pauses = GCPauses()
    n = args.n
    print(f"pod JSON size: {len(orjson.dumps(make_pod(1)))} bytes")
    tmp = tempfile.mkdtemp(prefix="skube-store-bench-", dir=args.dir)
    try:
        for group_commit, conc in ((True, 1), (False, 1), (True, 100), (False, 100), (True, 1000)):
            path = os.path.join(tmp, f"db-{group_commit}-{conc}")
            asyncio.run(bench_creates(path, n, group_commit, conc))
        asyncio.run(bench_reads_and_updates(os.path.join(tmp, "db-True-100"), n))
        bench_memory(os.path.join(tmp, "db-mem"), n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"longest GC pauses during the run: {pauses.report()}")


if __name__ == "__main__":
    main()
