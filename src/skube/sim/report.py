"""The simulator's outputs: a terminal table, ``summary.csv`` (one row per strategy) and
``cost.png`` (pods and cost over the day, every strategy on one picture)."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from .metrics import StrategyResult

COLUMNS = ("strategy", "total_cost", "instance_cost", "node_cost", "currency", "wait_p50_s", "wait_p99_s",
           "node_utilisation", "peak_instances", "peak_nodes", "pods_started", "sim_speed")


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 100 else f"{v:,.2f}"
    return str(v)


def render_table(results: list[StrategyResult]) -> str:
    headers = ["STRATEGY", "TOTAL", "INSTANCES", "NODES", "WAIT P50", "WAIT P99", "NODE UTIL",
               "PEAK INST", "PEAK NODES", "PODS"]
    rows = []
    for r in results:
        s = r.summary()
        rows.append([s["strategy"], f"{_cell(s['total_cost'])} {s['currency']}", _cell(s["instance_cost"]),
                     _cell(s["node_cost"]),
                     "-" if s["wait_p50_s"] is None else f"{s['wait_p50_s']:.0f}s",
                     "-" if s["wait_p99_s"] is None else f"{s['wait_p99_s']:.0f}s",
                     "-" if s["node_utilisation"] is None else f"{100 * s['node_utilisation']:.0f}%",
                     str(s["peak_instances"]), str(s["peak_nodes"]), str(s["pods_started"])])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    lines = ["   ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines += ["   ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def render_hours(results: list[StrategyResult]) -> str:
    """Cost per hour of the day, one column per strategy."""
    hours = max((r.hours for r in results), default=0)
    by = [r.cost_by_hour() for r in results]
    headers = ["HOUR"] + [r.strategy.upper() for r in results]
    rows = [[f"{h:02d}:00"] + [_cell(b[h]) if h < len(b) else "-" for b in by] for h in range(hours)]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    lines = ["   ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines += ["   ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
              for row in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def write_csv(results: list[StrategyResult], path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS) + [f"cost_h{h:02d}" for h in range(
        max((r.hours for r in results), default=0))], lineterminator="\n")
    w.writeheader()
    for r in results:
        row = {k: ("" if v is None else v) for k, v in r.summary().items()}
        row.update({f"cost_h{h:02d}": round(c, 6) for h, c in enumerate(r.cost_by_hour())})
        w.writerow(row)
    path.write_text(buf.getvalue())


def write_chart(results: list[StrategyResult], path: Path, title: str = "") -> None:
    """Top: pods running over the day per strategy (and the trace's demand); bottom: cost
    per hour per strategy."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True)
    if results and results[0].samples:
        s0 = results[0].samples
        top.plot([s.t / 3600 for s in s0], [s.demand for s in s0], color="black", linestyle=":",
                 linewidth=1.2, label="demand (trace)", drawstyle="steps-post")
    for r in results:
        ts = [s.t / 3600 for s in r.samples]
        line, = top.plot(ts, [s.on_nodes + s.on_instances for s in r.samples], label=f"{r.strategy}: running",
                         drawstyle="steps-post")
        if any(s.on_instances for s in r.samples):
            top.plot(ts, [s.on_instances for s in r.samples], color=line.get_color(), linestyle="--",
                     linewidth=0.9, label=f"{r.strategy}: on instances", drawstyle="steps-post")
    top.set_ylabel("pods")
    top.legend(fontsize=8, loc="upper left")
    top.grid(alpha=0.3)
    hours = max((r.hours for r in results), default=24)
    width = 0.8 / max(1, len(results))
    for i, r in enumerate(results):
        by = r.cost_by_hour()
        bottom.bar([h + 0.1 + (i + 0.5) * width for h in range(len(by))], by, width=width,
                   label=f"{r.strategy}: {r.total_cost:,.2f} {r.currency}")
    bottom.set_ylabel(f"cost per hour ({results[0].currency if results else ''})")
    bottom.set_xlabel("hour of day")
    bottom.set_xlim(0, hours)
    bottom.set_xticks(range(0, hours + 1, 2 if hours > 12 else 1))
    bottom.legend(fontsize=8, loc="upper left")
    bottom.grid(alpha=0.3, axis="y")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
