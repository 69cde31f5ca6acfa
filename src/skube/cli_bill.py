"""`skube bill`: what the pods of the virtual nodes cost, from the nodes' ledgers."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

DEFAULT_DATA_DIR = Path.home() / ".skube"


@click.command("bill")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_DATA_DIR,
              show_default=True,
              help="Cluster data dir (node ledgers under DATA_DIR/nodes/*/billing/), or one node's data dir.")
@click.option("--since", default=None, help="Only time after this: a duration (1h, 30m, 2h30m, 7d) or an "
                                            "RFC 3339 time.")
@click.option("--namespace", "-n", default=None, help="Only pods of this namespace.")
@click.option("-o", "--output", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="Output format.")
@click.option("--prices", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Price table (YAML) overriding the documented defaults (docs/billing.md).")
def bill(data_dir: Path, since: str | None, namespace: str | None, output: str, prices: Path | None) -> None:
    """Print the cost of every pod metered on the virtual nodes, per pod, namespace and workload.

    Pods still running are billed up to now."""
    from .billing.prices import PriceTable
    from .billing.report import RENDERERS, build_report, find_ledgers, load_runs, parse_since
    now = time.time()
    try:
        since_ts = parse_since(since, now) if since else None
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--since") from None
    try:
        table = PriceTable.load(prices)
    except (ValueError, OSError) as e:
        raise click.BadParameter(str(e), param_hint="--prices") from None
    ledgers = find_ledgers(data_dir)
    if not ledgers and not (data_dir / "billing" / "nodes.db").exists():
        click.echo(f"skube bill: no billing ledgers under {data_dir} (nodes/*/billing/ledger.db)", err=True)
    runs = load_runs(ledgers, since=since_ts, namespace=namespace)
    try:
        report = build_report(runs, table, since=since_ts, now=now)
    except KeyError as e:
        raise click.ClickException(str(e.args[0])) from None
    if namespace is None:     # node pools: node-seconds (nodes belong to no namespace)
        from .billing.nodes import load_node_runs, node_costs
        report.nodes, report.node_types = node_costs(load_node_runs(data_dir, since_ts), table,
                                                     since=since_ts, now=now)
        report.total += sum(n.cost for n in report.nodes)
    sys.stdout.write(RENDERERS[output](report))


if __name__ == "__main__":
    bill()
