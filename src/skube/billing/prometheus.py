"""Spend so far as Prometheus metrics: the bill of ``skube bill`` in the text exposition
format, rendered once (``skube bill -o prometheus``, e.g. for node_exporter's textfile
collector) or recomputed on every scrape (``skube bill --serve ADDR``).

Every family is a counter: spend only grows while the ledgers grow. Labels group spend the
way the bill does — by namespace, workload and node type — without one series per pod.
``node_type`` is ``virtual-node`` for pods billed per pod-second on virtual nodes and the
instance type (``4c8g``) for node-pool nodes billed per node-second.
"""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .report import Report

VIRTUAL = "virtual-node"


def metric_families(report: Report) -> Iterator[Metric]:
    cur = report.currency
    pod_spend = CounterMetricFamily(
        "skube_pod_spend", f"Spend on pods billed per pod-second on virtual nodes ({cur}).",
        labels=["namespace", "workload", "node_type", "currency"])
    pod_seconds = CounterMetricFamily(
        "skube_pod_billed_seconds", "Billed pod-seconds on virtual nodes.",
        labels=["namespace", "workload", "node_type"])
    groups: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    running = 0
    for p in report.pods:
        g = groups[(p.namespace, p.workload or "")]
        g[0] += p.cost
        g[1] += p.seconds
        running += p.running
    for (ns, workload), (cost, seconds) in sorted(groups.items()):
        pod_spend.add_metric([ns, workload, VIRTUAL, cur], cost)
        pod_seconds.add_metric([ns, workload, VIRTUAL], seconds)
    node_spend = CounterMetricFamily(
        "skube_node_spend", f"Spend on node-pool nodes billed per node-second ({cur}).",
        labels=["pool", "node_type", "currency"])
    node_seconds = CounterMetricFamily(
        "skube_node_billed_seconds", "Billed node-seconds of node-pool nodes.", labels=["pool", "node_type"])
    pools: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    nodes_up = 0
    for n in report.nodes:
        g = pools[(n.pool, n.instance_type)]
        g[0] += n.cost
        g[1] += n.seconds
        nodes_up += n.running
    for (pool, kind), (cost, seconds) in sorted(pools.items()):
        node_spend.add_metric([pool, kind, cur], cost)
        node_seconds.add_metric([pool, kind], seconds)
    total = CounterMetricFamily("skube_spend", f"All spend so far ({cur}).", labels=["currency"])
    total.add_metric([cur], report.total)
    billed_pods = GaugeMetricFamily("skube_billed_pods_running", "Pods being billed on virtual nodes now.")
    billed_pods.add_metric([], running)
    billed_nodes = GaugeMetricFamily("skube_billed_nodes_running", "Node-pool nodes being billed now.")
    billed_nodes.add_metric([], nodes_up)
    yield from (total, pod_spend, pod_seconds, node_spend, node_seconds, billed_pods, billed_nodes)


class BillCollector:
    """A prometheus_client collector that builds the bill afresh at every scrape."""

    def __init__(self, build: Callable[[float], Report]):
        self.build = build

    def collect(self) -> Iterator[Metric]:
        yield from metric_families(self.build(time.time()))


def render_prometheus(report: Report) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BillCollector(lambda _now: report))
    return generate_latest(registry).decode()


def serve(build: Callable[[float], Report], address: str) -> tuple[object, str]:
    """Serve ``/metrics`` at ``HOST:PORT`` (or ``PORT`` on 127.0.0.1) in a thread; returns
    the server and the URL."""
    from prometheus_client import start_http_server
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BillCollector(build))
    server, _thread = start_http_server(int(port), addr=host, registry=registry)
    bound = server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    return server, f"http://{shown}:{bound}/metrics"


__all__ = ["metric_families", "render_prometheus", "serve", "BillCollector", "VIRTUAL"]
