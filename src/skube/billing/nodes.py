"""Node-pool nodes billed per node-second: the node ledger, the node price and the node
part of a bill.

A node is billed from the moment the autoscaler (or ``skube up``) *requested* it — a
cloud VM is billed from boot, and booting takes the pool's boot delay — until it is
released (drained, stopped, its Node deleted), at its size's price: per vCPU-second plus
per GiB-second with a one-minute minimum (Compute Engine's billing model; the default
prices are Compute Engine N2's, see docs/billing.md). A node that stays in its pool
across a restart of ``skube up`` keeps its one open record: no double count.

Ledger: ``DATA_DIR/billing/nodes.db`` (SQLite, WAL, ``synchronous=NORMAL``); a record is
identified by ``(node, start)`` and ``stop`` is written once.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .ledger import open_ledger_db
from .prices import Price, PriceTable
from .specs import CpuMemory

NODE_LEDGER = Path("billing") / "nodes.db"
# Google Compute Engine N2 (general purpose) predefined on-demand, us-central1:
# USD 0.031611 per vCPU-hour, 0.004237 per GiB-hour; 1-minute minimum, then per second.
NODE_PRICE = Price(vcpu_per_second=0.031611 / 3600, memory_gib_per_second=0.004237 / 3600,
                   minimum_seconds=60.0)
PRICE_ENTRY = "nodes"     # the --prices file's `tables: {nodes: {...}}` overrides NODE_PRICE

_SCHEMA = """
CREATE TABLE IF NOT EXISTS node_runs (
    id            INTEGER PRIMARY KEY,
    node          TEXT    NOT NULL,
    pool          TEXT    NOT NULL,
    instance_type TEXT    NOT NULL,
    cpu_m         INTEGER NOT NULL,
    memory_mib    INTEGER NOT NULL,
    provider      TEXT    NOT NULL,
    start         REAL    NOT NULL,   -- requested (boot begins), unix seconds
    stop          REAL,               -- released; NULL while the node exists
    UNIQUE (node, start)
);
"""


@dataclass
class NodeRun(CpuMemory):
    id: int
    node: str
    pool: str
    instance_type: str
    cpu_m: int
    memory_mib: int
    provider: str
    start: float
    stop: float | None


class NodeLedger:
    """``NodeLedger.for_data_dir(DATA_DIR)``; every write is its own committed transaction."""

    def __init__(self, path: str | Path, *, create: bool = True):
        self.path = Path(path)
        self.db = open_ledger_db(self.path, _SCHEMA, "node ledger", create=create)

    @classmethod
    def for_data_dir(cls, data_dir: str | Path, *, create: bool = True) -> "NodeLedger":
        return cls(Path(data_dir) / NODE_LEDGER, create=create)

    def close(self) -> None:
        self.db.close()

    def start(self, *, node: str, pool: str, instance_type: str, cpu_m: int, memory_mib: int,
              provider: str, start: float) -> None:
        """Open a record for ``node`` unless one is open already (a resumed node)."""
        if self.db.execute("SELECT 1 FROM node_runs WHERE node = ? AND stop IS NULL",
                           (node,)).fetchone():
            return
        self.db.execute("INSERT OR IGNORE INTO node_runs (node, pool, instance_type, cpu_m, "
                        "memory_mib, provider, start) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (node, pool, instance_type, cpu_m, memory_mib, provider, start))

    def stop(self, node: str, stop: float) -> int:
        """Close the open record of ``node`` (never before its start); how many were open."""
        return self.db.execute("UPDATE node_runs SET stop = MAX(?, start) WHERE node = ? AND stop IS NULL",
                               (stop, node)).rowcount

    def open_runs(self) -> list[NodeRun]:
        return self._select("WHERE stop IS NULL ORDER BY start, id")

    def runs(self, *, since: float | None = None) -> list[NodeRun]:
        if since is None:
            return self._select("ORDER BY start, id")
        return self._select("WHERE stop IS NULL OR stop > ? ORDER BY start, id", (since,))

    def _select(self, clause: str, args=()) -> list[NodeRun]:
        cols = "id, node, pool, instance_type, cpu_m, memory_mib, provider, start, stop"
        return [NodeRun(*r) for r in self.db.execute(f"SELECT {cols} FROM node_runs {clause}", args)]


def node_price(prices: PriceTable) -> Price:
    return prices.prices.get(PRICE_ENTRY, NODE_PRICE)


@dataclass
class NodeCost:
    node: str
    pool: str
    instance_type: str
    vcpu: float
    memory_gib: float
    start: str | None
    stop: str | None
    running: bool
    seconds: float
    cost: float


@dataclass
class NodeTypeCost:
    instance_type: str
    nodes: int
    seconds: float
    cost: float


def load_node_runs(data_dir: str | Path, since: float | None = None) -> list[NodeRun]:
    path = Path(data_dir).expanduser() / NODE_LEDGER
    if not path.exists():
        return []
    ledger = NodeLedger(path, create=False)
    try:
        return ledger.runs(since=since)
    finally:
        ledger.close()


def node_costs(runs: list[NodeRun], prices: PriceTable, *, since: float | None,
               now: float) -> tuple[list[NodeCost], list[NodeTypeCost]]:
    """Each record priced over ``[since, now]`` (as pods are), and the totals per node type."""
    from .report import rfc3339
    price = node_price(prices)
    out: list[NodeCost] = []
    for r in runs:
        end = now if r.stop is None else min(r.stop, now)
        begin = r.start if since is None else max(r.start, since)
        seconds = max(end - begin, 0.0)
        whole = (since is None or r.start >= since) and r.stop is not None and r.stop <= now
        vcpu, mem = r.vcpu, r.memory_gib
        out.append(NodeCost(r.node, r.pool, r.instance_type, vcpu, mem, rfc3339(r.start),
                            rfc3339(r.stop), r.stop is None, seconds,
                            price.cost(vcpu, mem, seconds, whole_run=whole)))
    types: dict[str, NodeTypeCost] = {}
    for n in out:
        t = types.setdefault(n.instance_type, NodeTypeCost(n.instance_type, 0, 0.0, 0.0))
        t.nodes += 1
        t.seconds += n.seconds
        t.cost += n.cost
    return out, sorted(types.values(), key=lambda t: t.instance_type)


def render_node_sections(report, fmt_seconds, table) -> list[str]:
    """The bill's node lines (table output): one per node-pool node, then one per node
    type — ``virtual-node`` (pods billed per pod-second) beside the pools' instance types."""
    if not report.nodes:
        return []
    cur = report.currency
    nodes = table(["NODE", "POOL", "TYPE", "START", "DURATION", "STATUS", f"COST ({cur})"],
                  [[n.node, n.pool, n.instance_type, n.start or "", fmt_seconds(n.seconds),
                    "running" if n.running else "released", f"{n.cost:.6f}"] for n in report.nodes])
    rows = [[t.instance_type, f"{t.nodes} nodes", f"{t.seconds:.0f}", f"{t.cost:.6f}"]
            for t in report.node_types]
    if report.pods:
        rows.insert(0, ["virtual-node", f"{len(report.pods)} pods", f"{sum(p.seconds for p in report.pods):.0f}",
                        f"{sum(p.cost for p in report.pods):.6f}"])
    types = table(["NODE TYPE", "BILLED", "SECONDS", f"COST ({cur})"], rows)
    return ["", nodes, "", types]


__all__ = ["NodeLedger", "NodeRun", "NodeCost", "NodeTypeCost", "NODE_PRICE", "node_price",
           "node_costs", "load_node_runs", "render_node_sections"]
