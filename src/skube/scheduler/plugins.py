"""Filter and score plugins with kube-scheduler's semantics and messages.

A plugin sees the pod being scheduled as a :class:`~skube.scheduler.cache.PodInfo`
and each node as a :class:`~skube.scheduler.cache.NodeInfo`:

* ``pre_filter(state, pod, cache)`` computes what the per-node checks need (once per
  scheduling cycle) and returns False when the plugin has nothing to check;
* ``filter(state, pod, node)`` returns None when the node fits, else a :class:`Status`
  with upstream's reason strings;
* ``pre_score(state, pod, cache, nodes)`` / ``score(state, pod, node)`` /
  ``normalize(state, pod, scores)`` rank the feasible nodes 0..100; the framework
  multiplies by ``weight`` (upstream's default weights).

``events`` names the cluster changes that may make a pod this plugin rejected
schedulable (upstream's EventsToRegister): the queue retries such pods only then.
"""
from __future__ import annotations

import math

from .cache import (CPU, EPHEMERAL, MEMORY, NO_SCHEDULE, PODS, PREFER_NO_SCHEDULE,
                    NodeInfo, PodInfo, SchedulerCache)

MAX_NODE_SCORE = 100

# status codes
UNSCHEDULABLE = 1                  # another placement of other pods (or preemption) may help
UNSCHEDULABLE_AND_UNRESOLVABLE = 2  # nothing but a change of the node or the pod helps

# cluster events
NODE_ADD = "NodeAdd"
NODE_UPDATE = "NodeUpdate"
NODE_DELETE = "NodeDelete"
POD_ADD = "AssignedPodAdd"
POD_UPDATE = "AssignedPodUpdate"
POD_DELETE = "AssignedPodDelete"
NAMESPACE_CHANGE = "NamespaceChange"
ALL_EVENTS = frozenset({NODE_ADD, NODE_UPDATE, NODE_DELETE, POD_ADD, POD_UPDATE, POD_DELETE,
                        NAMESPACE_CHANGE})


class Status:
    """Why a node does not fit: a code, upstream's reason strings and the plugin."""

    __slots__ = ("code", "reasons", "plugin")

    def __init__(self, code: int, *reasons: str, plugin: str = ""):
        self.code = code
        self.reasons = reasons
        self.plugin = plugin

    @property
    def unresolvable(self) -> bool:
        return self.code == UNSCHEDULABLE_AND_UNRESOLVABLE

    def __repr__(self) -> str:
        return f"Status({self.code}, {', '.join(self.reasons)!r}, plugin={self.plugin!r})"


CycleState = dict   # per scheduling cycle scratch space, keyed by plugin name


class Plugin:
    name = ""
    weight = 0                 # score weight; 0: not a score plugin
    events: frozenset = frozenset()
    filters = False

    def pre_filter(self, state: CycleState, pod: PodInfo, cache: SchedulerCache) -> bool:
        return True

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return None

    def pre_score(self, state: CycleState, pod: PodInfo, cache: SchedulerCache,
                  nodes: list[NodeInfo]) -> bool:
        return True

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return 0

    def normalize(self, state: CycleState, pod: PodInfo, scores: list[int]) -> None:
        pass


def default_normalize(scores: list[int], reverse: bool = False) -> None:
    """Upstream's DefaultNormalizeScore: scale to 0..100 by the maximum (reversed if asked)."""
    top = max(scores, default=0)
    if top == 0:
        if reverse:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
        return
    for i, s in enumerate(scores):
        s = MAX_NODE_SCORE * s // top
        scores[i] = MAX_NODE_SCORE - s if reverse else s


# ---- tolerations ------------------------------------------------------------------------


def tolerates(toleration: dict, taint: dict) -> bool:
    """v1.Toleration.ToleratesTaint: effect (empty matches all), key (empty with Exists
    matches all), operator Exists, or Equal (the default) with an equal value."""
    effect = toleration.get("effect")
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key")
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerates_taint(tolerations: list[dict], taint: dict) -> bool:
    for t in tolerations:
        if tolerates(t, taint):
            return True
    return False


def find_untolerated(taints: list[dict], tolerations: list[dict]) -> dict | None:
    for taint in taints:
        if not tolerates_taint(tolerations, taint):
            return taint
    return None


# ---- NodeUnschedulable, NodeName, NodePorts ---------------------------------------------


UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": NO_SCHEDULE}


class NodeUnschedulable(Plugin):
    name = "NodeUnschedulable"
    events = frozenset({NODE_ADD, NODE_UPDATE})
    filters = True
    _status = Status(UNSCHEDULABLE_AND_UNRESOLVABLE, "node(s) were unschedulable", plugin=name)

    def pre_filter(self, state, pod, cache):
        state[self.name] = tolerates_taint(pod.tolerations, UNSCHEDULABLE_TAINT)
        return True

    def filter(self, state, pod, node):
        if node.unschedulable and not state[self.name]:
            return self._status
        return None


class NodeName(Plugin):
    name = "NodeName"
    events = frozenset({NODE_ADD})
    filters = True
    _status = Status(UNSCHEDULABLE_AND_UNRESOLVABLE, "node(s) didn't match the requested node name",
                     plugin=name)

    def pre_filter(self, state, pod, cache):
        return bool(pod.node_name)

    def filter(self, state, pod, node):
        if pod.node_name and pod.node_name != node.name:
            return self._status
        return None


class NodePorts(Plugin):
    name = "NodePorts"
    events = frozenset({NODE_ADD, POD_DELETE})
    filters = True
    _status = Status(UNSCHEDULABLE, "node(s) didn't have free ports for the requested pod ports",
                     plugin=name)

    def pre_filter(self, state, pod, cache):
        return bool(pod.host_ports)

    def filter(self, state, pod, node):
        used = node.used_ports
        if not used:
            return None
        for ip, proto, port in pod.host_ports:
            for uip, uproto, uport in used:
                if uport == port and uproto == proto and (ip == uip or "0.0.0.0" in (ip, uip)):
                    return self._status
        return None


# ---- TaintToleration --------------------------------------------------------------------


class TaintToleration(Plugin):
    """Filter: NoSchedule/NoExecute taints must be tolerated. Score: fewer untolerated
    PreferNoSchedule taints is better."""
    name = "TaintToleration"
    weight = 3
    events = frozenset({NODE_ADD, NODE_UPDATE})
    filters = True

    def filter(self, state, pod, node):
        if not node.taints:
            return None
        taint = find_untolerated(node.taints, pod.tolerations)
        if taint is None:
            return None
        return Status(UNSCHEDULABLE_AND_UNRESOLVABLE,
                      f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value') or ''}}}",
                      plugin=self.name)

    def pre_score(self, state, pod, cache, nodes):
        state[self.name] = [t for t in pod.tolerations
                            if not t.get("effect") or t.get("effect") == PREFER_NO_SCHEDULE]
        return True

    def score(self, state, pod, node):
        if not node.prefer_no_schedule:
            return 0
        tols = state[self.name]
        return sum(1 for taint in node.prefer_no_schedule if not tolerates_taint(tols, taint))

    def normalize(self, state, pod, scores):
        default_normalize(scores, reverse=True)


# ---- NodeAffinity -----------------------------------------------------------------------


class NodeAffinity(Plugin):
    """Filter: nodeSelector and required node affinity. Score: the summed weights of the
    matching preferred terms."""
    name = "NodeAffinity"
    weight = 2
    events = frozenset({NODE_ADD, NODE_UPDATE})
    filters = True
    _status = Status(UNSCHEDULABLE_AND_UNRESOLVABLE, "node(s) didn't match Pod's node affinity/selector",
                     plugin=name)

    def pre_filter(self, state, pod, cache):
        return bool(pod.node_selector) or pod.required_node_affinity is not None

    def filter(self, state, pod, node):
        if pod.matches_node_affinity(node.name, node.labels):
            return None
        return self._status

    def pre_score(self, state, pod, cache, nodes):
        return bool(pod.preferred_node_affinity)

    def score(self, state, pod, node):
        total = 0
        for weight, term in pod.preferred_node_affinity:
            if weight and term.matches(node.name, node.labels):
                total += weight
        return total

    def normalize(self, state, pod, scores):
        default_normalize(scores)


# ---- NodeResourcesFit and BalancedAllocation --------------------------------------------


class NodeResourcesFit(Plugin):
    """Filter: the pod's requests fit the node's allocatable minus what its pods request
    (and the pod count). Score: LeastAllocated over cpu and memory (non-zero requests)."""
    name = "NodeResourcesFit"
    weight = 1
    events = frozenset({NODE_ADD, NODE_UPDATE, POD_DELETE, POD_UPDATE})
    filters = True
    _too_many = Status(UNSCHEDULABLE, "Too many pods", plugin=name)

    def pre_filter(self, state, pod, cache):
        # (resource, amount) pairs in upstream's order: cpu, memory, ephemeral-storage, scalars
        reqs = pod.requests
        order = [r for r in (CPU, MEMORY, EPHEMERAL) if reqs.get(r)]
        order += sorted(k for k, v in reqs.items() if v and k not in (CPU, MEMORY, EPHEMERAL, PODS))
        state[self.name] = [(r, reqs[r]) for r in order]
        return True

    def filter(self, state, pod, node):
        alloc = node.allocatable
        if len(node.pods) + 1 > alloc.get(PODS, 0):
            insufficient = ["Too many pods"]
        else:
            insufficient = None
        requested = node.requested
        for r, amount in state[self.name]:
            if amount > alloc.get(r, 0) - requested.get(r, 0):
                if insufficient is None:
                    insufficient = []
                insufficient.append(f"Insufficient {r}")
        if insufficient is None:
            return None
        return Status(UNSCHEDULABLE, *insufficient, plugin=self.name)

    def score(self, state, pod, node):
        alloc = node.allocatable
        total = 0
        for cap, req in ((alloc.get(CPU, 0), node.nonzero_cpu + pod.nonzero_cpu),
                         (alloc.get(MEMORY, 0), node.nonzero_memory + pod.nonzero_memory)):
            if cap and req <= cap:
                total += (cap - req) * MAX_NODE_SCORE // cap
        return total // 2


class BalancedAllocation(Plugin):
    """Score: nodes whose cpu and memory fractions stay close are better
    (1 - standard deviation of the fractions, with the pod placed)."""
    name = "NodeResourcesBalancedAllocation"
    weight = 1
    events = frozenset({NODE_ADD, NODE_UPDATE, POD_DELETE, POD_UPDATE})

    def pre_score(self, state, pod, cache, nodes):
        state[self.name] = (pod.requests.get(CPU, 0), pod.requests.get(MEMORY, 0))
        return True

    def score(self, state, pod, node):
        alloc = node.allocatable
        req = node.requested
        cpu_cap, mem_cap = alloc.get(CPU, 0), alloc.get(MEMORY, 0)
        if not cpu_cap or not mem_cap:
            return MAX_NODE_SCORE if cpu_cap or mem_cap else 0
        pod_cpu, pod_mem = state[self.name]
        f_cpu = min(1.0, (req.get(CPU, 0) + pod_cpu) / cpu_cap)
        f_mem = min(1.0, (req.get(MEMORY, 0) + pod_mem) / mem_cap)
        # the standard deviation of two values is half their distance
        std = abs(f_cpu - f_mem) / 2
        return int((1 - std) * MAX_NODE_SCORE)


# ---- PodTopologySpread ------------------------------------------------------------------


SPREAD_MISSING_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
SPREAD_SKEW = "node(s) didn't match pod topology spread constraints"


def _node_included(c, pod: PodInfo, node: NodeInfo) -> bool:
    """nodeAffinityPolicy / nodeTaintsPolicy: does this node count for the constraint?"""
    if c.honor_affinity and not pod.matches_node_affinity(node.name, node.labels):
        return False
    if c.honor_taints and node.taints and find_untolerated(node.taints, pod.tolerations) is not None:
        return False
    return True


class PodTopologySpread(Plugin):
    """Filter: DoNotSchedule constraints keep ``count(domain) + self - min(domains) <=
    maxSkew`` (min taken as 0 while fewer than minDomains domains exist). Score:
    ScheduleAnyway constraints prefer domains with fewer matching pods."""
    name = "PodTopologySpread"
    weight = 2
    events = frozenset({POD_ADD, POD_UPDATE, POD_DELETE, NODE_ADD, NODE_UPDATE, NODE_DELETE})
    filters = True
    _missing = Status(UNSCHEDULABLE_AND_UNRESOLVABLE, SPREAD_MISSING_LABEL, plugin=name)
    _skew = Status(UNSCHEDULABLE, SPREAD_SKEW, plugin=name)

    def _counts(self, pod: PodInfo, cache: SchedulerCache, constraints, nodes) -> list[dict]:
        """Per constraint: domain value -> matching pods, over the nodes that count."""
        keys = [c.topology_key for c in constraints]
        per_node = [cache.matching_counts((pod.namespace,), c.selector, live_only=True)
                    for c in constraints]
        out: list[dict[str, int]] = [{} for _ in constraints]
        for node in nodes:
            labels = node.labels
            if any(k not in labels for k in keys):
                continue
            for i, c in enumerate(constraints):
                if not _node_included(c, pod, node):
                    continue
                value = labels[c.topology_key]
                d = out[i]
                d[value] = d.get(value, 0) + per_node[i].get(node.name, 0)
        return out

    def pre_filter(self, state, pod, cache):
        hard = [c for c in pod.spread if c.hard]
        if not hard:
            return False
        counts = self._counts(pod, cache, hard, cache.node_list)
        mins = []
        for c, d in zip(hard, counts):
            lowest = min(d.values()) if d else 0
            if len(d) < c.min_domains:
                lowest = 0
            mins.append(lowest)
        state[self.name] = [(c, d, lowest, 1 if c.selector.matches(pod.labels) else 0)
                            for c, d, lowest in zip(hard, counts, mins)]
        return True

    def filter(self, state, pod, node):
        labels = node.labels
        for c, _, _, _ in state[self.name]:
            if c.topology_key not in labels:
                return self._missing
        for c, d, lowest, self_match in state[self.name]:
            if d.get(labels[c.topology_key], 0) + self_match - lowest > c.max_skew:
                return self._skew
        return None

    def pre_score(self, state, pod, cache, nodes):
        soft = [c for c in pod.spread if not c.hard]
        if not soft:
            return False
        counts = self._counts(pod, cache, soft, cache.node_list)
        weights = []
        for c, d in zip(soft, counts):
            if c.topology_key == "kubernetes.io/hostname":
                size = sum(1 for n in nodes if c.topology_key in n.labels)
            else:
                size = len({n.labels[c.topology_key] for n in nodes if c.topology_key in n.labels})
            weights.append(math.log(size + 2))
        state[self.name + "/score"] = (soft, counts, weights)
        return True

    def score(self, state, pod, node):
        soft, counts, weights = state[self.name + "/score"]
        labels = node.labels
        total = 0.0
        for c, d, w in zip(soft, counts, weights):
            value = labels.get(c.topology_key)
            if value is None:
                return -1                       # ignored node: scored 0 after normalizing
            total += d.get(value, 0) * w + (c.max_skew - 1)
        return round(total)

    def normalize(self, state, pod, scores):
        valid = [s for s in scores if s >= 0]
        if not valid:
            scores[:] = [0] * len(scores)
            return
        lo, hi = min(valid), max(valid)
        for i, s in enumerate(scores):
            if s < 0:
                scores[i] = 0
            elif hi == 0:
                scores[i] = MAX_NODE_SCORE
            else:
                scores[i] = MAX_NODE_SCORE * (hi + lo - s) // hi


# ---- InterPodAffinity -------------------------------------------------------------------


AFFINITY_NOT_MATCH = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY_NOT_MATCH = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"


def _domains(cache: SchedulerCache, node_counts: dict[str, int], key: str,
             into: dict[tuple[str, str], int], weight: int = 1) -> None:
    """Add ``weight * count`` to ``(key, node's value of key)`` for each node."""
    nodes = cache.nodes
    for name, n in node_counts.items():
        info = nodes.get(name)
        if info is None:
            continue
        value = info.labels.get(key)
        if value is not None:
            k = (key, value)
            into[k] = into.get(k, 0) + n * weight


class InterPodAffinity(Plugin):
    """Filter: required pod affinity and anti-affinity of the pod, and the required
    anti-affinity of the pods already placed. Score: preferred terms both ways (and
    existing pods' required affinity with hardPodAffinityWeight)."""
    name = "InterPodAffinity"
    weight = 2
    events = frozenset({POD_ADD, POD_UPDATE, POD_DELETE, NODE_ADD, NODE_UPDATE, NAMESPACE_CHANGE})
    filters = True
    _affinity = Status(UNSCHEDULABLE_AND_UNRESOLVABLE, AFFINITY_NOT_MATCH, plugin=name)
    _anti = Status(UNSCHEDULABLE, ANTI_AFFINITY_NOT_MATCH, plugin=name)
    _existing = Status(UNSCHEDULABLE, EXISTING_ANTI_AFFINITY, plugin=name)

    def pre_filter(self, state, pod, cache):
        ns_labels = cache.ns_labels
        # pairs (topologyKey, value) where an existing pod's anti-affinity forbids this pod
        existing: dict[tuple[str, str], int] = {}
        for g in cache.anti_terms.values():
            t = g.term
            if t.matches(pod.namespace, pod.labels, ns_labels):
                _domains(cache, g.nodes, t.topology_key, existing)
        affinity: dict[tuple[str, str], int] = {}
        if pod.affinity:
            # pods matching ALL the affinity terms count, in each term's domain
            terms = pod.affinity
            for ns, groups in cache.label_groups.items():
                if not all(t.matches_namespace(ns, ns_labels) for t in terms):
                    continue
                for g in groups.values():
                    if all(t.selector.matches(g.labels) for t in terms):
                        for t in terms:
                            _domains(cache, g.nodes, t.topology_key, affinity)
        anti: list[dict[tuple[str, str], int]] = []
        for t in pod.anti_affinity:
            d: dict[tuple[str, str], int] = {}
            _domains(cache, cache.matching_counts(None, t.selector, term=t), t.topology_key, d)
            anti.append(d)
        if not existing and not pod.affinity and not pod.anti_affinity:
            return False
        self_match = all(t.matches(pod.namespace, pod.labels, ns_labels) for t in pod.affinity)
        state[self.name] = (existing, affinity, anti, self_match)
        return True

    def filter(self, state, pod, node):
        existing, affinity, anti, self_match = state[self.name]
        labels = node.labels
        if pod.affinity:
            ok = True
            for t in pod.affinity:
                value = labels.get(t.topology_key)
                if value is None or not affinity.get((t.topology_key, value)):
                    ok = False
                    break
            if not ok:
                # the first pod of a group that selects itself may go anywhere the keys exist
                if affinity or not self_match or \
                        any(t.topology_key not in labels for t in pod.affinity):
                    return self._affinity
        for t, d in zip(pod.anti_affinity, anti):
            value = labels.get(t.topology_key)
            if value is not None and d.get((t.topology_key, value)):
                return self._anti
        if existing:
            for (key, value) in existing:
                if labels.get(key) == value:
                    return self._existing
        return None

    def pre_score(self, state, pod, cache, nodes):
        ns_labels = cache.ns_labels
        scores: dict[tuple[str, str], int] = {}
        for w, t in pod.preferred_affinity:
            if w:
                _domains(cache, cache.matching_counts(None, t.selector, term=t), t.topology_key, scores, w)
        for w, t in pod.preferred_anti_affinity:
            if w:
                _domains(cache, cache.matching_counts(None, t.selector, term=t), t.topology_key,
                         scores, -w)
        for g in cache.score_terms.values():
            if g.weight and g.term.matches(pod.namespace, pod.labels, ns_labels):
                _domains(cache, g.nodes, g.term.topology_key, scores, g.weight)
        scores = {k: v for k, v in scores.items() if v}
        if not scores:
            return False
        state[self.name + "/score"] = scores
        return True

    def score(self, state, pod, node):
        labels = node.labels
        total = 0
        for (key, value), s in state[self.name + "/score"].items():
            if labels.get(key) == value:
                total += s
        return total

    def normalize(self, state, pod, scores):
        if not scores:
            return
        lo, hi = min(scores), max(scores)
        diff = hi - lo
        for i, s in enumerate(scores):
            scores[i] = MAX_NODE_SCORE * (s - lo) // diff if diff > 0 else 0


def default_plugins() -> list[Plugin]:
    """The default profile, in upstream's filter order."""
    return [NodeUnschedulable(), NodeName(), TaintToleration(), NodeAffinity(), NodePorts(),
            NodeResourcesFit(), PodTopologySpread(), InterPodAffinity(), BalancedAllocation()]


__all__ = ["Plugin", "Status", "CycleState", "UNSCHEDULABLE", "UNSCHEDULABLE_AND_UNRESOLVABLE",
           "NodeUnschedulable", "NodeName", "NodePorts", "TaintToleration", "NodeAffinity",
           "NodeResourcesFit", "BalancedAllocation", "PodTopologySpread", "InterPodAffinity",
           "default_plugins", "tolerates", "tolerates_taint", "default_normalize", "MAX_NODE_SCORE",
           "NODE_ADD", "NODE_UPDATE", "NODE_DELETE", "POD_ADD", "POD_UPDATE", "POD_DELETE",
           "NAMESPACE_CHANGE", "ALL_EVENTS"]
