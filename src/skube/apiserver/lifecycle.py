"""Per-kind write rules (upstream's "strategies"): what create and update may
touch, when generation moves, how deletion proceeds. Pure functions on dicts."""
from __future__ import annotations

import datetime as dt

from ..api.registry import ResourceInfo
from .objects import now_rfc3339

# Kinds whose spec and status are written through separate endpoints.
def has_status_subresource(info: ResourceInfo) -> bool:
    return "status" in info.subresources


def tracks_generation(info: ResourceInfo) -> bool:
    return has_status_subresource(info) or info.custom or info.kind == "CustomResourceDefinition"


_META_AND_STATUS = ("metadata", "status", "apiVersion", "kind")


def spec_changed(info: ResourceInfo, old: dict, new: dict) -> bool:
    """True when anything but metadata (and status, where it is a subresource) changed."""
    skip = _META_AND_STATUS if has_status_subresource(info) else ("metadata", "apiVersion", "kind")
    keys = (set(old) | set(new)) - set(skip)
    return any(old.get(k) != new.get(k) for k in keys)


def prepare_for_create(info: ResourceInfo, obj: dict) -> None:
    """Reset what a client may not set on create (upstream PrepareForCreate)."""
    m = obj["metadata"]
    for k in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
        m.pop(k, None)
    if tracks_generation(info):
        m["generation"] = 1
    else:
        m.pop("generation", None)
    if has_status_subresource(info) and info.kind not in ("Pod", "Namespace", "Node",
                                                          "CustomResourceDefinition"):
        # built-in kinds start with an empty status; custom resources with none
        if info.custom:
            obj.pop("status", None)
        else:
            obj["status"] = {}


def prepare_for_update(info: ResourceInfo, new: dict, old: dict, subresource: str) -> None:
    """Carry over what this endpoint may not change (upstream PrepareForUpdate)."""
    nm, om = new["metadata"], old["metadata"]
    for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
              "generation", "name", "namespace"):
        if k in om:
            nm[k] = om[k]
        else:
            nm.pop(k, None)
    if subresource == "status":
        # the status endpoint changes status (and managedFields) only
        keep = {k: v for k, v in old.items() if k not in ("status", "metadata")}
        status = new.get("status")
        meta = dict(om)
        if "managedFields" in nm:
            meta["managedFields"] = nm["managedFields"]
        new.clear()
        new.update(keep)
        new["metadata"] = meta
        if status is not None:
            new["status"] = status
        return
    if has_status_subresource(info):
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
    if tracks_generation(info) and spec_changed(info, old, new):
        nm["generation"] = om.get("generation", 1) + 1


def grace_period_for_delete(info: ResourceInfo, obj: dict, requested: int | None,
                            node_exists: bool) -> int:
    """Seconds of graceful termination for a delete (0 = remove at once).

    Only pods have graceful deletion: an unscheduled pod, a finished pod, or a pod
    whose node is gone goes at once (upstream CheckGracefulDelete and pod GC)."""
    if info.kind != "Pod" or info.group:
        return 0
    spec = obj.get("spec") or {}
    if not spec.get("nodeName") or not node_exists:
        return 0
    if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return 0
    if requested is not None:
        return max(requested, 0)
    grace = spec.get("terminationGracePeriodSeconds")
    return 30 if grace is None else max(int(grace), 0)


def deletion_time(grace: int) -> str:
    t = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=grace)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def ready_to_remove(obj: dict) -> bool:
    """A deleting object goes once its finalizers are empty and no grace period is pending."""
    m = obj["metadata"]
    if obj.get("kind") == "Namespace" and (obj.get("spec") or {}).get("finalizers"):
        return False   # spec.finalizers hold a namespace until namespaces/finalize clears them
    return bool(m.get("deletionTimestamp")) and not m.get("finalizers") \
        and not m.get("deletionGracePeriodSeconds")


__all__ = ["has_status_subresource", "tracks_generation", "spec_changed", "prepare_for_create",
           "prepare_for_update", "grace_period_for_delete", "deletion_time", "ready_to_remove",
           "now_rfc3339"]
