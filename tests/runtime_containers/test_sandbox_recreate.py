"""A pod whose sandbox died (holder killed, network namespace removed) gets a new sandbox
as with the kubelet: containers restarted in it (restartCount + 1), init containers run
again, the old sandbox's address released; with restartPolicy Never the pod fails."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess

from rtc_helpers import leaks, needs_root, until

pytestmark = needs_root


def cs(mgr, uid, name, key="containerStatuses"):
    return next(s for s in mgr.status(uid)[key] if s["name"] == name)


def restarted_running(mgr, uid, n):
    app, init = cs(mgr, uid, "app"), cs(mgr, uid, "init", "initContainerStatuses")
    return app["restartCount"] == n and "running" in app["state"] and \
        init["restartCount"] == n and init["state"].get("terminated", {}).get("exitCode") == 0


def test_dead_sandbox_is_recreated_and_containers_restart_in_it(env):
    async def body():
        mgr = env.manager()
        await mgr.start()
        p = env.pod("phoenix", [{"name": "app", "image": "busybox",
                                 "command": ["sh", "-c", "echo up; sleep 1000"]}],
                    initContainers=[{"name": "init", "image": "busybox",
                                     "command": ["sh", "-c", "echo init"]}],
                    terminationGracePeriodSeconds=0)
        uid = p["metadata"]["uid"]
        try:
            await mgr.create(p)
            await until(lambda: restarted_running(mgr, uid, 0), timeout=30, what="running")
            inst = mgr.get(uid)
            old_holder, old_app = inst.sandbox.holder_pid, inst.records["app"].cid
            os.kill(old_holder, signal.SIGKILL)            # kill -9 of catatonit
            await until(lambda: restarted_running(mgr, uid, 1), timeout=30, what="restart 1")
            assert inst.sandbox.holder_pid != old_holder
            app = cs(mgr, uid, "app")
            assert app["lastState"]["terminated"]["exitCode"] == 137
            ids = sorted(c["id"] for c in await mgr.runc.list())
            assert ids == sorted([f"{uid}-sandbox", inst.records["app"].cid]) and old_app not in ids
            assert len(leaks(env)["ips"]) == 1 and leaks(env)["ips"] == [mgr.status(uid)["podIP"]]

            # the network namespace removed under the pod: the same again
            subprocess.run(["ip", "netns", "delete", f"skube-{uid}"], check=True)
            await until(lambda: restarted_running(mgr, uid, 2), timeout=30, what="restart 2")
            assert leaks(env)["netns"] == [f"skube-{uid}"]
            assert len(leaks(env)["ips"]) == 1
            assert mgr.status(uid)["phase"] == "Running"
        finally:
            await mgr.delete(uid, 0)
            await mgr.close()
    asyncio.run(body())


def test_dead_sandbox_of_a_never_restarting_pod_fails_it(env):
    async def body():
        mgr = env.manager()
        await mgr.start()
        p = env.pod("once", [{"name": "app", "image": "busybox", "command": ["sleep", "1000"]}],
                    restartPolicy="Never", terminationGracePeriodSeconds=0)
        uid = p["metadata"]["uid"]
        try:
            await mgr.create(p)
            await until(lambda: "running" in cs(mgr, uid, "app")["state"], what="running")
            os.kill(mgr.get(uid).sandbox.holder_pid, signal.SIGKILL)
            await until(lambda: mgr.status(uid)["phase"] == "Failed", timeout=30, what="Failed")
            app = cs(mgr, uid, "app")
            assert app["restartCount"] == 0 and app["state"]["terminated"]["exitCode"] == 137
            assert await mgr.runc.list() == [] and "ips" not in leaks(env)
        finally:
            await mgr.delete(uid, 0)
            await mgr.close()
    asyncio.run(body())
