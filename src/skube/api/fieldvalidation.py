"""fieldValidation=Strict|Warn: finding fields the schema of a kind does not know.

Built-in kinds are checked against the upstream definitions (``schema.py``), custom
kinds against their CRD version's ``openAPIV3Schema`` (honouring
``x-kubernetes-preserve-unknown-fields`` and ``additionalProperties``) with the root
``apiVersion``/``kind``/``metadata`` known as upstream's CRD handler does.

Paths are printed as upstream's strict JSON decoder prints them
(``spec.containers[0].imagePullPolcy``, map values as ``spec.selector.key``) and the
errors read like kube-apiserver's::

    Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.foo"

Each schema is compiled once into small nodes (a dict of known properties per
object), so a typical pod is checked in tens of microseconds.
"""
from __future__ import annotations

import functools
from typing import Any

from . import errors
from . import schema as upstream
from .registry import ResourceInfo

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


class Node:
    """What is known about one place in an object.

    ``props``: known property name -> child Node (None child = anything below is fine);
    ``props is None`` means the object accepts any key. ``items``/``values`` describe
    array elements and map values. ``preserve``: unknown keys here are kept, not
    reported (known ones are still checked below)."""

    __slots__ = ("props", "items", "values", "preserve")

    def __init__(self) -> None:
        self.props: dict[str, Node | None] | None = None
        self.items: Node | None = None
        self.values: Node | None = None
        self.preserve = False

    @property
    def trivial(self) -> bool:
        return self.props is None and self.items is None and self.values is None


# --------------------------------------------------------------------------- built-in

_builtin_nodes: dict[str, Node | None] = {}


def _builtin_ref(name: str) -> Node | None:
    if name in _builtin_nodes:
        return _builtin_nodes[name]
    d = upstream.definitions().get(name)
    if d is None:
        _builtin_nodes[name] = None
        return None
    node = Node()
    _builtin_nodes[name] = node          # placeholder first: definitions are recursive
    _fill_builtin(node, d)
    if node.trivial:
        _builtin_nodes[name] = None
    return _builtin_nodes[name]


def _builtin_schema(s: dict) -> Node | None:
    ref = s.get("$ref")
    if ref:
        return _builtin_ref(ref.rsplit("/", 1)[-1])
    node = Node()
    _fill_builtin(node, s)
    return None if node.trivial else node


def _fill_builtin(node: Node, s: dict) -> None:
    props = s.get("properties")
    if props:
        node.props = {k: _builtin_schema(v) for k, v in props.items()}
    items = s.get("items")
    if isinstance(items, dict):
        node.items = _builtin_schema(items)
    addl = s.get("additionalProperties")
    if isinstance(addl, dict):
        node.values = _builtin_schema(addl)


@functools.cache
def builtin_node(group: str, version: str, kind: str) -> Node | None:
    name = upstream.gvk_index().get((group, version, kind))
    return _builtin_ref(name) if name else None


# --------------------------------------------------------------------------- custom

def _crd_node(s: Any, root: bool = False) -> Node | None:
    """Compile a structural schema node; None means nothing below can be unknown."""
    if not isinstance(s, dict):
        return None
    node = Node()
    node.preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
    embedded = bool(s.get("x-kubernetes-embedded-resource"))
    props = s.get("properties")
    addl = s.get("additionalProperties")
    items = s.get("items")
    if isinstance(items, dict):
        node.items = _crd_node(items)
    if isinstance(addl, dict):
        node.values = _crd_node(addl)       # a map: every key is fine, values are checked
    if props is not None or embedded or root:
        node.props = {k: _crd_node(v) for k, v in (props or {}).items()}
        if embedded or root:
            node.props.setdefault("apiVersion", None)
            node.props.setdefault("kind", None)
            node.props["metadata"] = _builtin_ref(OBJECT_META)
    elif addl is None and not node.preserve and s.get("type") == "object":
        # an object with neither properties nor additionalProperties: structural
        # pruning drops every field in it
        node.props = {}
    if node.trivial:
        return None
    return node


_custom_cache: dict[int, tuple[dict, Node]] = {}


def custom_node(crd_schema: dict | None) -> Node:
    """The compiled node of a CRD version's schema (cached by schema identity)."""
    if not crd_schema:
        n = Node()
        n.props = {"apiVersion": None, "kind": None, "metadata": _builtin_ref(OBJECT_META)}
        n.preserve = True
        return n
    hit = _custom_cache.get(id(crd_schema))
    if hit is not None and hit[0] is crd_schema:
        return hit[1]
    node = _crd_node(crd_schema, root=True) or Node()
    if len(_custom_cache) > 512:
        _custom_cache.clear()
    _custom_cache[id(crd_schema)] = (crd_schema, node)
    return node


def node_for(info: ResourceInfo) -> Node | None:
    if info.custom:
        return custom_node(info.schema)
    return builtin_node(info.group, info.version, info.kind)


# --------------------------------------------------------------------------- walking

def _walk(node: Node, value: Any, path: str, out: list[str]) -> None:
    if isinstance(value, dict):
        props = node.props
        if props is not None:
            for k, v in value.items():
                if k in props:
                    child = props[k]
                    if child is not None and isinstance(v, (dict, list)):
                        _walk(child, v, f"{path}.{k}" if path else k, out)
                elif node.values is not None:
                    if isinstance(v, (dict, list)):
                        _walk(node.values, v, f"{path}.{k}" if path else k, out)
                elif not node.preserve:
                    out.append(f"{path}.{k}" if path else k)
        elif node.values is not None:
            for k, v in value.items():
                if isinstance(v, (dict, list)):
                    _walk(node.values, v, f"{path}.{k}" if path else k, out)
    elif isinstance(value, list):
        items = node.items
        if items is not None:
            for i, v in enumerate(value):
                if isinstance(v, (dict, list)):
                    _walk(items, v, f"{path}[{i}]", out)


def unknown_paths(node: Node | None, obj: Any) -> list[str]:
    out: list[str] = []
    if node is not None:
        _walk(node, obj, "", out)
    return out


def unknown_fields(info: ResourceInfo, obj: dict) -> list[str]:
    """Paths of fields in ``obj`` its kind's schema does not know, in document order
    (built-in) or sorted (custom resources, as upstream's pruning reports them)."""
    node = node_for(info)
    paths = unknown_paths(node, obj)
    if info.custom:
        paths.sort()
    return paths


# --------------------------------------------------------------------------- messages

def strict_decoding_message(fields: list[str]) -> str:
    return "strict decoding error: " + ", ".join(f'unknown field "{f}"' for f in fields)


def strict_error(info: ResourceInfo, name: str, fields: list[str], patch: bool = False) -> errors.APIError:
    """400 BadRequest for fieldValidation=Strict, worded as kube-apiserver words it.

    Create and update: ``<Kind> in version "<v>" cannot be handled as a <Kind>: strict
    decoding error: unknown field "spec.foo"``; patch (``patch=True``): only the part from
    ``strict decoding error:`` on, as upstream's patch handler reports it."""
    msg = strict_decoding_message(fields)
    if not patch:
        msg = f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: {msg}'
    return errors.bad_request(msg)


def warnings(fields: list[str]) -> list[str]:
    """fieldValidation=Warn: one warning text per unknown field, e.g. ``unknown field "spec.foo"``.
    Send each as a ``Warning`` header with ``warning_header(text)``."""
    return [f'unknown field "{f}"' for f in fields]


def warning_header(text: str) -> str:
    """The Warning header value upstream sends: ``299 - "<text>"`` with the text quoted
    like Go's strconv.Quote (so ``"`` and ``\\`` are escaped)."""
    quoted = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'299 - "{quoted}"'
