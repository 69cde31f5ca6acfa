"""What a replay measured, and the pure arithmetic over it: cost per hour from billed
intervals, percentiles, utilisation. No I/O."""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Interval:
    """Something billed per second from ``start`` to ``stop`` (simulated seconds of day)."""
    start: float
    stop: float
    rate: float                    # currency per second
    minimum_seconds: float = 0.0   # a whole run is billed at least this long
    kind: str = "instance"         # instance | node

    @property
    def cost(self) -> float:
        seconds = max(self.stop - self.start, 0.0)
        if seconds > 0:
            seconds = max(seconds, self.minimum_seconds)
        return seconds * self.rate


def hourly_cost(intervals: list[Interval], hours: int, kind: str | None = None) -> list[float]:
    """Cost falling into each hour [h, h+1) of the day. A run's minimum-duration surcharge
    is charged in the hour it ends."""
    out = [0.0] * hours
    for iv in intervals:
        if kind is not None and iv.kind != kind:
            continue
        start, stop = max(iv.start, 0.0), min(iv.stop, hours * 3600.0)
        h = int(start // 3600)
        while h < hours and h * 3600.0 < stop:
            lo, hi = max(start, h * 3600.0), min(stop, (h + 1) * 3600.0)
            out[h] += max(hi - lo, 0.0) * iv.rate
            h += 1
        extra = iv.cost - max(iv.stop - iv.start, 0.0) * iv.rate
        if extra > 0:
            out[min(max(int(min(iv.stop, hours * 3600.0 - 1) // 3600), 0), hours - 1)] += extra
    return out


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q / 100.0 * len(s)) - 1))
    return s[k]


@dataclass
class Sample:
    """The cluster at one simulated moment."""
    t: float
    demand: int                 # pods the trace asks for now
    on_nodes: int               # running on ordinary nodes
    on_instances: int           # running on the virtual node
    pending: int
    nodes: int                  # ordinary nodes (Ready or booting)
    node_cpu_m: int             # allocatable CPU of ordinary nodes
    requested_cpu_m: int        # CPU requested by pods running on them


@dataclass
class StrategyResult:
    strategy: str
    description: str
    currency: str
    hours: int
    intervals: list[Interval] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)     # simulated seconds from pod created to Running
    pods_started: int = 0
    wall_seconds: float = 0.0
    simulated_seconds: float = 0.0

    @property
    def total_cost(self) -> float:
        return sum(iv.cost for iv in self.intervals)

    def cost_by_hour(self) -> list[float]:
        return hourly_cost(self.intervals, self.hours)

    @property
    def instance_cost(self) -> float:
        return sum(iv.cost for iv in self.intervals if iv.kind == "instance")

    @property
    def node_cost(self) -> float:
        return sum(iv.cost for iv in self.intervals if iv.kind == "node")

    @property
    def peak_instances(self) -> int:
        return max((s.on_instances for s in self.samples), default=0)

    @property
    def peak_nodes(self) -> int:
        return max((s.nodes for s in self.samples), default=0)

    @property
    def node_utilisation(self) -> float | None:
        """Requested CPU / allocatable CPU of ordinary nodes, averaged over samples with nodes."""
        used = [s.requested_cpu_m / s.node_cpu_m for s in self.samples if s.node_cpu_m > 0]
        return sum(used) / len(used) if used else None

    def summary(self) -> dict:
        p50, p99 = percentile(self.waits, 50), percentile(self.waits, 99)
        util = self.node_utilisation
        return {
            "strategy": self.strategy,
            "total_cost": round(self.total_cost, 4),
            "instance_cost": round(self.instance_cost, 4),
            "node_cost": round(self.node_cost, 4),
            "currency": self.currency,
            "wait_p50_s": None if p50 is None else round(p50, 1),
            "wait_p99_s": None if p99 is None else round(p99, 1),
            "node_utilisation": None if util is None else round(util, 3),
            "peak_instances": self.peak_instances,
            "peak_nodes": self.peak_nodes,
            "pods_started": self.pods_started,
            "sim_speed": round(self.simulated_seconds / self.wall_seconds, 1) if self.wall_seconds else None,
        }
