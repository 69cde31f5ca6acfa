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
