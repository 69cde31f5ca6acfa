"""The StatefulSet controller: stable, ordered pods ``<sts>-<ordinal>``.

* Pods get labels ``statefulset.kubernetes.io/pod-name``, ``apps.kubernetes.io/pod-index``
  and ``controller-revision-hash``, hostname = pod name, subdomain = serviceName, and
  a volume per volumeClaimTemplate bound to the PVC ``<claim>-<sts>-<ordinal>``
  (created on demand, owned by no one — retained as upstream's default policy).
* Revisions are ControllerRevisions ``<sts>-<hash>`` holding the template as a
  strategic-merge "replace" patch, numbered, trimmed to revisionHistoryLimit.
* podManagementPolicy OrderedReady (create in order, each Running and Ready before
  the next; delete from the highest ordinal, one at a time) or Parallel.
* updateStrategy RollingUpdate with partition (highest ordinal first, one at a
  time, each healthy before the next) or OnDelete.
* Status: replicas, readyReplicas, availableReplicas, currentReplicas,
  updatedReplicas, currentRevision, updateRevision, observedGeneration,
  collisionCount.
"""
from __future__ import annotations

import copy
import json
import logging
import time

from ..client import ApiError, Client, object_key, resource
from .controllerutils import (CONTROLLERREVISIONS, PODS, STATEFULSETS, BaseController, claim_pods,
                              controller_ref, in_namespace, is_available, is_ready, is_terminating, owner_ref,
                              phase, pod_from_template, selector_of, update_status)
from .deployment import fnv32a, safe_encode

log = logging.getLogger("skube.controllers.statefulset")

PVCS = resource("v1", "persistentvolumeclaims", kind="PersistentVolumeClaim")
POD_NAME = "statefulset.kubernetes.io/pod-name"
POD_INDEX = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"


def ordinal(sts: dict, pod: dict) -> int | None:
    prefix = sts["metadata"]["name"] + "-"
    name = pod["metadata"]["name"]
    if not name.startswith(prefix):
        return None
    tail = name[len(prefix):]
    return int(tail) if tail.isdigit() and (tail == "0" or not tail.startswith("0")) else None


def running_ready(pod: dict) -> bool:
    return phase(pod) == "Running" and is_ready(pod)


def revision_data(sts: dict) -> dict:
    t = copy.deepcopy(sts["spec"].get("template") or {})
    t["$patch"] = "replace"
    return {"spec": {"template": t}}


def revision_hash(data: dict, collision_count: int | None) -> str:
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        raw += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + b"\0\0\0\0"
    return safe_encode(str(fnv32a(raw)))


class StatefulSetController(BaseController):
    name = "statefulset"

    def __init__(self, client: Client, *, workers: int = 4):
        super().__init__(client, workers=workers)
        self.sets = self.informer(STATEFULSETS)
        self.pods = self.informer(PODS)
        self.revisions = self.informer(CONTROLLERREVISIONS)
        self.sets.add_handlers(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n))
        self.pods.add_handlers(on_add=self._pod, on_update=lambda o, n: self._pod(n), on_delete=self._pod)

    def component_name(self) -> str:
        return "statefulset-controller"

    def _pod(self, pod: dict) -> None:
        ref = controller_ref(pod)
        if ref is not None and ref.get("kind") == "StatefulSet":
            self.queue.add(f"{pod['metadata']['namespace']}/{ref.get('name')}")
        elif ref is None:
            labels = pod["metadata"].get("labels") or {}
            for s in in_namespace(self.sets, pod["metadata"]["namespace"]):
                if selector_of(s).matches(labels):
                    self.enqueue(s)

    # ---- revisions -----------------------------------------------------------------------

    async def revisions_for(self, sts: dict) -> tuple[dict, dict, int]:
        """(current revision, update revision, collisionCount), creating the update one."""
        uid = sts["metadata"]["uid"]
        ns = sts["metadata"]["namespace"]
        revs = sorted([r for r in in_namespace(self.revisions, ns)
                       if (controller_ref(r) or {}).get("uid") == uid],
                      key=lambda r: int(r.get("revision") or 0))
        data = revision_data(sts)
        status = sts.get("status") or {}
        cc = int(status.get("collisionCount") or 0)
        update = None
        for r in revs:
            if r.get("data") == data:
                update = r
        next_rev = (int(revs[-1].get("revision") or 0) + 1) if revs else 1
        if update is None:
            while True:
                h = revision_hash(data, cc)
                body = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                        "metadata": {"name": f"{sts['metadata']['name']}-{h}", "namespace": ns,
                                     "labels": {**(sts["spec"].get("selector") or {}).get("matchLabels", {}),
                                                REVISION_LABEL: h},
                                     "ownerReferences": [owner_ref(sts, "apps/v1", "StatefulSet")]},
                        "data": data, "revision": next_rev}
                try:
                    update = await self.client.create(CONTROLLERREVISIONS, body)
                    break
                except ApiError as e:
                    if not e.already_exists:
                        raise
                    existing = await self.client.get(CONTROLLERREVISIONS, body["metadata"]["name"], ns)
                    if existing.get("data") == data and (controller_ref(existing) or {}).get("uid") == uid:
                        update = existing
                        break
                    cc += 1
        elif update is not revs[-1] and revs:
            # rolling back to an older template: it becomes the newest revision
            body = copy.deepcopy(update)
            body["revision"] = next_rev
            update = await self.client.update(CONTROLLERREVISIONS, body)
        current_name = status.get("currentRevision")
        current = next((r for r in revs if r["metadata"]["name"] == current_name), None) or update
        return current, update, cc

    async def trim_history(self, sts: dict, keep: set[str]) -> None:
        limit = sts["spec"].get("revisionHistoryLimit")
        limit = 10 if limit is None else int(limit)
        uid = sts["metadata"]["uid"]
        revs = sorted([r for r in in_namespace(self.revisions, sts["metadata"]["namespace"])
                       if (controller_ref(r) or {}).get("uid") == uid and r["metadata"]["name"] not in keep],
                      key=lambda r: int(r.get("revision") or 0))
        for r in revs[:max(0, len(revs) - limit)]:
            try:
                await self.client.delete(CONTROLLERREVISIONS, r["metadata"]["name"], r["metadata"]["namespace"])
            except ApiError as e:
                if not e.not_found:
                    raise

    # ---- sync ----------------------------------------------------------------------------

    def new_pod(self, sts: dict, i: int, rev: dict) -> dict:
        template = json.loads(json.dumps(rev["data"]["spec"]["template"]))
        template.pop("$patch", None)
        name = f"{sts['metadata']['name']}-{i}"
        pod = pod_from_template(template, sts, owner_ref(sts, "apps/v1", "StatefulSet"), name=name)
        labels = pod["metadata"]["labels"]
        labels[POD_NAME] = name
        labels[POD_INDEX] = str(i)
        labels[REVISION_LABEL] = rev["metadata"]["name"]
        spec = pod["spec"]
        spec["hostname"] = name
        if sts["spec"].get("serviceName"):
            spec["subdomain"] = sts["spec"]["serviceName"]
        for claim in sts["spec"].get("volumeClaimTemplates") or ():
            cname = claim["metadata"]["name"]
            vols = spec.setdefault("volumes", [])
            vols[:] = [v for v in vols if v.get("name") != cname]
            vols.append({"name": cname, "persistentVolumeClaim": {"claimName": f"{cname}-{name}"}})
        return pod

    async def ensure_claims(self, sts: dict, i: int) -> None:
        ns = sts["metadata"]["namespace"]
        for claim in sts["spec"].get("volumeClaimTemplates") or ():
            name = f"{claim['metadata']['name']}-{sts['metadata']['name']}-{i}"
            body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": name, "namespace": ns,
                                 "labels": {**((claim.get("metadata") or {}).get("labels") or {}),
                                            **((sts["spec"].get("selector") or {}).get("matchLabels") or {})}},
                    "spec": copy.deepcopy(claim.get("spec") or {})}
            try:
                await self.client.create(PVCS, body, ns)
            except ApiError as e:
                if not e.already_exists:
                    raise

    async def sync(self, key: str):
        sts = self.sets.get(key)
        if sts is None:
            return None
        sts = copy.deepcopy(sts)
        ns = sts["metadata"]["namespace"]
        ref = owner_ref(sts, "apps/v1", "StatefulSet")
        pods = await claim_pods(self.client, sts, ref, selector_of(sts), in_namespace(self.pods, ns))
        current, update, cc = await self.revisions_for(sts)
        spec = sts["spec"]
        want = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        start = int((spec.get("ordinals") or {}).get("start") or 0)
        parallel = spec.get("podManagementPolicy") == "Parallel"
        strategy = spec.get("updateStrategy") or {}
        mrs = int(spec.get("minReadySeconds") or 0)
        by_ord: dict[int, dict] = {}
        condemned: list[dict] = []
        for p in pods:
            o = ordinal(sts, p)
            if o is None:
                continue
            if start <= o < start + want:
                by_ord[o] = p
            else:
                condemned.append(p)
        condemned.sort(key=lambda p: -(ordinal(sts, p) or 0))
        requeue = None
        alive = not sts["metadata"].get("deletionTimestamp")

        async def act() -> None:
            # failed pods are replaced; missing ones are created in order
            for o in range(start, start + want):
                p = by_ord.get(o)
                if p is not None and phase(p) == "Failed" and not is_terminating(p):
                    await self._delete(sts, p)
                    by_ord.pop(o)
                    if not parallel:
                        return
                    continue
                if p is None:
                    rolling = strategy.get("type") != "OnDelete"
                    rev = current if rolling and o - start < self._partition(strategy, want) else update
                    await self.ensure_claims(sts, o)
                    body = self.new_pod(sts, o, rev)
                    try:
                        created = await self.client.create(PODS, body, ns)
                    except ApiError as e:
                        if not e.already_exists:
                            self.recorder.warning(sts, "FailedCreate",
                                                  f"create Pod {body['metadata']['name']} in StatefulSet "
                                                  f"{sts['metadata']['name']} failed error: {e.message}")
                            raise
                        return
                    self.recorder.normal(sts, "SuccessfulCreate",
                                         f"create Pod {created['metadata']['name']} in StatefulSet "
                                         f"{sts['metadata']['name']} successful")
                    by_ord[o] = created
                    if not parallel:
                        return
                    continue
                if not parallel:
                    if is_terminating(p) or not running_ready(p):
                        return
                    if mrs and not is_available(p, mrs):
                        return
            # scale down from the highest ordinal
            for p in condemned:
                if is_terminating(p):
                    if not parallel:
                        return
                    continue
                if not parallel and any(not running_ready(q) or is_terminating(q) for q in by_ord.values()):
                    return
                await self._delete(sts, p)
                if not parallel:
                    return
            # rolling update, highest ordinal first, down to the partition
            if strategy.get("type") == "OnDelete":
                return
            partition = self._partition(strategy, want)
            if any(not running_ready(q) or is_terminating(q) for q in by_ord.values()):
                return
            for o in sorted(by_ord, reverse=True):
                if o - start < partition:
                    break
                p = by_ord[o]
                if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) != update["metadata"]["name"]:
                    await self._delete(sts, p)
                    return

        if alive:
            await act()
        # status
        live = list(by_ord.values()) + condemned
        update_name = update["metadata"]["name"]
        current_name = current["metadata"]["name"]
        status = copy.deepcopy(sts.get("status") or {})
        now = time.time()
        counted = self._fresh_pods(live)
        status["observedGeneration"] = sts["metadata"].get("generation")
        status["replicas"] = len(counted)
        status["readyReplicas"] = sum(1 for p in counted if is_ready(p))
        status["availableReplicas"] = sum(1 for p in counted if is_available(p, mrs, now))
        rev_of = lambda p: (p["metadata"].get("labels") or {}).get(REVISION_LABEL)  # noqa: E731
        status["currentReplicas"] = sum(1 for p in counted if rev_of(p) == current_name)
        status["updatedReplicas"] = sum(1 for p in counted if rev_of(p) == update_name)
        status["currentRevision"] = current_name
        status["updateRevision"] = update_name
        status["collisionCount"] = cc
        if status["updatedReplicas"] == want and status["readyReplicas"] == want and \
                status["replicas"] == want:
            status["currentRevision"] = update_name
            status["currentReplicas"] = status["updatedReplicas"]
        for k in ("readyReplicas", "currentReplicas", "updatedReplicas"):
            if not status.get(k):
                status.pop(k, None)
        if status != (sts.get("status") or {}):
            await update_status(self.client, STATEFULSETS, sts, status)
        await self.trim_history(sts, {status["currentRevision"], update_name})
        if mrs and status.get("readyReplicas", 0) != status.get("availableReplicas", 0):
            requeue = 1.0
        return requeue

    def _fresh_pods(self, pods: list[dict]) -> list[dict]:
        out = []
        for p in pods:
            cur = self.pods.get(object_key(p))
            out.append(cur if cur is not None and cur["metadata"]["uid"] == p["metadata"]["uid"] else p)
        return out

    @staticmethod
    def _partition(strategy: dict, want: int) -> int:
        if strategy.get("type") == "OnDelete":
            return want
        return int(((strategy.get("rollingUpdate") or {}).get("partition")) or 0)

    async def _delete(self, sts: dict, pod: dict) -> None:
        try:
            await self.client.delete(PODS, pod["metadata"]["name"], pod["metadata"]["namespace"],
                                     preconditions={"uid": pod["metadata"]["uid"]})
        except ApiError as e:
            if not (e.not_found or e.conflict):
                self.recorder.warning(sts, "FailedDelete", f"delete Pod {pod['metadata']['name']} in "
                                      f"StatefulSet {sts['metadata']['name']} failed error: {e.message}")
                raise
            return
        self.recorder.normal(sts, "SuccessfulDelete", f"delete Pod {pod['metadata']['name']} in StatefulSet "
                                                      f"{sts['metadata']['name']} successful")


__all__ = ["StatefulSetController", "ordinal"]
