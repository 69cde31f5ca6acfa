"""End to end: an apiserver and a mock virtual node meter pods into the node's ledger;
`skube bill` prices them. The mock runs a pod annotated ``mock.skube.io/run-seconds: N``
for exactly N seconds, so its bill is N s × the price of its rounded size."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from skube.billing.ledger import Ledger
from skube.billing.prices import ECI_PRICE
from tests.conftest import ROOT, wait_for
from tests.node.conftest import create_pods, list_pods, pod_body, run, start_node


def bill(cluster, *args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "skube.cli_bill", "--data-dir", str(cluster.data_dir), *args],
                         capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def bill_json(cluster, *args: str) -> dict:
    return json.loads(bill(cluster, "-o", "json", *args))


def metered(name: str, node: str, cpu: str, memory: str, **kw) -> dict:
    b = pod_body(name, node, **kw)
    b["spec"]["containers"][0]["resources"] = {"requests": {"cpu": cpu, "memory": memory}}
    return b


def phase(cluster, name: str) -> str | None:
    for p in run(list_pods(cluster)):
        if p["metadata"]["name"] == name:
            return (p.get("status") or {}).get("phase")
    return None


def pod_costs(report: dict, name: str) -> list[dict]:
    return [p for p in report["pods"] if p["name"] == name]


def test_finished_pod_is_billed_its_run_time_and_running_pod_accrues(cluster, tmp_path):
    node_dir = cluster.data_dir / "nodes" / "vn-bill"
    node = start_node(cluster, "vn-bill", node_dir)
    try:
        run(create_pods(cluster, [
            # 1 vCPU / 2 GiB is an ECI size: billed as asked
            metered("job-3s", "vn-bill", "1", "2Gi", restart_policy="Never",
                    annotations={"mock.skube.io/run-seconds": "3"}),
            # 300m / 700Mi rounds up to 0.5 vCPU / 1 GiB
            metered("svc", "vn-bill", "300m", "700Mi"),
        ]))
        wait_for(lambda: phase(cluster, "job-3s") == "Succeeded", timeout=20, message="job-3s Succeeded")
        wait_for(lambda: phase(cluster, "svc") == "Running", timeout=20, message="svc Running")

        r1 = bill_json(cluster)
        [job] = pod_costs(r1, "job-3s")
        assert job["spec"] == "1 vCPU / 2 GiB" and job["spec_table"] == "eci"
        assert job["running"] is False and job["runs"] == 1 and job["node"] == "vn-bill"
        assert job["seconds"] == pytest.approx(3, abs=1e-6)
        assert job["cost"] == pytest.approx(3 * ECI_PRICE.per_second(1, 2), rel=1e-9)

        [svc] = pod_costs(r1, "svc")
        assert svc["spec"] == "0.5 vCPU / 1 GiB" and svc["running"] is True and svc["stop"] is None
        assert svc["cost"] == pytest.approx(svc["seconds"] * ECI_PRICE.per_second(0.5, 1), rel=1e-9)
        # a running pod accrues: a later bill is larger
        r2 = wait_for(lambda: (r := bill_json(cluster)) and pod_costs(r, "svc")[0]["seconds"]
                      >= svc["seconds"] + 1 and r, timeout=10, message="svc accrues")
        svc2 = pod_costs(r2, "svc")[0]
        assert svc2["cost"] > svc["cost"]
        assert pod_costs(r2, "job-3s")[0]["cost"] == job["cost"]       # a finished pod does not

        # per namespace / total
        ns = {g["key"]: g for g in r2["namespaces"]}
        assert ns["default"]["cost"] == pytest.approx(sum(p["cost"] for p in r2["pods"]
                                                          if p["namespace"] == "default"))
        assert r2["total"] == pytest.approx(sum(p["cost"] for p in r2["pods"]))
        assert r2["currency"] == "USD" and r2["until"]

        # --namespace and --since
        assert bill_json(cluster, "--namespace", "nope")["pods"] == []
        recent = bill_json(cluster, "--since", "1s")
        assert not pod_costs(recent, "job-3s") or pod_costs(recent, "job-3s")[0]["seconds"] <= 1
        assert pod_costs(recent, "svc")[0]["seconds"] <= 2

        # csv: a header and one line per pod
        rows = list(csv.DictReader(io.StringIO(bill(cluster, "-o", "csv"))))
        by_name = {r["name"]: r for r in rows}
        assert float(by_name["job-3s"]["cost"]) == pytest.approx(job["cost"], rel=1e-6)
        assert by_name["svc"]["running"] == "true" and by_name["job-3s"]["currency"] == "USD"

        # table: pods, namespaces, total
        table = bill(cluster)
        assert "NAMESPACE" in table and "job-3s" in table and "svc" in table and "TOTAL" in table
        assert "1 vCPU / 2 GiB (eci)" in table

        # a price file changes the bill (currency and rates), not the ledger
        prices = tmp_path / "prices.yaml"
        prices.write_text("currency: CNY\ntables:\n  eci: {vcpuPerSecond: 1, memoryGiBPerSecond: 0.5}\n")
        priced = bill_json(cluster, "--prices", str(prices))
        assert priced["currency"] == "CNY"
        assert pod_costs(priced, "job-3s")[0]["cost"] == pytest.approx(3 * (1 * 1 + 2 * 0.5))
    finally:
        assert node.stop() == 0, node.log.read_text()[-3000:]


def test_ledger_survives_kill9_without_double_counting(cluster):
    node_dir = cluster.data_dir / "nodes" / "vn-bill-k9"
    node = start_node(cluster, "vn-bill-k9", node_dir)
    try:
        run(create_pods(cluster, [
            metered("k9-done", "vn-bill-k9", "250m", "512Mi", restart_policy="Never",
                    annotations={"mock.skube.io/run-seconds": "1"}),
            metered("k9-mid", "vn-bill-k9", "2", "4Gi", restart_policy="Never",
                    annotations={"mock.skube.io/run-seconds": "4"}),
        ]))
        wait_for(lambda: phase(cluster, "k9-done") == "Succeeded", timeout=20, message="k9-done Succeeded")
        wait_for(lambda: phase(cluster, "k9-mid") == "Running", timeout=20, message="k9-mid Running")

        def ledger_runs():
            led = Ledger.for_data_dir(node_dir, create=False)
            try:
                return led.runs()
            finally:
                led.close()
        wait_for(lambda: any(r.name == "k9-mid" and r.stop is None for r in ledger_runs()), timeout=10,
                 message="k9-mid's run recorded")
        node.kill9()
        node = start_node(cluster, "vn-bill-k9", node_dir)
        wait_for(lambda: phase(cluster, "k9-mid") == "Succeeded", timeout=20, message="k9-mid Succeeded")
        wait_for(lambda: all(r.stop is not None for r in ledger_runs()), timeout=10, message="runs closed")
        node.kill9()                                  # and once more, after everything finished
        node = start_node(cluster, "vn-bill-k9", node_dir)

        runs = ledger_runs()
        assert sorted(r.name for r in runs) == ["k9-done", "k9-mid"]          # one run each
        report = bill_json(cluster)
        [done] = pod_costs(report, "k9-done")
        [mid] = pod_costs(report, "k9-mid")
        assert done["runs"] == 1 and done["seconds"] == pytest.approx(1, abs=1e-6)
        assert done["cost"] == pytest.approx(1 * ECI_PRICE.per_second(0.25, 0.5), rel=1e-9)
        assert mid["runs"] == 1 and mid["seconds"] == pytest.approx(4, abs=1e-6)
        assert mid["cost"] == pytest.approx(4 * ECI_PRICE.per_second(2, 4), rel=1e-9)
    finally:
        assert node.stop() == 0, node.log.read_text()[-3000:]


def test_use_specs_and_spot_on_the_virtual_node(cluster):
    """``eci-use-specs``: billed as the first listed spec that fits, or Failed with an Event;
    ``eci-spot-strategy``: billed at the spot price."""
    from skube.billing.specs import SPOT_STRATEGY_ANNOTATION, USE_SPECS_ANNOTATION
    node_dir = cluster.data_dir / "nodes" / "vn-bill-specs"
    node = start_node(cluster, "vn-bill-specs", node_dir)
    try:
        run(create_pods(cluster, [
            metered("listed-spot", "vn-bill-specs", "1", "3Gi", restart_policy="Never",
                    annotations={"mock.skube.io/run-seconds": "2", USE_SPECS_ANNOTATION: "1-2Gi,2-4Gi",
                                 SPOT_STRATEGY_ANNOTATION: "SpotAsPriceGo"}),
            metered("too-big", "vn-bill-specs", "4", "8Gi", restart_policy="Never",
                    annotations={USE_SPECS_ANNOTATION: "1-2Gi,2-4Gi"}),
        ]))
        wait_for(lambda: phase(cluster, "listed-spot") == "Succeeded", timeout=20, message="listed-spot done")
        wait_for(lambda: phase(cluster, "too-big") == "Failed", timeout=20, message="too-big Failed")
        pod = cluster.kubectl_json("get", "pod", "too-big")
        assert pod["status"]["reason"] == "InstanceSpecUnsatisfiable"
        assert "1-2Gi: smaller than the pod's 4 vCPU / 8 GiB" in pod["status"]["message"]
        events = wait_for(lambda: [e for e in cluster.kubectl_json("get", "events")["items"]
                                   if e["involvedObject"]["name"] == "too-big"
                                   and e["reason"] == "InstanceSpecUnsatisfiable"], timeout=10,
                          message="event for too-big")
        assert events[0]["type"] == "Warning"

        report = bill_json(cluster)
        [spot] = pod_costs(report, "listed-spot")
        assert spot["spec"] == "2 vCPU / 4 GiB" and spot["seconds"] == pytest.approx(2, abs=1e-6)
        assert spot["cost"] == pytest.approx(2 * ECI_PRICE.for_run(True).per_second(2, 4), rel=1e-9)
        assert not pod_costs(report, "too-big")            # never started, never billed
    finally:
        assert node.stop() == 0, node.log.read_text()[-3000:]
