"""Custom resources against their CRD schema, as apiextensions-apiserver treats them.

- ``validate_custom``: kube-openapi schema validation (type, nullable, enum, format,
  pattern, min/max and exclusive bounds, multipleOf, length, item counts,
  uniqueItems, properties counts, required, allOf/anyOf/oneOf/not,
  x-kubernetes-int-or-string) plus x-kubernetes-list-type ``set``/``map``
  uniqueness, with upstream's field paths and messages.
  ``x-kubernetes-validations`` (CEL) rules are not evaluated.
- ``prune``: structural pruning of unknown fields (kept under
  ``x-kubernetes-preserve-unknown-fields``, maps via ``additionalProperties``;
  unknown ``metadata`` fields dropped as ObjectMeta drops them).
- ``apply_schema_defaults``: structural defaulting (``default``), including the
  replacement or removal of ``null`` for non-nullable fields; upstream applies it
  on create, update and when reading from storage.
- ``validate_crd``: the CRD object itself: names, group, scope, versions (exactly
  one storage version), structural schema rules.
"""
from __future__ import annotations

import base64
import copy
import datetime as _dt
import ipaddress
import math
import re
from typing import Any

import orjson

from . import errors, fieldvalidation

Cause = dict[str, str]


# --------------------------------------------------------------------------- value printing (Go-like)

def _go_float(f: float) -> str:
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f.is_integer() and abs(f) < 1e21:
        return str(int(f))
    return repr(f)


def _go_quote(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7f:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _go_gosyntax(v: Any, top: bool = True) -> str:
    """fmt's %#v for JSON values held in interface{}."""
    if v is None:
        return "interface {}(nil)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, str):
        return _go_quote(v)
    if isinstance(v, list):
        return "[]interface {}{" + ", ".join(_go_gosyntax(x, False) for x in v) + "}"
    if isinstance(v, dict):
        return ("map[string]interface {}{" +
                ", ".join(f"{_go_quote(k)}:{_go_gosyntax(v[k], False)}" for k in sorted(v)) + "}")
    return repr(v)


def _value(v: Any) -> str:
    """How field.Error.ErrorBody prints a bad value."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, str):
        return _go_quote(v)
    return _go_gosyntax(v)


def _cause(reason: str, field: str, body: str) -> Cause:
    return errors.cause(field, body, reason)


def invalid(field: str, value: Any, detail: str) -> Cause:
    return _cause("FieldValueInvalid", field, f"Invalid value: {_value(value)}" + (f": {detail}" if detail else ""))


def type_invalid(field: str, value: Any, detail: str) -> Cause:
    return _cause("FieldValueTypeInvalid", field,
                  f"Invalid value: {_value(value)}" + (f": {detail}" if detail else ""))


def required(field: str, detail: str = "") -> Cause:
    return _cause("FieldValueRequired", field, "Required value" + (f": {detail}" if detail else ""))


def forbidden(field: str, detail: str) -> Cause:
    return _cause("FieldValueForbidden", field, "Forbidden" + (f": {detail}" if detail else ""))


def not_supported(field: str, value: Any, valid: list[str]) -> Cause:
    body = f"Unsupported value: {_value(value)}"
    if valid:
        body += ": supported values: " + ", ".join(_go_quote(v) for v in valid)
    return _cause("FieldValueNotSupported", field, body)


def duplicate(field: str, value: Any) -> Cause:
    return _cause("FieldValueDuplicate", field, f"Duplicate value: {_value(value)}")


def too_long(field: str, max_len: int) -> Cause:
    unit = "byte" if max_len == 1 else "bytes"
    return _cause("FieldValueTooLong", field, f"Too long: may not be more than {max_len} {unit}")


def too_many(field: str, actual: int, max_items: int) -> Cause:
    return _cause("FieldValueTooMany", field, f"Too many: {actual}: must have at most {max_items} items")


# --------------------------------------------------------------------------- schema validation

def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "unknown"


def _types(s: dict) -> list[str]:
    if s.get("x-kubernetes-int-or-string"):
        return ["integer", "string"]
    t = s.get("type")
    if not t:
        return []
    return list(t) if isinstance(t, list) else [t]


def _field(path: str) -> str:
    return path[1:] if path.startswith(".") else path


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


# formats apiextensions supports (others are stripped and never checked)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_UUIDN = {v: re.compile(rf"^[0-9a-fA-F]{{8}}-[0-9a-fA-F]{{4}}-{v}[0-9a-fA-F]{{3}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{12}}$")
          for v in "345"}
_HOSTNAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
                       r"(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\.?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_MAC = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}([0-9A-Fa-f]{2})$|^([0-9A-Fa-f]{4}\.){2}[0-9A-Fa-f]{4}$")
_HEXCOLOR = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_RGBCOLOR = re.compile(r"^rgb\(\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*\)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$")
_DURATION = re.compile(r"^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)\s*(?:ns|us|µs|ms|s|m|h|d|w|"
                       r"nanoseconds?|microseconds?|milliseconds?|seconds?|minutes?|hours?|days?|weeks?|"
                       r"sec|min|hr))+$")
_BSON = re.compile(r"^[0-9a-fA-F]{24}$")


def _valid_format(fmt: str, v: str) -> bool | None:
    """True/False for a supported format, None when the format is not checked."""
    try:
        if fmt in ("date-time", "datetime"):
            if not _DATETIME.match(v):
                return False
            _dt.datetime.fromisoformat(v.replace("z", "Z").replace("Z", "+00:00").replace("t", "T"))
            return True
        if fmt == "date":
            if not _DATE.match(v):
                return False
            _dt.date.fromisoformat(v)
            return True
        if fmt == "duration":
            return bool(_DURATION.match(v.replace(" ", "")))
        if fmt == "uuid":
            return bool(_UUID.match(v))
        if fmt in ("uuid3", "uuid4", "uuid5"):
            return bool(_UUIDN[fmt[-1]].match(v))
        if fmt == "ipv4":
            return isinstance(ipaddress.ip_address(v), ipaddress.IPv4Address)
        if fmt == "ipv6":
            return isinstance(ipaddress.ip_address(v), ipaddress.IPv6Address)
        if fmt == "cidr":
            ipaddress.ip_network(v, strict=False)
            return "/" in v
        if fmt == "mac":
            return bool(_MAC.match(v))
        if fmt == "hostname":
            return len(v) <= 255 and bool(_HOSTNAME.match(v))
        if fmt == "email":
            return bool(_EMAIL.match(v))
        if fmt == "byte":
            base64.b64decode(v, validate=True)
            return True
        if fmt == "hexcolor":
            return bool(_HEXCOLOR.match(v))
        if fmt == "rgbcolor":
            m = _RGBCOLOR.match(v)
            return bool(m) and all(int(x) <= 255 for x in m.groups())
        if fmt == "bsonobjectid":
            return bool(_BSON.match(v))
        if fmt == "uri":
            return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", v)) or v.startswith("/")
    except ValueError:
        return False
    return None


class _Validator:
    def __init__(self) -> None:
        self.causes: list[Cause] = []

    def add(self, c: Cause) -> None:
        self.causes.append(c)

    def valid(self, s: dict, v: Any, path: str) -> bool:
        sub = _Validator()
        sub.node(s, v, path)
        return not sub.causes

    def node(self, s: Any, v: Any, path: str) -> None:
        if not isinstance(s, dict):
            return
        types = _types(s)
        if v is None:
            if types and not s.get("nullable"):
                self.add(type_invalid(_field(path), "null",
                                      f'{path} in body must be of type {",".join(types)}: "null"'))
            self._enum(s, v, path)
            return
        jt = _json_type(v)
        # type
        if types:
            ok = jt in types or (jt == "number" and "integer" in types and float(v).is_integer()) or \
                (jt == "integer" and "number" in types)
            if not ok:
                self.add(type_invalid(_field(path), jt, f'{path} in body must be of type {",".join(types)}: "{jt}"'))
        # allOf / anyOf / oneOf / not
        self._junctors(s, v, path)
        # strings
        if jt == "string":
            self._string(s, v, path)
        # numbers
        if jt in ("integer", "number"):
            self._number(s, v, path)
        # arrays
        if jt == "array":
            self._array(s, v, path)
        self._enum(s, v, path)
        if jt == "object":
            self._object(s, v, path)

    def _junctors(self, s: dict, v: Any, path: str) -> None:
        nil_field = "<nil>"
        all_of = s.get("allOf")
        if all_of:
            ok = 0
            for sub in all_of:
                inner = _Validator()
                inner.node(sub, v, path)
                self.causes.extend(inner.causes)
                ok += not inner.causes
            if ok != len(all_of):
                extra = ". None validated" if ok == 0 else ""
                self.add(invalid(nil_field, "", f"{path} must validate all the schemas (allOf){extra}"))
        any_of = s.get("anyOf")
        if any_of and not any(self.valid(sub, v, path) for sub in any_of):
            self.add(invalid(nil_field, "", f"{path} must validate at least one schema (anyOf)"))
        one_of = s.get("oneOf")
        if one_of:
            n = sum(self.valid(sub, v, path) for sub in one_of)
            if n != 1:
                extra = "Found none valid" if n == 0 else f"Found {n} valid alternatives"
                self.add(invalid(nil_field, "", f"{path} must validate one and only one schema (oneOf). {extra}"))
        not_ = s.get("not")
        if isinstance(not_, dict) and self.valid(not_, v, path):
            self.add(invalid(nil_field, "", f"{path} must not validate the schema (not)"))

    def _string(self, s: dict, v: str, path: str) -> None:
        f = _field(path)
        n = len(v)
        if "maxLength" in s and n > s["maxLength"]:
            self.add(too_long(f, int(s["maxLength"])))
        if "minLength" in s and n < s["minLength"]:
            self.add(invalid(f, v, f"{path} in body should be at least {int(s['minLength'])} chars long"))
        pat = s.get("pattern")
        if pat:
            try:
                ok = re.search(pat, v) is not None
            except re.error:
                ok = True
            if not ok:
                self.add(invalid(f, v, f"{path} in body should match '{pat}'"))
        fmt = s.get("format")
        if fmt and _valid_format(fmt, v) is False:
            self.add(type_invalid(f, v, f'{path} in body must be of type {fmt}: {_go_quote(v)}'))

    def _number(self, s: dict, v: int | float, path: str) -> None:
        f = _field(path)
        mult = s.get("multipleOf")
        if mult:
            q = v / mult
            if not math.isclose(q, round(q), rel_tol=0, abs_tol=1e-9):
                self.add(invalid(f, v, f"{path} in body should be a multiple of {_go_float(float(mult))}"))
        if "maximum" in s:
            mx = s["maximum"]
            if s.get("exclusiveMaximum") and v >= mx:
                self.add(invalid(f, v, f"{path} in body should be less than {_go_float(float(mx))}"))
            elif not s.get("exclusiveMaximum") and v > mx:
                self.add(invalid(f, v, f"{path} in body should be less than or equal to {_go_float(float(mx))}"))
        if "minimum" in s:
            mn = s["minimum"]
            if s.get("exclusiveMinimum") and v <= mn:
                self.add(invalid(f, v, f"{path} in body should be greater than {_go_float(float(mn))}"))
            elif not s.get("exclusiveMinimum") and v < mn:
                self.add(invalid(f, v, f"{path} in body should be greater than or equal to "
                                       f"{_go_float(float(mn))}"))

    def _array(self, s: dict, v: list, path: str) -> None:
        f = _field(path)
        items = s.get("items")
        if isinstance(items, dict):
            for i, x in enumerate(v):
                self.node(items, x, f"{path}[{i}]")
        if "minItems" in s and len(v) < s["minItems"]:
            self.add(invalid(f, len(v), f"{path} in body should have at least {int(s['minItems'])} items"))
        if "maxItems" in s and len(v) > s["maxItems"]:
            self.add(too_many(f, len(v), int(s["maxItems"])))
        if s.get("uniqueItems"):
            for i, x in enumerate(v):
                if any(_json_equal(x, y) for y in v[:i]):
                    self.add(invalid(f, "", f"{path} in body shouldn't contain duplicates"))
                    break

    def _enum(self, s: dict, v: Any, path: str) -> None:
        enum = s.get("enum")
        if enum is None:
            return
        if any(_json_equal(v, e) for e in enum):
            return
        valid = [e if isinstance(e, str) else orjson.dumps(e).decode() for e in enum]
        self.add(not_supported(_field(path), v, valid))

    def _object(self, s: dict, v: dict, path: str) -> None:
        f = _field(path)
        n = len(v)
        if "minProperties" in s and n < s["minProperties"]:
            self.add(invalid(f, n, f"{path} in body should have at least {int(s['minProperties'])} properties"))
            return
        if "maxProperties" in s and n > s["maxProperties"]:
            self.add(too_many(f, n, int(s["maxProperties"])))
            return
        props = s.get("properties") or {}
        addl = s.get("additionalProperties")
        for k, x in v.items():
            if k in props:
                self.node(props[k], x, f"{path}.{k}" if path else k)
            elif isinstance(addl, dict):
                self.node(addl, x, f"{path}.{k}")
            elif addl is False:
                self.add(invalid(f, k, f"{path}.{k} in body is a forbidden property"))
        for k in s.get("required") or ():
            if k not in v:
                self.add(required(_field(f"{path}.{k}")))


def _list_types(s: Any, v: Any, path: str, out: list[Cause]) -> None:
    """x-kubernetes-list-type set/map uniqueness (apiextensions listtype validation)."""
    if not isinstance(s, dict):
        return
    if isinstance(v, list):
        lt = s.get("x-kubernetes-list-type")
        if lt == "set":
            for i, x in enumerate(v):
                if isinstance(x, (dict, list)):
                    out.append(invalid(f"{path}[{i}]", x, "set list elements must be scalar"))
                elif any(_json_equal(x, y) for y in v[:i]):
                    out.append(duplicate(f"{path}[{i}]", x))
        elif lt == "map":
            keys = list(s.get("x-kubernetes-list-map-keys") or ())
            item_props = ((s.get("items") or {}).get("properties") or {})
            seen: list[dict] = []
            for i, x in enumerate(v):
                if not isinstance(x, dict):
                    out.append(type_invalid(f"{path}[{i}]", x, "must be an object for an array of list-type map"))
                    continue
                if not x:
                    out.append(required(f"{path}[{i}]", "must not be empty for an array of list-type map"))
                    continue
                kv = {}
                for k in keys:
                    if k in x:
                        kv[k] = x[k]
                    elif "default" in (item_props.get(k) or {}):
                        kv[k] = item_props[k]["default"]
                if any(_json_equal(kv, y) for y in seen):
                    out.append(duplicate(f"{path}[{i}]", kv))
                else:
                    seen.append(kv)
        items = s.get("items")
        for i, x in enumerate(v):
            _list_types(items, x, f"{path}[{i}]", out)
    elif isinstance(v, dict):
        props = s.get("properties") or {}
        addl = s.get("additionalProperties")
        for k, x in v.items():
            sub = props.get(k) if k in props else (addl if isinstance(addl, dict) else None)
            if sub is not None:
                _list_types(sub, x, f"{path}.{k}" if path else k, out)


def validate_custom(schema: dict | None, obj: dict) -> list[Cause]:
    """Causes for ``obj`` against a CRD version's openAPIV3Schema (empty when valid)."""
    if not schema:
        return []
    v = _Validator()
    v.node(schema, obj, "")
    causes = v.causes
    _list_types(schema, obj, "", causes)
    return causes


# --------------------------------------------------------------------------- pruning

def _prune(node: fieldvalidation.Node, value: Any, path: str, out: list[str]) -> None:
    if isinstance(value, dict):
        props = node.props
        if props is not None:
            for k in list(value):
                v = value[k]
                p = f"{path}.{k}" if path else k
                if k in props:
                    child = props[k]
                    if child is not None and isinstance(v, (dict, list)):
                        _prune(child, v, p, out)
                elif node.values is not None:
                    if isinstance(v, (dict, list)):
                        _prune(node.values, v, p, out)
                elif not node.preserve:
                    del value[k]
                    out.append(p)
        elif node.values is not None:
            for k, v in value.items():
                if isinstance(v, (dict, list)):
                    _prune(node.values, v, f"{path}.{k}" if path else k, out)
    elif isinstance(value, list) and node.items is not None:
        for i, v in enumerate(value):
            if isinstance(v, (dict, list)):
                _prune(node.items, v, f"{path}[{i}]", out)


def prune(schema: dict | None, obj: dict) -> list[str]:
    """Drop the fields the schema does not specify; returns their paths, sorted."""
    out: list[str] = []
    _prune(fieldvalidation.custom_node(schema), obj, "", out)
    out.sort()
    return out


# --------------------------------------------------------------------------- defaulting

def _default(s: Any, v: Any) -> None:
    if not isinstance(s, dict):
        return
    if isinstance(v, dict):
        props = s.get("properties") or {}
        for k, p in props.items():
            if not isinstance(p, dict):
                continue
            if "default" in p and (k not in v or (v[k] is None and not p.get("nullable"))):
                v[k] = copy.deepcopy(p["default"])
            elif k in v and v[k] is None and not p.get("nullable"):
                del v[k]
        addl = s.get("additionalProperties")
        for k in list(v):
            x = v[k]
            if k in props:
                _default(props[k], x)
            elif isinstance(addl, dict):
                if x is None and not addl.get("nullable"):
                    if "default" in addl:
                        v[k] = copy.deepcopy(addl["default"])
                    else:
                        del v[k]
                        continue
                _default(addl, v[k])
    elif isinstance(v, list):
        items = s.get("items")
        if isinstance(items, dict):
            for i, x in enumerate(v):
                if x is None and "default" in items and not items.get("nullable"):
                    v[i] = copy.deepcopy(items["default"])
                _default(items, v[i])


def apply_schema_defaults(schema: dict | None, obj: dict) -> None:
    """Fill ``default`` values in place (metadata is never defaulted)."""
    if not schema or not isinstance(obj, dict):
        return
    props = schema.get("properties") or {}
    if "metadata" in props:
        schema = dict(schema, properties={k: v for k, v in props.items() if k != "metadata"})
    _default(schema, obj)


# --------------------------------------------------------------------------- the CRD object

_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUB = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
                "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
_DNS1123_SUB_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
                    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
                    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
_TYPES = ("array", "boolean", "integer", "number", "object", "string")


def _dns1035(v: str) -> list[str]:
    errs = []
    if len(v) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS1035.match(v):
        errs.append(_DNS1035_MSG)
    return errs


def _dns1123_subdomain(v: str) -> list[str]:
    errs = []
    if len(v) > 253:
        errs.append("must be no more than 253 characters")
    if not _DNS1123_SUB.match(v):
        errs.append(_DNS1123_SUB_MSG)
    return errs


def _k(path: str, key: str) -> str:
    return f"{path}[{key}]"


def _schema_standard(s: dict, path: str, out: list[Cause]) -> None:
    """OpenAPI v3 features CRD schemas may not use (specStandardValidatorV3) and the
    generic rules of ValidateCustomResourceDefinitionOpenAPISchema."""
    if "$ref" in s:
        out.append(forbidden(f"{path}.$ref", "$ref is not supported"))
    if s.get("id"):
        out.append(forbidden(f"{path}.id", "id is not supported"))
    if s.get("$schema"):
        out.append(forbidden(f"{path}.$schema", "$schema is not supported"))
    if s.get("definitions"):
        out.append(forbidden(f"{path}.definitions", "definitions are not supported"))
    if s.get("patternProperties"):
        out.append(forbidden(f"{path}.patternProperties", "patternProperties is not supported"))
    if s.get("dependencies"):
        out.append(forbidden(f"{path}.dependencies", "dependencies is not supported"))
    if "additionalItems" in s:
        out.append(forbidden(f"{path}.additionalItems", "additionalItems is not supported"))
    if "items" in s and isinstance(s["items"], list):
        out.append(forbidden(f"{path}.items", "items must be a schema object and not an array"))
    t = s.get("type")
    if t and t not in _TYPES:
        out.append(not_supported(f"{path}.type", t, list(_TYPES)))
    if s.get("uniqueItems") is True:
        out.append(forbidden(f"{path}.uniqueItems",
                             "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"))
    addl = s.get("additionalProperties")
    if addl is not None:
        if s.get("properties") and (addl is False or isinstance(addl, dict)):
            out.append(forbidden(f"{path}.additionalProperties",
                                 "additionalProperties and properties are mutual exclusive"))
        if isinstance(addl, dict):
            _schema_standard(addl, f"{path}.additionalProperties", out)
    for k, p in (s.get("properties") or {}).items():
        if isinstance(p, dict):
            _schema_standard(p, _k(f"{path}.properties", k), out)
    if isinstance(s.get("items"), dict):
        _schema_standard(s["items"], f"{path}.items", out)
    if isinstance(s.get("not"), dict):
        _schema_standard(s["not"], f"{path}.not", out)
    for j in ("allOf", "oneOf", "anyOf"):
        for i, p in enumerate(s.get(j) or ()):
            if isinstance(p, dict):
                _schema_standard(p, f"{path}.{j}[{i}]", out)
    lt = s.get("x-kubernetes-list-type")
    if lt is not None:
        if lt not in ("atomic", "set", "map"):
            out.append(not_supported(f"{path}.x-kubernetes-list-type", lt, ["atomic", "set", "map"]))
        elif t != "array":
            out.append(invalid(f"{path}.type", t or "", "must be array if x-kubernetes-list-type is specified"))
        elif lt == "map" and not s.get("x-kubernetes-list-map-keys"):
            out.append(required(f"{path}.x-kubernetes-list-map-keys",
                                "must not be empty if x-kubernetes-list-type is map"))
    if s.get("x-kubernetes-list-map-keys") and lt != "map":
        out.append(forbidden(f"{path}.x-kubernetes-list-type",
                             "must be map if x-kubernetes-list-map-keys is non-empty"))


_FORBIDDEN_NESTED = (("type", "must be empty to be structural"), ("default", "must be undefined to be structural"),
                     ("title", "must be empty to be structural"), ("description", "must be empty to be structural"),
                     ("additionalProperties", "must be undefined to be structural"),
                     ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
                     ("x-kubernetes-embedded-resource", "must be false to be structural"),
                     ("x-kubernetes-int-or-string", "must be false to be structural"),
                     ("x-kubernetes-list-map-keys", "must be empty to be structural"),
                     ("x-kubernetes-list-type", "must be undefined to be structural"),
                     ("x-kubernetes-map-type", "must be undefined to be structural"),
                     ("x-kubernetes-validations", "must be empty to be structural"))
_INT_OR_STRING_ANYOF = [{"type": "integer"}, {"type": "string"}]


def _nested(s: Any, path: str, out: list[Cause], skip_any_of: bool = False) -> None:
    """Value validations under allOf/anyOf/oneOf/not may not declare structure."""
    if not isinstance(s, dict):
        return
    _junctors(s, path, out, skip_any_of, False)
    if isinstance(s.get("items"), dict):
        _nested(s["items"], f"{path}.items", out)
    for k, p in (s.get("properties") or {}).items():
        _nested(p, _k(f"{path}.properties", k), out)
    for key, msg in _FORBIDDEN_NESTED:
        v = s.get(key)
        if v not in (None, False, "", [], {}) or (key == "default" and key in s):
            out.append(forbidden(f"{path}.{key}", msg))
    if s.get("nullable"):
        out.append(forbidden(f"{path}.nullable", "must be false to be structural"))
    if "metadata" in (s.get("properties") or {}):
        out.append(forbidden(_k(f"{path}.properties", "metadata"), "must not be specified in a nested context"))


def _junctors(s: dict, path: str, out: list[Cause], skip_any_of: bool, skip_first_all_of_any_of: bool) -> None:
    if not skip_any_of:
        for i, x in enumerate(s.get("anyOf") or ()):
            _nested(x, f"{path}.anyOf[{i}]", out)
    for i, x in enumerate(s.get("allOf") or ()):
        _nested(x, f"{path}.allOf[{i}]", out, skip_any_of=skip_first_all_of_any_of and i == 0)
    for i, x in enumerate(s.get("oneOf") or ()):
        _nested(x, f"{path}.oneOf[{i}]", out)
    if isinstance(s.get("not"), dict):
        _nested(s["not"], f"{path}.not", out)
    pat = s.get("pattern")
    if pat:
        try:
            re.compile(pat)
        except re.error as e:
            out.append(invalid(f"{path}.pattern", pat, f"must be a valid regular expression, but isn't: {e}"))


def _structural(s: Any, level: str, path: str, out: list[Cause]) -> None:
    """apiextensions structural schema invariants (ValidateStructural)."""
    if not isinstance(s, dict):
        return
    t = s.get("type") or ""
    if t == "array" and "items" not in s:
        out.append(required(f"{path}.items", "must be specified"))
    if isinstance(s.get("items"), dict):
        _structural(s["items"], "item", f"{path}.items", out)
    for k, p in (s.get("properties") or {}).items():
        _structural(p, "field", _k(f"{path}.properties", k), out)
    addl = s.get("additionalProperties")
    if addl is not None:
        if level == "root":
            out.append(forbidden(f"{path}.additionalProperties", "must not be used at the root"))
        if isinstance(addl, dict):
            _structural(addl, "field", f"{path}.additionalProperties", out)
    ios, puf, emb = (bool(s.get("x-kubernetes-int-or-string")), bool(s.get("x-kubernetes-preserve-unknown-fields")),
                     bool(s.get("x-kubernetes-embedded-resource")))
    if ios and puf:
        out.append(invalid(f"{path}.x-kubernetes-preserve-unknown-fields", True,
                           "must be false if x-kubernetes-int-or-string is true"))
    if ios and emb:
        out.append(invalid(f"{path}.x-kubernetes-embedded-resource", True,
                           "must be false if x-kubernetes-int-or-string is true"))
    any_of = s.get("anyOf") or []
    skip_any_of = ios and any_of == _INT_OR_STRING_ANYOF
    all_of = s.get("allOf") or []
    skip_first = ios and bool(all_of) and isinstance(all_of[0], dict) and all_of[0].get("anyOf") == _INT_OR_STRING_ANYOF
    _junctors(s, path, out, skip_any_of, skip_first)
    check_metadata = level == "root" or emb
    if emb and t != "object":
        if not t:
            out.append(required(f"{path}.type", "must be object if x-kubernetes-embedded-resource is true"))
        else:
            out.append(invalid(f"{path}.type", t, "must be object if x-kubernetes-embedded-resource is true"))
    elif not t and not ios and not puf:
        msg = {"root": "must not be empty at the root", "item": "must not be empty for specified array items",
               "field": "must not be empty for specified object fields"}[level]
        out.append(required(f"{path}.type", msg))
    if emb and addl is not None:
        out.append(forbidden(f"{path}.additionalProperties",
                             "must not be used if x-kubernetes-embedded-resource is set"))
    if level == "root" and t and t != "object":
        out.append(invalid(f"{path}.type", t, "must be object at the root"))
    props = s.get("properties") or {}
    if check_metadata:
        for tm in ("kind", "apiVersion"):
            if tm in props and (props[tm] or {}).get("type") != "string":
                out.append(invalid(_k(f"{path}.properties", tm) + ".type", (props[tm] or {}).get("type", ""),
                                   "must be string"))
    if "metadata" in props:
        md = props["metadata"] or {}
        mpath = _k(f"{path}.properties", "metadata")
        if check_metadata and md.get("type") != "object":
            out.append(invalid(f"{mpath}.type", md.get("type", ""), "must be object"))
        if level == "root":
            rest = {k: v for k, v in md.items() if k not in ("type", "default")}
            mprops = rest.pop("properties", None) or {}
            if set(mprops) - {"name", "generateName"} or rest:
                out.append(forbidden(mpath, "must not specify anything other than name and generateName, but "
                                            "metadata is implicitly specified"))
    if emb and not puf and not props:
        out.append(required(f"{path}.properties", "must not be empty if x-kubernetes-embedded-resource is true "
                                                  "without x-kubernetes-preserve-unknown-fields"))


def _error_string(c: Cause) -> str:
    return f"{c['field']}: {c['message']}"


def validate_crd(crd: dict) -> list[Cause]:
    """Causes for an apiextensions.k8s.io/v1 CustomResourceDefinition (empty when valid).

    Covered: metadata.name, group, scope, names, versions (names, uniqueness, exactly one
    storage version, a schema per version), subresources.scale paths, and the structural
    schema rules. Not covered: that defaults validate against their schema, CEL rule
    compilation, conversion webhooks."""
    out: list[Cause] = []
    meta = crd.get("metadata") or {}
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group") or ""
    plural = names.get("plural") or ""
    name = meta.get("name") or ""
    if name != f"{plural}.{group}":
        out.append(invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))

    if not group:
        out.append(required("spec.group"))
    elif _dns1123_subdomain(group):
        out.append(invalid("spec.group", group, ",".join(_dns1123_subdomain(group))))
    elif len(group.split(".")) < 2:
        out.append(invalid("spec.group", group, "should be a domain with at least one dot"))

    scope = spec.get("scope") or ""
    if not scope:
        out.append(required("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        out.append(not_supported("spec.scope", scope, ["Cluster", "Namespaced"]))

    versions = spec.get("versions") or []
    storage = 0
    seen: set[str] = set()
    unique = True
    for i, v in enumerate(versions):
        v = v or {}
        vpath = f"spec.versions[{i}]"
        if v.get("storage"):
            storage += 1
        vn = v.get("name") or ""
        if vn in seen:
            unique = False
        seen.add(vn)
        if _dns1035(vn):
            out.append(invalid(f"{vpath}.name", vn, ",".join(_dns1035(vn))))
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        spath = f"{vpath}.schema.openAPIV3Schema"
        if not isinstance(schema, dict):
            out.append(required(spath, "schemas are required"))
        else:
            _schema_standard(schema, spath, out)
            structural: list[Cause] = []
            _structural(schema, "root", spath, structural)
            out.extend(sorted(structural, key=_error_string))
        scale = (v.get("subresources") or {}).get("scale")
        if isinstance(scale, dict):
            sp = f"{vpath}.subresources.scale"
            for key in ("specReplicasPath", "statusReplicasPath"):
                val = scale.get(key)
                if not val:
                    out.append(required(f"{sp}.{key}"))
                elif not str(val).startswith("."):
                    out.append(invalid(f"{sp}.{key}", val, "should be a json path and start with ."))
    if not unique:
        out.append(invalid("spec.versions", versions, "must contain unique version names"))
    if storage != 1:
        out.append(invalid("spec.versions", versions, "must have exactly one version marked as storage version"))

    if not plural:
        out.append(required("spec.names.plural"))
    if not names.get("kind"):
        out.append(required("spec.names.kind"))
    for key in ("plural", "singular"):
        val = names.get(key) or ""
        if val and _dns1035(val):
            out.append(invalid(f"spec.names.{key}", val, ",".join(_dns1035(val))))
    for key in ("kind", "listKind"):
        val = names.get(key) or ""
        if val and _dns1035(val.lower()):
            out.append(invalid(f"spec.names.{key}", val,
                               "may have mixed case, but should otherwise match: " + ",".join(_dns1035(val.lower()))))
    for i, sn in enumerate(names.get("shortNames") or ()):
        if _dns1035(sn or ""):
            out.append(invalid(f"spec.names.shortNames[{i}]", sn, ",".join(_dns1035(sn or ""))))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        out.append(invalid("spec.names.listKind", names["listKind"], "kind and listKind may not be the same"))
    for i, c in enumerate(names.get("categories") or ()):
        if _dns1035(c or ""):
            out.append(invalid(f"spec.names.categories[{i}]", c, ",".join(_dns1035(c or ""))))

    if spec.get("preserveUnknownFields"):
        out.append(invalid("spec.preserveUnknownFields", True, "cannot set to true, set "
                           "x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead"))
    return out
