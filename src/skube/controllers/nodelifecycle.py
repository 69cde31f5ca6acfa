"""Node lifecycle: nodes whose kubelet stopped heartbeating go Ready=Unknown, get
the ``node.kubernetes.io/unreachable`` (or ``not-ready``) NoExecute and NoSchedule
taints, and their pods are evicted once their tolerations run out — upstream's
node lifecycle controller with taint-based eviction.

A heartbeat is any change of the node's Lease renewTime or of its Ready
condition's lastHeartbeatTime, timed by this controller's own clock (so clock
skew between node and controller does not matter)."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

from ..client import ApiError, Client, index_by_node_name
from ..client.api import resource
from .controllerutils import NODES, PODS, BaseController

log = logging.getLogger("skube.controllers.nodelifecycle")

LEASES = resource("coordination.k8s.io/v1", "leases", kind="Lease")
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
OUR_TAINTS = (UNREACHABLE, NOT_READY)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ready(node: dict) -> dict:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c
    return {}


def _tolerates(tol: dict, taint: dict) -> bool:
    if tol.get("effect") and tol["effect"] != taint.get("effect"):
        return False
    if tol.get("operator") == "Exists":
        return not tol.get("key") or tol["key"] == taint.get("key")
    return tol.get("key") == taint.get("key") and (tol.get("value") or "") == (taint.get("value") or "")


def eviction_delay(pod: dict, taints: list[dict]) -> float | None:
    """Seconds a pod may stay on a node with these NoExecute taints: 0 = now,
    None = forever (tolerated without tolerationSeconds)."""
    delay: float | None = None
    forever = True
    for taint in taints:
        matching = [t for t in (pod.get("spec") or {}).get("tolerations") or [] if _tolerates(t, taint)]
        if not matching:
            return 0
        secs = [t["tolerationSeconds"] for t in matching if t.get("tolerationSeconds") is not None]
        if secs:
            forever = False
            d = max(0, min(secs))
            delay = d if delay is None else min(delay, d)
    return None if forever else delay


class NodeLifecycleController(BaseController):
    name = "nodelifecycle"

    def __init__(self, client: Client, *, grace_period: float = 40.0, monitor_period: float = 5.0,
                 workers: int = 2):
        super().__init__(client, workers=workers)
        self.grace_period = grace_period
        self.monitor_period = monitor_period
        self.nodes = self.informer(NODES)
        self.leases = self.informer(LEASES, namespace="kube-node-lease")
        self.pods = self.informer(PODS, namespaced_index=False)
        self.pods.add_indexer("node", index_by_node_name)
        self.seen: dict[str, tuple[tuple, float]] = {}     # node -> (heartbeat marks, local time seen)
        self.nodes.add_handlers(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n))

    def component_name(self) -> str:
        return "node-controller"

    def background(self) -> list:
        return [self._monitor()]

    async def _monitor(self) -> None:
        while True:
            for node in self.nodes.list():
                self.enqueue(node)
            await asyncio.sleep(self.monitor_period)

    def _heartbeat_age(self, node: dict) -> float:
        name = node["metadata"]["name"]
        lease = self.leases.get(f"kube-node-lease/{name}") or {}
        marks = ((lease.get("spec") or {}).get("renewTime"), _ready(node).get("lastHeartbeatTime"))
        now = time.monotonic()
        prev = self.seen.get(name)
        if prev is None or prev[0] != marks:
            self.seen[name] = (marks, now)
            return 0.0
        return now - prev[1]

    async def sync(self, key: str):
        node = self.nodes.get(key)
        if node is None:
            self.seen.pop(key, None)
            return None
        name = node["metadata"]["name"]
        ready = _ready(node)
        if self._heartbeat_age(node) > self.grace_period and ready.get("status") != "Unknown":
            await self._mark_unknown(node)
            return None
        status = ready.get("status")
        want = UNREACHABLE if status == "Unknown" else NOT_READY if status == "False" else None
        await self._taint(node, want)
        if want:
            return await self._evict(name, [t for t in (node.get("spec") or {}).get("taints") or []
                                            if t.get("effect") == "NoExecute"])
        return None

    async def _mark_unknown(self, node: dict) -> None:
        now = _now()
        conds = []
        for c in (node.get("status") or {}).get("conditions") or []:
            c = dict(c)
            if c.get("status") != "Unknown":
                c.update(status="Unknown", reason="NodeStatusUnknown", lastTransitionTime=now,
                         message="Kubelet stopped posting node status.")
            conds.append(c)
        if not any(c.get("type") == "Ready" for c in conds):
            conds.append({"type": "Ready", "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                          "message": "Kubelet never posted node status.", "lastTransitionTime": now})
        try:
            await self.client.patch(NODES, node["metadata"]["name"], {"status": {"conditions": conds}},
                                    subresource="status", patch_type="merge")
            self.recorder.normal(node, "NodeNotReady", f"Node {node['metadata']['name']} status is now: "
                                                       "NodeNotReady")
        except ApiError as e:
            if not e.not_found:
                raise

    async def _taint(self, node: dict, want: str | None) -> None:
        taints = list((node.get("spec") or {}).get("taints") or [])
        kept = [t for t in taints if t.get("key") not in OUR_TAINTS or t.get("key") == want]
        if want and not any(t.get("key") == want for t in kept):
            now = _now()
            kept += [{"key": want, "effect": "NoSchedule"},
                     {"key": want, "effect": "NoExecute", "timeAdded": now}]
        if kept != taints:
            try:
                await self.client.patch(NODES, node["metadata"]["name"], {"spec": {"taints": kept or None}},
                                        patch_type="merge")
            except ApiError as e:
                if not e.not_found:
                    raise

    async def _evict(self, node_name: str, taints: list[dict]) -> float | None:
        """Delete pods whose tolerations ran out; the delay until the next one is due."""
        if not taints:
            return 1.0   # the taint is being added; look again
        added = min((dt.datetime.fromisoformat(t["timeAdded"].replace("Z", "+00:00"))
                     for t in taints if t.get("timeAdded")), default=dt.datetime.now(dt.timezone.utc))
        elapsed = (dt.datetime.now(dt.timezone.utc) - added).total_seconds()
        next_due: float | None = None
        for pod in self.pods.by_index("node", node_name):
            if pod["metadata"].get("deletionTimestamp"):
                continue
            delay = eviction_delay(pod, taints)
            if delay is None:
                continue
            if elapsed >= delay:
                m = pod["metadata"]
                try:
                    await self.client.delete(PODS, m["name"], m["namespace"],
                                             preconditions={"uid": m.get("uid")})
                    self.recorder.normal(pod, "TaintManagerEviction",
                                         f"Marking for deletion Pod {m['namespace']}/{m['name']}")
                except ApiError as e:
                    if not (e.not_found or e.conflict):
                        raise
            else:
                wait = delay - elapsed
                next_due = wait if next_due is None else min(next_due, wait)
        return next_due
