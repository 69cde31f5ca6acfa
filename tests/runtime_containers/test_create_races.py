"""Pods deleted while their sandbox and containers are being created, and a runtime killed
(SIGKILL) in the middle of a burst then restarted: nothing leaks, nothing is duplicated."""
from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from skube.runtime import cgroups
from rtc_helpers import leaks, needs_root, until

pytestmark = needs_root

APP = {"name": "app", "image": "busybox", "command": ["sh", "-c", "sleep 1000"]}
SIDE = {"name": "side", "image": "busybox", "command": ["sh", "-c", "sleep 1000"]}


def running(mgr, uid) -> bool:
    st = mgr.status(uid)
    return bool(st) and all("running" in cs["state"] for cs in st.get("containerStatuses", []))


def test_pods_deleted_at_random_moments_of_their_creation_leak_nothing(env):
    async def body():
        mgr = env.manager()
        await mgr.start()
        rnd = random.Random(7)
        pods = [env.pod(f"race{i}", [dict(APP), dict(SIDE)], terminationGracePeriodSeconds=0)
                for i in range(8)]

        mid_create = []

        async def create_then_delete(p):
            inst = await mgr.create(p)
            await asyncio.sleep(rnd.uniform(0, 1.2))     # a random moment of the create
            mid_create.append(inst.sandbox is None or
                              any(r.state != "running" for r in inst.records.values()))
            await mgr.delete(p["metadata"]["uid"], 0)
        try:
            await asyncio.gather(*(create_then_delete(p) for p in pods))
            assert any(mid_create), "no delete hit a pod still being created"
            assert mgr.list() == []
            assert await mgr.runc.list() == []
            assert not leaks(env), leaks(env)
            assert not set(cgroups.list_pods()) & env.uids
        finally:
            await mgr.close()
    asyncio.run(body())


def test_runtime_killed_during_a_burst_then_restarted_leaks_and_duplicates_nothing(env):
    async def body():
        pods = [env.pod(f"crash{i}", [dict(APP)], terminationGracePeriodSeconds=0) for i in range(6)]
        pods_file = env.data_dir / "burst.json"
        pods_file.write_text(json.dumps(pods))
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__).parent / "burst_child.py"), str(env.data_dir),
             str(env.base_rootfs), env.net.cidr, env.net.bridge, env.net.name, str(pods_file)],
            stdout=subprocess.PIPE)
        try:
            # kill -9 once creation is under way (the state files appear), mid-burst
            await until(lambda: len(list((env.data_dir / "pods").glob("*/state.json"))) >= 2,
                        timeout=30, what="burst started")
            await asyncio.sleep(random.Random(3).uniform(0.1, 0.8))
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        cut_short = [sf for sf in (env.data_dir / "pods").glob("*/state.json")
                     if any(r["state"] != "running" for r in json.loads(sf.read_text())["records"])]
        assert cut_short, "the kill came after every pod was up"
        mgr = env.manager()
        await mgr.start()
        uids = [p["metadata"]["uid"] for p in pods]
        try:
            for p in pods:
                await mgr.create(p)      # the node re-sends its pods: idempotent per uid
            await until(lambda: all(running(mgr, u) for u in uids), timeout=60, what="all running")
            # exactly one holder and one app container per pod, one address each
            ids = sorted(c["id"] for c in await mgr.runc.list() if c["status"] == "running")
            want = sorted([f"{u}-sandbox" for u in uids] +
                          [mgr.get(u).records["app"].cid for u in uids])
            assert ids == want
            ips = {mgr.status(u)["podIP"] for u in uids}
            assert len(ips) == len(uids)
            assert sorted(leaks(env)["ips"]) == sorted(ips)
            assert sorted(n[len("skube-"):] for n in leaks(env)["netns"]) == sorted(uids)
        finally:
            await asyncio.gather(*(mgr.delete(u, 0) for u in uids))
            await mgr.close()
        assert await mgr.runc.list() == []
        assert not leaks(env), leaks(env)
    asyncio.run(body())
