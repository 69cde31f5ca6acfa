"""Liveness, readiness and startup probes on real runc containers (exec, httpGet, tcpSocket),
plus the HTTP and gRPC probers against local servers on 127.0.0.1.

Timing is asserted through what the probe workers observed (runs, consecutive results,
thresholds), never through wall-clock sleeps: every wait polls with a timeout."""
from __future__ import annotations

import asyncio
import struct

import pytest

from skube.runtime import probes
from skube.runtime.probes import FAILURE, SUCCESS

from rtc_helpers import needs_root, until


def c(name: str, script: str, **kw) -> dict:
    return {"name": name, "image": "busybox", "command": ["sh", "-c", script], **kw}


def cs_of(mgr, uid, name):
    for s in mgr.status(uid).get("containerStatuses", []):
        if s["name"] == name:
            return s
    return None


def cond(mgr, uid, typ):
    return next(x["status"] for x in mgr.status(uid)["conditions"] if x["type"] == typ)


def worker(mgr, uid, name, kind):
    return mgr.get(uid).prober.worker(name, kind)


async def sh(mgr, uid, name, script):
    h = await mgr.exec(uid, name, ["sh", "-c", script])
    h.stdin.close()
    out = await h.stdout.read()
    rc = await h.wait()
    h.close()
    return rc, out


def trailing(history, cid, result):
    """How many of ``cid``'s last runs in a row had ``result``."""
    n = 0
    for hcid, r in reversed([x for x in history if x[0] == cid]):
        if r != result:
            break
        n += 1
    return n


@needs_root
def test_readiness_false_until_httpd_answers(env):
    async def body():
        changes = []

        def on_change(inst):
            s = inst.status()
            if s["containerStatuses"]:
                w = inst.prober.worker("web", "readiness")
                changes.append((s["containerStatuses"][0]["ready"], list(w.stats.history)))
        mgr = env.manager(on_change=on_change)
        await mgr.start()
        web = c("web", "while [ ! -f /tmp/go ]; do sleep 0.1; done; mkdir -p /www; "
                       "echo ok > /www/index.html; exec httpd -f -p 8080 -h /www",
                ports=[{"name": "http", "containerPort": 8080}],
                readinessProbe={"httpGet": {"path": "/index.html", "port": "http",
                                            "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
                                "periodSeconds": 1, "successThreshold": 2})
        p = env.pod("ready", [web], terminationGracePeriodSeconds=0)
        uid = p["metadata"]["uid"]
        try:
            await mgr.create(p)
            w = await until(lambda: worker(mgr, uid, "web", "readiness"))
            # the container runs but nothing listens: the probe fails, ready stays false
            await until(lambda: w.stats.failures >= 2, what="readiness failures")
            s = cs_of(mgr, uid, "web")
            assert "running" in s["state"] and s["started"] is True and s["ready"] is False
            assert cond(mgr, uid, "Ready") == "False" and cond(mgr, uid, "ContainersReady") == "False"
            assert "connect" in w.stats.last_output.lower() or "refused" in w.stats.last_output.lower()
            rc, _ = await sh(mgr, uid, "web", "touch /tmp/go")
            assert rc == 0
            await until(lambda: cs_of(mgr, uid, "web")["ready"], what="ready")
            assert cond(mgr, uid, "Ready") == "True"
            assert "statuscode: 200" in w.stats.last_output
            # successThreshold 2: readiness turned true only after two successes in a row
            cid = mgr.get(uid).records["web"].cid
            first_ready = next(h for r, h in changes if r)
            assert trailing(first_ready, cid, SUCCESS) >= 2
            assert all(not r for r, h in changes if trailing(h, cid, SUCCESS) < 2)
            assert mgr.status(uid)["containerStatuses"][0]["restartCount"] == 0
        finally:
            await mgr.delete(uid, 0)
            await mgr.close()
    asyncio.run(body())


@needs_root
def test_failing_tcp_readiness_keeps_ready_false(env):
    async def body():
        events = []
        mgr = env.manager(on_event=lambda inst, *ev: events.append(ev))
        await mgr.start()
        web = c("web", "mkdir -p /www; exec httpd -f -p 8080 -h /www",
                readinessProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 1})
        bad = c("bad", "exec sleep 1000",
                readinessProbe={"tcpSocket": {"port": 9999}, "periodSeconds": 1,
                                "failureThreshold": 1})
        slow = c("slow", "exec sleep 1000",
                 readinessProbe={"exec": {"command": ["sleep", "30"]}, "periodSeconds": 1,
                                 "timeoutSeconds": 1})
        p = env.pod("tcp", [web, bad, slow], terminationGracePeriodSeconds=0)
        uid = p["metadata"]["uid"]
        try:
            await mgr.create(p)
            await until(lambda: (s := cs_of(mgr, uid, "web")) and s["ready"], what="web ready")
            wb = worker(mgr, uid, "bad", "readiness")
            ws = worker(mgr, uid, "slow", "readiness")
            await until(lambda: wb.stats.failures >= 3 and ws.stats.failures >= 2,
                        timeout=20, what="tcp and exec failures")
            assert wb.stats.successes == 0 and ws.stats.successes == 0
            assert cs_of(mgr, uid, "bad")["ready"] is False
            assert cs_of(mgr, uid, "slow")["ready"] is False
            assert cs_of(mgr, uid, "bad")["started"] is True
            assert cond(mgr, uid, "Ready") == "False"
            assert "9999" in wb.stats.last_output
            assert "timed out" in ws.stats.last_output
            unhealthy = [m for t, r, m in events if (t, r) == ("Warning", "Unhealthy")]
            assert f"Readiness probe failed: {wb.stats.last_output.strip()}" in unhealthy
            assert all(m.startswith("Readiness probe failed: ") for m in unhealthy)
            # timed-out exec probes are killed, not left running in the container
            rc, out = await sh(mgr, uid, "slow", "ps -o args | grep -c '^sleep 30' || true")
            assert int(out.strip() or 0) <= 1, out
            # readiness failures never restart
            assert all(cs_of(mgr, uid, n)["restartCount"] == 0 for n in ("web", "bad", "slow"))
        finally:
            await mgr.delete(uid, 0)
            await mgr.close()
    asyncio.run(body())


@needs_root
def test_exec_liveness_failure_restarts_container(env):
    async def body():
        events = []       # the pod's Events, as the node would record them
        mgr = env.manager(on_event=lambda inst, *ev: events.append(ev))
        await mgr.start()
        app = c("app", "touch /tmp/healthy; exec sleep 1000",
                livenessProbe={"exec": {"command": ["test", "-f", "/tmp/healthy"]},
                               "periodSeconds": 1, "failureThreshold": 2,
                               "terminationGracePeriodSeconds": 1})
        # the pod's grace is long: the probe's own terminationGracePeriodSeconds applies
        p = env.pod("live", [app], terminationGracePeriodSeconds=60)
        uid = p["metadata"]["uid"]
        try:
            await mgr.create(p)
            w = await until(lambda: worker(mgr, uid, "app", "liveness"))
            await until(lambda: w.stats.successes >= 2, what="liveness successes")
            first = mgr.get(uid).records["app"].cid
            assert cs_of(mgr, uid, "app")["restartCount"] == 0
            rc, _ = await sh(mgr, uid, "app", "rm /tmp/healthy")
            assert rc == 0
            s = await until(lambda: (s := cs_of(mgr, uid, "app")) and s["restartCount"] == 1
                            and "running" in s["state"] and s, timeout=30, what="restart")
            last = s["lastState"]["terminated"]
            assert last["exitCode"] == 137 and last["reason"] == "Error"
            assert last["message"] == "Container app failed liveness probe, will be restarted"
            assert last["containerID"] == f"runc://{first}"
            # killed after exactly failureThreshold consecutive failures, then held
            assert trailing(w.stats.history, first, FAILURE) == 2
            # the new container is healthy again (its rootfs is fresh) and stays up
            second = mgr.get(uid).records["app"].cid
            assert second != first
            await until(lambda: trailing(w.stats.history, second, SUCCESS) >= 2,
                        what="new container healthy")
            assert cs_of(mgr, uid, "app")["restartCount"] == 1
            assert mgr.status(uid)["phase"] == "Running"
            # Events: a Warning Unhealthy per failed run, Killing for the restart, and each
            # attempt Created + Started
            assert events.count(("Warning", "Unhealthy", "Liveness probe failed: ")) == 2
            assert events.count(("Normal", "Killing",
                                 "Container app failed liveness probe, will be restarted")) == 1
            assert events.count(("Normal", "Created", "Created container app")) == 2
            assert events.count(("Normal", "Started", "Started container app")) == 2
            kill = events.index(("Normal", "Killing",
                                 "Container app failed liveness probe, will be restarted"))
            assert events.index(("Warning", "Unhealthy", "Liveness probe failed: ")) < kill
        finally:
            await mgr.delete(uid, 0)
            await mgr.close()
        assert events[-1] == ("Normal", "Killing", "Stopping container app")
    asyncio.run(body())


@needs_root
def test_startup_probe_gates_liveness_and_readiness(env):
    async def body():
        mgr = env.manager()
        await mgr.start()
        app = c("app", "exec sleep 1000",
                startupProbe={"exec": {"command": ["test", "-f", "/tmp/started"]},
                              "periodSeconds": 1, "failureThreshold": 100},
                livenessProbe={"exec": {"command": ["false"]}, "periodSeconds": 1,
                               "failureThreshold": 1, "terminationGracePeriodSeconds": 0},
                readinessProbe={"exec": {"command": ["true"]}, "periodSeconds": 1})
        never = c("never", "exec sleep 1000",
                  startupProbe={"exec": {"command": ["false"]}, "periodSeconds": 1,
                                "failureThreshold": 2})
        p = env.pod("startup", [app], terminationGracePeriodSeconds=0)
        q = env.pod("startfail", [never], terminationGracePeriodSeconds=0, restartPolicy="Never")
        uid, quid = p["metadata"]["uid"], q["metadata"]["uid"]
        try:
            await asyncio.gather(mgr.create(p), mgr.create(q))
            ws = await until(lambda: worker(mgr, uid, "app", "startup"))
            wl = worker(mgr, uid, "app", "liveness")
            wr = worker(mgr, uid, "app", "readiness")
            await until(lambda: ws.stats.failures >= 3, what="startup failures")
            # a failing liveness probe would have restarted it at once: it was never run
            assert wl.stats.runs == 0 and wr.stats.runs == 0
            s = cs_of(mgr, uid, "app")
            assert "running" in s["state"] and s["started"] is False and s["ready"] is False
            assert s["restartCount"] == 0
            first = mgr.get(uid).records["app"].cid
            rc, _ = await sh(mgr, uid, "app", "touch /tmp/started")
            assert rc == 0
            # started: liveness runs, fails (threshold 1) and restarts the container
            s = await until(lambda: (s := cs_of(mgr, uid, "app")) and s["restartCount"] == 1 and s,
                            timeout=30, what="liveness restart after startup")
            assert s["lastState"]["terminated"]["message"] == \
                "Container app failed liveness probe, will be restarted"
            assert [r for cid, r in ws.stats.history if cid == first][-1] == SUCCESS
            assert trailing(wl.stats.history, first, FAILURE) == 1
            # the new container starts over: not started, liveness gated again
            second = await until(lambda: (r := mgr.get(uid).records["app"]).state == "running"
                                 and r.cid != first and r.cid)
            runs = wl.stats.runs
            await until(lambda: trailing(ws.stats.history, second, FAILURE) >= 2,
                        what="startup probing the new container")
            assert wl.stats.runs == runs
            assert cs_of(mgr, uid, "app")["started"] is False
            # a failed startup probe kills too; with restartPolicy Never it stays dead
            t = await until(lambda: (s := cs_of(mgr, quid, "never")) and s["state"].get("terminated"),
                            timeout=30, what="startup probe kill")
            assert t["message"] == "Container never failed startup probe"
            await until(lambda: mgr.status(quid)["phase"] == "Failed", what="pod failed")
            assert cs_of(mgr, quid, "never")["restartCount"] == 0
        finally:
            await asyncio.gather(mgr.delete(uid, 0), mgr.delete(quid, 0))
            await mgr.close()
    asyncio.run(body())


# ---- probers against local servers (127.0.0.1) ---------------------------------------------

async def _http_server(routes: dict):
    """A tiny HTTP/1.1 server: path -> (status, headers); records the request headers."""
    seen = []

    async def handle(r, w):
        req = await r.readuntil(b"\r\n\r\n")
        lines = req.decode().split("\r\n")
        path = lines[0].split()[1]
        seen.append((path, {k.lower(): v.strip() for k, _, v in
                            (ln.partition(":") for ln in lines[1:] if ln)}))
        if path == "/slow":
            await asyncio.sleep(5)
        code, hdrs = routes.get(path, (404, {}))
        extra = "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
        w.write(f"HTTP/1.1 {code} X\r\n{extra}Content-Length: 0\r\n\r\n".encode())
        await w.drain()
        w.close()
    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1], seen


def test_http_prober_codes_redirects_headers():
    async def body():
        srv, port, seen = await _http_server({
            "/ok": (200, {}), "/moved": (302, {"Location": "/ok"}),
            "/away": (301, {"Location": "http://192.0.2.1:1/x"}),
            "/teapot": (418, {}), "/loop": (302, {"Location": "/loop"})})
        h = [("X-Probe", "yes"), ("Host", "example.test")]
        try:
            get = lambda path, t=1.0: probes.probe_http("127.0.0.1", port, path, "HTTP", h, t)
            assert (await get("/ok"))[0] == SUCCESS
            assert seen[-1][1]["x-probe"] == "yes" and seen[-1][1]["host"] == "example.test"
            assert seen[-1][1]["user-agent"].startswith("kube-probe/")
            r = await get("/moved")
            assert r[0] == SUCCESS and [s[0] for s in seen[-2:]] == ["/moved", "/ok"]
            assert (await get("/away"))[0] == SUCCESS          # other host: not followed
            r = await get("/teapot")
            assert r == (FAILURE, "HTTP probe failed with statuscode: 418")
            assert (await get("/missing"))[0] == FAILURE
            assert (await get("/loop"))[0] == FAILURE          # too many redirects
            r = await get("/slow", 0.3)
            assert r[0] == FAILURE and "deadline" in r[1]
        finally:
            srv.close()
        r = await probes.probe_http("127.0.0.1", port, "/", "HTTP", [], 1)
        assert r[0] == FAILURE                                  # connection refused
        assert (await probes.probe_tcp("127.0.0.1", port, 1))[0] == FAILURE
    asyncio.run(body())


def test_resolve_port():
    ctr = {"name": "x", "ports": [{"name": "http", "containerPort": 8080}]}
    assert probes.resolve_port("http", ctr) == 8080
    assert probes.resolve_port(81, ctr) == 81
    assert probes.resolve_port("82", ctr) == 82
    with pytest.raises(probes.ProbeError):
        probes.resolve_port("grpc", ctr)


def test_probe_spec_defaults():
    s = probes.ProbeSpec.from_dict("liveness", {"tcpSocket": {"port": 1}, "successThreshold": 3})
    assert (s.handler, s.period, s.timeout, s.failure_threshold, s.success_threshold,
            s.initial_delay, s.grace) == ("tcpSocket", 10, 1, 3, 1, 0, None)
    s = probes.ProbeSpec.from_dict("readiness", {"exec": {"command": ["true"]},
                                                 "successThreshold": 3, "initialDelaySeconds": 5})
    assert s.success_threshold == 3 and s.initial_delay == 5


async def _grpc_health_server(serving: dict, hang: bool = False):
    """A grpc.health.v1 server written with h2: service name -> status enum."""
    import h2.config as h2cfg
    import h2.connection as h2conn
    import h2.events as h2ev

    async def handle(r, w):
        conn = h2conn.H2Connection(h2cfg.H2Configuration(client_side=False))
        conn.initiate_connection()
        w.write(conn.data_to_send())
        paths, bodies = {}, {}
        while True:
            data = await r.read(65536)
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2ev.RequestReceived):
                    paths[ev.stream_id] = dict(ev.headers)[b":path"]
                    bodies[ev.stream_id] = b""
                elif isinstance(ev, h2ev.DataReceived):
                    bodies[ev.stream_id] += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2ev.StreamEnded) and not hang:
                    sid = ev.stream_id
                    msg = bodies[sid][5:]
                    service = msg[2:].decode() if msg else ""
                    conn.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc")])
                    if paths[sid] != b"/grpc.health.v1.Health/Check":
                        conn.send_headers(sid, [("grpc-status", "12")], end_stream=True)
                    elif service not in serving:
                        conn.send_headers(sid, [("grpc-status", "5"),
                                                ("grpc-message", "unknown service")], end_stream=True)
                    else:
                        pb = b"\x08" + bytes([serving[service]])
                        conn.send_data(sid, b"\x00" + struct.pack(">I", len(pb)) + pb)
                        conn.send_headers(sid, [("grpc-status", "0")], end_stream=True)
            w.write(conn.data_to_send())
            await w.drain()
        w.close()
    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1]


def test_grpc_prober():

    async def body():
        srv, port = await _grpc_health_server({"": 1, "db": 2})
        try:
            assert (await probes.probe_grpc("127.0.0.1", port, "", 1)) == (SUCCESS, "")
            r = await probes.probe_grpc("127.0.0.1", port, "db", 1)
            assert r == (FAILURE, 'service unhealthy (responded with "NOT_SERVING")')
            r = await probes.probe_grpc("127.0.0.1", port, "nope", 1)
            assert r[0] == FAILURE and "code = 5" in r[1]
        finally:
            srv.close()
        srv, hport = await _grpc_health_server({"": 1}, hang=True)
        try:
            r = await probes.probe_grpc("127.0.0.1", hport, "", 0.3)
            assert r[0] == FAILURE and "timeout" in r[1]
        finally:
            srv.close()
        r = await probes.probe_grpc("127.0.0.1", port, "", 1)
        assert r[0] == FAILURE                                   # nothing listens any more
    asyncio.run(body())
