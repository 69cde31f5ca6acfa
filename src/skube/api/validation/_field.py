"""Field errors as upstream's ``field.Error`` renders them in a StatusCause.

Each helper appends a cause dict ``{"reason", "message", "field"}`` whose message is
the error body (``Invalid value: "x": detail``); ``errors.invalid`` prefixes the
field. Bad values print the way Go's ``%q``/``%v``/``%#v`` would, so messages match
what kubectl users know.
"""
from __future__ import annotations

import json
from typing import Any

Errs = list  # list[dict[str, str]]

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"
NOT_FOUND = "FieldValueNotFound"
TYPE_INVALID = "FieldValueTypeInvalid"

IMMUTABLE = "field is immutable"
NEGATIVE = "must be greater than or equal to 0"


class GoRaw(str):
    """A value already rendered in Go syntax (printed verbatim)."""


class Stringer(str):
    """A value whose Go type has a String() method: printed unquoted."""


def go_quote(s: str) -> str:
    """Go's %q for a string (close enough: JSON escaping with non-ASCII kept)."""
    return json.dumps(s, ensure_ascii=False)


def go_value(v: Any) -> str:
    """Render a bad value the way field.Error.ErrorBody does."""
    if v is None:
        return "null"
    if isinstance(v, (GoRaw, Stringer)):
        return str(v)
    if isinstance(v, str):
        return go_quote(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e21 else repr(v)
    if isinstance(v, dict):
        return go_string_map(v)
    if isinstance(v, list):
        if all(isinstance(x, str) for x in v):
            return go_string_slice(v)
        if all(isinstance(x, int) and not isinstance(x, bool) for x in v):
            return "[]int32{" + ", ".join(str(x) for x in v) + "}"
    return json.dumps(v, separators=(",", ":"), sort_keys=True, default=str)


def go_string_map(m: dict | None) -> str:
    """%#v of a map[string]string (Go prints keys sorted)."""
    if m is None:
        return "map[string]string(nil)"
    return "map[string]string{" + ", ".join(
        f"{go_quote(str(k))}:{go_value(m[k])}" for k in sorted(m)) + "}"


def go_string_slice(v: list | None) -> str:
    if v is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(go_quote(str(x)) for x in v) + "}"


def go_label_selector(sel: Any) -> GoRaw:
    """%#v of a metav1.LabelSelector as upstream prints it in immutability errors."""
    if not isinstance(sel, dict):
        return GoRaw("(*v1.LabelSelector)(nil)")
    ml = sel.get("matchLabels")
    exprs = sel.get("matchExpressions")
    ml_s = go_string_map(ml if isinstance(ml, dict) else None)
    if not isinstance(exprs, list):
        ex_s = "[]v1.LabelSelectorRequirement(nil)"
    else:
        parts = []
        for e in exprs:
            e = e if isinstance(e, dict) else {}
            vals = e.get("values")
            parts.append("v1.LabelSelectorRequirement{Key:%s, Operator:%s, Values:%s}" % (
                go_quote(str(e.get("key", ""))), go_quote(str(e.get("operator", ""))),
                go_string_slice(vals if isinstance(vals, list) else None)))
        ex_s = "[]v1.LabelSelectorRequirement{" + ", ".join(parts) + "}"
    return GoRaw(f"v1.LabelSelector{{MatchLabels:{ml_s}, MatchExpressions:{ex_s}}}")


def int_or_string(v: Any) -> Stringer:
    """intstr.IntOrString prints through its String() method."""
    return Stringer(str(v))


# ---- appenders ---------------------------------------------------------------------------

def required(errs: Errs, path: str, detail: str = "") -> None:
    errs.append({"reason": REQUIRED, "message": "Required value: " + detail if detail else "Required value",
                 "field": path})


def invalid(errs: Errs, path: str, value: Any, detail: str = "") -> None:
    msg = "Invalid value: " + go_value(value)
    if detail:
        msg += ": " + detail
    errs.append({"reason": INVALID, "message": msg, "field": path})


def invalid_omit(errs: Errs, path: str, detail: str) -> None:
    """field.Invalid with an omitted value (field.OmitValueType)."""
    errs.append({"reason": INVALID, "message": "Invalid value: " + detail, "field": path})


def not_supported(errs: Errs, path: str, value: Any, valid: list[str] | tuple[str, ...]) -> None:
    msg = "Unsupported value: " + go_value(value)
    if valid:
        msg += ": supported values: " + ", ".join(go_quote(v) for v in valid)
    errs.append({"reason": NOT_SUPPORTED, "message": msg, "field": path})


def duplicate(errs: Errs, path: str, value: Any) -> None:
    errs.append({"reason": DUPLICATE, "message": "Duplicate value: " + go_value(value), "field": path})


def forbidden(errs: Errs, path: str, detail: str = "") -> None:
    errs.append({"reason": FORBIDDEN, "message": "Forbidden: " + detail if detail else "Forbidden",
                 "field": path})


def too_long(errs: Errs, path: str, max_len: int) -> None:
    errs.append({"reason": TOO_LONG, "message": f"Too long: must have at most {max_len} bytes",
                 "field": path})


def too_long_max_length(errs: Errs, path: str, max_len: int) -> None:
    errs.append({"reason": TOO_LONG, "message": f"Too long: may not be longer than {max_len}",
                 "field": path})


def too_many(errs: Errs, path: str, actual: int, max_items: int) -> None:
    errs.append({"reason": TOO_MANY, "message": f"Too many: {actual}: must have at most {max_items} items",
                 "field": path})


def not_found(errs: Errs, path: str, value: Any, detail: str = "") -> None:
    msg = "Not found: " + go_value(value)
    if detail:
        msg += ": " + detail
    errs.append({"reason": NOT_FOUND, "message": msg, "field": path})


def type_invalid(errs: Errs, path: str, value: Any, want: str) -> None:
    """A value of the wrong JSON type (upstream rejects these while decoding)."""
    errs.append({"reason": TYPE_INVALID,
                 "message": f"Invalid value: {go_value(value)}: must be of type {want}", "field": path})


def immutable(errs: Errs, path: str, new_value: Any) -> None:
    invalid(errs, path, new_value, IMMUTABLE)


def nonnegative(errs: Errs, path: str, value: Any) -> None:
    """apimachinery ValidateNonnegativeField for an optional integer."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        type_invalid(errs, path, value, "integer")
    elif value < 0:
        invalid(errs, path, value, NEGATIVE)


def dedupe(errs: Errs) -> Errs:
    """Drop repeated causes, as ErrorList.ToAggregate does for the message."""
    seen: set[tuple[str, str]] = set()
    out = []
    for e in errs:
        key = (e["field"], e["message"])
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out
