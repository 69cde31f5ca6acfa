"""`skube cost simulate` end to end on real control planes (mock provider, node pools),
checked against costs computed by hand from the price tables."""
from __future__ import annotations

import csv
import json
import subprocess

import pytest

from skube.billing.nodes import NODE_PRICE
from skube.billing.prices import ECI_PRICE
from tests.conftest import BIN

TRACE = """
name: tiny
duration: 1h
cluster: {nodeSize: 2c4g, bootDelay: 60s, scaleDownIdle: 5m}
workloads:
- {name: web, resources: {cpu: 500m, memory: 1Gi}, replicas: 4}
- {name: batch, kind: Job, at: ["00:20"], completions: 2, parallelism: 2, runSeconds: 10m,
   resources: {cpu: "1", memory: 2Gi}}
"""


def test_simulated_costs_match_the_price_tables(tmp_path):
    trace = tmp_path / "tiny.yaml"
    trace.write_text(TRACE)
    out = tmp_path / "out"
    res = subprocess.run([str(BIN / "skube"), "cost", "simulate", "--trace", str(trace), "--strategy", "all",
                          "--out", str(out), "--speed", "300", "--busy-speed", "30", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr[-4000:]
    assert "[serverless] 00:00" in res.stderr            # progress while it runs
    figures = {s["strategy"]: s for s in json.loads(res.stdout.strip().splitlines()[-1])["strategies"]}

    # serverless: 4 web pods (0.5 vCPU / 1 GiB, an ECI size) for the whole hour, and two
    # Job pods (1 vCPU / 2 GiB) for exactly 10 minutes each
    by_hand = 4 * 3600 * ECI_PRICE.per_second(0.5, 1) + 2 * 600 * ECI_PRICE.per_second(1, 2)
    s = figures["serverless"]
    assert s["total_cost"] == pytest.approx(by_hand, rel=0.01)
    assert s["node_cost"] == 0 and s["peak_instances"] == 6 and s["pods_started"] == 6

    # mixed: a fixed pool of 2 nodes of 2 vCPU / 4 GiB for the hour holds everything
    # (web 2 vCPU + batch 2 vCPU): nothing runs on instances
    pool = 2 * 3600 * NODE_PRICE.per_second(2, 4)
    m = figures["mixed"]
    assert m["node_cost"] == pytest.approx(pool, rel=0.01)
    assert m["instance_cost"] == 0 and m["peak_instances"] == 0 and m["peak_nodes"] == 2

    # nodes: the same pool, autoscaled within 2..3 nodes; at least the two nodes' hour
    n = figures["nodes"]
    assert n["instance_cost"] == 0 and 2 <= n["peak_nodes"] <= 3
    assert pool * 0.99 <= n["node_cost"] <= pool * 1.5

    rows = {r["strategy"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert set(rows) == {"nodes", "serverless", "mixed"}
    assert float(rows["serverless"]["total_cost"]) == pytest.approx(s["total_cost"], abs=1e-4)
    assert float(rows["serverless"]["cost_h00"]) == pytest.approx(s["total_cost"], rel=1e-3)
    assert (out / "cost.png").read_bytes()[:4] == b"\x89PNG"
    assert "STRATEGY" in res.stdout and "HOUR" in res.stdout


def test_bad_trace_is_refused_naming_the_field(tmp_path):
    trace = tmp_path / "bad.yaml"
    trace.write_text("workloads:\n- {name: web, replicas: [{at: '25:00', count: 1}]}\n")
    res = subprocess.run([str(BIN / "skube"), "cost", "simulate", "--trace", str(trace), "--out",
                          str(tmp_path / "o")], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "workloads[0].replicas[0].at" in res.stderr and "25:00" in res.stderr
    assert not (tmp_path / "o").exists()
