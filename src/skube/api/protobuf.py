"""Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``).

kubectl's typed commands (``create configmap|deployment|...``, ``run``, ``expose``,
``drain``, ``autoscale``) send built-in objects as protobuf with no JSON fallback.
:func:`decode` turns such a body into the JSON-shaped dict the JSON path produces.

Wire format (apimachinery ``runtime/serializer/protobuf``): the 4-byte magic
``k8s\\x00`` then a ``runtime.Unknown`` message ``{1: typeMeta {1: apiVersion,
2: kind}, 2: raw, 3: contentEncoding, 4: contentType}`` where ``raw`` is the object's
own message. Field numbers come from :mod:`skube.api.protobuf_fields` (generated),
field *types* from the upstream OpenAPI definitions (:mod:`skube.api.schema`):
``$ref`` -> nested message, ``array`` -> repeated, ``additionalProperties`` -> map
(repeated ``{1: key, 2: value}`` entries), ``format: byte`` -> bytes (base64 in JSON).
Hand-written codecs cover the types Go marshals specially: ``Time``/``MicroTime``
(``{1: seconds, 2: nanos}``), ``Duration`` (``{1: ns}``), ``Quantity`` (``{1: string}``),
``IntOrString`` (``{1: type, 2: intVal, 3: strVal}``), ``RawExtension`` and
``FieldsV1`` (``{1: raw JSON}``).

Presence: Go's marshaller writes every non-pointer scalar, so a zero value on the
wire means "unset" unless the table marks the field ``!`` (a pointer, or a field JSON
always carries); zeros of other scalars are dropped exactly as ``omitempty`` drops
them from JSON. Pointer fields and messages follow proto2 presence. Unknown field
numbers are skipped (forward compatibility), like upstream.
"""
from __future__ import annotations

import base64
import datetime as _dt
import re
import struct
import threading
from typing import Any, Callable

import orjson

from skube.api import errors
from skube.api.protobuf_fields import MESSAGES
from skube.api.schema import definitions, gvk_index

__all__ = ["MAGIC", "CONTENT_TYPE", "decode", "encode", "decode_object", "encode_object",
           "definition_name", "format_duration", "parse_duration"]

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

_TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
_MICROTIME = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"
_DURATION = "io.k8s.apimachinery.pkg.apis.meta.v1.Duration"
_FIELDSV1 = "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_INTORSTRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_RAWEXTENSION = "io.k8s.apimachinery.pkg.runtime.RawExtension"

# field kinds
STR, BYTES, BOOL, INT, FLOAT, MSG, SPECIAL, INLINE, MAP, WRAP, BAD = range(11)
# zero-value policies
DROP, KEEP, OMITZERO = 0, 1, 2

_U64 = 1 << 64
_I63 = 1 << 63


class _Malformed(Exception):
    pass


# --------------------------------------------------------------------------- plans
# A plan is {field number: (json name, kind, sub, repeated, zero policy)}; ``sub`` is
# the nested plan (MSG/INLINE), a special codec (SPECIAL), the value's (kind, sub)
# (MAP, WRAP) or an explanation (BAD).

class _Special:
    __slots__ = ("name", "dec", "enc")

    def __init__(self, name: str, dec: Callable, enc: Callable):
        self.name, self.dec, self.enc = name, dec, enc


_SPECIALS: dict[str, _Special] = {}
_plans: dict[tuple[str, str], dict] = {}  # complete or being built (under _lock)
_ready: dict[str, dict] = {}  # complete plans of top-level definitions
_lock = threading.Lock()


def _root_plan(definition: str) -> dict:
    plan = _ready.get(definition)
    if plan is None:
        with _lock:  # a plan is visible to other threads only once fully built
            plan = _ready[definition] = _plan(definition, definition)
    return plan


def _type_of(schema: dict) -> str | None:
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), None)
    return t


def _resolve(schema: dict, where: str) -> tuple[int, Any]:
    """(kind, sub) of one value described by an OpenAPI schema."""
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        special = _SPECIALS.get(name)
        if special is not None:
            return SPECIAL, special
        if name not in MESSAGES:
            return BAD, f"{where}: no protobuf field table for {name}"
        return MSG, _plan(name, name)
    t = _type_of(schema)
    if t == "string":
        return (BYTES, None) if schema.get("format") == "byte" else (STR, None)
    if t == "integer":
        return INT, None
    if t == "boolean":
        return BOOL, None
    if t == "number":
        return FLOAT, None
    if t == "object" and isinstance(schema.get("additionalProperties"), dict):
        val = schema["additionalProperties"]
        if _type_of(val) == "array":  # map<string, []T>: values are {1: repeated items}
            return MAP, (WRAP, _resolve(val["items"], where))
        return MAP, _resolve(val, where)
    return BAD, f"{where}: unsupported schema for protobuf"


def _plan(message: str, owner: str) -> dict:
    """Plan of ``message`` whose JSON names are properties of definition ``owner``
    (the same definition, except for messages inlined into an enclosing object)."""
    key = (message, owner)
    plan = _plans.get(key)
    if plan is not None:
        return plan
    plan = _plans[key] = {}  # registered first: definitions may be recursive
    props = definitions()[owner].get("properties", {})
    for num, entry in MESSAGES[message].items():
        if entry[0] == "=":
            plan[num] = ("", INLINE, _plan(entry[1:], owner), False, KEEP)
            continue
        zero, wrap = DROP, False
        if entry[-1] == "!":
            zero, entry = KEEP, entry[:-1]
        elif entry[-1] == "?":
            zero, entry = OMITZERO, entry[:-1]
        elif entry[-1] == "~":
            wrap, entry = True, entry[:-1]
        schema = props.get(entry)
        if schema is None:
            plan[num] = (entry, BAD, f"{owner}.{entry}: not in the OpenAPI definition",
                         False, KEEP)
            continue
        where = f"{owner}.{entry}"
        if _type_of(schema) == "array":
            kind, sub = _resolve(schema.get("items", {}), where)
            if wrap:
                plan[num] = (entry, WRAP, (kind, sub), False, KEEP)
            else:
                plan[num] = (entry, kind, sub, True, KEEP)
        else:
            kind, sub = _resolve(schema, where)
            if kind in (MSG, SPECIAL, MAP) and zero == DROP:
                zero = KEEP  # omitempty never drops a struct in Go's JSON
            plan[num] = (entry, kind, sub, False, zero)
    return plan


def definition_name(api_version: str, kind: str) -> str | None:
    """OpenAPI definition of a built-in kind, if protobuf can carry it."""
    group, _, version = api_version.rpartition("/")
    name = gvk_index().get((group, version, kind))
    if name is None or name not in MESSAGES:
        return None
    return name


# --------------------------------------------------------------------------- decoding

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    pos += 1
    if b < 0x80:
        return b, pos
    result = b & 0x7F
    shift = 7
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _Malformed(f"varint too long at offset {pos}")


def _skip(buf: bytes, pos: int, end: int, wt: int) -> int:
    if wt == 0:
        _, pos = _varint(buf, pos)
    elif wt == 2:
        n, pos = _varint(buf, pos)
        pos += n
    elif wt == 1:
        pos += 8
    elif wt == 5:
        pos += 4
    else:
        raise _Malformed(f"unsupported wire type {wt} at offset {pos}")
    if pos > end:
        raise _Malformed("truncated field")
    return pos


def _scalar_fields(buf: bytes, pos: int, end: int) -> dict[int, Any]:
    """A flat message of varints / length-delimited bytes, for the special codecs."""
    out: dict[int, Any] = {}
    while pos < end:
        key, pos = _varint(buf, pos)
        wt = key & 7
        if wt == 0:
            out[key >> 3], pos = _varint(buf, pos)
        elif wt == 2:
            n, pos = _varint(buf, pos)
            if pos + n > end:
                raise _Malformed("truncated field")
            out[key >> 3] = buf[pos:pos + n]
            pos += n
        else:
            pos = _skip(buf, pos, end, wt)
    if pos != end:
        raise _Malformed("truncated message")
    return out


def _signed(v: int) -> int:
    return v - _U64 if v >= _I63 else v


def _decode_value(buf: bytes, pos: int, end: int, kind: int, sub: Any, where: str):
    """A length-delimited value of the given kind (map values, wrapper items)."""
    if kind == STR:
        return buf[pos:end].decode()
    if kind == BYTES:
        return base64.b64encode(buf[pos:end]).decode("ascii")
    if kind == MSG:
        out: dict = {}
        _message(buf, pos, end, sub, out)
        return out
    if kind == SPECIAL:
        return sub.dec(buf, pos, end)
    if kind == WRAP:
        return _wrapped(buf, pos, end, sub, where)
    raise _Malformed(f"{where}: expected a length-delimited value")


def _zero_value(kind: int, sub: Any):
    if kind in (STR, BYTES):
        return ""
    if kind == MSG:
        return {}
    if kind == SPECIAL:
        return sub.dec(b"", 0, 0)
    if kind == WRAP:
        return []
    if kind == BOOL:
        return False
    return 0


def _map_entry(buf: bytes, pos: int, end: int, vkind: int, vsub: Any, where: str):
    key = ""
    val = _MISSING
    while pos < end:
        tag = buf[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _varint(buf, pos - 1)
        wt = tag & 7
        fnum = tag >> 3
        if wt == 2:
            n = buf[pos]
            pos += 1
            if n >= 0x80:
                n, pos = _varint(buf, pos - 1)
            e = pos + n
            if e > end:
                raise _Malformed(f"{where}: truncated map entry")
            if fnum == 1:
                key = buf[pos:e].decode()
            elif fnum == 2:
                val = _decode_value(buf, pos, e, vkind, vsub, where)
            pos = e
        elif wt == 0 and fnum == 2 and vkind in (INT, BOOL):
            v, pos = _varint(buf, pos)
            val = (v != 0) if vkind == BOOL else _signed(v)
        else:
            pos = _skip(buf, pos, end, wt)
    if pos != end:
        raise _Malformed(f"{where}: truncated map entry")
    if val is _MISSING:
        val = _zero_value(vkind, vsub)
    return key, val


_MISSING = object()


def _wrapped(buf: bytes, pos: int, end: int, item: tuple[int, Any], where: str) -> list:
    """A named slice type's wrapper message ``{1: repeated items}``."""
    kind, sub = item
    out: list = []
    while pos < end:
        tag, pos = _varint(buf, pos)
        wt = tag & 7
        if tag >> 3 != 1:
            pos = _skip(buf, pos, end, wt)
            continue
        if wt == 2:
            n, pos = _varint(buf, pos)
            if pos + n > end:
                raise _Malformed(f"{where}: truncated item")
            if kind in (INT, BOOL):  # packed
                e = pos + n
                while pos < e:
                    v, pos = _varint(buf, pos)
                    out.append((v != 0) if kind == BOOL else _signed(v))
                continue
            out.append(_decode_value(buf, pos, pos + n, kind, sub, where))
            pos += n
        elif wt == 0 and kind in (INT, BOOL):
            v, pos = _varint(buf, pos)
            out.append((v != 0) if kind == BOOL else _signed(v))
        else:
            raise _Malformed(f"{where}: wire type {wt} does not fit")
    if pos != end:
        raise _Malformed(f"{where}: truncated message")
    return out


def _message(buf: bytes, pos: int, end: int, plan: dict, out: dict) -> None:
    get = plan.get
    while pos < end:
        tag = buf[pos]
        pos += 1
        if tag >= 0x80:
            tag, pos = _varint(buf, pos - 1)
        wt = tag & 7
        f = get(tag >> 3)
        if f is None:
            pos = _skip(buf, pos, end, wt)
            continue
        name, kind, sub, rep, zero = f
        if wt == 2:
            n = buf[pos]
            pos += 1
            if n >= 0x80:
                n, pos = _varint(buf, pos - 1)
            e = pos + n
            if e > end:
                raise _Malformed(f"field {name!r}: length {n} runs past the end of its message")
            if kind == STR:
                v = buf[pos:e].decode()
            elif kind == MSG:
                v = None if rep else out.get(name)
                if v is None:
                    v = {}
                _message(buf, pos, e, sub, v)
            elif kind == SPECIAL:
                v = sub.dec(buf, pos, e)
            elif kind == MAP:
                k, v = _map_entry(buf, pos, e, sub[0], sub[1], name)
                m = out.get(name)
                if m is None:
                    m = out[name] = {}
                m[k] = v
                pos = e
                continue
            elif kind == INLINE:
                _message(buf, pos, e, sub, out)
                pos = e
                continue
            elif kind == BYTES:
                v = base64.b64encode(buf[pos:e]).decode("ascii")
            elif kind == WRAP:
                v = _wrapped(buf, pos, e, sub, name)
            elif rep and kind in (INT, BOOL):  # packed repeated scalars
                lst = out.setdefault(name, [])
                while pos < e:
                    v, pos = _varint(buf, pos)
                    lst.append((v != 0) if kind == BOOL else _signed(v))
                if pos != e:
                    raise _Malformed(f"field {name!r}: truncated packed values")
                continue
            elif kind == BAD:
                raise _Unsupported(sub)
            else:
                raise _Malformed(f"field {name!r}: got a length-delimited value for a scalar")
            pos = e
        elif wt == 0:
            if kind == INT:
                v, pos = _varint(buf, pos)
                if v >= _I63:
                    v -= _U64
            elif kind == BOOL:
                v, pos = _varint(buf, pos)
                v = v != 0
            elif kind == BAD:
                raise _Unsupported(sub)
            else:
                raise _Malformed(f"field {name!r}: got a varint for a non-integer field")
        elif wt == 1 and kind == FLOAT:
            if pos + 8 > end:
                raise _Malformed(f"field {name!r}: truncated double")
            v = _unpack_double(buf, pos)
            pos += 8
        elif wt == 5 and kind == FLOAT:
            if pos + 4 > end:
                raise _Malformed(f"field {name!r}: truncated float")
            v = _unpack_float(buf, pos)
            pos += 4
        else:
            raise _Malformed(f"field {name!r}: wire type {wt} does not fit its type")
        if rep:
            lst = out.get(name)
            if lst is None:
                out[name] = [v]
            else:
                lst.append(v)
        elif zero == KEEP or (v if zero == DROP else v not in (None, {})):
            out[name] = v
        else:
            out.pop(name, None)
    if pos != end:
        raise _Malformed("a field runs past the end of its message")


def _unpack_double(buf: bytes, pos: int) -> float:
    return struct.unpack_from("<d", buf, pos)[0]


def _unpack_float(buf: bytes, pos: int) -> float:
    return struct.unpack_from("<f", buf, pos)[0]


class _Unsupported(Exception):
    pass


# --------------------------------------------------------------------------- special types

_EPOCH = _dt.datetime(1970, 1, 1)


def _timestamp(buf: bytes, pos: int, end: int) -> tuple[int, int] | None:
    if pos == end:
        return None  # Go writes the zero time as an empty message
    f = _scalar_fields(buf, pos, end)
    return _signed(f.get(1, 0)), _signed(f.get(2, 0))


def _dec_time(buf, pos, end):
    ts = _timestamp(buf, pos, end)
    if ts is None:
        return None
    d = _EPOCH + _dt.timedelta(seconds=ts[0])
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}Z"


def _dec_microtime(buf, pos, end):
    ts = _timestamp(buf, pos, end)
    if ts is None:
        return None
    d = _EPOCH + _dt.timedelta(seconds=ts[0])
    return (f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:"
            f"{d.second:02d}.{ts[1] // 1000:06d}Z")


def _parse_time(value: str) -> tuple[int, int]:
    s = value.strip()
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1] + "+00:00"
    d = _dt.datetime.fromisoformat(s)
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    delta = d - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
    secs = delta.days * 86400 + delta.seconds
    nanos = delta.microseconds * 1000
    frac = value.rpartition(".")[2] if "." in value else ""
    digits = "".join(ch for ch in frac if ch.isdigit())
    if len(digits) > 6:  # keep nanosecond precision that datetime drops
        nanos = int(digits[:9].ljust(9, "0"))
    return secs, nanos


def _enc_time(value) -> bytes:
    if value is None:
        return b""
    secs, nanos = _parse_time(value)
    return _enc_varint_field(1, secs) + (_enc_varint_field(2, nanos) if nanos else b"")


def _enc_time_seconds(value) -> bytes:
    if value is None:
        return b""
    secs, _ = _parse_time(value)
    return _enc_varint_field(1, secs)


def format_duration(ns: int) -> str:
    """Go's ``time.Duration.String()`` ("1h2m3.5s", "1.5ms", "0s")."""
    if ns == 0:
        return "0s"
    neg = ns < 0
    u = -ns if neg else ns
    if u < 1_000_000_000:
        for unit, scale in (("ns", 1), ("µs", 1_000), ("ms", 1_000_000)):
            if u < scale * 1000:
                return ("-" if neg else "") + _frac(u, scale) + unit
    secs, frac_ns = divmod(u, 1_000_000_000)
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    out = _frac(s * 1_000_000_000 + frac_ns, 1_000_000_000) + "s"
    if h or m:
        out = f"{m}m" + out
    if h:
        out = f"{h}h" + out
    return ("-" if neg else "") + out


def _frac(v: int, scale: int) -> str:
    whole, rest = divmod(v, scale)
    if not rest:
        return str(whole)
    width = len(str(scale)) - 1
    return f"{whole}." + f"{rest:0{width}d}".rstrip("0")


def parse_duration(value: str) -> int:
    """Inverse of :func:`format_duration` (Go ``time.ParseDuration``) in ns."""
    units = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
             "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
    s = value.strip()
    neg = s.startswith("-")
    s = s.lstrip("+-")
    if s == "0":
        return 0
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)", s)
    if not parts or "".join(a + b for a, b in parts) != s:
        raise ValueError(f"invalid duration {value!r}")
    total = 0
    for num, unit in parts:
        whole, _, frac = num.partition(".")
        total += int(whole or 0) * units[unit]
        if frac:
            total += int(frac) * units[unit] // 10 ** len(frac)
    return -total if neg else total


def _dec_duration(buf, pos, end):
    f = _scalar_fields(buf, pos, end)
    return format_duration(_signed(f.get(1, 0)))


def _enc_duration(value) -> bytes:
    return _enc_varint_field(1, parse_duration(value))


def _dec_quantity(buf, pos, end):
    f = _scalar_fields(buf, pos, end)
    s = f.get(1)
    return s.decode() if s else "0"


def _enc_quantity(value) -> bytes:
    return _enc_bytes_field(1, str(value).encode())


def _dec_intorstring(buf, pos, end):
    f = _scalar_fields(buf, pos, end)
    if f.get(1, 0) == 1:
        s = f.get(3, b"")
        return s.decode() if isinstance(s, bytes) else ""
    v = f.get(2, 0)
    return _signed(v) if isinstance(v, int) else 0


def _enc_intorstring(value) -> bytes:
    if isinstance(value, str):
        return _enc_varint_field(1, 1) + _enc_bytes_field(3, value.encode())
    return _enc_varint_field(1, 0) + _enc_varint_field(2, int(value))


def _dec_raw_json(buf, pos, end):
    f = _scalar_fields(buf, pos, end)
    raw = f.get(1)
    if not raw:
        return None
    if raw[:4] == MAGIC:
        return decode(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise _Malformed(f"embedded raw object is not JSON: {e}") from None


def _enc_raw_json(value) -> bytes:
    if value is None:
        return b""
    return _enc_bytes_field(1, orjson.dumps(value))


def _register_specials() -> None:
    for name, dec, enc in (
        (_TIME, _dec_time, _enc_time_seconds),
        (_MICROTIME, _dec_microtime, _enc_time),
        (_DURATION, _dec_duration, _enc_duration),
        (_QUANTITY, _dec_quantity, _enc_quantity),
        (_INTORSTRING, _dec_intorstring, _enc_intorstring),
        (_RAWEXTENSION, _dec_raw_json, _enc_raw_json),
        (_FIELDSV1, _dec_raw_json, _enc_raw_json),
    ):
        _SPECIALS[name] = _Special(name, dec, enc)


_register_specials()


# --------------------------------------------------------------------------- public API

def decode_object(definition: str, raw: bytes) -> dict:
    """Decode one message (no magic, no envelope) of the given OpenAPI definition."""
    out: dict = {}
    try:
        _message(raw, 0, len(raw), _root_plan(definition), out)
    except _Malformed as e:
        raise errors.bad_request(f"unable to decode protobuf {definition.rsplit('.', 1)[-1]}: {e}")
    except _Unsupported as e:
        raise errors.APIError(415, "UnsupportedMediaType",
                              f"protobuf is not supported for this object: {e}")
    except (IndexError, UnicodeDecodeError, RecursionError, ValueError, OverflowError) as e:
        why = ("truncated data" if isinstance(e, IndexError)
               else "invalid UTF-8 in a string field" if isinstance(e, UnicodeDecodeError)
               else str(e) or type(e).__name__)
        raise errors.bad_request(
            f"unable to decode protobuf {definition.rsplit('.', 1)[-1]}: {why}") from None
    return out


def decode(body: bytes) -> dict:
    """A ``application/vnd.kubernetes.protobuf`` body -> ``{"apiVersion", "kind", ...}``."""
    body = bytes(body)
    if body[:4] != MAGIC:
        raise errors.bad_request(
            "unable to decode protobuf body: missing the 'k8s\\x00' prefix of "
            "Kubernetes protobuf encoding")
    try:
        env = _scalar_fields(body, 4, len(body))
        tm = env.get(1, b"")
        if not isinstance(tm, bytes):
            raise _Malformed("typeMeta is not a message")
        type_meta = _scalar_fields(tm, 0, len(tm))
        api_version = type_meta.get(1, b"")
        kind = type_meta.get(2, b"")
        if not isinstance(api_version, bytes) or not isinstance(kind, bytes):
            raise _Malformed("typeMeta fields are not strings")
        api_version, kind = api_version.decode(), kind.decode()
        raw = env.get(2, b"")
        encoding = env.get(3, b"")
        content_type = env.get(4, b"")
        if not isinstance(raw, bytes):
            raise _Malformed("raw is not bytes")
    except (_Malformed, IndexError, UnicodeDecodeError) as e:
        why = "truncated data" if isinstance(e, IndexError) else str(e)
        raise errors.bad_request(f"unable to decode protobuf envelope (runtime.Unknown): {why}")
    if not kind or not api_version:
        raise errors.bad_request(
            "unable to decode protobuf body: Object 'Kind' or 'apiVersion' is missing "
            "in the runtime.Unknown envelope")
    if isinstance(encoding, bytes) and encoding:
        raise errors.APIError(415, "UnsupportedMediaType",
                              f"unsupported protobuf content encoding {encoding.decode(errors='replace')!r}")
    if isinstance(content_type, bytes) and b"json" in content_type:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise errors.bad_request(f"unable to decode embedded JSON object: {e}")
        if not isinstance(obj, dict):
            raise errors.bad_request("embedded JSON object is not an object")
        obj.setdefault("apiVersion", api_version)
        obj.setdefault("kind", kind)
        return obj
    name = definition_name(api_version, kind)
    if name is None:
        raise errors.APIError(
            415, "UnsupportedMediaType",
            f"the body of the request was in an unknown format - no protobuf schema is known "
            f"for {kind} in {api_version}; send application/json instead")
    out = {"apiVersion": api_version, "kind": kind}
    out.update(decode_object(name, raw))
    return out


# --------------------------------------------------------------------------- encoding
# The inverse of decode, from the same tables: used by tests to round-trip objects,
# and usable to answer clients in protobuf.

def _enc_varint(v: int) -> bytes:
    if v < 0:
        v += _U64
    if v < 0x80:
        return bytes((v,))
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _enc_varint_field(num: int, v: int) -> bytes:
    return _enc_varint(num << 3) + _enc_varint(v)


def _enc_bytes_field(num: int, data: bytes) -> bytes:
    return _enc_varint(num << 3 | 2) + _enc_varint(len(data)) + data


def _enc_value(num: int, kind: int, sub: Any, v: Any, where: str) -> bytes:
    if kind == STR:
        return _enc_bytes_field(num, str(v).encode())
    if kind == BYTES:
        return _enc_bytes_field(num, base64.b64decode(v))
    if kind == INT:
        return _enc_varint_field(num, int(v))
    if kind == BOOL:
        return _enc_varint_field(num, 1 if v else 0)
    if kind == FLOAT:
        return _enc_varint(num << 3 | 1) + struct.pack("<d", float(v))
    if kind == MSG:
        if not isinstance(v, dict):
            raise ValueError(f"{where}: expected an object")
        return _enc_bytes_field(num, _enc_message(v, sub))
    if kind == SPECIAL:
        return _enc_bytes_field(num, sub.enc(v))
    if kind == WRAP:
        ikind, isub = sub
        return _enc_bytes_field(num, b"".join(_enc_value(1, ikind, isub, x, where) for x in v))
    if kind == MAP:
        vkind, vsub = sub
        return b"".join(
            _enc_bytes_field(num, _enc_bytes_field(1, str(k).encode())
                             + _enc_value(2, vkind, vsub, v[k], where))
            for k in sorted(v))
    raise ValueError(f"{where}: cannot encode ({sub})")


def _enc_message(obj: dict, plan: dict) -> bytes:
    parts = []
    for num, (name, kind, sub, rep, _zero) in sorted(plan.items()):
        if kind == INLINE:
            inner = _enc_message(obj, sub)
            if inner:
                parts.append(_enc_bytes_field(num, inner))
            continue
        if name not in obj:
            continue
        v = obj[name]
        if v is None and kind != SPECIAL:
            continue
        if rep:
            for item in v:
                parts.append(_enc_value(num, kind, sub, item, name))
        else:
            parts.append(_enc_value(num, kind, sub, v, name))
    return b"".join(parts)


def encode_object(definition: str, obj: dict) -> bytes:
    """One message of the given definition (no magic, no envelope)."""
    return _enc_message(obj, _root_plan(definition))


def encode(obj: dict) -> bytes:
    """A JSON-shaped built-in object -> Kubernetes protobuf (magic + runtime.Unknown)."""
    api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    name = definition_name(api_version, kind)
    if name is None:
        raise ValueError(f"no protobuf schema for {kind} in {api_version}")
    type_meta = _enc_bytes_field(1, api_version.encode()) + _enc_bytes_field(2, kind.encode())
    raw = encode_object(name, obj)
    return MAGIC + _enc_bytes_field(1, type_meta) + _enc_bytes_field(2, raw) \
        + _enc_bytes_field(3, b"") + _enc_bytes_field(4, b"")
