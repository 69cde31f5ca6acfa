"""ObjectMeta rules (apimachinery ``api/validation/objectmeta.go`` plus core's finalizer rule)."""
from __future__ import annotations

from typing import Any, Callable

from . import names as n
from ._field import (Errs, go_label_selector, go_string_slice, GoRaw, Stringer, forbidden, immutable,
                     invalid, nonnegative, required, too_long, type_invalid)

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
STANDARD_FINALIZERS = frozenset(("kubernetes", "orphan", "foregroundDeletion"))

NameFn = Callable[[str, bool], list]

# (group, kind) -> the name rule upstream's strategy passes to ValidateObjectMeta
NAME_RULES: dict[tuple[str, str], NameFn] = {
    ("", "Namespace"): n.name_is_dns_label,
    ("", "Service"): n.name_is_dns1035_label,
    ("apps", "StatefulSet"): n.name_is_dns_label,
    ("rbac.authorization.k8s.io", "Role"): n.name_is_path_segment,
    ("rbac.authorization.k8s.io", "ClusterRole"): n.name_is_path_segment,
    ("rbac.authorization.k8s.io", "RoleBinding"): n.name_is_path_segment,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): n.name_is_path_segment,
}


def name_rule(group: str, kind: str) -> NameFn:
    return NAME_RULES.get((group, kind), n.name_is_dns_subdomain)


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def validate_labels(errs: Errs, labels: Any, path: str) -> None:
    """metav1 ValidateLabels: every key a qualified name, every value a label value
    (errors name the map, not the key, as upstream does)."""
    if labels is None:
        return
    if not isinstance(labels, dict):
        type_invalid(errs, path, labels, "object")
        return
    for k, v in labels.items():
        for msg in n.is_qualified_name(k):
            invalid(errs, path, k, msg)
        if not isinstance(v, str):
            type_invalid(errs, path, v, "string")
            continue
        for msg in n.is_label_value(v):
            invalid(errs, path, v, msg)


def validate_annotations(errs: Errs, annotations: Any, path: str) -> None:
    if annotations is None:
        return
    if not isinstance(annotations, dict):
        type_invalid(errs, path, annotations, "object")
        return
    total = 0
    for k, v in annotations.items():
        for msg in n.is_qualified_name(k.lower()):
            invalid(errs, path, k, msg)
        if not isinstance(v, str):
            type_invalid(errs, path, v, "string")
            continue
        total += len(k.encode()) + len(v.encode()) if not (k.isascii() and v.isascii()) else len(k) + len(v)
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        too_long(errs, path, TOTAL_ANNOTATION_SIZE_LIMIT)


def _go_owner_ref(ref: dict) -> GoRaw:
    def b(key):
        v = ref.get(key)
        return "(*bool)(nil)" if v is None else f"&{str(bool(v)).lower()}"
    return GoRaw('v1.OwnerReference{APIVersion:"%s", Kind:"%s", Name:"%s", UID:"%s", Controller:%s, '
                 'BlockOwnerDeletion:%s}' % (ref.get("apiVersion", ""), ref.get("kind", ""),
                                             ref.get("name", ""), ref.get("uid", ""), b("controller"),
                                             b("blockOwnerDeletion")))


def validate_owner_references(errs: Errs, refs: Any, path: str) -> None:
    if refs is None:
        return
    if not isinstance(refs, list):
        type_invalid(errs, path, refs, "array")
        return
    first_controller = ""
    for ref in refs:
        if not isinstance(ref, dict):
            type_invalid(errs, path, ref, "object")
            continue
        api_version = ref.get("apiVersion") or ""
        kind = ref.get("kind") or ""
        version = api_version.split("/", 1)[1] if "/" in api_version else api_version
        group = api_version.split("/", 1)[0] if "/" in api_version else ""
        if not version:
            invalid(errs, path + ".apiVersion", api_version, "version must not be empty")
        if not kind:
            invalid(errs, path + ".kind", kind, "must not be empty")
        if not ref.get("name"):
            invalid(errs, path + ".name", ref.get("name") or "", "must not be empty")
        if not ref.get("uid"):
            invalid(errs, path + ".uid", ref.get("uid") or "", "must not be empty")
        if group == "" and version == "v1" and kind == "Event":
            invalid(errs, path, _go_owner_ref(ref), "/v1, Kind=Event is disallowed from being an owner")
        if ref.get("controller") is True:
            cur = f"{kind}/{ref.get('name', '')}"
            if first_controller:
                invalid(errs, path, GoRaw("[]v1.OwnerReference{" + ", ".join(
                    _go_owner_ref(r) for r in refs if isinstance(r, dict)) + "}"),
                    f'Only one reference can have Controller set to true. Found "true" in references for '
                    f'{first_controller} and {cur}')
            else:
                first_controller = cur


def validate_finalizers(errs: Errs, finalizers: Any, path: str, *, kube: bool = True) -> None:
    if finalizers is None:
        return
    if not isinstance(finalizers, list):
        type_invalid(errs, path, finalizers, "array")
        return
    orphan = foreground = False
    for i, f in enumerate(finalizers):
        if not isinstance(f, str):
            type_invalid(errs, f"{path}[{i}]", f, "string")
            continue
        for msg in n.is_qualified_name(f):
            invalid(errs, path, f, msg)
        orphan = orphan or f == "orphan"
        foreground = foreground or f == "foregroundDeletion"
    if orphan and foreground:
        invalid(errs, path, GoRaw(go_string_slice([f for f in finalizers if isinstance(f, str)])),
                "finalizer orphan and foregroundDeletion cannot be both set")
    if kube:
        for i, f in enumerate(finalizers):
            if isinstance(f, str) and "/" not in f and f not in STANDARD_FINALIZERS:
                invalid(errs, f"{path}[{i}]", f,
                        "name is neither a standard finalizer name nor is it fully qualified")


def _validate_managed_fields(errs: Errs, fields: Any, path: str) -> None:
    if not isinstance(fields, list):
        return
    for i, e in enumerate(fields):
        if not isinstance(e, dict):
            continue
        op = e.get("operation")
        if op not in ("Apply", "Update"):
            invalid(errs, f"{path}[{i}].operation", op or "", "must be `Apply` or `Update`")
        ft = e.get("fieldsType")
        if ft and ft != "FieldsV1":
            invalid(errs, f"{path}[{i}].fieldsType", ft, "must be `FieldsV1`")


def meta_common(errs: Errs, meta: dict, namespaced: bool, *, kube_finalizers: bool) -> None:
    ns = meta.get("namespace")
    if namespaced:
        if not ns:
            required(errs, "metadata.namespace")
        elif not isinstance(ns, str):
            type_invalid(errs, "metadata.namespace", ns, "string")
        else:
            for msg in n.name_is_dns_label(ns):
                invalid(errs, "metadata.namespace", ns, msg)
    elif ns:
        forbidden(errs, "metadata.namespace", "not allowed on this type")
    nonnegative(errs, "metadata.generation", meta.get("generation"))
    validate_labels(errs, meta.get("labels"), "metadata.labels")
    validate_annotations(errs, meta.get("annotations"), "metadata.annotations")
    validate_owner_references(errs, meta.get("ownerReferences"), "metadata.ownerReferences")
    validate_finalizers(errs, meta.get("finalizers"), "metadata.finalizers", kube=kube_finalizers)
    if "managedFields" in meta:
        _validate_managed_fields(errs, meta["managedFields"], "metadata.managedFields")


def object_meta(errs: Errs, group: str, kind: str, namespaced: bool, obj: dict, *,
                name_optional_with_generate: bool = True, custom: bool = False) -> None:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
    name_fn = n.name_is_dns_subdomain if custom else name_rule(group, kind)
    gen = meta.get("generateName")
    if gen:
        if isinstance(gen, str):
            for msg in name_fn(gen, True):
                invalid(errs, "metadata.generateName", gen, msg)
        else:
            type_invalid(errs, "metadata.generateName", gen, "string")
    name = meta.get("name")
    if not name:
        if not (name_optional_with_generate and gen):
            required(errs, "metadata.name", "name or generateName is required")
    elif not isinstance(name, str):
        type_invalid(errs, "metadata.name", name, "string")
    else:
        for msg in name_fn(name, False):
            invalid(errs, "metadata.name", name, msg)
    meta_common(errs, meta, namespaced, kube_finalizers=not custom and group != "coordination.k8s.io")


def _go_time(v: Any) -> Any:
    """metav1.Time prints through time.Time.String()."""
    if not isinstance(v, str) or len(v) < 19:
        return v
    return Stringer(v[:10] + " " + v[11:19] + " +0000 UTC")


def object_meta_update(errs: Errs, new_obj: dict, old_obj: dict, *, custom: bool = False,
                       group: str = "") -> None:
    new = new_obj.get("metadata") if isinstance(new_obj.get("metadata"), dict) else {}
    old = old_obj.get("metadata") if isinstance(old_obj.get("metadata"), dict) else {}
    if old.get("deletionTimestamp"):
        old_f = set(old.get("finalizers") or [])
        extra = sorted({f for f in (new.get("finalizers") or []) if isinstance(f, str)} - old_f)
        if extra:
            forbidden(errs, "metadata.finalizers",
                      "no new finalizers can be added if the object is being deleted, found new "
                      "finalizers " + go_string_slice(extra))
    ng, og = new.get("generation"), old.get("generation")
    if isinstance(ng, int) and isinstance(og, int) and ng < og:
        invalid(errs, "metadata.generation", ng, "must not be decremented")
    for key in ("name", "namespace", "uid"):
        if (new.get(key) or "") != (old.get(key) or ""):
            immutable(errs, f"metadata.{key}", new.get(key) or "")
    for key in ("creationTimestamp", "deletionTimestamp"):
        if new.get(key) != old.get(key):
            immutable(errs, f"metadata.{key}", _go_time(new.get(key)))
    if new.get("deletionGracePeriodSeconds") != old.get("deletionGracePeriodSeconds"):
        immutable(errs, "metadata.deletionGracePeriodSeconds", new.get("deletionGracePeriodSeconds"))
    validate_labels(errs, new.get("labels"), "metadata.labels")
    validate_annotations(errs, new.get("annotations"), "metadata.annotations")
    validate_owner_references(errs, new.get("ownerReferences"), "metadata.ownerReferences")
    validate_finalizers(errs, new.get("finalizers"), "metadata.finalizers",
                        kube=not custom and group != "coordination.k8s.io")
    if "managedFields" in new:
        _validate_managed_fields(errs, new["managedFields"], "metadata.managedFields")


# ---- label selectors ------------------------------------------------------------------------

def validate_label_selector(errs: Errs, sel: Any, path: str) -> None:
    if sel is None:
        return
    if not isinstance(sel, dict):
        type_invalid(errs, path, sel, "object")
        return
    validate_labels(errs, sel.get("matchLabels"), path + ".matchLabels")
    exprs = sel.get("matchExpressions")
    if exprs is None:
        return
    if not isinstance(exprs, list):
        type_invalid(errs, path + ".matchExpressions", exprs, "array")
        return
    for i, e in enumerate(exprs):
        p = f"{path}.matchExpressions[{i}]"
        if not isinstance(e, dict):
            type_invalid(errs, p, e, "object")
            continue
        op = e.get("operator")
        values = e.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                required(errs, p + ".values", "must be specified when `operator` is 'In' or 'NotIn'")
        elif op in ("Exists", "DoesNotExist"):
            if values:
                forbidden(errs, p + ".values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        else:
            invalid(errs, p + ".operator", op or "", "not a valid selector operator")
        key = e.get("key") or ""
        for msg in n.is_qualified_name(key if isinstance(key, str) else str(key)):
            invalid(errs, p + ".key", key, msg)
        if isinstance(values, list):
            for j, v in enumerate(values):
                if isinstance(v, str):
                    for msg in n.is_label_value(v):
                        invalid(errs, f"{p}.values[{j}]", v, msg)


def selector_matches(sel: Any, labels: Any) -> bool:
    """metav1.LabelSelectorAsSelector(sel).Matches(labels)."""
    if not isinstance(sel, dict):
        return False  # a nil selector matches nothing
    labels = labels if isinstance(labels, dict) else {}
    ml = sel.get("matchLabels") or {}
    for k, v in ml.items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        if not isinstance(e, dict):
            return False
        k, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        has = k in labels
        if op == "In":
            if not has or labels[k] not in vals:
                return False
        elif op == "NotIn":
            if has and labels[k] in vals:
                return False
        elif op == "Exists":
            if not has:
                return False
        elif op == "DoesNotExist":
            if has:
                return False
        else:
            return False
    return True


def selector_is_empty(sel: Any) -> bool:
    return not isinstance(sel, dict) or not (sel.get("matchLabels") or sel.get("matchExpressions"))


def selector_is_convertible(sel: Any) -> bool:
    """LabelSelectorAsSelector succeeds (operators known, values valid for them)."""
    if sel is None:
        return True
    if not isinstance(sel, dict):
        return False
    tmp: Errs = []
    validate_label_selector(tmp, sel, "s")
    return not tmp


__all__ = ["NAME_RULES", "name_rule", "validate_labels", "validate_annotations",
           "validate_owner_references", "validate_finalizers", "object_meta", "object_meta_update",
           "meta_common", "validate_label_selector", "selector_matches", "selector_is_empty",
           "selector_is_convertible", "go_label_selector"]
