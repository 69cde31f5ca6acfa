"""Real pod instances on runc: logs, exec, graceful stop, init containers, restarts, OOM,
pod-to-pod networking, re-adoption after a restart of the manager, no leaks."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from skube.runtime import cgroups, logs
from skube.runtime.runc import wait_pid

from rtc_helpers import needs_root, until

pytestmark = needs_root


def c(name: str, script: str, **kw) -> dict:
    return {"name": name, "image": "busybox", "command": ["sh", "-c", script], **kw}


def state_of(mgr, uid, name, init=False):
    st = mgr.status(uid)
    key = "initContainerStatuses" if init else "containerStatuses"
    for cs in st.get(key, []):
        if cs["name"] == name:
            return cs
    return None


def running(mgr, uid, name):
    cs = state_of(mgr, uid, name)
    return cs and "running" in cs["state"]


def terminated(mgr, uid, name, init=False):
    cs = state_of(mgr, uid, name, init)
    return cs and cs["state"].get("terminated")


async def exec_out(mgr, uid, name, cmd, tty=False):
    h = await mgr.exec(uid, name, cmd, tty=tty)
    if h.stdin:
        h.stdin.close()
    out = await h.stdout.read()
    rc = await h.wait()
    h.close()
    return rc, out


def test_hello_logs_exec_and_graceful_stop(env):
    async def body():
        seen = []
        mgr = env.manager(on_change=lambda inst: seen.append(inst.status()["phase"]))
        await mgr.start()
        p = env.pod("hello", [c("app", "echo hello; sleep 1000")], terminationGracePeriodSeconds=1)
        uid = p["metadata"]["uid"]
        try:
            await mgr.create(p)
            # status while the sandbox comes up: waiting ContainerCreating
            first = mgr.status(uid)
            assert first["phase"] == "Pending"
            assert first["containerStatuses"][0]["state"]["waiting"]["reason"] == "ContainerCreating"
            await until(lambda: running(mgr, uid, "app"), what="app running")
            st = mgr.status(uid)
            assert st["phase"] == "Running" and st["podIP"].startswith("10.")
            assert st["containerStatuses"][0]["ready"] is True
            assert st["containerStatuses"][0]["containerID"].startswith("runc://")
            # the CRI log file, written by the container's monitor
            lf = mgr.log_file(uid, "app")
            await until(lambda: lf.exists() and b"hello" in lf.read_bytes(), what="log line")
            line = lf.read_bytes().splitlines()[0]
            e = logs.parse_line(line)
            assert e.stream == "stdout" and not e.partial and e.content == b"hello"
            assert abs(e.time_ns / 1e9 - time.time()) < 60
            out = await logs.read_all(lf)
            assert out == b"hello\n"
            out = b""
            async for chunk in mgr.logs(uid, "app", logs.ReadOptions(timestamps=True, tail_lines=1)):
                out += chunk
            assert out.endswith(b"Z hello\n") and out[:4].isdigit()
            # exec, without and with a TTY
            rc, out = await exec_out(mgr, uid, "app", ["cat", "/etc/hostname"])
            assert (rc, out) == (0, b"hello\n")
            rc, out = await exec_out(mgr, uid, "app", ["sh", "-c", "tty; hostname"], tty=True)
            assert rc == 0 and b"/dev/pts/" in out and b"hello" in out
            rc, _ = await exec_out(mgr, uid, "app", ["sh", "-c", "exit 7"])
            assert rc == 7
            # stats from the cgroup
            s = mgr.stats(uid)["app"]
            assert s["memory_usage"] > 0 and s["cpu_ns"] > 0
            # graceful stop: sleep is pid 1 and ignores SIGTERM -> SIGKILL after the grace
            t0 = time.monotonic()
            await mgr.stop(uid, grace=1)
            assert time.monotonic() - t0 >= 0.9
            t = terminated(mgr, uid, "app")
            assert t["exitCode"] == 137 and t["reason"] == "Error"
            assert t["startedAt"] <= t["finishedAt"]
            assert "Pending" in seen and "Running" in seen
        finally:
            await mgr.delete(uid, 0)
            await mgr.close()
    asyncio.run(body())


def test_sigterm_handled_within_grace(env):
    async def body():
        mgr = env.manager()
        await mgr.start()
        p = env.pod("trap", [c("app", "trap 'echo bye; exit 0' TERM; echo up; while true; do sleep 0.1; done")])
        uid = p["metadata"]["uid"]
        try:
            await mgr.create(p)
            await until(lambda: running(mgr, uid, "app"))
            lf = mgr.log_file(uid, "app")
            await until(lambda: lf.exists() and b"up" in lf.read_bytes())
            t0 = time.monotonic()
            await mgr.stop(uid, grace=20)
            assert time.monotonic() - t0 < 10
            t = terminated(mgr, uid, "app")
            assert t["exitCode"] == 0 and t["reason"] == "Completed"
            assert b"bye" in lf.read_bytes()
        finally:
            await mgr.delete(uid, 0)
            await mgr.close()
    asyncio.run(body())


def test_init_container_runs_first(env):
    async def body():
        mgr = env.manager()
        await mgr.start()
        p = env.pod("init", [c("app", "cat /dev/shm/x; sleep 1000")],
                    initContainers=[c("setup", "echo from-init > /dev/shm/x; echo msg > /dev/termination-log"),
                                    c("second", "test -f /dev/shm/x")])
        uid = p["metadata"]["uid"]
        try:
            await mgr.create(p)
            await until(lambda: running(mgr, uid, "app"))
            st = mgr.status(uid)
            first, second = st["initContainerStatuses"]
            assert first["state"]["terminated"]["reason"] == "Completed"
            assert first["state"]["terminated"]["message"] == "msg\n"
            assert second["state"]["terminated"]["exitCode"] == 0
            assert first["state"]["terminated"]["finishedAt"] <= second["state"]["terminated"]["startedAt"]
            conds = {x["type"]: x["status"] for x in st["conditions"]}
            assert conds["Initialized"] == "True" and conds["Ready"] == "True"
            lf = mgr.log_file(uid, "app")
            await until(lambda: lf.exists() and b"from-init" in lf.read_bytes())
        finally:
            await mgr.delete(uid, 0)
            await mgr.close()
    asyncio.run(body())


def test_on_failure_restarts_with_crashloop_backoff(env):
    async def body():
        mgr = env.manager()
        await mgr.start()
        p = env.pod("crash", [c("app", "echo attempt; exit 3")], restartPolicy="OnFailure")
        uid = p["metadata"]["uid"]
        try:
            await mgr.create(p)
            # first failure restarts at once, the second waits in CrashLoopBackOff (10 s)
            cs = await until(lambda: (s := state_of(mgr, uid, "app")) and
                             s["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff" and s,
                             what="CrashLoopBackOff")
            assert cs["restartCount"] == 1
            assert "back-off 10s restarting failed container=app" in cs["state"]["waiting"]["message"]
            last = cs["lastState"]["terminated"]
            assert last["exitCode"] == 3 and last["reason"] == "Error"
            assert mgr.status(uid)["phase"] == "Running"
            # previous attempt's log
            prev = b"".join([x async for x in mgr.logs(uid, "app", previous=True)])
            assert prev == b"attempt\n"
            inst = mgr.get(uid)
            assert inst.backoff.entries[f"{uid}/app"][0] == 10
        finally:
            await mgr.delete(uid, 0)
            await mgr.close()
    asyncio.run(body())


def test_memory_limit_oom_killed(env):
    async def body():
        mgr = env.manager()
        await mgr.start()
        p = env.pod("oom", [c("hog", "head -c 50m /dev/zero | tail",
                              resources={"limits": {"memory": "20Mi"}})], restartPolicy="Never")
        uid = p["metadata"]["uid"]
        try:
            await mgr.create(p)
            t = await until(lambda: terminated(mgr, uid, "hog"), timeout=30, what="oom")
            assert t["reason"] == "OOMKilled", t
            assert t["exitCode"] == 137
            await until(lambda: mgr.status(uid)["phase"] == "Failed")
        finally:
            await mgr.delete(uid, 0)
            await mgr.close()
    asyncio.run(body())


def test_pods_reach_each_other_by_ip(env):
    async def body():
        mgr = env.manager()
        await mgr.start()
        server = env.pod("server", [c("httpd", "mkdir -p /www && echo pong > /www/index.html && "
                                              "exec httpd -f -p 8080 -h /www")])
        client = env.pod("client", [c("sh", "sleep 1000")], restartPolicy="Never")
        su, cu = server["metadata"]["uid"], client["metadata"]["uid"]
        try:
            await asyncio.gather(mgr.create(server), mgr.create(client))
            await until(lambda: running(mgr, su, "httpd") and running(mgr, cu, "sh"))
            ip = mgr.status(su)["podIP"]
            assert ip != mgr.status(cu)["podIP"]

            async def fetch():
                assert running(mgr, cu, "sh"), json.dumps(mgr.status(cu)["containerStatuses"])
                rc, out = await exec_out(mgr, cu, "sh", [
                    "sh", "-c", f"printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} 8080"])
                return rc == 0 and out.endswith(b"\r\n\r\npong\n")
            await until(fetch, what="pod-to-pod http")
            rc, out = await exec_out(mgr, cu, "sh", ["ip", "route"])
            assert rc == 0 and b"default" not in out
            rc, out = await exec_out(mgr, cu, "sh", ["cat", "/etc/hosts"])
            assert mgr.status(cu)["podIP"].encode() + b"\tclient" in out
        finally:
            await asyncio.gather(mgr.delete(su, 0), mgr.delete(cu, 0))
            await mgr.close()
    asyncio.run(body())


def test_restarted_manager_readopts_running_and_exited(env):
    async def body():
        mgr = env.manager()
        await mgr.start()
        p = env.pod("adopt", [c("app", "echo before; sleep 1000")], restartPolicy="Never")
        q = env.pod("gone", [c("app", "echo x; sleep 1000")], restartPolicy="Never")
        uid, quid = p["metadata"]["uid"], q["metadata"]["uid"]
        mgr2 = None
        try:
            await asyncio.gather(mgr.create(p), mgr.create(q))
            await until(lambda: running(mgr, uid, "app") and running(mgr, quid, "app"))
            cid = mgr.get(uid).records["app"].cid
            qrec = mgr.get(quid).records["app"]
            await mgr.close()          # skube "dies": nothing is stopped
            # while no manager runs, one container is killed: conmon records its exit
            await mgr.runc.kill(qrec.cid, "KILL")
            assert await wait_pid(qrec.monitor_pid, 10)

            mgr2 = env.manager()
            await mgr2.start()
            assert mgr2.get(uid) is not None and running(mgr2, uid, "app")
            assert mgr2.get(uid).records["app"].cid == cid
            out = b"".join([x async for x in mgr2.logs(uid, "app")])
            assert out == b"before\n"
            rc, out = await exec_out(mgr2, uid, "app", ["cat", "/etc/hostname"])
            assert out == b"adopt\n"
            t = await until(lambda: terminated(mgr2, quid, "app"), what="exit seen after restart")
            assert t["exitCode"] == 137
            # and the adopted one is still watched: its exit is noticed
            await mgr2.runc.kill(cid, "TERM")
            await mgr2.runc.kill(cid, "KILL")
            t = await until(lambda: terminated(mgr2, uid, "app"), what="adopted exit")
            assert t["exitCode"] == 137
        finally:
            m = mgr2 or mgr
            await asyncio.gather(m.delete(uid, 0), m.delete(quid, 0))
            await m.close()
    asyncio.run(body())
