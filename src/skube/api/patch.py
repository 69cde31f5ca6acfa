"""PATCH bodies applied to JSON-shaped objects the way the kube-apiserver applies them.

Four functions, one per patch type the server accepts:

* ``json_patch``: RFC 6902 with the semantics of ``gopkg.in/evanphx/json-patch.v4``,
  the library the apiserver uses (``-`` appends, negative indices count from the end,
  ``replace`` of a missing object key adds it, every failed operation is one 422).
* ``merge_patch``: RFC 7386 as that library's ``MergePatch`` does it.
* ``strategic_merge_patch``: ``k8s.io/apimachinery/pkg/util/strategicpatch`` as the
  server runs it (``StrategicMergeMapPatch``), driven by the upstream OpenAPI schema's
  ``x-kubernetes-patch-strategy`` / ``x-kubernetes-patch-merge-key``.
* ``create_two_way_merge_patch``: the client half (``CreateTwoWayMergeMapPatch``).

Every function returns a new object and never mutates its arguments. Errors are
``APIError`` with the code, reason and message the kube-apiserver answers with.
"""
from __future__ import annotations

import functools
import re
from typing import Any

import orjson

from . import schema as _schema
from .errors import APIError, bad_request

__all__ = [
    "patch_type", "json_patch", "merge_patch", "strategic_merge_patch",
    "create_two_way_merge_patch", "BUILTIN_PATCH_TYPES", "CUSTOM_PATCH_TYPES",
]

# ---------------------------------------------------------------------------------------
# Content-Type -> patch type
# ---------------------------------------------------------------------------------------

_PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}
# The order the apiserver lists them in its 415 message. apply-patch+cbor is only
# accepted behind the (off by default) CBORServingAndStorage feature gate.
BUILTIN_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                       "application/strategic-merge-patch+json", "application/apply-patch+yaml")
CUSTOM_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                      "application/apply-patch+yaml")


def _unsupported(accepted: tuple[str, ...]) -> APIError:
    return APIError(415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types "
                    "include: " + ", ".join(accepted))


def patch_type(content_type: str | None, *, strategic: bool = True) -> str:
    """Map a PATCH Content-Type to ``"json" | "merge" | "strategic" | "apply"``.

    Parameters such as ``; charset=utf-8`` are ignored. ``strategic=False`` is for
    custom resources, which (like upstream) do not accept strategic merge patch.
    Anything else is a 415 listing the accepted types."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    accepted = BUILTIN_PATCH_TYPES if strategic else CUSTOM_PATCH_TYPES
    if media in accepted:
        return _PATCH_TYPES[media]
    raise _unsupported(accepted)


# ---------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------

# NewGenericServerResponse(422, ...) as the apiserver builds it for a JSON patch that
# cannot be applied: the library's own message is not passed on to the client.
_REJECTED = "the server rejected our request due to an error in our request"
_MAX_JSON_PATCH_OPS = 10000


def _copy(v: Any) -> Any:
    """Deep copy of a JSON value (much faster than copy.deepcopy)."""
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


def _json_kind(v: Any) -> str:
    """The JSON type name Go's encoding/json uses in 'cannot unmarshal X' errors."""
    if isinstance(v, dict):
        return "object"
    if isinstance(v, list):
        return "array"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bool):
        return "bool"
    return "number"


def _go_type(v: Any) -> str:
    """The Go type a decoded JSON value has upstream (reflect.TypeOf)."""
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, list):
        return "[]interface {}"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int64"
    if isinstance(v, float):
        return "float64"
    return "<nil>"


def _go(v: Any) -> str:
    """Render a value like Go's ``%v`` does, for error messages that quote values."""
    if v is None:
        return "<nil>"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_go(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(_go(x) for x in v) + "]"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e21 else repr(v)
    return str(v)


def _json_equal(a: Any, b: Any) -> bool:
    """Structural JSON equality: key order is irrelevant, booleans are not numbers."""
    if isinstance(a, dict):
        return (isinstance(b, dict) and len(a) == len(b)
                and all(k in b and _json_equal(v, b[k]) for k, v in a.items()))
    if isinstance(a, list):
        return (isinstance(b, list) and len(a) == len(b)
                and all(_json_equal(x, y) for x, y in zip(a, b)))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)):
        return isinstance(b, (int, float)) and a == b
    return type(a) is type(b) and a == b


def _hkey(v: Any) -> Any:
    """A hashable identity for a JSON value that keeps 1, 1.0, True and "1" apart the way
    Go's interface equality does (int64 vs float64 vs bool vs string)."""
    if isinstance(v, (dict, list)):
        return ("json", orjson.dumps(v, option=orjson.OPT_SORT_KEYS))
    return (_go_type(v), v)


# ---------------------------------------------------------------------------------------
# JSON patch (RFC 6902), evanphx/json-patch v4 semantics
# ---------------------------------------------------------------------------------------

class _OpError(Exception):
    """One JSON patch operation could not be applied (the library's error text)."""


_ATOI = re.compile(r"[+-]?[0-9]+")
_ESCAPE = re.compile(r"~[01]")


def _unescape(token: str) -> str:
    # RFC 6901: '~1' -> '/', then '~0' -> '~', in a single left-to-right pass.
    if "~" not in token:
        return token
    return _ESCAPE.sub(lambda m: "/" if m.group() == "~1" else "~", token)


def _atoi(key: str) -> int:
    if not _ATOI.fullmatch(key):
        raise _OpError(f'strconv.Atoi: parsing "{key}": invalid syntax')
    return int(key)


def _index(arr: list, key: str) -> int:
    """An existing element's index (negative indices count from the end)."""
    i = _atoi(key)
    n = len(arr)
    if i < 0:
        if i < -n:
            raise _OpError(f"Unable to access invalid index: {i}: invalid index referenced")
        i += n
    if i >= n:
        raise _OpError(f"Unable to access invalid index: {i}: invalid index referenced")
    return i


def _find(doc: Any, path: str) -> tuple[Any, str] | None:
    """The container holding the last token of ``path``, and that token; None when a
    parent is missing, null or a scalar. Like upstream, the text before the first '/'
    is ignored and "" has no parent."""
    parts = path.split("/")
    if len(parts) < 2:
        return None
    cur = doc
    for part in parts[1:-1]:
        key = _unescape(part)
        if isinstance(cur, dict):
            nxt = cur.get(key)
        else:
            try:
                nxt = cur[_index(cur, key)]
            except _OpError:
                return None
        if not isinstance(nxt, (dict, list)):
            return None
        cur = nxt
    return cur, _unescape(parts[-1])


def _get(con: Any, key: str) -> Any:
    # A missing object key reads as null (no error), as in the library.
    if isinstance(con, dict):
        return con.get(key)
    return con[_index(con, key)]


def _add(con: Any, key: str, value: Any) -> None:
    if isinstance(con, dict):
        con[key] = value
        return
    if key == "-":
        con.append(value)
        return
    try:
        i = _atoi(key)
    except _OpError as e:
        raise _OpError(f"value was not a proper array index: '{key}': {e}") from None
    n = len(con) + 1
    if i >= n or i < -n:
        raise _OpError(f"Unable to access invalid index: {i}: invalid index referenced")
    if i < 0:
        i += n
    con.insert(i, value)


def _remove(con: Any, key: str) -> None:
    if isinstance(con, dict):
        if key not in con:
            raise _OpError(f"Unable to remove nonexistent key: {key}: missing value")
        del con[key]
        return
    del con[_index(con, key)]


def _op_str(op: dict, field: str, kind: str) -> str:
    v = op.get(field)
    if v is None:
        raise _OpError(f"{kind} operation failed to decode {field}: missing value")
    if not isinstance(v, str):
        raise _OpError(f"{kind} operation failed to decode {field}: json: cannot unmarshal "
                       f"{_json_kind(v)} into Go value of type string")
    return v


def _locate(doc: Any, path: str, kind: str, what: str = "path") -> tuple[Any, str]:
    found = _find(doc, path)
    if found is None:
        raise _OpError(f'{kind} operation does not apply: doc is missing {what}: "{path}": '
                       "missing value")
    return found


def _apply_op(doc: Any, op: dict | None) -> Any:
    """Apply one operation to ``doc`` in place; returns the (possibly new) root."""
    kind = op.get("op") if isinstance(op, dict) else None
    op = op or {}
    if kind == "add":
        con, key = _locate(doc, _op_str(op, "path", kind), kind)
        _add(con, key, _copy(op.get("value")))
    elif kind == "remove":
        con, key = _locate(doc, _op_str(op, "path", kind), kind)
        _remove(con, key)
    elif kind == "replace":
        path = _op_str(op, "path", kind)
        value = op.get("value")
        if path == "":
            if not isinstance(value, (dict, list)):
                raise _OpError("replace operation value must be object or array")
            return _copy(value)
        con, key = _locate(doc, path, kind)
        if isinstance(con, dict):
            con[key] = _copy(value)    # v4 does not check that the key exists
        else:
            con[_index(con, key)] = _copy(value)
    elif kind == "move":
        con, key = _locate(doc, _op_str(op, "from", kind), kind, "from path")
        value = _get(con, key)
        _remove(con, key)
        con, key = _locate(doc, _op_str(op, "path", kind), kind, "destination path")
        _add(con, key, value)
    elif kind == "copy":
        con, key = _locate(doc, _op_str(op, "from", kind), kind, "from path")
        value = _copy(_get(con, key))
        con, key = _locate(doc, _op_str(op, "path", kind), kind, "destination path")
        _add(con, key, value)
    elif kind == "test":
        path = _op_str(op, "path", kind)
        if path == "":
            current = doc
        else:
            con, key = _locate(doc, path, kind)
            current = _get(con, key)
        if current is None:
            ok = op.get("value") is None
        else:
            ok = "value" in op and _json_equal(current, op["value"])
        if not ok:
            raise _OpError(f"testing value {path} failed: test failed")
    else:
        raise _OpError(f"Unexpected kind: {kind if isinstance(kind, str) else 'unknown'}")
    return doc


def json_patch(doc: dict, patch: Any) -> dict:
    """Apply an RFC 6902 JSON patch (a list of operation objects) to ``doc``.

    A body that is not a list of objects is 400 BadRequest; more than 10000
    operations is 413; an operation that cannot be applied (missing path, bad index,
    failed test, unknown op) is 422 Invalid with the apiserver's generic message (the
    library's message is chained as ``__cause__``)."""
    if patch is None:           # JSON null decodes to an empty patch upstream
        return _copy(doc)
    if not isinstance(patch, list):
        raise bad_request(f"json: cannot unmarshal {_json_kind(patch)} into Go value of type "
                          "jsonpatch.Patch")
    for op in patch:
        if op is not None and not isinstance(op, dict):
            raise bad_request(f"json: cannot unmarshal {_json_kind(op)} into Go value of type "
                              "jsonpatch.Operation")
    if len(patch) > _MAX_JSON_PATCH_OPS:
        raise APIError(413, "RequestEntityTooLarge",
                       "Request entity too large: The allowed maximum operations in a JSON patch "
                       f"is {_MAX_JSON_PATCH_OPS}, got {len(patch)}")
    out: Any = _copy(doc)
    for op in patch:
        try:
            out = _apply_op(out, op)
        except _OpError as e:
            raise APIError(422, "Invalid", _REJECTED) from e
    if not isinstance(out, dict):
        raise APIError(422, "Invalid", _REJECTED) from _OpError("the patched document is not an object")
    return out


# ---------------------------------------------------------------------------------------
# JSON merge patch (RFC 7386), evanphx/json-patch v4 MergePatch semantics
# ---------------------------------------------------------------------------------------

def _prune_nulls(v: Any) -> Any:
    """A copy of a patch value with null object members dropped at every depth; nulls
    inside arrays are kept (json-patch >= 4.11)."""
    if isinstance(v, dict):
        return {k: _prune_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_prune_nulls(x) for x in v]
    return v


def _merge_into(target: dict, patch: dict) -> None:
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
            continue
        cur = target.get(k)
        if isinstance(cur, dict) and isinstance(v, dict):
            _merge_into(cur, v)
        elif isinstance(cur, dict):
            target[k] = _copy(v)          # an object replaced by a non-object is not pruned
        else:
            target[k] = _prune_nulls(v)


def merge_patch(doc: dict, patch: Any) -> dict:
    """Apply an RFC 7386 JSON merge patch: null deletes, objects merge recursively,
    anything else (arrays included) replaces. A non-object patch is 400."""
    if not isinstance(patch, dict):
        raise bad_request("Invalid JSON Patch")
    out = _copy(doc)
    _merge_into(out, patch)
    return out


# ---------------------------------------------------------------------------------------
# Strategic merge patch: patch metadata from the upstream OpenAPI schema
# ---------------------------------------------------------------------------------------

class _Meta:
    """Patch metadata of one field: the schema of its value (of its items, for a list),
    its strategy ("merge", "replace" or "") and merge key."""
    __slots__ = ("node", "strategy", "retain_keys", "merge_key")

    def __init__(self, node: _Node | None, strategy: str = "", retain_keys: bool = False,
                 merge_key: str = ""):
        self.node = node
        self.strategy = strategy
        self.retain_keys = retain_keys
        self.merge_key = merge_key


_NO_META = _Meta(None)


class _Node:
    """One resolved schema: field metadata is computed on first use and memoized."""
    __slots__ = ("props", "additional", "_fields")

    def __init__(self, raw: dict):
        self.props: dict | None = raw.get("properties")
        add = raw.get("additionalProperties")
        self.additional: dict | None = add if isinstance(add, dict) else None
        self._fields: dict[str, _Meta] = {}

    def knows(self, key: str) -> bool:
        """False only for a struct schema that lacks ``key`` (free-form maps know all)."""
        return self.props is None or key in self.props or self.additional is not None

    def field(self, key: str) -> _Meta:
        meta = self._fields.get(key)
        if meta is None:
            prop = self.props.get(key) if self.props else None
            if prop is not None:
                meta = _meta_of(prop, with_strategy=True)
            elif self.additional is not None:
                meta = _meta_of(self.additional, with_strategy=False)   # like a Go map
            else:
                meta = _NO_META
            self._fields[key] = meta
        return meta


_NODES: dict[int, _Node] = {}


def _node(raw: dict) -> _Node:
    # Schema dicts come from the process-wide cached definitions, so id() is stable.
    node = _NODES.get(id(raw))
    if node is None:
        node = _NODES[id(raw)] = _Node(raw)
    return node


def _meta_of(prop: dict, *, with_strategy: bool) -> _Meta:
    resolved = _schema.resolve(prop)
    items = resolved.get("items")
    node = _node(_schema.resolve(items)) if isinstance(items, dict) else _node(resolved)
    if not with_strategy:
        return _Meta(node)
    strategies = [s for s in prop.get("x-kubernetes-patch-strategy", "").split(",") if s]
    retain = "retainKeys" in strategies
    strategy = next((s for s in strategies if s != "retainKeys"), "")
    return _Meta(node, strategy, retain, prop.get("x-kubernetes-patch-merge-key", ""))


@functools.cache
def _root(group: str, version: str, kind: str) -> _Node | None:
    definition = _schema.definition_for(group, version, kind)
    return _node(definition) if definition is not None else None


# ---------------------------------------------------------------------------------------
# Strategic merge patch: errors, mapped the way interpretStrategicMergePatchError does
# ---------------------------------------------------------------------------------------

class _SMPError(Exception):
    """Anything but the errors below reaches the client as a bare 500 (reason unknown)."""

    def api_error(self) -> APIError:
        return APIError(500, "", str(self))


class _SMPBadRequest(_SMPError):
    def api_error(self) -> APIError:
        return bad_request(str(self))


class _SMPUnprocessable(_SMPError):
    def api_error(self) -> APIError:
        return APIError(422, "Invalid", _REJECTED)


_PATCH = "$patch"
_RETAIN_KEYS = "$retainKeys"
_ORDER_PREFIX = "$setElementOrder"
_DELETE_PREFIX = "$deleteFromPrimitiveList"

_ERR_RETAIN_KEYS = "invalid patch format of retainKeys"
_ERR_PRIMITIVE_LIST = "invalid patch format of primitive list"
_ERR_ORDER_LIST = "invalid patch format of setElementOrder list"


def _no_merge_key(m: dict, key: str) -> _SMPError:
    return _SMPError(f"map: {_go(m)} does not contain declared merge key: {key}")


def _bad_arg_type(expected: str, actual: Any) -> _SMPError:
    return _SMPError(f"expected a {expected}, but received a {_go_type(actual)}")


def _extract_key(key: str, prefix: str) -> str:
    head, sep, rest = key.partition("/")
    if not sep or head != prefix:
        raise _SMPBadRequest(_ERR_PRIMITIVE_LIST if prefix == _DELETE_PREFIX else _ERR_ORDER_LIST)
    return rest


# ---------------------------------------------------------------------------------------
# Strategic merge patch: the merge
# ---------------------------------------------------------------------------------------

_DROP = object()   # "this value is a directive map: leave the field / element out"


def _is_directive_key(k: str) -> bool:
    return k.startswith("$") and (k == _PATCH or k == _RETAIN_KEYS or k.startswith(_ORDER_PREFIX)
                                  or k.startswith(_DELETE_PREFIX))


def _fresh(v: Any) -> Any:
    """A patch value that lands where the original has nothing to merge with.

    Like upstream (discardNullValuesFromPatch + removeDirectives): null members are
    dropped, a map carrying ``$patch`` is left out; other directive keys are dropped
    (upstream's typed decoding drops them). A ``$patch: replace`` map keeps its content."""
    if isinstance(v, dict):
        if _PATCH in v:
            if v[_PATCH] != "replace":
                return _DROP
        out = {}
        for k, x in v.items():
            if x is None or _is_directive_key(k):
                continue
            y = _fresh(x)
            if y is not _DROP:
                out[k] = y
        return out
    if isinstance(v, list):
        return [y for y in map(_fresh, v) if y is not _DROP]
    return v


def _element_kind(*lists: list) -> str | None:
    """The single Go type of the elements of ``lists`` (sliceElementType)."""
    kind = None
    for lst in lists:
        for v in lst:
            t = _go_type(v)
            if kind is None:
                if isinstance(v, list):
                    raise _SMPUnprocessable("lists of lists are not supported")
                kind = t
            elif t != kind:
                raise _SMPError(f"list element types are not identical: {_go(list(lists))}")
    return kind


_MAP_KIND = "map[string]interface {}"


def _merge_map(original: dict, patch: dict, node: _Node | None) -> dict:
    """mergeMap: merge ``patch`` into ``original`` (which is ours to mutate)."""
    if _PATCH in patch:
        directive = patch[_PATCH]
        if directive == "replace":
            rest = {k: v for k, v in patch.items() if k != _PATCH}
            return _merge_map({}, rest, node)
        if directive == "delete":
            return {}
        raise _SMPError(f"unknown patch type: {_go(directive)} in map: {_go(patch)}")

    if _RETAIN_KEYS in patch:
        _apply_retain_keys(original, patch)

    done: set[str] = set()
    for key, order in patch.items():
        if key.startswith(_ORDER_PREFIX):
            _apply_element_order(original, patch, key, order, node, done)

    deletions: list[tuple[str, Any]] = []
    for key, value in patch.items():
        if key in done or key == _RETAIN_KEYS or key.startswith(_ORDER_PREFIX):
            continue
        if key.startswith(_DELETE_PREFIX):
            deletions.append((_extract_key(key, _DELETE_PREFIX), value))
            continue
        if value is None:
            original.pop(key, None)
            continue
        if key.startswith("$") and node is not None and not node.knows(key):
            continue       # not a field: upstream's typed decoding would drop it
        current = original.get(key, _DROP)
        if current is _DROP or current is None or _go_type(current) != _go_type(value):
            fresh = _fresh(value)
            if fresh is _DROP:
                original.pop(key, None)
            else:
                original[key] = fresh
            continue
        if isinstance(current, dict):
            meta = node.field(key) if node else _NO_META
            if meta.strategy == "replace":
                original[key] = _merge_map({}, value, meta.node)
            else:
                original[key] = _merge_map(current, value, meta.node)
        elif isinstance(current, list):
            meta = node.field(key) if node else _NO_META
            if meta.strategy == "merge":
                original[key] = _merge_list(current, value, meta)
            else:
                original[key] = _fresh(value)
        else:
            original[key] = value

    # $deleteFromPrimitiveList/<field>, after the field's own additions (upstream runs
    # them in Go map order; kubectl never sends the same item in both).
    for key, values in deletions:
        if values is None:
            original.pop(key, None)       # upstream: a null delete list clears the field
            continue
        current = original.get(key)
        if isinstance(current, list) and isinstance(values, list):
            gone = {_hkey(v) for v in values}
            original[key] = [v for v in current if _hkey(v) not in gone]
    return original


def _apply_retain_keys(original: dict, patch: dict) -> None:
    """$retainKeys: every field the patch sets must be listed; the original keeps only
    the listed fields."""
    retain = patch[_RETAIN_KEYS]
    if not isinstance(retain, list):
        raise _SMPBadRequest(_ERR_RETAIN_KEYS)
    keep = {k for k in retain if isinstance(k, str)}
    for k, v in patch.items():
        if (k == _RETAIN_KEYS or v is None or k.startswith(_DELETE_PREFIX)
                or k.startswith(_ORDER_PREFIX)):
            continue
        if k not in keep:
            raise _SMPBadRequest(_ERR_RETAIN_KEYS)
    for k in [k for k in original if k not in keep]:
        del original[k]


def _validate_element_order(patch_list: list, order: list, merge_key: str) -> None:
    """The patch list's items must appear in $setElementOrder, in the same relative order."""
    if not order or not patch_list:
        return
    if merge_key:
        for v in patch_list:
            if not isinstance(v, dict):
                raise _bad_arg_type(_MAP_KIND, v)
        items = [v for v in patch_list if v.get(_PATCH) != "delete"]
    else:
        items = patch_list
    i = j = 0
    while i < len(items) and j < len(order):
        item = items[i]
        if isinstance(item, dict) and _PATCH in item:
            i += 1
            continue
        if merge_key:
            wanted = order[j]
            if not isinstance(wanted, dict):
                raise _bad_arg_type(_MAP_KIND, wanted)
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            if merge_key not in wanted:
                raise _no_merge_key(wanted, merge_key)
            same = _hkey(item[merge_key]) == _hkey(wanted[merge_key])
        else:
            same = _hkey(item) == _hkey(order[j])
        if same:
            i += 1
        j += 1
    if i < len(items):
        raise _SMPError(f"the order in patch list:\n{_go(patch_list)}\n doesn't match "
                        f"{_ORDER_PREFIX} list:\n{_go(order)}")


def _apply_element_order(original: dict, patch: dict, key: str, order: Any,
                         node: _Node | None, done: set[str]) -> None:
    """$setElementOrder/<field>: merge the field, then order patch items as listed and
    interleave the server-only items by their place in the live list."""
    if not isinstance(order, list):
        raise _bad_arg_type("[]interface {}", order)
    field = _extract_key(key, _ORDER_PREFIX)
    has_original, has_patch = field in original, field in patch
    current, value = original.get(field), patch.get(field)
    if has_original and not isinstance(current, list):
        raise _bad_arg_type("[]interface {}", current)
    if has_patch and not isinstance(value, list):
        raise _bad_arg_type("[]interface {}", value)
    meta = node.field(field) if node else _NO_META
    merge_key = meta.merge_key
    _validate_element_order(value or [], order, merge_key)
    if has_patch:
        done.add(field)
    if has_original and has_patch:
        merged = _merge_list(current, value, meta) if meta.strategy == "merge" else _fresh(value)
    elif has_original:
        merged = current
    elif has_patch:
        merged = _fresh(value)
    else:
        return
    kind = _element_kind(current or [], value or [])
    if kind is None or not merged:
        original[field] = merged
        return
    patch_items, server_only = _partition(merged, order, merge_key)
    original[field] = _normalize_order(patch_items, server_only, order, current or [],
                                       merge_key, kind)


def _merge_list(original: list, patch: list, meta: _Meta) -> list:
    """mergeSlice for a list with the "merge" strategy."""
    if not original and not patch:
        return original
    kind = _element_kind(original, patch)
    merge_key = meta.merge_key
    if kind != _MAP_KIND:
        merged = _dedupe(original + patch)
        patch_items, server_only = _partition(merged, patch, "")
        return _normalize_order(patch_items, server_only, patch, original, "", kind)
    if not merge_key:
        raise _SMPError("cannot merge lists without merge key")
    original, patch = _special_elements(original, patch, merge_key)
    merged = list(original)
    for item in patch:
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
        want = _hkey(item[merge_key])
        for i, existing in enumerate(merged):
            if merge_key in existing and _hkey(existing[merge_key]) == want:
                merged[i] = _merge_map(existing, item, meta.node)
                break
        else:
            merged.append(_fresh(item))
    patch_items, server_only = _partition(merged, patch, merge_key)
    return _normalize_order(patch_items, server_only, patch, original, merge_key, kind)


def _special_elements(original: list, patch: list, merge_key: str) -> tuple[list, list]:
    """List items carrying $patch: delete removes every original item with that key,
    replace makes the remaining patch items the whole list, merge is refused."""
    rest: list = []
    replace = False
    for item in patch:
        if _PATCH not in item:
            rest.append(item)
            continue
        directive = item[_PATCH]
        if directive == "delete":
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            gone = _hkey(item[merge_key])
            original = [o for o in original
                        if not (merge_key in o and _hkey(o[merge_key]) == gone)]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise _SMPError("merging lists cannot yet be specified in the patch")
        else:
            raise _SMPError(f"unknown patch type: {_go(directive)} in map: {_go(item)}")
    if replace:
        return [_fresh(item) for item in rest], []
    return original, rest


def _dedupe(items: list) -> list:
    seen: set = set()
    out = []
    for v in items:
        h = _hkey(v)
        if h not in seen:
            seen.add(h)
            out.append(v)
    return out


def _key_of(merge_key: str):
    if not merge_key:
        return _hkey
    return lambda item: _hkey(item.get(merge_key)) if isinstance(item, dict) else _hkey(None)


def _partition(merged: list, by: list, merge_key: str) -> tuple[list, list]:
    """Split ``merged`` into the items present in ``by`` and the server-only rest."""
    if merge_key:
        for v in merged:
            if not isinstance(v, dict):
                raise _bad_arg_type(_MAP_KIND, v)
            if merge_key not in v:
                raise _no_merge_key(v, merge_key)
        present = set()
        for i, v in enumerate(by):
            if not isinstance(v, dict):
                raise _SMPError(f"value for key {i} is not a map")
            if merge_key in v:
                present.add(_hkey(v[merge_key]))
        key = _key_of(merge_key)
    else:
        key = _hkey
        present = {_hkey(v) for v in by}
    inside, outside = [], []
    for v in merged:
        (inside if key(v) in present else outside).append(v)
    return inside, outside


def _positions(order: list, key) -> dict:
    pos: dict = {}
    for i, v in enumerate(order):
        pos.setdefault(key(v), i)
    return pos


def _sorted_by(items: list, order: list, merge_key: str, kind: str, key) -> list:
    """normalizeSliceOrder: stable sort by first position in ``order``."""
    if kind == _MAP_KIND:
        for lst in (items, order):
            for v in lst:
                if not isinstance(v, dict):
                    raise _bad_arg_type(_MAP_KIND, v)
                if merge_key not in v:
                    raise _no_merge_key(v, merge_key)
    pos = _positions(order, key)
    end = len(order)
    return sorted(items, key=lambda v: pos.get(key(v), end))


def _normalize_order(patch_items: list, server_only: list, patch_order: list,
                     server_order: list, merge_key: str, kind: str) -> list:
    """Patch items in patch order, server-only items in live order, then interleaved:
    a server-only item goes first only while it sits before the next patch item in the
    live list, so items new to the list come before the server-only items after them."""
    key = _key_of(merge_key) if kind == _MAP_KIND else _hkey
    right = _sorted_by(patch_items, patch_order, merge_key, kind, key)
    left = _sorted_by(server_only, server_order, merge_key, kind, key)
    live = _positions(server_order, key)
    out = []
    i = j = 0
    while i < len(left) and j < len(right):
        li, rj = live.get(key(left[i])), live.get(key(right[j]))
        if li is not None and rj is not None and li < rj:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    out.extend(left[i:])
    out.extend(right[j:])
    return out


def strategic_merge_patch(doc: dict, patch: Any, group: str, version: str, kind: str) -> dict:
    """Apply a strategic merge patch to ``doc``, an object of (group, version, kind).

    A kind without an upstream schema (a custom resource) is 415, as the apiserver
    refuses the content type for CRs. Directive errors follow the apiserver: malformed
    directive lists are 400, lists of lists 422, anything else a bare 500."""
    root = _root(group, version, kind)
    if root is None:
        raise _unsupported(CUSTOM_PATCH_TYPES)
    if patch is None:           # JSON null decodes to an empty patch upstream
        return _copy(doc)
    if not isinstance(patch, dict):
        raise bad_request(f"json: cannot unmarshal {_json_kind(patch)} into Go value of type "
                          "map[string]interface {}")
    try:
        return _merge_map(_copy(doc), patch, root)
    except _SMPError as e:
        raise e.api_error() from e


# ---------------------------------------------------------------------------------------
# Strategic merge patch: creating a two-way patch (the client half)
# ---------------------------------------------------------------------------------------

def _sort_scalars(items: list) -> list:
    return sorted(items, key=_go)


def _diff_maps(original: dict, modified: dict, node: _Node | None, retain_keys: bool) -> dict:
    patch: dict = {}
    retained: list = []
    for key, mod in modified.items():
        if retain_keys and mod is not None:
            retained.append(key)
        if key not in original:
            patch[key] = _copy(mod)
            continue
        orig = original[key]
        if key == _PATCH:
            if not isinstance(orig, str) or not isinstance(mod, str):
                raise _SMPError(f"invalid value for special key: {_PATCH}")
            if orig != mod:
                patch[key] = mod
            continue
        if _go_type(orig) != _go_type(mod):
            patch[key] = _copy(mod)
            continue
        if isinstance(orig, dict):
            meta = node.field(key) if node else _NO_META
            if meta.strategy == "replace":
                patch[key] = _copy(mod)
            else:
                sub = _diff_maps(orig, mod, meta.node, meta.retain_keys)
                if sub:
                    patch[key] = sub
        elif isinstance(orig, list):
            meta = node.field(key) if node else _NO_META
            if meta.strategy == "merge":
                add, delete, order = _diff_lists(orig, mod, meta)
                if add:
                    patch[key] = add
                if delete:
                    patch[f"{_DELETE_PREFIX}/{key}"] = delete
                if order:
                    patch[f"{_ORDER_PREFIX}/{key}"] = order
            elif not _json_equal(orig, mod):
                patch[key] = _copy(mod)
        elif not _json_equal(orig, mod):
            patch[key] = mod
    for key in original:
        if key not in modified:
            patch[key] = None
    if retained and (patch or any(v is not None and k not in modified for k, v in original.items())):
        patch[_RETAIN_KEYS] = _sort_scalars(retained)
    return patch


def _diff_lists(original: list, modified: list, meta: _Meta) -> tuple[list, list, list]:
    if not original:
        return (_copy(modified) if modified else []), [], []
    kind = _element_kind(original, modified)
    merge_key = meta.merge_key
    if kind == _MAP_KIND:
        if not merge_key:
            raise _SMPError("cannot merge lists without merge key")
        changes, deletions = _diff_lists_of_maps(original, modified, meta)
        key = _key_of(merge_key)
        changes = _sorted_by(changes, modified, merge_key, kind, key)
        same_order = (len(original) == len(modified)
                      and all(key(a) == key(b) for a, b in zip(original, modified)))
        changes += deletions
        order = ([{merge_key: m[merge_key]} for m in modified]
                 if changes or not same_order else [])
        return changes, [], order
    additions, deletions = _diff_lists_of_scalars(original, modified)
    additions = _sorted_by(additions, modified, "", kind, _hkey)
    order = list(modified) if deletions or not _json_equal(original, modified) else []
    return additions, deletions, order


def _diff_lists_of_scalars(original: list, modified: list) -> tuple[list, list]:
    have = {_hkey(v) for v in original}
    want = {_hkey(v) for v in modified}
    additions = _dedupe([v for v in modified if _hkey(v) not in have])
    deletions = _dedupe([v for v in original if _hkey(v) not in want])
    return _sort_scalars(additions), _sort_scalars(deletions)


def _diff_lists_of_maps(original: list, modified: list, meta: _Meta) -> tuple[list, list]:
    merge_key = meta.merge_key
    for item in (*original, *modified):
        if not isinstance(item, dict):
            raise _bad_arg_type(_MAP_KIND, item)
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
    before = {_hkey(o[merge_key]): o for o in original}
    after = {_hkey(m[merge_key]) for m in modified}
    changes, deletions = [], []
    for item in sorted(modified, key=lambda m: _go(m[merge_key])):
        old = before.get(_hkey(item[merge_key]))
        if old is None:
            changes.append(_copy(item))
            continue
        sub = _diff_maps(old, item, meta.node, meta.retain_keys)
        if sub:
            sub[merge_key] = item[merge_key]
            changes.append(sub)
    for item in sorted(original, key=lambda o: _go(o[merge_key])):
        if _hkey(item[merge_key]) not in after:
            deletions.append({merge_key: item[merge_key], _PATCH: "delete"})
    return changes, deletions


def create_two_way_merge_patch(original: dict, modified: dict, group: str, version: str,
                               kind: str) -> dict:
    """The strategic merge patch that turns ``original`` into ``modified`` (what kubectl
    computes for ``edit``): changed fields, null for removed ones, merge lists as
    changed items plus ``$patch: delete`` items, ``$deleteFromPrimitiveList`` and
    ``$setElementOrder`` lists, ``$retainKeys`` for retainKeys fields."""
    root = _root(group, version, kind)
    if root is None:
        raise _unsupported(CUSTOM_PATCH_TYPES)
    try:
        return _diff_maps(original, modified, root, False)
    except _SMPError as e:
        raise e.api_error() from e
