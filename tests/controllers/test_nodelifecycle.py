"""Node lifecycle: a node that stops heartbeating goes Unknown, is tainted, and its
pods are evicted when their tolerations run out."""
from __future__ import annotations

import datetime as dt
import json

from skube.controllers.nodelifecycle import eviction_delay
from tests.conftest import wait_for
from tests.controllers.conftest import InProcessControllers


def test_eviction_delay_rules():
    taints = [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]
    assert eviction_delay({"spec": {}}, taints) == 0
    tol = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    assert eviction_delay({"spec": {"tolerations": [tol]}}, taints) is None
    assert eviction_delay({"spec": {"tolerations": [{**tol, "tolerationSeconds": 300}]}}, taints) == 300
    assert eviction_delay({"spec": {"tolerations": [{"operator": "Exists"}]}}, taints) is None


def test_silent_node_goes_unknown_is_tainted_and_evicted(env):
    k = env.kubectl
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "silent"},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                       "lastHeartbeatTime": now, "lastTransitionTime": now}]}}
    env.apply(node)
    k("patch", "node", "silent", "--subresource=status", "--type=merge", "-p",
      json.dumps({"status": node["status"]}))
    for name, tol_seconds in (("short", 1), ("forever", None)):
        tol = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
        if tol_seconds is not None:
            tol["tolerationSeconds"] = tol_seconds
        env.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
                   "spec": {"nodeName": "silent", "tolerations": [tol],
                            "containers": [{"name": "c", "image": "busybox:1.36"}]}})
    # a separate controller manager with a short grace period; nobody heartbeats for "silent"
    ctl = InProcessControllers(str(env.cluster.kubeconfig), names=("nodelifecycle",),
                               options={"nodelifecycle": {"grace_period": 2.0, "monitor_period": 0.5}}).start()
    try:
        def ready_status():
            for c in env.get("node", "silent")["status"]["conditions"]:
                if c["type"] == "Ready":
                    return c["status"]
        wait_for(lambda: ready_status() == "Unknown", timeout=30, message="node Ready=Unknown")
        wait_for(lambda: any(t["key"] == "node.kubernetes.io/unreachable" and t["effect"] == "NoExecute"
                             for t in env.get("node", "silent")["spec"].get("taints") or []),
                 timeout=20, message="unreachable taint")
        # the short toleration runs out; the pod is deleted (the node is gone, so at once)
        wait_for(lambda: env.try_get("pod", "short", "-n", "default") is None or
                 env.try_get("pod", "short", "-n", "default")["metadata"].get("deletionTimestamp"),
                 timeout=30, message="pod evicted")
        assert env.try_get("pod", "forever", "-n", "default")["metadata"].get("deletionTimestamp") is None
    finally:
        ctl.stop()
        k("delete", "pod", "forever", "short", "--grace-period=0", "--force", "--ignore-not-found")
        k("delete", "node", "silent")
