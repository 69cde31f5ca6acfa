"""Resource metrics: the kubelet's /metrics/resource (Prometheus text, upstream names) and
the API server's metrics.k8s.io answered from it, with `kubectl top` on the mock provider
(its simulated usage: 10% of each container's CPU request, half its memory request)."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from skube.apiserver.metrics import cpu_quantity, cpu_rate, go_duration, memory_quantity, parse_scrape
from skube.node.resource_metrics import ResourceMetrics, parse
from tests.conftest import wait_for
from tests.node.conftest import create_pods, kubelet_client, pod_body, run, start_node

NODE = "vn-metrics"


@pytest.fixture(scope="module")
def node(cluster, tmp_path_factory):
    n = start_node(cluster, NODE, tmp_path_factory.mktemp("node"))
    yield n
    assert n.stop() == 0, n.log.read_text()


def sized(name: str, cpu: str, memory: str, labels: dict | None = None) -> dict:
    b = pod_body(name, NODE)
    b["metadata"]["labels"] = labels or {}
    b["spec"]["containers"] = [
        {"name": "app", "image": "nginx:1.27", "resources": {"requests": {"cpu": cpu, "memory": memory}}},
        {"name": "side", "image": "busybox", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]
    return b


def test_formats():
    assert cpu_quantity(0.05) == "50m" and cpu_quantity(2) == "2" and cpu_quantity(1.2346e-6) == "1235n"
    assert cpu_quantity(0.000012) == "12u"
    assert memory_quantity(128 * 2**20) == "128Mi" and memory_quantity(1000) == "1000"
    assert memory_quantity(3 * 2**30) == "3Gi" and memory_quantity(1536) == "1536"
    assert go_duration(1.0021) == "1.0021s" and go_duration(15) == "15s" and go_duration(60.5) == "1m0.5s"
    assert go_duration(0.25) == "250ms"


def test_render_and_parse_roundtrip_keeps_node_counter_monotonic():
    rm = ResourceMetrics()

    def summary(pods):
        return {"node": {"cpu": {"time": "2026-01-01T00:00:10Z"}, "memory": {"workingSetBytes": 5}},
                "pods": [{"podRef": {"namespace": "d", "name": n, "uid": n},
                          "cpu": {"time": "2026-01-01T00:00:10Z", "usageCoreNanoSeconds": ns},
                          "memory": {"workingSetBytes": 7},
                          "containers": [{"name": "c", "startTime": "2026-01-01T00:00:00Z",
                                          "cpu": {"time": "2026-01-01T00:00:10Z", "usageCoreNanoSeconds": ns},
                                          "memory": {"workingSetBytes": 7}}]} for n, ns in pods]}
    text = rm.render(summary([("a", 2 * 10**9), ("b", 10**9)]))
    m = parse(text)
    assert "# TYPE container_cpu_usage_seconds_total counter" in text
    assert m["container_cpu_usage_seconds_total"][0] == ({"container": "c", "namespace": "d", "pod": "a"}, 2.0,
                                                         1767225610000)
    assert m["node_cpu_usage_seconds_total"][0][1] == 3.0 and m["resource_scrape_error"][0][1] == 0
    assert m["pod_memory_working_set_bytes"][0][1] == 7 and m["node_memory_working_set_bytes"][0][1] == 5
    # pod b went away, a used one more second: the node counter still grows
    m2 = parse(rm.render(summary([("a", 3 * 10**9)])))
    assert m2["node_cpu_usage_seconds_total"][0][1] == 4.0
    assert parse(rm.render(None, error=True))["resource_scrape_error"][0][1] == 1
    s1, s2 = parse_scrape(text, 0), parse_scrape(rm.render(summary([("a", 5 * 10**9)])), 1)
    assert cpu_rate(s1.containers[("d", "a", "c")], s2.containers[("d", "a", "c")]) is None   # same sample time


def test_kubelet_metrics_resource_and_kubectl_top(cluster, node):
    run(create_pods(cluster, [sized("m-web", "500m", "256Mi", {"app": "web"}),
                              sized("m-db", "2", "1Gi", {"app": "db"})]))
    wait_for(lambda: all(cluster.kubectl("get", "pod", n, "-o", "jsonpath={.status.phase}").stdout == "Running"
                         for n in ("m-web", "m-db")), timeout=20, message="pods Running")
    with kubelet_client(cluster) as c:
        r = c.get(f"https://127.0.0.1:{node.kubelet_port}/metrics/resource")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    m = parse(r.text)
    by = {(lab["pod"], lab["container"]): v for lab, v, _ in m["container_memory_working_set_bytes"]}
    assert by[("m-web", "app")] == 128 * 2**20 and by[("m-db", "side")] == 32 * 2**20
    assert {lab["pod"] for lab, _, _ in m["pod_cpu_usage_seconds_total"]} >= {"m-web", "m-db"}

    out = cluster.kubectl("top", "pod", "--containers", "-l", "app in (web,db)").stdout
    rows = {tuple(line.split()[:2]): line.split()[2:] for line in out.splitlines()[1:]}

    def near(row, cpu_m, mem):          # kubectl rounds CPU up to whole millicores
        return cpu_m <= int(row[0].rstrip("m")) <= cpu_m + 2 and row[1] == mem
    assert near(rows[("m-web", "app")], 50, "128Mi"), out          # 10% of 500m, half of 256Mi
    assert near(rows[("m-web", "side")], 10, "32Mi"), out
    assert near(rows[("m-db", "app")], 200, "512Mi"), out
    out = cluster.kubectl("top", "pod", "m-web").stdout
    assert re.search(r"^m-web\s+6[0-2]m\s+160Mi\s*$", out, re.M), out
    assert "m-db" not in cluster.kubectl("top", "pod", "-l", "app=web").stdout

    raw = json.loads(cluster.kubectl("get", "--raw",
                                     "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/m-db").stdout)
    assert raw["kind"] == "PodMetrics" and raw["metadata"]["labels"] == {"app": "db"}
    assert re.fullmatch(r"\d+(\.\d+)?(ms|s)", raw["window"]) and raw["window"] != "0s"
    stamp = dt.datetime.fromisoformat(raw["timestamp"].replace("Z", "+00:00"))
    assert abs((dt.datetime.now(dt.timezone.utc) - stamp).total_seconds()) < 30
    res = cluster.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nope", check=False)
    assert res.returncode != 0 and 'podmetrics.metrics.k8s.io "default/nope" not found' in res.stderr

    out = cluster.kubectl("top", "node", NODE).stdout
    line = next(line for line in out.splitlines() if line.startswith(NODE))
    cpu = int(line.split()[1].rstrip("m"))
    assert cpu >= 50 + 10 + 200 + 10, out                      # at least these two pods' usage
    nm = json.loads(cluster.kubectl("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/nodes/{NODE}").stdout)
    assert nm["kind"] == "NodeMetrics" and nm["usage"]["memory"]
    res = cluster.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes?watch=true", check=False)
    assert res.returncode != 0
