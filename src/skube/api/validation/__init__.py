"""Validation of built-in objects with upstream's rules, field paths and messages.

``validate_create`` / ``validate_update`` raise ``errors.invalid`` (422) listing every
cause found, e.g. ``Pod "x" is invalid: spec.containers[0].image: Required value``.
They expect a defaulted object (``defaults.apply_defaults`` first), as upstream
validates after defaulting. Custom resources get metadata rules only here; their
schema is checked elsewhere.
"""
from __future__ import annotations

from typing import Callable

from .. import errors
from ..registry import ResourceInfo
from . import core, networking, other, pod, service, workloads
from ._field import Errs, dedupe, forbidden, invalid
from .meta import object_meta, object_meta_update

__all__ = ["validate_object_meta", "validate_create", "validate_update", "causes_for_create",
           "causes_for_update"]

_MIRROR = "kubernetes.io/config.mirror"
_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


def validate_object_meta(info: ResourceInfo, obj: dict, *, name_optional_with_generate: bool = True) -> list[dict]:
    """Metadata causes for a create: name (per-kind format) or generateName, namespace per
    scope, labels, annotations, ownerReferences, finalizers."""
    errs: Errs = []
    object_meta(errs, info.group, info.kind, info.namespaced, obj,
                name_optional_with_generate=name_optional_with_generate, custom=info.custom)
    return errs


# ---- per-kind rules -----------------------------------------------------------------------------------

def _pod_annotations(errs: Errs, obj: dict) -> None:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    ann = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    if _MIRROR in ann and not spec.get("nodeName"):
        invalid(errs, f"metadata.annotations[{_MIRROR}]", ann[_MIRROR],
                "must set spec.nodeName if mirror pod annotation is set")
    cost = ann.get(_DELETION_COST)
    if cost is not None:
        ok = isinstance(cost, str) and cost.strip() == cost and cost.lstrip("+-").isdigit() \
            and cost.isascii() and -2 ** 31 <= int(cost) < 2 ** 31
        if not ok:
            invalid(errs, f"metadata.annotations[{_DELETION_COST}]", cost, "must be a 32bit integer")


def _pod_create(errs: Errs, obj: dict) -> None:
    _pod_annotations(errs, obj)
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    pod.validate_pod_spec(errs, obj.get("spec"), "spec", pod_name=meta.get("name") or None, is_pod=True)
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    if not spec.get("serviceAccountName"):
        for vi, vol in enumerate(spec.get("volumes") or []):
            proj = vol.get("projected") if isinstance(vol, dict) else None
            for si, src in enumerate((proj or {}).get("sources") or [] if isinstance(proj, dict) else []):
                if isinstance(src, dict) and src.get("serviceAccountToken") is not None:
                    forbidden(errs, f"spec.volumes[{vi}].projected.sources[{si}].serviceAccountToken",
                              "must not be specified when serviceAccountName is not set")


def _pod_create_only(errs: Errs, obj: dict) -> None:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    if spec.get("ephemeralContainers"):
        forbidden(errs, "spec.ephemeralContainers", "cannot be set on create")
    if spec.get("nodeName") and spec.get("schedulingGates"):
        forbidden(errs, "spec.nodeName", "cannot be set until all schedulingGates have been cleared")


def _pod_update(errs: Errs, new: dict, old: dict) -> None:
    nm = new.get("metadata") if isinstance(new.get("metadata"), dict) else {}
    om = old.get("metadata") if isinstance(old.get("metadata"), dict) else {}
    na = nm.get("annotations") if isinstance(nm.get("annotations"), dict) else {}
    oa = om.get("annotations") if isinstance(om.get("annotations"), dict) else {}
    if _MIRROR in oa and na.get(_MIRROR) != oa[_MIRROR]:
        forbidden(errs, f"metadata.annotations[{_MIRROR}]", "may not remove or update mirror pod annotation")
    if _MIRROR in na and _MIRROR not in oa:
        forbidden(errs, f"metadata.annotations[{_MIRROR}]", "may not add mirror pod annotation")
    pod.validate_pod_update(errs, new, old)


def _event_create(strict: bool) -> Callable[[Errs, dict], None]:
    def fn(errs: Errs, obj: dict) -> None:
        core.validate_event(errs, obj, strict=strict)
    return fn


def _role(namespaced: bool):
    return lambda errs, obj: other.validate_role(errs, obj, namespaced)


def _binding(namespaced: bool):
    return lambda errs, obj: other.validate_role_binding(errs, obj, namespaced)


# (group, kind) -> (rules on the object, rules only on create, rules only on update)
_Rules = tuple[Callable[[Errs, dict], None] | None, Callable[[Errs, dict], None] | None,
               Callable[[Errs, dict, dict], None] | None]
RULES: dict[tuple[str, str], _Rules] = {
    ("", "Pod"): (_pod_create, _pod_create_only, _pod_update),
    ("", "Service"): (service.validate_service, None, service.validate_service_update),
    ("", "ConfigMap"): (core.validate_config_map, None, core.validate_config_map_update),
    ("", "Secret"): (core.validate_secret, None, core.validate_secret_update),
    ("", "Namespace"): (core.validate_namespace, None, None),
    ("", "ServiceAccount"): (None, None, None),
    ("", "Endpoints"): (core.validate_endpoints, None, None),
    ("", "ResourceQuota"): (core.validate_resource_quota, None, core.validate_resource_quota_update),
    ("", "LimitRange"): (core.validate_limit_range, None, None),
    ("", "PersistentVolumeClaim"): (core.validate_pvc, None, core.validate_pvc_update),
    ("", "Node"): (core.validate_node, None, core.validate_node_update),
    ("apps", "Deployment"): (workloads.validate_deployment, None, workloads.validate_deployment_update),
    ("apps", "ReplicaSet"): (workloads.validate_replica_set, None, workloads.validate_replica_set_update),
    ("apps", "StatefulSet"): (workloads.validate_stateful_set, None, workloads.validate_stateful_set_update),
    ("apps", "DaemonSet"): (workloads.validate_daemon_set, None, workloads.validate_daemon_set_update),
    ("apps", "ControllerRevision"): (workloads.validate_controller_revision, None,
                                     workloads.validate_controller_revision_update),
    ("batch", "Job"): (workloads.validate_job, None, workloads.validate_job_update),
    ("coordination.k8s.io", "Lease"): (other.validate_lease, None, None),
    ("discovery.k8s.io", "EndpointSlice"): (other.validate_endpoint_slice, None, other.validate_endpoint_slice_update),
    ("rbac.authorization.k8s.io", "Role"): (_role(True), None, None),
    ("rbac.authorization.k8s.io", "ClusterRole"): (_role(False), None, None),
    ("rbac.authorization.k8s.io", "RoleBinding"): (_binding(True), None, other.validate_role_binding_update),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): (_binding(False), None, other.validate_role_binding_update),
    ("networking.k8s.io", "NetworkPolicy"): (networking.validate_network_policy, None, None),
    ("policy", "PodDisruptionBudget"): (other.validate_pdb, None, None),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): (other.validate_crd, None, other.validate_crd_update),
}

# kinds whose metadata upstream does not validate beyond the namespace (core/v1 Event)
_LEGACY_EVENT = ("", "Event")
_NEW_EVENT = ("events.k8s.io", "Event")


def causes_for_create(info: ResourceInfo, obj: dict) -> list[dict]:
    """All causes validate_create would report (empty when valid)."""
    errs: Errs = []
    key = (info.group, info.kind)
    if info.custom:
        object_meta(errs, info.group, info.kind, info.namespaced, obj, custom=True)
        return dedupe(errs)
    if key == _LEGACY_EVENT:
        core.validate_event(errs, obj, strict=False)
        return dedupe(errs)
    object_meta(errs, info.group, info.kind, info.namespaced, obj)
    if key == _NEW_EVENT:
        core.validate_event(errs, obj, strict=True)
    elif key == ("batch", "CronJob"):
        workloads.validate_cron_job(errs, obj)
    else:
        rules = RULES.get(key)
        if rules:
            if rules[0]:
                rules[0](errs, obj)
            if rules[1]:
                rules[1](errs, obj)
    return dedupe(errs)


def causes_for_update(info: ResourceInfo, new: dict, old: dict) -> list[dict]:
    """All causes validate_update would report (empty when valid)."""
    errs: Errs = []
    key = (info.group, info.kind)
    object_meta_update(errs, new, old, custom=info.custom, group=info.group)
    if info.custom:
        return dedupe(errs)
    if key == _LEGACY_EVENT:
        core.validate_event(errs, new, strict=False)
        return dedupe(errs)
    if key != ("apps", "StatefulSet"):  # upstream does not re-check a StatefulSet's name
        object_meta(errs, info.group, info.kind, info.namespaced, new)
    if key == _NEW_EVENT:
        core.validate_event(errs, new, strict=True)
    elif key == ("batch", "CronJob"):
        workloads.validate_cron_job(errs, new, old)
    elif key == ("batch", "Job"):
        ot = ((old.get("spec") or {}).get("template") or {}) if isinstance(old.get("spec"), dict) else {}
        labels = ((ot.get("metadata") or {}).get("labels") or {}) if isinstance(ot, dict) else {}
        prefixed = "batch.kubernetes.io/job-name" in labels and "batch.kubernetes.io/controller-uid" in labels
        workloads.validate_job(errs, new, require_prefixed_labels=prefixed)
        workloads.validate_job_update(errs, new, old)
    else:
        rules = RULES.get(key)
        if rules:
            if rules[0]:
                rules[0](errs, new)
            if rules[2]:
                rules[2](errs, new, old)
    return dedupe(errs)


def _name(obj: dict) -> str:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""


def validate_create(info: ResourceInfo, obj: dict) -> None:
    """Raise a 422 Invalid listing every problem of a (defaulted) object being created."""
    causes = causes_for_create(info, obj)
    if causes:
        raise errors.invalid(info.kind, _name(obj), causes, info.group)


def validate_update(info: ResourceInfo, new: dict, old: dict) -> None:
    """Raise a 422 Invalid for an update: the object's own rules plus immutability."""
    causes = causes_for_update(info, new, old)
    if causes:
        raise errors.invalid(info.kind, _name(new), causes, info.group)

