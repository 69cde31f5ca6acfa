"""OpenAPI v3/v2 documents (what kubectl reads) and fieldValidation (Strict/Warn)."""
from __future__ import annotations

import hashlib

import orjson
import pytest

from skube.api import fieldvalidation, openapi
from skube.api.registry import ALL_VERBS, Registry, ResourceInfo

CRD_SCHEMA = {
    "type": "object",
    "description": "CronTab runs things",
    "properties": {
        "spec": {"type": "object", "description": "the spec",
                 "properties": {"cronSpec": {"type": "string", "description": "when"},
                                "replicas": {"type": "integer"},
                                "port": {"x-kubernetes-int-or-string": True},
                                "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                                             "x-kubernetes-preserve-unknown-fields": True},
                                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                                          "properties": {"known": {"type": "object",
                                                                   "properties": {"a": {"type": "string"}}}}},
                                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                "items": {"type": "array", "items": {
                                    "type": "object", "properties": {"name": {"type": "string"}}}}}},
        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
    },
}


def crontab(schema=CRD_SCHEMA, subresources=("status", "scale"), version="v1") -> ResourceInfo:
    return ResourceInfo("stable.example.com", version, "CronTab", "crontabs", "crontab", True, ("ct",), (),
                        ALL_VERBS, subresources, True, schema, (),
                        {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"})


@pytest.fixture
def registry() -> Registry:
    return Registry()


def doc(registry, group, version) -> dict:
    return orjson.loads(openapi.v3_document(registry, group, version))


def patch_ops(d: dict):
    for path, item in d["paths"].items():
        if "patch" in item:
            yield path, item["patch"]


def supports_field_validation(d: dict, gvk: dict) -> bool:
    """cli-runtime's supportsQueryParamV3: the first PATCH op of the GVK decides."""
    for _, op in patch_ops(d):
        if op.get("x-kubernetes-group-version-kind") != gvk:
            continue
        return any(p["name"] == "fieldValidation" for p in op.get("parameters", ()))
    return False


def refs(node, out):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            out.add(node["$ref"])
        for v in node.values():
            refs(v, out)
    elif isinstance(node, list):
        for v in node:
            refs(v, out)
    return out


def resolve(d: dict, s: dict) -> dict:
    """Follow $ref / single allOf as kubectl explain does."""
    while True:
        if "$ref" in s:
            s = d["components"]["schemas"][s["$ref"].rsplit("/", 1)[-1]]
        elif len(s.get("allOf", ())) == 1 and "properties" not in s:
            s = s["allOf"][0]
        else:
            return s


# --------------------------------------------------------------------------- index and hashing

def test_index_lists_what_a_real_server_lists(registry):
    paths = openapi.v3_index(registry)["paths"]
    for key in ("api", "apis", "version", "api/v1", "apis/apps", "apis/apps/v1", "apis/batch/v1",
                "apis/rbac.authorization.k8s.io/v1", "apis/apiextensions.k8s.io/v1"):
        assert key in paths, key
    url = paths["api/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/api/v1?hash=")
    body = openapi.v3_document(registry, "", "v1")
    assert url.split("hash=")[1] == hashlib.sha512(body).hexdigest().upper()


def test_every_index_entry_resolves(registry):
    for key in openapi.v3_index(registry)["paths"]:
        body = openapi.v3_document_for_path(registry, key)
        assert body is not None, key
        d = orjson.loads(body)
        assert d["openapi"] == "3.0.0"
        names = set(d["components"]["schemas"])
        for r in refs(d, set()):
            assert r.startswith("#/components/schemas/")
            assert r.rsplit("/", 1)[-1] in names, (key, r)


def test_unknown_path_is_none(registry):
    assert openapi.v3_document_for_path(registry, "apis/nope.example.com/v1") is None
    assert openapi.v3_document_for_path(registry, "apis/nope") is None
    assert openapi.v3_hash(registry, "nonsense/x/y/z") is None


def test_hash_is_stable_and_changes_with_a_crd(registry):
    before = openapi.v3_index(registry)["paths"]
    assert openapi.v3_index(registry)["paths"] == before
    assert "apis/stable.example.com/v1" not in before
    registry.add(crontab())
    after = openapi.v3_index(registry)["paths"]
    assert "apis/stable.example.com/v1" in after and "apis/stable.example.com" in after
    assert after["api/v1"] == before["api/v1"]
    h1 = after["apis/stable.example.com/v1"]
    registry.add(crontab(schema={**CRD_SCHEMA, "description": "changed"}))
    assert openapi.v3_index(registry)["paths"]["apis/stable.example.com/v1"] != h1


def test_document_is_cached(registry):
    a = openapi.v3_document(registry, "apps", "v1")
    assert openapi.v3_document(registry, "apps", "v1") is a


# --------------------------------------------------------------------------- what kubectl needs

def test_every_builtin_gvk_supports_field_validation(registry):
    for r in registry.resources():
        d = doc(registry, r.group, r.version)
        gvk = {"group": r.group, "kind": r.kind, "version": r.version}
        if "patch" in r.verbs:
            assert supports_field_validation(d, gvk), gvk


def test_custom_gvk_supports_field_validation(registry):
    registry.add(crontab())
    d = doc(registry, "stable.example.com", "v1")
    assert supports_field_validation(d, {"group": "stable.example.com", "kind": "CronTab", "version": "v1"})


def test_pod_patch_operation(registry):
    d = doc(registry, "", "v1")
    item = d["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]
    op = item["patch"]
    assert op["x-kubernetes-action"] == "patch"
    assert op["operationId"] == "patchCoreV1NamespacedPod"
    assert op["x-kubernetes-group-version-kind"] == {"group": "", "kind": "Pod", "version": "v1"}
    assert [p["name"] for p in op["parameters"]] == ["dryRun", "fieldManager", "fieldValidation", "force"]
    assert all(p["in"] == "query" and p["schema"]["type"] for p in op["parameters"])
    assert "application/strategic-merge-patch+json" in op["requestBody"]["content"]
    assert {p["name"] for p in item["parameters"]} == {"name", "namespace", "pretty"}
    assert set(item) == {"get", "put", "patch", "delete", "parameters"}
    coll = d["paths"]["/api/v1/namespaces/{namespace}/pods"]
    assert coll["get"]["x-kubernetes-action"] == "list"
    assert coll["post"]["x-kubernetes-action"] == "post"
    assert coll["delete"]["x-kubernetes-action"] == "deletecollection"
    assert "fieldValidation" in [p["name"] for p in coll["post"]["parameters"]]
    assert "/api/v1/pods" in d["paths"]
    assert d["paths"]["/api/v1/watch/namespaces/{namespace}/pods"]["get"]["x-kubernetes-action"] == "watchlist"
    status = d["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/status"]
    assert "fieldValidation" in [p["name"] for p in status["patch"]["parameters"]]
    assert d["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/exec"]["get"]["x-kubernetes-action"] == "connect"


def test_cluster_scoped_paths(registry):
    d = doc(registry, "", "v1")
    assert "/api/v1/nodes/{name}" in d["paths"]
    assert d["paths"]["/api/v1/nodes/{name}"]["patch"]["operationId"] == "patchCoreV1Node"
    assert "/api/v1/namespaces/{name}/finalize" in d["paths"]


def test_scale_subresource_uses_autoscaling_scale(registry):
    d = doc(registry, "apps", "v1")
    op = d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"]
    assert op["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "kind": "Scale", "version": "v1"}
    assert "io.k8s.api.autoscaling.v1.Scale" in d["components"]["schemas"]
    assert d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["get"]["operationId"] == \
        "listAppsV1NamespacedDeployment"


def test_explain_walk_finds_upstream_descriptions(registry):
    d = doc(registry, "", "v1")
    pod = next(s for s in d["components"]["schemas"].values()
               if {"group": "", "kind": "Pod", "version": "v1"} in s.get("x-kubernetes-group-version-kind", ()))
    spec = resolve(d, pod["properties"]["spec"])
    containers = spec["properties"]["containers"]
    assert containers["description"].startswith("List of containers belonging to the pod.")
    container = resolve(d, containers["items"])
    assert container["description"] == "A single application container that you want to run within a pod."
    assert "imagePullPolicy" in container["properties"]


def test_schema_conversion_matches_upstream_form(registry):
    d = doc(registry, "", "v1")
    s = d["components"]["schemas"]
    pod = s["io.k8s.api.core.v1.Pod"]
    assert pod["type"] == "object"
    assert pod["properties"]["apiVersion"] == {"description": pod["properties"]["apiVersion"]["description"],
                                               "type": "string"}          # no enum, single type
    assert pod["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]
    assert pod["properties"]["metadata"]["default"] == {}
    assert pod["properties"]["spec"]["default"] == {}
    containers = s["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["items"] == {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}],
                                   "default": {}}
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-list-type"] == "map"
    assert s["io.k8s.api.core.v1.Container"]["properties"]["name"]["default"] == ""
    assert s["io.k8s.api.core.v1.Container"]["properties"]["args"]["items"] == {"type": "string", "default": ""}
    assert s["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    assert s["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["oneOf"] == [{"type": "integer"}, {"type": "string"}]
    assert s["io.k8s.apimachinery.pkg.api.resource.Quantity"]["oneOf"] == [{"type": "string"}, {"type": "number"}]
    assert s["io.k8s.apimachinery.pkg.apis.meta.v1.Time"] == {
        "description": s["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["description"],
        "format": "date-time", "type": "string"}
    for name, schema in s.items():
        assert not isinstance(schema.get("type"), list), name
    assert orjson.dumps(d).find(b"#/$defs/") == -1


def test_custom_resource_document(registry):
    registry.add(crontab())
    d = doc(registry, "stable.example.com", "v1")
    s = d["components"]["schemas"]
    ct = s["com.example.stable.v1.CronTab"]
    assert ct["x-kubernetes-group-version-kind"] == [{"group": "stable.example.com", "kind": "CronTab",
                                                      "version": "v1"}]
    assert ct["description"] == "CronTab runs things"
    assert ct["properties"]["metadata"]["allOf"][0]["$ref"].endswith("meta.v1.ObjectMeta")
    assert ct["properties"]["apiVersion"]["type"] == "string" and ct["properties"]["kind"]["type"] == "string"
    port = ct["properties"]["spec"]["properties"]["port"]
    assert port["x-kubernetes-int-or-string"] is True
    assert port["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    tmpl = ct["properties"]["spec"]["properties"]["template"]
    assert {"apiVersion", "kind", "metadata"} <= set(tmpl["properties"])
    lst = s["com.example.stable.v1.CronTabList"]
    assert lst["properties"]["items"]["items"] == {"$ref": "#/components/schemas/com.example.stable.v1.CronTab"}
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in s
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta" in s
    p = d["paths"]
    base = "/apis/stable.example.com/v1/namespaces/{namespace}/crontabs"
    assert set(p[base]) == {"get", "post", "delete", "parameters"}
    patch = p[base + "/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    assert "application/merge-patch+json" in patch["requestBody"]["content"]
    assert patch["operationId"] == "patchStableExampleComV1NamespacedCronTab"
    assert p[base + "/{name}/status"]["patch"]["x-kubernetes-group-version-kind"]["kind"] == "CronTab"
    assert p[base + "/{name}/scale"]["patch"]["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling", "kind": "Scale", "version": "v1"}
    assert "/apis/stable.example.com/v1/crontabs" in p
    assert d["info"]["title"] == "Kubernetes CRD Swagger"


def test_custom_resource_without_schema(registry):
    registry.add(crontab(schema=None, subresources=()))
    d = doc(registry, "stable.example.com", "v1")
    assert d["components"]["schemas"]["com.example.stable.v1.CronTab"]["type"] == "object"
    assert supports_field_validation(d, {"group": "stable.example.com", "kind": "CronTab", "version": "v1"})


def test_group_and_root_documents(registry):
    apps = orjson.loads(openapi.v3_document_for_path(registry, "apis/apps"))
    assert apps["paths"]["/apis/apps/"]["get"]["operationId"] == "getAppsAPIGroup"
    root = orjson.loads(openapi.v3_document_for_path(registry, "api"))
    assert "/api/" in root["paths"]
    version = orjson.loads(openapi.v3_document_for_path(registry, "version"))
    assert "io.k8s.apimachinery.pkg.version.Info" in version["components"]["schemas"]


# --------------------------------------------------------------------------- v2

def test_v2_document(registry):
    registry.add(crontab(schema={**CRD_SCHEMA, "x-kubernetes-preserve-unknown-fields": True}))
    d = orjson.loads(openapi.v2_document(registry))
    assert d["swagger"] == "2.0"
    defs = d["definitions"]
    assert defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {
        "description": defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["description"],
        "type": "string", "format": "int-or-string"}
    assert defs["io.k8s.api.core.v1.Pod"]["properties"]["spec"]["$ref"] == "#/definitions/io.k8s.api.core.v1.PodSpec"
    assert defs["com.example.stable.v1.CronTab"]["type"] == "object"
    assert "properties" not in defs["com.example.stable.v1.CronTab"]
    for r in refs(d, set()):
        assert r.startswith("#/definitions/") and r.rsplit("/", 1)[-1] in defs, r
    op = d["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" in op["consumes"]
    assert "fieldValidation" in [p["name"] for p in op["parameters"]]
    body = next(p for p in op["parameters"] if p["in"] == "body")
    assert body["schema"] == {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}


# --------------------------------------------------------------------------- fieldValidation

POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "p", "labels": {"a": "b"}, "annotations": {"x": "y"}},
    "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
                             "resources": {"limits": {"cpu": "1"}},
                             "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]}],
             "nodeSelector": {"disk": "ssd"}},
    "status": {"phase": "Pending"},
}


def test_known_pod_has_no_unknown_fields(registry):
    assert fieldvalidation.unknown_fields(registry.get("", "v1", "pods"), POD) == []


def test_unknown_fields_paths_as_upstream_prints_them(registry):
    pod = orjson.loads(orjson.dumps(POD))
    pod["metadata"]["foo"] = 1
    pod["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    pod["spec"]["containers"][0]["ports"][0]["bad"] = True
    pod["spec"]["containers"][0]["env"][0]["valueFrom"]["fieldRef"]["zz"] = 1
    pod["spec"]["bogus"] = {"a": 1}
    assert fieldvalidation.unknown_fields(registry.get("", "v1", "pods"), pod) == [
        # document order, as the JSON decoder meets them
        "metadata.foo", "spec.containers[0].ports[0].bad", "spec.containers[0].env[0].valueFrom.fieldRef.zz",
        "spec.containers[0].imagePullPolcy", "spec.bogus"]


def test_free_form_fields_are_not_unknown(registry):
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "a.b.c"},
           "spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
               "type": "object", "default": {"anything": {"goes": 1}}, "example": [1, 2],
               "properties": {"x": {"type": "string", "x-kubernetes-anything": 1}}}}}]}}
    info = registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    assert fieldvalidation.unknown_fields(info, crd) == ["spec.versions[0].schema.openAPIV3Schema.properties.x."
                                                         "x-kubernetes-anything"]


def test_unknown_fields_for_custom_resources():
    info = crontab()
    obj = {"apiVersion": "stable.example.com/v1", "kind": "CronTab",
           "metadata": {"name": "c", "nope": 1},
           "spec": {"cronSpec": "x", "zzz": 1, "labels": {"any": "thing"},
                    "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "bad": 1},
                                 "spec": {"free": 1}},
                    "extra": {"free": 1, "known": {"a": "b", "b": 1}},
                    "items": [{"name": "a"}, {"name": "b", "nm": 1}]},
           "status": {"replicas": 1, "ready": 1}, "top": 1}
    assert fieldvalidation.unknown_fields(info, obj) == sorted([
        "metadata.nope", "spec.zzz", "spec.template.metadata.bad", "spec.extra.known.b", "spec.items[1].nm",
        "status.ready", "top"])


def test_custom_resource_without_schema_accepts_everything():
    info = crontab(schema=None)
    assert fieldvalidation.unknown_fields(info, {"apiVersion": "a/v1", "kind": "CronTab", "spec": {"x": 1}}) == []


def test_strict_error_is_upstreams(registry):
    info = registry.get("apps", "v1", "deployments")
    e = fieldvalidation.strict_error(info, "d", ["spec.foo", "spec.template.spec.containers[0].bar"])
    assert e.code == 400 and e.reason == "BadRequest"
    assert e.message == ('Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
                         'unknown field "spec.foo", unknown field "spec.template.spec.containers[0].bar"')
    assert e.status() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": e.message, "reason": "BadRequest", "code": 400}
    p = fieldvalidation.strict_error(info, "d", ["spec.foo"], patch=True)
    assert p.message == 'strict decoding error: unknown field "spec.foo"'


def test_warnings_and_header():
    assert fieldvalidation.warnings(["spec.foo", "x"]) == ['unknown field "spec.foo"', 'unknown field "x"']
    assert fieldvalidation.warning_header('unknown field "spec.foo"') == '299 - "unknown field \\"spec.foo\\""'
