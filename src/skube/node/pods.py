"""Pod sync: make the provider run exactly the pods bound to this node, and write
their status back.

An Informer watches pods with ``spec.nodeName=NAME``; every change that matters
(metadata, spec, deletion — not our own status writes) and every provider
notification queues the pod's key on one WorkQueue, so one worker at a time
handles a pod while many pods proceed in parallel. ``sync(key)`` compares the
three views (the API's pod, the provider's instance, the last status written)
and does what is missing:

* no pod, but an instance → delete the instance (force-deleted pods, restarts);
* deletionTimestamp → ``provider.delete_pod`` within the grace period, then
  DELETE the pod with grace 0 and a uid precondition;
* Succeeded/Failed → nothing (not re-synced);
* pods a virtual node cannot honour → Failed (reason NotSupported) plus an Event;
* a pod whose ``eci-use-specs`` list has no size that fits it → Failed (reason
  InstanceSpecUnsatisfiable) plus an Event;
* no instance → create it; or, if the pod had already been started and its
  instance is lost, recreate it (restartPolicy Always/OnFailure) or mark it
  Failed (Never);
* otherwise → write the provider's status if it differs.

Providers that do not push status changes (``notify_pods`` not overridden) are
polled: every ``POLL`` seconds each live pod is queued, as virtual-kubelet does.
"""
from __future__ import annotations

import asyncio
import logging
import uuid

from ..api.defaults import compute_qos_class
from ..billing.specs import SpecUnsatisfiable
from ..providers.base import Provider
from ..client import (ApiError, BucketRateLimiter, Client, ExponentialFailureRateLimiter, Informer,
                      MaxOfRateLimiter, SharedInformer, WorkQueue, index_by_node_name, resource,
                      run_workers, split_key)
from .node import FIELD_MANAGER, now_rfc3339

log = logging.getLogger("skube.node.pods")

PODS = resource("v1", "pods", kind="Pod")
EVENTS = resource("v1", "events", kind="Event")
TERMINAL = ("Succeeded", "Failed")
CONDITION_TYPES = ("PodScheduled", "Initialized", "ContainersReady", "Ready")
RESYNC = 60.0
POLL = 5.0          # status poll of providers without notification (virtual-kubelet: 5 s)


def provider_notifies(provider) -> bool:
    """Whether ``provider`` pushes status changes (overrides ``notify_pods``)."""
    return getattr(type(provider), "notify_pods", None) is not Provider.notify_pods


def unsupported_reason(pod: dict) -> str | None:
    """Why a virtual node cannot run ``pod`` (None if it can)."""
    spec = pod.get("spec") or {}
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "DaemonSet" and ref.get("controller"):
            return f"pods of DaemonSet {ref.get('name')} cannot run on a virtual node"
    if spec.get("hostNetwork"):
        return "hostNetwork is not supported on a virtual node"
    if spec.get("hostPID"):
        return "hostPID is not supported on a virtual node"
    if spec.get("hostIPC"):
        return "hostIPC is not supported on a virtual node"
    for v in spec.get("volumes") or []:
        if "hostPath" in v:
            return f"volume {v.get('name')!r}: hostPath volumes are not supported on a virtual node"
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(group) or []:
            if ((c.get("securityContext") or {}).get("privileged")):
                return f"container {c.get('name')!r}: privileged containers are not supported on a virtual node"
    return None


def _interesting(old: dict, new: dict) -> bool:
    """An update worth a sync: spec, labels/annotations, deletion — not status."""
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    if old.get("spec") != new.get("spec"):
        return True
    for k in ("deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "uid"):
        if om.get(k) != nm.get(k):
            return True
    return False   # status-only changes are (mostly) our own writes; the resync re-checks them


def _strip_times(conds: list[dict]) -> list[tuple]:
    return sorted((c.get("type"), c.get("status"), c.get("reason"), c.get("message")) for c in conds or [])


def _comparable(status: dict) -> dict:
    s = dict(status)
    s["conditions"] = _strip_times(s.get("conditions") or [])
    return s


class PodController:
    """Pod sync for one node (see the module docstring)."""

    def __init__(self, client: Client, provider, node_name: str, *, host_ip: str = "127.0.0.1",
                 workers: int = 32, meter=None, poll_interval: float = POLL,
                 shared_pods: SharedInformer | None = None):
        self.client = client
        self.meter = meter              # billing: skube.billing.Meter (None: not metered)
        # instance sizes pods are run as (eci-use-specs); None on node-pool nodes (no per-pod sizing)
        self.spec_table = meter.table if meter is not None else None
        self.poll_interval = poll_interval
        self.provider = provider
        self.node_name = node_name
        self.host_ip = host_ip
        self.workers = workers
        # its own watch of spec.nodeName=NAME, or (in-process pool nodes) a view of one
        # pod informer shared by all nodes of the process
        self.informer = shared_pods.view(("node", index_by_node_name), node_name, f"pods on {node_name}") \
            if shared_pods is not None else \
            Informer(client, PODS, field_selector=f"spec.nodeName={node_name}", name=f"pods on {node_name}")
        limiter = MaxOfRateLimiter(ExponentialFailureRateLimiter(0.005, 60.0), BucketRateLimiter(50.0, 500))
        self.queue = WorkQueue(limiter, name=f"pods on {node_name}")
        self._written: dict[str, tuple[str, dict]] = {}   # key -> (uid, comparable status written)
        self._deleting: set[str] = set()
        self._meta_changed: set[str] = set()     # labels/annotations changed: tell the provider
        self._tasks: list[asyncio.Task] = []
        self.synced = asyncio.Event()
        self.stats = {"created": 0, "deleted": 0, "status_writes": 0, "failed_unsupported": 0,
                      "orphans_deleted": 0, "recreated": 0}

    # ---- wiring -------------------------------------------------------------------------

    async def start(self) -> None:
        self.informer.on_add(self._on_add)
        self.informer.on_update(self._on_update)
        self.informer.on_delete(self._on_delete)
        self.provider.notify_pods(self._on_provider)
        self.informer.start()
        await self.informer.wait_synced()
        await self.reconcile_orphans()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(run_workers(self.queue, self.sync, self.workers),
                                        name="pod sync workers"),
                       loop.create_task(self._resync_loop(), name="pod resync")]
        if not provider_notifies(self.provider):
            self._tasks.append(loop.create_task(self._resync_loop(self.poll_interval),
                                                name="pod status poll"))
        self.synced.set()

    async def stop(self) -> None:
        self.informer.stop()
        self.queue.shut_down()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _on_add(self, pod: dict) -> None:
        _slim(pod)
        if (pod.get("status") or {}).get("phase") in TERMINAL and \
                not (pod.get("metadata") or {}).get("deletionTimestamp"):
            return
        self.queue.add(_key(pod))

    def _on_update(self, old: dict, new: dict) -> None:
        _slim(new)
        if _interesting(old, new):
            om, nm = old.get("metadata") or {}, new.get("metadata") or {}
            if om.get("labels") != nm.get("labels") or om.get("annotations") != nm.get("annotations"):
                self._meta_changed.add(_key(new))
            self.queue.add(_key(new))

    def _on_delete(self, pod: dict) -> None:
        self._meta_changed.discard(_key(pod))
        self.queue.add(_key(pod))

    def _on_provider(self, pod: dict) -> None:
        self.queue.add(_key(pod))

    async def _resync_loop(self, every: float = RESYNC) -> None:
        """Queue every live pod each ``every`` seconds (resync; status poll)."""
        while True:
            await asyncio.sleep(every)
            for pod in self.informer.list():
                if (pod.get("status") or {}).get("phase") not in TERMINAL:
                    self.queue.add(_key(pod))

    async def reconcile_orphans(self) -> None:
        """At start: instances whose pod is gone (or is another pod by now) are deleted."""
        for inst in await self.provider.list_pods():
            m = inst["metadata"]
            key = f"{m['namespace']}/{m['name']}"
            pod = self.informer.get(key)
            if pod is None or pod["metadata"].get("uid") != m.get("uid"):
                log.info("deleting orphan instance %s (uid %s)", key, m.get("uid"))
                await self.provider.delete_pod(inst, 0)
                self._meter_stopped(inst)                                   # billing
                self.stats["orphans_deleted"] += 1
        if self.meter is not None:      # billing: close runs of instances gone while we were down
            self.meter.reconcile(i["metadata"].get("uid") for i in await self.provider.list_pods())

    # ---- sync ---------------------------------------------------------------------------

    async def sync(self, key: str):
        pod = self.informer.get(key)
        ns, name = split_key(key)
        inst = await self.provider.get_pod(ns, name)
        if pod is None:
            if inst is not None:
                await self.provider.delete_pod(inst, 0)
                self._meter_stopped(inst)                                   # billing
                self.stats["deleted"] += 1
            self._written.pop(key, None)
            return None
        m = pod["metadata"]
        uid = m.get("uid")
        if inst is not None and inst["metadata"].get("uid") != uid:
            await self.provider.delete_pod(inst, 0)     # a previous pod of the same name
            self._meter_stopped(inst)                                       # billing
            inst = None
        if m.get("deletionTimestamp"):
            return await self._delete(pod, inst)
        status = pod.get("status") or {}
        if status.get("phase") in TERMINAL:
            if inst is not None and (inst.get("status") or {}).get("phase") not in TERMINAL:
                await self.provider.delete_pod(inst, 0)
                self._meter_stopped(inst)                                   # billing
            return None
        reason = unsupported_reason(pod)
        if reason is not None:
            await self._fail(pod, "NotSupported", reason, event=True)
            self.stats["failed_unsupported"] += 1
            return None
        if inst is None:
            started_before = bool(status.get("startTime") or status.get("hostIP"))
            if not started_before and self.spec_table is not None:
                try:
                    self.spec_table.spec_for_pod(pod)       # eci-use-specs: a size that fits?
                except SpecUnsatisfiable as e:
                    await self._fail(pod, "InstanceSpecUnsatisfiable", str(e), event=True)
                    return None
            if started_before:
                self._meter_stopped(pod)          # billing: the lost instance's run ends
                if (pod.get("spec") or {}).get("restartPolicy", "Always") == "Never":
                    await self._fail(pod, "NotFound",
                                     "the pod's instance was lost by the provider and its "
                                     "restartPolicy is Never", event=True)
                    return None
                self.stats["recreated"] += 1
                log.info("recreating lost instance of %s", key)
            await self.provider.create_pod(pod)
            self.stats["created"] += 1
            await asyncio.sleep(0)   # let an instant start happen: one status write instead of two
            inst = await self.provider.get_pod(ns, name)
        else:
            if self._spec_changed(pod, inst) or key in self._meta_changed:
                self._meta_changed.discard(key)
                await self.provider.update_pod(pod)
        pstatus = (inst or {}).get("status")
        if pstatus is None:
            pstatus = await self.provider.get_pod_status(ns, name)
        if pstatus is not None:
            if self.meter is not None:            # billing: before the status write it explains
                self.meter.observe(pod, pstatus)
            await self._write_status(pod, pstatus)
        return None

    def _spec_changed(self, pod: dict, inst: dict) -> bool:
        want = {c["name"]: c.get("image") for c in (pod.get("spec") or {}).get("containers") or []}
        have = {c["name"]: c.get("image") for c in (inst.get("spec") or {}).get("containers") or []}
        return bool(have) and want != have

    async def _delete(self, pod: dict, inst: dict | None) -> None:
        m = pod["metadata"]
        key = _key(pod)
        if inst is not None:
            grace = m.get("deletionGracePeriodSeconds")
            if grace is None:
                grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            try:
                final = await asyncio.wait_for(self.provider.delete_pod(pod, grace), timeout=max(grace, 0) + 5)
            except asyncio.TimeoutError:
                log.warning("provider did not stop %s within its grace period (%ss)", key, grace)
                final = await self.provider.delete_pod(pod, 0)
            self._meter_stopped(pod)                                        # billing
            self.stats["deleted"] += 1
            # kubelet (1.27+): a deleted pod reaches Succeeded or Failed before it goes, so
            # Jobs and anyone watching see how its containers ended
            last = final or pod.get("status")
            if last and (pod.get("status") or {}).get("phase") not in TERMINAL:
                try:
                    await self._write_status(pod, terminal_status(last))
                except ApiError as e:
                    log.warning("terminal status of %s: %s", key, e)
        try:
            await self.client.delete(PODS, m["name"], m["namespace"], grace_period_seconds=0,
                                     preconditions={"uid": m["uid"]})
        except ApiError as e:
            if e.not_found or e.conflict:   # already gone, or a new pod of that name
                return
            raise
        self._written.pop(key, None)

    def _meter_stopped(self, obj: dict) -> None:
        """billing: the instance of ``obj`` was stopped (or lost) just now."""
        if self.meter is not None:
            self.meter.stopped(obj)

    async def _fail(self, pod: dict, reason: str, message: str, event: bool) -> None:
        m = pod["metadata"]
        now = now_rfc3339()
        status = dict(pod.get("status") or {})
        status.update(phase="Failed", reason=reason, message=message, hostIP=self.host_ip,
                      hostIPs=[{"ip": self.host_ip}])
        status.setdefault("startTime", now)
        status["conditions"] = self._conditions(pod, {"phase": "Failed"}, now)
        status["qosClass"] = status.get("qosClass") or compute_qos_class(pod)
        status["containerStatuses"] = [
            {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False,
             "restartCount": 0, "started": False,
             "state": {"terminated": {"exitCode": 128, "reason": reason, "message": message,
                                      "finishedAt": now}},
             "lastState": {}}
            for c in (pod.get("spec") or {}).get("containers") or []]
        await self.client.patch(PODS, m["name"], {"metadata": {"uid": m["uid"]}, "status": status},
                                m["namespace"], subresource="status", field_manager=FIELD_MANAGER)
        if event:
            await self.event(pod, "Warning", reason, message)

    async def event(self, pod: dict, type_: str, reason: str, message: str) -> None:
        m = pod["metadata"]
        now = now_rfc3339()
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{m['name']}.{uuid.uuid4().hex[:16]}", "namespace": m["namespace"]},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": m["name"],
                               "namespace": m["namespace"], "uid": m.get("uid"),
                               "resourceVersion": m.get("resourceVersion")},
            "reason": reason, "message": message, "type": type_,
            "source": {"component": "virtual-kubelet", "host": self.node_name},
            "reportingComponent": "virtual-kubelet", "reportingInstance": self.node_name,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }
        try:
            await self.client.create(EVENTS, body, m["namespace"])
        except ApiError as e:
            log.warning("could not record event %s for %s/%s: %s", reason, m["namespace"], m["name"], e)

    # ---- status -------------------------------------------------------------------------

    def _conditions(self, pod: dict, pstatus: dict, now: str) -> list[dict]:
        """PodScheduled/Initialized/ContainersReady/Ready from the provider's status,
        keeping transition times that did not change and conditions others own."""
        phase = pstatus.get("phase")
        css = pstatus.get("containerStatuses") or []
        inits = pstatus.get("initContainerStatuses") or []
        # sidecars (restartPolicy: Always init containers) count for readiness, and for
        # initialization once started
        sidecars = {c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or []
                    if c.get("restartPolicy") == "Always"}
        side_css = [c for c in inits if c.get("name") in sidecars]
        all_ready = bool(css) and all(c.get("ready") for c in side_css + css) and phase == "Running"

        def init_done(c: dict) -> bool:
            return "terminated" in (c.get("state") or {}) or \
                (c.get("name") in sidecars and bool(c.get("started")))
        initialized = phase in ("Running", "Succeeded", "Failed") or all(init_done(c) for c in inits)
        if phase in ("Succeeded",):
            reason_ready = "PodCompleted"
        elif phase == "Failed":
            reason_ready = "PodFailed"
        else:
            reason_ready = "ContainersNotReady"
        not_ready = [c["name"] for c in side_css + css if not c.get("ready")]
        msg = f"containers with unready status: [{' '.join(not_ready)}]" if not_ready else None
        ours = {
            "PodScheduled": ("True", None, None),
            "Initialized": ("True", None, None) if initialized else
            ("False", "ContainersNotInitialized", "containers with incomplete status: [%s]" %
             " ".join(c["name"] for c in inits if not init_done(c))),
            "ContainersReady": ("True", None, None) if all_ready else ("False", reason_ready, msg),
            "Ready": ("True", None, None) if all_ready else ("False", reason_ready, msg),
        }
        if pstatus.get("phase") == "Failed" and not css:
            ours["ContainersReady"] = ours["Ready"] = ("False", reason_ready, None)
        existing = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}
        for c in pstatus.get("conditions") or ():     # a provider's disruption (e.g. spot reclaim)
            if c.get("type") == "DisruptionTarget":
                existing[c["type"]] = c
        out = []
        for typ in CONDITION_TYPES:
            status, reason, message = ours[typ]
            old = existing.get(typ)
            ltt = old.get("lastTransitionTime") if old and old.get("status") == status else now
            c = {"type": typ, "status": status, "lastProbeTime": None, "lastTransitionTime": ltt}
            if reason:
                c["reason"] = reason
            if message:
                c["message"] = message
            out.append(c)
        for typ, c in existing.items():      # conditions we do not own (readiness gates, DisruptionTarget…)
            if typ not in CONDITION_TYPES:
                out.append(c)
        return out

    def build_status(self, pod: dict, pstatus: dict) -> dict:
        now = now_rfc3339()
        cur = pod.get("status") or {}
        st = {
            "phase": pstatus.get("phase", "Pending"),
            "conditions": self._conditions(pod, pstatus, now),
            "hostIP": self.host_ip,
            "hostIPs": [{"ip": self.host_ip}],
            "startTime": cur.get("startTime") or pstatus.get("startTime") or now,
            "qosClass": cur.get("qosClass") or compute_qos_class(pod),
            "containerStatuses": pstatus.get("containerStatuses") or [],
        }
        if pstatus.get("podIP"):
            st["podIP"] = pstatus["podIP"]
            st["podIPs"] = pstatus.get("podIPs") or [{"ip": pstatus["podIP"]}]
        elif cur.get("podIP") and st["phase"] in TERMINAL:
            st["podIP"], st["podIPs"] = cur["podIP"], cur.get("podIPs") or [{"ip": cur["podIP"]}]
        for k in ("initContainerStatuses", "reason", "message", "ephemeralContainerStatuses"):
            if pstatus.get(k):
                st[k] = pstatus[k]
        return st

    async def _write_status(self, pod: dict, pstatus: dict) -> None:
        key = _key(pod)
        uid = pod["metadata"]["uid"]
        st = self.build_status(pod, pstatus)
        cmp = _comparable(st)
        written = self._written.get(key)
        if written is not None and written[0] == uid and written[1] == cmp:
            return
        cur = pod.get("status") or {}
        if _comparable({**cur, "conditions": cur.get("conditions") or []}) == cmp:
            self._written[key] = (uid, cmp)
            return
        patch = {"metadata": {"uid": uid}, "status": st}
        # unset what we no longer report (merge patch: null deletes)
        for k in ("podIP", "podIPs", "reason", "message", "initContainerStatuses"):
            if k in cur and k not in st:
                patch["status"][k] = None
        m = pod["metadata"]
        try:
            await self.client.patch(PODS, m["name"], patch, m["namespace"], subresource="status",
                                    field_manager=FIELD_MANAGER)
        except ApiError as e:
            if e.not_found:
                return
            raise
        self._written[key] = (uid, cmp)
        self.stats["status_writes"] += 1


def terminal_status(pstatus: dict) -> dict:
    """``pstatus`` of a pod whose containers were all stopped for its deletion, as kubelet
    reports it: a container not reported terminated could not be located (exit code 137,
    ContainerStatusUnknown); the phase is Succeeded when every container exited 0, else
    Failed (a phase already terminal stays)."""
    st = dict(pstatus)
    now = now_rfc3339()
    codes = []
    for group in ("initContainerStatuses", "containerStatuses"):
        out = []
        for cs in st.get(group) or []:
            cs = dict(cs, ready=False, started=False) if group == "containerStatuses" else dict(cs)
            term = (cs.get("state") or {}).get("terminated")
            if term is None:
                term = {"exitCode": 137, "reason": "ContainerStatusUnknown",
                        "message": "The container could not be located when the pod was terminated",
                        "finishedAt": now}
                cs["state"] = {"terminated": term}
            if group == "containerStatuses":
                codes.append(term.get("exitCode"))
            out.append(cs)
        if out:
            st[group] = out
    if st.get("phase") not in TERMINAL:
        st["phase"] = "Succeeded" if codes and all(c == 0 for c in codes) else "Failed"
    return st


def _slim(pod: dict) -> None:
    """Drop managedFields from the cached pod (the node never reads them; a third
    of a pod's memory at 10,000 pods)."""
    (pod.get("metadata") or {}).pop("managedFields", None)


def _key(pod: dict) -> str:
    m = pod.get("metadata") or {}
    return f"{m.get('namespace')}/{m.get('name')}"


__all__ = ["PodController", "unsupported_reason", "provider_notifies", "terminal_status", "PODS", "EVENTS",
           "POLL"]
