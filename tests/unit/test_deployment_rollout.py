"""The Deployment controller's scale-down of old ReplicaSets (reconcile_old) against a
ReplicaSet status that lags its pods."""
from __future__ import annotations

import asyncio

from skube.controllers.deployment import DeploymentController


def ready_pod(uid: str, terminating: bool = False) -> dict:
    m = {"name": uid, "uid": uid}
    if terminating:
        m["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": m, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}


class Pods:
    def __init__(self, by_owner: dict):
        self.by_owner = by_owner

    def by_index(self, name: str, value: str) -> list[dict]:
        assert name == "controller"
        return self.by_owner.get(value, [])


def rs(uid: str, spec: int, available: int) -> dict:
    return {"metadata": {"name": uid, "uid": uid, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"replicas": spec}, "status": {"replicas": spec, "availableReplicas": available}}


def test_a_deleted_old_pod_the_status_still_counts_is_not_counted_again():
    # maxSurge 1, maxUnavailable 0, 3 replicas; the old set was just scaled 3 -> 2 (one pod
    # terminating) but its status still says 3 available; the new set has 2 ready pods
    d = {"metadata": {"name": "web", "namespace": "ns"},
         "spec": {"replicas": 3, "strategy": {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}}
    new, old = rs("new", 2, 2), rs("old", 2, 3)
    ctrl = DeploymentController.__new__(DeploymentController)
    ctrl.pods = Pods({"new": [ready_pod("n1"), ready_pod("n2")],
                      "old": [ready_pod("o1", terminating=True), ready_pod("o2"), ready_pod("o3")]})
    scaled = []

    async def scale_rs(d_, r, n):
        scaled.append((r["metadata"]["name"], n))
        return True, {**r, "spec": {"replicas": n}}
    ctrl.scale_rs = scale_rs
    asyncio.run(ctrl.reconcile_old(d, new, [old]))
    # 2 new + 2 old ready: one old may go (4 - 3), not two as the stale status would allow
    assert scaled == [("old", 1)]
