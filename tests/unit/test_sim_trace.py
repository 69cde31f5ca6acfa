"""Workload traces, the strategies' pool sizing, and the simulator's cost arithmetic."""
from pathlib import Path

import pytest

from skube.sim import report, strategies
from skube.sim.metrics import Interval, Sample, StrategyResult, hourly_cost, percentile
from skube.sim.trace import TraceError, load_trace

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_traces_load():
    for name in ("evening-classes", "business-hours", "nightly-batch"):
        t = load_trace(ROOT / "examples" / "traces" / f"{name}.yaml")
        assert t.duration == 86400 and t.workloads
    t = load_trace(ROOT / "examples" / "traces" / "evening-classes.yaml")
    assert t.pods_at(12 * 3600) == 200
    assert t.pods_at(19.5 * 3600) == 20200
    assert t.pods_at(21 * 3600) == 200
    assert t.pods_at(2 * 3600 + 60) == 300      # 100 report pods in the first wave
    assert t.pods_at(2 * 3600 + 4 * 1200) == 200   # 4 waves of 100 are done


def test_trace_errors_name_the_field():
    base = {"workloads": [{"name": "web", "replicas": 1}]}
    assert load_trace(base).workloads[0].steps == [(0.0, 1)]
    cases = [
        ({"workloads": []}, "workloads"),
        ({"workloads": [{"name": "Web"}]}, "workloads[0].name"),
        ({"workloads": [{"name": "a", "kind": "Pod"}]}, "workloads[0].kind"),
        ({"workloads": [{"name": "a", "replicas": [{"at": "25:00", "count": 1}]}]}, "workloads[0].replicas[0].at"),
        ({"workloads": [{"name": "a", "replicas": [{"at": 1140, "count": 1}]}]}, "quote times"),
        ({"workloads": [{"name": "a", "replicas": -1}]}, "workloads[0].replicas"),
        ({"workloads": [{"name": "a", "kind": "Job"}]}, "workloads[0].at"),
        ({"workloads": [{"name": "a", "kind": "Job", "at": "01:00", "runSeconds": "soon"}]}, "runSeconds"),
        ({"workloads": [{"name": "a", "resources": {"cpu": "lots"}}]}, "workloads[0].resources"),
        ({"workloads": [{"name": "a", "resources": {"cpu": "64"}}], "cluster": {"nodeSize": "16c32g"}},
         "raise cluster.nodeSize"),
        ({"workloads": [{"name": "a"}, {"name": "a"}]}, "appears twice"),
        ({"workloads": [{"name": "a"}], "cluster": {"nodeSize": "big"}}, "cluster.nodeSize"),
    ]
    for doc, needle in cases:
        with pytest.raises(TraceError) as e:
            load_trace(doc)
        assert needle in str(e.value), (doc, str(e.value))


def test_strategies_size_the_pool_from_the_demand():
    t = load_trace({"cluster": {"nodeSize": "4c8g"}, "workloads": [
        {"name": "base", "resources": {"cpu": "1", "memory": "1Gi"}, "replicas": 7},
        {"name": "burst", "resources": {"cpu": "1", "memory": "1Gi"},
         "replicas": [{"at": "10:00", "count": 29}, {"at": "11:00", "count": 0}]}]})
    nodes = strategies.build(t, "nodes")
    assert (nodes.pool_min, nodes.pool_max) == (2, 10)      # 7/3.6 → 2; 36/3.6 → 10
    assert nodes.config["nodePools"][0]["size"] == "4c8g" and nodes.policy == "normalNodeOnly"
    mixed = strategies.build(t, "mixed")
    assert (mixed.pool_min, mixed.pool_max) == (2, 2) and mixed.policy == "normalNodePrefer"
    assert not strategies.build(t, "serverless").uses_pool
    with pytest.raises(ValueError):
        strategies.build(t, "cheapest")


def test_hourly_cost_splits_intervals_across_hours():
    ivs = [Interval(1800, 5400, 1.0), Interval(7000, 7010, 2.0, minimum_seconds=60)]
    by = hourly_cost(ivs, 3)
    assert by == [1800.0, 1800.0 + 120.0, 0.0]
    assert sum(by) == pytest.approx(sum(iv.cost for iv in ivs))
    assert percentile([5, 1, 3, 2, 4], 50) == 3 and percentile([], 99) is None
    assert percentile(list(range(1, 101)), 99) == 99


def test_reports_render_every_strategy(tmp_path):
    results = []
    for i, name in enumerate(("nodes", "serverless")):
        r = StrategyResult(name, name, "USD", hours=2,
                           intervals=[Interval(0, 3600, 0.001 * (i + 1), kind="instance" if i else "node")],
                           samples=[Sample(t, 10, 10 - 5 * i, 5 * i, 0, 2 - 2 * i, 8000 * (1 - i), 4000)
                                    for t in (0, 3600, 7200)],
                           waits=[1.0, 2.0, 30.0], pods_started=3, wall_seconds=10, simulated_seconds=7200)
        results.append(r)
    table = report.render_table(results)
    assert "nodes" in table and "serverless" in table and "3.60 USD" in table.replace("3.6000", "3.60")
    report.write_csv(results, tmp_path / "summary.csv")
    rows = (tmp_path / "summary.csv").read_text().splitlines()
    assert rows[0].startswith("strategy,total_cost") and len(rows) == 3 and "cost_h01" in rows[0]
    assert rows[2].startswith("serverless,7.2")
    report.write_chart(results, tmp_path / "cost.png", title="t")
    assert (tmp_path / "cost.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "01:00" in report.render_hours(results)
