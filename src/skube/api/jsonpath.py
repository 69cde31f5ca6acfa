"""A small JSONPath evaluator in the dialect of client-go's ``util/jsonpath``.

Enough for CRD ``additionalPrinterColumns`` and ``selectableFields``: a single path,
optionally wrapped in ``{}``, made of ``.field`` (``\\.`` escapes a dot in a name),
``['field']``/``["field"]``, ``[n]`` (negative counts from the end), ``[a:b:c]``,
``[*]``, ``.*``, ``..field`` (recursive descent) and simple filters
``[?(@.a.b == "x")]`` (``== != < > <= >=``, or bare ``@.a`` for existence).

Missing keys yield no result rather than an error, as the API server's printer does.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Iterator

__all__ = ["JSONPath", "JSONPathError", "compile_path", "find", "format_value"]


class JSONPathError(ValueError):
    """The expression is not a path this evaluator understands."""


# Step kinds
_FIELD, _INDEX, _SLICE, _ALL, _RECURSE, _FILTER, _KEYS = range(7)
_FILTER_RE = re.compile(r"^\s*(@[^<>=!]*?)\s*(==|!=|<=|>=|<|>)\s*(.+?)\s*$")
_INT_RE = re.compile(r"^-?\d+$")


class JSONPath:
    """A compiled path; :meth:`find` returns every value it reaches, in order."""

    __slots__ = ("expr", "_steps")

    def __init__(self, expr: str):
        self.expr = expr
        self._steps = _parse(expr)

    def find(self, data: Any) -> list[Any]:
        current = [data]
        for step in self._steps:
            nxt: list[Any] = []
            for value in current:
                nxt.extend(_apply(step, value))
            if not nxt:
                return nxt
            current = nxt
        return current

    def first(self, data: Any, default: Any = None) -> Any:
        found = self.find(data)
        return found[0] if found else default

    def __repr__(self) -> str:
        return f"JSONPath({self.expr!r})"


@lru_cache(maxsize=1024)
def compile_path(expr: str) -> JSONPath:
    """Compile (and cache) ``expr``; raises JSONPathError on bad syntax."""
    return JSONPath(expr)


def find(expr: str, data: Any) -> list[Any]:
    return compile_path(expr).find(data)


def format_value(value: Any) -> str:
    """A value printed as ``kubectl -o jsonpath`` prints it: maps and lists as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    if isinstance(value, float):
        return _go_float(value)
    return str(value)


def _go_float(f: float) -> str:
    if f.is_integer() and abs(f) < 1e21:
        return str(int(f))
    r = repr(f)
    if "e" in r:
        mant, exp = r.split("e")
        sign = "-" if exp.startswith("-") else "+"
        exp = exp.lstrip("+-").lstrip("0") or "0"
        return f"{mant}e{sign}{exp.zfill(2)}"
    return r


# --- parsing ---

def _parse(expr: str) -> list[tuple]:
    s = expr.strip()
    if s.startswith("{") and s.endswith("}"):
        s = s[1:-1].strip()
    if s.startswith("$"):
        s = s[1:]
    steps: list[tuple] = []
    i, n = 0, len(s)
    if n == 0:
        raise JSONPathError(f"empty path {expr!r}")
    while i < n:
        c = s[i]
        if c == ".":
            if s.startswith("..", i):
                i += 2
                name, i = _read_name(s, i)
                if not name:
                    raise JSONPathError(f"missing field name after '..' in {expr!r}")
                steps.append((_RECURSE, name))
                continue
            i += 1
            if i < n and s[i] == "*":
                steps.append((_KEYS,))
                i += 1
                continue
            name, i = _read_name(s, i)
            if name:
                steps.append((_FIELD, name))
            elif i < n and s[i] != "[":
                raise JSONPathError(f"unexpected {s[i]!r} in {expr!r}")
        elif c == "[":
            end = _find_bracket_end(s, i, expr)
            steps.append(_parse_bracket(s[i + 1:end].strip(), expr))
            i = end + 1
        else:
            if steps:
                raise JSONPathError(f"unexpected {c!r} in {expr!r}")
            name, i = _read_name(s, i)  # a leading bare name, e.g. "spec.replicas"
            steps.append((_FIELD, name))
    return steps


def _read_name(s: str, i: int) -> tuple[str, int]:
    out: list[str] = []
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n and s[i + 1] == ".":
            out.append(".")
            i += 2
            continue
        if c in ".[]{}$@, \t\n":
            break
        out.append(c)
        i += 1
    return "".join(out), i


def _find_bracket_end(s: str, i: int, expr: str) -> int:
    depth, quote = 0, ""
    for j in range(i, len(s)):
        c = s[j]
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return j
    raise JSONPathError(f"unclosed '[' in {expr!r}")


def _parse_bracket(body: str, expr: str) -> tuple:
    if not body:
        raise JSONPathError(f"empty '[]' in {expr!r}")
    if body == "*":
        return (_ALL,)
    if body[0] in "'\"":
        if len(body) < 2 or body[-1] != body[0]:
            raise JSONPathError(f"bad quoted name in {expr!r}")
        return (_FIELD, body[1:-1])
    if body.startswith("?(") and body.endswith(")"):
        return _parse_filter(body[2:-1], expr)
    if ":" in body:
        parts = [p.strip() for p in body.split(":")]
        if len(parts) > 3 or any(p and not _INT_RE.match(p) for p in parts):
            raise JSONPathError(f"bad slice [{body}] in {expr!r}")
        nums = [int(p) if p else None for p in parts] + [None] * (3 - len(parts))
        return (_SLICE, nums[0], nums[1], nums[2])
    if _INT_RE.match(body):
        return (_INDEX, int(body))
    raise JSONPathError(f"unsupported '[{body}]' in {expr!r}")


def _parse_filter(body: str, expr: str) -> tuple:
    body = body.strip()
    m = _FILTER_RE.match(body)
    if m:
        left, op, right = m.groups()
        return (_FILTER, _sub_path(left, expr), op, _literal(right, expr))
    if body.startswith("@"):
        return (_FILTER, _sub_path(body, expr), "exists", None)
    raise JSONPathError(f"unsupported filter '{body}' in {expr!r}")


def _sub_path(s: str, expr: str) -> JSONPath | None:
    s = s.strip()[1:]  # drop '@'
    return JSONPath(s) if s else None


def _literal(s: str, expr: str) -> Any:
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    if s in ("true", "false"):
        return s == "true"
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        raise JSONPathError(f"unsupported filter value {s!r} in {expr!r}") from None


# --- evaluation ---

def _apply(step: tuple, value: Any) -> Iterator[Any] | list[Any]:
    kind = step[0]
    if kind == _FIELD:
        if isinstance(value, dict) and step[1] in value:
            return [value[step[1]]]
        return []
    if kind == _INDEX:
        if isinstance(value, list):
            idx = step[1]
            if -len(value) <= idx < len(value):
                return [value[idx]]
        return []
    if kind == _ALL:
        if isinstance(value, list):
            return list(value)
        if isinstance(value, dict):
            return list(value.values())
        return []
    if kind == _KEYS:
        if isinstance(value, dict):
            return list(value.values())
        if isinstance(value, list):
            return list(value)
        return []
    if kind == _SLICE:
        if isinstance(value, list):
            return value[slice(step[1], step[2], step[3])]
        return []
    if kind == _RECURSE:
        out: list[Any] = []
        _recurse(value, step[1], out)
        return out
    if kind == _FILTER:
        items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
        return [item for item in items if _test(step, item)]
    return []


def _recurse(value: Any, name: str, out: list[Any]) -> None:
    if isinstance(value, dict):
        if name in value:
            out.append(value[name])
        for v in value.values():
            _recurse(v, name, out)
    elif isinstance(value, list):
        for v in value:
            _recurse(v, name, out)


def _test(step: tuple, item: Any) -> bool:
    _, path, op, lit = step
    found = path.find(item) if path is not None else [item]
    if op == "exists":
        return bool(found)
    if not found:
        return False
    left = found[0]
    if isinstance(lit, bool) or isinstance(left, bool):
        equal = left is lit
        if op == "==":
            return equal
        if op == "!=":
            return not equal
        return False
    if isinstance(lit, (int, float)) and isinstance(left, (int, float)):
        a, b = left, lit
    else:
        a, b = format_value(left), format_value(lit) if not isinstance(lit, str) else lit
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    try:
        if op == "<":
            return a < b
        if op == ">":
            return a > b
        if op == "<=":
            return a <= b
        return a >= b
    except TypeError:
        return False
