"""The autoscaler's decisions as pure functions over a scheduler cache snapshot, with
cluster-autoscaler's rules and the scheduler's own filter plugins.

* Scale up (:func:`plan_scale_up`): a pod the scheduler marked unschedulable
  (``PodScheduled=False``, reason ``Unschedulable``) that fits no existing or booting
  node, but fits an empty node of a pool below its max, adds a node to the first such
  pool in declaration order (upstream's ``priority`` expander with the config's order);
  pending pods are packed first-fit, largest first, onto the nodes already planned.
* Scale down (:func:`scale_down_candidates`): a pool node above its pool's min whose
  utilisation — max over cpu and memory of the sum of its pods' requests divided by
  allocatable — is below 0.5, whose pods may all be moved (each is owned by a controller,
  has no local storage, is not ``safe-to-evict: "false"``; DaemonSet and mirror pods are
  ignored) and fit on the remaining nodes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from ..scheduler.cache import CPU, MEMORY, NodeInfo, PodInfo, SchedulerCache
from ..scheduler.plugins import Plugin, default_plugins
from .pools import INSTANCE_TYPE_LABEL, POOL_LABEL, PoolSpec

UTILIZATION_THRESHOLD = 0.5
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
SCALE_DOWN_DISABLED = "cluster-autoscaler.kubernetes.io/scale-down-disabled"
TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def template_node(spec: PoolSpec, name: str, arch: str = "amd64") -> dict:
    """What a new node of ``spec`` will look like once it registers."""
    cap = spec.size.capacity()
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": node_labels(spec, name, arch)},
            "spec": {}, "status": {"capacity": cap, "allocatable": dict(cap)}}


def node_labels(spec: PoolSpec, name: str, arch: str = "amd64") -> dict:
    return {POOL_LABEL: spec.name, INSTANCE_TYPE_LABEL: spec.instance_type,
            "kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
            "kubernetes.io/hostname": name}


def is_unschedulable(pod: dict) -> bool:
    """Pending, unbound, and marked unschedulable by the scheduler."""
    spec, meta = pod.get("spec") or {}, pod.get("metadata") or {}
    if spec.get("nodeName") or meta.get("deletionTimestamp"):
        return False
    if (pod.get("status") or {}).get("phase") not in (None, "", "Pending"):
        return False
    return any(c.get("type") == "PodScheduled" and c.get("status") == "False"
               and c.get("reason") == "Unschedulable"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _filters(pod: PodInfo, cache: SchedulerCache, plugins: list[Plugin]) -> tuple[dict, list[Plugin]]:
    state: dict = {}
    return state, [p for p in plugins if p.filters and p.pre_filter(state, pod, cache)]


def fits(pod: PodInfo, node: NodeInfo, state: dict, filters: list[Plugin]) -> bool:
    return all(p.filter(state, pod, node) is None for p in filters)


def _assume(cache: SchedulerCache, pod: PodInfo, node: str) -> None:
    cache.add_pod(pod.assigned_to(node))


@dataclass
class PoolView:
    """A pool as the autoscaler sees it now: its nodes (registered or booting)."""
    spec: PoolSpec
    nodes: list[str] = field(default_factory=list)
    booting: list[str] = field(default_factory=list)    # requested, not yet registered

    @property
    def room(self) -> int:
        return self.spec.max - len(self.nodes)


@dataclass
class ScaleUpPlan:
    new_nodes: dict[str, int] = field(default_factory=dict)     # pool → nodes to add
    triggered: dict[str, str] = field(default_factory=dict)     # pod key → pool it scales
    waiting: list[str] = field(default_factory=list)            # pod keys a booting node takes
    expected: dict[str, str] = field(default_factory=dict)      # pod key → existing node it fits
    no_scale_up: dict[str, str] = field(default_factory=dict)   # pod key → why not


def plan_scale_up(cache: SchedulerCache, pending: list[dict], pools: list[PoolView], *,
                  plugins: list[Plugin] | None = None, arch: str = "amd64") -> ScaleUpPlan:
    """Which pools grow by how many nodes for the ``pending`` pods (see the module doc).
    ``cache`` is modified (booting and planned nodes and assumed pods are added)."""
    plugins = plugins if plugins is not None else default_plugins()
    plan = ScaleUpPlan()
    real = {n.name for n in cache.node_list}
    for view in pools:
        for name in view.booting:
            if name not in cache.nodes or cache.nodes[name].node is None:
                cache.add_node(template_node(view.spec, name, arch))
    booting = {name for v in pools for name in v.booting} - real
    infos = sorted((PodInfo(p) for p in pending),
                   key=lambda p: (-p.priority, -p.requests.get(CPU, 0), -p.requests.get(MEMORY, 0), p.key))
    first_fit: dict[tuple, int] = {}    # equivalence group → first node a next member may fit
    for pod in infos:
        state, filters = _filters(pod, cache, plugins)
        group = _equivalence(pod)
        nodes = cache.node_list
        i = first_fit.get(group, 0) if group is not None else 0
        while i < len(nodes) and not fits(pod, nodes[i], state, filters):
            i += 1
        placed = nodes[i] if i < len(nodes) else None
        if group is not None:
            first_fit[group] = i
        if placed is not None:
            _assume(cache, pod, placed.name)
            if placed.name in booting or placed.name.startswith("template-"):
                plan.waiting.append(pod.key)
                if placed.name.startswith("template-"):
                    plan.triggered[pod.key] = placed.labels.get(POOL_LABEL, "")
            else:
                plan.expected[pod.key] = placed.name
            continue
        at_max = []
        for view in pools:
            name = f"template-{view.spec.name}-{plan.new_nodes.get(view.spec.name, 0)}"
            info = NodeInfo(name)
            info.set_node(template_node(view.spec, name, arch))
            if not fits(pod, info, state, filters):
                continue
            if view.room - plan.new_nodes.get(view.spec.name, 0) <= 0:
                at_max.append(view.spec.name)
                continue
            cache.add_node(template_node(view.spec, name, arch))
            _assume(cache, pod, name)
            plan.new_nodes[view.spec.name] = plan.new_nodes.get(view.spec.name, 0) + 1
            plan.triggered[pod.key] = view.spec.name
            break
        else:
            plan.no_scale_up[pod.key] = (
                f"pod didn't trigger scale-up: {len(at_max)} max node group size reached"
                if at_max else
                f"pod didn't trigger scale-up: it wouldn't fit if a new node is added "
                f"({len(pools)} node pool(s) checked)")
    return plan


def _equivalence(pod: PodInfo) -> tuple | None:
    """Pods of one controller with the same spec fit the same nodes (cluster-autoscaler's
    equivalence groups): nodes a member did not fit on stay closed to the next one, as the
    plan only fills nodes up. None when where others went matters (spread, pod affinity)."""
    if pod.spread or pod.affinity or pod.anti_affinity:
        return None
    meta = pod.pod.get("metadata") or {}
    owner = next((r.get("uid") for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
    if owner is None:
        return None
    return owner, orjson.dumps(pod.pod.get("spec") or {}, option=orjson.OPT_SORT_KEYS)


# ---- scale down -----------------------------------------------------------------------


def utilization(node: NodeInfo, pods: list[PodInfo] | None = None) -> float:
    """max(cpu, memory) of requested / allocatable, DaemonSet and mirror pods excluded."""
    pods = [p for p in node.pods.values() if not _ignored(p)] if pods is None else pods
    out = 0.0
    for r in (CPU, MEMORY):
        alloc = node.allocatable.get(r, 0)
        if alloc > 0:
            out = max(out, sum(p.requests.get(r, 0) for p in pods) / alloc)
    return out


def _ignored(p: PodInfo) -> bool:
    """DaemonSet pods, mirror pods and finished pods do not keep a node."""
    meta = p.pod.get("metadata") or {}
    if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
        return True
    if ((p.pod.get("status") or {}).get("phase")) in ("Succeeded", "Failed"):
        return True
    return any(o.get("kind") == "DaemonSet" and o.get("controller")
               for o in meta.get("ownerReferences") or [])


def blocking_reason(p: PodInfo) -> str | None:
    """Why this pod keeps its node (cluster-autoscaler's rules), or None."""
    meta = p.pod.get("metadata") or {}
    safe = (meta.get("annotations") or {}).get(SAFE_TO_EVICT)
    if safe == "false":
        return f"pod {p.key} is annotated {SAFE_TO_EVICT}: \"false\""
    if safe == "true":
        return None
    if not any(o.get("controller") for o in meta.get("ownerReferences") or []):
        return f"pod {p.key} is not run by a controller"
    for v in (p.pod.get("spec") or {}).get("volumes") or []:
        if "emptyDir" in v or "hostPath" in v:
            return f"pod {p.key} has local storage (volume {v.get('name')})"
    return None


def movable_pods(node: NodeInfo) -> tuple[list[PodInfo], str | None]:
    """The pods that would have to move off ``node``, or a reason it cannot be drained."""
    pods = [p for p in node.pods.values() if not _ignored(p) and not p.terminating]
    for p in pods:
        reason = blocking_reason(p)
        if reason:
            return pods, reason
    return pods, None


@dataclass
class Candidate:
    node: str
    pool: str
    utilization: float
    pods: list[str]       # keys of the pods to evict (empty: an empty node)


def scale_down_candidates(cache: SchedulerCache, pools: dict[str, PoolView], *,
                          threshold: float = UTILIZATION_THRESHOLD,
                          plugins: list[Plugin] | None = None,
                          exclude: set[str] = frozenset(),
                          keep: set[str] = frozenset()) -> tuple[list[Candidate], dict[str, str]]:
    """Nodes that could go now, emptiest first, never taking a pool below its min; and
    for the pool nodes that cannot, why. Each candidate's pods are simulated onto the
    other nodes (candidates already chosen and ``exclude`` are no destination; ``keep``,
    nodes pending pods are about to land on, stay but take pods); ``cache`` is modified."""
    plugins = plugins if plugins is not None else default_plugins()
    out: list[Candidate] = []
    why: dict[str, str] = {}
    removable = {name: len(v.nodes) - v.spec.min for name, v in pools.items()}
    nodes = [n for n in cache.node_list if n.labels.get(POOL_LABEL) in pools and n.name not in exclude]
    nodes.sort(key=lambda n: (utilization(n), n.name))
    gone: set[str] = set(exclude)
    for node in nodes:
        pool = node.labels[POOL_LABEL]
        annotations = ((node.node or {}).get("metadata") or {}).get("annotations") or {}
        if annotations.get(SCALE_DOWN_DISABLED) == "true":
            why[node.name] = f"annotated {SCALE_DOWN_DISABLED}"
            continue
        if node.name in keep:
            why[node.name] = "unschedulable pods fit on it"
            continue
        u = utilization(node)
        if u >= threshold:
            why[node.name] = f"utilization {u:.2f} is not below {threshold}"
            continue
        if removable[pool] <= 0:
            why[node.name] = f"node pool {pool} is at its min size {pools[pool].spec.min}"
            continue
        pods, reason = movable_pods(node)
        if reason:
            why[node.name] = reason
            continue
        gone.add(node.name)
        others = [n for n in cache.node_list if n.name not in gone and not n.unschedulable
                  and not any(t.get("key") == TO_BE_DELETED_TAINT for t in n.taints)]
        moved: list[PodInfo] = []
        for p in sorted(pods, key=lambda p: -p.requests.get(CPU, 0)):
            free = p.assigned_to("")
            cache.remove_pod(p.key)
            state, filters = _filters(free, cache, plugins)
            dest = next((n for n in others if fits(free, n, state, filters)), None)
            cache.add_pod(p if dest is None else free.assigned_to(dest.name))
            if dest is None:
                reason = f"pod {p.key} fits no other node"
                break
            moved.append(p)
        if reason:
            for p in moved:         # undo the simulated moves
                cache.remove_pod(p.key)
                cache.add_pod(p)
            gone.discard(node.name)
            why[node.name] = reason
            continue
        removable[pool] -= 1
        out.append(Candidate(node.name, pool, u, [p.key for p in pods]))
    return out, why


__all__ = ["plan_scale_up", "scale_down_candidates", "ScaleUpPlan", "PoolView", "Candidate",
           "template_node", "node_labels", "is_unschedulable", "utilization", "blocking_reason",
           "UTILIZATION_THRESHOLD", "TO_BE_DELETED_TAINT"]
