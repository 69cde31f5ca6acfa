"""The scheduler's view of the cluster: one :class:`NodeInfo` per node (allocatable,
requested resources, taints, the pods on it — assumed ones included) and indexes
over assigned pods that make affinity and spreading cheap:

* pods grouped by namespace and identical label set, each group knowing how many
  of its pods run on each node (a selector is matched once per label set, not once
  per pod);
* the affinity terms of assigned pods grouped by identical term, each knowing its
  nodes (so "does any existing pod's anti-affinity forbid this pod?" costs one
  match per distinct term).

Everything is fed by informer events (:meth:`SchedulerCache.add_pod` …) and by the
scheduler itself (:meth:`assume_pod`, :meth:`forget_pod`). :class:`PodInfo` is the
once-per-object parse of a pod spec every plugin reads.
"""
from __future__ import annotations

import functools
from typing import Any, Iterable

from ..api.quantity import cpu_millis, memory_bytes
from ..api.selectors import LabelSelector, label_selector_from_dict

DEFAULT_MILLI_CPU_REQUEST = 100                 # upstream's non-zero defaults (scoring only)
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
CPU, MEMORY, EPHEMERAL, PODS = "cpu", "memory", "ephemeral-storage", "pods"
NO_SCHEDULE, NO_EXECUTE, PREFER_NO_SCHEDULE = "NoSchedule", "NoExecute", "PreferNoSchedule"


# ---- resources --------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _qty_cached(name: str, value: str) -> int:
    try:
        return cpu_millis(value) if name == CPU else memory_bytes(value)
    except Exception:  # noqa: BLE001 - an unparsable quantity counts as zero
        return 0


def _qty(name: str, value: Any) -> int:
    """A resource quantity as an integer: milli-cores for cpu, whole units otherwise."""
    if isinstance(value, str):
        return _qty_cached(name, value)
    try:
        return cpu_millis(value) if name == CPU else memory_bytes(value)
    except Exception:  # noqa: BLE001 - an unparsable quantity counts as zero
        return 0


def resource_list(rl: dict | None) -> dict[str, int]:
    return {k: _qty(k, v) for k, v in (rl or {}).items()}


def _add(into: dict[str, int], other: dict[str, int]) -> None:
    for k, v in other.items():
        into[k] = into.get(k, 0) + v


def _max(into: dict[str, int], other: dict[str, int]) -> None:
    for k, v in other.items():
        if v > into.get(k, 0):
            into[k] = v


def _effective(containers: list, init_containers: list, overhead: dict | None,
               request_of) -> dict[str, int]:
    """Upstream's effective pod request: the sum over containers (plus restartable init
    containers, i.e. sidecars), at least the largest init-container step, plus overhead."""
    total: dict[str, int] = {}
    for c in containers:
        _add(total, request_of(c))
    sidecars: dict[str, int] = {}
    init_max: dict[str, int] = {}
    for c in init_containers:
        req = request_of(c)
        if c.get("restartPolicy") == "Always":
            _add(sidecars, req)
            step = dict(sidecars)
        else:
            step = dict(req)
            _add(step, sidecars)
        _max(init_max, step)
    _add(total, sidecars)
    _max(total, init_max)
    if overhead:
        _add(total, resource_list(overhead))
    return total


def pod_requests(pod: dict) -> dict[str, int]:
    """The resources a pod needs on a node (cpu in milli-cores, the rest in units);
    pod-level ``spec.resources.requests`` override the container sums they name."""
    spec = pod.get("spec") or {}
    reqs = _effective(spec.get("containers") or [], spec.get("initContainers") or [], None,
                      lambda c: resource_list((c.get("resources") or {}).get("requests")))
    pod_level = resource_list(((spec.get("resources") or {}).get("requests")))
    reqs.update(pod_level)
    if spec.get("overhead"):
        _add(reqs, resource_list(spec["overhead"]))
    return {k: v for k, v in reqs.items() if v}


def _nonzero_request(c: dict) -> dict[str, int]:
    r = (c.get("resources") or {}).get("requests") or {}
    return {CPU: _qty(CPU, r[CPU]) if CPU in r else DEFAULT_MILLI_CPU_REQUEST,
            MEMORY: _qty(MEMORY, r[MEMORY]) if MEMORY in r else DEFAULT_MEMORY_REQUEST}


def pod_nonzero_requests(pod: dict) -> tuple[int, int]:
    """cpu and memory with upstream's defaults for containers that request none (scoring)."""
    spec = pod.get("spec") or {}
    reqs = _effective(spec.get("containers") or [], spec.get("initContainers") or [],
                      spec.get("overhead"), _nonzero_request)
    return reqs.get(CPU, 0), reqs.get(MEMORY, 0)


# ---- node selectors ---------------------------------------------------------------------


def _int64(s: str) -> int | None:
    try:
        return int(s)
    except (TypeError, ValueError):
        return None


class NodeSelectorTerm:
    """One compiled ``nodeSelectorTerm`` (expressions and fields ANDed). A term without
    requirements, or with an invalid one, matches no node (as upstream)."""

    __slots__ = ("exprs", "fields", "valid")

    def __init__(self, term: dict):
        self.exprs: list[tuple[str, str, Any]] = []
        self.fields: list[tuple[str, str, Any]] = []
        self.valid = True
        for raw, out in ((term.get("matchExpressions") or [], self.exprs),
                         (term.get("matchFields") or [], self.fields)):
            for e in raw:
                op, key, values = e.get("operator"), e.get("key") or "", e.get("values") or []
                if op in ("In", "NotIn"):
                    if not values:
                        self.valid = False
                    out.append((key, op, frozenset(values)))
                elif op in ("Exists", "DoesNotExist"):
                    if values:
                        self.valid = False
                    out.append((key, op, None))
                elif op in ("Gt", "Lt"):
                    v = _int64(values[0]) if len(values) == 1 else None
                    if v is None:
                        self.valid = False
                    out.append((key, op, v))
                else:
                    self.valid = False
        for key, op, _ in self.fields:   # only metadata.name with In/NotIn is supported
            if key != "metadata.name" or op not in ("In", "NotIn"):
                self.valid = False
        if not self.exprs and not self.fields:
            self.valid = False

    def matches(self, name: str, labels: dict) -> bool:
        if not self.valid:
            return False
        for key, op, val in self.exprs:
            v = labels.get(key)
            if op == "In":
                if v is None or v not in val:
                    return False
            elif op == "NotIn":
                if v is not None and v in val:
                    return False
            elif op == "Exists":
                if v is None:
                    return False
            elif op == "DoesNotExist":
                if v is not None:
                    return False
            else:
                n = _int64(v) if v is not None else None
                if n is None or (n <= val if op == "Gt" else n >= val):
                    return False
        for _, op, val in self.fields:
            if (name in val) != (op == "In"):
                return False
        return True


class NodeSelector:
    """``requiredDuringSchedulingIgnoredDuringExecution`` of node affinity: terms ORed."""

    __slots__ = ("terms",)

    def __init__(self, sel: dict):
        self.terms = [NodeSelectorTerm(t) for t in sel.get("nodeSelectorTerms") or []]

    def matches(self, name: str, labels: dict) -> bool:
        return any(t.matches(name, labels) for t in self.terms)


# ---- pod affinity terms -----------------------------------------------------------------


class AffinityTerm:
    """A compiled PodAffinityTerm of a pod in namespace ``owner_ns``: which pods it
    selects (label selector, plus namespaces: the listed ones, those matched by
    ``namespaceSelector``, or the owner's own when both are absent)."""

    __slots__ = ("selector", "namespaces", "ns_selector", "topology_key", "key")

    def __init__(self, term: dict, owner_ns: str, owner_labels: dict | None = None):
        sel = term.get("labelSelector")
        try:
            selector = label_selector_from_dict(sel)
        except Exception:  # noqa: BLE001 - an invalid selector selects nothing
            selector = LabelSelector.nothing()
        extra = _label_keys_requirements(term, owner_labels)
        if extra and sel is not None:
            selector = LabelSelector(selector.requirements + extra)
        self.selector = selector
        names = term.get("namespaces") or []
        ns_sel = term.get("namespaceSelector")
        self.ns_selector: LabelSelector | None = None
        if ns_sel is not None:
            try:
                self.ns_selector = label_selector_from_dict(ns_sel)
            except Exception:  # noqa: BLE001
                self.ns_selector = LabelSelector.nothing()
        if not names and ns_sel is None:
            names = [owner_ns]
        self.namespaces = frozenset(names)
        self.topology_key = term.get("topologyKey") or ""
        self.key = (self.selector, self.namespaces, self.ns_selector, self.topology_key)

    def matches_namespace(self, ns: str, ns_labels) -> bool:
        if ns in self.namespaces:
            return True
        return self.ns_selector is not None and self.ns_selector.matches(ns_labels(ns))

    def matches(self, ns: str, labels: dict, ns_labels) -> bool:
        return self.matches_namespace(ns, ns_labels) and self.selector.matches(labels)


def _label_keys_requirements(term: dict, labels: dict | None) -> tuple:
    """matchLabelKeys / mismatchLabelKeys merged into the selector (upstream 1.31+)."""
    from ..api.selectors import Requirement, IN, NOT_IN
    out = []
    labels = labels or {}
    for k in term.get("matchLabelKeys") or []:
        if k in labels:
            out.append(Requirement(k, IN, (labels[k],)))
    for k in term.get("mismatchLabelKeys") or []:
        if k in labels:
            out.append(Requirement(k, NOT_IN, (labels[k],)))
    return tuple(out)


class SpreadConstraint:
    __slots__ = ("max_skew", "topology_key", "hard", "selector", "min_domains",
                 "honor_affinity", "honor_taints")

    def __init__(self, c: dict, labels: dict):
        self.max_skew = int(c.get("maxSkew") or 1)
        self.topology_key = c.get("topologyKey") or ""
        self.hard = (c.get("whenUnsatisfiable") or "DoNotSchedule") == "DoNotSchedule"
        sel = c.get("labelSelector")
        try:
            selector = label_selector_from_dict(sel)
        except Exception:  # noqa: BLE001
            selector = LabelSelector.nothing()
        from ..api.selectors import Requirement, IN
        keys = [Requirement(k, IN, (labels[k],)) for k in c.get("matchLabelKeys") or [] if k in labels]
        if keys and sel is not None:
            selector = LabelSelector(selector.requirements + tuple(keys))
        self.selector = selector
        self.min_domains = int(c.get("minDomains") or 1) if self.hard else 1
        self.honor_affinity = (c.get("nodeAffinityPolicy") or "Honor") == "Honor"
        self.honor_taints = (c.get("nodeTaintsPolicy") or "Ignore") == "Honor"


# ---- pods -------------------------------------------------------------------------------


def _weighted_terms(items, owner_ns, labels) -> list[tuple[int, AffinityTerm]]:
    out = []
    for w in items or []:
        term = w.get("podAffinityTerm") or {}
        out.append((int(w.get("weight") or 0), AffinityTerm(term, owner_ns, labels)))
    return out


class PodInfo:
    """Everything the scheduler reads from one pod object, parsed once."""

    __slots__ = ("pod", "key", "uid", "namespace", "name", "labels", "label_key", "node_name",
                 "scheduler_name", "priority", "requests", "nonzero_cpu", "nonzero_memory",
                 "tolerations", "node_selector", "required_node_affinity", "preferred_node_affinity",
                 "spread", "affinity", "anti_affinity", "preferred_affinity",
                 "preferred_anti_affinity", "terminating", "host_ports", "resource_version")

    def __init__(self, pod: dict):
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        self.pod = pod
        self.namespace = meta.get("namespace") or "default"
        self.name = meta.get("name") or ""
        self.key = f"{self.namespace}/{self.name}"
        self.uid = meta.get("uid") or ""
        self.resource_version = meta.get("resourceVersion")
        self.labels: dict = meta.get("labels") or {}
        self.label_key = tuple(sorted(self.labels.items()))
        self.node_name: str = spec.get("nodeName") or ""
        self.scheduler_name = spec.get("schedulerName") or "default-scheduler"
        self.priority = int(spec.get("priority") or 0)
        self.terminating = bool(meta.get("deletionTimestamp"))
        self.requests = pod_requests(pod)
        self.nonzero_cpu, self.nonzero_memory = pod_nonzero_requests(pod)
        self.tolerations: list[dict] = spec.get("tolerations") or []
        self.node_selector: dict = spec.get("nodeSelector") or {}
        affinity = spec.get("affinity") or {}
        na = affinity.get("nodeAffinity") or {}
        req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
        self.required_node_affinity = NodeSelector(req) if req is not None else None
        self.preferred_node_affinity = [
            (int(p.get("weight") or 0), NodeSelectorTerm(p.get("preference") or {}))
            for p in na.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
        self.spread = [SpreadConstraint(c, self.labels) for c in spec.get("topologySpreadConstraints") or []]
        pa = affinity.get("podAffinity") or {}
        paa = affinity.get("podAntiAffinity") or {}
        ns = self.namespace
        self.affinity = [AffinityTerm(t, ns, self.labels)
                         for t in pa.get("requiredDuringSchedulingIgnoredDuringExecution") or []]
        self.anti_affinity = [AffinityTerm(t, ns, self.labels)
                              for t in paa.get("requiredDuringSchedulingIgnoredDuringExecution") or []]
        self.preferred_affinity = _weighted_terms(
            pa.get("preferredDuringSchedulingIgnoredDuringExecution"), ns, self.labels)
        self.preferred_anti_affinity = _weighted_terms(
            paa.get("preferredDuringSchedulingIgnoredDuringExecution"), ns, self.labels)
        self.host_ports = _host_ports(spec)

    def matches_node_affinity(self, name: str, labels: dict) -> bool:
        """nodeSelector and required node affinity (what NodeAffinity filters on)."""
        for k, v in self.node_selector.items():
            if labels.get(k) != v:
                return False
        return self.required_node_affinity is None or self.required_node_affinity.matches(name, labels)

    def assigned_to(self, node: str) -> "PodInfo":
        """A copy of this pod bound to ``node`` (what the cache assumes)."""
        new = PodInfo.__new__(PodInfo)
        for slot in PodInfo.__slots__:
            setattr(new, slot, getattr(self, slot))
        new.pod = {**self.pod, "spec": {**(self.pod.get("spec") or {}), "nodeName": node}}
        new.node_name = node
        return new


def _host_ports(spec: dict) -> list[tuple[str, str, int]]:
    out = []
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for p in c.get("ports") or []:
            hp = p.get("hostPort")
            if hp:
                out.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", int(hp)))
    return out


def is_terminal(pod: dict) -> bool:
    return ((pod.get("status") or {}).get("phase")) in ("Succeeded", "Failed")


# ---- nodes ------------------------------------------------------------------------------


class NodeInfo:
    """One node and what is placed on it (assumed pods included)."""

    __slots__ = ("name", "node", "labels", "allocatable", "requested", "nonzero_cpu",
                 "nonzero_memory", "pods", "taints", "prefer_no_schedule", "unschedulable",
                 "used_ports", "generation")

    def __init__(self, name: str):
        self.name = name
        self.node: dict | None = None
        self.labels: dict = {}
        self.allocatable: dict[str, int] = {}
        self.requested: dict[str, int] = {}
        self.nonzero_cpu = 0
        self.nonzero_memory = 0
        self.pods: dict[str, PodInfo] = {}
        self.taints: list[dict] = []              # NoSchedule and NoExecute
        self.prefer_no_schedule: list[dict] = []
        self.unschedulable = False
        self.used_ports: dict[tuple[str, str, int], int] = {}
        self.generation = 0

    def set_node(self, node: dict) -> None:
        self.node = node
        self.labels = (node.get("metadata") or {}).get("labels") or {}
        spec = node.get("spec") or {}
        self.allocatable = resource_list((node.get("status") or {}).get("allocatable"))
        taints = spec.get("taints") or []
        self.taints = [t for t in taints if t.get("effect") in (NO_SCHEDULE, NO_EXECUTE)]
        self.prefer_no_schedule = [t for t in taints if t.get("effect") == PREFER_NO_SCHEDULE]
        self.unschedulable = bool(spec.get("unschedulable"))
        self.generation += 1

    def add_pod(self, p: PodInfo) -> None:
        self.pods[p.key] = p
        _add(self.requested, p.requests)
        self.nonzero_cpu += p.nonzero_cpu
        self.nonzero_memory += p.nonzero_memory
        for port in p.host_ports:
            self.used_ports[port] = self.used_ports.get(port, 0) + 1
        self.generation += 1

    def remove_pod(self, key: str) -> PodInfo | None:
        p = self.pods.pop(key, None)
        if p is None:
            return None
        for k, v in p.requests.items():
            self.requested[k] = self.requested.get(k, 0) - v
        self.nonzero_cpu -= p.nonzero_cpu
        self.nonzero_memory -= p.nonzero_memory
        for port in p.host_ports:
            n = self.used_ports.get(port, 0) - 1
            if n > 0:
                self.used_ports[port] = n
            else:
                self.used_ports.pop(port, None)
        self.generation += 1
        return p


# ---- indexes over assigned pods ---------------------------------------------------------


class LabelGroup:
    """Pods of one namespace sharing one label set: how many run on each node."""

    __slots__ = ("labels", "nodes", "live")

    def __init__(self, labels: dict):
        self.labels = labels
        self.nodes: dict[str, int] = {}      # every pod
        self.live: dict[str, int] = {}       # pods not being deleted (what spreading counts)


class TermGroup:
    """Identical affinity terms of assigned pods, with the nodes those pods run on."""

    __slots__ = ("term", "weight", "nodes")

    def __init__(self, term: AffinityTerm, weight: int):
        self.term = term
        self.weight = weight
        self.nodes: dict[str, int] = {}


def _inc(d: dict, k, n: int) -> None:
    v = d.get(k, 0) + n
    if v:
        d[k] = v
    else:
        d.pop(k, None)


class SchedulerCache:
    """Node infos and pod indexes; see the module docstring."""

    HARD_POD_AFFINITY_WEIGHT = 1

    def __init__(self):
        self.nodes: dict[str, NodeInfo] = {}
        self.node_list: list[NodeInfo] = []     # nodes with a Node object, in a stable order
        self.pods: dict[str, PodInfo] = {}      # assigned (and assumed) pods by key
        self.assumed: set[str] = set()
        self.label_groups: dict[str, dict[tuple, LabelGroup]] = {}
        self.anti_terms: dict[tuple, TermGroup] = {}    # required anti-affinity of assigned pods
        self.score_terms: dict[tuple, TermGroup] = {}   # weighted terms matched in scoring
        self.namespace_labels: dict[str, dict] = {}
        self.generation = 0

    # -- namespaces

    def ns_labels(self, ns: str) -> dict:
        return self.namespace_labels.get(ns) or {}

    def set_namespace(self, ns: dict) -> None:
        m = ns.get("metadata") or {}
        self.namespace_labels[m.get("name")] = m.get("labels") or {}

    def remove_namespace(self, ns: dict) -> None:
        self.namespace_labels.pop((ns.get("metadata") or {}).get("name"), None)

    # -- nodes

    def _node(self, name: str) -> NodeInfo:
        info = self.nodes.get(name)
        if info is None:
            info = self.nodes[name] = NodeInfo(name)
        return info

    def add_node(self, node: dict) -> NodeInfo:
        name = node["metadata"]["name"]
        info = self._node(name)
        if info.node is None:
            self.node_list.append(info)
        info.set_node(node)
        self.generation += 1
        return info

    update_node = add_node

    def remove_node(self, node: dict) -> None:
        name = node["metadata"]["name"]
        info = self.nodes.get(name)
        if info is None:
            return
        if info.node is not None:
            self.node_list = [n for n in self.node_list if n.name != name]
        info.node = None
        if not info.pods:     # pods still bound keep their (ghost) node info until they go
            del self.nodes[name]
        self.generation += 1

    # -- pods

    def _index(self, p: PodInfo, sign: int) -> None:
        node = p.node_name
        groups = self.label_groups.setdefault(p.namespace, {})
        g = groups.get(p.label_key)
        if g is None:
            g = groups[p.label_key] = LabelGroup(p.labels)
        _inc(g.nodes, node, sign)
        if not p.terminating:
            _inc(g.live, node, sign)
        if not g.nodes:
            del groups[p.label_key]
        for t in p.anti_affinity:
            self._term(self.anti_terms, t, 0, node, sign)
        for t in p.affinity:
            self._term(self.score_terms, t, self.HARD_POD_AFFINITY_WEIGHT, node, sign)
        for w, t in p.preferred_affinity:
            self._term(self.score_terms, t, w, node, sign)
        for w, t in p.preferred_anti_affinity:
            self._term(self.score_terms, t, -w, node, sign)

    @staticmethod
    def _term(index: dict, term: AffinityTerm, weight: int, node: str, sign: int) -> None:
        k = (term.key, weight)
        g = index.get(k)
        if g is None:
            g = index[k] = TermGroup(term, weight)
        _inc(g.nodes, node, sign)
        if not g.nodes:
            del index[k]

    def add_pod(self, pod: dict | PodInfo) -> None:
        """An assigned pod seen by the informer (confirms an assumed one)."""
        p = pod if isinstance(pod, PodInfo) else PodInfo(pod)
        if not p.node_name:
            return
        old = self.pods.get(p.key)
        if old is not None:
            self._remove(old)
        self.assumed.discard(p.key)
        self.pods[p.key] = p
        self._node(p.node_name).add_pod(p)
        self._index(p, 1)
        self.generation += 1

    update_pod = add_pod

    def _remove(self, p: PodInfo) -> None:
        info = self.nodes.get(p.node_name)
        if info is not None:
            info.remove_pod(p.key)
            if info.node is None and not info.pods:
                del self.nodes[p.node_name]
        self._index(p, -1)
        self.pods.pop(p.key, None)

    def remove_pod(self, pod: dict | PodInfo | str) -> PodInfo | None:
        key = pod if isinstance(pod, str) else (pod.key if isinstance(pod, PodInfo)
                                                 else PodInfo(pod).key)
        p = self.pods.get(key)
        if p is None:
            return None
        self._remove(p)
        self.assumed.discard(key)
        self.generation += 1
        return p

    def assume_pod(self, p: PodInfo) -> None:
        """Count ``p`` (already carrying its node name) on its node before the binding lands."""
        self.add_pod(p)
        self.assumed.add(p.key)

    def forget_pod(self, key: str) -> PodInfo | None:
        """Undo :meth:`assume_pod` (binding failed); a pod the informer confirmed stays."""
        if key in self.assumed:
            return self.remove_pod(key)
        return None

    def is_assumed(self, key: str) -> bool:
        return key in self.assumed

    # -- queries

    def matching_counts(self, namespaces: Iterable[str] | None, selector: LabelSelector,
                        live_only: bool = False, term: AffinityTerm | None = None) -> dict[str, int]:
        """node name -> number of assigned pods in ``namespaces`` (or those ``term``
        selects, or all when both are None) whose labels ``selector`` matches."""
        out: dict[str, int] = {}
        if selector is LabelSelector.nothing() or getattr(selector, "_nothing", False):
            return out
        if term is not None:
            nss = [ns for ns in self.label_groups if term.matches_namespace(ns, self.ns_labels)]
        elif namespaces is None:
            nss = list(self.label_groups)
        else:
            nss = namespaces
        for ns in nss:
            groups = self.label_groups.get(ns)
            if not groups:
                continue
            for g in groups.values():
                if selector.matches(g.labels):
                    for node, n in (g.live if live_only else g.nodes).items():
                        out[node] = out.get(node, 0) + n
        return out


__all__ = ["SchedulerCache", "NodeInfo", "PodInfo", "AffinityTerm", "SpreadConstraint",
           "NodeSelector", "NodeSelectorTerm", "pod_requests", "pod_nonzero_requests",
           "resource_list", "is_terminal"]
