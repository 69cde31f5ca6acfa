"""Pod instances: one sandbox plus its containers, supervised the way kubelet does it.

:class:`InstanceManager` is the runtime's entry point: ``create(pod)``, ``delete(uid,
grace)``, ``status(uid)``, ``logs(…)``, ``exec(…)``, ``attach(…)``, ``stats(uid)``. Each
instance has one asyncio supervisor task (no thread, no process in Python): init containers
run strictly in order, then the app containers start in order; exits are noticed through a
pidfd of each container's conmon monitor; restarts follow restartPolicy with kubelet's
CrashLoopBackOff. Init containers with ``restartPolicy: Always`` are sidecars (KEP-753): the
next init container starts once the sidecar has started (its startupProbe passed), sidecars
are restarted whenever they exit, and are stopped after the app containers, in reverse order.
State is persisted in ``<data_dir>/pods/<uid>/state.json`` so a new manager (a restarted
skube) re-adopts running containers, their logs and the exit codes of those that ended.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

from skube.aio import wait_set
from skube.runtime import cgroups, logs as logfmt
from skube.runtime.oci import ConfigError, ContainerContext, Mount, build_spec, check_supported, qos_class
from skube.runtime.probes import READINESS, STARTUP, PodProber
from skube.runtime.runc import AttachHandle, ExecHandle, Runc, RuncError, pid_alive, wait_pid
from skube.runtime.sandbox import (oom_score_floor, NetworkConfig, SandboxError, SandboxManager,
                                   SandboxState)

log = logging.getLogger(__name__)

BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0
DEFAULT_GRACE = 30
MAX_TERMINATION_MESSAGE = 4096


def rfc3339(t: float | None) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


SANDBOX_CHECK = 2.0     # seconds between looks at a pod's sandbox (holder alive, netns there)


class Backoff:
    """kubelet's flowcontrol.Backoff: per key, 10 s doubling to 5 min; an entry whose last
    update is more than 2 × max (10 min) old starts over."""

    def __init__(self, initial: float = BACKOFF_INITIAL, maximum: float = BACKOFF_MAX,
                 entries: dict | None = None):
        self.initial, self.maximum = initial, maximum
        self.entries: dict[str, list[float]] = entries or {}     # key -> [delay, last_update]

    def _expired(self, key: str, event: float) -> bool:
        e = self.entries.get(key)
        return e is None or event - e[1] > 2 * self.maximum

    def next(self, key: str, event: float) -> float:
        """Record a restart at ``event``; the delay the *following* restart will need."""
        if self._expired(key, event):
            self.entries[key] = [self.initial, event]
        else:
            e = self.entries[key]
            e[0], e[1] = min(e[0] * 2, self.maximum), event
        return self.entries[key][0]

    def in_backoff(self, key: str, finished_at: float, now: float) -> float:
        """Seconds still to wait before restarting (0: restart now) — IsInBackOffSince."""
        e = self.entries.get(key)
        if e is None or self._expired(key, now):
            return 0.0
        left = e[0] - (now - finished_at)
        return max(0.0, left)


@dataclass
class Prepared:
    """What the image/volume layer hands the runtime for one container attempt."""
    rootfs: Path
    image_config: dict = field(default_factory=dict)
    mounts: list[Mount] = field(default_factory=list)
    resolved_env: dict = field(default_factory=dict)
    env_from: list = field(default_factory=list)
    image_id: str = ""


# prepare(pod, container, container_dir) -> Prepared
PrepareFn = Callable[[dict, dict, Path], Awaitable[Prepared]]


@dataclass
class ContainerRecord:
    name: str
    init: bool = False
    image: str = ""
    image_id: str = ""
    restart_count: int = 0
    cid: str = ""
    pid: int = 0
    monitor_pid: int = 0
    state: str = "waiting"             # waiting | running | terminated
    reason: str = "ContainerCreating"
    message: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    last_state: dict | None = None
    log_path: str = ""
    probe_kill: str = ""               # set when a liveness/startup probe failure killed it

    def terminated_dict(self) -> dict:
        d = {"exitCode": self.exit_code, "reason": self.reason,
             "startedAt": rfc3339(self.started_at), "finishedAt": rfc3339(self.finished_at),
             "containerID": f"runc://{self.cid}" if self.cid else None}
        if self.message:
            d["message"] = self.message
        return {k: v for k, v in d.items() if v is not None}


class Instance:
    """One pod instance. Created and driven by :class:`InstanceManager`."""

    def __init__(self, mgr: "InstanceManager", pod: dict):
        self.mgr = mgr
        self.pod = pod
        self.uid: str = pod["metadata"]["uid"]
        self.dir = mgr.sandboxes.pod_dir(self.uid)
        spec = pod.get("spec") or {}
        self.records: dict[str, ContainerRecord] = {}
        for c in spec.get("initContainers") or []:
            self.records[c["name"]] = ContainerRecord(c["name"], init=True, image=c.get("image", ""))
        for c in spec.get("containers") or []:
            self.records[c["name"]] = ContainerRecord(c["name"], image=c.get("image", ""))
        self.sandbox: SandboxState | None = None
        self.phase = "Pending"
        self.reason = ""
        self.message = ""
        self.start_time: float | None = None
        self.initialized = not spec.get("initContainers")
        self.deleting = False
        self.finishing = False         # app containers are done: sidecars are being stopped
        self.backoff = Backoff()
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._exits: dict[str, asyncio.Task] = {}
        self._inflight: asyncio.Task | None = None   # sandbox/container creation (shielded)
        self.recovered = False         # loaded from disk: a crash may have cut a create short
        sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
        self.sidecars = {c["name"] for c in sidecars}     # restartPolicy: Always init containers
        self.prober = PodProber(self, list(spec.get("containers") or []) + sidecars)

    # ---- persistence ------------------------------------------------------------------

    def save(self) -> None:
        doc = {"pod": self.pod, "sandbox": self.sandbox.to_dict() if self.sandbox else None,
               "records": [asdict(r) for r in self.records.values()], "phase": self.phase,
               "reason": self.reason, "message": self.message, "start_time": self.start_time,
               "initialized": self.initialized, "deleting": self.deleting,
               "backoff": self.backoff.entries}
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / "state.json.tmp"
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.dir / "state.json")

    @classmethod
    def load(cls, mgr: "InstanceManager", path: Path) -> "Instance":
        doc = json.loads(path.read_text())
        inst = cls(mgr, doc["pod"])
        inst.sandbox = SandboxState.from_dict(doc["sandbox"]) if doc.get("sandbox") else None
        inst.records = {r["name"]: ContainerRecord(**r) for r in doc["records"]}
        inst.phase, inst.reason, inst.message = doc["phase"], doc["reason"], doc["message"]
        inst.start_time, inst.initialized = doc["start_time"], doc["initialized"]
        inst.deleting = doc.get("deleting", False)
        inst.backoff = Backoff(entries=doc.get("backoff") or {})
        inst.recovered = True
        return inst

    def _changed(self) -> None:
        self.save()
        self.mgr._notify(self)

    def event(self, etype: str, reason: str, message: str) -> None:
        """Record an Event of the pod (the kubelet's reasons and messages)."""
        self.mgr._event(self, etype, reason, message)

    # ---- spec helpers -----------------------------------------------------------------

    def _spec_of(self, name: str) -> dict:
        spec = self.pod.get("spec") or {}
        for c in list(spec.get("initContainers") or []) + list(spec.get("containers") or []):
            if c["name"] == name:
                return c
        raise KeyError(name)

    @property
    def restart_policy(self) -> str:
        return (self.pod.get("spec") or {}).get("restartPolicy") or "Always"

    def will_restart(self, name: str) -> bool:
        """Whether ``name`` is restarted when it exits (sidecars always, until the pod ends)."""
        if name in self.sidecars:
            return not (self.finishing or self.deleting)
        return self.restart_policy != "Never"

    def _grace(self) -> float:
        return (self.pod.get("spec") or {}).get("terminationGracePeriodSeconds", DEFAULT_GRACE)

    def _container_dir(self, name: str) -> Path:
        return self.dir / "containers" / name

    def log_path(self, name: str, restart_count: int) -> Path:
        return self.dir / "logs" / name / f"{restart_count}.log"

    # ---- supervision ------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._supervise())
        self.prober.start()

    async def detach(self) -> None:
        """Stop supervising (the containers keep running)."""
        await self.prober.stop()
        for t in [self._task, *self._exits.values()]:
            if t and not t.done():
                t.cancel()
        for t in [self._task, *self._exits.values()]:
            if t:
                try:
                    await t
                except (asyncio.CancelledError, Exception):
                    pass
        self._exits.clear()

    def _watch(self, rec: ContainerRecord) -> None:
        """Watch the container's monitor exit via pidfd (an event-loop reader, no thread)."""
        async def waiter(monitor_pid: int, cid: str):
            await wait_pid(monitor_pid)
            return cid
        old = self._exits.get(rec.name)
        if old and not old.done():
            old.cancel()
        t = asyncio.get_running_loop().create_task(waiter(rec.monitor_pid, rec.cid))
        t.add_done_callback(lambda _t: self._wake.set())
        self._exits[rec.name] = t

    async def _supervise(self) -> None:
        try:
            if self.sandbox is None:
                try:
                    check_supported(self.pod)
                    self.start_time = self.start_time or time.time()
                    if self.recovered:      # whatever a create cut short by a crash left
                        try:
                            await self.mgr.sandboxes.destroy(self.mgr.sandboxes.planned(self.pod))
                        except SandboxError as e:
                            log.warning("leftover sandbox of pod %s: %s", self.uid, e)
                    self.sandbox = await self._shielded(self.mgr.sandboxes.create(self.pod))
                    self._changed()
                except ConfigError as e:
                    self._fail_pod(e.reason, e.message)
                    return
                except Exception as e:
                    log.exception("sandbox of pod %s", self.uid)
                    self._fail_pod("SandboxCreateFailed", str(e))
                    return
            # re-adopt running containers (after a restart of skube)
            for rec in self.records.values():
                if rec.state == "running":
                    if self._monitor_alive(rec):
                        self._watch(rec)
                    else:
                        await self._collect(rec)
                elif rec.state == "waiting" and rec.cid and self.recovered:
                    await self._discard(rec)
            while not self.deleting:
                self._wake.clear()
                if self._sandbox_dead():
                    await self._recreate_sandbox()
                    if self.sandbox is None:
                        return
                delay = await self._step()
                if self.phase in ("Succeeded", "Failed"):
                    await self._stop_sidecars()
                    self._changed()
                    return
                # the sandbox's health is looked at every SANDBOX_CHECK seconds (kubelet: PLEG)
                timeout = SANDBOX_CHECK if delay is None else min(max(delay, 0.01), SANDBOX_CHECK)
                await wait_set(self._wake, timeout)
                for name, t in list(self._exits.items()):
                    if t.done():
                        del self._exits[name]
                        rec = self.records[name]
                        if rec.state == "running" and not self.deleting:
                            await self._collect(rec)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("supervisor of pod %s crashed", self.uid)

    def _sandbox_dead(self) -> bool:
        """The pod's holder process has exited or its network namespace is gone."""
        sb = self.sandbox
        return sb is not None and (not Path(sb.netns_path).exists() or
                                   not sb.holder_pid or not pid_alive(sb.holder_pid))

    async def _recreate_sandbox(self) -> None:
        """As the kubelet does when a pod's sandbox died: kill its containers, make a new
        sandbox (the pod IP may change), then start the init containers again from the
        first and restart the others (their restartCount goes up). With restartPolicy
        Never no new sandbox is made once containers have run."""
        log.warning("sandbox of pod %s died: recreating it", self.uid)
        await self.prober.stop()
        for t in self._exits.values():
            t.cancel()
        self._exits.clear()
        running = [r for r in self.records.values() if r.state == "running"]
        await asyncio.gather(*(self._terminate(r, 0) for r in running))
        for rec in running:
            await self._collect(rec)
        try:
            await self.mgr.sandboxes.destroy(self.sandbox)
        except SandboxError as e:
            log.warning("tearing down the dead sandbox of pod %s: %s", self.uid, e)
        self.sandbox = None
        self._changed()
        if self.restart_policy == "Never" and any(r.started_at for r in self.records.values()):
            self._update_phase()
            if self.phase not in ("Succeeded", "Failed"):
                self._fail_pod("Failed", "the pod's sandbox died")
            return
        try:
            self.sandbox = await self._shielded(self.mgr.sandboxes.create(self.pod))
        except Exception as e:
            log.exception("sandbox of pod %s", self.uid)
            self._fail_pod("SandboxCreateFailed", str(e))
            return
        if any(r.init and r.name not in self.sidecars for r in self.records.values()) or self.sidecars:
            self.initialized = False
        for rec in self.records.values():
            if rec.init and rec.name not in self.sidecars and rec.state == "terminated" \
                    and rec.exit_code == 0:     # ran to completion in the old sandbox: again
                rec.last_state = {"terminated": rec.terminated_dict()}
                rec.state, rec.reason, rec.message = "waiting", "PodInitializing", ""
        self._changed()
        self.prober.start()

    def _monitor_alive(self, rec: ContainerRecord) -> bool:
        if not rec.monitor_pid or not pid_alive(rec.monitor_pid):
            return False
        try:
            cmd = Path(f"/proc/{rec.monitor_pid}/cmdline").read_bytes()
        except OSError:
            return False
        return rec.cid.encode() in cmd

    def _fail_pod(self, reason: str, message: str) -> None:
        self.phase, self.reason, self.message = "Failed", reason, message
        self._changed()

    def _should_restart(self, rec: ContainerRecord) -> bool:
        if rec.name in self.sidecars:
            return self.will_restart(rec.name)
        if rec.init:
            return rec.exit_code != 0 and self.restart_policy != "Never"
        if rec.probe_kill and self.restart_policy != "Never":
            return True      # killed for a failed liveness/startup probe: restart whatever the code
        if self.restart_policy == "Always":
            return True
        if self.restart_policy == "OnFailure":
            return rec.exit_code != 0
        return False

    async def _step(self) -> float | None:
        """Advance the pod one step; returns how long until the next step is due."""
        now = time.time()
        if not self.initialized:
            for rec in self.records.values():
                if not rec.init:
                    continue
                if rec.name in self.sidecars:
                    if rec.state == "running":
                        if not self._started(rec):
                            return None     # the next one waits for its startupProbe
                        continue
                    wait = self._backoff_wait(rec, now)
                    if wait:
                        return wait
                    await self._start(rec)
                    return None if rec.state == "running" and not self._started(rec) else 0
                if rec.state == "terminated" and rec.exit_code == 0:
                    continue
                if rec.state == "running":
                    return None
                if rec.state == "terminated" and not self._should_restart(rec):
                    await self._stop_sidecars()     # terminal only once nothing runs any more
                    self._fail_pod("Failed", f"init container {rec.name} failed")
                    return None
                wait = self._backoff_wait(rec, now)
                if wait:
                    return wait
                await self._start(rec)
                return None if rec.state == "running" else 0
            self.initialized = True
            self._changed()
        pending = None
        for rec in self.records.values():
            if (rec.init and rec.name not in self.sidecars) or rec.state == "running":
                continue
            if rec.state == "terminated" and not self._should_restart(rec):
                continue
            if rec.state == "waiting" and rec.reason in ("CreateContainerConfigError",):
                continue
            wait = self._backoff_wait(rec, now)
            if wait:
                pending = wait if pending is None else min(pending, wait)
                continue
            await self._start(rec)
        apps = [r for r in self.records.values() if not r.init]
        if all(r.state == "terminated" and not self._should_restart(r) for r in apps) and \
                any(self.records[n].state == "running" for n in self.sidecars):
            await self._stop_sidecars()     # the pod is done: its sidecars end after the apps
        self._update_phase()
        return pending

    def _started(self, rec: ContainerRecord) -> bool:
        """Running and past its startupProbe (if it has one)."""
        cp = self.prober.get(rec.name)
        return cp.started(rec) if cp else rec.state == "running"

    async def _stop_sidecars(self, deadline: float | None = None) -> None:
        """Stop the running sidecars one after another in reverse start order, each with
        what is left of the grace period (the pod's, from now, unless ``deadline``)."""
        self.finishing = True
        if deadline is None:
            deadline = time.monotonic() + self._grace()
        for name in reversed([n for n in self.records if n in self.sidecars]):
            rec = self.records[name]
            if rec.state != "running":
                continue
            t = self._exits.pop(name, None)
            if t:
                t.cancel()
            await self._terminate(rec, max(0.0, deadline - time.monotonic()))
            await self._collect(rec)

    def _backoff_wait(self, rec: ContainerRecord, now: float) -> float:
        """0 to start now, else the remaining CrashLoopBackOff (status set accordingly)."""
        if rec.finished_at is None and rec.last_state is None:
            return 0.0     # never ran: no back-off
        finished = rec.finished_at or now
        key = f"{self.uid}/{rec.name}"
        left = self.backoff.in_backoff(key, finished, now)
        if left > 0 and rec.state == "waiting" and rec.reason.startswith("CreateContainer"):
            return left       # failed creates keep their reason while waiting to retry
        if left > 0:
            if rec.reason != "CrashLoopBackOff" or rec.state != "waiting":
                if rec.state == "terminated":
                    rec.last_state = {"terminated": rec.terminated_dict()}
                rec.state, rec.reason = "waiting", "CrashLoopBackOff"
                meta = self.pod["metadata"]
                rec.message = (f"back-off {int(self.backoff.entries[key][0])}s restarting failed "
                               f"container={rec.name} pod={meta['name']}_{meta.get('namespace', '')}"
                               f"({self.uid})")
                self._changed()
                self.event("Warning", "BackOff",
                           f"Back-off restarting failed container {rec.name} in pod "
                           f"{meta['name']}_{meta.get('namespace', '')}({self.uid})")
            return left
        self.backoff.next(key, finished)
        return 0.0

    def _update_phase(self) -> None:
        apps = [r for r in self.records.values() if not r.init]
        old = self.phase
        if self.phase in ("Succeeded", "Failed"):
            return
        if all(r.state == "terminated" and not self._should_restart(r) for r in apps):
            self.phase = "Succeeded" if all(r.exit_code == 0 for r in apps) else "Failed"
        elif any(r.state == "running" for r in apps) or \
                any(r.restart_count > 0 or r.last_state for r in apps):
            self.phase = "Running"
        if self.phase != old:
            self._changed()

    async def _start(self, rec: ContainerRecord) -> None:
        """Prepare, create (under conmon) and start one attempt of ``rec``."""
        c = self._spec_of(rec.name)
        if rec.started_at is not None:      # the previous attempt ran: this is a restart
            if rec.state == "terminated":
                rec.last_state = {"terminated": rec.terminated_dict()}
            rec.restart_count += 1
        rec.probe_kill = ""
        attempt = rec.restart_count
        cid = f"{self.uid}-{rec.name}-{attempt}"
        cdir = self._container_dir(rec.name) / str(attempt)
        rec.cid, rec.state, rec.reason, rec.message = cid, "waiting", "ContainerCreating", ""
        rec.exit_code, rec.finished_at, rec.started_at = None, None, None
        rec.log_path = str(self.log_path(rec.name, attempt))
        self._changed()
        try:
            cdir.mkdir(parents=True, exist_ok=True)
            # shielded too: a prepare's threads and mounts cannot be cut short safely
            prep = await self._shielded(self.mgr.prepare(self.pod, c, cdir))
            rec.image_id = prep.image_id
            term = cdir / "termination-log"
            term.write_bytes(b"")
            sb = self.sandbox
            ctx = ContainerContext(
                rootfs=str(prep.rootfs), cgroups_path=cgroups.container_path(self.uid, cid),
                netns_path=sb.netns_path, ipc_ns_path=sb.ns_path("ipc"),
                uts_ns_path=sb.ns_path("uts"),
                pid_ns_path=sb.ns_path("pid") if sb.share_pid else None,
                hostname=sb.hostname, hosts_path=f"{sb.dir}/hosts",
                resolv_path=f"{sb.dir}/resolv.conf", hostname_path=f"{sb.dir}/hostname",
                shm_path=f"{sb.dir}/shm", termination_log_path=str(term), mounts=prep.mounts,
                resolved_env=prep.resolved_env, env_from=prep.env_from,
                passwd=_read_text(Path(prep.rootfs) / "etc/passwd"),
                group=_read_text(Path(prep.rootfs) / "etc/group"),
                memory_capacity=self.mgr.memory_capacity,
                cgroup_namespace=cgroups.version() == 2, oom_score_floor=oom_score_floor())
            spec = build_spec(self.pod, c, prep.image_config, ctx)
            bundle = cdir / "bundle"
            bundle.mkdir(exist_ok=True)
            (bundle / "config.json").write_text(json.dumps(spec))
        except ConfigError as e:
            rec.reason, rec.message = e.reason, e.message
            if e.reason != "CreateContainerConfigError":
                rec.reason = "CreateContainerError"
            self._changed()
            await self._retry_later(rec)
            return
        except Exception as e:
            rec.reason, rec.message = "CreateContainerError", str(e)
            self._changed()
            await self._retry_later(rec)
            return
        if not await self._shielded(self._run_container(rec, c, bundle, cdir)):
            await self._retry_later(rec)
            return
        self._watch(rec)
        self.prober.container_started(rec.name)

    async def _run_container(self, rec: ContainerRecord, c: dict, bundle: Path, cdir: Path) -> bool:
        """runc create (under conmon) and start; runs to its end even when the pod is
        deleted meanwhile (see :meth:`_shielded`), so :meth:`stop` sees a running container
        and never a half-made one. False (the record says why) if it failed."""
        cid = rec.cid
        try:
            await self.mgr.runc.delete(cid, force=True)
            mon = await self.mgr.runc.create_monitored(
                cid, bundle, log_path=rec.log_path, exit_dir=self.dir / "exits",
                persist_dir=cdir / "persist", stdin=bool(c.get("stdin")),
                stdin_once=bool(c.get("stdinOnce")), tty=bool(c.get("tty")))
            rec.pid, rec.monitor_pid = mon.pid, mon.monitor_pid
            self.save()
            self.event("Normal", "Created", f"Created container {rec.name}")
            await self.mgr.runc.start(cid)
        except RuncError as e:
            rec.reason, rec.message = "CreateContainerError", e.message
            self.event("Warning", "Failed", f"Error: {e.message}")
            await self._discard(rec)
            self._changed()
            return False
        rec.state, rec.reason, rec.started_at = "running", "", time.time()
        self._update_phase()    # the same status that shows it running says Running (as the kubelet)
        self._changed()
        self.event("Normal", "Started", f"Started container {rec.name}")
        return True

    async def _shielded(self, coro):
        """Await ``coro`` as a task that a cancellation of the caller does not cut short:
        :meth:`stop` waits for it, then tears down what it made."""
        self._inflight = asyncio.get_running_loop().create_task(coro)
        return await asyncio.shield(self._inflight)

    async def _discard(self, rec: ContainerRecord) -> None:
        """Remove what an unfinished create of ``rec``'s current attempt may have left: the
        container, its monitor (pid from conmon's own pid file) and its cgroup."""
        bundle = self._container_dir(rec.name) / str(rec.restart_count) / "bundle"
        try:
            mpid = int((bundle / "conmon.pid").read_text().strip())
        except (OSError, ValueError):
            mpid = rec.monitor_pid
        try:
            await self.mgr.runc.delete(rec.cid, force=True)
        except RuncError as e:
            log.warning("removing container %s: %s", rec.cid, e)
        if mpid and pid_alive(mpid):
            try:
                ours = rec.cid.encode() in Path(f"/proc/{mpid}/cmdline").read_bytes()
            except OSError:
                ours = False
            if ours and not await wait_pid(mpid, 5):
                try:
                    os.kill(mpid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                await wait_pid(mpid, 5)
        cgroups.remove(cgroups.container_path(self.uid, rec.cid))
        (self.dir / "exits" / rec.cid).unlink(missing_ok=True)

    async def _retry_later(self, rec: ContainerRecord) -> None:
        """A failed create is retried with the container's back-off (kubelet does the same)."""
        now = time.time()
        rec.finished_at = now
        key = f"{self.uid}/{rec.name}"
        self.backoff.next(key, now)
        self._wake.set()

    async def _collect(self, rec: ContainerRecord) -> None:
        """The container's monitor is gone: record how it ended and remove it from runc."""
        cid = rec.cid
        exit_file = self.dir / "exits" / cid
        code = None
        for _ in range(50):
            try:
                code = int(exit_file.read_text().strip())
                break
            except (FileNotFoundError, ValueError):
                await asyncio.sleep(0.01)
        cdir = self._container_dir(rec.name) / str(rec.restart_count)
        oom = cgroups.oom_kills(cgroups.container_path(self.uid, cid)) > 0 or \
            (cdir / "persist" / "oom").exists()
        rec.exit_code = code if code is not None else 137
        rec.finished_at = time.time()
        if oom:
            rec.reason = "OOMKilled"
        elif code is None:
            rec.reason, rec.message = "Error", "container exit status unknown"
        else:
            rec.reason = "Completed" if code == 0 else "Error"
        rec.state = "terminated"
        c = self._spec_of(rec.name)
        msg = _read_text(cdir / "termination-log", MAX_TERMINATION_MESSAGE) or ""
        if not msg and rec.exit_code != 0 and \
                c.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            tail = await logfmt.read_all(rec.log_path, logfmt.ReadOptions(tail_lines=80))
            msg = tail[-2048:].decode(errors="replace")
        if msg:
            rec.message = msg
        elif rec.probe_kill:
            rec.message = rec.probe_kill
        try:
            await self.mgr.runc.delete(cid, force=True)
        except RuncError:
            pass
        cgroups.remove(cgroups.container_path(self.uid, cid))
        exit_file.unlink(missing_ok=True)
        shutil.rmtree(cdir / "bundle" / "rootfs", ignore_errors=True)
        self._changed()

    # ---- termination ------------------------------------------------------------------

    async def stop(self, grace: float | None = None) -> None:
        """SIGTERM every running container, SIGKILL after ``grace`` seconds; then record."""
        self.deleting = True
        self.save()
        await self.prober.stop()
        if self._task and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self._inflight and not self._inflight.done():
            try:       # a create under way finishes first, then is torn down below
                await self._inflight
            except Exception:
                pass
        if self.sandbox is None and self._inflight and self._inflight.done() and \
                not self._inflight.cancelled() and not self._inflight.exception() and \
                isinstance(self._inflight.result(), SandboxState):
            self.sandbox = self._inflight.result()
            self.save()
        for rec in self.records.values():
            if rec.state == "waiting" and rec.cid and rec.reason == "ContainerCreating":
                await self._discard(rec)      # a create that stopped half-way (crash)
        if grace is None:
            grace = self._grace()
        deadline = time.monotonic() + grace
        # app (and regular init) containers first, then the sidecars in reverse order
        running = [r for r in self.records.values() if r.state == "running"
                   and r.name not in self.sidecars]
        await asyncio.gather(*(self._terminate(r, grace) for r in running))
        for t in self._exits.values():
            t.cancel()
        self._exits.clear()
        for rec in running:
            await self._collect(rec)
        await self._stop_sidecars(deadline)
        self._changed()

    async def _terminate(self, rec: ContainerRecord, grace: float) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns once the monitor is gone."""
        if self._monitor_alive(rec):
            self.event("Normal", "Killing", f"Stopping container {rec.name}")
            if grace > 0:
                await self.mgr.runc.kill(rec.cid, signal.SIGTERM)
                if await wait_pid(rec.monitor_pid, grace):
                    return
            await self.mgr.runc.kill(rec.cid, signal.SIGKILL, all=True)
            await wait_pid(rec.monitor_pid, 10)

    async def destroy(self) -> None:
        """Remove the sandbox and all files (after :meth:`stop`)."""
        # no recorded sandbox: one may still be half-made (a crash during its create)
        await self.mgr.sandboxes.destroy(self.sandbox or self.mgr.sandboxes.planned(self.pod))
        cgroups.remove(cgroups.pod_path(self.uid))
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- probes (see skube.runtime.probes) ----------------------------------------------

    def pod_ip(self) -> str:
        return self.sandbox.ip if self.sandbox else ""

    def probe_runc(self) -> Runc:
        return self.mgr.runc

    def probe_failed(self, name: str, kind: str, output: str) -> None:
        """A probe run failed: a Warning ``Unhealthy`` event, as the kubelet's prober."""
        self.event("Warning", "Unhealthy", f"{kind.capitalize()} probe failed: {output.strip()}")

    def probe_result_changed(self, name: str, kind: str, result: str) -> None:
        if kind in (READINESS, STARTUP) and not self.deleting:
            self._changed()
            if kind == STARTUP:
                self._wake.set()        # a sidecar's start may let the next init container go

    async def kill_for_probe(self, name: str, kind: str, cid: str, grace: float | None) -> None:
        """A liveness/startup probe failed: kill the container (the probe's grace, else the
        pod's); the supervisor then restarts it per restartPolicy, with its back-off."""
        rec = self.records.get(name)
        if rec is None or rec.cid != cid or rec.state != "running" or self.deleting:
            return
        msg = f"Container {name} failed {kind} probe"
        if self.will_restart(name):
            msg += ", will be restarted"
        log.info("pod %s: %s", self.uid, msg)
        rec.probe_kill = msg
        self.save()
        self.event("Normal", "Killing", msg)
        if grace is None:
            grace = (self.pod.get("spec") or {}).get("terminationGracePeriodSeconds", DEFAULT_GRACE)
        if not self._monitor_alive(rec):
            return
        if grace and grace > 0:
            await self.mgr.runc.kill(cid, signal.SIGTERM)
            if await wait_pid(rec.monitor_pid, grace):
                return
        if rec.cid == cid and self._monitor_alive(rec):
            await self.mgr.runc.kill(cid, signal.SIGKILL, all=True)

    # ---- status -----------------------------------------------------------------------

    def _container_status(self, rec: ContainerRecord) -> dict:
        if rec.state == "running":
            state = {"running": {"startedAt": rfc3339(rec.started_at)}}
        elif rec.state == "terminated":
            state = {"terminated": rec.terminated_dict()}
        else:
            w = {"reason": rec.reason}
            if rec.message:
                w["message"] = rec.message
            state = {"waiting": w}
        cp = self.prober.get(rec.name)
        started = cp.started(rec) if cp else rec.state == "running"
        if rec.init and rec.name not in self.sidecars:   # kubelet: ready once it succeeded
            ready = rec.state == "terminated" and rec.exit_code == 0
        else:
            ready = cp.ready(rec) if cp else rec.state == "running"
        st = {"name": rec.name, "state": state, "lastState": rec.last_state or {},
              "ready": ready, "restartCount": rec.restart_count,
              "image": rec.image, "imageID": rec.image_id, "started": started}
        if rec.cid and rec.state != "waiting":
            st["containerID"] = f"runc://{rec.cid}"
        elif rec.last_state and rec.last_state.get("terminated", {}).get("containerID"):
            st["containerID"] = rec.last_state["terminated"]["containerID"]
        return st

    def status(self) -> dict:
        """The pod status as the kubelet reports it."""
        inits = [r for r in self.records.values() if r.init]
        apps = [r for r in self.records.values() if not r.init]
        statuses = [self._container_status(r) for r in apps]
        init_statuses = [self._container_status(r) for r in inits]
        ready = bool(apps) and all(cs["ready"] for cs in statuses) and \
            all(cs["ready"] for cs in init_statuses if cs["name"] in self.sidecars)
        now = rfc3339(time.time())

        def cond(t, ok, reason=None):
            d = {"type": t, "status": "True" if ok else "False", "lastProbeTime": None,
                 "lastTransitionTime": rfc3339(self.start_time) or now}
            if reason and not ok:
                d["reason"] = reason
            return d
        initialized = self.initialized
        st = {"phase": self.phase,
              "conditions": [
                  cond("PodReadyToStartContainers", self.sandbox is not None),
                  cond("Initialized", initialized, "ContainersNotInitialized"),
                  cond("Ready", ready and initialized, "ContainersNotReady"),
                  cond("ContainersReady", ready and initialized, "ContainersNotReady")],
              "containerStatuses": statuses,
              "qosClass": qos_class(self.pod)}
        if inits:
            st["initContainerStatuses"] = init_statuses
        if self.start_time:
            st["startTime"] = rfc3339(self.start_time)
        if self.sandbox and self.sandbox.ip:
            st["podIP"] = self.sandbox.ip
            st["podIPs"] = [{"ip": self.sandbox.ip}]
        if self.reason:
            st["reason"] = self.reason
        if self.message:
            st["message"] = self.message
        return st


def _read_text(p: Path, limit: int | None = None) -> str | None:
    try:
        with open(p, "rb") as f:
            return f.read(limit if limit else -1).decode(errors="replace")
    except OSError:
        return None


class InstanceManager:
    """All pod instances of this host; survives restarts through ``<data_dir>/pods``."""

    def __init__(self, data_dir: Path | str, prepare: PrepareFn, *,
                 network: NetworkConfig | None = None, memory_capacity: int = 0,
                 log_max_size: int = 10 * 1024 * 1024, log_max_files: int = 5,
                 on_change: Callable[[Instance], None] | None = None,
                 on_event: Callable[[Instance, str, str, str], None] | None = None):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.prepare = prepare
        self.runc = Runc(self.data_dir / "runc")
        self.sandboxes = SandboxManager(self.data_dir, self.runc, network)
        self.memory_capacity = memory_capacity or _mem_total()
        self.log_max_size, self.log_max_files = log_max_size, log_max_files
        self.on_change = on_change
        self.on_event = on_event      # (instance, type, reason, message): the pod's Events
        self.instances: dict[str, Instance] = {}
        self._rotator: asyncio.Task | None = None

    def _event(self, inst: Instance, etype: str, reason: str, message: str) -> None:
        if self.on_event:
            try:
                self.on_event(inst, etype, reason, message)
            except Exception:
                log.exception("on_event callback")

    def _notify(self, inst: Instance) -> None:
        if self.on_change:
            try:
                self.on_change(inst)
            except Exception:
                log.exception("on_change callback")

    async def start(self, rotate_every: float = 10.0) -> None:
        """Re-adopt the instances a previous manager left (running ones keep running)."""
        pods = self.data_dir / "pods"
        if pods.is_dir():
            for sf in sorted(pods.glob("*/state.json")):
                try:
                    inst = Instance.load(self, sf)
                except Exception:
                    log.exception("cannot load %s", sf)
                    continue
                self.instances[inst.uid] = inst
                if inst.deleting:
                    asyncio.get_running_loop().create_task(self.delete(inst.uid, 0))
                elif inst.phase not in ("Succeeded", "Failed"):
                    inst.start()
        self._rotator = asyncio.get_running_loop().create_task(self._rotate_loop(rotate_every))

    async def close(self) -> None:
        """Stop supervising; instances keep running and are re-adopted by the next manager."""
        if self._rotator:
            self._rotator.cancel()
        for inst in self.instances.values():
            await inst.detach()
            inst.save()

    async def create(self, pod: dict) -> Instance:
        """Start an instance for ``pod`` (idempotent per uid); returns at once."""
        uid = pod["metadata"]["uid"]
        inst = self.instances.get(uid)
        if inst is None:
            inst = Instance(self, pod)
            self.instances[uid] = inst
            inst.save()
            inst.start()
        return inst

    def get(self, uid: str) -> Instance | None:
        return self.instances.get(uid)

    def list(self) -> list[Instance]:
        return list(self.instances.values())

    def status(self, uid: str) -> dict | None:
        inst = self.instances.get(uid)
        return inst.status() if inst else None

    async def stop(self, uid: str, grace: float | None = None) -> None:
        """Terminate the containers (graceful), keep the instance's record and files."""
        inst = self.instances.get(uid)
        if inst:
            await inst.stop(grace)

    async def delete(self, uid: str, grace: float | None = None) -> None:
        """Terminate and remove everything of the instance; unknown uids are fine."""
        inst = self.instances.get(uid)
        if inst is None:
            return
        await inst.stop(grace)
        await inst.destroy()
        self.instances.pop(uid, None)

    def _record(self, uid: str, container: str) -> tuple[Instance, ContainerRecord]:
        inst = self.instances.get(uid)
        if inst is None or container not in inst.records:
            raise KeyError(f"{uid}/{container}")
        return inst, inst.records[container]

    def log_file(self, uid: str, container: str, previous: bool = False) -> Path | None:
        inst, rec = self._record(uid, container)
        n = rec.restart_count - (1 if previous else 0)
        if n < 0:
            return None
        p = inst.log_path(container, n)
        return p if p.exists() else None

    def logs(self, uid: str, container: str, opts: logfmt.ReadOptions | None = None,
             previous: bool = False) -> AsyncIterator[bytes]:
        """The container's log (``previous``: the attempt before the current one)."""
        inst, rec = self._record(uid, container)
        path = self.log_file(uid, container, previous)
        if path is None:
            raise FileNotFoundError(f"no {'previous ' if previous else ''}log for {container}")
        cid = rec.cid
        done = lambda: previous or rec.cid != cid or rec.state != "running" \
            or uid not in self.instances
        return logfmt.read(path, opts or logfmt.ReadOptions(), done=done)

    async def exec(self, uid: str, container: str, command: list[str], tty: bool = False) -> ExecHandle:
        _, rec = self._record(uid, container)
        if rec.state != "running":
            raise RuncError(f"container {container} is not running")
        return await self.runc.exec(rec.cid, command, tty=tty)

    async def attach(self, uid: str, container: str) -> tuple[AttachHandle, dict]:
        """Attach to the running container's main process (its monitor's attach socket);
        also returns the container's spec (``stdin``, ``stdinOnce``, ``tty``)."""
        inst, rec = self._record(uid, container)
        if rec.state != "running" or not inst._monitor_alive(rec):
            raise RuncError(f"container {container} is not running")
        bundle = inst._container_dir(rec.name) / str(rec.restart_count) / "bundle"
        return await self.runc.attach(bundle), inst._spec_of(container)

    def stats(self, uid: str) -> dict:
        """Per-container cgroup usage: ``{name: {"cpu_ns", "memory_usage", "working_set", …}}``."""
        inst = self.instances[uid]
        out = {}
        for rec in inst.records.values():
            if rec.state == "running":
                s = cgroups.stats(cgroups.container_path(uid, rec.cid))
                if s:
                    out[rec.name] = s
        return out

    def rotate_logs(self) -> None:
        """Rotate every running container's log that outgrew ``log_max_size``."""
        for inst in self.instances.values():
            for rec in inst.records.values():
                if rec.state == "running" and rec.log_path and \
                        logfmt.rotate(rec.log_path, self.log_max_size, self.log_max_files):
                    try:
                        os.kill(rec.monitor_pid, signal.SIGUSR1)   # conmon reopens its log
                    except ProcessLookupError:
                        pass

    async def _rotate_loop(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                self.rotate_logs()
            except Exception:
                log.exception("log rotation")


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


__all__ = ["InstanceManager", "Instance", "ContainerRecord", "Prepared", "Backoff",
           "BACKOFF_INITIAL", "BACKOFF_MAX"]
