"""Helpers shared by the workload controllers: resources, time, an aggregating
EventRecorder, creation/deletion expectations, pod state predicates, owner
references and adoption, pods from templates, and a small controller base.

Everything here talks to the API server through :mod:`skube.client` only."""
from __future__ import annotations

import asyncio
import copy
import datetime as dt
import functools
import logging
import math
import re
import time
from typing import Callable, Iterable

from ..api.selectors import LabelSelector, label_selector_from_dict
from ..client import (ApiError, Client, Informer, InformerView, WorkQueue, index_by_namespace, object_key,
                      run_workers, shared_informer)
from ..client.events import EventRecorder  # noqa: F401  (re-exported for controllers)

log = logging.getLogger("skube.controllers")

from ..client import resource  # noqa: E402

PODS = resource("v1", "pods", kind="Pod")
NODES = resource("v1", "nodes", namespaced=False, kind="Node")
NAMESPACES = resource("v1", "namespaces", namespaced=False, kind="Namespace")
EVENTS = resource("v1", "events", kind="Event")
SERVICES = resource("v1", "services", kind="Service")
ENDPOINTS = resource("v1", "endpoints", kind="Endpoints")
SERVICEACCOUNTS = resource("v1", "serviceaccounts", kind="ServiceAccount")
ENDPOINTSLICES = resource("discovery.k8s.io/v1", "endpointslices", kind="EndpointSlice")
REPLICASETS = resource("apps/v1", "replicasets", kind="ReplicaSet")
DEPLOYMENTS = resource("apps/v1", "deployments", kind="Deployment")
STATEFULSETS = resource("apps/v1", "statefulsets", kind="StatefulSet")
DAEMONSETS = resource("apps/v1", "daemonsets", kind="DaemonSet")
CONTROLLERREVISIONS = resource("apps/v1", "controllerrevisions", kind="ControllerRevision")
JOBS = resource("batch/v1", "jobs", kind="Job")
CRONJOBS = resource("batch/v1", "cronjobs", kind="CronJob")

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
EXPECTATIONS_TTL = 300.0
CONFLICT_RETRIES = 5


# ---- time ---------------------------------------------------------------------------------

def rfc3339(t: float | None = None) -> str:
    return dt.datetime.fromtimestamp(time.time() if t is None else t, dt.timezone.utc) \
        .strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s: str | None) -> float | None:
    if not s:
        return None
    try:
        return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


# ---- events: the shared recorder lives in skube.client.events ----------------------------

# ---- expectations -------------------------------------------------------------------------

class Expectations:
    """client-go's ControllerExpectations with UID tracking for deletions: a controller
    does not act on a key again until the creations and deletions it issued have been
    observed in its informer (or EXPECTATIONS_TTL passed)."""

    def __init__(self):
        self._adds: dict[str, int] = {}
        self._dels: dict[str, set[str]] = {}
        self._at: dict[str, float] = {}

    def satisfied(self, key: str) -> bool:
        if key not in self._at:
            return True
        if self._adds.get(key, 0) <= 0 and not self._dels.get(key):
            return True
        return time.monotonic() - self._at[key] > EXPECTATIONS_TTL

    def expect_creations(self, key: str, n: int) -> None:
        self._adds[key] = n
        self._dels.setdefault(key, set())
        self._at[key] = time.monotonic()

    def creation_observed(self, key: str) -> None:
        if key in self._adds:
            self._adds[key] -= 1

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        self._dels[key] = set(pod_keys)
        self._adds.setdefault(key, 0)
        self._at[key] = time.monotonic()

    def deletion_observed(self, key: str, pod_key: str) -> None:
        s = self._dels.get(key)
        if s:
            s.discard(pod_key)

    def delete(self, key: str) -> None:
        self._adds.pop(key, None)
        self._dels.pop(key, None)
        self._at.pop(key, None)


# ---- pods ---------------------------------------------------------------------------------

def phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase") or "Pending"


def is_terminating(obj: dict) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def is_active(pod: dict) -> bool:
    """Not finished and not being deleted (upstream's IsPodActive)."""
    return phase(pod) not in ("Succeeded", "Failed") and not is_terminating(pod)


def condition(obj: dict, ctype: str) -> dict | None:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c.get("type") == ctype:
            return c
    return None


def is_ready(pod: dict) -> bool:
    c = condition(pod, "Ready")
    return bool(c and c.get("status") == "True")


def ready_since(pod: dict) -> float | None:
    c = condition(pod, "Ready")
    if c and c.get("status") == "True":
        return parse_time(c.get("lastTransitionTime"))
    return None


def is_available(pod: dict, min_ready_seconds: int, now: float | None = None) -> bool:
    """Ready for at least ``min_ready_seconds`` (upstream's IsPodAvailable)."""
    if not is_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    since = ready_since(pod)
    now = time.time() if now is None else now
    return since is not None and since + min_ready_seconds <= now


def available_in(pod: dict, min_ready_seconds: int, now: float | None = None) -> float | None:
    """Seconds until a ready pod becomes available (None if it is not ready)."""
    since = ready_since(pod)
    if since is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, since + min_ready_seconds - now)


def restarts(pod: dict) -> int:
    """The highest restart count of the pod's containers (upstream's maxContainerRestarts)."""
    return max((int(cs.get("restartCount") or 0)
                for cs in (pod.get("status") or {}).get("containerStatuses") or ()), default=0)


def deletion_cost(pod: dict) -> int:
    """``controller.kubernetes.io/pod-deletion-cost`` as upstream reads it: a decimal int32
    without a plus sign or leading zeros; anything else counts as 0."""
    v = ((pod.get("metadata") or {}).get("annotations") or {}).get(DELETION_COST)
    if not v or _DECIMAL.fullmatch(v) is None or (len(v) > 1 and v[0] == "0"):
        return 0
    n = int(v)
    return n if -2 ** 31 <= n < 2 ** 31 else 0


_DECIMAL = re.compile(r"-?[0-9]+")


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _log_rank(t: float, now: float) -> int:
    d = (now - t) * 1e9
    return int(math.log2(d)) if d > 0 else -1


def _time_less(t1: float | None, t2: float | None, now: float, u1: str, u2: str) -> bool | None:
    """Newer (or missing) first, on upstream's logarithmic buckets; None when equal."""
    if t1 == t2:
        return None
    if t1 is None or t2 is None:
        return t1 is None
    diff = _log_rank(t1, now) - _log_rank(t2, now)
    if diff == 0:
        return u1 < u2
    return diff < 0


def deletion_order(pods: list[dict], ranks: dict[str, int] | None = None,
                   now: float | None = None) -> list[dict]:
    """Pods sorted deletion-first as upstream's ActivePodsWithRanks: unassigned <
    assigned; Pending < Unknown < Running; not ready < ready; lower
    pod-deletion-cost first; more co-located related pods first; ready for a shorter
    time first; more restarts first; newer first."""
    ranks = ranks or {}
    now = time.time() if now is None else now

    def cmp(a: dict, b: dict) -> int:
        na, nb = bool(a["spec"].get("nodeName")), bool(b["spec"].get("nodeName"))
        if na != nb:
            return -1 if not na else 1
        pa, pb = _PHASE_RANK.get(phase(a), 3), _PHASE_RANK.get(phase(b), 3)
        if pa != pb:
            return -1 if pa < pb else 1
        ra, rb = is_ready(a), is_ready(b)
        if ra != rb:
            return -1 if not ra else 1
        ca, cb = deletion_cost(a), deletion_cost(b)
        if ca != cb:
            return -1 if ca < cb else 1
        ka, kb = ranks.get(a["metadata"].get("uid"), 0), ranks.get(b["metadata"].get("uid"), 0)
        if ka != kb:
            return -1 if ka > kb else 1
        ua, ub = a["metadata"].get("uid", ""), b["metadata"].get("uid", "")
        if ra and rb:
            less = _time_less(ready_since(a), ready_since(b), now, ua, ub)
            if less is not None:
                return -1 if less else 1
        xa, xb = restarts(a), restarts(b)
        if xa != xb:
            return -1 if xa > xb else 1
        less = _time_less(parse_time(a["metadata"].get("creationTimestamp")),
                          parse_time(b["metadata"].get("creationTimestamp")), now, ua, ub)
        if less is not None:
            return -1 if less else 1
        return 0

    return sorted(pods, key=functools.cmp_to_key(cmp))


# ---- owners -------------------------------------------------------------------------------

def controller_ref(obj: dict) -> dict | None:
    for r in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if r.get("controller"):
            return r
    return None


def owner_ref(owner: dict, api_version: str, kind: str) -> dict:
    m = owner["metadata"]
    return {"apiVersion": api_version, "kind": kind, "name": m["name"], "uid": m["uid"],
            "controller": True, "blockOwnerDeletion": True}


def selector_of(obj: dict) -> LabelSelector:
    try:
        return label_selector_from_dict((obj.get("spec") or {}).get("selector"))
    except Exception:  # noqa: BLE001 - an invalid selector selects nothing
        return LabelSelector.nothing()


def pod_from_template(template: dict, owner: dict, ref: dict, *, name: str | None = None,
                      generate_name: str | None = None) -> dict:
    tmeta = template.get("metadata") or {}
    meta: dict = {"namespace": owner["metadata"]["namespace"],
                  "labels": dict(tmeta.get("labels") or {}),
                  "ownerReferences": [ref]}
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    if name:
        meta["name"] = name
    else:
        meta["generateName"] = generate_name or f"{owner['metadata']['name']}-"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": copy.deepcopy(template.get("spec") or {})}


async def claim_pods(client: Client, owner: dict, ref: dict, selector: LabelSelector,
                     candidates: list[dict], *, can_adopt: bool = True) -> list[dict]:
    """Upstream's PodControllerRefManager.ClaimPods: keep owned pods that match, adopt
    orphans that match, release owned pods that no longer match. Returns the owned."""
    uid = owner["metadata"]["uid"]
    deleting = is_terminating(owner)
    owned = []
    for pod in candidates:
        cref = controller_ref(pod)
        labels = pod["metadata"].get("labels") or {}
        if cref is not None:
            if cref.get("uid") != uid:
                continue
            if selector.matches(labels):
                owned.append(pod)
            elif not deleting:
                await _patch_owners(client, pod, [r for r in pod["metadata"].get("ownerReferences") or ()
                                                  if r.get("uid") != uid])
            continue
        if not can_adopt or deleting or is_terminating(pod) or not selector.matches(labels):
            continue
        refs = list(pod["metadata"].get("ownerReferences") or ()) + [ref]
        new = await _patch_owners(client, pod, refs)
        if new is not None:
            owned.append(new)
    return owned


async def _patch_owners(client: Client, obj: dict, refs: list[dict], res=PODS) -> dict | None:
    m = obj["metadata"]
    patch = {"metadata": {"ownerReferences": refs or None, "uid": m.get("uid"),
                          "resourceVersion": m.get("resourceVersion")}}
    try:
        return await client.patch(res, m["name"], patch, m.get("namespace"), patch_type="merge")
    except ApiError as e:
        if e.not_found or e.conflict:
            return None
        raise


async def update_status(client: Client, res, obj: dict, status: dict) -> dict | None:
    """PUT ``status`` on ``obj`` at its resourceVersion. A conflict (the cache was stale)
    is raised so the caller's key is retried from fresh state, as upstream does; a
    vanished object gives None."""
    body = dict(obj)
    body["status"] = status
    try:
        return await client.update_status(res, body, obj["metadata"].get("namespace"))
    except ApiError as e:
        if e.not_found:
            return None
        raise


def set_condition(status: dict, ctype: str, cstatus: str, reason: str, message: str,
                  now: str | None = None, *, update_time: bool = False) -> bool:
    """Set one condition in ``status.conditions``; returns whether something changed.
    ``lastTransitionTime`` moves only when the status flips."""
    now = now or rfc3339()
    conds = list(status.get("conditions") or [])
    for i, c in enumerate(conds):
        if c.get("type") != ctype:
            continue
        if (c.get("status"), c.get("reason"), c.get("message")) == (cstatus, reason, message):
            return False
        new = dict(c, status=cstatus, reason=reason, message=message)
        if c.get("status") != cstatus:
            new["lastTransitionTime"] = now
        if update_time or "lastUpdateTime" in c:
            new["lastUpdateTime"] = now
        conds[i] = new
        status["conditions"] = conds
        return True
    new = {"type": ctype, "status": cstatus}
    if update_time:
        new["lastUpdateTime"] = now
    new.update({"lastTransitionTime": now, "reason": reason, "message": message})
    conds.append(new)
    status["conditions"] = conds
    return True


def remove_condition(status: dict, ctype: str) -> bool:
    conds = status.get("conditions") or []
    out = [c for c in conds if c.get("type") != ctype]
    if len(out) == len(conds):
        return False
    status["conditions"] = out
    return True


# ---- controller base ----------------------------------------------------------------------

class BaseController:
    """Informers + one work queue + workers + an EventRecorder. Subclasses set
    ``name``, build informers in ``__init__`` (register them in ``self.informers``)
    and implement ``async sync(key)``."""

    name = "controller"
    component = "controller-manager"

    def __init__(self, client: Client, *, workers: int = 4):
        self.client = client
        self.workers = workers
        self.queue = WorkQueue(name=self.name, pace=CONTROLLER_PACE)
        self.informers: list[InformerView] = []
        self.recorder = EventRecorder(client, self.component_name())
        self.ready = asyncio.Event()

    def component_name(self) -> str:
        return f"{self.name}-controller"

    def informer(self, res, *, namespaced_index: bool = True, **kw) -> InformerView:
        """This controller's view of the client's shared informer of ``res``."""
        inf = shared_informer(self.client, res, **kw).view(name=f"{self.name} {res.plural}")
        if namespaced_index and res.namespaced:
            inf.add_indexer("namespace", index_by_namespace)
        self.informers.append(inf)
        return inf

    def enqueue(self, obj: dict) -> None:
        self.queue.add(object_key(obj))

    async def on_synced(self) -> None:
        """Hook: caches are synced, workers about to start."""

    async def run(self, stop: asyncio.Event) -> None:
        for inf in self.informers:
            inf.start()
        workers = None
        extra: list[asyncio.Task] = []
        try:
            for inf in self.informers:
                await inf.wait_synced()
            self.recorder.start()
            await self.on_synced()
            self.ready.set()
            workers = asyncio.create_task(run_workers(self.queue, self.sync, self.workers))
            extra = [asyncio.create_task(c) for c in self.background()]
            await stop.wait()
        finally:
            self.queue.shut_down()
            for inf in self.informers:
                inf.stop()
            for t in ([workers] if workers else []) + extra:
                t.cancel()
            await asyncio.gather(*(t for t in ([workers] if workers else []) + extra),
                                 return_exceptions=True)
            await self.recorder.stop()

    def background(self) -> list:
        """Hook: extra coroutines to run beside the workers."""
        return []

    async def sync(self, key: str):  # pragma: no cover - abstract
        raise NotImplementedError


# A controller's key that synced for d seconds waits 2·d (at most 1 s) before its next
# sync: see skube.client.workqueue.
CONTROLLER_PACE = 2.0


def in_namespace(inf: Informer, ns: str) -> list[dict]:
    return inf.by_index("namespace", ns)


def _index_controller(obj: dict) -> list[str]:
    ref = controller_ref(obj)
    return [ref.get("uid") or ""] if ref is not None else []


def _index_orphans(obj: dict) -> list[str]:
    return [] if controller_ref(obj) is not None else [obj["metadata"].get("namespace") or ""]


def index_owners(inf: Informer) -> Informer:
    """Index ``inf`` by controller uid and its orphans (no controller) by namespace, for
    :func:`claim_candidates` and :func:`controlled_by`."""
    inf.add_indexer("controller", _index_controller)
    inf.add_indexer("orphans", _index_orphans)
    return inf


def controlled_by(inf: Informer, uid: str) -> list[dict]:
    """The objects whose controller is ``uid`` (``inf`` indexed by :func:`index_owners`)."""
    return inf.by_index("controller", uid)


def claim_candidates(inf: Informer, owner: dict) -> list[dict]:
    """What ``claim_pods`` can keep or adopt for ``owner``: the objects it controls and the
    orphans of its namespace — the same outcome as offering every object of the namespace
    (others' objects are skipped there), without walking them all on each sync."""
    m = owner["metadata"]
    return controlled_by(inf, m["uid"]) + inf.by_index("orphans", m.get("namespace") or "")


def owned_by(objs: Iterable[dict], uid: str) -> list[dict]:
    out = []
    for o in objs:
        r = controller_ref(o)
        if r is not None and r.get("uid") == uid:
            out.append(o)
    return out


def resolve_owner(inf: Informer, obj: dict, kind: str) -> dict | None:
    """The controller of ``obj`` if it is a ``kind`` in ``inf`` with the same uid."""
    r = controller_ref(obj)
    if r is None or r.get("kind") != kind:
        return None
    owner = inf.get_by_name(r.get("name"), obj["metadata"].get("namespace"))
    if owner is None or owner["metadata"].get("uid") != r.get("uid"):
        return None
    return owner


def int_or_percent(value, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    s = str(value)
    if s.endswith("%"):
        pct = int(s[:-1])
        return -(-pct * total // 100) if round_up else pct * total // 100
    return int(s)


Callback = Callable[[dict], None]

__all__ = [n for n in dir() if not n.startswith("_")]
