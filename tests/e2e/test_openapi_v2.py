"""/openapi/v2 as protobuf against real kubectl: client-side validation of ``kind: List``
(kubectl reads the v2 document only as gnostic protobuf), explain, raw negotiation."""
from __future__ import annotations

import ssl

import httpx
import orjson
import pytest

from skube.api.openapi_v2_proto import CONTENT_TYPE
from tests.unit.test_openapi_v2_proto import named, one, vendor

PROTO_ACCEPT = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


def list_yaml(extra: str = "") -> str:
    return f"""apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {{name: listed-a}}
  data: {{a: "1"}}
- apiVersion: v1
  kind: ConfigMap
  metadata: {{name: listed-b}}
  data: {{b: "2"}}
{extra}"""


@pytest.fixture
def kubectl(cluster, tmp_path):
    """kubectl with its own empty cache, so every run asks the server for /openapi/v2."""
    def run(*args, **kw):
        return cluster.kubectl("--cache-dir", str(tmp_path / "cache"), *args, **kw)
    return run


@pytest.fixture
def http(cluster):
    pki = cluster.data_dir / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    with httpx.Client(base_url=cluster.url, verify=ctx, timeout=30) as c:
        yield c


@pytest.mark.parametrize("validate", [None, "strict"])
def test_apply_list_validates_against_protobuf_v2(kubectl, validate):
    flags = [f"--validate={validate}"] if validate else []
    res = kubectl("apply", "-f", "-", *flags, "-v=6", input=list_yaml())
    assert "configmap/listed-a created" in res.stdout and "configmap/listed-b created" in res.stdout
    assert '/openapi/v2?timeout=32s" status="200 OK"' in res.stderr   # the schema was read, not skipped
    got = kubectl("get", "configmap", "listed-a", "listed-b", "-o", "jsonpath={.items[*].data}").stdout
    assert got == '{"a":"1"} {"b":"2"}'
    kubectl("delete", "configmap", "listed-a", "listed-b")


@pytest.mark.parametrize("validate", [None, "strict"])
def test_unknown_field_in_list_item_is_reported_by_kubectl(kubectl, validate):
    flags = [f"--validate={validate}"] if validate else []
    res = kubectl("apply", "-f", "-", *flags, input=list_yaml("  bogus: 1\n"), check=False)
    assert res.returncode == 1
    assert ('error validating data: ValidationError(ConfigMap): unknown field "bogus" in '
            'io.k8s.api.core.v1.ConfigMap') in res.stderr
    assert "listed-a" not in kubectl("get", "configmaps", "-o", "name").stdout   # nothing applied


def test_create_only_kind_validates_without_flag(kubectl):
    """Kinds without PATCH (reviews) are validated client-side against the protobuf v2 too."""
    review = ("apiVersion: authorization.k8s.io/v1\nkind: SelfSubjectAccessReview\nspec:\n"
              "  resourceAttributes: {verb: get, resource: pods}\n")
    assert kubectl("create", "-f", "-", "-o", "jsonpath={.status.allowed}", input=review).stdout == "true"
    bad = kubectl("create", "-f", "-", input=review.replace("spec:\n", "spec:\n  bogus: 1\n"), check=False)
    assert bad.returncode == 1 and ('ValidationError(SelfSubjectAccessReview.spec): unknown field "bogus" in '
                                    'io.k8s.api.authorization.v1.SelfSubjectAccessReviewSpec') in bad.stderr


def test_explain_still_works(kubectl):
    out = kubectl("explain", "configmap.data").stdout
    assert "KIND:       ConfigMap" in out and "FIELD: data <map[string]string>" in out
    v2 = kubectl("explain", "deployment.spec.strategy", "--output=plaintext-openapiv2").stdout
    assert "RESOURCE: strategy <Object>" in v2 and "rollingUpdate\t<Object>" in v2


def test_raw_protobuf_matches_json_document(http):
    js = http.get("/openapi/v2", headers={"Accept": "application/json"})
    assert js.status_code == 200 and js.headers["content-type"] == "application/json"
    doc = orjson.loads(js.content)
    r = http.get("/openapi/v2", headers={"Accept": PROTO_ACCEPT, "Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-type"] == CONTENT_TYPE
    assert r.headers["content-encoding"] == "gzip"               # httpx has already inflated it
    assert r.headers["etag"] == js.headers["etag"]
    buf = r.content
    definitions, paths = named(one(buf, 9)), named(one(buf, 8), 2)
    assert len(definitions) == len(doc["definitions"]) and list(paths) == list(doc["paths"])
    deployment = definitions["io.k8s.api.apps.v1.Deployment"]
    assert vendor(deployment, 31)["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}]
    spec = named(one(deployment, 25))["spec"]
    assert one(spec, 1) == b"#/definitions/io.k8s.api.apps.v1.DeploymentSpec"

    again = http.get("/openapi/v2", headers={"Accept": PROTO_ACCEPT, "If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    plain = http.get("/openapi/v2", headers={"Accept": PROTO_ACCEPT, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == buf
    refused = http.get("/openapi/v2", headers={"Accept": "text/html"})
    assert refused.status_code == 406 and refused.json()["reason"] == "NotAcceptable"
