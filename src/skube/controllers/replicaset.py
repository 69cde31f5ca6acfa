"""The ReplicaSet controller: keeps ``spec.replicas`` active pods for each ReplicaSet.

Pods are created from the template (generateName ``<rs>-``, a controller
ownerReference with blockOwnerDeletion) in slow-start batches, orphans matching
the selector are adopted and owned pods that stop matching are released.
Creations and deletions are tracked as expectations so a stale cache never
causes a double creation. Excess pods are deleted in upstream's order (see
:func:`controllerutils.deletion_order`). Status: replicas, fullyLabeledReplicas,
readyReplicas, availableReplicas (minReadySeconds), observedGeneration and the
ReplicaFailure condition.
"""
from __future__ import annotations

import asyncio
import logging
import time

from ..client import ApiError, Client, object_key
from .controllerutils import (PODS, REPLICASETS, BaseController, Expectations, available_in,
                              claim_candidates, claim_pods, controlled_by, controller_ref, deletion_order,
                              in_namespace, index_owners, is_active, is_available, is_ready, owner_ref,
                              pod_from_template, remove_condition, selector_of, set_condition,
                              update_status)

log = logging.getLogger("skube.controllers.replicaset")

BURST_REPLICAS = 500
SLOW_START_INITIAL_BATCH = 1


async def slow_start(count: int, fn) -> tuple[int, Exception | None]:
    """Call ``fn()`` count times in doubling batches; stop after a batch with an error.
    Returns (successes, first error)."""
    done = 0
    batch = min(count, SLOW_START_INITIAL_BATCH)
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        errs = [r for r in results if isinstance(r, Exception)]
        done += batch - len(errs)
        if errs:
            return done, errs[0]
        count -= batch
        batch = min(2 * batch, count)
    return done, None


class ReplicaSetController(BaseController):
    name = "replicaset"
    resource = REPLICASETS
    kind = "ReplicaSet"

    def __init__(self, client: Client, *, workers: int = 4, burst_replicas: int = BURST_REPLICAS):
        super().__init__(client, workers=workers)
        self.burst_replicas = burst_replicas
        self.expectations = Expectations()
        self.sets = self.informer(self.resource)
        self.pods = index_owners(self.informer(PODS))
        self.sets.add_handlers(on_add=self.enqueue, on_update=self._set_updated,
                               on_delete=self._set_deleted)
        self.pods.add_handlers(on_add=self._pod_added, on_update=self._pod_updated,
                               on_delete=self._pod_deleted)

    def component_name(self) -> str:
        return "replicaset-controller"

    # ---- handlers ------------------------------------------------------------------------

    def _set_updated(self, old: dict, new: dict) -> None:
        self.enqueue(new)

    def _set_deleted(self, obj: dict) -> None:
        self.expectations.delete(object_key(obj))
        self.enqueue(obj)

    def _owner_key(self, pod: dict) -> str | None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != self.kind:
            return None
        owner = self.sets.get_by_name(ref.get("name"), pod["metadata"].get("namespace"))
        if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
            return None
        return object_key(owner)

    def _matching_sets(self, pod: dict) -> list[str]:
        labels = pod["metadata"].get("labels") or {}
        return [object_key(s) for s in in_namespace(self.sets, pod["metadata"].get("namespace"))
                if selector_of(s).matches(labels)]

    def _pod_added(self, pod: dict) -> None:
        if pod["metadata"].get("deletionTimestamp"):
            self._pod_deleted(pod)
            return
        key = self._owner_key(pod)
        if key:
            self.expectations.creation_observed(key)
            self.queue.add(key)
        elif controller_ref(pod) is None:
            for k in self._matching_sets(pod):
                self.queue.add(k)

    def _pod_updated(self, old: dict, new: dict) -> None:
        if new["metadata"].get("deletionTimestamp") and not old["metadata"].get("deletionTimestamp"):
            self._pod_deleted(new)
            return
        key, old_key = self._owner_key(new), self._owner_key(old)
        if old_key and old_key != key:
            self.queue.add(old_key)
        if key:
            self.queue.add(key)
            # a pod that just became ready is available after minReadySeconds
            rs = self.sets.get(key)
            mrs = int((rs or {}).get("spec", {}).get("minReadySeconds") or 0)
            if mrs and not is_ready(old) and is_ready(new):
                self.queue.add_after(key, mrs + 0.5)
        elif controller_ref(new) is None:
            for k in self._matching_sets(new):
                self.queue.add(k)

    def _pod_deleted(self, pod: dict) -> None:
        key = self._owner_key(pod)
        if key:
            self.expectations.deletion_observed(key, object_key(pod))
            self.queue.add(key)

    # ---- sync ----------------------------------------------------------------------------

    async def sync(self, key: str):
        rs = self.sets.get(key)
        if rs is None:
            self.expectations.delete(key)
            return None
        selector = selector_of(rs)
        candidates = [p for p in claim_candidates(self.pods, rs) if is_active(p)]
        ref = owner_ref(rs, "apps/v1", self.kind)
        pods = await claim_pods(self.client, rs, ref, selector, candidates)
        error = None
        if self.expectations.satisfied(key) and not rs["metadata"].get("deletionTimestamp"):
            try:
                await self.manage_replicas(key, rs, pods, ref)
            except Exception as e:  # noqa: BLE001 - recorded in status, then retried
                error = e
        return await self.update_status(rs, pods, error)

    async def manage_replicas(self, key: str, rs: dict, pods: list[dict], ref: dict) -> None:
        want = int(rs["spec"].get("replicas", 1) if rs["spec"].get("replicas") is not None else 1)
        diff = len(pods) - want
        if diff < 0:
            n = min(-diff, self.burst_replicas)
            self.expectations.expect_creations(key, n)
            template = rs["spec"].get("template") or {}

            async def create():
                body = pod_from_template(template, rs, ref)
                try:
                    pod = await self.client.create(PODS, body, rs["metadata"]["namespace"])
                except ApiError as e:
                    self.expectations.creation_observed(key)
                    if e.status == 403 and "being terminated" in (e.message or ""):
                        return None  # the namespace is going away
                    self.recorder.warning(rs, "FailedCreate", f"Error creating: {e.message}")
                    raise
                self.recorder.normal(rs, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
                return pod

            done, err = await slow_start(n, create)
            skipped = n - done - (1 if err else 0)
            for _ in range(max(0, skipped)):
                self.expectations.creation_observed(key)
            if err:
                raise err
        elif diff > 0:
            n = min(diff, self.burst_replicas)
            victims = deletion_order(pods, self._related_ranks(rs, pods))[:n]
            self.expectations.expect_deletions(key, [object_key(p) for p in victims])

            async def delete(pod):
                try:
                    await self.client.delete(PODS, pod["metadata"]["name"], pod["metadata"]["namespace"],
                                             preconditions={"uid": pod["metadata"]["uid"]})
                except ApiError as e:
                    self.expectations.deletion_observed(key, object_key(pod))
                    if e.not_found or e.conflict:
                        return
                    self.recorder.warning(rs, "FailedDelete", f"Error deleting: {e.message}")
                    raise
                self.recorder.normal(rs, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")

            results = await asyncio.gather(*(delete(p) for p in victims), return_exceptions=True)
            for r in results:
                if isinstance(r, Exception):
                    raise r

    def _related_ranks(self, rs: dict, pods: list[dict]) -> dict[str, int]:
        """Per pod, how many active pods of the same owner family (the ReplicaSets of one
        Deployment) share its node — doubled-up pods go first."""
        ns = rs["metadata"]["namespace"]
        owner = controller_ref(rs)
        related_uids = {rs["metadata"]["uid"]}
        if owner is not None:
            related_uids |= {s["metadata"]["uid"] for s in in_namespace(self.sets, ns)
                             if (controller_ref(s) or {}).get("uid") == owner.get("uid")}
        per_node: dict[str, int] = {}
        for p in (p for uid in related_uids for p in controlled_by(self.pods, uid)):
            node = p["spec"].get("nodeName")
            if node and is_active(p):
                per_node[node] = per_node.get(node, 0) + 1
        return {p["metadata"]["uid"]: per_node.get(p["spec"].get("nodeName") or "", 0) for p in pods}

    async def update_status(self, rs: dict, pods: list[dict], error: Exception | None):
        mrs = int(rs["spec"].get("minReadySeconds") or 0)
        tlabels = ((rs["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
        now = time.time()
        status = dict(rs.get("status") or {})
        status["replicas"] = len(pods)
        status["fullyLabeledReplicas"] = sum(
            1 for p in pods if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in tlabels.items())) \
            if tlabels else len(pods)
        ready = [p for p in pods if is_ready(p)]      # one pass: a burst's sets hold 20,000 pods
        status["readyReplicas"] = len(ready)
        status["availableReplicas"] = sum(1 for p in ready if is_available(p, mrs, now)) if mrs else len(ready)
        status["observedGeneration"] = rs["metadata"].get("generation")
        if error is not None:
            want = rs["spec"].get("replicas", 1)
            reason = "FailedCreate" if len(pods) < want else "FailedDelete"
            set_condition(status, "ReplicaFailure", "True", reason, str(getattr(error, "message", error)))
        else:
            remove_condition(status, "ReplicaFailure")
        for k in ("readyReplicas", "availableReplicas", "fullyLabeledReplicas"):
            if not status.get(k):
                status.pop(k, None)
        if status != (rs.get("status") or {}):
            await update_status(self.client, self.resource, rs, status)
        if error is not None:
            raise error
        if mrs and status.get("readyReplicas", 0) != status.get("availableReplicas", 0):
            waits = [available_in(p, mrs, now) for p in pods if is_ready(p) and not is_available(p, mrs, now)]
            return max(0.1, min(w for w in waits if w is not None) + 0.1) if waits else None
        return None


__all__ = ["ReplicaSetController", "slow_start"]
