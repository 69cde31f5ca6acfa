"""Attach to a real container's main process through its conmon monitor: output (to the
attach stream and still to the log), stdin kept open for `stdin: true`, closed after the
first client with `stdinOnce`, and terminals with resizes."""
from __future__ import annotations

import asyncio

from skube.runtime.runc import AttachHandle

from rtc_helpers import needs_root, until

pytestmark = needs_root


def c(name: str, script: str, **kw) -> dict:
    return {"name": name, "image": "busybox", "command": ["sh", "-c", script], **kw}


def running(mgr, uid, name):
    return any(cs["name"] == name and "running" in cs["state"]
               for cs in mgr.status(uid).get("containerStatuses", []))


async def read_until(h: AttachHandle, want: bytes, timeout: float = 15) -> dict[int, bytes]:
    """Everything the attach socket carries, per pipe, until ``want`` was seen on any pipe."""
    got: dict[int, bytes] = {}

    async def go():
        while not any(want in v for v in got.values()):
            msg = await h.read()
            assert msg is not None, f"output ended before {want!r}: {got}"
            got[msg[0]] = got.get(msg[0], b"") + msg[1]
    await asyncio.wait_for(go(), timeout)
    return got


async def start(env, name: str, container: dict):
    mgr = env.manager()
    await mgr.start()
    p = env.pod(name, [container], terminationGracePeriodSeconds=1)
    uid = p["metadata"]["uid"]
    await mgr.create(p)
    await until(lambda: running(mgr, uid, container["name"]), what="container running")
    return mgr, uid


def test_attach_feeds_stdin_and_carries_stdout_and_stderr_also_to_the_log(env):
    async def body():
        mgr, uid = await start(env, "att", c("app", "read x; echo got $x; echo oops >&2; sleep 1000",
                                             stdin=True))
        try:
            h, spec = await mgr.attach(uid, "app")
            assert spec["stdin"] is True
            await h.write(b"hello\n")
            got = await read_until(h, b"oops")
            assert got[AttachHandle.STDOUT] == b"got hello\n"
            assert got[AttachHandle.STDERR] == b"oops\n"
            h.close()
            lf = mgr.log_file(uid, "app")
            await until(lambda: b"oops" in lf.read_bytes(), what="log")
            text = lf.read_bytes()
            assert b" stdout F got hello\n" in text and b" stderr F oops\n" in text
            # the container still runs after the client left
            assert running(mgr, uid, "app")
        finally:
            await mgr.delete(uid, 0)
            await mgr.close()
    asyncio.run(body())


def test_stdin_stays_open_across_attaches_without_stdin_once(env):
    async def body():
        mgr, uid = await start(env, "multi", c("app", "while read x; do echo got $x; done; echo eof; "
                                                      "sleep 1000", stdin=True))
        try:
            h, _ = await mgr.attach(uid, "app")
            await h.write(b"one\n")
            await read_until(h, b"got one")
            h.close_stdin()      # the first client's input ends: stdin stays open
            h.close()
            h, _ = await mgr.attach(uid, "app")
            await h.write(b"two\n")
            got = await read_until(h, b"got two")
            assert b"eof" not in got[AttachHandle.STDOUT]
            h.close()
        finally:
            await mgr.delete(uid, 0)
            await mgr.close()
    asyncio.run(body())


def test_stdin_once_closes_stdin_when_the_first_client_is_done(env):
    async def body():
        mgr, uid = await start(env, "once", c("app", "cat; echo eof-seen; sleep 1000",
                                              stdin=True, stdinOnce=True))
        try:
            h, _ = await mgr.attach(uid, "app")
            await h.write(b"abc\n")
            assert (await read_until(h, b"abc"))[AttachHandle.STDOUT] == b"abc\n"
            h.close_stdin()
            got = await read_until(h, b"eof-seen")
            assert got[AttachHandle.STDOUT] == b"eof-seen\n"
            h.close()
        finally:
            await mgr.delete(uid, 0)
            await mgr.close()
    asyncio.run(body())


def test_attach_to_a_terminal_with_resize(env):
    async def body():
        mgr, uid = await start(env, "term", c("app", 'read x; echo "size $(stty size) got $x"; sleep 1000',
                                              stdin=True, tty=True))
        try:
            h, _ = await mgr.attach(uid, "app")
            h.resize(30, 100)
            await asyncio.sleep(0)
            await h.write(b"typed\n")
            got = await read_until(h, b"got typed")
            out = got[AttachHandle.STDOUT]
            assert b"typed\r\n" in out and b"size 30 100 got typed\r\n" in out, out
            assert set(got) == {AttachHandle.STDOUT}
            h.close()
            lf = mgr.log_file(uid, "app")
            await until(lambda: b"got typed" in lf.read_bytes(), what="terminal output in the log")
        finally:
            await mgr.delete(uid, 0)
            await mgr.close()
    asyncio.run(body())


def test_attach_ends_when_the_container_exits_and_is_refused_once_it_has(env):
    async def body():
        mgr = env.manager()
        await mgr.start()
        p = env.pod("short", [c("app", "read x; echo bye $x")], restartPolicy="Never")
        uid = p["metadata"]["uid"]
        p["spec"]["containers"][0]["stdin"] = True
        try:
            await mgr.create(p)
            await until(lambda: running(mgr, uid, "app"), what="running")
            h, _ = await mgr.attach(uid, "app")
            await h.write(b"now\n")
            await read_until(h, b"bye now")
            assert await asyncio.wait_for(h.read(), 15) is None
            h.close()
            await until(lambda: mgr.status(uid)["phase"] == "Succeeded", what="Succeeded")
            from skube.runtime.runc import RuncError
            try:
                await mgr.attach(uid, "app")
            except RuncError as e:
                assert "not running" in str(e)
            else:
                raise AssertionError("attach to an exited container must fail")
        finally:
            await mgr.delete(uid, 0)
            await mgr.close()
    asyncio.run(body())
