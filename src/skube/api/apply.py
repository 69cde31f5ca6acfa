"""Server-side apply and field ownership (``metadata.managedFields``).

Two entry points for the API server:

* :func:`server_side_apply` — a PATCH with ``application/apply-patch+yaml``: merge
  the applied configuration into the live object, remove what this manager
  applied before and dropped now (unless someone else owns it), detect
  conflicts with other managers, and record the applier's fields.
* :func:`track_update` — every other write (create, update, patch): record the
  fields this write changed under its manager with operation ``Update`` and
  take them away from everyone else.

Semantics follow sigs.k8s.io/structured-merge-diff (merge/update.go) and
k8s.io/apimachinery/pkg/util/managedfields (strip of meta fields, timestamps,
Update-manager capping, the kubectl client-side-apply upgrade path). The typed
walks live in :mod:`skube.api.fieldmanager`.

Deliberate simplifications:

* one schema per kind: every manager's fields are read in the request's version
  (upstream converts objects to each manager's apiVersion before comparing);
* a configuration that does not fit the schema is a 400 BadRequest with upstream's
  "failed to create typed patch object (…)" text (upstream answers 500 today);
* endpoint reset fields are coarse: the status subresource owns ``status`` only and a
  main endpoint with a status subresource owns everything else;
* a create is compared against the kind's zero value as far as the schema shows it
  (top-level structs, required lists, the well-known by-value structs), which is
  what decides the ``"."`` entries of maps an Update adds;
* explicit nulls in a configuration unset the field (null server-set metadata such
  as ``creationTimestamp: null`` is ignored).
"""
from __future__ import annotations

import copy
import functools

import orjson

from skube.api import errors
from skube.api.fieldmanager import fieldset, managed as mf
from skube.api.fieldmanager.fieldset import Node
from skube.api.fieldmanager.managed import APPLY, UPDATE, Entry
from skube.api.fieldmanager.typeinfo import LIST, MAP, TypeNode, root_type
from skube.api.fieldmanager.walk import SchemaError, compare, merge, prune, to_set

__all__ = ["server_side_apply", "track_update", "manager_from_user_agent", "FIELD_MANAGER_MAX_LENGTH"]

FIELD_MANAGER_MAX_LENGTH = 128
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_ANNOTATIONS_SIZE_LIMIT = 256 * 1024      # ValidateAnnotations' total size limit
_KUBECTL = "kubectl"                     # the only applier that upgrades client-side apply
_KEEP_METADATA: Node = {"f:metadata": {}}  # never pruned wholesale (the name lives there)


# --- manager names -----------------------------------------------------------

def manager_from_user_agent(ua: str) -> str:
    """Default field manager of a request without ``fieldManager``: the User-Agent up to
    its first ``/``, unprintable characters dropped, cut at 128 bytes
    (``kubectl/v1.31.0 (linux/amd64) …`` → ``kubectl``)."""
    out: list[str] = []
    size = 0
    for ch in (ua or "").split("/", 1)[0]:
        if not ch.isprintable():
            continue
        n = len(ch.encode())
        if size + n > FIELD_MANAGER_MAX_LENGTH:
            break
        out.append(ch)
        size += n
    return "".join(out)


def _validate_manager(manager: str) -> None:
    causes = []
    if not manager:
        causes.append(errors.cause("fieldManager", "Required value: is required for apply patch",
                                   "FieldValueRequired"))
    if len(manager.encode()) > FIELD_MANAGER_MAX_LENGTH:
        causes.append(errors.cause("fieldManager",
                                   f"Too long: may not be more than {FIELD_MANAGER_MAX_LENGTH} bytes",
                                   "FieldValueTooLong"))
    for i, ch in enumerate(manager):
        if not ch.isprintable():
            causes.append(errors.cause(
                "fieldManager",
                f"Invalid value: {fieldset.dumps(manager)}: invalid character U+{ord(ch):04X} (at position {i})"))
    if causes:
        raise errors.invalid("PatchOptions", "", causes, group="meta.k8s.io")


# --- scoping: what an endpoint tracks ------------------------------------------

def _scope(subresource: str, status_subresource: bool) -> tuple[str, frozenset[str]]:
    """("keep"|"drop"|"", top-level names): the fields a write to this endpoint owns.

    The status subresource owns ``status`` only; the main resource of a kind with a
    status subresource owns everything but ``status`` (upstream's reset fields)."""
    if subresource == "status":
        return "keep", frozenset(("status",))
    if not subresource and status_subresource:
        return "drop", frozenset(("status",))
    return "", frozenset()


def _view(obj: dict | None, scope: tuple[str, frozenset[str]]) -> dict:
    """A shallow view of ``obj`` without managedFields and outside-of-scope fields."""
    if not obj:
        return {}
    mode, names = scope
    if mode == "keep":
        return {k: v for k, v in obj.items() if k in names}
    if mode == "drop" and any(n in obj for n in names):
        obj = {k: v for k, v in obj.items() if k not in names}
    meta = obj.get("metadata")
    if type(meta) is dict and "managedFields" in meta:
        obj = dict(obj)
        obj["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return obj


def _scope_set(s: Node, scope: tuple[str, frozenset[str]]) -> Node:
    mode, names = scope
    if mode == "keep":
        return fieldset.remove_top(s, names, keep_only=True)
    if mode == "drop":
        return fieldset.remove_top(s, names)
    return s


@functools.lru_cache(maxsize=256)
def _skeleton(t: TypeNode, builtin: bool) -> dict:
    """The 'old' object of a create: Go's zero value of the kind, as far as the schema
    tells. Upstream compares against it, so fields present there (non-pointer structs,
    required slices as null) are "modified", not "added" with their own "." entry.
    Custom resources start from an empty object, as upstream."""
    if not builtin:
        return {}
    out: dict = {}
    for name in ("metadata", "spec", "status"):
        ct, declared = t.child(name)
        if declared and ct is not None and ct.kind == MAP:
            out[name] = _zero(ct, 0)
    return out


# Struct fields Go declares by value (not pointer) across the workload kinds; the
# OpenAPI does not say, so name them: they serialize as {} even when unset.
_VALUE_STRUCTS = ("metadata", "spec", "template", "jobTemplate", "strategy", "updateStrategy")


def _zero(t: TypeNode, depth: int) -> dict:
    out: dict = {}
    if depth > 4:
        return out
    for name in dict.fromkeys(t.required + _VALUE_STRUCTS):
        ct, declared = t.child(name)
        if ct is None or not declared:
            continue
        if ct.kind == LIST and name in t.required:
            out[name] = None
        elif ct.kind == MAP and not ct.atomic and ct.has_props:
            out[name] = _zero(ct, depth + 1)
    return out


# Server-set metadata a configuration may carry as null (``kubectl create --dry-run
# -o yaml`` writes ``creationTimestamp: null``): null there means "not mine", not "unset".
_SYSTEM_META = ("creationTimestamp", "uid", "resourceVersion", "generation", "selfLink",
                "deletionTimestamp", "deletionGracePeriodSeconds")


def _without_null_system_fields(applied: dict) -> dict:
    meta = applied.get("metadata")
    if not isinstance(meta, dict) or not any(k in meta and meta[k] is None for k in _SYSTEM_META):
        return applied
    out = dict(applied)
    out["metadata"] = {k: v for k, v in meta.items() if not (v is None and k in _SYSTEM_META)}
    return out


# --- encoding results ------------------------------------------------------------

def _deep_copy(obj):
    try:
        return orjson.loads(orjson.dumps(obj))
    except (TypeError, orjson.JSONEncodeError):   # e.g. integers beyond 64 bits
        return copy.deepcopy(obj)


def _set_managed_fields(obj: dict, entries: dict[tuple, Entry]) -> None:
    meta = obj.get("metadata")
    meta = dict(meta) if isinstance(meta, dict) else {}
    encoded = mf.encode(entries)
    if encoded:
        meta["managedFields"] = encoded
    else:
        meta.pop("managedFields", None)
    obj["metadata"] = meta


def _gvk_string(api_version: str, kind: str) -> str:
    group, _, version = api_version.rpartition("/")
    return f"{group}/{version}, Kind={kind}"


def _typed_patch_error(applied: dict, api_version: str, kind: str, why: str) -> errors.APIError:
    meta = applied.get("metadata") if isinstance(applied.get("metadata"), dict) else {}
    ns, name = meta.get("namespace") or "", meta.get("name") or ""
    return errors.bad_request(
        f"failed to create typed patch object ({ns}/{name}; {_gvk_string(api_version, kind)}): {why}")


# --- conflicts ---------------------------------------------------------------------

def _conflict_error(conflicts: dict[tuple, Node]) -> errors.APIError:
    items: list[tuple[tuple, tuple[str, ...]]] = []
    for ident in sorted(conflicts, key=mf.identifier_json):
        for path in fieldset.iter_paths(conflicts[ident]):
            items.append((ident, path))
    causes = [{"reason": "FieldManagerConflict",
               "message": f"conflict with {mf.describe(ident)}",
               "field": fieldset.path_string(path)} for ident, path in items]
    if len(items) == 1:
        ident, path = items[0]
        message = (f"Apply failed with 1 conflict: conflict with {mf.describe(ident)}: "
                   f"{fieldset.path_string(path)}")
    else:
        lines: list[str] = []
        for ident in sorted(conflicts, key=mf.identifier_json):
            lines.append(f"conflicts with {mf.describe(ident)}:")
            lines.extend(f"- {fieldset.path_string(p)}" for i, p in items if i == ident)
        message = f"Apply failed with {len(items)} conflicts: " + "\n".join(lines)
    return errors.APIError(409, "Conflict", message, {"causes": causes})


def _allowed_by_last_applied(live_view: dict, t: TypeNode, api_version: str) -> Node | None:
    """Fields kubectl's client-side-apply annotation set to what the object still holds:
    ``kubectl apply --server-side`` may take those over without conflicts."""
    meta = live_view.get("metadata") or {}
    text = (meta.get("annotations") or {}).get(LAST_APPLIED)
    if not text:
        return None
    try:
        last = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(last, dict) or last.get("apiVersion") != api_version:
        return None
    problems: list = []
    owned = to_set(last, t, problems) or {}
    if problems:
        return None
    added, modified, removed = compare(last, live_view, t)
    for s in (modified, added, removed):
        if s:
            owned = fieldset.difference(owned, s)
    return owned


def _last_applied_text(applied: dict) -> str:
    """buildLastApplied: the configuration without the annotation, as Go encodes it."""
    obj = _deep_copy(applied)
    ann = (obj.get("metadata") or {}).get("annotations")
    if isinstance(ann, dict):
        ann.pop(LAST_APPLIED, None)
    text = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()
    text = fieldset.dumps(orjson.loads(text)) if any(c in text for c in "<>&\u2028\u2029") else text
    return text + "\n"


def _update_last_applied(obj: dict, applied: dict) -> None:
    meta = obj.get("metadata") or {}
    ann = meta.get("annotations")
    if not isinstance(ann, dict) or not ann.get(LAST_APPLIED):
        return
    ann = dict(ann)
    ann[LAST_APPLIED] = _last_applied_text(applied)
    if sum(len(k.encode()) + len(str(v).encode()) for k, v in ann.items()) > _ANNOTATIONS_SIZE_LIMIT:
        del ann[LAST_APPLIED]
    meta = dict(meta)
    meta["annotations"] = ann
    obj["metadata"] = meta


# --- apply -------------------------------------------------------------------------------

def server_side_apply(live: dict | None, applied: dict, *, manager: str, force: bool,
                      group: str, version: str, kind: str, schema: dict | None = None,
                      now: str, subresource: str = "", status_subresource: bool = True) -> dict:
    """The object after ``manager`` applies ``applied`` to ``live`` (None: create).

    Returns a new object (sharing nothing with the arguments) whose
    ``metadata.managedFields`` record the apply. Raises APIError: 422 for a bad field
    manager, 400 for a configuration of the wrong version/kind, with managedFields or
    that does not fit the schema, 409 ``Conflict`` (causes ``FieldManagerConflict``) when
    it would change fields other managers own and ``force`` is False.

    ``schema`` is a CRD's openAPIV3Schema (built-ins are looked up by GVK).
    ``subresource="status"`` applies to the status subresource (only ``status`` is
    merged and owned); ``status_subresource=False`` for kinds without one, whose main
    endpoint then owns ``status`` too."""
    _validate_manager(manager)
    if not isinstance(applied, dict):
        raise errors.bad_request("error decoding patch: the apply configuration must be an object")
    api_version = f"{group}/{version}" if group else version
    patch_version = applied.get("apiVersion")
    if patch_version != api_version:
        raise errors.bad_request(
            "Incorrect version specified in apply patch. "
            f"Specified patch version: {patch_version if isinstance(patch_version, str) else ''}, "
            f"expected: {api_version}")
    meta = applied.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise _typed_patch_error(applied, api_version, str(applied.get("kind") or ""),
                                 ".metadata: expected map, got " + type(meta).__name__)
    meta = meta or {}
    if meta.get("managedFields") is not None:
        raise errors.bad_request("metadata.managedFields must be nil")
    patch_kind = applied.get("kind")
    if patch_kind != kind:
        patch_kind = patch_kind if isinstance(patch_kind, str) else ""
        raise _typed_patch_error(applied, api_version, patch_kind,
                                 f"no corresponding type for {_gvk_string(api_version, patch_kind)}")
    t = root_type(group, version, kind, schema)

    scope = _scope(subresource, status_subresource)
    config = _view(_without_null_system_fields(applied), scope)
    problems: list = []
    config_set = to_set(config, t, problems) or {}
    if problems:
        raise _typed_patch_error(applied, api_version, kind, SchemaError(problems).text())

    if live is not None:
        live_meta = live.get("metadata") or {}
        name = meta.get("name")
        if name and live_meta.get("name") and name != live_meta.get("name"):
            raise errors.bad_request(
                f"the name of the object ({name}) does not match the name on the URL ({live_meta.get('name')})")
        ns = meta.get("namespace")
        if ns and live_meta.get("namespace") and ns != live_meta.get("namespace"):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request")
        try:
            entries = mf.decode(live_meta.get("managedFields"))
        except mf.DecodeError:
            entries = {}
    else:
        if not meta.get("name") and not subresource:
            raise errors.invalid(kind, "", [errors.cause(
                "metadata.name", "Required value: name or generateName is required", "FieldValueRequired")],
                group=group)
        entries = {}

    base = _view(live, ("", frozenset())) if live is not None else {}
    live_view = _view(base, scope)
    merged_view = merge(live_view, config, t)

    ident = mf.identity(manager, APPLY, api_version, subresource)
    previous = entries.get(ident)
    # Prune what this applier owned before and dropped now, unless another manager
    # (or the new configuration itself) still owns it. metadata itself always stays.
    if previous is not None and previous.fields:
        owned_now = fieldset.union(config_set, _KEEP_METADATA)
        for k, e in entries.items():
            if k != ident:
                owned_now = fieldset.union(owned_now, e.fields)
        merged_view = prune(merged_view, t, _scope_set(previous.fields, scope), owned_now)

    added, modified, removed = compare(live_view, merged_view, t)
    changed = fieldset.union(added or {}, modified or {})
    removed = removed or {}

    conflicts: dict[tuple, Node] = {}
    if changed:
        for k, e in entries.items():
            if k != ident:
                c = fieldset.intersection(e.fields, changed)
                if c:
                    conflicts[k] = c
    if conflicts and not force:
        unresolved = conflicts
        if manager == _KUBECTL:
            allowed = _allowed_by_last_applied(base, t, api_version)
            if allowed is not None:
                unresolved = {k: r for k, c in conflicts.items() if (r := fieldset.difference(c, allowed))}
        if unresolved:
            raise _conflict_error(unresolved)

    new_entries: dict[tuple, Entry] = {}
    for k, e in entries.items():
        if k == ident:
            continue
        fields = e.fields
        if k in conflicts:
            fields = fieldset.difference(fields, conflicts[k])
        if removed:
            fields = fieldset.difference(fields, removed)
        if fields is not e.fields:
            if not fields:
                continue
            e = Entry(e.manager, e.operation, e.api_version, e.subresource, e.time, fields, e.source)
        new_entries[k] = e

    result = dict(base)
    mode, names = scope
    if mode == "keep":
        result.update(merged_view)
        for n in names:
            if n not in merged_view:
                result.pop(n, None)
    else:
        for k in [k for k in result if not (mode == "drop" and k in names)]:
            if k not in merged_view:
                del result[k]
        result.update(merged_view)
    object_changed = result != base

    own = fieldset.strip_meta(config_set)
    if own:
        if previous is not None and previous.fields == own:
            own = previous.fields           # keep the stored encoding byte for byte
        time = now if object_changed else (previous.time if previous is not None else None)
        new_entries[ident] = Entry(manager, APPLY, api_version, subresource, time, own,
                                   previous.source if previous is not None else None)

    if manager == _KUBECTL:
        _update_last_applied(result, applied)
    _set_managed_fields(result, new_entries)
    return _deep_copy(result)


# --- updates -------------------------------------------------------------------------------

def track_update(old: dict | None, new: dict, *, manager: str, group: str, version: str,
                 kind: str, schema: dict | None = None, now: str, subresource: str = "",
                 status_subresource: bool = True) -> None:
    """Record a non-apply write in ``new["metadata"]["managedFields"]`` (in place).

    The fields this write added or changed go to ``manager`` (operation ``Update``,
    this apiVersion and subresource) and are taken from every other manager;
    removed fields leave every manager. ``old`` None is a create. Managed fields sent
    by the client are honoured on the main resource (an empty list, or one empty
    entry, resets them); a subresource write always starts from ``old``'s."""
    meta = new.get("metadata")
    if not isinstance(meta, dict):
        return
    old_meta = (old or {}).get("metadata") or {}
    api_version = f"{group}/{version}" if group else version

    old_mf = old_meta.get("managedFields")
    entries = None
    sent = meta.get("managedFields")
    if not subresource and sent is not None:
        if mf.is_reset(sent):
            entries = {}
        else:
            try:
                if sent is not old_mf and sent != old_mf:
                    entries = mf.decode(sent, validate=True) or None
                elif sent is not old_mf:
                    entries = mf.decode(sent)
            except mf.DecodeError:
                entries = None
    shared_with_old = entries is None
    if entries is None:
        try:
            entries = mf.decode(old_mf)
        except mf.DecodeError:
            entries = {}

    t = root_type(group, version, kind, schema)
    scope = _scope(subresource, status_subresource)
    old_view = _view(old, scope) if old is not None else _view(_skeleton(t, schema is None), scope)
    new_view = _view(new, scope)

    new_entries = entries
    if old_view != new_view:
        added, modified, removed = compare(old_view, new_view, t)
        changed = fieldset.union(added or {}, modified or {})
        if changed or removed:
            new_entries = {}
            for k, e in entries.items():
                fields = fieldset.difference(e.fields, changed) if changed else e.fields
                if removed:
                    fields = fieldset.difference(fields, removed)
                if fields is not e.fields:
                    if not fields:
                        continue
                    e = Entry(e.manager, e.operation, e.api_version, e.subresource, e.time, fields, e.source)
                new_entries[k] = e
        mine = fieldset.strip_meta(changed)
        if mine:
            ident = mf.identity(manager, UPDATE, api_version, subresource)
            prev = new_entries.get(ident)
            fields = fieldset.union(prev.fields, mine) if prev is not None else mine
            if new_entries is entries:
                new_entries = dict(entries)
            new_entries[ident] = Entry(manager, UPDATE, api_version, subresource, now, fields,
                                       prev.source if prev is not None else None)
    new_entries = mf.cap_updates(new_entries)

    encoded = mf.encode(new_entries)
    if shared_with_old and encoded:
        encoded = _deep_copy(encoded)      # entries reused from ``old`` must not be shared with it
    if encoded:
        meta["managedFields"] = encoded
    else:
        meta.pop("managedFields", None)
