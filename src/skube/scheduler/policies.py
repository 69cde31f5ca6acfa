"""Elastic scheduling policies: where a pod may run between ordinary nodes and the
virtual node, and in what order (after ECI's eci-profile policies and ACK's
ResourcePolicy).

Admission (:mod:`skube.apiserver.admission`) resolves each new pod's policy from the
cluster config and the pod's own annotations and records it on the pod; the scheduler
reads only that record, so it needs no config of its own:

* ``scheduling.skube.io/policy`` — ``fair`` (any node), ``normalNodeOnly`` (never the
  virtual node), ``virtualNodeOnly``, ``normalNodePrefer`` or ``resourcePolicy``;
* ``scheduling.skube.io/max-wait-seconds`` — normalNodePrefer: how long a pod may wait
  for an ordinary node before it bursts to the virtual node (0: at once);
* ``scheduling.skube.io/resource-policy`` — resourcePolicy: JSON
  ``{"units": [...], "selector": "..."}``.

:func:`tiers` turns a policy into node tiers tried in order: the scheduler runs its
ordinary filters and scores over the first tier, then the next only if nothing fits.
Pods placed on a later tier get a lower ``controller.kubernetes.io/pod-deletion-cost``
(:func:`deletion_cost_for`) so that scaling in removes them first.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import orjson

from ..api import selectors
from .cache import NodeInfo, PodInfo, SchedulerCache
from .plugins import UNSCHEDULABLE, Status

POLICY_ANNOTATION = "scheduling.skube.io/policy"
MAX_WAIT_ANNOTATION = "scheduling.skube.io/max-wait-seconds"
RESOURCE_POLICY_ANNOTATION = "scheduling.skube.io/resource-policy"
DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
# ECI's per-pod switches (honoured by admission)
BURST_RESOURCE_ANNOTATION = "alibabacloud.com/burst-resource"     # "eci" | "eci_only"
ECI_LABEL = "alibabacloud.com/eci"                                  # "true": virtual node only

VIRTUAL_NODE_LABEL = ("type", "virtual-kubelet")
NODE_POOL_LABEL = "skube.io/node-pool"

FAIR = "fair"
NORMAL_NODE_ONLY = "normalNodeOnly"
VIRTUAL_NODE_ONLY = "virtualNodeOnly"
NORMAL_NODE_PREFER = "normalNodePrefer"
RESOURCE_POLICY = "resourcePolicy"
POLICIES = (FAIR, NORMAL_NODE_ONLY, VIRTUAL_NODE_ONLY, NORMAL_NODE_PREFER, RESOURCE_POLICY)

PLUGIN = "ElasticPolicy"
# a pod's template hash changes with every rollout; a workload's pods are counted across them
_WORKLOAD_LABELS_IGNORED = ("pod-template-hash", "controller-revision-hash")


def is_virtual(node: NodeInfo) -> bool:
    return node.labels.get(VIRTUAL_NODE_LABEL[0]) == VIRTUAL_NODE_LABEL[1]


@dataclass(frozen=True)
class Unit:
    """One ResourcePolicy unit: the virtual node, or the ordinary nodes ``node_selector``
    matches (all of them when empty); ``max`` pods of the workload at most (None: no limit)."""
    virtual: bool = False
    node_selector: tuple[tuple[str, str], ...] = ()
    max: int | None = None

    @classmethod
    def from_doc(cls, doc: dict, path: str = "units[0]") -> "Unit":
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: expected a mapping, not {doc!r}")
        unknown = set(doc) - {"virtualNode", "nodeSelector", "max", "resource"}
        if unknown:
            raise ValueError(f"{path}: unknown field(s) {sorted(unknown)}; "
                             "known: virtualNode, nodeSelector, max, resource")
        resource = doc.get("resource")
        if resource not in (None, "ecs", "eci"):
            raise ValueError(f"{path}.resource: must be ecs or eci, not {resource!r}")
        virtual = bool(doc.get("virtualNode", False)) or resource == "eci"
        sel = doc.get("nodeSelector") or {}
        if not isinstance(sel, dict) or not all(isinstance(v, str) for v in sel.values()):
            raise ValueError(f"{path}.nodeSelector: expected a mapping of label to string value")
        mx = doc.get("max")
        if mx is not None and (not isinstance(mx, int) or isinstance(mx, bool) or mx < 0):
            raise ValueError(f"{path}.max: must be a non-negative integer, not {mx!r}")
        return cls(virtual=virtual, node_selector=tuple(sorted(sel.items())), max=mx)

    def to_doc(self) -> dict:
        doc: dict = {"virtualNode": True} if self.virtual else {}
        if self.node_selector:
            doc["nodeSelector"] = dict(self.node_selector)
        if self.max is not None:
            doc["max"] = self.max
        return doc

    def matches(self, node: NodeInfo) -> bool:
        if is_virtual(node) != self.virtual:
            return False
        labels = node.labels
        return all(labels.get(k) == v for k, v in self.node_selector)


@dataclass(frozen=True)
class Policy:
    """A resolved policy (what admission records on a pod)."""
    name: str = FAIR
    max_wait_seconds: float = 0.0
    units: tuple[Unit, ...] = ()
    selector: str | None = None      # resourcePolicy: which pods count towards a unit's max

    @classmethod
    def from_doc(cls, doc: dict, path: str = "serverless") -> "Policy":
        """A policy from a config mapping (``policy``, ``maxWaitSeconds``, ``units``)."""
        name = doc.get("policy") or FAIR
        if name not in POLICIES:
            raise ValueError(f"{path}.policy: unknown policy {name!r}; known: {', '.join(POLICIES)}")
        wait = doc.get("maxWaitSeconds", 0)
        if not isinstance(wait, (int, float)) or isinstance(wait, bool) or wait < 0:
            raise ValueError(f"{path}.maxWaitSeconds: must be a non-negative number, not {wait!r}")
        units_doc = doc.get("units")
        if name == RESOURCE_POLICY:
            if not isinstance(units_doc, list) or not units_doc:
                raise ValueError(f"{path}.units: resourcePolicy needs a non-empty list of units")
            units = tuple(Unit.from_doc(u, f"{path}.units[{i}]") for i, u in enumerate(units_doc))
        elif units_doc:
            raise ValueError(f"{path}.units: only the resourcePolicy policy takes units")
        else:
            units = ()
        sel = doc.get("selector")
        return cls(name=name, max_wait_seconds=float(wait), units=units,
                   selector=sel if name == RESOURCE_POLICY and sel else None)

    @property
    def uses_virtual_node(self) -> bool:
        if self.name == RESOURCE_POLICY:
            return any(u.virtual for u in self.units)
        return self.name != NORMAL_NODE_ONLY

    def annotations(self) -> dict[str, str]:
        """What admission records on a pod."""
        out = {POLICY_ANNOTATION: self.name}
        if self.name == NORMAL_NODE_PREFER and self.max_wait_seconds:
            out[MAX_WAIT_ANNOTATION] = _num(self.max_wait_seconds)
        if self.name == RESOURCE_POLICY:
            doc: dict = {"units": [u.to_doc() for u in self.units]}
            if self.selector:
                doc["selector"] = self.selector
            out[RESOURCE_POLICY_ANNOTATION] = orjson.dumps(doc).decode()
        return out


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


@functools.lru_cache(maxsize=1024)
def _parse(name: str | None, wait: str | None, rp: str | None) -> Policy:
    if name not in POLICIES:
        return Policy()
    try:
        w = max(0.0, float(wait)) if wait else 0.0
    except ValueError:
        w = 0.0
    if name != RESOURCE_POLICY:
        return Policy(name=name, max_wait_seconds=w)
    try:
        doc = orjson.loads(rp or "")
        units = tuple(Unit.from_doc(u, f"units[{i}]") for i, u in enumerate(doc["units"]))
    except (ValueError, KeyError, TypeError):
        return Policy()      # unreadable record: schedule as if no policy applied
    return Policy(name=name, units=units, selector=doc.get("selector") or None)


def policy_of(pod: dict) -> Policy:
    """The policy admission recorded on ``pod`` (``fair`` when none)."""
    ann = (pod.get("metadata") or {}).get("annotations") or {}
    return _parse(ann.get(POLICY_ANNOTATION), ann.get(MAX_WAIT_ANNOTATION),
                  ann.get(RESOURCE_POLICY_ANNOTATION))


@functools.lru_cache(maxsize=1024)
def _selector(s: str) -> selectors.LabelSelector:
    return selectors.parse_label_selector(s)


def workload_selector(policy: Policy, pod: PodInfo) -> selectors.LabelSelector:
    """Which pods count towards a unit's ``max``: the policy's selector, else the pods
    carrying this pod's labels (but the per-revision hashes) — its workload."""
    if policy.selector:
        return _selector(policy.selector)
    reqs = [selectors.Requirement(k, "=", (v,)) for k, v in pod.labels.items()
            if k not in _WORKLOAD_LABELS_IGNORED]
    return selectors.LabelSelector(reqs)


@dataclass
class Tiers:
    """Node tiers to try in order, the nodes the policy holds back (with why), and when
    a held-back tier opens (seconds of real time; None: no timed retry)."""
    tiers: list[list[NodeInfo]]
    held: dict[str, Status] = field(default_factory=dict)
    retry_after: float | None = None


_WAIT_MSG = "node(s) held back by policy normalNodePrefer until the pod has waited {:g}s"
_UNIT_FULL = "node(s) in a ResourcePolicy unit that has reached its max"
_NO_UNIT = "node(s) didn't match any ResourcePolicy unit"


def tiers(policy: Policy, pod: PodInfo, cache: SchedulerCache, waited: float,
          real_seconds=lambda s: s) -> Tiers:
    """The node tiers for ``pod`` under ``policy``; ``waited`` is how long (simulated
    seconds) the pod has been pending, ``real_seconds`` converts simulated to real."""
    nodes = cache.node_list
    if policy.name == NORMAL_NODE_PREFER:
        ordinary = [n for n in nodes if not is_virtual(n)]
        virtual = [n for n in nodes if is_virtual(n)]
        if waited >= policy.max_wait_seconds or not virtual:
            return Tiers([ordinary, virtual])
        st = Status(UNSCHEDULABLE, _WAIT_MSG.format(policy.max_wait_seconds), plugin=PLUGIN)
        return Tiers([ordinary], held={n.name: st for n in virtual},
                     retry_after=real_seconds(policy.max_wait_seconds - waited))
    if policy.name == RESOURCE_POLICY:
        sel = workload_selector(policy, pod)
        counts = cache.matching_counts((pod.namespace,), sel)
        out: list[list[NodeInfo]] = []
        held: dict[str, Status] = {}
        placed = set()
        full = Status(UNSCHEDULABLE, _UNIT_FULL, plugin=PLUGIN)
        for unit in policy.units:
            members = [n for n in nodes if n.name not in placed and unit.matches(n)]
            placed.update(n.name for n in members)
            if unit.max is not None and sum(counts.get(n.name, 0) for n in members) >= unit.max:
                held.update((n.name, full) for n in members)
                out.append([])
            else:
                out.append(members)
        none = Status(UNSCHEDULABLE, _NO_UNIT, plugin=PLUGIN)
        held.update((n.name, none) for n in nodes if n.name not in placed)
        return Tiers(out, held=held)
    return Tiers([nodes])


def deletion_cost_for(policy: Policy, tier: int) -> int | None:
    """The pod-deletion-cost for a pod placed on ``tier`` (None: leave it unset) — later
    tiers are cheaper to delete, so scale-in runs in reverse order."""
    if tier <= 0 or policy.name not in (NORMAL_NODE_PREFER, RESOURCE_POLICY):
        return None
    return -tier


__all__ = ["Policy", "Unit", "Tiers", "policy_of", "tiers", "deletion_cost_for", "workload_selector",
           "is_virtual", "POLICIES", "FAIR", "NORMAL_NODE_ONLY", "VIRTUAL_NODE_ONLY",
           "NORMAL_NODE_PREFER", "RESOURCE_POLICY", "POLICY_ANNOTATION", "MAX_WAIT_ANNOTATION",
           "RESOURCE_POLICY_ANNOTATION", "DELETION_COST_ANNOTATION", "BURST_RESOURCE_ANNOTATION",
           "ECI_LABEL", "VIRTUAL_NODE_LABEL", "NODE_POOL_LABEL", "PLUGIN"]
