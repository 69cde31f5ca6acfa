"""PodDisruptionBudget status from the disruption controller, honoured by the eviction API."""
from __future__ import annotations

from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from tests.conftest import wait_for
from tests.controllers.conftest import pod_template

NS = "default"


def test_pdb_status_and_eviction(env):
    env.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "guarded", "namespace": NS},
               "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "guarded"}},
                        "template": pod_template({"app": "guarded"})}})
    env.kubectl("rollout", "status", "deployment/guarded", "--timeout=60s")
    env.apply({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
               "metadata": {"name": "guarded", "namespace": NS},
               "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "guarded"}}}})

    def status():
        return (env.try_get("pdb", "guarded", "-n", NS) or {}).get("status") or {}
    wait_for(lambda: status().get("disruptionsAllowed") == 1 and status().get("currentHealthy") == 3,
             timeout=30, message="pdb status")
    st = status()
    assert st["desiredHealthy"] == 2 and st["expectedPods"] == 3
    core = k8s.CoreV1Api(env.cluster.client())
    names = [p["metadata"]["name"] for p in env.pods(NS, "app=guarded")]
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": names[0], "namespace": NS}}
    core.create_namespaced_pod_eviction(names[0], NS, body)
    second = {**body, "metadata": {"name": names[1], "namespace": NS}}
    try:
        core.create_namespaced_pod_eviction(names[1], NS, second)
        raise AssertionError("the second eviction must be refused")
    except ApiException as e:
        assert e.status == 429 and "disruption budget" in e.body
    # the Deployment replaces the evicted pod; the budget allows one disruption again
    wait_for(lambda: status().get("disruptionsAllowed") == 1 and status().get("currentHealthy") == 3,
             timeout=60, message="budget restored")
    core.create_namespaced_pod_eviction(names[1], NS, second)


def test_eviction_marks_the_pod_disruption_target_and_dry_run_changes_nothing(env):
    # a finalizer holds the evicted pod, so its last state can be read
    env.apply({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "held", "namespace": NS, "labels": {"app": "held"},
                            "finalizers": ["example.com/hold"]},
               **{k: v for k, v in pod_template({"app": "held"}).items() if k == "spec"}})
    wait_for(lambda: ((env.try_get("pod", "held", "-n", NS) or {}).get("status") or {}).get("phase") == "Running",
             timeout=30, message="held running")
    core = k8s.CoreV1Api(env.cluster.client())
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "held", "namespace": NS}}
    core.create_namespaced_pod_eviction("held", NS, body, dry_run="All")
    pod = env.try_get("pod", "held", "-n", NS)
    assert "deletionTimestamp" not in pod["metadata"]
    assert "DisruptionTarget" not in {c["type"] for c in pod["status"].get("conditions") or []}
    core.create_namespaced_pod_eviction("held", NS, body)
    pod = env.try_get("pod", "held", "-n", NS)
    assert pod["metadata"].get("deletionTimestamp")
    [cond] = [c for c in pod["status"]["conditions"] if c["type"] == "DisruptionTarget"]
    assert (cond["status"], cond["reason"]) == ("True", "EvictionByEvictionAPI")
    env.kubectl("patch", "pod", "held", "-n", NS, "--type=json",
                "-p", '[{"op": "remove", "path": "/metadata/finalizers"}]')
    wait_for(lambda: env.try_get("pod", "held", "-n", NS) is None, timeout=30, message="held gone")
