"""/openapi/v2 as gnostic's openapi.v2.Document: encode, then read back with a minimal
protobuf reader that follows the field numbers of gnostic's OpenAPIv2.proto."""
from __future__ import annotations

import gzip
import struct

import orjson
import yaml

from skube.api import openapi, openapi_v2_proto as pb
from skube.api.registry import Registry


# ----------------------------------------------------------------- a minimal wire reader

def fields(buf: bytes) -> list[tuple[int, object]]:
    """[(field number, value)]: varints as int, fixed64 as float, length-delimited as bytes."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, pos = varint(buf, pos)
        elif wt == 1:
            v, pos = struct.unpack_from("<d", buf, pos)[0], pos + 8
        elif wt == 2:
            n, pos = varint(buf, pos)
            v, pos = buf[pos:pos + n], pos + n
            assert pos <= len(buf), "truncated"
        else:
            raise AssertionError(f"unexpected wire type {wt}")
        out.append((num, v))
    assert pos == len(buf)
    return out


def varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def one(buf: bytes, num: int):
    values = [v for n, v in fields(buf) if n == num]
    assert len(values) == 1, (num, values)
    return values[0]


def many(buf: bytes, num: int) -> list:
    return [v for n, v in fields(buf) if n == num]


def named(buf: bytes, num: int = 1) -> dict[str, bytes]:
    """A Named* list ({1: name, 2: value}) as an ordered dict of name -> value bytes."""
    return {one(e, 1).decode(): one(e, 2) for e in many(buf, num)}


def vendor(buf: bytes, num: int) -> dict:
    """Vendor extensions (NamedAny with {2: yaml}) parsed as YAML, as kubectl reads them."""
    return {k: yaml.safe_load(one(v, 2).decode()) for k, v in named(buf, num).items()}


# ----------------------------------------------------------------- the document

def encoded() -> tuple[dict, bytes]:
    body = openapi.v2_document(Registry())
    return orjson.loads(body), pb.encode_document(orjson.loads(body))


def test_document_round_trips_definitions_paths_and_extensions():
    doc, buf = encoded()
    assert one(buf, 1) == b"2.0"
    info = one(buf, 2)
    assert one(info, 1) == b"Kubernetes" and one(info, 2).decode() == doc["info"]["version"]

    definitions = named(one(buf, 9))
    assert list(definitions) == list(doc["definitions"])       # same names, same order
    cm = definitions["io.k8s.api.core.v1.ConfigMap"]
    assert vendor(cm, 31)["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "ConfigMap", "version": "v1"}]
    assert one(one(cm, 22), 1) == b"object"                     # type: TypeItem
    props = named(one(cm, 25))
    assert set(props) == set(doc["definitions"]["io.k8s.api.core.v1.ConfigMap"]["properties"])
    assert one(props["metadata"], 1) == b"#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    data = props["data"]                                         # additionalProperties: Schema (1)
    assert one(one(one(one(data, 21), 1), 22), 1) == b"string"

    paths = named(one(buf, 8), 2)
    assert list(paths) == list(doc["paths"])
    cms = paths["/api/v1/namespaces/{namespace}/configmaps"]
    post = one(cms, 4)
    assert vendor(post, 13)["x-kubernetes-group-version-kind"] == {"group": "", "kind": "ConfigMap", "version": "v1"}
    assert one(post, 5).decode() == doc["paths"]["/api/v1/namespaces/{namespace}/configmaps"]["post"]["operationId"]
    params = [one(p, 1) for p in many(post, 8)]                 # ParametersItem.parameter
    body = [one(p, 1) for p in params if 1 in dict(fields(p))]  # Parameter.body_parameter
    assert body and one(one(body[0], 5), 1) == b"#/definitions/io.k8s.api.core.v1.ConfigMap"
    responses = named(one(post, 9))
    assert set(responses) == set(doc["paths"]["/api/v1/namespaces/{namespace}/configmaps"]["post"]["responses"])

    security = one(buf, 13)
    api_key = one(named(security)["BearerToken"], 2)            # SecurityDefinitionsItem.api_key_security
    assert one(api_key, 1) == b"apiKey" and one(api_key, 3) == b"header"


def test_non_body_parameters_enums_and_false_additional_properties():
    doc = {"swagger": "2.0", "info": {"title": "t", "version": "v"},
           "paths": {"/x/{name}": {
               "parameters": [{"name": "name", "in": "path", "required": True, "type": "string", "uniqueItems": True},
                              {"$ref": "#/parameters/pretty"}],
               "get": {"parameters": [{"name": "limit", "in": "query", "type": "integer", "maximum": 2.5}],
                       "responses": {"200": {"description": "OK", "schema": {"type": "string"}}}}}},
           "definitions": {"a.B": {"type": "object", "additionalProperties": False,
                                   "properties": {"mode": {"type": "string", "enum": ["A", "B"], "default": "A"},
                                                  "list": {"type": "array", "items": {"type": "integer"}}},
                                   "required": ["mode"], "x-kubernetes-map-type": "atomic"}}}
    dropped: list = []
    buf = pb.encode_document(doc, dropped)
    assert dropped == []
    item = named(one(buf, 8), 2)["/x/{name}"]
    path_param, ref = many(item, 9)
    sub = one(one(one(path_param, 1), 2), 4)                     # Parameter.non_body -> path sub-schema
    assert one(sub, 1) == 1 and one(sub, 2) == b"path" and one(sub, 5) == b"string" and one(sub, 19) == 1
    assert one(one(ref, 2), 1) == b"#/parameters/pretty"         # ParametersItem.json_reference
    query = one(one(one(many(one(item, 2), 8)[0], 1), 2), 3)
    assert one(query, 6) == b"integer" and one(query, 11) == 2.5
    schema = named(one(buf, 9))["a.B"]
    assert one(one(schema, 21), 2) == 0                          # additionalProperties: false is written
    assert many(schema, 19) == [b"mode"]
    mode = named(one(schema, 25))["mode"]
    assert [yaml.safe_load(one(a, 2).decode()) for a in many(mode, 20)] == ["A", "B"]
    assert yaml.safe_load(one(one(mode, 5), 2).decode()) == "A"
    assert one(one(one(one(named(one(schema, 25))["list"], 23), 1), 22), 1) == b"integer"
    assert vendor(schema, 31) == {"x-kubernetes-map-type": "atomic"}


def test_unknown_keys_are_reported():
    dropped: list = []
    pb.encode_document({"swagger": "2.0", "definitions": {"a": {"type": "object", "nullable": True}}}, dropped)
    assert dropped == ["nullable"]


def test_serving_negotiates_caches_and_answers_304_and_gzip():
    registry = Registry()
    body = openapi.v2_document(registry)
    e = pb.encoded(registry, body)
    assert pb.encoded(registry, body) is e                       # one encoding per document version
    assert pb.negotiate([("application/com.github.proto-openapi.spec.v2@v1.0+protobuf", {})]) == "proto"
    assert pb.negotiate([("application/json", {"q": "0.5"}), (pb.CONTENT_TYPE, {})]) == "proto"
    assert pb.negotiate([]) == "json" and pb.negotiate([("text/html", {})]) is None
    status, raw, ctype, headers = pb.response(e, "proto", "", "")
    assert status == 200 and ctype == pb.CONTENT_TYPE.encode() and raw is e.body(True)
    etag = dict(headers)[b"etag"].decode()
    assert etag == '"%s"' % __import__("hashlib").sha512(body).hexdigest().upper()
    assert pb.response(e, "proto", etag, "")[0] == 304
    assert pb.response(e, "json", etag, "")[0] == 304            # one ETag for both formats, as upstream
    status, zipped, _, headers = pb.response(e, "proto", '"stale"', "gzip, deflate")
    assert status == 200 and dict(headers)[b"content-encoding"] == b"gzip"
    assert gzip.decompress(zipped) == e.body(True)
    assert b"content-encoding" not in dict(pb.response(e, "json", "", "gzip;q=0")[3])
