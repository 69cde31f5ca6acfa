"""Bills: runs from node ledgers priced and summed per pod, namespace and workload.

A run's billed time is ``stop - start`` (``now - start`` while it runs), clipped
to the window ``[since, now]``; its cost is that time × the price per second of
its billed size under its spec table (a run wholly inside the window is billed
at least the table's minimum). A pod's cost is the sum of its runs.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from .ledger import LEDGER_FILE, Ledger, Run
from .prices import PriceTable
from .specs import Spec

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATIONS = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(value: str, now: float | None = None) -> float:
    """``1h``, ``90m``, ``2h30m``, ``7d`` (that long before ``now``) or an RFC 3339 time."""
    v = value.strip()
    now = time.time() if now is None else now
    if _DURATIONS.fullmatch(v):
        return now - sum(float(n) * _UNIT[u] for n, u in _DURATION.findall(v))
    try:
        d = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is neither a duration (1h, 30m, 2h30m, 7d) nor an RFC 3339 time") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone.utc)
    return d.timestamp()


def rfc3339(t: float | None) -> str | None:
    if t is None:
        return None
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def find_ledgers(data_dir: str | Path) -> list[Path]:
    """Ledgers under a cluster data dir (``nodes/*/billing/ledger.db``), or of one node's
    data dir (``billing/ledger.db``)."""
    d = Path(data_dir).expanduser()
    found = sorted(d.glob(f"nodes/*/billing/{LEDGER_FILE}"))
    own = d / "billing" / LEDGER_FILE
    if own.exists():
        found.insert(0, own)
    return found


def load_runs(paths: list[Path], *, since: float | None = None, namespace: str | None = None) -> list[Run]:
    runs: list[Run] = []
    for p in paths:
        ledger = Ledger(p, create=False)
        try:
            runs.extend(ledger.runs(since=since, namespace=namespace))
        finally:
            ledger.close()
    return runs


@dataclass
class PodCost:
    namespace: str
    name: str
    uid: str
    node: str
    workload: str | None          # "Kind/name"
    spec: str                     # "0.25 vCPU / 0.5 GiB"
    spec_table: str
    vcpu: float
    memory_gib: float
    runs: int
    start: str | None
    stop: str | None              # None while running
    running: bool
    seconds: float
    cost: float


@dataclass
class GroupCost:
    key: str                      # namespace, or "namespace/Kind/name"
    pods: int
    seconds: float
    cost: float


@dataclass
class Report:
    currency: str
    since: str | None
    until: str
    pods: list[PodCost] = field(default_factory=list)
    namespaces: list[GroupCost] = field(default_factory=list)
    workloads: list[GroupCost] = field(default_factory=list)
    total: float = 0.0
    nodes: list = field(default_factory=list)        # billing.nodes.NodeCost (node pools)
    node_types: list = field(default_factory=list)   # billing.nodes.NodeTypeCost

    def to_dict(self) -> dict:
        return asdict(self)


def build_report(runs: list[Run], prices: PriceTable, *, since: float | None = None,
                 now: float | None = None) -> Report:
    now = time.time() if now is None else now
    pods: dict[str, PodCost] = {}
    for r in runs:
        end = now if r.stop is None else min(r.stop, now)
        begin = r.start if since is None else max(r.start, since)
        seconds = max(end - begin, 0.0)
        whole = (since is None or r.start >= since) and r.stop is not None and r.stop <= now
        cost = prices.price(r.spec_table).for_run(bool(r.spot)).cost(r.vcpu, r.memory_gib, seconds,
                                                                    whole_run=whole)
        p = pods.get(r.pod_uid)
        if p is None:
            spec = Spec(r.cpu_m, r.memory_mib)
            p = pods[r.pod_uid] = PodCost(
                namespace=r.namespace, name=r.name, uid=r.pod_uid, node=r.node,
                workload=f"{r.owner_kind}/{r.owner_name}" if r.owner_kind else None,
                spec=str(spec), spec_table=r.spec_table, vcpu=r.vcpu, memory_gib=r.memory_gib,
                runs=0, start=rfc3339(r.start), stop=None, running=False, seconds=0.0, cost=0.0)
        p.runs += 1
        p.seconds += seconds
        p.cost += cost
        p.running = p.running or r.stop is None
        p.stop = None if p.running else rfc3339(max(r.stop, _ts(p.stop)))
    report = Report(currency=prices.currency, since=rfc3339(since), until=rfc3339(now))
    report.pods = sorted(pods.values(), key=lambda p: (p.namespace, p.name, p.start or ""))
    report.namespaces = _group(report.pods, lambda p: p.namespace)
    report.workloads = _group([p for p in report.pods if p.workload],
                              lambda p: f"{p.namespace}/{p.workload}")
    report.total = sum(p.cost for p in report.pods)
    return report


def _ts(s: str | None) -> float:
    return 0.0 if s is None else dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def _group(pods: list[PodCost], key) -> list[GroupCost]:
    out: dict[str, GroupCost] = {}
    for p in pods:
        k = key(p)
        g = out.setdefault(k, GroupCost(k, 0, 0.0, 0.0))
        g.pods += 1
        g.seconds += p.seconds
        g.cost += p.cost
    return sorted(out.values(), key=lambda g: g.key)


# ---- rendering ------------------------------------------------------------------------------

POD_COLUMNS = ("namespace", "name", "uid", "node", "workload", "spec", "spec_table", "runs", "start",
               "stop", "running", "seconds", "cost")


def render_json(report: Report) -> str:
    return orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"


def render_csv(report: Report) -> str:
    """One line per pod (header first), plus the currency column."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*POD_COLUMNS, "currency"])
    for p in report.pods:
        d = asdict(p)
        row = [d[c] for c in POD_COLUMNS]
        row[POD_COLUMNS.index("seconds")] = f"{p.seconds:.3f}"
        row[POD_COLUMNS.index("cost")] = f"{p.cost:.8f}"
        row[POD_COLUMNS.index("running")] = "true" if p.running else "false"
        w.writerow([("" if v is None else v) for v in row] + [report.currency])
    return buf.getvalue()


def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else (f"{m}m{sec:02d}s" if m else f"{sec}s")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["   ".join(h.ljust(widths[i]) for i, h in enumerate(headers)).rstrip()]
    for r in rows:
        lines.append("   ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())
    return "\n".join(lines)


def render_table(report: Report) -> str:
    cur = report.currency
    window = f"{report.since or 'beginning'} .. {report.until}"
    from .nodes import render_node_sections
    node_lines = render_node_sections(report, _fmt_seconds, _table)
    if not report.pods and not node_lines:
        return f"No metered pods ({window}).\n"
    if not report.pods:
        return "\n".join([f"Bill {window}", *node_lines, "", f"TOTAL {report.total:.6f} {cur}"]) + "\n"
    pods = _table(["NAMESPACE", "POD", "WORKLOAD", "SPEC", "RUNS", "DURATION", "STATUS", f"COST ({cur})"],
                  [[p.namespace, p.name, p.workload or "", f"{p.spec} ({p.spec_table})", str(p.runs),
                    _fmt_seconds(p.seconds), "running" if p.running else "stopped", f"{p.cost:.6f}"]
                   for p in report.pods])
    ns = _table(["NAMESPACE", "PODS", "DURATION", f"COST ({cur})"],
                [[g.key, str(g.pods), _fmt_seconds(g.seconds), f"{g.cost:.6f}"] for g in report.namespaces])
    out = [f"Bill {window}", "", pods, "", ns]
    if report.workloads:
        out += ["", _table(["WORKLOAD", "PODS", "DURATION", f"COST ({cur})"],
                           [[g.key, str(g.pods), _fmt_seconds(g.seconds), f"{g.cost:.6f}"]
                            for g in report.workloads])]
    out += node_lines + ["", f"TOTAL {report.total:.6f} {cur}"]
    return "\n".join(out) + "\n"


RENDERERS = {"table": render_table, "csv": render_csv, "json": render_json}

__all__ = ["Report", "PodCost", "GroupCost", "build_report", "find_ledgers", "load_runs", "parse_since",
           "render_table", "render_csv", "render_json", "RENDERERS"]
