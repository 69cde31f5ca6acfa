"""The three ways to run a trace the simulator compares, as `skube up` settings.

- ``nodes``: ordinary nodes only, the pre-serverless way: a node pool with the cluster
  autoscaler (min = what the quietest hour needs, max = what the peak needs); bursts wait
  for nodes to boot.
- ``serverless``: every pod on the virtual node (``virtualNodeOnly``): no nodes at all.
- ``mixed``: a fixed pool sized for the baseline, everything beyond it on the virtual node
  at once (``normalNodePrefer``); scale-in removes instances first.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .trace import Trace

NAMES = ("nodes", "serverless", "mixed")
POOL = "general"
HEADROOM = 0.9      # share of a node's allocatable the sizing assumes pods can fill


@dataclass
class Strategy:
    name: str
    description: str
    policy: str                             # the cluster's default elastic scheduling policy
    pool_min: int = 0
    pool_max: int = 0
    pool_count: int = 0
    config: dict = field(default_factory=dict)   # DATA_DIR/config.yaml

    @property
    def uses_pool(self) -> bool:
        return self.pool_max > 0


def nodes_for(trace: Trace, t: float) -> int:
    """Ordinary nodes the trace's demand at ``t`` needs (CPU and memory, with headroom)."""
    c = trace.cluster
    cpu = sum(w.cpu_m * n for w, n in trace.demand(t))
    mem = sum(w.memory * n for w, n in trace.demand(t))
    return math.ceil(max(cpu / (c.node_cpu_m * HEADROOM), mem / (c.node_memory * HEADROOM)))


def demand_profile(trace: Trace, step: float = 60.0) -> list[float]:
    return [i * step for i in range(int(trace.duration // step) + 1)]


def virtual_node_capacity(trace: Trace, ts: list[float]) -> dict:
    """Twice the trace's peak demand, never below the virtual node's defaults (1000 CPU,
    4Ti, 10000 pods): the virtual node must never be what limits a burst."""
    cpu = max(sum(w.cpu_m * n for w, n in trace.demand(t)) for t in ts)
    mem = max(sum(w.memory * n for w, n in trace.demand(t)) for t in ts)
    pods = max(trace.pods_at(t) for t in ts)
    return {"cpu": str(max(1000, math.ceil(2 * cpu / 1000))),
            "memory": f"{max(4096, math.ceil(2 * mem / (1 << 30)))}Gi",
            "pods": str(max(10000, 2 * pods))}


def build(trace: Trace, name: str) -> Strategy:
    s = _build(trace, name)
    s.config = {**s.config, "virtualNode": {"capacity": virtual_node_capacity(trace, demand_profile(trace))}}
    return s


def _build(trace: Trace, name: str) -> Strategy:
    ts = demand_profile(trace)
    low = min(nodes_for(trace, t) for t in ts)
    high = max(nodes_for(trace, t) for t in ts)
    start = nodes_for(trace, 0.0)
    c = trace.cluster
    pool = {"name": POOL, "size": c.node_size, "bootDelaySeconds": c.boot_delay,
            "scaleDownIdleSeconds": c.scale_down_idle, "provider": "mock"}
    if name == "nodes":
        return Strategy(name, "node pool with the cluster autoscaler; no virtual node", "normalNodeOnly",
                        pool_min=max(low, 1), pool_max=max(high, 1), pool_count=max(start, low, 1),
                        config={"nodePoolAgents": "inProcess",
                                "nodePools": [{**pool, "count": max(start, low, 1), "min": max(low, 1),
                                               "max": max(high, 1)}]})
    if name == "serverless":
        return Strategy(name, "every pod an elastic instance on the virtual node", "virtualNodeOnly")
    if name == "mixed":
        n = max(low, 1)
        return Strategy(name, f"fixed pool of {n} for the baseline, bursts to the virtual node",
                        "normalNodePrefer", pool_min=n, pool_max=n, pool_count=n,
                        config={"nodePoolAgents": "inProcess",
                                "nodePools": [{**pool, "count": n, "min": n, "max": n}]})
    raise ValueError(f"unknown strategy {name!r}; choose from {', '.join(NAMES)} or all")
