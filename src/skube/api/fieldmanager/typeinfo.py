"""What structured-merge-diff needs to know about a schema, compiled lazily.

A :class:`TypeNode` says how a value merges: a scalar, a map (granular or
atomic, with declared fields and/or an element type), a list (atomic, set, or
associative "map" list with key fields), or *deduced* (``ANY``: maps granular,
lists atomic — the type of untyped JSON). Nodes are built on first access, so
recursive schemas (JSONSchemaProps) and the big built-in definitions cost only
what a request touches; built-in nodes are shared process-wide.

Rules follow kube-openapi's schemaconv: ``x-kubernetes-list-type`` decides list
merging, falling back (built-ins only) to ``x-kubernetes-patch-strategy: merge``
(+ merge key ⇒ map list, else set); anything else is atomic.
``x-kubernetes-map-type: atomic`` makes a map atomic, and a property-level value
overrides its definition's. IntOrString/Quantity (``oneOf`` of scalars) and
``x-kubernetes-int-or-string`` are scalars.
"""
from __future__ import annotations

import functools

from skube.api import schema as openapi

SCALAR, MAP, LIST, ANY = 0, 1, 2, 3
ATOMIC, SET, ASSOCIATIVE = 0, 1, 2

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

# Upstream's OpenAPI carries `default` markers on a few list-map key fields (so an
# item that omits the key still has one); the bundled definitions drop defaults.
_BUILTIN_KEY_DEFAULTS: dict[str, dict[str, object]] = {
    "io.k8s.api.core.v1.ContainerPort": {"protocol": "TCP"},
    "io.k8s.api.core.v1.ServicePort": {"protocol": "TCP"},
    "io.k8s.api.core.v1.LocalObjectReference": {"name": ""},
}

_SCALAR_TYPES = frozenset(("string", "integer", "number", "boolean"))


class TypeNode:
    """One schema position. ``child(name)`` gives ``(type, declared)`` for a map entry."""

    __slots__ = ("kind", "atomic", "list_kind", "keys", "key_defaults", "nullable", "required",
                 "_props", "_elem_raw", "_elem", "_open", "_builtin", "_children")

    def __init__(self, kind: int):
        self.kind = kind
        self.atomic = False
        self.list_kind = ATOMIC
        self.keys: tuple[str, ...] = ()
        self.key_defaults: dict[str, object] = {}
        self.nullable = False
        self.required: tuple[str, ...] = ()
        self._props: dict | None = None
        self._elem_raw: object = None
        self._elem: TypeNode | None = None
        self._open = False          # undeclared map entries are deduced, not errors
        self._builtin = True
        self._children: dict[str, tuple[TypeNode | None, bool]] = {}

    @property
    def elem(self) -> "TypeNode":
        """Element type of a list, or of a map's undeclared entries."""
        e = self._elem
        if e is None:
            raw = self._elem_raw
            e = DEDUCED if raw is None or raw is True else compile_schema(raw, self._builtin)
            self._elem = e
        return e

    def child(self, name: str) -> tuple["TypeNode | None", bool]:
        """Type of map entry ``name`` and whether it is a declared (struct) field.

        ``(None, False)`` means the entry is not allowed by the schema."""
        c = self._children.get(name)
        if c is None:
            if self.kind == ANY:
                c = (DEDUCED, False)
            else:
                props = self._props
                if props is not None and name in props:
                    c = (compile_schema(props[name], self._builtin), True)
                elif self._elem_raw is not None or self._open:
                    c = (self.elem, False)
                else:
                    c = (None, False)
            self._children[name] = c
        return c

    def has_field(self, name: str) -> bool:
        return self._props is not None and name in self._props

    @property
    def has_props(self) -> bool:
        return bool(self._props)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        names = {SCALAR: "scalar", MAP: "map", LIST: "list", ANY: "deduced"}
        return f"<TypeNode {names[self.kind]}{' atomic' if self.atomic else ''}>"


DEDUCED = TypeNode(ANY)
_SCALAR_NODE = TypeNode(SCALAR)


def _kind_of(raw: dict) -> int:
    t = raw.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), None)
    if t == "array" or (t is None and "items" in raw):
        return LIST
    if t in _SCALAR_TYPES or raw.get("x-kubernetes-int-or-string"):
        return SCALAR
    if t == "object" or "properties" in raw or "additionalProperties" in raw:
        if "properties" in raw or isinstance(raw.get("additionalProperties"), dict):
            return MAP
        return ANY      # RawExtension, free-form objects
    alts = raw.get("oneOf") or raw.get("anyOf")
    if alts and all(_kind_of(a) == SCALAR for a in alts if isinstance(a, dict)):
        return SCALAR
    return ANY


@functools.cache
def _builtin_definition(name: str, map_type: str | None) -> TypeNode:
    return _build(openapi.definitions()[name], True, map_type)


def compile_schema(raw: object, builtin: bool) -> TypeNode:
    """TypeNode for a schema dict (a built-in property or a CRD structural schema)."""
    if not isinstance(raw, dict):
        return DEDUCED
    ref = raw.get("$ref")
    if ref is None:
        all_of = raw.get("allOf")
        if all_of and len(all_of) == 1 and isinstance(all_of[0], dict) and "$ref" in all_of[0]:
            ref = all_of[0]["$ref"]
    if ref is not None:
        name = ref.rsplit("/", 1)[-1]
        if name in openapi.definitions():
            return _builtin_definition(name, raw.get("x-kubernetes-map-type"))
        return DEDUCED
    return _build(raw, builtin)


def _build(raw: dict, builtin: bool, map_type: str | None = None) -> TypeNode:
    kind = _kind_of(raw)
    if kind == SCALAR:
        if raw.get("nullable"):
            node = TypeNode(SCALAR)
            node.nullable = True
            return node
        return _SCALAR_NODE
    if kind == ANY:
        return DEDUCED
    node = TypeNode(kind)
    node._builtin = builtin
    node.nullable = bool(raw.get("nullable"))
    if kind == MAP:
        node._props = raw.get("properties") or None
        node.required = tuple(raw.get("required") or ())
        add = raw.get("additionalProperties")
        if isinstance(add, dict):
            node._elem_raw = add
        elif add is True or raw.get("x-kubernetes-preserve-unknown-fields"):
            node._open = True
        node.atomic = (map_type or raw.get("x-kubernetes-map-type")) == "atomic"
        return node
    # list
    items = raw.get("items")
    node._elem_raw = items if isinstance(items, dict) else None
    list_type = raw.get("x-kubernetes-list-type")
    keys: list[str] = []
    if list_type == "map":
        node.list_kind = ASSOCIATIVE
        keys = list(raw.get("x-kubernetes-list-map-keys") or ())
        if not keys and raw.get("x-kubernetes-patch-merge-key"):
            keys = [raw["x-kubernetes-patch-merge-key"]]
    elif list_type == "set":
        node.list_kind = SET
    elif list_type is None and builtin and "merge" in str(raw.get("x-kubernetes-patch-strategy", "")):
        merge_key = raw.get("x-kubernetes-patch-merge-key")
        if merge_key:
            node.list_kind = ASSOCIATIVE
            keys = [merge_key]
        else:
            node.list_kind = SET
    else:
        node.list_kind = ATOMIC
    if node.list_kind == ASSOCIATIVE:
        if not keys:            # a map list without keys behaves as a set upstream
            node.list_kind = SET
        node.keys = tuple(sorted(keys))
        node.key_defaults = _key_defaults(node._elem_raw, node.keys)
    node.atomic = node.list_kind == ATOMIC
    return node


def _key_defaults(items: object, keys: tuple[str, ...]) -> dict[str, object]:
    if not isinstance(items, dict):
        return {}
    out: dict[str, object] = {}
    ref = items.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        out.update(_BUILTIN_KEY_DEFAULTS.get(name, {}))
        items = openapi.definitions().get(name, {})
    props = items.get("properties") or {}
    for k in keys:
        p = props.get(k)
        if isinstance(p, dict) and "default" in p:
            out[k] = p["default"]
    return out


@functools.cache
def _builtin_root(group: str, version: str, kind: str) -> TypeNode | None:
    d = openapi.definition_for(group, version, kind)
    return None if d is None else _build(d, True)


_custom_roots: dict[int, tuple[dict, TypeNode]] = {}
_DEDUCED_ROOT_SCHEMA = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def root_type(group: str, version: str, kind: str, schema: dict | None) -> TypeNode:
    """Type of a whole object: a CRD's openAPIV3Schema when given, else the built-in
    definition, else deduced. ``metadata`` is always ObjectMeta."""
    if schema is None:
        node = _builtin_root(group, version, kind)
        if node is not None:
            return node
        schema = _DEDUCED_ROOT_SCHEMA
    hit = _custom_roots.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    props = dict(schema.get("properties") or {})
    props["metadata"] = {"$ref": "#/$defs/" + OBJECT_META}
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    root = dict(schema)
    root["properties"] = props
    root.setdefault("type", "object")
    node = _build(root, False)
    if len(_custom_roots) > 512:
        _custom_roots.clear()
    _custom_roots[id(schema)] = (schema, node)   # holding `schema` keeps its id unique
    return node
