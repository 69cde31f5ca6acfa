"""The Deployment controller: rolls ReplicaSets as kube-controller-manager does.

* ReplicaSets are named ``<deployment>-<pod-template-hash>``; the hash is fnv32a
  over the pod template plus ``collisionCount`` (little-endian, 8 bytes), printed
  in decimal and passed through the safe-encode alphabet. Upstream feeds the hasher
  a spew dump of the Go struct; here it is canonical JSON (sorted keys) of the
  template — stable and collision-checked, but not byte-identical to upstream.
* Strategies: RollingUpdate (maxSurge rounded up, maxUnavailable rounded down,
  both 0 → 1 unavailable) and Recreate (old pods all gone before the new RS).
* Scaling events are proportional across active ReplicaSets; paused deployments
  only scale. Revisions (``deployment.kubernetes.io/revision``), desired/max
  replicas annotations, deployment annotations (change-cause…) copied to the new RS,
  revisionHistoryLimit cleanup.
* Status: replicas, updatedReplicas, readyReplicas, availableReplicas,
  unavailableReplicas, observedGeneration, collisionCount; conditions Available and
  Progressing (NewReplicaSetCreated, FoundNewReplicaSet, ReplicaSetUpdated,
  NewReplicaSetAvailable, ProgressDeadlineExceeded, DeploymentPaused/Resumed).
"""
from __future__ import annotations

import copy
import json
import logging
import time

from ..client import ApiError, Client, object_key
from .controllerutils import (DEPLOYMENTS, PODS, REPLICASETS, BaseController, claim_pods, condition,
                              controlled_by, controller_ref, in_namespace, index_owners, int_or_percent,
                              is_active, is_available, owner_ref, parse_time, rfc3339, selector_of, set_condition,
                              update_status)

log = logging.getLogger("skube.controllers.deployment")

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
SKIP_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration", REVISION,
                              REVISION_HISTORY, DESIRED, MAX_REPLICAS, "deprecated.deployment.rollback.to"})
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
MAX_INT32 = 2 ** 31 - 1

# Progressing reasons
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(s: str) -> str:
    return "".join(SAFE_ALPHABET[ord(c) % len(SAFE_ALPHABET)] for c in s)


def template_hash(template: dict, collision_count: int | None = None) -> str:
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        data += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + b"\0\0\0\0"
    return safe_encode(str(fnv32a(data)))


def _without_hash(template: dict) -> dict:
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return t


def equal_ignore_hash(a: dict, b: dict) -> bool:
    return _without_hash(a) == _without_hash(b)


def revision(obj: dict) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION) or 0)
    except ValueError:
        return 0


def replicas(obj: dict) -> int:
    r = (obj.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def rs_replicas(rs: dict) -> int:
    return int((rs.get("spec") or {}).get("replicas") or 0)


def st(rs: dict, field: str) -> int:
    return int((rs.get("status") or {}).get(field) or 0)


def _created(obj: dict) -> tuple:
    m = obj["metadata"]
    return (m.get("creationTimestamp") or "", m.get("name"))


def fenceposts(d: dict) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) resolved against spec.replicas as upstream."""
    strategy = (d["spec"].get("strategy") or {})
    if strategy.get("type") == "Recreate":
        return 0, 0
    ru = strategy.get("rollingUpdate") or {}
    desired = replicas(d)
    surge = int_or_percent(ru.get("maxSurge", "25%"), desired, True)
    unavailable = int_or_percent(ru.get("maxUnavailable", "25%"), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def has_progress_deadline(d: dict) -> bool:
    """Upstream's HasProgressDeadline: set, and not MaxInt32 (which means none)."""
    v = d["spec"].get("progressDeadlineSeconds")
    return v is not None and int(v) != MAX_INT32


def max_unavailable(d: dict) -> int:
    _, u = fenceposts(d)
    if (d["spec"].get("strategy") or {}).get("type") == "Recreate" or replicas(d) == 0:
        return 0
    return min(u, replicas(d))


class DeploymentController(BaseController):
    name = "deployment"

    def __init__(self, client: Client, *, workers: int = 4):
        super().__init__(client, workers=workers)
        self.deployments = self.informer(DEPLOYMENTS)
        self.sets = self.informer(REPLICASETS)
        self.pods = index_owners(self.informer(PODS))
        self.deployments.add_handlers(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n),
                                      on_delete=self.enqueue)
        self.sets.add_handlers(on_add=self._rs_changed, on_update=self._rs_updated,
                               on_delete=self._rs_changed)
        self.pods.add_handlers(on_delete=self._pod_deleted)

    def component_name(self) -> str:
        return "deployment-controller"

    # ---- handlers ------------------------------------------------------------------------

    def _owner(self, obj: dict) -> str | None:
        ref = controller_ref(obj)
        if ref is None or ref.get("kind") != "Deployment":
            return None
        d = self.deployments.get_by_name(ref.get("name"), obj["metadata"].get("namespace"))
        if d is None or d["metadata"].get("uid") != ref.get("uid"):
            return None
        return object_key(d)

    def _rs_changed(self, rs: dict) -> None:
        key = self._owner(rs)
        if key:
            self.queue.add(key)
        elif controller_ref(rs) is None:
            labels = rs["metadata"].get("labels") or {}
            for d in in_namespace(self.deployments, rs["metadata"]["namespace"]):
                if selector_of(d).matches(labels):
                    self.enqueue(d)

    def _rs_updated(self, old: dict, new: dict) -> None:
        ok, nk = self._owner(old), self._owner(new)
        if ok and ok != nk:
            self.queue.add(ok)
        self._rs_changed(new)

    def _pod_deleted(self, pod: dict) -> None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.sets.get_by_name(ref.get("name"), pod["metadata"].get("namespace"))
        if rs is not None:
            key = self._owner(rs)
            if key:
                d = self.deployments.get(key)
                if d and (d["spec"].get("strategy") or {}).get("type") == "Recreate":
                    self.queue.add(key)

    # ---- sync ----------------------------------------------------------------------------

    async def sync(self, key: str):
        d = self.deployments.get(key)
        if d is None:
            return None
        d = copy.deepcopy(d)
        sel = (d["spec"].get("selector") or {})
        if not sel.get("matchLabels") and not sel.get("matchExpressions"):
            self.recorder.warning(d, "SelectingAll", "This deployment is selecting all pods. "
                                  "A non-empty selector is required.")
            return None
        ns = d["metadata"]["namespace"]
        ref = owner_ref(d, "apps/v1", "Deployment")
        all_rs = await claim_pods_like(self.client, d, ref, in_namespace(self.sets, ns))
        if d["metadata"].get("deletionTimestamp"):
            return await self.sync_status_only(d, all_rs)
        await self.check_paused_conditions(d)
        if d["spec"].get("paused"):
            return await self.sync_scale(d, all_rs)
        if self.is_scaling_event(d, all_rs):
            return await self.sync_scale(d, all_rs)
        if (d["spec"].get("strategy") or {}).get("type") == "Recreate":
            return await self.rollout_recreate(d, all_rs)
        return await self.rollout_rolling(d, all_rs)

    # ---- replica sets --------------------------------------------------------------------

    def split(self, d: dict, all_rs: list[dict]) -> tuple[dict | None, list[dict]]:
        template = d["spec"].get("template") or {}
        new = None
        for rs in sorted(all_rs, key=_created):
            if equal_ignore_hash(rs["spec"].get("template") or {}, template):
                new = rs
                break
        return new, [rs for rs in all_rs if rs is not new]

    async def get_all(self, d: dict, all_rs: list[dict], create: bool) -> tuple[dict | None, list[dict]]:
        new, old = self.split(d, all_rs)
        max_old = max((revision(rs) for rs in old), default=0)
        new_revision = max_old + 1
        if new is not None:
            new = await self._sync_new_rs(d, new, new_revision)
        elif create:
            new = await self._create_new_rs(d, all_rs, old, new_revision)
        if new is not None:
            await self._set_deployment_revision(d, revision(new))
        return new, old

    def _rs_annotations(self, d: dict, rs: dict, new_revision: int, surge_check: bool = True) -> dict:
        ann = dict(rs["metadata"].get("annotations") or {})
        for k, v in (d["metadata"].get("annotations") or {}).items():
            if k not in SKIP_ANNOTATIONS:
                ann[k] = v
        old_rev = revision(rs)
        if old_rev < new_revision:
            ann[REVISION] = str(new_revision)
            if old_rev > 0:
                hist = [h for h in (ann.get(REVISION_HISTORY) or "").split(",") if h]
                hist.append(str(old_rev))
                ann[REVISION_HISTORY] = ",".join(hist)
        surge, _ = fenceposts(d)
        ann[DESIRED] = str(replicas(d))
        ann[MAX_REPLICAS] = str(replicas(d) + surge)
        return ann

    async def _sync_new_rs(self, d: dict, rs: dict, new_revision: int) -> dict:
        ann = self._rs_annotations(d, rs, new_revision)
        mrs = d["spec"].get("minReadySeconds") or 0
        if ann != (rs["metadata"].get("annotations") or {}) or (rs["spec"].get("minReadySeconds") or 0) != mrs:
            body = copy.deepcopy(rs)
            body["metadata"]["annotations"] = ann
            body["spec"]["minReadySeconds"] = mrs
            rs = await self.client.update(REPLICASETS, body)
        if condition(d, "Progressing") is None and has_progress_deadline(d):
            status = copy.deepcopy(d.get("status") or {})
            set_condition(status, "Progressing", "True", FOUND_NEW_RS,
                          f'Found new replica set "{rs["metadata"]["name"]}"', update_time=True)
            self._apply(d, await update_status(self.client, DEPLOYMENTS, d, status))
        return rs

    async def _create_new_rs(self, d: dict, all_rs: list[dict], old: list[dict], new_revision: int) -> dict:
        template = copy.deepcopy(d["spec"].get("template") or {})
        cc = (d.get("status") or {}).get("collisionCount")
        h = template_hash(template, cc)
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        sel = copy.deepcopy(d["spec"]["selector"])
        sel.setdefault("matchLabels", {})[HASH_LABEL] = h
        name = f"{d['metadata']['name']}-{h}"
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": name, "namespace": d["metadata"]["namespace"],
                           "labels": dict(template["metadata"]["labels"]),
                           "ownerReferences": [owner_ref(d, "apps/v1", "Deployment")]},
              "spec": {"replicas": 0, "minReadySeconds": d["spec"].get("minReadySeconds") or 0,
                       "selector": sel, "template": template}}
        rs["metadata"]["annotations"] = self._rs_annotations(d, rs, new_revision)
        rs["spec"]["replicas"] = self.new_rs_replicas(d, all_rs, rs)
        try:
            created = await self.client.create(REPLICASETS, rs)
        except ApiError as e:
            if not e.already_exists:
                raise
            existing = await self.client.get(REPLICASETS, name, d["metadata"]["namespace"])
            if (controller_ref(existing) or {}).get("uid") == d["metadata"]["uid"] and \
                    equal_ignore_hash(existing["spec"].get("template") or {}, d["spec"]["template"]):
                return existing
            status = copy.deepcopy(d.get("status") or {})
            status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
            await update_status(self.client, DEPLOYMENTS, d, status)
            raise RuntimeError(f"hash collision for {name}; collisionCount now {status['collisionCount']}")
        if rs["spec"]["replicas"] > 0:
            self.recorder.normal(d, "ScalingReplicaSet",
                                 f"Scaled up replica set {name} from 0 to {rs['spec']['replicas']}")
        if has_progress_deadline(d):
            status = copy.deepcopy(d.get("status") or {})
            set_condition(status, "Progressing", "True", NEW_RS_CREATED,
                          f'Created new replica set "{name}"', update_time=True)
            self._apply(d, await update_status(self.client, DEPLOYMENTS, d, status))
        return created

    async def _set_deployment_revision(self, d: dict, rev: int) -> None:
        ann = d["metadata"].get("annotations") or {}
        if ann.get(REVISION) == str(rev):
            return
        try:
            new = await self.client.patch(DEPLOYMENTS, d["metadata"]["name"],
                                          {"metadata": {"annotations": {REVISION: str(rev)},
                                                        "resourceVersion": d["metadata"]["resourceVersion"]}},
                                          d["metadata"]["namespace"])
            d["metadata"] = new["metadata"]
        except ApiError as e:
            if not e.conflict and not e.not_found:
                raise

    def new_rs_replicas(self, d: dict, all_rs: list[dict], new: dict) -> int:
        if (d["spec"].get("strategy") or {}).get("type") == "Recreate":
            return replicas(d)
        surge, _ = fenceposts(d)
        current = sum(rs_replicas(r) for r in all_rs if r["metadata"]["name"] != new["metadata"]["name"])
        current += rs_replicas(new)
        max_total = replicas(d) + surge
        if current >= max_total:
            return rs_replicas(new)
        up = min(max_total - current, replicas(d) - rs_replicas(new))
        return rs_replicas(new) + max(0, up)

    async def scale_rs(self, d: dict, rs: dict, n: int) -> tuple[bool, dict]:
        surge, _ = fenceposts(d)
        ann = dict(rs["metadata"].get("annotations") or {})
        size_change = rs_replicas(rs) != n
        ann_change = ann.get(DESIRED) != str(replicas(d)) or ann.get(MAX_REPLICAS) != str(replicas(d) + surge)
        if not size_change and not ann_change:
            return False, rs
        body = copy.deepcopy(rs)
        ann[DESIRED] = str(replicas(d))
        ann[MAX_REPLICAS] = str(replicas(d) + surge)
        body["metadata"]["annotations"] = ann
        old_n = rs_replicas(rs)
        body["spec"]["replicas"] = n
        new = await self.client.update(REPLICASETS, body)
        if size_change:
            word = "up" if n > old_n else "down"
            self.recorder.normal(d, "ScalingReplicaSet",
                                 f"Scaled {word} replica set {rs['metadata']['name']} from {old_n} to {n}")
        return size_change, new

    # ---- scaling and paused --------------------------------------------------------------

    def is_scaling_event(self, d: dict, all_rs: list[dict]) -> bool:
        new, old = self.split(d, all_rs)
        for rs in [r for r in all_rs if rs_replicas(r) > 0]:
            desired = (rs["metadata"].get("annotations") or {}).get(DESIRED)
            if desired is not None and desired != str(replicas(d)):
                return True
        return False

    async def sync_scale(self, d: dict, all_rs: list[dict]):
        new, old = await self.get_all(d, all_rs, create=False)
        all_rs = ([new] if new else []) + old
        await self.scale(d, new, old)
        if d["spec"].get("paused"):
            await self.cleanup(d, old)
        all_rs = self._fresh(all_rs)
        new = self._fresh([new])[0] if new else None
        return await self.sync_status_only(d, all_rs, new)

    def _fresh(self, sets: list[dict]) -> list[dict]:
        out = []
        for rs in sets:
            cur = self.sets.get(object_key(rs))
            out.append(cur if cur is not None and int(cur["metadata"]["resourceVersion"]) >=
                       int(rs["metadata"]["resourceVersion"]) else rs)
        return out

    async def scale(self, d: dict, new: dict | None, old: list[dict]) -> None:
        active = [rs for rs in ([new] if new else []) + old if rs_replicas(rs) > 0]
        want = replicas(d)
        if len(active) <= 1:
            target = active[0] if active else (new or (max(old, key=_created) if old else None))
            if target is not None and rs_replicas(target) != want:
                await self.scale_rs(d, target, want)
            return
        if new is not None and rs_replicas(new) == want and st(new, "availableReplicas") >= want:
            for rs in old:
                if rs_replicas(rs) > 0:
                    await self.scale_rs(d, rs, 0)
            return
        surge, _ = fenceposts(d)
        allowed = want + surge
        total = sum(rs_replicas(r) for r in active)
        to_add = allowed - total
        if to_add == 0:
            return
        if to_add > 0:
            ordered = sorted(sorted(active, key=_created, reverse=True), key=lambda r: -rs_replicas(r))
        else:
            ordered = sorted(active, key=lambda r: (-rs_replicas(r), _created(r)))
        added = 0
        sizes = {}
        for rs in ordered:
            ann = (rs["metadata"].get("annotations") or {}).get(MAX_REPLICAS)
            try:
                annotated = int(ann) if ann else int((d.get("status") or {}).get("replicas") or 0)
            except ValueError:
                annotated = 0
            if annotated <= 0:
                frac = 0
            else:
                frac = rs_replicas(rs) * allowed // annotated - rs_replicas(rs)
            prop = min(frac, to_add - added) if to_add > 0 else max(frac, to_add - added)
            sizes[rs["metadata"]["name"]] = rs_replicas(rs) + prop
            added += prop
        if ordered and added != to_add:
            first = ordered[0]["metadata"]["name"]
            sizes[first] = max(0, sizes[first] + to_add - added)
        for rs in ordered:
            await self.scale_rs(d, rs, max(0, sizes[rs["metadata"]["name"]]))

    async def check_paused_conditions(self, d: dict) -> None:
        if not has_progress_deadline(d):
            return
        cond = condition(d, "Progressing")
        paused_exists = cond is not None and cond.get("reason") == PAUSED
        status = copy.deepcopy(d.get("status") or {})
        if d["spec"].get("paused") and not paused_exists:
            set_condition(status, "Progressing", "Unknown", PAUSED, "Deployment is paused", update_time=True)
        elif not d["spec"].get("paused") and paused_exists:
            set_condition(status, "Progressing", "Unknown", RESUMED, "Deployment is resumed", update_time=True)
        else:
            return
        self._apply(d, await update_status(self.client, DEPLOYMENTS, d, status))

    @staticmethod
    def _apply(d: dict, new: dict | None) -> None:
        if new is not None:
            d["status"] = new.get("status") or {}
            d["metadata"] = new["metadata"]

    # ---- strategies ----------------------------------------------------------------------

    async def rollout_rolling(self, d: dict, all_rs: list[dict]):
        new, old = await self.get_all(d, all_rs, create=True)
        if new is not None:
            if rs_replicas(new) != replicas(d):
                target = replicas(d) if rs_replicas(new) > replicas(d) else \
                    self.new_rs_replicas(d, [new] + old, new)
                scaled, new = await self.scale_rs(d, new, target)
                if scaled:
                    return await self.sync_rollout_status(d, [new] + old, new)
        if await self.reconcile_old(d, new, old):
            return await self.sync_rollout_status(d, self._fresh([new] + old), new)
        if self.complete(d, self.calculate_status(d, [new] + old, new)):
            await self.cleanup(d, old)
        return await self.sync_rollout_status(d, [new] + old, new)

    def _available(self, d: dict, rs: dict) -> int:
        """Available pods of ``rs``: its status, but never more than the pod cache shows now.
        A status lags its own deletions: a reconcile between an old pod's deletion and its
        ReplicaSet's next status would count that pod and scale one too many down, below
        maxUnavailable (seen under load)."""
        mrs = int(d["spec"].get("minReadySeconds") or 0)
        now = time.time()
        here = sum(1 for p in controlled_by(self.pods, rs["metadata"]["uid"])
                   if is_active(p) and is_available(p, mrs, now))
        return min(st(rs, "availableReplicas"), here)

    async def reconcile_old(self, d: dict, new: dict | None, old: list[dict]) -> bool:
        old_count = sum(rs_replicas(r) for r in old)
        if old_count == 0:
            return False
        all_rs = ([new] if new else []) + old
        all_count = sum(rs_replicas(r) for r in all_rs)
        min_available = replicas(d) - max_unavailable(d)
        new_unavailable = (rs_replicas(new) - self._available(d, new)) if new else 0
        max_scaled_down = all_count - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        # first old pods that are not available, oldest ReplicaSets first
        cleaned = 0
        fresh_old = []
        for rs in sorted(old, key=_created):
            if cleaned >= max_scaled_down or rs_replicas(rs) == 0:
                fresh_old.append(rs)
                continue
            unhealthy = rs_replicas(rs) - st(rs, "availableReplicas")
            if unhealthy <= 0:
                fresh_old.append(rs)
                continue
            n = min(max_scaled_down - cleaned, unhealthy)
            _, rs = await self.scale_rs(d, rs, rs_replicas(rs) - n)
            cleaned += n
            fresh_old.append(rs)
        # then available ones, down to minAvailable
        all_rs = ([new] if new else []) + fresh_old
        available = sum(self._available(d, r) for r in all_rs)
        scaled = 0
        if available > min_available:
            total = available - min_available
            for rs in sorted(fresh_old, key=_created):
                if scaled >= total:
                    break
                if rs_replicas(rs) == 0:
                    continue
                n = min(rs_replicas(rs), total - scaled)
                await self.scale_rs(d, rs, rs_replicas(rs) - n)
                scaled += n
        return cleaned + scaled > 0

    async def rollout_recreate(self, d: dict, all_rs: list[dict]):
        new, old = await self.get_all(d, all_rs, create=False)
        scaled = False
        for rs in old:
            if rs_replicas(rs) > 0:
                await self.scale_rs(d, rs, 0)
                scaled = True
        if scaled:
            return await self.sync_rollout_status(d, self._fresh(([new] if new else []) + old), new)
        old_uids = {rs["metadata"]["uid"] for rs in old}
        if any(st(rs, "replicas") > 0 for rs in old) or any(
                (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
                for uid in old_uids for p in controlled_by(self.pods, uid)):
            return await self.sync_rollout_status(d, ([new] if new else []) + old, new)
        if new is None:
            new, old = await self.get_all(d, ([new] if new else []) + old, create=True)
        if new is not None and rs_replicas(new) != replicas(d):
            _, new = await self.scale_rs(d, new, replicas(d))
        if self.complete(d, self.calculate_status(d, ([new] if new else []) + old, new)):
            await self.cleanup(d, old)
        return await self.sync_rollout_status(d, ([new] if new else []) + old, new)

    async def cleanup(self, d: dict, old: list[dict]) -> None:
        limit = d["spec"].get("revisionHistoryLimit")
        limit = 10 if limit is None else int(limit)
        cleanable = [rs for rs in old if rs_replicas(rs) == 0 and st(rs, "replicas") == 0
                     and not rs["metadata"].get("deletionTimestamp")]
        diff = len(cleanable) - limit
        if diff <= 0:
            return
        for rs in sorted(cleanable, key=lambda r: (revision(r), _created(r)))[:diff]:
            try:
                await self.client.delete(REPLICASETS, rs["metadata"]["name"], rs["metadata"]["namespace"],
                                         preconditions={"uid": rs["metadata"]["uid"]})
            except ApiError as e:
                if not (e.not_found or e.conflict):
                    raise

    # ---- status --------------------------------------------------------------------------

    def calculate_status(self, d: dict, all_rs: list, new: dict | None) -> dict:
        all_rs = [r for r in all_rs if r is not None]
        available = sum(st(r, "availableReplicas") for r in all_rs)
        status = copy.deepcopy(d.get("status") or {})
        status["observedGeneration"] = d["metadata"].get("generation")
        status["replicas"] = sum(st(r, "replicas") for r in all_rs)
        status["updatedReplicas"] = st(new, "replicas") if new else 0
        status["readyReplicas"] = sum(st(r, "readyReplicas") for r in all_rs)
        status["availableReplicas"] = available
        status["unavailableReplicas"] = max(0, replicas(d) - available)
        if available >= replicas(d) - max_unavailable(d):
            set_condition(status, "Available", "True", "MinimumReplicasAvailable",
                          "Deployment has minimum availability.", update_time=True)
        else:
            set_condition(status, "Available", "False", "MinimumReplicasUnavailable",
                          "Deployment does not have minimum availability.", update_time=True)
        for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"):
            if not status.get(k):
                status.pop(k, None)
        return status

    @staticmethod
    def complete(d: dict, status: dict) -> bool:
        want = replicas(d)
        return (int(status.get("updatedReplicas") or 0) == want
                and int(status.get("replicas") or 0) == want
                and int(status.get("availableReplicas") or 0) == want
                and int(status.get("observedGeneration") or 0) >= int(d["metadata"].get("generation") or 0))

    async def sync_status_only(self, d: dict, all_rs: list[dict], new: dict | None = None):
        if new is None:
            new, _ = self.split(d, all_rs)
        status = self.calculate_status(d, all_rs, new)
        if status != (d.get("status") or {}):
            await update_status(self.client, DEPLOYMENTS, d, status)
        return None

    async def sync_rollout_status(self, d: dict, all_rs: list, new: dict | None):
        all_rs = [r for r in all_rs if r is not None]
        status = self.calculate_status(d, all_rs, new)
        old_status = d.get("status") or {}
        deadline = d["spec"].get("progressDeadlineSeconds")
        requeue = None
        if not has_progress_deadline(d):
            status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != "Progressing"]
        else:
            cond = condition({"status": status}, "Progressing")
            is_complete = (int(status.get("replicas") or 0) == int(status.get("updatedReplicas") or 0)
                           and cond is not None and cond.get("reason") == NEW_RS_AVAILABLE)
            name = new["metadata"]["name"] if new else ""
            if not is_complete:
                if self.complete(d, status):
                    set_condition(status, "Progressing", "True", NEW_RS_AVAILABLE,
                                  f'ReplicaSet "{name}" has successfully progressed.', update_time=True)
                elif self.progressing(old_status, status):
                    msg = f'ReplicaSet "{name}" is progressing.' if new else "Deployment is progressing."
                    if not set_condition(status, "Progressing", "True", RS_UPDATED, msg, update_time=True):
                        for c in status["conditions"]:
                            if c["type"] == "Progressing":
                                c["lastUpdateTime"] = rfc3339()
                elif self.timed_out(d, status):
                    set_condition(status, "Progressing", "False", TIMED_OUT,
                                  f'ReplicaSet "{name}" has timed out progressing.', update_time=True)
                cond = condition({"status": status}, "Progressing")
                if cond is not None and cond.get("status") == "True" and cond.get("reason") != NEW_RS_AVAILABLE:
                    since = parse_time(cond.get("lastUpdateTime")) or time.time()
                    requeue = max(1.0, since + int(deadline) - time.time() + 1)
        # conditions are ordered Available, Progressing as upstream writes them
        order = {"Available": 0, "Progressing": 1}
        status["conditions"] = sorted(status.get("conditions") or [], key=lambda c: order.get(c["type"], 2))
        if status != old_status:
            await update_status(self.client, DEPLOYMENTS, d, status)
        return requeue

    @staticmethod
    def progressing(old: dict, new: dict) -> bool:
        g = lambda s, k: int(s.get(k) or 0)  # noqa: E731
        old_old = g(old, "replicas") - g(old, "updatedReplicas")
        new_old = g(new, "replicas") - g(new, "updatedReplicas")
        return (g(new, "updatedReplicas") > g(old, "updatedReplicas") or new_old < old_old
                or g(new, "readyReplicas") > g(old, "readyReplicas")
                or g(new, "availableReplicas") > g(old, "availableReplicas"))

    @staticmethod
    def timed_out(d: dict, status: dict) -> bool:
        cond = condition({"status": status}, "Progressing")
        if cond is None:
            return False
        if cond.get("reason") == NEW_RS_AVAILABLE:
            return False
        if cond.get("reason") == TIMED_OUT:
            return True
        since = parse_time(cond.get("lastUpdateTime"))
        return since is not None and since + int(d["spec"]["progressDeadlineSeconds"]) < time.time()


async def claim_pods_like(client: Client, owner: dict, ref: dict, candidates: list[dict]) -> list[dict]:
    """ClaimReplicaSets: claim_pods over ReplicaSets (adopt/release with the RS resource)."""
    from . import controllerutils as cu
    uid = owner["metadata"]["uid"]
    sel = selector_of(owner)
    out = []
    for rs in candidates:
        cref = controller_ref(rs)
        labels = rs["metadata"].get("labels") or {}
        if cref is not None:
            if cref.get("uid") != uid:
                continue
            if sel.matches(labels):
                out.append(rs)
            elif not owner["metadata"].get("deletionTimestamp"):
                await cu._patch_owners(client, rs, [r for r in rs["metadata"].get("ownerReferences") or ()
                                                    if r.get("uid") != uid], REPLICASETS)
            continue
        if owner["metadata"].get("deletionTimestamp") or rs["metadata"].get("deletionTimestamp") \
                or not sel.matches(labels):
            continue
        new = await cu._patch_owners(client, rs, list(rs["metadata"].get("ownerReferences") or ()) + [ref],
                                     REPLICASETS)
        if new is not None:
            out.append(new)
    return out


_ = claim_pods  # re-exported helper used by the ReplicaSet controller

__all__ = ["DeploymentController", "template_hash", "fnv32a", "safe_encode", "fenceposts"]
