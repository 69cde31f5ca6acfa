"""The scheduler against a real `skube apiserver` (started with --controllers=), with
Node objects created directly and pods created through kubectl and the official client."""
from __future__ import annotations

import asyncio
import json
import textwrap
import threading

import pytest
from kubernetes import client as k8s

from skube.client import Client
from skube.scheduler import Scheduler
from tests.conftest import wait_for

ZONE = "topology.kubernetes.io/zone"


def make_node(core, name: str, cpu="2", memory="4Gi", labels=None, taints=None):
    core.create_node({"apiVersion": "v1", "kind": "Node",
                      "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
                      "spec": {"taints": taints or []}})
    alloc = {"cpu": cpu, "memory": memory, "pods": "110"}
    core.patch_node_status(name, {"status": {"allocatable": alloc, "capacity": alloc, "conditions": [
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready",
         "lastHeartbeatTime": "2025-01-01T00:00:00Z", "lastTransitionTime": "2025-01-01T00:00:00Z"}]}})


@pytest.fixture(scope="module")
def core(cluster):
    return k8s.CoreV1Api(cluster.client())


@pytest.fixture(scope="module")
def nodes(core):
    make_node(core, "a1", labels={ZONE: "a"})
    make_node(core, "a2", labels={ZONE: "a"})
    make_node(core, "b1", labels={ZONE: "b", "disk": "ssd"})
    make_node(core, "c1", labels={ZONE: "c"})
    make_node(core, "gpu1", cpu="8", labels={ZONE: "c", "accel": "gpu"},
              taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    return ["a1", "a2", "b1", "c1", "gpu1"]


@pytest.fixture(scope="module")
def scheduler(cluster, nodes):
    """The scheduler in a thread with its own event loop."""
    started = threading.Event()
    state: dict = {}

    async def main():
        state["loop"] = asyncio.get_running_loop()
        state["stop"] = asyncio.Event()
        c = Client.from_kubeconfig(str(cluster.kubeconfig), component="scheduler")
        s = state["sched"] = Scheduler(c, seed=7)
        task = asyncio.create_task(s.run(state["stop"]))
        await asyncio.wait_for(s.ready.wait(), 30)
        started.set()
        await task
        await c.close()

    def target():
        try:
            asyncio.run(main())
        except BaseException as e:  # surfaced through state
            state["error"] = e
            started.set()

    t = threading.Thread(target=target, name="scheduler", daemon=True)
    t.start()
    assert started.wait(60) and "error" not in state, state.get("error")
    yield state["sched"]
    state["loop"].call_soon_threadsafe(state["stop"].set)
    t.join(30)
    assert not t.is_alive(), "scheduler did not stop"
    assert "error" not in state, state.get("error")


def namespace(core, name: str) -> str:
    core.create_namespace({"metadata": {"name": name}})
    return name


def create_pod(core, ns: str, name: str, *, labels=None, cpu=None, **spec) -> None:
    c = {"name": "c", "image": "busybox"}
    if cpu:
        c["resources"] = {"requests": {"cpu": cpu}}
    core.create_namespaced_pod(ns, {"metadata": {"name": name, "labels": labels or {}},
                                    "spec": {"containers": [c], **spec}})


def node_of(core, ns: str, name: str, timeout: float = 20) -> str:
    return wait_for(lambda: core.read_namespaced_pod(name, ns).spec.node_name, timeout,
                    message=f"pod {ns}/{name} bound")


def test_node_selector_and_resources(core, scheduler):
    ns = namespace(core, "sel")
    create_pod(core, ns, "ssd", nodeSelector={"disk": "ssd"})
    assert node_of(core, ns, "ssd") == "b1"
    # the 8-cpu node is tainted: two 1500m pods need two distinct 2-cpu nodes
    create_pod(core, ns, "big1", cpu="1500m")
    create_pod(core, ns, "big2", cpu="1500m")
    n1, n2 = node_of(core, ns, "big1"), node_of(core, ns, "big2")
    assert n1 != n2 and {n1, n2} <= {"a1", "a2", "b1", "c1"}
    pod = core.read_namespaced_pod("ssd", ns)
    cond = [c for c in pod.status.conditions if c.type == "PodScheduled"][0]
    assert cond.status == "True"


def test_taints_and_tolerations(core, scheduler):
    ns = namespace(core, "taints")
    tol = [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]
    create_pod(core, ns, "gpu", nodeSelector={"accel": "gpu"}, tolerations=tol)
    assert node_of(core, ns, "gpu") == "gpu1"
    for i in range(6):
        create_pod(core, ns, f"plain{i}")
    assert all(node_of(core, ns, f"plain{i}") != "gpu1" for i in range(6))


def test_topology_spread_across_zones(core, scheduler):
    ns = namespace(core, "spread")
    spread = [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "web"}}}]
    zone = {"a1": "a", "a2": "a", "b1": "b", "c1": "c", "gpu1": "c"}
    got = []
    for i in range(6):
        create_pod(core, ns, f"web{i}", labels={"app": "web"}, topologySpreadConstraints=spread)
        got.append(zone[node_of(core, ns, f"web{i}")])
    assert sorted(got) == ["a", "a", "b", "b", "c", "c"]


def test_pod_anti_affinity(core, scheduler, cluster):
    ns = namespace(core, "anti")
    manifest = textwrap.dedent("""\
        apiVersion: v1
        kind: Pod
        metadata: {name: NAME, namespace: anti, labels: {app: db}}
        spec:
          affinity:
            podAntiAffinity:
              requiredDuringSchedulingIgnoredDuringExecution:
              - labelSelector: {matchLabels: {app: db}}
                topologyKey: topology.kubernetes.io/zone
          containers: [{name: c, image: busybox}]
        """)
    for i in range(3):
        cluster.kubectl("apply", "-f", "-", input=manifest.replace("NAME", f"db{i}"))
    zone = {"a1": "a", "a2": "a", "b1": "b", "c1": "c"}
    zones = {zone[node_of(core, ns, f"db{i}")] for i in range(3)}
    assert zones == {"a", "b", "c"}


def test_unschedulable_pod_reports_and_is_scheduled_when_a_node_fits(core, scheduler, cluster):
    ns = namespace(core, "pending")
    create_pod(core, ns, "huge", cpu="12")

    def condition():
        p = core.read_namespaced_pod("huge", ns)
        return next((c for c in p.status.conditions or [] if c.type == "PodScheduled"
                     and c.status == "False"), None)

    cond = wait_for(condition, message="PodScheduled=False")
    assert cond.reason == "Unschedulable"
    assert cond.message == (
        "0/5 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 4 Insufficient cpu. "
        "preemption: 0/5 nodes are available: 1 Preemption is not helpful for scheduling, "
        "4 No preemption victims found for incoming pod.")

    def failed_events():
        evs = core.list_namespaced_event(ns, field_selector="involvedObject.name=huge").items
        return [e for e in evs if e.reason == "FailedScheduling"]

    ev = wait_for(failed_events, message="FailedScheduling event")[0]
    assert ev.type == "Warning" and ev.source.component == "default-scheduler"
    assert ev.message == cond.message and ev.count == 1
    out = cluster.kubectl("describe", "pod", "huge", "-n", ns).stdout
    assert "FailedScheduling" in out and "default-scheduler" in out and "Insufficient cpu" in out

    # a relevant node change retries the pod; the same failure bumps the same event's count
    core.patch_node("a1", {"metadata": {"labels": {"touched": "1"}}})
    wait_for(lambda: [e for e in failed_events() if (e.count or 0) >= 2], message="event count 2")
    assert len(failed_events()) == 1

    make_node(core, "big", cpu="16", labels={ZONE: "d"})
    assert node_of(core, ns, "huge") == "big"
    p = core.read_namespaced_pod("huge", ns)
    assert [c.status for c in p.status.conditions if c.type == "PodScheduled"] == ["True"]
    scheduled = wait_for(lambda: [e for e in core.list_namespaced_event(ns).items if e.reason == "Scheduled"],
                         message="Scheduled event")
    assert scheduled[0].message == f"Successfully assigned {ns}/huge to big"


def test_other_schedulers_pods_and_bound_pods_are_left_alone(core, scheduler, cluster):
    ns = namespace(core, "others")
    create_pod(core, ns, "mine")
    create_pod(core, ns, "theirs", schedulerName="other-scheduler")
    create_pod(core, ns, "preset", nodeName="c1")
    assert node_of(core, ns, "mine")
    got = cluster.kubectl_json("get", "pod", "theirs", "-n", ns)
    assert not got["spec"].get("nodeName")
    assert "default/theirs" not in scheduler.queue and f"{ns}/theirs" not in scheduler.queue
    assert core.read_namespaced_pod("preset", ns).spec.node_name == "c1"
    # the pre-bound pod counts on c1 in the scheduler's cache
    wait_for(lambda: f"{ns}/preset" in scheduler.cache.nodes["c1"].pods, message="cache sees preset pod")
