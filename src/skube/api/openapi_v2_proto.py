"""``/openapi/v2`` as protobuf: the swagger JSON encoded as gnostic's ``openapi.v2.Document``.

kubectl asks for ``application/com.github.proto-openapi.spec.v2@v1.0+protobuf`` only
(client-side validation of ``kind: List``, ``kubectl explain`` fallbacks); kube-openapi
answers with ``ToProtoBinary`` (gnostic ``ParseDocument`` then ``proto.Marshal``).
This module is that encoder, driven by tables of field numbers from gnostic's
``openapiv2/OpenAPIv2.proto``, and the content negotiation of kube-openapi's v2 handler.

gnostic's shapes: maps (paths, definitions, properties, responses, ...) are ordered
``Named*`` ``{1: name, 2: value}`` pairs; ``x-*`` keys are ``NamedAny`` vendor
extensions; ``Any`` carries ``{2: yaml text}`` (we write JSON text, which YAML parsers
read as the same value); ``$ref`` is ``_ref``; ``Schema.type`` is ``TypeItem``
``{1: repeated string}``; ``items`` is ``ItemsItem`` ``{1: repeated Schema}``;
``additionalProperties`` is a oneof of ``Schema`` (1) and ``bool`` (2). Proto3 rules:
zero scalars are omitted, present messages and oneof members are always written.
Keys gnostic would reject are dropped (and reported through ``dropped``).
"""
from __future__ import annotations

import gzip
import hashlib
import struct
import threading
import weakref
from typing import Any, Callable

import orjson

from .protobuf import _enc_bytes_field, _enc_varint, _enc_varint_field

CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
_ACCEPTED_PROTO = ("application/com.github.proto-openapi.spec.v2@v1.0+protobuf", CONTENT_TYPE)
GZIP_MIN_SIZE = 1400      # NYTimes/gziphandler's DefaultMinSize, which kube-openapi wraps around v2

Enc = Callable[[int, Any, list], bytes]   # (field number, JSON value, dropped keys) -> wire bytes


# --------------------------------------------------------------------------- field kinds

def _str(num: int, v: Any, dropped: list) -> bytes:
    if not isinstance(v, str):
        dropped.append(f"non-string value {v!r}")
        return b""
    return _enc_bytes_field(num, v.encode()) if v else b""


def _bool(num: int, v: Any, dropped: list) -> bytes:
    return _enc_varint_field(num, 1) if v is True else b""


def _int(num: int, v: Any, dropped: list) -> bytes:
    return _enc_varint_field(num, int(v)) if v else b""


def _double(num: int, v: Any, dropped: list) -> bytes:
    return _enc_varint(num << 3 | 1) + struct.pack("<d", float(v)) if v else b""


def _strings(num: int, v: Any, dropped: list) -> bytes:
    return b"".join(_enc_bytes_field(num, s.encode()) for s in v)


def _any_body(v: Any) -> bytes:
    return _enc_bytes_field(2, orjson.dumps(v) + b"\n")


def _any(num: int, v: Any, dropped: list) -> bytes:
    return _enc_bytes_field(num, _any_body(v))


def _anys(num: int, v: Any, dropped: list) -> bytes:
    return b"".join(_any(num, x, dropped) for x in v)


def _named_any(num: int, name: str, v: Any) -> bytes:
    return _enc_bytes_field(num, _enc_bytes_field(1, name.encode()) + _enc_bytes_field(2, _any_body(v)))


def _message(table: dict[str, tuple[int, Enc]], ext: int | None) -> Callable[[Any, list], bytes]:
    """The body encoder of a message: known keys by ``table``, ``x-*`` keys as vendor extensions."""
    def body(obj: Any, dropped: list) -> bytes:
        if not isinstance(obj, dict):
            dropped.append(f"non-object value {obj!r}")
            return b""
        parts: list[tuple[int, bytes]] = []
        for key, v in obj.items():
            spec = table.get(key)
            if spec is not None:
                parts.append((spec[0], spec[1](spec[0], v, dropped)))
            elif ext is not None and key.startswith("x-"):
                parts.append((ext, _named_any(ext, key, v)))
            else:
                dropped.append(key)
        parts.sort(key=lambda p: p[0])     # Go writes fields in number order
        return b"".join(p for _, p in parts)
    return body


def _msg(body: Callable[[Any, list], bytes]) -> Enc:
    return lambda num, v, dropped: _enc_bytes_field(num, body(v, dropped))


def _repeated(body: Callable[[Any, list], bytes]) -> Enc:
    return lambda num, v, dropped: b"".join(_enc_bytes_field(num, body(x, dropped)) for x in v)


def _named(value: Enc) -> Callable[[Any, list], bytes]:
    """A map as ``{1: repeated Named* {1: name, 2: value}}`` in document order."""
    def body(obj: dict, dropped: list) -> bytes:
        return b"".join(_enc_bytes_field(1, _enc_bytes_field(1, k.encode()) + value(2, v, dropped))
                        for k, v in obj.items())
    return body


def _lazy(get: Callable[[], Callable[[Any, list], bytes]]) -> Callable[[Any, list], bytes]:
    return lambda v, dropped: get()(v, dropped)


# --------------------------------------------------------------------------- messages

def _fields(names: list[str], first: int = 1) -> dict[str, int]:
    return {n: i for i, n in enumerate(names, first)}


_KINDS: dict[str, Enc] = {}


def _table(numbers: dict[str, int]) -> dict[str, tuple[int, Enc]]:
    return {k: (n, _KINDS.get(k, _str)) for k, n in numbers.items()}


_EXTERNAL_DOCS = _message(_table(_fields(["description", "url"])), 3)
_XML = _message({"name": (1, _str), "namespace": (2, _str), "prefix": (3, _str),
                 "attribute": (4, _bool), "wrapped": (5, _bool)}, 6)
_JSON_REFERENCE = _message({"$ref": (1, _str), "description": (2, _str)}, None)

_PRIM = ["type", "format", "items", "collectionFormat", "default", "maximum", "exclusiveMaximum",
         "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems",
         "uniqueItems", "enum", "multipleOf"]
_KINDS.update({
    "default": _any, "example": _any, "enum": _anys,
    "maximum": _double, "minimum": _double, "multipleOf": _double,
    "exclusiveMaximum": _bool, "exclusiveMinimum": _bool, "uniqueItems": _bool, "required": _bool,
    "allowEmptyValue": _bool, "readOnly": _bool, "deprecated": _bool,
    "maxLength": _int, "minLength": _int, "maxItems": _int, "minItems": _int,
    "maxProperties": _int, "minProperties": _int,
    "externalDocs": _msg(_EXTERNAL_DOCS), "xml": _msg(_XML),
})


def _with_items(numbers: dict[str, int], ext: int) -> Callable[[Any, list], bytes]:
    t = _table(numbers)
    t["items"] = (numbers["items"], _msg(_lazy(lambda: _PRIMITIVES_ITEMS)))
    return _message(t, ext)


_PRIMITIVES_ITEMS = _with_items(_fields(_PRIM), 18)
_HEADER = _with_items(_fields(_PRIM + ["description"]), 19)
_QUERY_OR_FORM = _with_items(_fields(["required", "in", "description", "name", "allowEmptyValue"] + _PRIM), 23)
_HEADER_OR_PATH = _with_items(_fields(["required", "in", "description", "name"] + _PRIM), 22)


def _type_item(num: int, v: Any, dropped: list) -> bytes:
    values = v if isinstance(v, list) else [v]
    return _enc_bytes_field(num, _strings(1, values, dropped))


def _items_item(num: int, v: Any, dropped: list) -> bytes:
    schemas = v if isinstance(v, list) else [v]
    return _enc_bytes_field(num, b"".join(_enc_bytes_field(1, _SCHEMA(s, dropped)) for s in schemas))


def _additional_properties(num: int, v: Any, dropped: list) -> bytes:
    if isinstance(v, bool):
        return _enc_bytes_field(num, _enc_varint_field(2, int(v)))   # oneof: written even when false
    return _enc_bytes_field(num, _enc_bytes_field(1, _SCHEMA(v, dropped)))


_schema_numbers = _fields(["$ref", "format", "title", "description", "default", "multipleOf", "maximum",
                           "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength",
                           "pattern", "maxItems", "minItems", "uniqueItems", "maxProperties",
                           "minProperties", "required", "enum", "additionalProperties", "type", "items",
                           "allOf", "properties", "discriminator", "readOnly", "xml", "externalDocs",
                           "example"])
_schema_table = _table(_schema_numbers)
_schema_table.update({
    "required": (19, _strings), "additionalProperties": (21, _additional_properties),
    "type": (22, _type_item), "items": (23, _items_item),
    "allOf": (24, _repeated(_lazy(lambda: _SCHEMA))),
    "properties": (25, _msg(_named(_msg(_lazy(lambda: _SCHEMA))))),
})
_SCHEMA = _message(_schema_table, 31)

_file_table = _table(_fields(["format", "title", "description", "default", "required", "type", "readOnly",
                              "externalDocs", "example"]))
_file_table["required"] = (5, _strings)
_FILE_SCHEMA = _message(_file_table, 10)

_BODY_PARAMETER = _message({"description": (1, _str), "name": (2, _str), "in": (3, _str),
                            "required": (4, _bool), "schema": (5, _msg(_SCHEMA))}, 6)
_NON_BODY = {"header": (1, _HEADER_OR_PATH), "formData": (2, _QUERY_OR_FORM),
             "query": (3, _QUERY_OR_FORM), "path": (4, _HEADER_OR_PATH)}


def _parameter(v: Any, dropped: list) -> bytes:
    """``Parameter``: oneof ``BodyParameter`` (1) / ``NonBodyParameter`` (2) chosen by ``in``."""
    where = v.get("in") if isinstance(v, dict) else None
    if where == "body":
        return _enc_bytes_field(1, _BODY_PARAMETER(v, dropped))
    if where not in _NON_BODY:
        dropped.append(f"parameter in {where!r}")
        return b""
    num, body = _NON_BODY[where]
    return _enc_bytes_field(2, _enc_bytes_field(num, body(v, dropped)))


def _ref_or(value: Callable[[Any, list], bytes]) -> Callable[[Any, list], bytes]:
    """A oneof of ``value`` (1) and ``JsonReference`` (2), as gnostic picks it: by ``$ref``."""
    def body(v: Any, dropped: list) -> bytes:
        if isinstance(v, dict) and "$ref" in v:
            return _enc_bytes_field(2, _JSON_REFERENCE(v, dropped))
        return _enc_bytes_field(1, value(v, dropped))
    return body


def _schema_item(num: int, v: Any, dropped: list) -> bytes:
    if isinstance(v, dict) and v.get("type") == "file":
        return _enc_bytes_field(num, _enc_bytes_field(2, _FILE_SCHEMA(v, dropped)))
    return _enc_bytes_field(num, _enc_bytes_field(1, _SCHEMA(v, dropped)))


_RESPONSE = _message({"description": (1, _str), "schema": (2, _schema_item),
                      "headers": (3, _msg(_named(_msg(_HEADER)))),
                      "examples": (4, _msg(_named(_any)))}, 5)


def _responses(v: Any, dropped: list) -> bytes:
    """``Responses``: status codes as ``NamedResponseValue`` (1), ``x-*`` as extensions (2)."""
    out = []
    for code, r in v.items():
        if code.startswith("x-"):
            out.append(_named_any(2, code, r))
        else:
            out.append(_enc_bytes_field(1, _enc_bytes_field(1, code.encode())
                                        + _enc_bytes_field(2, _ref_or(_RESPONSE)(r, dropped))))
    return b"".join(out)


_PARAMETERS_ITEMS = _repeated(_ref_or(_parameter))
_SECURITY_REQUIREMENT = _named(lambda num, v, dropped: _enc_bytes_field(num, _strings(1, v, dropped)))
_OPERATION = _message({
    "tags": (1, _strings), "summary": (2, _str), "description": (3, _str),
    "externalDocs": (4, _msg(_EXTERNAL_DOCS)), "operationId": (5, _str), "produces": (6, _strings),
    "consumes": (7, _strings), "parameters": (8, _PARAMETERS_ITEMS), "responses": (9, _msg(_responses)),
    "schemes": (10, _strings), "deprecated": (11, _bool), "security": (12, _repeated(_SECURITY_REQUIREMENT)),
}, 13)
_PATH_ITEM = _message({"$ref": (1, _str), "get": (2, _msg(_OPERATION)), "put": (3, _msg(_OPERATION)),
                       "post": (4, _msg(_OPERATION)), "delete": (5, _msg(_OPERATION)),
                       "options": (6, _msg(_OPERATION)), "head": (7, _msg(_OPERATION)),
                       "patch": (8, _msg(_OPERATION)), "parameters": (9, _PARAMETERS_ITEMS)}, 10)


def _paths(v: Any, dropped: list) -> bytes:
    """``Paths``: ``x-*`` as extensions (1), each path as ``NamedPathItem`` (2)."""
    return b"".join(_named_any(1, k, p) if k.startswith("x-") else
                    _enc_bytes_field(2, _enc_bytes_field(1, k.encode()) + _enc_bytes_field(2, _PATH_ITEM(p, dropped)))
                    for k, p in v.items())


_API_KEY = _message(_table(_fields(["type", "name", "in", "description"])), 5)
_BASIC = _message(_table(_fields(["type", "description"])), 3)


def _security_definition(num: int, v: Any, dropped: list) -> bytes:
    """``SecurityDefinitionsItem``: basic (1) or apiKey (2); OAuth2 flows are not served by skube."""
    kind = v.get("type") if isinstance(v, dict) else None
    if kind == "apiKey":
        return _enc_bytes_field(num, _enc_bytes_field(2, _API_KEY(v, dropped)))
    if kind == "basic":
        return _enc_bytes_field(num, _enc_bytes_field(1, _BASIC(v, dropped)))
    dropped.append(f"security definition of type {kind!r}")
    return _enc_bytes_field(num, b"")


_CONTACT = _message(_table(_fields(["name", "url", "email"])), 4)
_LICENSE = _message(_table(_fields(["name", "url"])), 3)
_INFO = _message({"title": (1, _str), "version": (2, _str), "description": (3, _str),
                  "termsOfService": (4, _str), "contact": (5, _msg(_CONTACT)),
                  "license": (6, _msg(_LICENSE))}, 7)
_TAG = _message({"name": (1, _str), "description": (2, _str), "externalDocs": (3, _msg(_EXTERNAL_DOCS))}, 4)
_DOCUMENT = _message({
    "swagger": (1, _str), "info": (2, _msg(_INFO)), "host": (3, _str), "basePath": (4, _str),
    "schemes": (5, _strings), "consumes": (6, _strings), "produces": (7, _strings),
    "paths": (8, _msg(_paths)), "definitions": (9, _msg(_named(_msg(_SCHEMA)))),
    "parameters": (10, _msg(_named(_msg(_parameter)))), "responses": (11, _msg(_named(_msg(_RESPONSE)))),
    "security": (12, _repeated(_SECURITY_REQUIREMENT)),
    "securityDefinitions": (13, _msg(_named(_security_definition))),
    "tags": (14, _repeated(_TAG)), "externalDocs": (15, _msg(_EXTERNAL_DOCS)),
}, 16)


def encode_document(doc: dict, dropped: list | None = None) -> bytes:
    """The swagger 2.0 ``doc`` as an ``openapi.v2.Document`` message; keys gnostic has no
    field for are skipped and appended to ``dropped``."""
    return _DOCUMENT(doc, dropped if dropped is not None else [])


# --------------------------------------------------------------------------- serving

class _Encoded:
    """One version of the v2 document in every served form."""

    def __init__(self, json_body: bytes) -> None:
        self.json = json_body
        self.etag = '"%s"' % hashlib.sha512(json_body).hexdigest().upper()
        self._proto: bytes | None = None
        self._gzip: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def body(self, proto: bool) -> bytes:
        if not proto:
            return self.json
        with self._lock:
            if self._proto is None:
                self._proto = encode_document(orjson.loads(self.json))
            return self._proto

    def gzipped(self, proto: bool) -> bytes:
        key = "proto" if proto else "json"
        raw = self.body(proto)
        with self._lock:
            if key not in self._gzip:
                self._gzip[key] = gzip.compress(raw, compresslevel=6, mtime=0)
            return self._gzip[key]


_served: "weakref.WeakKeyDictionary[Any, _Encoded]" = weakref.WeakKeyDictionary()
_served_lock = threading.Lock()


def encoded(owner: Any, json_body: bytes) -> _Encoded:
    """The cached forms of ``json_body`` for ``owner`` (a registry): recomputed only when the
    JSON document changes (it is itself cached per registry generation)."""
    with _served_lock:
        e = _served.get(owner)
        if e is None or e.json is not json_body:
            e = _served[owner] = _Encoded(json_body)
        return e


def _quality(params: dict[str, str]) -> float:
    try:
        return float(params.get("q", "1"))
    except ValueError:
        return 0.0


def negotiate(accepts: list[tuple[str, dict[str, str]]]) -> str | None:
    """The v2 format to serve for an Accept list — ``"json"``, ``"proto"`` or None (406) —
    the first acceptable clause by quality, as kube-openapi's handler picks it."""
    clauses = accepts or [("*/*", {})]
    for media, params in sorted(clauses, key=lambda c: -_quality(c[1])):
        if _quality(params) <= 0:
            continue
        if media in ("*/*", "application/*", "application/json"):
            return "json"
        if media in _ACCEPTED_PROTO:
            return "proto"
    return None


def _accepts_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.split(","):
        coding, *params = [f.strip() for f in part.split(";")]
        if coding.lower() == "gzip":
            return _quality(dict(f.split("=", 1) for f in params if "=" in f)) > 0
    return False


def response(e: _Encoded, fmt: str, if_none_match: str,
             accept_encoding: str) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
    """(status, body, content type, other headers) for ``fmt``: the ETag is the quoted
    upper-case SHA-512 of the JSON for both formats, 304 on a matching If-None-Match,
    gzip when asked and the body is at least 1400 bytes."""
    proto = fmt == "proto"
    ctype = (CONTENT_TYPE if proto else "application/json").encode()
    headers = [(b"etag", e.etag.encode()), (b"vary", b"Accept, Accept-Encoding")]
    tags = [t.strip() for t in if_none_match.split(",")] if if_none_match else []
    if e.etag in tags or "*" in tags or ("W/" + e.etag) in tags:
        return 304, b"", ctype, headers
    body = e.body(proto)
    if _accepts_gzip(accept_encoding) and len(body) >= GZIP_MIN_SIZE:
        headers.append((b"content-encoding", b"gzip"))
        body = e.gzipped(proto)
    return 200, body, ctype, headers
