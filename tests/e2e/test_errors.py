"""Every error code the API server gives, with upstream's Status shape; bad input stores nothing."""
from __future__ import annotations

import json
import ssl

import httpx
import pytest


@pytest.fixture(scope="module")
def http(cluster):
    ctx = ssl.create_default_context(cafile=str(cluster.data_dir / "pki" / "ca.crt"))
    ctx.load_cert_chain(str(cluster.data_dir / "pki" / "admin.crt"), str(cluster.data_dir / "pki" / "admin.key"))
    with httpx.Client(base_url=cluster.url, verify=ctx, timeout=20) as c:
        yield c


def status_of(r: httpx.Response, code: int, reason: str) -> dict:
    assert r.status_code == code, r.text
    body = r.json()
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["code"] == code and body["reason"] == reason, body
    return body


def cms(http) -> list[str]:
    return [i["metadata"]["name"] for i in http.get("/api/v1/namespaces/default/configmaps").json()["items"]]


def test_401_without_credentials(cluster):
    ctx = ssl.create_default_context(cafile=str(cluster.data_dir / "pki" / "ca.crt"))
    r = httpx.get(cluster.url + "/api/v1/pods", verify=ctx)
    status_of(r, 401, "Unauthorized")
    r = httpx.get(cluster.url + "/api/v1/pods", verify=ctx, headers={"Authorization": "Bearer nope"})
    status_of(r, 401, "Unauthorized")
    assert httpx.get(cluster.url + "/readyz", verify=ctx).status_code == 200


def test_400_malformed_body_and_wrong_kind(http):
    before = cms(http)
    r = http.post("/api/v1/namespaces/default/configmaps", content=b"{not json",
                  headers={"content-type": "application/json"})
    status_of(r, 400, "BadRequest")
    r = http.post("/api/v1/namespaces/default/configmaps",
                  json={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}})
    status_of(r, 400, "BadRequest")
    r = http.post("/api/v1/namespaces/default/configmaps",
                  json={"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    status_of(r, 400, "BadRequest")
    r = http.post("/api/v1/namespaces/default/configmaps", content=b"a: [b",
                  headers={"content-type": "application/yaml"})
    status_of(r, 400, "BadRequest")
    assert cms(http) == before


def test_400_strict_field_validation(http):
    r = http.post("/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
                  json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "strict"},
                        "dta": {"a": "b"}})
    body = status_of(r, 400, "BadRequest")
    assert "dta" in body["message"]
    r = http.post("/api/v1/namespaces/default/configmaps",
                  json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "warned"},
                        "dta": {"a": "b"}})
    assert r.status_code == 201 and "dta" in r.headers.get("warning", "")


def test_404_and_405(http):
    body = status_of(http.get("/api/v1/namespaces/default/configmaps/nope"), 404, "NotFound")
    assert body["message"] == 'configmaps "nope" not found'
    assert body["details"] == {"name": "nope", "kind": "configmaps"}
    status_of(http.get("/apis/apps/v1/namespaces/default/deployments/nope"), 404, "NotFound")
    status_of(http.get("/api/v1/nothings"), 404, "NotFound")
    r = http.post("/api/v1/namespaces/nons/configmaps",
                  json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    status_of(r, 404, "NotFound")
    status_of(http.put("/api/v1/namespaces/default/configmaps", json={}), 405, "MethodNotAllowed")


def test_409_already_exists_and_conflict(http):
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dup"}}
    assert http.post("/api/v1/namespaces/default/configmaps", json=obj).status_code == 201
    body = status_of(http.post("/api/v1/namespaces/default/configmaps", json=obj), 409, "AlreadyExists")
    assert body["message"] == 'configmaps "dup" already exists'
    stale = dict(obj, metadata={"name": "dup", "resourceVersion": "1"})
    status_of(http.put("/api/v1/namespaces/default/configmaps/dup", json=stale), 409, "Conflict")


def test_410_watch_too_old(cluster, http):
    # compaction is forced through a tiny keep window in this test's own server
    from tests.conftest import start_apiserver
    c = start_apiserver(cluster.data_dir.parent / "compact", None,
                        "--compact-interval", "0.2", "--keep-revisions", "1")
    try:
        ctx = ssl.create_default_context(cafile=str(c.data_dir / "pki" / "ca.crt"))
        ctx.load_cert_chain(str(c.data_dir / "pki" / "admin.crt"), str(c.data_dir / "pki" / "admin.key"))
        with httpx.Client(base_url=c.url, verify=ctx) as h:
            for i in range(5):
                h.post("/api/v1/namespaces/default/configmaps",
                       json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"}})
            from tests.conftest import wait_for

            def expired():
                r = h.get("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=2&timeoutSeconds=1")
                line = r.text.splitlines()[0] if r.text else ""
                return line and json.loads(line)
            ev = wait_for(lambda: (lambda e: e if e and e["type"] == "ERROR" else None)(expired()),
                          timeout=20, message="410 after compaction")
            assert ev["object"]["code"] == 410 and ev["object"]["reason"] == "Expired"
            r = h.get("/api/v1/namespaces/default/configmaps?resourceVersion=2&resourceVersionMatch=Exact")
            status_of(r, 410, "Expired")
    finally:
        assert c.stop() == 0


def test_413_body_too_large(http):
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"x": "a" * (3 * 1024 * 1024 + 10)}}
    status_of(http.post("/api/v1/namespaces/default/configmaps", json=big), 413, "RequestEntityTooLarge")
    assert "big" not in cms(http)


def test_415_unsupported_patch(http):
    http.post("/api/v1/namespaces/default/configmaps",
              json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p415"}})
    r = http.patch("/api/v1/namespaces/default/configmaps/p415", content=b"{}",
                   headers={"content-type": "text/plain"})
    status_of(r, 415, "UnsupportedMediaType")


def test_422_invalid_with_causes(http):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Name"},
           "spec": {"containers": [{"name": "c"}]}}
    body = status_of(http.post("/api/v1/namespaces/default/pods", json=pod), 422, "Invalid")
    fields = {c["field"] for c in body["details"]["causes"]}
    assert {"metadata.name", "spec.containers[0].image"} <= fields
    assert body["message"].startswith('Pod "Bad_Name" is invalid: ')
    # immutable pod spec
    ok = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "imm"},
          "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    assert http.post("/api/v1/namespaces/default/pods", json=ok).status_code == 201
    r = http.patch("/api/v1/namespaces/default/pods/imm", json={"spec": {"restartPolicy": "Never"}},
                   headers={"content-type": "application/merge-patch+json"})
    status_of(r, 422, "Invalid")
    assert http.get("/api/v1/namespaces/default/pods/imm").json()["spec"]["restartPolicy"] == "Always"


def test_403_terminating_namespace(http):
    http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "term"}})
    http.post("/api/v1/namespaces/term/configmaps",
              json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep",
                                                                          "finalizers": ["x/y"]}})
    http.delete("/api/v1/namespaces/term")
    r = http.post("/api/v1/namespaces/term/configmaps",
                  json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new"}})
    status_of(r, 403, "Forbidden")
