"""Elastic scheduling on `skube up` (mock provider, a node pool of two ordinary nodes):
normalNodePrefer overflows to the virtual node at once and scales in virtual-node pods
first; a virtualNodeOnly namespace never touches the pool; per-pod opt-in/opt-out;
spot pods are reclaimed with a warning and replaced."""
from __future__ import annotations

import json
import time

import pytest

from tests.conftest import wait_for
from tests.e2e.test_up import start_up

NET = 10            # start_up's network slot for this file
VN = "skube-virtual-node"
CONFIG = """\
serverless:
  maxWaitSeconds: 0
  rules:
  - namespace: serverless
    policy: virtualNodeOnly
  - namespace: patient
    policy: normalNodePrefer
    maxWaitSeconds: 4
  - namespace: units
    policy: resourcePolicy
    units:
    - {nodeSelector: {skube.io/node-pool: general}, max: 2}
    - {virtualNode: true}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    data = tmp_path_factory.mktemp("elastic") / "cluster"
    data.mkdir()
    (data / "config.yaml").write_text(CONFIG)
    c = start_up(data, net=NET, args=("--provider", "mock", "--policy", "normalNodePrefer",
                                      "--node-pool", "general=2x2c4g"),
                 provider_extra="spot: {warningSeconds: 1}\n")
    try:
        wait_for(lambda: len(ready_nodes(c)) == 3, timeout=60, message="two pool nodes and the virtual node")
        for ns in ("serverless", "patient", "units"):
            c.kubectl("create", "namespace", ns)
        yield c
    finally:
        assert c.stop(timeout=40) == 0, c.log.read_text()[-3000:]


def ready_nodes(c) -> list[str]:
    out = []
    for n in c.kubectl_json("get", "nodes")["items"]:
        conds = (n.get("status") or {}).get("conditions") or []     # a node just registered has none
        if any(x["type"] == "Ready" and x["status"] == "True" for x in conds):
            out.append(n["metadata"]["name"])
    return out


def deployment(name: str, replicas: int, cpu: str = "1", annotations: dict | None = None) -> str:
    meta: dict = {"labels": {"app": name}}
    if annotations:
        meta["annotations"] = annotations
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": meta, "spec": {
                     "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "c", "image": "nginx",
                                     "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]}}}})


def pods(c, ns: str, selector: str) -> list[dict]:
    return c.kubectl_json("get", "pods", "-n", ns, "-l", selector)["items"]


def running(c, ns: str, selector: str) -> list[dict]:
    return [p for p in pods(c, ns, selector)
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]


def placement(ps: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in ps:
        node = p["spec"].get("nodeName") or ""
        kind = "virtual" if node == VN else "pool" if node.startswith("general-") else node
        out[kind] = out.get(kind, 0) + 1
    return out


def events(c, ns: str, reason: str) -> list[dict]:
    return [e for e in c.kubectl_json("get", "events", "-n", ns)["items"] if e.get("reason") == reason]


def test_normal_node_prefer_overflows_at_once_and_scales_in_virtual_pods_first(cluster):
    c = cluster
    t0 = time.monotonic()
    c.kubectl("apply", "-f", "-", input=deployment("web", 7))
    # 2 nodes x 2 cpu hold 4 pods of 1 cpu; the other 3 run on the virtual node without waiting
    wait_for(lambda: len(running(c, "default", "app=web")) == 7, timeout=30, message="7 pods running")
    assert time.monotonic() - t0 < 25                   # no node had to boot (60 s)
    ps = running(c, "default", "app=web")
    assert placement(ps) == {"pool": 4, "virtual": 3}
    assert not [e for e in events(c, "default", "FailedScheduling")
                if e["involvedObject"]["name"].startswith("web-")]
    for p in ps:
        cost = p["metadata"].get("annotations", {}).get("controller.kubernetes.io/pod-deletion-cost")
        assert cost == ("-1" if p["spec"]["nodeName"] == VN else None), p["metadata"]
    assert sorted(ready_nodes(c)) == ["general-1", "general-2", VN]   # no node was added
    # scale back: the virtual-node pods go first, then scale out again fills the virtual node
    pool_pods = {p["metadata"]["name"] for p in ps if p["spec"]["nodeName"] != VN}
    c.kubectl("scale", "deployment/web", "--replicas=5")
    wait_for(lambda: len(pods(c, "default", "app=web")) == 5, timeout=30, message="scaled to 5")
    assert placement(running(c, "default", "app=web")) == {"pool": 4, "virtual": 1}
    c.kubectl("scale", "deployment/web", "--replicas=4")
    wait_for(lambda: len(pods(c, "default", "app=web")) == 4, timeout=30, message="scaled to 4")
    assert {p["metadata"]["name"] for p in pods(c, "default", "app=web")} == pool_pods

    # a namespace that waits for ordinary capacity first: held back 4 s, then bursts
    c.kubectl("apply", "-n", "patient", "-f", "-", input=deployment("late", 1))
    wait_for(lambda: events(c, "patient", "FailedScheduling"), timeout=20, message="FailedScheduling")
    msg = events(c, "patient", "FailedScheduling")[0]["message"]
    assert "held back by policy normalNodePrefer until the pod has waited 4s" in msg, msg
    assert not running(c, "patient", "app=late")
    wait_for(lambda: running(c, "patient", "app=late"), timeout=30, message="the patient pod bursts")
    assert placement(running(c, "patient", "app=late")) == {"virtual": 1}
    c.kubectl("delete", "-n", "patient", "deployment/late", "--wait=false")
    c.kubectl("delete", "deployment/web", "--wait=false")
    wait_for(lambda: not pods(c, "default", "app=web"), timeout=30, message="web gone")


def test_virtual_node_only_namespace_never_touches_the_pool(cluster):
    c = cluster
    c.kubectl("apply", "-n", "serverless", "-f", "-", input=deployment("fn", 5, cpu="100m"))
    wait_for(lambda: len(running(c, "serverless", "app=fn")) == 5, timeout=30, message="5 pods running")
    ps = running(c, "serverless", "app=fn")
    assert placement(ps) == {"virtual": 5}              # the pool has room for all of them
    assert all(p["spec"]["nodeSelector"] == {"type": "virtual-kubelet"} for p in ps)
    assert all(p["metadata"]["annotations"]["scheduling.skube.io/policy"] == "virtualNodeOnly" for p in ps)
    # per pod: ECI's label opts out of the namespace's rule, ECI's annotation opts in elsewhere
    c.kubectl("-n", "serverless", "run", "stay", "--image=nginx", "--labels=run=stay,alibabacloud.com/eci=false")
    c.kubectl("run", "burst", "--image=nginx", "--annotations=alibabacloud.com/burst-resource=eci_only")
    wait_for(lambda: running(c, "serverless", "run=stay") and running(c, "default", "run=burst"),
             timeout=30, message="opt-out and opt-in pods running")
    assert placement(running(c, "serverless", "run=stay")) == {"pool": 1}
    assert placement(running(c, "default", "run=burst")) == {"virtual": 1}
    # a value admission does not know is refused, saying what to fix
    bad = c.kubectl("run", "bad", "--image=nginx", "--annotations=alibabacloud.com/burst-resource=ecs",
                    check=False)
    assert bad.returncode != 0
    assert 'alibabacloud.com/burst-resource]: Invalid value: "ecs": must be "eci", "eci_only" or empty' \
        in bad.stderr
    c.kubectl("delete", "-n", "serverless", "deployment/fn", "pod/stay", "--wait=false")
    c.kubectl("delete", "pod/burst", "--wait=false")


def test_resource_policy_units_in_order_and_scale_in_in_reverse(cluster):
    c = cluster
    c.kubectl("apply", "-n", "units", "-f", "-", input=deployment("api", 5, cpu="100m"))
    wait_for(lambda: len(running(c, "units", "app=api")) == 5, timeout=30, message="5 pods running")
    assert placement(running(c, "units", "app=api")) == {"pool": 2, "virtual": 3}   # max 2 in the pool
    c.kubectl("scale", "-n", "units", "deployment/api", "--replicas=2")
    wait_for(lambda: len(pods(c, "units", "app=api")) == 2, timeout=30, message="scaled to 2")
    assert placement(pods(c, "units", "app=api")) == {"pool": 2}
    c.kubectl("scale", "-n", "units", "deployment/api", "--replicas=3")
    wait_for(lambda: len(running(c, "units", "app=api")) == 3, timeout=30, message="scaled to 3")
    assert placement(running(c, "units", "app=api")) == {"pool": 2, "virtual": 1}
    c.kubectl("delete", "-n", "units", "deployment/api", "--wait=false")


def disrupted(p: dict) -> dict | None:
    return next((x for x in p["status"].get("conditions") or [] if x["type"] == "DisruptionTarget"), None)


def test_spot_pod_is_reclaimed_with_a_warning_and_replaced(cluster):
    c = cluster
    spot = {"k8s.aliyun.com/eci-spot-strategy": "SpotAsPriceGo", "spot.skube.io/reclaim-after-seconds": "3"}
    c.kubectl("apply", "-n", "serverless", "-f", "-", input=deployment("spot", 1, cpu="100m", annotations=spot))
    wait_for(lambda: running(c, "serverless", "app=spot"), timeout=30, message="spot pod running")
    first = running(c, "serverless", "app=spot")[0]["metadata"]["name"]

    def reclaimed():
        p = next((p for p in pods(c, "serverless", "app=spot") if p["metadata"]["name"] == first), None)
        return p if p is not None and p["status"].get("phase") == "Failed" else None
    wait_for(reclaimed, timeout=30, message="the spot pod reclaimed")
    p = reclaimed()
    cond = disrupted(p)
    assert cond and cond["status"] == "True" and cond["reason"] == "TerminationByKubelet", p["status"]
    assert p["status"]["reason"] == "Terminated" and "spot instance was reclaimed" in p["status"]["message"]
    assert p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137
    warn = [e for e in events(c, "serverless", "SpotToBeReleased") if e["involvedObject"]["name"] == first]
    assert warn and warn[0]["type"] == "Warning"
    # the ReplicaSet replaces it
    wait_for(lambda: [q for q in running(c, "serverless", "app=spot") if q["metadata"]["name"] != first],
             timeout=30, message="a replacement pod running")
    c.kubectl("delete", "-n", "serverless", "deployment/spot", "--wait=false")


def test_spot_reclaim_by_annotation_and_on_demand_pods_are_never_reclaimed(cluster):
    c = cluster
    c.kubectl("apply", "-n", "serverless", "-f", "-", input=deployment(
        "cheap", 1, cpu="100m", annotations={"k8s.aliyun.com/eci-spot-strategy": "SpotWithPriceLimit"}))
    c.kubectl("apply", "-n", "serverless", "-f", "-", input=deployment("steady", 1, cpu="100m"))
    wait_for(lambda: running(c, "serverless", "app=cheap") and running(c, "serverless", "app=steady"),
             timeout=30, message="pods running")
    cheap = running(c, "serverless", "app=cheap")[0]["metadata"]["name"]
    steady = running(c, "serverless", "app=steady")[0]["metadata"]["name"]
    c.kubectl("annotate", "-n", "serverless", f"pod/{cheap}", f"pod/{steady}", "spot.skube.io/reclaim=true")
    wait_for(lambda: c.kubectl_json("get", "-n", "serverless", f"pod/{cheap}")["status"]["phase"] == "Failed",
             timeout=30, message="the annotated spot pod reclaimed")
    assert disrupted(c.kubectl_json("get", "-n", "serverless", f"pod/{cheap}"))
    wait_for(lambda: [q for q in running(c, "serverless", "app=cheap") if q["metadata"]["name"] != cheap],
             timeout=30, message="replaced")
    s = c.kubectl_json("get", "-n", "serverless", f"pod/{steady}")
    assert s["status"]["phase"] == "Running" and not disrupted(s)     # on-demand: not a spot instance
    c.kubectl("delete", "-n", "serverless", "deployment/cheap", "deployment/steady", "--wait=false")
