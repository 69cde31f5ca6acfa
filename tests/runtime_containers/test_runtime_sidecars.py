"""Sidecars (init containers with restartPolicy: Always, KEP-753) on real containers: start
order, startupProbe gating, restarts whatever the pod's restartPolicy, readiness in pod Ready,
and a completing pod whose sidecars are then stopped in reverse order."""
from __future__ import annotations

import asyncio

from rtc_helpers import needs_root, until

pytestmark = needs_root

LOOP = "while true; do sleep 0.1; done"


def c(name: str, script: str, **kw) -> dict:
    return {"name": name, "image": "busybox", "command": ["sh", "-c", script], **kw}


def sidecar(name: str, script: str, **kw) -> dict:
    return c(name, script, restartPolicy="Always", **kw)


def status_of(mgr, uid, name):
    st = mgr.status(uid)
    for cs in st.get("initContainerStatuses", []) + st.get("containerStatuses", []):
        if cs["name"] == name:
            return cs
    raise KeyError(name)


def conds(mgr, uid) -> dict:
    return {x["type"]: x["status"] for x in mgr.status(uid)["conditions"]}


def exec_probe(cmd: str, **kw) -> dict:
    return {"exec": {"command": ["sh", "-c", cmd]}, "periodSeconds": 1, **kw}


def test_job_pod_completes_and_sidecars_stop_after_it_in_reverse_order(env):
    async def body():
        mgr = env.manager()
        await mgr.start()
        p = env.pod("job", [c("main", "test -f /dev/shm/side1 && test -f /dev/shm/side2 && "
                                      "sleep 1 && echo done")],
                    restartPolicy="Never", terminationGracePeriodSeconds=10,
                    initContainers=[
                        c("setup", "echo set > /dev/shm/setup"),
                        sidecar("side1", f"touch /dev/shm/side1; trap 'exit 0' TERM; {LOOP}"),
                        # side2 takes a second to go on SIGTERM: side1 must still be waited for
                        sidecar("side2", f"touch /dev/shm/side2; trap 'sleep 1; exit 0' TERM; {LOOP}"),
                        c("after", "test -f /dev/shm/side2")])
        uid = p["metadata"]["uid"]
        try:
            await mgr.create(p)
            await until(lambda: "running" in status_of(mgr, uid, "main")["state"], what="main running")
            st = mgr.status(uid)
            assert st["phase"] == "Running"
            inits = {s["name"]: s for s in st["initContainerStatuses"]}
            assert [s["name"] for s in st["initContainerStatuses"]] == ["setup", "side1", "side2", "after"]
            for n in ("side1", "side2"):
                assert "running" in inits[n]["state"], inits[n]
                assert inits[n]["started"] is True and inits[n]["ready"] is True
            # regular init containers: ready once they succeeded, never "started" afterwards
            for n in ("setup", "after"):
                assert inits[n]["state"]["terminated"]["exitCode"] == 0
                assert inits[n]["ready"] is True and inits[n]["started"] is False
            assert conds(mgr, uid)["Initialized"] == "True"
            # the app exits 0: the pod completes and the sidecars are stopped, side2 first
            await until(lambda: mgr.status(uid)["phase"] == "Succeeded", timeout=30, what="Succeeded")
            inst = mgr.get(uid)
            s1, s2 = inst.records["side1"], inst.records["side2"]
            assert s1.state == s2.state == "terminated"
            assert s1.exit_code == 0 and s2.exit_code == 0
            # side1 would be gone at once if both were stopped together
            main_done = inst.records["main"].finished_at
            assert main_done <= s2.finished_at <= s1.finished_at
            assert s1.finished_at - main_done >= 0.9, (main_done, s2.finished_at, s1.finished_at)
            assert s1.restart_count == 0 and s2.restart_count == 0
        finally:
            await mgr.delete(uid, 0)
            await mgr.close()
    asyncio.run(body())


def test_sidecar_is_restarted_even_with_restart_policy_never(env):
    async def body():
        mgr = env.manager()
        await mgr.start()
        p = env.pod("flaky", [c("main", "sleep 1000")], restartPolicy="Never",
                    terminationGracePeriodSeconds=1,
                    initContainers=[sidecar("side", "sleep 0.3; exit 2")])
        uid = p["metadata"]["uid"]
        try:
            await mgr.create(p)
            cs = await until(lambda: (s := status_of(mgr, uid, "side"))["restartCount"] >= 1 and s,
                             timeout=20, what="a sidecar restart")
            assert cs["lastState"]["terminated"]["exitCode"] == 2
            assert mgr.status(uid)["phase"] in ("Pending", "Running")
            # in back-off after the second exit, yet the app runs and the pod did not fail
            await until(lambda: status_of(mgr, uid, "side")["state"].get("waiting", {}).get("reason")
                        == "CrashLoopBackOff", timeout=20, what="CrashLoopBackOff")
            await until(lambda: "running" in status_of(mgr, uid, "main")["state"], what="main running")
            assert mgr.status(uid)["phase"] == "Running"
        finally:
            await mgr.delete(uid, 0)
            await mgr.close()
    asyncio.run(body())


def test_startup_probe_gates_the_next_init_container_and_readiness_gates_pod_ready(env):
    async def body():
        mgr = env.manager()
        await mgr.start()
        p = env.pod("gated", [c("main", "sleep 1000")], terminationGracePeriodSeconds=1,
                    initContainers=[
                        sidecar("side", f"sleep 2; touch /tmp/up; {LOOP}",
                                startupProbe=exec_probe("test -f /tmp/up"),
                                readinessProbe=exec_probe("test -f /tmp/ready")),
                        c("next", "true")])
        uid = p["metadata"]["uid"]
        try:
            await mgr.create(p)
            await until(lambda: "running" in status_of(mgr, uid, "side")["state"], what="side running")
            # running but not started: the next init container waits
            side = status_of(mgr, uid, "side")
            assert side["started"] is False and side["ready"] is False
            assert "waiting" in status_of(mgr, uid, "next")["state"]
            assert mgr.status(uid)["phase"] == "Pending"
            assert conds(mgr, uid)["Initialized"] == "False"
            await until(lambda: status_of(mgr, uid, "side")["started"], timeout=15, what="started")
            await until(lambda: "running" in status_of(mgr, uid, "main")["state"], what="main running")
            nxt = status_of(mgr, uid, "next")["state"]["terminated"]
            assert nxt["exitCode"] == 0
            # the app is ready but the sidecar is not: the pod is not Ready
            await until(lambda: status_of(mgr, uid, "main")["ready"], what="main ready")
            assert status_of(mgr, uid, "side")["ready"] is False
            c_ = conds(mgr, uid)
            assert c_["Initialized"] == "True" and c_["Ready"] == "False" and c_["ContainersReady"] == "False"
            h = await mgr.exec(uid, "side", ["touch", "/tmp/ready"])
            assert await h.wait() == 0
            h.close()
            await until(lambda: conds(mgr, uid)["Ready"] == "True", timeout=15, what="pod Ready")
            assert status_of(mgr, uid, "side")["ready"] is True
        finally:
            await mgr.delete(uid, 0)
            await mgr.close()
    asyncio.run(body())


def test_deletion_stops_app_containers_before_sidecars(env):
    async def body():
        mgr = env.manager()
        await mgr.start()
        p = env.pod("svc", [c("main", f"trap 'sleep 1; exit 0' TERM; {LOOP}")],
                    terminationGracePeriodSeconds=10,
                    initContainers=[sidecar("side", f"trap 'exit 0' TERM; {LOOP}")])
        uid = p["metadata"]["uid"]
        try:
            await mgr.create(p)
            await until(lambda: "running" in status_of(mgr, uid, "main")["state"], what="main running")
            assert mgr.status(uid)["phase"] == "Running"
            await mgr.stop(uid)
            inst = mgr.get(uid)
            main, side = inst.records["main"], inst.records["side"]
            assert main.exit_code == 0 and side.exit_code == 0
            assert main.finished_at <= side.finished_at
            assert side.finished_at - main.started_at >= 1
        finally:
            await mgr.delete(uid, 0)
            await mgr.close()
    asyncio.run(body())


def test_failed_init_container_fails_the_pod_and_stops_its_sidecar(env):
    async def body():
        mgr = env.manager()
        await mgr.start()
        p = env.pod("badinit", [c("main", "sleep 1000")], restartPolicy="Never",
                    terminationGracePeriodSeconds=5,
                    initContainers=[sidecar("side", f"trap 'exit 0' TERM; {LOOP}"),
                                    c("bad", "sleep 0.5; exit 4")])
        uid = p["metadata"]["uid"]
        try:
            await mgr.create(p)
            await until(lambda: mgr.status(uid)["phase"] == "Failed", timeout=20, what="Failed")
            side = status_of(mgr, uid, "side")
            assert side["state"]["terminated"]["exitCode"] == 0 and side["restartCount"] == 0
            assert status_of(mgr, uid, "bad")["state"]["terminated"]["exitCode"] == 4
            assert "waiting" in status_of(mgr, uid, "main")["state"]
            assert conds(mgr, uid)["Initialized"] == "False"
        finally:
            await mgr.delete(uid, 0)
            await mgr.close()
    asyncio.run(body())
