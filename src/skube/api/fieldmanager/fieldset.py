"""Field sets in their wire form: the FieldsV1 trie, used directly as the data structure.

A set is a dict from path elements to child nodes, exactly as in
``metadata.managedFields[].fieldsV1``. Path elements are strings:

* ``f:<name>`` — a struct field or map key,
* ``k:<json>`` — an associative-list item by its key fields, e.g. ``k:{"name":"c"}``
  (fields sorted by name, compact JSON),
* ``v:<json>`` — a set item by value, e.g. ``v:"x"``,
* ``i:<n>``    — a list item by index.

A child node ``{}`` means "this path is in the set"; a node with children is in the
set itself only when it holds ``"."`` (so ``{".": {}, "f:a": {}}`` owns the node and
``a``, while ``{"f:a": {}}`` owns only ``a``). The root has no membership.

Operations never mutate their inputs and may share unchanged subtrees with them;
:func:`canonical` makes an independent, sorted copy for storage.
"""
from __future__ import annotations

import functools
import json
from typing import Iterator

import orjson

Node = dict


def dumps(value: object) -> str:
    """Compact JSON the way Go's encoder writes it (HTML-safe escapes)."""
    try:
        s = orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):     # integers beyond 64 bits and the like
        s = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    if "<" in s or ">" in s or "&" in s or "\u2028" in s or "\u2029" in s:
        s = (s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
             .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    return s


def is_member(node: Node) -> bool:
    return not node or "." in node


def has_children(node: Node) -> bool:
    return len(node) > ("." in node)


def _with_self(node: Node) -> Node:
    if not node or "." in node:
        return node
    out = {".": {}}
    out.update(node)
    return out


def as_member(node: Node | None) -> Node:
    """``node`` with its own path added to the set."""
    return {} if node is None else _with_self(node)


# --- set algebra -------------------------------------------------------------

def union(a: Node, b: Node) -> Node:
    """Every path in ``a`` or ``b``."""
    if not b or a is b:
        return a
    if not a:
        return b
    out = dict(a)
    for k, y in b.items():
        x = out.get(k)
        out[k] = y if x is None else _union_node(x, y)
    return out


def _union_node(x: Node, y: Node) -> Node:
    if x is y:
        return x
    if not x:
        return _with_self(y) if y else x
    if not y:
        return _with_self(x)
    out = dict(x)
    for k, yv in y.items():
        if k == ".":
            out["."] = {}
            continue
        xv = out.get(k)
        out[k] = yv if xv is None else _union_node(xv, yv)
    return out


def difference(a: Node, b: Node) -> Node:
    """Paths of ``a`` not in ``b`` (non-recursive: removing a path keeps its children)."""
    if not a or not b:
        return a
    out = None
    for k, y in b.items():
        x = a.get(k)
        if x is None or k == ".":
            continue
        r = _diff_node(x, y)
        if r is x:
            continue
        if out is None:
            out = dict(a)
        if r is None:
            del out[k]
        else:
            out[k] = r
    return a if out is None else out


def _diff_node(x: Node, y: Node) -> Node | None:
    member = (not x or "." in x) and not (not y or "." in y)
    if not has_children(x):
        return x if member else None
    base = x
    if has_children(y):
        new = None
        for k, yv in y.items():
            if k == ".":
                continue
            xv = x.get(k)
            if xv is None:
                continue
            r = _diff_node(xv, yv)
            if r is xv:
                continue
            if new is None:
                new = dict(x)
            if r is None:
                del new[k]
            else:
                new[k] = r
        if new is not None:
            base = new
    if not has_children(base):
        return {} if member else None
    if member:
        return _with_self(base)
    if "." in base:
        base = {k: v for k, v in base.items() if k != "."}
    return base


def intersection(a: Node, b: Node) -> Node:
    """Paths in both ``a`` and ``b``."""
    if not a or not b:
        return {}
    if len(b) < len(a):
        a, b = b, a
    out: Node = {}
    for k, x in a.items():
        if k == ".":
            continue
        y = b.get(k)
        if y is None:
            continue
        r = _inter_node(x, y)
        if r is not None:
            out[k] = r
    return out


def _inter_node(x: Node, y: Node) -> Node | None:
    member = (not x or "." in x) and (not y or "." in y)
    children = intersection(x, y) if has_children(x) and has_children(y) else {}
    if not children:
        return {} if member else None
    if member:
        children = _with_self(children)
    return children


def remove_top(a: Node, names: frozenset[str] | set[str], keep_only: bool = False) -> Node:
    """Drop (or, with ``keep_only``, keep just) whole top-level fields ``f:<name>``."""
    if not a:
        return a
    if keep_only:
        return {k: v for k, v in a.items() if k[2:] in names and k.startswith("f:")}
    if not any(("f:" + n) in a for n in names):
        return a
    return {k: v for k, v in a.items() if not (k.startswith("f:") and k[2:] in names)}


# Paths no manager ever owns (apimachinery's stripMetaManager): removed as members,
# not recursively, so ``metadata``'s children stay owned while ``metadata`` is not.
_STRIP_TOP = ("f:apiVersion", "f:kind")
_STRIP_META = ("f:name", "f:namespace", "f:creationTimestamp", "f:selfLink", "f:uid",
               "f:clusterName", "f:generation", "f:managedFields", "f:resourceVersion")


def strip_meta(a: Node) -> Node:
    if not a:
        return a
    out = a
    for k in _STRIP_TOP:
        if k in out:
            if out is a:
                out = dict(a)
            del out[k]
    meta = out.get("f:metadata")
    if meta is not None:
        m = meta
        if "." in m or any(k in m for k in _STRIP_META):
            m = {k: v for k, v in meta.items()
                 if k != "." and not (k in _STRIP_META and not has_children(v))}
            for k in _STRIP_META:          # a stripped path that has children keeps them
                v = meta.get(k)
                if v is not None and has_children(v):
                    m[k] = {kk: vv for kk, vv in v.items() if kk != "."}
        if m is not meta or not meta:
            if out is a:
                out = dict(a)
            if m:
                out["f:metadata"] = m
            else:
                del out["f:metadata"]
    return out


# --- ordering, iteration, printing -----------------------------------------------

def _value_key(v: object) -> tuple:
    t = type(v)
    if t is bool:
        return (2, v)
    if t is int or t is float:
        return (0, v)
    if t is str:
        return (1, v)
    if v is None:
        return (5,)
    if t is list:
        return (3, tuple(_value_key(x) for x in v))
    if t is dict:
        return (4, tuple((k, _value_key(x)) for k, x in sorted(v.items())))
    return (6, str(v))


@functools.lru_cache(maxsize=65536)
def pe_sort_key(pe: str) -> tuple:
    """Upstream PathElement order: "." first, then fields by name, keys, values, indexes."""
    tag = pe[:2]
    if tag == "f:":
        return (1, pe[2:])
    if tag == "k:":
        try:
            kv = orjson.loads(pe[2:])
            return (2, tuple((k, _value_key(v)) for k, v in kv.items()))
        except (orjson.JSONDecodeError, AttributeError):
            return (2, ((pe,),))
    if tag == "v:":
        try:
            return (3, _value_key(orjson.loads(pe[2:])))
        except orjson.JSONDecodeError:
            return (3, (9, pe))
    if tag == "i:":
        try:
            return (4, int(pe[2:]))
        except ValueError:
            return (4, -1)
    if pe == ".":
        return (0,)
    return (5, pe)


def canonical(node: Node) -> Node:
    """An independent copy with "." first and path elements in upstream order."""
    if not node:
        return {}
    out: Node = {".": {}} if "." in node else {}
    keys = [k for k in node if k != "."]
    if len(keys) > 1:
        keys.sort(key=pe_sort_key)
    for k in keys:
        out[k] = canonical(node[k])
    return out


def iter_paths(node: Node, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every path in the set, in fieldpath.Set.Iterate order (members, then children)."""
    keys = sorted((k for k in node if k != "."), key=pe_sort_key)
    for k in keys:
        if is_member(node[k]):
            yield prefix + (k,)
    for k in keys:
        child = node[k]
        if has_children(child):
            yield from iter_paths(child, prefix + (k,))


def contains(node: Node, path: tuple[str, ...]) -> bool:
    for pe in path[:-1]:
        node = node.get(pe)
        if node is None:
            return False
    last = node.get(path[-1]) if path else None
    return last is not None and is_member(last)


def from_paths(paths: list[tuple[str, ...]]) -> Node:
    root: Node = {}
    for path in paths:
        node = root
        for pe in path[:-1]:
            child = node.get(pe)
            if child is None:
                child = node[pe] = {}
            elif not child:             # was a bare member: keep its membership
                child["."] = {}
            node = child
        last = node.get(path[-1])
        if last is None:
            node[path[-1]] = {}
        elif last:
            last["."] = {}
    return root


def _go_value(v: object) -> str:
    """value.ToString: strings quoted, numbers and bools bare."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return repr(v) if isinstance(v, float) else str(v)
    if isinstance(v, str):
        return orjson.dumps(v).decode()
    return dumps(v)


@functools.lru_cache(maxsize=16384)
def pe_string(pe: str) -> str:
    """fieldpath.PathElement.String: ``.name``, ``[k=v,…]``, ``[=v]``, ``[n]``."""
    tag, body = pe[:2], pe[2:]
    if tag == "f:":
        return "." + body
    if tag == "k:":
        try:
            kv = orjson.loads(body)
            return "[" + ",".join(f"{k}={_go_value(v)}" for k, v in kv.items()) + "]"
        except (orjson.JSONDecodeError, AttributeError):
            return "[" + body + "]"
    if tag == "v:":
        try:
            return "[=" + _go_value(orjson.loads(body)) + "]"
        except orjson.JSONDecodeError:
            return "[=" + body + "]"
    if tag == "i:":
        return "[" + body + "]"
    return "{{invalid path element}}"


def path_string(path: tuple[str, ...]) -> str:
    return "".join(pe_string(pe) for pe in path)


_PE_TAGS = ("f:", "k:", "v:", "i:")


def is_valid(node: object, depth: int = 0) -> bool:
    """Whether ``node`` is a well-formed FieldsV1 tree (as fieldpath.Set.FromJSON accepts)."""
    if not isinstance(node, dict) or depth > 200:
        return False
    for k, v in node.items():
        if k == ".":
            if v != {}:
                return False
            continue
        if not isinstance(k, str) or k[:2] not in _PE_TAGS:
            return False
        tag = k[:2]
        if tag in ("k:", "v:"):
            try:
                parsed = orjson.loads(k[2:])
            except orjson.JSONDecodeError:
                return False
            if tag == "k:" and not isinstance(parsed, dict):
                return False
        elif tag == "i:" and not k[2:].lstrip("-").isdigit():
            return False
        if not is_valid(v, depth + 1):
            return False
    return True
