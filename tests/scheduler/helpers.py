"""Builders for Node and Pod dicts and a client-less scheduling harness."""
from __future__ import annotations

import itertools

from skube.scheduler.cache import PodInfo, SchedulerCache
from skube.scheduler.plugins import default_plugins
from skube.scheduler.scheduler import FitError, Scheduler

_uid = itertools.count(1)


def node(name: str, cpu: str = "4", memory: str = "8Gi", pods: str = "110", labels: dict | None = None,
         taints: list | None = None, unschedulable: bool = False, extra: dict | None = None) -> dict:
    alloc = {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}
    spec: dict = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": spec,
            "status": {"allocatable": alloc, "capacity": alloc,
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(name: str, ns: str = "default", cpu: str | None = None, memory: str | None = None,
        labels: dict | None = None, node_name: str | None = None, **spec) -> dict:
    requests = {}
    if cpu:
        requests["cpu"] = cpu
    if memory:
        requests["memory"] = memory
    container = {"name": "c", "image": "busybox"}
    if requests:
        container["resources"] = {"requests": requests}
    s = {"containers": [container], "schedulerName": "default-scheduler", **spec}
    if node_name:
        s["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "uid": f"uid-{next(_uid)}",
                         "labels": labels or {}, "resourceVersion": "1"},
            "spec": s, "status": {"phase": "Pending"}}


def term(labels: dict, key: str = "kubernetes.io/hostname", **extra) -> dict:
    return {"labelSelector": {"matchLabels": labels}, "topologyKey": key, **extra}


class Harness:
    """A cache plus the default plugins, no API server."""

    def __init__(self, nodes: list[dict], pods: list[dict] = (), namespaces: dict | None = None,
                 seed: int = 1):
        self.sched = Scheduler(None, seed=seed)   # type: ignore[arg-type] - no I/O is done
        self.cache: SchedulerCache = self.sched.cache
        for n in nodes:
            self.cache.add_node(n)
        for p in pods:
            self.cache.add_pod(p)
        for name, labels in (namespaces or {}).items():
            self.cache.set_namespace({"metadata": {"name": name, "labels": labels}})

    def schedule(self, p: dict) -> str:
        return self.sched.schedule_pod(PodInfo(p))

    def place(self, p: dict) -> str:
        """Schedule and assume (as a bound pod) — for sequences."""
        info = PodInfo(p)
        name = self.sched.schedule_pod(info)
        self.cache.add_pod(info.assigned_to(name))
        return name

    def error(self, p: dict) -> FitError:
        try:
            name = self.schedule(p)
        except FitError as e:
            return e
        raise AssertionError(f"expected no fit, got {name}")

    def feasible(self, p: dict) -> set[str]:
        info = PodInfo(p)
        state: dict = {}
        plugins = [pl for pl in default_plugins() if pl.filters and pl.pre_filter(state, info, self.cache)]
        out = set()
        for n in self.cache.node_list:
            if all(pl.filter(state, info, n) is None for pl in plugins):
                out.add(n.name)
        return out

    def reasons(self, p: dict) -> dict[str, tuple]:
        try:
            self.schedule(p)
            return {}
        except FitError as e:
            return {n: s.reasons for n, s in e.statuses.items()}

    def scores(self, p: dict, plugin_name: str) -> dict[str, int]:
        info = PodInfo(p)
        nodes = [n for n in self.cache.node_list if n.name in self.feasible(p)]
        pl = next(x for x in default_plugins() if x.name == plugin_name)
        state: dict = {}
        for f in default_plugins():
            if f.filters:
                f.pre_filter(state, info, self.cache)
        if not pl.pre_score(state, info, self.cache, nodes):
            return {n.name: 0 for n in nodes}
        s = [pl.score(state, info, n) for n in nodes]
        pl.normalize(state, info, s)
        return {n.name: v for n, v in zip(nodes, s)}
