"""The ``mock`` provider: simulated instances for scale and cost work.

No containers run. Each pod becomes an :class:`Instance` whose lifecycle is
driven by event-loop timers (one TimerHandle per pending transition, no task or
thread per pod): Pending for a start delay drawn from the configured
distribution, then Running, forever or for N seconds before its containers exit
(0 or 1). A configured share of starts fail. Restarts follow the pod's
restartPolicy with the kubelet's back-off (10 s doubling to 5 min). ``attach``
reaches a simulated main process that echoes stdin and streams its log lines.

Every transition is appended to a journal under the node's data dir
(``mock/instances.jsonl``, one ``os.write`` per change), so after a restart —
even ``kill -9`` — the node re-adopts exactly the instances that existed.

Config (YAML, ``--provider-config``), every key optional::

    startDelay: {distribution: fixed, ms: 0}          # or uniform {min, max} / normal {mean, stddev}
    failureRate: 0.0                                  # share of container starts that fail
    lifecycle: {mode: forever}                        # or {mode: finite, seconds: 30, outcome: succeed|fail}
    podCIDR: 10.250.0.0/16                            # fake pod IPs

    spot: {reclaimAfterSeconds: 600, warningSeconds: 180}   # spot reclaims (skube.providers.spot)

Per pod, annotations override the config: ``mock.skube.io/start-delay-ms``,
``mock.skube.io/run-seconds``, ``mock.skube.io/exit-code``, ``mock.skube.io/fail-start``.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ipaddress
import logging
import os
import random
from pathlib import Path
from typing import AsyncIterator

import orjson

from ..aio import race
from ..clock import REAL, clock
from ..api.quantity import cpu_millis, memory_bytes
from .base import BadRequest, LogOptions, PodNotFound, Provider, ProviderContext
from .spot import RECLAIM_ANNOTATION, SpotConfig, SpotReclaimer, reclaimed_status

log = logging.getLogger("skube.providers.mock")

ANNOTATION = "mock.skube.io/"
RECLAIMED = "spot-reclaimed"       # Instance.annotations: when its spot instance was reclaimed
BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0
MAX_LOG_EVENTS = 200          # synthetic log lines kept per instance


def rfc3339(t: float, nano: bool = False) -> str:
    d = dt.datetime.fromtimestamp(t, dt.timezone.utc)
    if nano:
        return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond:06d}000Z"
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(s: str) -> float:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


class MockConfig:
    """The parsed provider config (see the module docstring)."""

    def __init__(self, doc: dict | None = None):
        doc = doc or {}
        sd = doc.get("startDelay") or {}
        if isinstance(sd, (int, float)):
            sd = {"distribution": "fixed", "ms": sd}
        self.distribution = sd.get("distribution", "fixed")
        if self.distribution not in ("fixed", "uniform", "normal"):
            raise ValueError(f"startDelay.distribution must be fixed, uniform or normal, "
                             f"not {self.distribution!r}")
        self.delay_ms = float(sd.get("ms", 0))
        self.delay_min = float(sd.get("min", 0))
        self.delay_max = float(sd.get("max", self.delay_min))
        self.delay_mean = float(sd.get("mean", 0))
        self.delay_stddev = float(sd.get("stddev", 0))
        self.failure_rate = float(doc.get("failureRate", 0.0))
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError("failureRate must be between 0 and 1")
        lc = doc.get("lifecycle") or {}
        self.mode = lc.get("mode", "forever")
        if self.mode not in ("forever", "finite"):
            raise ValueError(f"lifecycle.mode must be forever or finite, not {self.mode!r}")
        self.run_seconds = float(lc.get("seconds", 0))
        self.outcome = lc.get("outcome", "succeed")
        if self.outcome not in ("succeed", "fail"):
            raise ValueError(f"lifecycle.outcome must be succeed or fail, not {self.outcome!r}")
        self.pod_cidr = ipaddress.ip_network(doc.get("podCIDR", "10.250.0.0/16"))
        self.seed = doc.get("seed")

    def start_delay(self, rng: random.Random) -> float:
        """Seconds from create to Running."""
        if self.distribution == "uniform":
            ms = rng.uniform(self.delay_min, self.delay_max)
        elif self.distribution == "normal":
            ms = rng.gauss(self.delay_mean, self.delay_stddev)
        else:
            ms = self.delay_ms
        return max(ms, 0.0) / 1000.0


class Instance:
    """One simulated pod instance. ``state``: Pending, Running, Backoff (waiting to
    restart), Succeeded, Failed. All containers move together."""
    __slots__ = ("namespace", "name", "uid", "containers", "init_containers", "restart_policy",
                 "annotations", "created", "started", "state", "due", "restarts", "exit_code",
                 "finished", "ip", "events", "requests", "timer", "last_exit", "running_at")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))
        self.timer = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def to_record(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__ if k != "timer"}

    @classmethod
    def from_record(cls, rec: dict) -> "Instance":
        return cls(**rec)


class Journal:
    """Append-only JSON-lines journal of instance records; compacted on open and
    when it grows past a few times the live set."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None
        self.lines = 0

    def load(self) -> dict[str, dict]:
        live: dict[str, dict] = {}
        if self.path.exists():
            with open(self.path, "rb") as f:
                for line in f:
                    try:
                        entry = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        continue   # a torn last line from a crash
                    if entry.get("op") == "put":
                        live[entry["k"]] = entry["i"]
                    elif entry.get("op") == "del":
                        live.pop(entry["k"], None)
        return live

    def open(self, live: dict[str, dict]) -> None:
        self.rewrite(live)

    def rewrite(self, live: dict[str, dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for k, rec in live.items():
                f.write(orjson.dumps({"op": "put", "k": k, "i": rec}) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        if self.fd is not None:
            os.close(self.fd)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self.lines = len(live)

    def put(self, key: str, rec: dict) -> None:
        self._write(orjson.dumps({"op": "put", "k": key, "i": rec}) + b"\n")

    def delete(self, key: str) -> None:
        self._write(orjson.dumps({"op": "del", "k": key}) + b"\n")

    def _write(self, data: bytes) -> None:
        os.write(self.fd, data)
        self.lines += 1

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class MockProvider(Provider):
    name = "mock"

    def __init__(self, config: dict | None = None):
        self.config_doc = config
        self.instances: dict[str, Instance] = {}
        self._notify = None
        self._followers: dict[str, list[asyncio.Future]] = {}
        self._used_ips: set[str] = set()
        self._next_ip = 0
        self.journal: Journal | None = None
        self.started_total = 0

    # ---- lifecycle of the provider ------------------------------------------------------

    async def start(self, ctx: ProviderContext) -> None:
        self.ctx = ctx
        self.cfg = MockConfig(self.config_doc if self.config_doc is not None else ctx.config)
        self.rng = random.Random(self.cfg.seed)
        self.loop = asyncio.get_running_loop()
        self.journal = Journal(Path(ctx.data_dir) / "mock" / "instances.jsonl")
        records = self.journal.load()
        for key, rec in records.items():
            inst = Instance.from_record(rec)
            self.instances[key] = inst
            if inst.ip:
                self._used_ips.add(inst.ip)
        self.journal.open({k: i.to_record() for k, i in self.instances.items()})
        doc = self.config_doc if self.config_doc is not None else ctx.config
        self.spot = SpotReclaimer(SpotConfig((doc or {}).get("spot")), Path(ctx.data_dir) / "mock",
                                  ctx.client, ctx.node_name, self._reclaim)
        self.spot.start({k: i.uid for k, i in self.instances.items()
                         if i.state not in ("Succeeded", "Failed")})
        now = clock().time()
        for inst in self.instances.values():
            if inst.due is not None:
                self._schedule(inst, inst.due - now)
        if self.instances:
            log.info("mock provider re-adopted %d instances", len(self.instances))

    async def close(self) -> None:
        if getattr(self, "spot", None) is not None:
            await self.spot.close()
        for inst in self.instances.values():
            if inst.timer is not None:
                inst.timer.cancel()
                inst.timer = None
        for futs in self._followers.values():
            for f in futs:
                if not f.done():
                    f.set_result(None)
        if self.journal is not None:
            self.journal.close()

    def notify_pods(self, callback) -> None:
        self._notify = callback

    # ---- pods ---------------------------------------------------------------------------

    async def create_pod(self, pod: dict) -> None:
        m, spec = pod["metadata"], pod.get("spec") or {}
        key = f"{m['namespace']}/{m['name']}"
        cur = self.instances.get(key)
        if cur is not None:
            if cur.uid == m.get("uid"):
                return          # already running: idempotent
            self._drop(cur)
        now = clock().time()
        requests = {}
        for c in spec.get("containers") or []:
            req = (c.get("resources") or {}).get("requests") or {}
            requests[c["name"]] = [cpu_millis(req["cpu"]) if "cpu" in req else 0,
                                   memory_bytes(req["memory"]) if "memory" in req else 0]
        inst = Instance(namespace=m["namespace"], name=m["name"], uid=m.get("uid"),
                        containers=[[c["name"], c.get("image", "")] for c in spec.get("containers") or []],
                        init_containers=[[c["name"], c.get("image", "")]
                                         for c in spec.get("initContainers") or []],
                        restart_policy=spec.get("restartPolicy", "Always"),
                        annotations={k[len(ANNOTATION):]: v for k, v in (m.get("annotations") or {}).items()
                                     if k.startswith(ANNOTATION)},
                        created=now, started=None, state="Pending", due=None, restarts=0,
                        exit_code=None, finished=None, ip=None, events=[], requests=requests,
                        last_exit=None)
        self.instances[key] = inst
        self._event(inst, now, "*", "scheduled on mock instance %s" % (inst.uid or "")[:8])
        delay = self._start_delay(inst)
        inst.due = now + delay
        self._save(inst)
        self._schedule(inst, delay)
        self.spot.watch(m)

    async def update_pod(self, pod: dict) -> None:
        m = pod["metadata"]
        inst = self.instances.get(f"{m['namespace']}/{m['name']}")
        if inst is None or inst.uid != m.get("uid"):
            return
        if (m.get("annotations") or {}).get(RECLAIM_ANNOTATION) == "true" and \
                inst.state not in ("Succeeded", "Failed"):
            self.spot.reclaim_now(m)
        images = {c["name"]: c.get("image", "") for c in (pod.get("spec") or {}).get("containers") or []}
        changed = False
        for c in inst.containers:
            if c[0] in images and images[c[0]] != c[1]:
                self._event(inst, clock().time(), c[0], f"image changed to {images[c[0]]}, restarting")
                c[1] = images[c[0]]
                changed = True
        if changed:
            self._save(inst)
            self._changed(inst)

    async def delete_pod(self, pod: dict, grace_period: int | None = None) -> dict | None:
        m = pod["metadata"]
        inst = self.instances.get(f"{m['namespace']}/{m['name']}")
        if inst is None or (m.get("uid") and inst.uid and inst.uid != m.get("uid")):
            return None
        if inst.state == "Running":          # simulated containers exit cleanly on SIGTERM
            now = clock().time()
            inst.last_exit = [0, "Completed", inst.running_at or inst.started or now, now]
            inst.state, inst.exit_code, inst.finished, inst.due = "Succeeded", 0, now, None
        final = self.status(inst)
        self._drop(inst)
        return final

    async def get_pod_status(self, namespace: str, name: str) -> dict | None:
        inst = self.instances.get(f"{namespace}/{name}")
        return self.status(inst) if inst is not None else None

    async def get_pod(self, namespace: str, name: str) -> dict | None:
        inst = self.instances.get(f"{namespace}/{name}")
        return self.pod_view(inst) if inst is not None else None

    async def list_pods(self) -> list[dict]:
        return [self.pod_view(i) for i in self.instances.values()]

    def pod_view(self, inst: Instance) -> dict:
        return {"metadata": {"namespace": inst.namespace, "name": inst.name, "uid": inst.uid},
                "spec": {"containers": [{"name": n, "image": img} for n, img in inst.containers],
                         "restartPolicy": inst.restart_policy},
                "status": self.status(inst)}

    # ---- the simulated lifecycle --------------------------------------------------------

    def _start_delay(self, inst: Instance) -> float:
        v = inst.annotations.get("start-delay-ms")
        if v is not None:
            try:
                return max(float(v), 0.0) / 1000.0
            except ValueError:
                pass
        return self.cfg.start_delay(self.rng)

    def _run_seconds(self, inst: Instance) -> float | None:
        v = inst.annotations.get("run-seconds")
        if v is not None:
            try:
                return max(float(v), 0.0)
            except ValueError:
                pass
        return self.cfg.run_seconds if self.cfg.mode == "finite" else None

    def _final_exit_code(self, inst: Instance) -> int:
        v = inst.annotations.get("exit-code")
        if v is not None:
            try:
                return int(v)
            except ValueError:
                pass
        return 0 if self.cfg.outcome == "succeed" else 1

    def _schedule(self, inst: Instance, delay: float) -> None:
        """Run ``_due`` after ``delay`` seconds of workload time (skube.clock). Under a
        simulation clock whose speed can change, wake at least every second to re-check."""
        if inst.timer is not None:
            inst.timer.cancel()
        c = clock()
        real = delay / c.scale if c is not REAL else delay
        if c.path is not None:
            real = min(real, 1.0)
        if real <= 0:
            inst.timer = self.loop.call_soon(self._due, inst.key, inst.uid)
        else:
            inst.timer = self.loop.call_later(real, self._due, inst.key, inst.uid)

    def _due(self, key: str, uid: str | None) -> None:
        inst = self.instances.get(key)
        if inst is None or inst.uid != uid:
            return
        inst.timer = None
        if inst.due is not None and (left := inst.due - clock().time()) > 1e-3:
            self._schedule(inst, left)     # woke early: the simulation clock slowed down
            return
        at = inst.due or clock().time()   # transitions happen at their due time, even after a restart
        inst.due = None
        if inst.state in ("Pending", "Backoff"):
            self._start(inst, at)
        elif inst.state == "Running":
            self._exit(inst, at, self._final_exit_code(inst), "Completed")
        self._save(inst)
        self._changed(inst)

    def _start(self, inst: Instance, at: float) -> None:
        fail = inst.annotations.get("fail-start") == "true" or \
            (self.cfg.failure_rate > 0 and self.rng.random() < self.cfg.failure_rate)
        if inst.ip is None:
            inst.ip = self._alloc_ip()
        attempt = inst.restarts
        if inst.state == "Pending":
            for n, img in inst.init_containers:
                self._event(inst, at, n, f"started {img}")
                self._event(inst, at, n, "exited with code 0")
        for n, img in inst.containers:
            self._event(inst, at, n, f"started {img}", attempt)
        if fail:
            for n, _ in inst.containers:
                self._event(inst, at, n, "simulated start failure: exited with code 1", attempt)
            inst.started = inst.started or at
            self._terminated(inst, at, 1, "Error")
            return
        inst.state = "Running"
        inst.started = inst.started or at
        inst.finished = None
        for n, _ in inst.containers:
            self._event(inst, at, n, "running", attempt)
        self.started_total += 1
        run = self._run_seconds(inst)
        if run is not None:
            inst.due = at + run
            self._schedule(inst, inst.due - clock().time())
        inst.exit_code = None
        inst.running_at = at

    def _exit(self, inst: Instance, at: float, code: int, reason: str) -> None:
        for n, _ in inst.containers:
            self._event(inst, at, n, f"exited with code {code}", inst.restarts)
        self._terminated(inst, at, code, "Completed" if code == 0 else "Error")

    def _terminated(self, inst: Instance, at: float, code: int, reason: str) -> None:
        policy = inst.restart_policy
        restart = policy == "Always" or (policy == "OnFailure" and code != 0)
        started_at = inst.running_at or at
        inst.last_exit = [code, reason, started_at, at]
        if restart:
            backoff = min(BACKOFF_INITIAL * (2 ** min(inst.restarts, 10)), BACKOFF_MAX)
            inst.restarts += 1
            inst.state = "Backoff"
            inst.due = at + backoff
            self._schedule(inst, inst.due - clock().time())
        else:
            inst.state = "Succeeded" if code == 0 else "Failed"
            inst.exit_code = code
            inst.finished = at
            inst.due = None
            self._release_ip(inst)

    def _reclaim(self, key: str, uid: str) -> None:
        """The spot instance of ``key`` is reclaimed: it stops, and the pod fails."""
        inst = self.instances.get(key)
        if inst is None or inst.uid != uid or inst.state in ("Succeeded", "Failed"):
            return
        now = clock().time()
        if inst.timer is not None:
            inst.timer.cancel()
            inst.timer = None
        for n, _ in inst.containers:
            self._event(inst, now, n, "spot instance reclaimed: killed", inst.restarts)
        inst.last_exit = [137, "Error", inst.running_at or now, now]
        inst.state, inst.exit_code, inst.finished, inst.due = "Failed", 137, now, None
        inst.annotations[RECLAIMED] = rfc3339(now)
        self._release_ip(inst)
        self._save(inst)
        self._changed(inst)

    def _drop(self, inst: Instance) -> None:
        self.spot.forget(inst.key)
        if inst.timer is not None:
            inst.timer.cancel()
            inst.timer = None
        self._release_ip(inst)
        self.instances.pop(inst.key, None)
        self.journal.delete(inst.key)
        self._wake(inst.key)

    def _event(self, inst: Instance, at: float, container: str, text: str, attempt: int = 0) -> None:
        inst.events.append([at, container, attempt, text])
        if len(inst.events) > MAX_LOG_EVENTS:
            del inst.events[: len(inst.events) - MAX_LOG_EVENTS]

    def _save(self, inst: Instance) -> None:
        self.journal.put(inst.key, inst.to_record())
        if self.journal.lines > 4 * len(self.instances) + 20000:
            self.journal.rewrite({k: i.to_record() for k, i in self.instances.items()})

    def _changed(self, inst: Instance) -> None:
        self._wake(inst.key)
        if self._notify is not None:
            try:
                self._notify(self.pod_view(inst))
            except Exception:  # noqa: BLE001
                log.exception("pod notification failed")

    def _wake(self, key: str) -> None:
        for f in self._followers.pop(key, ()):
            if not f.done():
                f.set_result(None)

    # ---- IPs ----------------------------------------------------------------------------

    def _alloc_ip(self) -> str:
        net = self.cfg.pod_cidr
        size = net.num_addresses - 2
        for _ in range(size):
            self._next_ip = self._next_ip % size + 1
            ip = str(net.network_address + self._next_ip)
            if ip not in self._used_ips:
                self._used_ips.add(ip)
                return ip
        raise RuntimeError(f"mock pod CIDR {net} is exhausted")

    def _release_ip(self, inst: Instance) -> None:
        if inst.ip:
            self._used_ips.discard(inst.ip)

    # ---- status -------------------------------------------------------------------------

    def status(self, inst: Instance) -> dict:
        """The pod status a kubelet would report for this instance."""
        st: dict = {"startTime": rfc3339(inst.created)}
        phase = {"Pending": "Pending", "Running": "Running", "Backoff": "Running",
                 "Succeeded": "Succeeded", "Failed": "Failed"}[inst.state]
        if inst.state == "Backoff" and inst.started is None:
            phase = "Pending"
        st["phase"] = phase
        if inst.ip and inst.state not in ("Succeeded", "Failed"):
            st["podIP"] = inst.ip
            st["podIPs"] = [{"ip": inst.ip}]
        uid8 = (inst.uid or "0" * 8).replace("-", "")[:12]
        statuses = []
        last = inst.last_exit
        for n, img in inst.containers:
            cs: dict = {"name": n, "image": img, "imageID": _image_id(img),
                        "restartCount": inst.restarts, "ready": False, "started": False}
            if inst.state != "Pending" or inst.started:
                cs["containerID"] = f"mock://{uid8}-{n}-{inst.restarts}"
            if inst.state == "Pending":
                cs["state"] = {"waiting": {"reason": "ContainerCreating"}}
            elif inst.state == "Running":
                cs["state"] = {"running": {"startedAt": rfc3339(inst.running_at or inst.started)}}
                cs["ready"] = cs["started"] = True
            elif inst.state == "Backoff":
                cs["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                           "message": f"back-off restarting failed container {n} "
                                                      f"in pod {inst.name}_{inst.namespace}({inst.uid})"}}
            else:
                code, reason, started_at, finished_at = last
                cs["state"] = {"terminated": {"exitCode": code, "reason": reason,
                                              "startedAt": rfc3339(started_at),
                                              "finishedAt": rfc3339(finished_at),
                                              "containerID": cs.get("containerID", "")}}
            if last is not None and inst.state in ("Running", "Backoff"):
                code, reason, started_at, finished_at = last
                cs["lastState"] = {"terminated": {"exitCode": code, "reason": reason,
                                                  "startedAt": rfc3339(started_at),
                                                  "finishedAt": rfc3339(finished_at)}}
            else:
                cs["lastState"] = {}
            statuses.append(cs)
        st["containerStatuses"] = statuses
        if inst.annotations.get(RECLAIMED):
            st = reclaimed_status(st, inst.annotations[RECLAIMED])
        if inst.init_containers:
            init_done = inst.state != "Pending"
            st["initContainerStatuses"] = [
                {"name": n, "image": img, "imageID": _image_id(img), "restartCount": 0,
                 "ready": init_done, "started": False, "lastState": {},
                 "state": ({"terminated": {"exitCode": 0, "reason": "Completed",
                                           "startedAt": rfc3339(inst.started or inst.created),
                                           "finishedAt": rfc3339(inst.started or inst.created)}}
                           if init_done else {"waiting": {"reason": "PodInitializing"}})}
                for n, img in inst.init_containers]
        return st

    # ---- logs and stats -----------------------------------------------------------------

    async def logs(self, namespace: str, name: str, container: str, opts: LogOptions) -> AsyncIterator[bytes]:
        key = f"{namespace}/{name}"
        inst = self.instances.get(key)
        if inst is None:
            raise PodNotFound(f"pod {namespace}/{name} is not running on this node")
        names = [c[0] for c in inst.containers] + [c[0] for c in inst.init_containers]
        if container not in names:
            raise PodNotFound(f'container "{container}" in pod "{name}" not found')
        is_init = container not in [c[0] for c in inst.containers]
        if inst.state == "Pending" and not is_init:
            raise BadRequest(f'container "{container}" in pod "{name}" is waiting to start: '
                             f"ContainerCreating")
        if opts.previous:
            if inst.restarts == 0 or is_init:
                raise BadRequest(f'previous terminated container "{container}" in pod "{name}" '
                                 f"not found")
            attempt = inst.restarts - 1
        else:
            attempt = 0 if is_init else inst.restarts
        since = None
        if opts.since_seconds is not None:
            since = clock().time() - opts.since_seconds
        elif opts.since_time:
            since = parse_rfc3339(opts.since_time)
        return self._log_stream(inst, container, attempt, opts, since)

    def _lines(self, inst: Instance, container: str, attempt: int, start: int,
               since: float | None, timestamps: bool) -> tuple[list[bytes], int]:
        out = []
        evs = inst.events
        for i in range(start, len(evs)):
            at, c, att, text = evs[i]
            if c != container or att != attempt or (since is not None and at < since):
                continue
            line = f"{text}\n"
            if timestamps:
                line = f"{rfc3339(at, nano=True)} {line}"
            out.append(line.encode())
        return out, len(evs)

    async def _log_stream(self, inst: Instance, container: str, attempt: int, opts: LogOptions,
                          since: float | None) -> AsyncIterator[bytes]:
        lines, pos = self._lines(inst, container, attempt, 0, since, opts.timestamps)
        if opts.tail_lines is not None:
            lines = lines[-opts.tail_lines:] if opts.tail_lines > 0 else []
        budget = opts.limit_bytes
        for line in lines:
            if budget is not None:
                if budget <= 0:
                    return
                line = line[:budget]
                budget -= len(line)
            yield line
        if not opts.follow or opts.previous:
            return
        key, uid = inst.key, inst.uid
        while True:
            cur = self.instances.get(key)
            if cur is None or cur.uid != uid or cur.restarts != attempt \
                    or cur.state in ("Succeeded", "Failed"):
                # the container this stream follows has ended
                if cur is not None and cur.uid == uid and pos < len(cur.events):
                    more, pos = self._lines(cur, container, attempt, pos, since, opts.timestamps)
                    for line in more:
                        yield line
                return
            fut = self.loop.create_future()
            self._followers.setdefault(key, []).append(fut)
            await fut
            cur = self.instances.get(key)
            if cur is None or cur.uid != uid:
                return
            if pos > len(cur.events):      # trimmed
                pos = max(0, len(cur.events) - 1)
            more, pos = self._lines(cur, container, attempt, pos, since, opts.timestamps)
            for line in more:
                if budget is not None:
                    if budget <= 0:
                        return
                    line = line[:budget]
                    budget -= len(line)
                yield line

    async def attach(self, namespace: str, name: str, container: str, *, stdin: bool,
                     stdout: bool, stderr: bool, tty: bool, streams) -> None:
        """A simulated main process: it echoes the client's stdin to stdout and streams the
        container's synthetic log lines from now on, until the instance stops running, the
        client's input ends or the client goes away."""
        inst = self.instances.get(f"{namespace}/{name}")
        if inst is None:
            raise PodNotFound(f"pod {namespace}/{name} is not running on this node")
        if container not in [c[0] for c in inst.containers]:
            raise PodNotFound(f'container "{container}" in pod "{name}" not found')
        if inst.state != "Running":
            raise BadRequest(f"cannot attach to a container in a completed pod; current phase is "
                             f"{inst.state}" if inst.state in ("Succeeded", "Failed") else
                             f'container "{container}" in pod "{name}" is not running')
        lines = self._log_stream(inst, container, inst.restarts, LogOptions(follow=True, tail_lines=0),
                                 None)

        async def echo():
            while (chunk := await streams.read_stdin()) is not None:
                await streams.write_stdout(chunk)

        async def follow():
            async for line in lines:
                await streams.write_stdout(line)

        try:
            await race(follow(), streams.disconnected.wait(), *((echo(),) if stdin else ()))
        finally:
            await lines.aclose()

    async def stats(self) -> dict:
        now = clock().time()
        ts = rfc3339(now)
        pods = []
        node_cpu = node_mem = 0
        for inst in self.instances.values():
            if inst.state != "Running":
                continue
            running_at = inst.running_at or inst.started or now
            containers = []
            pod_cpu = pod_mem = 0
            for n, _ in inst.containers:
                cpu_m, mem = (inst.requests or {}).get(n, [0, 0])
                nano_cores = max(cpu_m, 1) * 1_000_000 // 10          # 10% of the request
                mem_bytes = max(mem // 2, 8 * 1024 * 1024)              # half the request, ≥ 8 MiB
                pod_cpu += nano_cores
                pod_mem += mem_bytes
                containers.append({
                    "name": n, "startTime": rfc3339(running_at),
                    "cpu": {"time": ts, "usageNanoCores": nano_cores,
                            "usageCoreNanoSeconds": int(nano_cores * max(now - running_at, 0))},
                    "memory": {"time": ts, "workingSetBytes": mem_bytes, "usageBytes": mem_bytes,
                               "rssBytes": mem_bytes}})
            node_cpu += pod_cpu
            node_mem += pod_mem
            pods.append({
                "podRef": {"name": inst.name, "namespace": inst.namespace, "uid": inst.uid},
                "startTime": rfc3339(inst.created), "containers": containers,
                "cpu": {"time": ts, "usageNanoCores": pod_cpu,
                        "usageCoreNanoSeconds": int(pod_cpu * max(now - running_at, 0))},
                "memory": {"time": ts, "workingSetBytes": pod_mem, "usageBytes": pod_mem}})
        node = {"cpu": {"time": ts, "usageNanoCores": node_cpu},
                "memory": {"time": ts, "workingSetBytes": node_mem, "usageBytes": node_mem}}
        return {"node": node, "pods": pods}


def _image_id(image: str) -> str:
    return "mock://sha256:" + hashlib.sha256(image.encode()).hexdigest()


__all__ = ["MockProvider", "MockConfig", "Instance"]
