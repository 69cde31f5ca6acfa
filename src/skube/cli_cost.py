"""`skube cost simulate`: what a day of a workload trace costs on nodes, on the virtual
node, and mixed — replayed on a real control plane under an accelerated clock."""
from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import click


@click.group("cost")
def cost() -> None:
    """Cost tools."""


@cost.command("simulate")
@click.option("--trace", "trace_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Workload trace (YAML), e.g. examples/traces/evening-classes.yaml.")
@click.option("--strategy", default="all", metavar="nodes|serverless|mixed|all[,...]",
              show_default=True, help="Which way(s) to run the trace.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("sim-out"),
              show_default=True, help="Writes summary.csv and cost.png here (and each run's cluster data).")
@click.option("--speed", type=float, default=300.0, show_default=True,
              help="Simulated seconds per wall-clock second (300: a day in under five minutes).")
@click.option("--busy-speed", type=float, default=10.0, show_default=True,
              help="Speed while pods are changing, so the control plane's real latency stays small "
                   "in simulated time (time dilation; see docs/simulator.md).")
@click.option("--prices", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Price table (YAML) overriding the documented defaults (docs/billing.md).")
@click.option("--json", "as_json", is_flag=True, help="Also print one JSON line with every strategy's figures.")
def simulate(trace_path: Path, strategy: str, out_dir: Path, speed: float, busy_speed: float,
             prices: Path | None,
             as_json: bool) -> None:
    """Replay TRACE once per strategy and compare cost, waits and utilisation."""
    from .billing.prices import PriceTable
    from .sim import report, strategies
    from .sim.runner import Replay
    from .sim.trace import TraceError, load_trace
    try:
        trace = load_trace(trace_path)
    except TraceError as e:
        raise click.BadParameter(str(e), param_hint="--trace") from None
    if not 1 <= speed <= 10000:
        raise click.BadParameter("must be between 1 and 10000", param_hint="--speed")
    if not 0 < busy_speed <= speed:
        raise click.BadParameter("must be positive and at most --speed", param_hint="--busy-speed")
    try:
        table = PriceTable.load(prices)
    except (ValueError, OSError) as e:
        raise click.BadParameter(str(e), param_hint="--prices") from None
    asked = [n.strip() for n in strategy.split(",") if n.strip()]
    unknown = [n for n in asked if n not in (*strategies.NAMES, "all")]
    if unknown or not asked:
        raise click.BadParameter(f"{', '.join(unknown) or strategy!r}: choose from "
                                 f"{', '.join(strategies.NAMES)} or all (comma-separated)", param_hint="--strategy")
    names = strategies.NAMES if "all" in asked else tuple(n for n in strategies.NAMES if n in asked)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    progress(f"trace {trace.name}: {len(trace.workloads)} workloads over {trace.duration / 3600:.1f} h, "
             f"peak {max(trace.pods_at(t) for t in strategies.demand_profile(trace)):,} pods; "
             f"speed {speed:g}x (about {trace.duration / speed / 60:.1f} min per strategy)")
    results = []
    for name in names:
        s = strategies.build(trace, name)
        t0 = time.monotonic()
        replay = Replay(trace, s, out_dir / name, speed=speed, busy_speed=busy_speed,
                        progress=progress, prices=table)
        results.append(asyncio.run(replay.run()))
        progress(f"[{name}] done in {time.monotonic() - t0:.0f}s: {results[-1].total_cost:,.2f} {table.currency}")
    report.write_csv(results, out_dir / "summary.csv")
    report.write_chart(results, out_dir / "cost.png", title=f"{trace.name}: pods and cost over the day")
    click.echo(report.render_table(results))
    click.echo(report.render_hours(results))
    click.echo(f"wrote {out_dir / 'summary.csv'} and {out_dir / 'cost.png'}")
    if as_json:
        click.echo(json.dumps({"trace": trace.name, "strategies": [r.summary() for r in results]}))
