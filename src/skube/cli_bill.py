"""`skube bill`: what virtual-node pods and node-pool nodes cost, from the ledgers; also as Prometheus metrics."""
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
@click.option("-o", "--output", type=click.Choice(["table", "csv", "json", "prometheus"]), default="table",
              show_default=True, help="Output format (prometheus: the text exposition format of the spend "
                                      "metrics).")
@click.option("--prices", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Price table (YAML) overriding the documented defaults (docs/billing.md).")
@click.option("--serve", "serve_at", default=None, metavar="[HOST:]PORT",
              help="Serve the spend so far as Prometheus metrics at http://HOST:PORT/metrics (HOST "
                   "defaults to 127.0.0.1), recomputed at every scrape, until interrupted.")
def bill(data_dir: Path, since: str | None, namespace: str | None, output: str, prices: Path | None,
         serve_at: str | None) -> None:
    """Print the cost of every pod metered on the virtual nodes (per pod, namespace and
    workload) and of every node-pool node (per node and node type).

    Pods and nodes still running are billed up to now."""
    from .billing.prices import PriceTable
    from .billing.report import RENDERERS, find_ledgers, parse_since
    try:
        since_ts = parse_since(since, time.time()) if since else None
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--since") from None
    try:
        table = PriceTable.load(prices)
    except (ValueError, OSError) as e:
        raise click.BadParameter(str(e), param_hint="--prices") from None
    if not find_ledgers(data_dir) and not (data_dir / "billing" / "nodes.db").exists():
        click.echo(f"skube bill: no billing ledgers under {data_dir} (nodes/*/billing/ledger.db)", err=True)

    def build(now: float):
        return _report(data_dir, table, since_ts, namespace, now)
    if serve_at is not None:
        _serve(build, serve_at)
        return
    try:
        report = build(time.time())
    except KeyError as e:
        raise click.ClickException(str(e.args[0])) from None
    if output == "prometheus":
        from .billing.prometheus import render_prometheus
        sys.stdout.write(render_prometheus(report))
    else:
        sys.stdout.write(RENDERERS[output](report))


def _report(data_dir: Path, table, since_ts: float | None, namespace: str | None, now: float):
    """The bill at ``now``: pods from the virtual nodes' ledgers, nodes from the pools'."""
    from .billing.report import build_report, find_ledgers, load_runs
    runs = load_runs(find_ledgers(data_dir), since=since_ts, namespace=namespace)
    report = build_report(runs, table, since=since_ts, now=now)
    if namespace is None:     # node pools: node-seconds (nodes belong to no namespace)
        from .billing.nodes import load_node_runs, node_costs
        report.nodes, report.node_types = node_costs(load_node_runs(data_dir, since_ts), table,
                                                     since=since_ts, now=now)
        report.total += sum(n.cost for n in report.nodes)
    return report


def _serve(build, address: str) -> None:
    import signal
    import threading
    from .billing.prometheus import serve
    if not address.rpartition(":")[2].isdigit():
        raise click.BadParameter(f"{address!r} is not [HOST:]PORT", param_hint="--serve")
    try:
        server, url = serve(build, address)
    except OSError as e:
        raise click.ClickException(f"cannot serve at {address}: {e}") from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"skube bill: serving spend metrics at {url}", err=True)
    stop.wait()
    server.shutdown()


if __name__ == "__main__":
    bill()
