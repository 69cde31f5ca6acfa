"""The DaemonSet controller: one pod per eligible node.

Eligible: a real node — never the virtual node (label ``type=virtual-kubelet``) —
whose labels satisfy the template's nodeSelector and required node affinity and
whose NoSchedule/NoExecute taints the pod tolerates (with the tolerations upstream
adds to every daemon pod). Each pod is pinned with required node affinity
``matchFields metadata.name In [node]`` (replacing any other matchFields term, as
upstream) and placed by the scheduler. Extra pods on a node and pods on nodes
that are no longer eligible are deleted; failed pods are replaced.
RollingUpdate replaces pods whose ``controller-revision-hash`` is stale, at most
maxUnavailable at a time; OnDelete leaves them. Status: desiredNumberScheduled,
currentNumberScheduled, numberMisscheduled, numberReady, numberAvailable,
numberUnavailable, updatedNumberScheduled, observedGeneration.
"""
from __future__ import annotations

import copy
import logging
import time

from ..api.selectors import LabelSelector
from ..client import ApiError, Client
from .controllerutils import (DAEMONSETS, NODES, PODS, BaseController, claim_pods, controller_ref,
                              in_namespace, int_or_percent, is_available, is_ready, is_terminating, owner_ref,
                              phase, pod_from_template, selector_of, update_status)
from .statefulset import REVISION_LABEL, revision_data, revision_hash

log = logging.getLogger("skube.controllers.daemonset")

VIRTUAL_LABEL = ("type", "virtual-kubelet")
DEFAULT_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)


def tolerates(tolerations: list[dict], taint: dict) -> bool:
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        op = t.get("operator") or "Equal"
        if not t.get("key") and op == "Exists":
            return True
        if t.get("key") != taint.get("key"):
            continue
        if op == "Exists" or (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _match_expr(expr: dict, value: str | None) -> bool:
    op = expr.get("operator")
    vals = expr.get("values") or []
    if op == "In":
        return value is not None and value in vals
    if op == "NotIn":
        return value is None or value not in vals
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    try:
        if op == "Gt":
            return value is not None and int(value) > int(vals[0])
        if op == "Lt":
            return value is not None and int(value) < int(vals[0])
    except (ValueError, IndexError):
        return False
    return False


def node_matches_affinity(pod_spec: dict, node: dict) -> bool:
    labels = node["metadata"].get("labels") or {}
    for k, v in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    req = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = req.get("nodeSelectorTerms")
    if not terms:
        return True
    fields = {"metadata.name": node["metadata"]["name"]}
    for term in terms:
        if not term.get("matchExpressions") and not term.get("matchFields"):
            continue
        if all(_match_expr(e, labels.get(e.get("key"))) for e in term.get("matchExpressions") or ()) and \
                all(_match_expr(e, fields.get(e.get("key"))) for e in term.get("matchFields") or ()):
            return True
    return False


def pin_to_node(spec: dict, node_name: str) -> None:
    """Upstream's ReplaceDaemonSetPodNodeNameNodeAffinity."""
    field = {"key": "metadata.name", "operator": "In", "values": [node_name]}
    na = spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})
    req = na.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = req.get("nodeSelectorTerms") or []
    if not terms:
        terms = [{"matchFields": [field]}]
    else:
        for t in terms:
            t["matchFields"] = [field]
    na["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": terms}


class DaemonSetController(BaseController):
    name = "daemonset"

    def __init__(self, client: Client, *, workers: int = 2):
        super().__init__(client, workers=workers)
        self.sets = self.informer(DAEMONSETS)
        self.pods = self.informer(PODS)
        self.nodes = self.informer(NODES)
        self.sets.add_handlers(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n))
        self.pods.add_handlers(on_add=self._pod, on_update=lambda o, n: self._pod(n), on_delete=self._pod)
        self.nodes.add_handlers(on_add=self._all, on_update=lambda o, n: self._all(n), on_delete=self._all)

    def component_name(self) -> str:
        return "daemonset-controller"

    def _all(self, _node: dict) -> None:
        for ds in self.sets.list():
            self.enqueue(ds)

    def _pod(self, pod: dict) -> None:
        ref = controller_ref(pod)
        if ref is not None and ref.get("kind") == "DaemonSet":
            self.queue.add(f"{pod['metadata']['namespace']}/{ref.get('name')}")

    def should_run(self, ds: dict, node: dict) -> bool:
        labels = node["metadata"].get("labels") or {}
        if labels.get(VIRTUAL_LABEL[0]) == VIRTUAL_LABEL[1]:
            return False
        spec = (ds["spec"].get("template") or {}).get("spec") or {}
        if not node_matches_affinity(spec, node):
            return False
        tolerations = list(spec.get("tolerations") or []) + list(DEFAULT_TOLERATIONS)
        for taint in (node.get("spec") or {}).get("taints") or ():
            if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
                return False
        return True

    @staticmethod
    def node_of(pod: dict) -> str | None:
        if pod["spec"].get("nodeName"):
            return pod["spec"]["nodeName"]
        terms = ((((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {})
                  .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or [])
        for t in terms:
            for f in t.get("matchFields") or ():
                if f.get("key") == "metadata.name" and f.get("values"):
                    return f["values"][0]
        return None

    async def sync(self, key: str):
        ds = self.sets.get(key)
        if ds is None:
            return None
        ds = copy.deepcopy(ds)
        ns = ds["metadata"]["namespace"]
        ref = owner_ref(ds, "apps/v1", "DaemonSet")
        sel = selector_of(ds)
        if sel is LabelSelector.nothing():
            return None
        pods = await claim_pods(self.client, ds, ref, sel, in_namespace(self.pods, ns))
        h = revision_hash(revision_data(ds), (ds.get("status") or {}).get("collisionCount"))
        by_node: dict[str, list[dict]] = {}
        for p in pods:
            by_node.setdefault(self.node_of(p) or "", []).append(p)
        nodes = {n["metadata"]["name"]: n for n in self.nodes.list()}
        wanted = {name for name, n in nodes.items() if self.should_run(ds, n)}
        create: list[str] = []
        delete: list[dict] = []
        for name in wanted:
            mine = [p for p in by_node.get(name, []) if not is_terminating(p)]
            failed = [p for p in mine if phase(p) == "Failed"]
            delete += failed
            mine = [p for p in mine if phase(p) != "Failed"]
            if not mine and not failed:
                create.append(name)
            elif len(mine) > 1:
                mine.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "")
                delete += mine[1:]
        for name, ps in by_node.items():
            if name not in wanted:
                delete += [p for p in ps if not is_terminating(p)]
        mrs = int(ds["spec"].get("minReadySeconds") or 0)
        strategy = ds["spec"].get("updateStrategy") or {}
        alive = not ds["metadata"].get("deletionTimestamp")
        if alive and strategy.get("type", "RollingUpdate") == "RollingUpdate":
            max_unavail = int_or_percent((strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1),
                                         len(wanted), True) or 1
            now = time.time()
            unavailable = sum(1 for n in wanted if not any(is_available(p, mrs, now)
                                                           for p in by_node.get(n, []) if not is_terminating(p)))
            budget = max_unavail - unavailable
            for n in sorted(wanted):
                if budget <= 0:
                    break
                for p in by_node.get(n, []):
                    if is_terminating(p) or (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == h:
                        continue
                    if p not in delete:
                        delete.append(p)
                        budget -= 1
        if alive:
            template = ds["spec"].get("template") or {}
            for node in create:
                body = pod_from_template(template, ds, ref)
                body["metadata"]["labels"][REVISION_LABEL] = h
                pin_to_node(body["spec"], node)
                tol = body["spec"].setdefault("tolerations", [])
                for t in DEFAULT_TOLERATIONS:
                    if t not in tol:
                        tol.append(dict(t))
                try:
                    pod = await self.client.create(PODS, body, ns)
                    self.recorder.normal(ds, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
                except ApiError as e:
                    self.recorder.warning(ds, "FailedCreate", f"Error creating: {e.message}")
                    raise
            for p in delete:
                try:
                    await self.client.delete(PODS, p["metadata"]["name"], ns,
                                             preconditions={"uid": p["metadata"]["uid"]})
                    self.recorder.normal(ds, "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}")
                except ApiError as e:
                    if not (e.not_found or e.conflict):
                        raise
        # status
        now = time.time()
        status = dict(ds.get("status") or {})
        current = [n for n in wanted if any(not is_terminating(p) for p in by_node.get(n, []))]
        status["desiredNumberScheduled"] = len(wanted)
        status["currentNumberScheduled"] = len(current)
        status["numberMisscheduled"] = sum(1 for n, ps in by_node.items() if n not in wanted
                                           and any(p["spec"].get("nodeName") for p in ps))
        ready = available = updated = 0
        for n in wanted:
            ps = [p for p in by_node.get(n, []) if not is_terminating(p)]
            if any(is_ready(p) for p in ps):
                ready += 1
            if any(is_available(p, mrs, now) for p in ps):
                available += 1
            if any((p["metadata"].get("labels") or {}).get(REVISION_LABEL) == h for p in ps):
                updated += 1
        status["numberReady"] = ready
        status["numberAvailable"] = available
        status["numberUnavailable"] = len(wanted) - available
        status["updatedNumberScheduled"] = updated
        status["observedGeneration"] = ds["metadata"].get("generation")
        for k in ("numberAvailable", "numberUnavailable", "updatedNumberScheduled"):
            if not status.get(k):
                status.pop(k, None)
        if status != (ds.get("status") or {}):
            await update_status(self.client, DAEMONSETS, ds, status)
        return 1.0 if mrs and ready != available else None


__all__ = ["DaemonSetController", "tolerates", "node_matches_affinity", "pin_to_node"]
