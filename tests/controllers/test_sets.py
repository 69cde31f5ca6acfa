"""StatefulSets, DaemonSets, ReplicaSet scale-down order, Endpoints/EndpointSlices,
ServiceAccounts and namespace deletion, end to end."""
from __future__ import annotations

import threading
import time

from skube.controllers.controllerutils import deletion_order
from tests.conftest import wait_for
from tests.controllers.conftest import TOLERATION, PodWatch, is_ready, pod_template

NS = "default"


def test_statefulset_ordered_scale_up_and_down(env):
    order: list[tuple[str, str, bool]] = []      # (event, pod, previous ordinal ready at that moment)
    ready: dict[str, bool] = {}
    lock = threading.Lock()

    def on_event(etype, pod):
        with lock:
            name = pod["metadata"]["name"]
            i = int(name.rsplit("-", 1)[1])
            if etype == "ADDED":
                order.append(("add", name, i == 0 or ready.get(f"db-{i - 1}", False)))
            deleting = etype == "DELETED" or pod["metadata"].get("deletionTimestamp")
            if deleting and not any(o[0] == "del" and o[1] == name for o in order):
                order.append(("del", name, True))
            ready[name] = is_ready(pod)

    watch = PodWatch(env, NS, "app=db", on_event)
    try:
        env.apply({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": NS},
                   "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                            "template": pod_template({"app": "db"})}})
        env.kubectl("rollout", "status", "statefulset/db", "--timeout=60s")
        env.kubectl("scale", "statefulset/db", "--replicas=1", "-n", NS)
        wait_for(lambda: len(env.pods(NS, "app=db")) == 1, 60, message="scaled down to 1")
        wait_for(lambda: len([o for o in order if o[0] == "del"]) == 2, 10, message="deletions seen")
    finally:
        watch.stop()
    adds = [o for o in order if o[0] == "add"]
    assert [o[1] for o in adds] == ["db-0", "db-1", "db-2"]
    assert all(o[2] for o in adds), f"a pod was created before its predecessor was ready: {order}"
    assert [o[1] for o in order if o[0] == "del"] == ["db-2", "db-1"]
    p = env.get("pod", "db-0", "-n", NS)
    assert p["spec"]["hostname"] == "db-0" and p["spec"]["subdomain"] == "db"
    assert p["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "db-0"
    assert p["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "0"
    sts = env.get("statefulset", "db", "-n", NS)
    assert p["metadata"]["labels"]["controller-revision-hash"] == sts["status"]["updateRevision"]
    assert env.get("controllerrevisions", "-n", NS)["items"]
    wait_for(lambda: env.get("statefulset", "db", "-n", NS)["status"].get("replicas") == 1, 20,
             message="sts status")


def test_statefulset_rolling_update(env):
    env.apply({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "ru", "namespace": NS},
               "spec": {"replicas": 2, "serviceName": "ru", "podManagementPolicy": "Parallel",
                        "selector": {"matchLabels": {"app": "ru"}}, "template": pod_template({"app": "ru"})}})
    env.kubectl("rollout", "status", "statefulset/ru", "--timeout=60s")
    env.kubectl("set", "image", "statefulset/ru", "c=nginx:2", "-n", NS)
    env.kubectl("rollout", "status", "statefulset/ru", "--timeout=60s")
    sts = env.get("statefulset", "ru", "-n", NS)
    assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"]
    assert all(p["spec"]["containers"][0]["image"] == "nginx:2" for p in env.pods(NS, "app=ru"))


def test_daemonset_skips_virtual_node(env):
    env.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "real-1",
                                                                  "labels": {"kubernetes.io/hostname": "real-1"}}})
    env.apply({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": NS},
               "spec": {"selector": {"matchLabels": {"app": "agent"}},
                        "template": pod_template({"app": "agent"})}})
    pods = wait_for(lambda: env.pods(NS, "app=agent"), 30, message="daemon pod")
    wait_for(lambda: env.get("ds", "agent", "-n", NS).get("status", {}).get("desiredNumberScheduled") == 1, 20,
             message="ds status")
    assert len(env.pods(NS, "app=agent")) == 1
    terms = pods[0]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchFields"] == [
        {"key": "metadata.name", "operator": "In", "values": ["real-1"]}]
    env.kubectl("delete", "node", "real-1")
    wait_for(lambda: not [p for p in env.pods(NS, "app=agent") if not p["metadata"].get("deletionTimestamp")],
             30, message="daemon pod removed with its node")


def _rs(name: str, replicas: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"rs": name}},
                     "template": pod_template({"rs": name})}}


def _pod(name: str, rs: str, tolerate: bool = True, annotations: dict | None = None) -> dict:
    spec = {"containers": [{"name": "c", "image": "nginx"}], "terminationGracePeriodSeconds": 0}
    if tolerate:
        spec["tolerations"] = [dict(TOLERATION)]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": {"rs": rs}, "annotations": annotations or {}},
            "spec": spec}


def _scale_down_victim(env, rs: str, pods: list[dict], settle) -> str:
    for p in pods:
        env.apply(p)
    wait_for(settle, 30, message="pods settled")
    env.apply(_rs(rs, len(pods)))
    wait_for(lambda: all(p["metadata"].get("ownerReferences") for p in env.pods(NS, f"rs={rs}")), 20,
             message="adopted")
    env.kubectl("scale", f"rs/{rs}", f"--replicas={len(pods) - 1}", "-n", NS)
    gone = wait_for(lambda: [p["metadata"]["name"] for p in env.pods(NS, f"rs={rs}")
                             if p["metadata"].get("deletionTimestamp")] or
                    ({p["metadata"]["name"] for p in pods} - {p["metadata"]["name"]
                                                              for p in env.pods(NS, f"rs={rs}")}),
                    30, message="a pod deleted")
    return list(gone)[0]


def test_replicaset_scale_down_order(env):
    def running(names):
        return lambda: all(any(p["metadata"]["name"] == n and is_ready(p) for p in env.pods(NS, "app!=x"))
                           for n in names)
    # unscheduled before scheduled
    victim = _scale_down_victim(env, "o1", [_pod("o1-sched", "o1"), _pod("o1-unsched", "o1", tolerate=False)],
                                running(["o1-sched"]))
    assert victim == "o1-unsched"
    # pending before running
    victim = _scale_down_victim(env, "o2", [_pod("o2-run", "o2"),
                                            _pod("o2-pend", "o2", annotations={"mock.skube.io/start-delay-ms":
                                                                               "600000"})],
                                lambda: running(["o2-run"])() and env.get("pod", "o2-pend", "-n", NS)["spec"]
                                .get("nodeName"))
    assert victim == "o2-pend"
    # lower pod-deletion-cost first
    victim = _scale_down_victim(env, "o3", [
        _pod("o3-a", "o3", annotations={"controller.kubernetes.io/pod-deletion-cost": "-5"}),
        _pod("o3-b", "o3", annotations={"controller.kubernetes.io/pod-deletion-cost": "10"})],
        running(["o3-a", "o3-b"]))
    assert victim == "o3-a"
    env.apply(_rs("o4", 2))
    wait_for(lambda: len([p for p in env.pods(NS, "rs=o4") if is_ready(p)]) == 2, 30, message="o4 ready")
    rs = env.get("rs", "o4", "-n", NS)
    assert rs["status"]["readyReplicas"] == 2 and rs["status"]["availableReplicas"] == 2
    p = env.pods(NS, "rs=o4")[0]
    ref = p["metadata"]["ownerReferences"][0]
    assert ref["controller"] and ref["blockOwnerDeletion"] and ref["kind"] == "ReplicaSet"
    assert p["metadata"]["generateName"] == "o4-"


def _p(name, node="n", phase="Running", ready=True, cost=None, created=0.0, ready_at=None, restarts=0):
    ts = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    conds = [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime":
              ts(ready_at if ready_at is not None else created)}]
    return {"metadata": {"name": name, "uid": name, "creationTimestamp": ts(created),
                         "annotations": {"controller.kubernetes.io/pod-deletion-cost": str(cost)} if cost else {}},
            "spec": {"nodeName": node}, "status": {"phase": phase, "conditions": conds,
                                                    "containerStatuses": [{"restartCount": restarts}]}}


def test_deletion_order_rules():
    now = 1_000_000.0
    names = lambda pods: [p["metadata"]["name"] for p in deletion_order(pods, now=now)]  # noqa: E731
    assert names([_p("a", created=now - 100), _p("b", node="", created=now - 100)])[0] == "b"
    assert names([_p("a", created=now - 100), _p("b", phase="Pending", ready=False, created=now - 100)])[0] == "b"
    assert names([_p("a", created=now - 100), _p("b", phase="Unknown", created=now - 100)])[0] == "b"
    assert names([_p("a", created=now - 100), _p("b", ready=False, created=now - 100)])[0] == "b"
    assert names([_p("a", cost=5, created=now - 100), _p("b", cost=1, created=now - 100)])[0] == "b"
    ranked = deletion_order([_p("a", created=now - 100), _p("b", created=now - 100)], {"a": 1, "b": 3}, now)
    assert ranked[0]["metadata"]["name"] == "b"
    assert names([_p("a", created=now - 1000), _p("b", created=now - 1000, ready_at=now - 10)])[0] == "b"
    assert names([_p("a", created=now - 100, restarts=0), _p("b", created=now - 100, restarts=3)])[0] == "b"
    assert names([_p("a", created=now - 10000, ready_at=now - 5), _p("b", created=now - 10, ready_at=now - 5)])[0] \
        == "b"


def test_endpoints_follow_readiness(env):
    env.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ep", "namespace": NS},
               "spec": {"selector": {"app": "ep"}, "ports": [{"name": "http", "port": 80, "targetPort": "web"},
                                                              {"name": "raw", "port": 81, "targetPort": 9000}]}})
    pod = pod_template({"app": "ep"}, annotations={"mock.skube.io/run-seconds": "2", "mock.skube.io/exit-code": "1"})
    pod["spec"]["containers"][0]["ports"] = [{"name": "web", "containerPort": 8080}]
    env.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ep-1", "namespace": NS, **pod["metadata"]},
               "spec": pod["spec"]})

    def ready_addresses():
        ep = env.try_get("endpoints", "ep", "-n", NS) or {}
        return [a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []]

    def not_ready_addresses():
        ep = env.try_get("endpoints", "ep", "-n", NS) or {}
        return [a["ip"] for s in ep.get("subsets") or [] for a in s.get("notReadyAddresses") or []]

    wait_for(ready_addresses, 30, message="ready address")
    ep = env.get("endpoints", "ep", "-n", NS)
    ports = sorted((p["name"], p["port"]) for p in ep["subsets"][0]["ports"])
    assert ports == [("http", 8080), ("raw", 9000)]
    sl = env.get("endpointslices", "-n", NS, "-l", "kubernetes.io/service-name=ep")["items"]
    assert len(sl) == 1 and sl[0]["endpoints"][0]["conditions"]["ready"] is True
    assert sl[0]["metadata"]["ownerReferences"][0]["kind"] == "Service"
    # the container exits: the pod stays Running but is not ready
    wait_for(not_ready_addresses, 30, message="address moved to notReadyAddresses")
    assert not ready_addresses()
    wait_for(lambda: env.get("endpointslices", "-n", NS, "-l", "kubernetes.io/service-name=ep")["items"][0]
             ["endpoints"][0]["conditions"]["ready"] is False, 20, message="slice not ready")


def test_default_service_account_and_namespace_deletion(env):
    env.kubectl("create", "namespace", "gone")
    wait_for(lambda: env.try_get("serviceaccount", "default", "-n", "gone"), 20, message="default sa")
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "gone"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}}, "template": pod_template({"app": "d"})}}
    env.apply(dep)
    env.apply({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "gone"},
               "spec": {"template": pod_template({"app": "j"}, restart_policy="Never")}})
    wait_for(lambda: len(env.get("pods", "-n", "gone")["items"]) == 3, 30, message="pods in namespace")
    env.kubectl("delete", "namespace", "gone", "--timeout=60s")
    assert env.try_get("namespace", "gone") is None
