"""Small typed accessors for JSON-shaped objects that tolerate wrong types.

Upstream rejects a wrongly typed field while decoding; here such a value yields a
FieldValueTypeInvalid cause instead of an exception, and validation carries on.
"""
from __future__ import annotations

from typing import Any

from ._field import Errs, type_invalid

_EMPTY: dict = {}


def as_dict(errs: Errs, v: Any, path: str) -> dict:
    if v is None:
        return _EMPTY
    if isinstance(v, dict):
        return v
    type_invalid(errs, path, v, "object")
    return _EMPTY


def as_list(errs: Errs, v: Any, path: str) -> list:
    if v is None:
        return []
    if isinstance(v, list):
        return v
    type_invalid(errs, path, v, "array")
    return []


def as_str(errs: Errs, v: Any, path: str) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    type_invalid(errs, path, v, "string")
    return ""


def as_int(errs: Errs, v: Any, path: str) -> int | None:
    """An optional integer; None when absent or of the wrong type (reported)."""
    if v is None:
        return None
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    type_invalid(errs, path, v, "integer")
    return None


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
