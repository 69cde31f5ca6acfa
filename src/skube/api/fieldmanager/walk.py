"""Typed walks over JSON-shaped objects: field sets, comparison, merge and prune.

These follow structured-merge-diff's semantics (typed/tofieldset.go, compare.go,
merge.go, remove.go, merge/update.go's prune): maps merge key by key unless
atomic, associative lists merge item by item (by key fields or by value),
atomic lists and scalars are replaced whole. Walks skip equal subtrees with one
C-level ``==`` so unchanged parts of an object cost almost nothing.
"""
from __future__ import annotations

from skube.api.fieldmanager.fieldset import Node, as_member, dumps, has_children, path_string
from skube.api.fieldmanager.typeinfo import ANY, ASSOCIATIVE, DEDUCED, LIST, MAP, SCALAR, TypeNode

MISSING = object()      # "no value here", as opposed to an explicit null


class SchemaError(Exception):
    """The applied configuration does not fit the schema (typed.ValidationErrors)."""

    def __init__(self, problems: list[tuple[tuple[str, ...], str]]):
        self.problems = problems
        super().__init__(self.text())

    def text(self) -> str:
        msgs = [f"{path_string(p)}: {m}" if p else m for p, m in self.problems]
        if len(msgs) == 1:
            return msgs[0]
        return "\n".join(["errors:"] + ["  " + m for m in msgs])


def _type_name(v: object) -> str:
    if isinstance(v, dict):
        return "map"
    if isinstance(v, list):
        return "list"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return "null"


# --- list item identity ----------------------------------------------------------

def item_pe(t: TypeNode, item: object, errors: list | None = None, path: tuple = ()) -> str | None:
    """The path element naming ``item`` in list ``t`` (``k:…`` or ``v:…``).

    ``errors`` given: problems are reported there (and None returned); otherwise
    the walk is lenient, as for stored objects."""
    if t.list_kind == ASSOCIATIVE:
        if type(item) is not dict:
            if errors is not None:
                errors.append((path, f"associative list with keys has an element that is not a map: {_type_name(item)}"))
                return None
            return "v:" + dumps(item)
        kv = {}
        for k in t.keys:
            if k in item:
                kv[k] = item[k]
            elif k in t.key_defaults:
                kv[k] = t.key_defaults[k]
            elif errors is not None:
                errors.append((path, f'associative list with keys has an element that omits key field "{k}" '
                                     "(and doesn't have default value)"))
                return None
        return "k:" + dumps(kv)
    if errors is not None:
        if isinstance(item, (dict, list)):
            errors.append((path, "associative list without keys has an element that's a "
                                 + ("map type" if isinstance(item, dict) else "list")))
            return None
        if item is None:
            errors.append((path, "associative list without keys has an element that's an explicit null"))
            return None
    return "v:" + dumps(item)


def _index(t: TypeNode, items: list) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in items:
        pe = item_pe(t, item)
        if pe not in out:       # later duplicates are ignored, as upstream
            out[pe] = item
    return out


# --- ToFieldSet ------------------------------------------------------------------

def to_set(value: object, t: TypeNode, errors: list | None = None, path: tuple = ()) -> Node | None:
    """Fields set by ``value`` (typed.TypedValue.ToFieldSet) as this path's node.

    Returns None when nothing is set. With ``errors`` the value is validated as an
    applied configuration: undeclared fields, shape mismatches and duplicate list
    keys are reported."""
    kind = t.kind
    if kind == ANY:
        if type(value) is dict:
            out = {}
            for k, v in value.items():
                out["f:" + k] = as_member(to_set(v, DEDUCED, errors, path))
            return out or None
        return {}
    if kind == MAP:
        if value is None:
            return {} if t.atomic else None
        if type(value) is not dict:
            if errors is not None:
                errors.append((path, f"expected map, got {_type_name(value)}"))
            return {}
        if t.atomic:
            return {}
        out = {}
        for k, v in value.items():
            ct, declared = t.child(k)
            pe = "f:" + k
            if ct is None:
                if errors is not None:
                    errors.append((path + (pe,), "field not declared in schema"))
                    continue
                ct = DEDUCED
            child = to_set(v, ct, errors, path + (pe,) if errors is not None else path)
            if not declared or v is None or (type(v) is dict and not v):
                child = as_member(child)        # null and {} are owned too (SMD #184)
            if child is not None:
                out[pe] = child
        return out or None
    if kind == LIST:
        if value is None:
            return {} if t.atomic else None
        if type(value) is not list:
            if errors is not None:
                errors.append((path, f"expected list, got {_type_name(value)}"))
            return {}
        if t.atomic:
            return {}
        out = {}
        et = t.elem
        for item in value:
            pe = item_pe(t, item, errors, path)
            if pe is None:
                continue
            if pe in out:
                if errors is not None:
                    errors.append((path, f"duplicate entries for key {path_string((pe,))}"))
                continue
            out[pe] = as_member(to_set(item, et, errors, path + (pe,) if errors is not None else path))
        return out or None
    if errors is not None and isinstance(value, (dict, list)):
        errors.append((path, f"expected scalar, got {_type_name(value)}"))
    return {}


def has_fields(value: object, t: TypeNode) -> bool:
    """Whether a struct field holding ``value`` shows up in :func:`to_set` of its parent."""
    if value is None:
        return True
    kind = t.kind
    if kind == SCALAR or kind == ANY:
        return True
    if kind == LIST:
        return t.atomic or type(value) is not list or bool(value)
    if t.atomic or type(value) is not dict or not value:
        return True
    for k, v in value.items():
        ct, declared = t.child(k)
        if not declared or ct is None or has_fields(v, ct):
            return True
    return False


# --- Compare -----------------------------------------------------------------------

def compare(lhs: object, rhs: object, t: TypeNode) -> tuple[Node | None, Node | None, Node | None]:
    """(added, modified, removed) nodes for this path (typed.TypedValue.Compare).

    ``lhs``/``rhs`` may be :data:`MISSING`; callers pass differing values."""
    kind = t.kind
    if kind == MAP or kind == ANY:
        lt, rt = type(lhs), type(rhs)
        if kind == ANY and lt is not dict and rt is not dict:
            return _leaf(lhs, rhs)
        if t.atomic or (lhs is not MISSING and lhs is not None and lt is not dict) \
                or (rhs is not MISSING and rhs is not None and rt is not dict) \
                or (not lhs or lhs is MISSING) and (not rhs or rhs is MISSING):
            return _leaf(lhs, rhs)
        return _compare_map(lhs, rhs, t)
    if kind == LIST:
        lt, rt = type(lhs), type(rhs)
        if t.atomic or (lhs is not MISSING and lhs is not None and lt is not list) \
                or (rhs is not MISSING and rhs is not None and rt is not list) \
                or (not lhs or lhs is MISSING) and (not rhs or rhs is MISSING):
            return _leaf(lhs, rhs)
        return _compare_list(lhs, rhs, t)
    return _leaf(lhs, rhs)


def _leaf(lhs: object, rhs: object):
    if lhs is MISSING:
        return ({}, None, None)
    if rhs is MISSING:
        return (None, None, {})
    return (None, {}, None)


def _compare_map(lhs, rhs, t: TypeNode):
    added: Node = {}
    modified: Node = {}
    removed: Node = {}
    lm = lhs if type(lhs) is dict else None
    rm = rhs if type(rhs) is dict else None
    if lm:
        for k, lv in lm.items():
            if rm is not None and k in rm:
                rv = rm[k]
                if lv is rv or lv == rv:
                    continue
            else:
                rv = MISSING
            ct = t.child(k)[0] or DEDUCED
            a, m, x = compare(lv, rv, ct)
            pe = "f:" + k
            if a is not None:
                added[pe] = a
            if m is not None:
                modified[pe] = m
            if x is not None:
                removed[pe] = x
    if rm:
        for k, rv in rm.items():
            if lm is not None and k in lm:
                continue
            ct = t.child(k)[0] or DEDUCED
            a, m, x = compare(MISSING, rv, ct)
            pe = "f:" + k
            if a is not None:
                added[pe] = a
            if m is not None:
                modified[pe] = m
    return _finish(lhs, rhs, added, modified, removed)


def _compare_list(lhs, rhs, t: TypeNode):
    added: Node = {}
    modified: Node = {}
    removed: Node = {}
    et = t.elem
    li = _index(t, lhs) if type(lhs) is list else {}
    ri = _index(t, rhs) if type(rhs) is list else {}
    for pe, rv in ri.items():
        lv = li.get(pe, MISSING)
        if lv is not MISSING and (lv is rv or lv == rv):
            continue
        a, m, x = compare(lv, rv, et)
        if a is not None:
            added[pe] = a
        if m is not None:
            modified[pe] = m
        if x is not None:
            removed[pe] = x
    for pe, lv in li.items():
        if pe not in ri:
            x = compare(lv, MISSING, et)[2]
            if x is not None:
                removed[pe] = x
    return _finish(lhs, rhs, added, modified, removed)


def _finish(lhs, rhs, added: Node, modified: Node, removed: Node):
    if lhs is MISSING:
        a = {".": {}}
        a.update(added)
        added = a if added else {}
    if rhs is MISSING:
        r = {".": {}}
        r.update(removed)
        removed = r if removed else {}
    return (added if added or lhs is MISSING else None,
            modified or None,
            removed if removed or rhs is MISSING else None)


# --- Merge ---------------------------------------------------------------------

def merge(lhs: object, rhs: object, t: TypeNode) -> object:
    """``rhs`` (an applied configuration) merged into ``lhs`` (typed.TypedValue.Merge).

    Returns None for "no value" (an explicit null in the configuration); callers
    drop such map entries unless the field is nullable. Results share unchanged
    subtrees with the inputs."""
    kind = t.kind
    if kind == MAP or kind == ANY:
        if type(rhs) is not dict:
            if rhs is None and type(lhs) is dict and lhs and not t.atomic and kind == MAP:
                return lhs          # a null granular map leaves the live one alone
            return rhs
        if t.atomic:
            return rhs
        if kind == ANY and type(lhs) is not dict:
            return _fresh(rhs, t)
        if type(lhs) is not dict:
            lhs = {}
        if not lhs and not rhs:
            return rhs
        out = dict(lhs)
        for k, rv in rhs.items():
            ct = t.child(k)[0] or DEDUCED
            lv = lhs.get(k, MISSING)
            nv = merge(lv, rv, ct) if lv is not MISSING else _fresh(rv, ct)
            if nv is None and not ct.nullable:
                out.pop(k, None)
            else:
                out[k] = nv
        return out
    if kind == LIST:
        if t.atomic or type(rhs) is not list:
            return rhs
        if type(lhs) is not list or not lhs:
            return _fresh(rhs, t)
        return _merge_list(lhs, rhs, t)
    return rhs


def _fresh(value: object, t: TypeNode) -> object:
    """A configuration value with no live counterpart, explicit nulls dropped."""
    if type(value) is dict:
        if t.atomic or (t.kind != MAP and t.kind != ANY):
            return value
        out = None
        for k, x in value.items():
            if x is None:
                if (t.child(k)[0] or DEDUCED).nullable:
                    continue
                nx = MISSING
            elif type(x) is dict or type(x) is list:
                nx = _fresh(x, t.child(k)[0] or DEDUCED)
                if nx is x:
                    continue
            else:
                continue
            if out is None:
                out = dict(value)
            if nx is MISSING:
                del out[k]
            else:
                out[k] = nx
        return value if out is None else out
    if type(value) is list and t.kind == LIST and not t.atomic:
        et = t.elem
        if et.kind == MAP or et.kind == ANY:
            items = [_fresh(x, et) for x in value]
            if any(a is not b for a, b in zip(items, value)):
                return items
    return value


def _merge_list(lhs: list, rhs: list, t: TypeNode) -> list:
    """Associative merge keeping live order; shared items move to the config's order."""
    et = t.elem
    lpes = [item_pe(t, x) for x in lhs]
    rpes = [item_pe(t, x) for x in rhs]
    lmap: dict[str, object] = {}
    for pe, x in zip(lpes, lhs):
        lmap.setdefault(pe, x)
    rmap: dict[str, object] = {}
    for pe, x in zip(rpes, rhs):
        rmap.setdefault(pe, x)
    shared = [pe for pe in dict.fromkeys(rpes) if pe in lmap]
    si = 0
    nxt = shared[0] if shared else None
    done: set[str] = set()
    out: list = []
    li = ri = 0
    nl, nr = len(lpes), len(rpes)

    def take(pe: str) -> None:
        done.add(pe)
        lv = lmap.get(pe, MISSING)
        rv = rmap[pe]
        out.append(merge(lv, rv, et) if lv is not MISSING else _fresh(rv, et))

    while li < nl or ri < nr:
        if li < nl and ri < nr:
            pe = lpes[li]
            if pe == rpes[ri]:
                if pe not in done:
                    take(pe)
                li += 1
                ri += 1
                if pe == nxt:
                    si += 1
                    nxt = shared[si] if si < len(shared) else None
                continue
            if pe in rmap and nxt is not None and nxt != pe:
                li += 1         # a shared item, emitted when the config reaches it
                continue
        if li < nl:
            pe = lpes[li]
            if pe not in rmap:
                if pe in lmap and lmap[pe] is lhs[li]:
                    out.append(lhs[li])
                li += 1
                continue
            if pe in done:
                li += 1
                continue
        if ri < nr:
            pe = rpes[ri]
            if pe not in done:
                take(pe)
            ri += 1
            if pe == nxt:
                si += 1
                nxt = shared[si] if si < len(shared) else None
    return out


# --- Prune ----------------------------------------------------------------------

def _owned(managed: Node | None, pe: str, named: bool) -> bool:
    if managed is None:
        return False
    c = managed.get(pe)
    return c is not None and (named or not c or "." in c)


def prune(value: object, t: TypeNode, last: Node, managed: Node | None) -> object:
    """Remove what the applier owned last time (``last``) that nobody owns now.

    A path goes when it was the applier's (a member, or a struct field with owned
    children) and no manager — the applier's new configuration included — owns it
    (merge/update.go prune with EnsureNamedFieldsAreMembers). Its whole subtree goes
    with it. Returns ``value`` itself when nothing changed."""
    kind = t.kind
    if type(value) is dict and ((kind == MAP and not t.atomic) or kind == ANY):
        out = None
        for pe, lc in last.items():
            if pe[:2] != "f:":
                continue
            key = pe[2:]
            if key not in value:
                continue
            ct, named = t.child(key)
            ct = ct or DEDUCED
            children = has_children(lc)
            member = not lc or "." in lc or (named and children)
            if member and not _owned(managed, pe, named):
                if not named or has_fields(value[key], ct):
                    if out is None:
                        out = dict(value)
                    del out[key]
                continue
            if children:
                sub = value[key]
                nsub = prune(sub, ct, lc, managed.get(pe) if managed else None)
                if nsub is not sub:
                    if out is None:
                        out = dict(value)
                    if not nsub and sub:
                        del out[key]            # emptied by the prune
                    else:
                        out[key] = nsub
        return value if out is None else out
    if type(value) is list and kind == LIST and not t.atomic:
        et = t.elem
        out_list = None
        seen: set[str] = set()
        for i, item in enumerate(value):
            pe = item_pe(t, item)
            lc = last.get(pe)
            if lc is None or pe in seen:
                if out_list is not None:
                    out_list.append(item)
                continue
            seen.add(pe)
            if (not lc or "." in lc) and not _owned(managed, pe, False):
                if out_list is None:
                    out_list = value[:i]
                continue
            nitem = prune(item, et, lc, managed.get(pe) if managed else None) if has_children(lc) else item
            if nitem is not item and out_list is None:
                out_list = value[:i]
            if out_list is not None:
                out_list.append(nitem)
        return value if out_list is None else out_list
    return value
