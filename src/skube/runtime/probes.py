"""Container probes the way the kubelet's prober runs them: liveness, readiness, startup.

One asyncio task per probe of a container (no thread). Each worker ticks every
``periodSeconds`` (and at once when the container starts), skips probing during
``initialDelaySeconds`` after the container started, and only changes the recorded result
once ``successThreshold`` consecutive successes or ``failureThreshold`` consecutive failures
are seen. Results are kept per container id: a new container starts again from the initial
value (readiness: Failure, liveness: Success, startup: Unknown).

* a startup probe gates the others: liveness and readiness are not run (and the container
  is not ``started``) until the startup probe succeeded once; after that it is not run again
  for that container;
* a liveness or startup result of Failure kills the container (grace: the probe's
  ``terminationGracePeriodSeconds`` if set, else the pod's) and the worker holds until a new
  container is there; the instance restarts it per restartPolicy with its back-off;
* errors of the prober itself (the container vanished under an exec, …) throw the result
  away, as upstream does.

Handlers: ``exec`` (exit code 0; ``timeoutSeconds`` kills the command), ``httpGet`` (host =
pod IP unless given, scheme HTTP/HTTPS without certificate checks, named or numbered port,
``httpHeaders``; 200–399 is success; redirects are followed on the same host, a redirect to
another host counts as success), ``tcpSocket`` (a connection within the timeout) and ``grpc``
(``grpc.health.v1.Health/Check`` over plaintext HTTP/2 with the ``h2`` package; SERVING is
success).
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..aio import wait_set

log = logging.getLogger(__name__)

SUCCESS, FAILURE, UNKNOWN = "Success", "Failure", "Unknown"
LIVENESS, READINESS, STARTUP = "liveness", "readiness", "startup"
SPEC_KEYS = {STARTUP: "startupProbe", LIVENESS: "livenessProbe", READINESS: "readinessProbe"}
INITIAL = {READINESS: FAILURE, LIVENESS: SUCCESS, STARTUP: UNKNOWN}
USER_AGENT = "kube-probe/1.33"
MAX_REDIRECTS = 10
MAX_OUTPUT = 10 * 1024


class ProbeError(Exception):
    """The prober could not run the probe at all: the result is thrown away."""


@dataclass
class ProbeSpec:
    kind: str
    handler: str                # exec | httpGet | tcpSocket | grpc
    action: dict
    initial_delay: float = 0
    period: float = 10
    timeout: float = 1
    success_threshold: int = 1
    failure_threshold: int = 3
    grace: float | None = None  # terminationGracePeriodSeconds of the probe

    @classmethod
    def from_dict(cls, kind: str, d: dict) -> "ProbeSpec":
        for h in ("exec", "httpGet", "tcpSocket", "grpc"):
            if d.get(h) is not None:
                handler = h
                break
        else:
            raise ValueError(f"{SPEC_KEYS[kind]} has no handler")
        success = int(d.get("successThreshold") or 1)
        if kind in (LIVENESS, STARTUP):
            success = 1      # upstream validation: must be 1 for liveness and startup
        grace = d.get("terminationGracePeriodSeconds")
        return cls(kind=kind, handler=handler, action=d[handler] or {},
                   initial_delay=float(d.get("initialDelaySeconds") or 0),
                   period=float(d.get("periodSeconds") or 10),
                   timeout=float(d.get("timeoutSeconds") or 1),
                   success_threshold=success,
                   failure_threshold=int(d.get("failureThreshold") or 3),
                   grace=None if grace is None else float(grace))


class Host(Protocol):
    """What the workers need of a pod instance (see :class:`skube.runtime.instance.Instance`)."""
    records: dict
    phase: str
    deleting: bool
    restart_policy: str

    def pod_ip(self) -> str: ...
    def will_restart(self, name: str) -> bool: ...
    def probe_runc(self) -> Any: ...
    def probe_result_changed(self, name: str, kind: str, result: str) -> None: ...
    async def kill_for_probe(self, name: str, kind: str, cid: str, grace: float | None) -> None: ...


# ---- handlers -----------------------------------------------------------------------------

def resolve_port(port: Any, container: dict) -> int:
    """A port number, or the name of one of the container's ports."""
    if isinstance(port, int):
        p = port
    else:
        s = str(port)
        p = None
        for cp in container.get("ports") or []:
            if cp.get("name") == s:
                p = int(cp["containerPort"])
                break
        if p is None:
            try:
                p = int(s)
            except ValueError:
                raise ProbeError(f"port {s!r} not found in container {container.get('name')!r}")
    if not 0 < p < 65536:
        raise ProbeError(f"invalid port number: {p}")
    return p


async def probe_exec(runc: Any, cid: str, command: list[str], timeout: float) -> tuple[str, str]:
    """Run ``command`` in the container (``runc exec``); exit 0 is success. On timeout the
    command is killed (its host pid comes from runc's --pid-file) and the probe fails."""
    if not command:
        raise ProbeError("exec probe without a command")
    piddir = Path(runc.root).parent / "probe-pids"      # not in runc's root: it lists that
    piddir.mkdir(parents=True, exist_ok=True)
    fd, pidfile = tempfile.mkstemp(prefix="exec-", dir=str(piddir))
    os.close(fd)
    os.unlink(pidfile)
    proc = await asyncio.create_subprocess_exec(
        runc.runc, "--root", str(runc.root), "exec", "--pid-file", pidfile, cid, *command,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    try:
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            _kill_pidfile(pidfile)
            try:
                proc.kill()
            except ProcessLookupError:
                pass
            await proc.wait()
            return FAILURE, f"command {command!r} timed out"
        except asyncio.CancelledError:
            _kill_pidfile(pidfile)
            try:
                proc.kill()
            except ProcessLookupError:
                pass
            raise
    finally:
        try:
            os.unlink(pidfile)
        except OSError:
            pass
    text = out[:MAX_OUTPUT].decode(errors="replace")
    if proc.returncode == 0:
        return SUCCESS, text
    if b"container does not exist" in out or b"cannot exec in a stopped" in out \
            or b"is not running" in out:
        raise ProbeError(text.strip())
    return FAILURE, text


def _kill_pidfile(pidfile: str) -> None:
    try:
        pid = int(open(pidfile).read().strip())
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass


async def probe_tcp(host: str, port: int, timeout: float) -> tuple[str, str]:
    try:
        _, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except asyncio.TimeoutError:
        return FAILURE, f"dial tcp {host}:{port}: i/o timeout"
    except OSError as e:
        return FAILURE, f"dial tcp {host}:{port}: {e.strerror or e}"
    w.close()
    try:
        await w.wait_closed()
    except OSError:
        pass
    return SUCCESS, ""


_insecure: ssl.SSLContext | None = None


def _ssl_context() -> ssl.SSLContext:
    global _insecure
    if _insecure is None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        _insecure = ctx
    return _insecure


async def _http_get_once(scheme: str, host: str, port: int, target: str,
                         headers: list[tuple[str, str]]) -> tuple[int, dict]:
    r, w = await asyncio.open_connection(
        host, port, ssl=_ssl_context() if scheme == "https" else None,
        server_hostname=host if scheme == "https" else None)
    try:
        lines = [f"GET {target} HTTP/1.1"]
        names = {k.lower() for k, _ in headers}
        if "host" not in names:
            hh = f"[{host}]" if ":" in host else host
            default = 443 if scheme == "https" else 80
            lines.append(f"Host: {hh}" if port == default else f"Host: {hh}:{port}")
        if "user-agent" not in names:
            lines.append(f"User-Agent: {USER_AGENT}")
        if "accept" not in names:
            lines.append("Accept: */*")
        for k, v in headers:
            if k.lower() == "user-agent" and v == "":
                continue     # an empty User-Agent removes the header
            lines.append(f"{k}: {v}")
        lines.append("Connection: close")
        w.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await w.drain()
        status = await r.readline()
        parts = status.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise ConnectionError(f"malformed HTTP response {status[:80]!r}")
        code = int(parts[1])
        hdrs: dict[str, str] = {}
        while True:
            line = await r.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            hdrs[k.strip().lower()] = v.strip()
        return code, hdrs
    finally:
        w.close()


async def probe_http(host: str, port: int, path: str, scheme: str,
                     headers: list[tuple[str, str]], timeout: float) -> tuple[str, str]:
    """An HTTP GET: 200–399 is success. Redirects on the same host are followed (at most
    10); a redirect to another host is a success (upstream warns about it)."""
    scheme = (scheme or "HTTP").lower()
    if scheme not in ("http", "https"):
        raise ProbeError(f"unsupported scheme {scheme!r}")
    target = path or "/"
    if not target.startswith("/"):
        target = "/" + target

    async def run() -> tuple[str, str]:
        nonlocal target
        for _ in range(MAX_REDIRECTS + 1):
            code, hdrs = await _http_get_once(scheme, host, port, target, headers)
            loc = hdrs.get("location")
            if 300 <= code < 400 and loc:
                u = urlsplit(loc)
                same = (not u.netloc) or (u.hostname == host and
                                          (u.port or (443 if u.scheme == "https" else 80)) == port)
                if not same:
                    return SUCCESS, f"Probe terminated redirects, Response: {code}"
                target = (u.path or "/") + (f"?{u.query}" if u.query else "")
                continue
            if 200 <= code < 400:
                return SUCCESS, f"HTTP probe succeeded with statuscode: {code}"
            return FAILURE, f"HTTP probe failed with statuscode: {code}"
        return FAILURE, "stopped after 10 redirects"
    try:
        return await asyncio.wait_for(run(), timeout)
    except asyncio.TimeoutError:
        return FAILURE, f"Get {scheme}://{host}:{port}{target}: context deadline exceeded"
    except (OSError, ConnectionError, ValueError, ssl.SSLError) as e:
        return FAILURE, f"Get {scheme}://{host}:{port}{target}: {e}"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _health_status(msg: bytes) -> int:
    """Field 1 (enum ``status``) of a HealthCheckResponse; 0 (UNKNOWN) when absent."""
    i, status = 0, 0
    while i < len(msg):
        key, i = _read_varint(msg, i)
        fno, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _read_varint(msg, i)
            if fno == 1:
                status = v
        elif wt == 2:
            n, i = _read_varint(msg, i)
            i += n
        elif wt == 1:
            i += 8
        elif wt == 5:
            i += 4
        else:
            raise ValueError("bad protobuf")
    return status


def _read_varint(b: bytes, i: int) -> tuple[int, int]:
    shift = v = 0
    while True:
        if i >= len(b):
            raise ValueError("truncated varint")
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if not c & 0x80:
            return v, i
        shift += 7


HEALTH_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


async def probe_grpc(host: str, port: int, service: str, timeout: float) -> tuple[str, str]:
    """``grpc.health.v1.Health/Check`` over plaintext HTTP/2 (the ``h2`` package)."""
    try:
        import h2.config
        import h2.connection
        import h2.events
    except ImportError:
        raise ProbeError("grpc probes need the 'h2' package")
    addr = f"{host}:{port}"

    async def run() -> tuple[str, str]:
        r, w = await asyncio.open_connection(host, port)
        try:
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            conn.initiate_connection()
            sid = conn.get_next_available_stream_id()
            body = b""
            if service:
                s = service.encode()
                body = b"\x0a" + _varint(len(s)) + s
            conn.send_headers(sid, [
                (":method", "POST"), (":scheme", "http"), (":authority", addr),
                (":path", "/grpc.health.v1.Health/Check"), ("content-type", "application/grpc"),
                ("te", "trailers"), ("user-agent", USER_AGENT)])
            conn.send_data(sid, b"\x00" + struct.pack(">I", len(body)) + body, end_stream=True)
            w.write(conn.data_to_send())
            await w.drain()
            data, fields, ended = bytearray(), {}, False
            while not ended:
                chunk = await r.read(65536)
                if not chunk:
                    raise ConnectionError("connection closed")
                for ev in conn.receive_data(chunk):
                    if isinstance(ev, (h2.events.ResponseReceived, h2.events.TrailersReceived)) \
                            and ev.stream_id == sid:
                        for k, v in ev.headers:
                            k = k.decode() if isinstance(k, bytes) else k
                            v = v.decode() if isinstance(v, bytes) else v
                            fields[k] = v
                    elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                        data += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                    elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                        ended = True
                    elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                        raise ConnectionError(f"stream reset (error code {ev.error_code})")
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        raise ConnectionError("connection terminated")
                out = conn.data_to_send()
                if out:
                    w.write(out)
                    await w.drain()
            try:
                conn.close_connection()
                w.write(conn.data_to_send())
            except Exception:
                pass
            if fields.get(":status", "200") != "200":
                return FAILURE, f"rpc error: HTTP status {fields.get(':status')}"
            gs = fields.get("grpc-status", "0")
            if gs != "0":
                if gs == "12":
                    return FAILURE, "this server does not implement the grpc health protocol " \
                                    "(grpc.health.v1.Health): rpc error: code = Unimplemented"
                return FAILURE, f"rpc error: code = {gs} desc = {fields.get('grpc-message', '')}"
            if len(data) < 5:
                return FAILURE, "rpc error: empty response"
            n = struct.unpack(">I", bytes(data[1:5]))[0]
            status = _health_status(bytes(data[5:5 + n]))
            if status == 1:
                return SUCCESS, ""
            return FAILURE, f'service unhealthy (responded with "{HEALTH_STATUS.get(status, status)}")'
        finally:
            w.close()
    try:
        return await asyncio.wait_for(run(), timeout)
    except asyncio.TimeoutError:
        return FAILURE, f"timeout: health rpc did not complete within {timeout:g}s"
    except (OSError, ConnectionError, ValueError) as e:
        return FAILURE, f"failed to connect service {addr!r} within {timeout:g}s: {e}"


# ---- workers ------------------------------------------------------------------------------

@dataclass
class WorkerStats:
    runs: int = 0              # probes actually run (all containers)
    successes: int = 0
    failures: int = 0
    last_output: str = ""
    history: list = field(default_factory=list)   # (cid, result) of the last 100 runs


class Worker:
    """One probe of one container: its own task, ticking every periodSeconds."""

    def __init__(self, host: Host, container: dict, spec: ProbeSpec, prober: "ContainerProber"):
        self.host, self.container, self.spec, self.prober = host, container, spec, prober
        self.name = container["name"]
        self.stats = WorkerStats()
        self.cid = ""
        self.on_hold = False
        self.last_result = UNKNOWN
        self.result_run = 0
        self._kick = asyncio.Event()
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    def trigger(self) -> None:
        self._kick.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            try:
                wait = await self._do_probe()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s probe of %s", self.spec.kind, self.name)
                wait = None
            if wait is False:
                return
            next_tick += self.spec.period
            now = loop.time()
            if next_tick < now:
                next_tick = now + self.spec.period
            delay = next_tick - now
            if isinstance(wait, float):
                delay = min(delay, wait)
            self._kick.clear()
            if await wait_set(self._kick, delay):
                next_tick = loop.time()

    def _set(self, result: str) -> None:
        self.prober.set_result(self.spec.kind, self.cid, result)

    async def _do_probe(self) -> bool | float | None:
        """Probe once; False ends the worker, a float asks for an earlier next tick."""
        h = self.host
        if h.phase in ("Succeeded", "Failed"):
            return False
        rec = h.records.get(self.name)
        if rec is None or not rec.cid:
            return None
        if rec.cid != self.cid:
            self.cid = rec.cid
            self.on_hold = False
            self.last_result, self.result_run = UNKNOWN, 0
            self._set(INITIAL[self.spec.kind])
        if self.on_hold:
            return None
        if rec.state != "running":
            if rec.state == "terminated":
                self._set(FAILURE)
                if not h.will_restart(self.name):
                    return False
            return None
        if h.deleting:
            if self.spec.kind in (LIVENESS, STARTUP):
                self._set(SUCCESS)
                return False
        if rec.started_at is not None:
            left = self.spec.initial_delay - (time.time() - rec.started_at)
            if left > 0:
                return max(left, 0.05)
        started = self.prober.started(rec)
        if self.spec.kind == STARTUP:
            if started:
                return None
        elif not started:
            return None
        cid = rec.cid
        try:
            result, output = await self._probe(rec)
        except ProbeError as e:
            log.info("%s probe of %s/%s: %s", self.spec.kind, h.uid, self.name, e)
            return None
        if rec.cid != cid or self.cid != cid:
            return None                 # the container changed under the probe
        st = self.stats
        st.runs += 1
        st.last_output = output
        if result == SUCCESS:
            st.successes += 1
        elif result == FAILURE:
            st.failures += 1
        st.history.append((cid, result))
        del st.history[:-100]
        if result == FAILURE:     # every failed run is reported (kubelet: Unhealthy events)
            report = getattr(h, "probe_failed", None)
            if report:
                report(self.name, self.spec.kind, output)
        if result == self.last_result:
            self.result_run += 1
        else:
            self.last_result, self.result_run = result, 1
        if (result == FAILURE and self.result_run < self.spec.failure_threshold) or \
                (result == SUCCESS and self.result_run < self.spec.success_threshold):
            return None
        self._set(result)
        if self.spec.kind in (LIVENESS, STARTUP) and result == FAILURE:
            self.on_hold = True
            self.result_run = 0
            log.info("%s probe of %s/%s failed: %s", self.spec.kind, h.uid, self.name,
                     output.strip()[:200])
            await h.kill_for_probe(self.name, self.spec.kind, cid, self.spec.grace)
        return None

    async def _probe(self, rec) -> tuple[str, str]:
        s, a = self.spec, self.spec.action
        if s.handler == "exec":
            return await probe_exec(self.host.probe_runc(), rec.cid, list(a.get("command") or []),
                                    s.timeout)
        ip = self.host.pod_ip()
        if s.handler == "httpGet":
            host = a.get("host") or ip
            if not host:
                raise ProbeError("pod has no IP")
            port = resolve_port(a.get("port"), self.container)
            headers = [(x.get("name", ""), x.get("value", "")) for x in a.get("httpHeaders") or []]
            return await probe_http(host, port, a.get("path") or "/", a.get("scheme") or "HTTP",
                                    headers, s.timeout)
        if s.handler == "tcpSocket":
            host = a.get("host") or ip
            if not host:
                raise ProbeError("pod has no IP")
            return await probe_tcp(host, resolve_port(a.get("port"), self.container), s.timeout)
        if s.handler == "grpc":
            if not ip:
                raise ProbeError("pod has no IP")
            port = a.get("port")
            if not isinstance(port, int):
                raise ProbeError("grpc probe port must be a number")
            return await probe_grpc(ip, port, a.get("service") or "", s.timeout)
        raise ProbeError(f"unknown probe handler {s.handler}")


class ContainerProber:
    """The probes of one container and their current results (per container id)."""

    def __init__(self, host: Host, container: dict):
        self.host = host
        self.name = container["name"]
        self.workers: dict[str, Worker] = {}
        self.results: dict[str, tuple[str, str]] = {}      # kind -> (cid, result)
        for kind, key in SPEC_KEYS.items():
            d = container.get(key)
            if d:
                try:
                    self.workers[kind] = Worker(host, container, ProbeSpec.from_dict(kind, d), self)
                except (ValueError, TypeError) as e:
                    log.warning("container %s: %s", self.name, e)

    def result(self, kind: str, cid: str) -> str:
        r = self.results.get(kind)
        if r is None or r[0] != cid:
            return INITIAL[kind]
        return r[1]

    def set_result(self, kind: str, cid: str, result: str) -> None:
        old = self.result(kind, cid)
        self.results[kind] = (cid, result)
        if old != result:
            self.host.probe_result_changed(self.name, kind, result)
            if kind == STARTUP and result == SUCCESS:
                for k in (LIVENESS, READINESS):     # start the gated probes at once
                    if k in self.workers:
                        self.workers[k].trigger()

    def started(self, rec) -> bool:
        if rec.state != "running":
            return False
        if STARTUP not in self.workers:
            return True
        return self.result(STARTUP, rec.cid) == SUCCESS

    def ready(self, rec) -> bool:
        if not self.started(rec):
            return False
        if READINESS not in self.workers:
            return True
        return self.result(READINESS, rec.cid) == SUCCESS

    def start(self) -> None:
        for w in self.workers.values():
            if w.task is None or w.task.done():
                w.start()

    def trigger(self) -> None:
        for w in self.workers.values():
            w.trigger()

    def tasks(self) -> list[asyncio.Task]:
        return [w.task for w in self.workers.values() if w.task]


class PodProber:
    """All probe workers of a pod instance (app containers and sidecars)."""

    def __init__(self, host: Host, containers: list[dict]):
        self.containers = {c["name"]: ContainerProber(host, c) for c in containers}

    def get(self, name: str) -> ContainerProber | None:
        return self.containers.get(name)

    def start(self) -> None:
        for cp in self.containers.values():
            cp.start()

    def container_started(self, name: str) -> None:
        cp = self.containers.get(name)
        if cp:
            cp.trigger()

    async def stop(self) -> None:
        tasks = [t for cp in self.containers.values() for t in cp.tasks() if not t.done()]
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass

    def worker(self, name: str, kind: str) -> Worker | None:
        cp = self.containers.get(name)
        return cp.workers.get(kind) if cp else None


__all__ = ["PodProber", "ContainerProber", "Worker", "ProbeSpec", "ProbeError", "probe_exec",
           "probe_http", "probe_tcp", "probe_grpc", "resolve_port", "SUCCESS", "FAILURE",
           "UNKNOWN", "LIVENESS", "READINESS", "STARTUP"]
