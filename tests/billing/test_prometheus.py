"""`skube bill` exports the spend so far as Prometheus metrics: once (`-o prometheus`) and
served for scraping (`--serve`), grouped by namespace, workload and node type."""
from __future__ import annotations

import datetime as dt
import subprocess
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from skube.billing.ledger import Ledger
from skube.billing.meter import Meter
from skube.billing.nodes import NODE_PRICE, NodeLedger
from skube.billing.prices import ECI_PRICE
from skube.billing.specs import ECI
from tests.conftest import BIN, free_port, wait_for


def rfc(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(name: str, uid: str, ns: str, owner: str | None, cpu: str, mem: str) -> dict:
    meta = {"uid": uid, "name": name, "namespace": ns, "annotations": {}}
    if owner:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": owner, "controller": True}]
    return {"metadata": meta, "spec": {"containers": [
        {"name": "c", "image": "x", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}}


def running(start: float) -> dict:
    return {"phase": "Running", "startTime": rfc(start),
            "containerStatuses": [{"name": "c", "state": {"running": {"startedAt": rfc(start)}}}]}


def finished(start: float, stop: float) -> dict:
    return {"phase": "Succeeded", "startTime": rfc(start), "containerStatuses": [
        {"name": "c", "state": {"terminated": {"exitCode": 0, "startedAt": rfc(start),
                                               "finishedAt": rfc(stop)}}}]}


@pytest.fixture
def data_dir(tmp_path):
    """A cluster data dir with one virtual node's ledger and the node pools' ledger."""
    t = float(int(time.time())) - 600
    meter = Meter(Ledger.for_data_dir(tmp_path / "nodes" / "vn"), "vn", ECI, clock=lambda: t + 600)
    a = pod("web-1", "a", "shop", "web-7d9", "1", "2Gi")         
    b = pod("web-2", "b", "shop", "web-7d9", "1", "2Gi")
    c = pod("once", "c", "batch", None, "2", "4Gi")
    meter.observe(a, finished(t, t + 100))
    meter.observe(b, finished(t + 50, t + 250))
    meter.observe(c, running(t + 300))                               # still running
    meter.close()
    nodes = NodeLedger.for_data_dir(tmp_path)
    nodes.start(node="general-0", pool="general", instance_type="2c4g", cpu_m=2000, memory_mib=4096,
                provider="local", start=t)
    nodes.stop("general-0", t + 360)
    nodes.close()
    return tmp_path, t


def families(text: str) -> dict[str, dict[tuple, float]]:
    out: dict[str, dict[tuple, float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name.endswith("_created"):
                continue
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "currency"))
            out.setdefault(s.name, {})[labels] = s.value
    return out


def test_prometheus_output_groups_spend_by_namespace_workload_and_node_type(data_dir):
    d, t = data_dir
    out = subprocess.run([str(BIN / "skube"), "bill", "--data-dir", str(d), "-o", "prometheus"],
                         capture_output=True, text=True, check=True).stdout
    m = families(out)
    per_s = ECI_PRICE.per_second(1, 2)
    web = m["skube_pod_spend_total"][(("namespace", "shop"), ("node_type", "virtual-node"),
                                      ("workload", "ReplicaSet/web-7d9"))]
    assert web == pytest.approx((100 + 200) * per_s)
    assert m["skube_pod_billed_seconds_total"][(("namespace", "shop"), ("node_type", "virtual-node"),
                                               ("workload", "ReplicaSet/web-7d9"))] == 300
    once = m["skube_pod_spend_total"][(("namespace", "batch"), ("node_type", "virtual-node"),
                                       ("workload", ""))]
    assert once >= 290 * ECI_PRICE.per_second(2, 4)                # running since t+300: ~300 s so far
    node = m["skube_node_spend_total"][(("node_type", "2c4g"), ("pool", "general"))]
    assert node == pytest.approx(360 * NODE_PRICE.per_second(2, 4))
    assert m["skube_billed_pods_running"][()] == 1 and m["skube_billed_nodes_running"][()] == 0
    assert m["skube_spend_total"][()] == pytest.approx(web + once + node)
    # the same figures as the bill's table
    table = subprocess.run([str(BIN / "skube"), "bill", "--data-dir", str(d)], capture_output=True,
                           text=True, check=True).stdout
    assert "virtual-node" in table and "2c4g" in table


def test_served_metrics_are_recomputed_at_every_scrape(data_dir):
    d, _ = data_dir
    port = free_port()
    proc = subprocess.Popen([str(BIN / "skube"), "bill", "--data-dir", str(d), "--serve", f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert f"http://127.0.0.1:{port}/metrics" in proc.stderr.readline()

        def scrape() -> float:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                assert r.status == 200
                return families(r.read().decode())["skube_spend_total"][()]
        first = scrape()
        # the running pod accrues: a later scrape reports more spend (counter semantics)
        wait_for(lambda: scrape() > first, timeout=10, interval=0.2, message="spend to grow")
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_serve_refuses_a_bad_address(tmp_path):
    r = subprocess.run([str(BIN / "skube"), "bill", "--data-dir", str(tmp_path), "--serve", "nowhere"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "[HOST:]PORT" in r.stderr
