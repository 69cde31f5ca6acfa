"""PATCH semantics: JSON patch, JSON merge patch, strategic merge patch, Content-Type."""
from __future__ import annotations

import copy
import time

import pytest

from skube.api import patch as p
from skube.api.errors import APIError

REJECTED = "the server rejected our request due to an error in our request"
CR_415 = ("the body of the request was in an unknown format - accepted media types include: "
          "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
BUILTIN_415 = ("the body of the request was in an unknown format - accepted media types include: "
               "application/json-patch+json, application/merge-patch+json, "
               "application/strategic-merge-patch+json, application/apply-patch+yaml")


def raises(fn, *args) -> APIError:
    with pytest.raises(APIError) as info:
        fn(*args)
    return info.value


# ---------------------------------------------------------------------------------------
# Content-Type
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("content_type, expected", [
    ("application/json-patch+json", "json"),
    ("application/merge-patch+json", "merge"),
    ("application/strategic-merge-patch+json", "strategic"),
    ("application/apply-patch+yaml", "apply"),
    ("application/merge-patch+json; charset=utf-8", "merge"),
    ("Application/JSON-Patch+JSON", "json"),
])
def test_patch_type(content_type, expected):
    assert p.patch_type(content_type) == expected


@pytest.mark.parametrize("content_type", [
    "application/json", "application/yaml", "application/apply-patch+cbor", "", None, "text/plain",
])
def test_patch_type_unsupported(content_type):
    err = raises(p.patch_type, content_type)
    assert (err.code, err.reason, err.message) == (415, "UnsupportedMediaType", BUILTIN_415)


def test_patch_type_custom_resources_refuse_strategic():
    assert p.patch_type("application/merge-patch+json", strategic=False) == "merge"
    with pytest.raises(APIError) as info:
        p.patch_type("application/strategic-merge-patch+json", strategic=False)
    assert (info.value.code, info.value.message) == (415, CR_415)


# ---------------------------------------------------------------------------------------
# JSON patch (RFC 6902, evanphx/json-patch v4 as the apiserver runs it)
# ---------------------------------------------------------------------------------------

DOC = {"a": {"b": 1, "n": None}, "list": ["x", "y", "z"], "s": "str"}

JSON_PATCH_CASES = [
    ("add member", [{"op": "add", "path": "/c", "value": 2}],
     {**DOC, "c": 2}),
    ("add replaces an existing member", [{"op": "add", "path": "/s", "value": [1]}],
     {**DOC, "s": [1]}),
    ("add nested", [{"op": "add", "path": "/a/c", "value": {"d": True}}],
     {**DOC, "a": {"b": 1, "n": None, "c": {"d": True}}}),
    ("add without value sets null", [{"op": "add", "path": "/c"}],
     {**DOC, "c": None}),
    ("add inserts at index", [{"op": "add", "path": "/list/1", "value": "new"}],
     {**DOC, "list": ["x", "new", "y", "z"]}),
    ("add at len appends", [{"op": "add", "path": "/list/3", "value": "new"}],
     {**DOC, "list": ["x", "y", "z", "new"]}),
    ("add '-' appends", [{"op": "add", "path": "/list/-", "value": "new"}],
     {**DOC, "list": ["x", "y", "z", "new"]}),
    ("add negative index counts from the end", [{"op": "add", "path": "/list/-1", "value": "new"}],
     {**DOC, "list": ["x", "y", "z", "new"]}),
    ("remove member", [{"op": "remove", "path": "/s"}],
     {"a": DOC["a"], "list": DOC["list"]}),
    ("remove null-valued member", [{"op": "remove", "path": "/a/n"}],
     {**DOC, "a": {"b": 1}}),
    ("remove index", [{"op": "remove", "path": "/list/0"}],
     {**DOC, "list": ["y", "z"]}),
    ("remove negative index", [{"op": "remove", "path": "/list/-1"}],
     {**DOC, "list": ["x", "y"]}),
    ("replace member", [{"op": "replace", "path": "/a/b", "value": 5}],
     {**DOC, "a": {"b": 5, "n": None}}),
    ("replace of a missing member adds it (json-patch v4)",
     [{"op": "replace", "path": "/a/new", "value": 5}],
     {**DOC, "a": {"b": 1, "n": None, "new": 5}}),
    ("replace index", [{"op": "replace", "path": "/list/2", "value": "Z"}],
     {**DOC, "list": ["x", "y", "Z"]}),
    ("replace whole document", [{"op": "replace", "path": "", "value": {"k": 1}}],
     {"k": 1}),
    ("move member", [{"op": "move", "from": "/s", "path": "/a/s"}],
     {"a": {"b": 1, "n": None, "s": "str"}, "list": DOC["list"]}),
    ("move within list", [{"op": "move", "from": "/list/0", "path": "/list/-"}],
     {**DOC, "list": ["y", "z", "x"]}),
    ("copy member", [{"op": "copy", "from": "/a", "path": "/b"}],
     {**DOC, "b": DOC["a"]}),
    ("copy of a missing member copies null (json-patch v4)",
     [{"op": "copy", "from": "/a/missing", "path": "/c"}],
     {**DOC, "c": None}),
    ("test passes then replace", [{"op": "test", "path": "/a", "value": {"n": None, "b": 1}},
                                  {"op": "replace", "path": "/s", "value": "t"}],
     {**DOC, "s": "t"}),
    ("test of a missing member against null passes",
     [{"op": "test", "path": "/missing", "value": None}], DOC),
    ("test whole document", [{"op": "test", "path": "", "value": DOC}], DOC),
    ("test numbers compare by value", [{"op": "test", "path": "/a/b", "value": 1.0}], DOC),
    ("escaped tokens", [{"op": "add", "path": "/k~1x~0y", "value": 1}],
     {**DOC, "k/x~y": 1}),
    ("annotation key with slashes",
     [{"op": "add", "path": "/a/example.com~1name", "value": "v"}],
     {**DOC, "a": {"b": 1, "n": None, "example.com/name": "v"}}),
    ("empty patch", [], DOC),
    ("null body is an empty patch", None, DOC),
]


@pytest.mark.parametrize("name, ops, expected", JSON_PATCH_CASES, ids=[c[0] for c in JSON_PATCH_CASES])
def test_json_patch(name, ops, expected):
    before = copy.deepcopy(DOC)
    assert p.json_patch(DOC, ops) == expected
    assert DOC == before


JSON_PATCH_FAILURES = [
    ("remove missing member", [{"op": "remove", "path": "/missing"}]),
    ("remove index out of range", [{"op": "remove", "path": "/list/3"}]),
    ("add past the end", [{"op": "add", "path": "/list/5", "value": 1}]),
    ("add below the start", [{"op": "add", "path": "/list/-5", "value": 1}]),
    ("add with a bad index", [{"op": "add", "path": "/list/one", "value": 1}]),
    ("add under a missing parent", [{"op": "add", "path": "/missing/x", "value": 1}]),
    ("add under a null parent", [{"op": "add", "path": "/a/n/x", "value": 1}]),
    ("add under a scalar", [{"op": "add", "path": "/s/x", "value": 1}]),
    ("add to the root path", [{"op": "add", "path": "", "value": 1}]),
    ("replace index out of range", [{"op": "replace", "path": "/list/3", "value": 1}]),
    ("replace '-'", [{"op": "replace", "path": "/list/-", "value": 1}]),
    ("replace root with a scalar", [{"op": "replace", "path": "", "value": 1}]),
    ("replace root with an array", [{"op": "replace", "path": "", "value": [1]}]),
    ("move from missing", [{"op": "move", "from": "/missing", "path": "/x"}]),
    ("move to missing parent", [{"op": "move", "from": "/s", "path": "/missing/x"}]),
    ("copy to missing parent", [{"op": "copy", "from": "/s", "path": "/missing/x"}]),
    ("copy without from", [{"op": "copy", "path": "/x"}]),
    ("test fails", [{"op": "test", "path": "/s", "value": "other"}]),
    ("test type mismatch", [{"op": "test", "path": "/a/b", "value": "1"}]),
    ("test bool is not a number", [{"op": "test", "path": "/a/b", "value": True}]),
    ("test null against a value", [{"op": "test", "path": "/s", "value": None}]),
    ("test without value", [{"op": "test", "path": "/s"}]),
    ("unknown op", [{"op": "frobnicate", "path": "/s"}]),
    ("missing op", [{"path": "/s"}]),
    ("missing path", [{"op": "add", "value": 1}]),
    ("non-string path", [{"op": "add", "path": 5, "value": 1}]),
    ("null operation", [None]),
    ("second op fails, first is not kept", [{"op": "add", "path": "/c", "value": 1},
                                            {"op": "remove", "path": "/missing"}]),
]


@pytest.mark.parametrize("name, ops", JSON_PATCH_FAILURES, ids=[c[0] for c in JSON_PATCH_FAILURES])
def test_json_patch_failures_are_422(name, ops):
    before = copy.deepcopy(DOC)
    err = raises(p.json_patch, DOC, ops)
    assert err.status() == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure", "message": REJECTED, "reason": "Invalid",
                            "code": 422}
    assert err.__cause__ is not None       # the library's own message, for logs
    assert DOC == before


@pytest.mark.parametrize("body, message", [
    ({"op": "add", "path": "/x", "value": 1},
     "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
    ("add", "json: cannot unmarshal string into Go value of type jsonpatch.Patch"),
    (["add"], "json: cannot unmarshal string into Go value of type jsonpatch.Operation"),
    ([[{"op": "add"}]], "json: cannot unmarshal array into Go value of type jsonpatch.Operation"),
])
def test_json_patch_bad_body_is_400(body, message):
    err = raises(p.json_patch, DOC, body)
    assert (err.code, err.reason, err.message) == (400, "BadRequest", message)


def test_json_patch_too_many_operations_is_413():
    ops = [{"op": "test", "path": "/s", "value": "str"}] * 10001
    err = raises(p.json_patch, DOC, ops)
    assert (err.code, err.reason) == (413, "RequestEntityTooLarge")
    assert err.message == ("Request entity too large: The allowed maximum operations in a JSON "
                           "patch is 10000, got 10001")
    assert p.json_patch(DOC, ops[:10000]) == DOC


def test_json_patch_result_does_not_alias_inputs():
    value = {"deep": ["v"]}
    out = p.json_patch(DOC, [{"op": "add", "path": "/c", "value": value},
                             {"op": "copy", "from": "/c", "path": "/d"}])
    out["c"]["deep"].append("w")
    assert value == {"deep": ["v"]}
    assert out["d"] == {"deep": ["v"]}
    out["a"]["b"] = 99
    assert DOC["a"]["b"] == 1


def test_json_patch_kubectl_example():
    pod = {"spec": {"containers": [{"name": "c", "image": "old"}]}}
    out = p.json_patch(pod, [{"op": "replace", "path": "/spec/containers/0/image",
                              "value": "new image"}])
    assert out == {"spec": {"containers": [{"name": "c", "image": "new image"}]}}


# ---------------------------------------------------------------------------------------
# JSON merge patch (RFC 7386)
# ---------------------------------------------------------------------------------------

# RFC 7386 Appendix A (the object-patch rows), plus json-patch v4 specifics.
MERGE_CASES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ({"a": "b"}, {}, {"a": "b"}),
    ({"a": 1}, {"missing": None}, {"a": 1}),
    # lists are replaced whole, nulls inside them kept, null members of objects in them dropped
    ({"l": [1, 2]}, {"l": [3]}, {"l": [3]}),
    ({}, {"l": [None, {"x": None, "y": 1}]}, {"l": [None, {"y": 1}]}),
    # a scalar replaced by an object: the object's nulls are dropped
    ({"a": 1}, {"a": {"b": None, "c": 2}}, {"a": {"c": 2}}),
    # metadata-style merge
    ({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1}},
     {"metadata": {"labels": {"a": None, "c": "3"}}, "spec": {"replicas": 3}},
     {"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"replicas": 3}}),
]


@pytest.mark.parametrize("doc, patch, expected", MERGE_CASES)
def test_merge_patch(doc, patch, expected):
    before, patch_before = copy.deepcopy(doc), copy.deepcopy(patch)
    assert p.merge_patch(doc, patch) == expected
    assert doc == before and patch == patch_before


def test_merge_patch_replaces_lists_like_the_docs_example():
    dep = deployment()
    out = p.merge_patch(dep, {"spec": {"template": {"spec": {"containers": [
        {"name": "patch-demo-ctr-3", "image": "gcr.io/google-samples/node-hello:1.0"}]}}}})
    assert out["spec"]["template"]["spec"]["containers"] == [
        {"name": "patch-demo-ctr-3", "image": "gcr.io/google-samples/node-hello:1.0"}]
    assert out["spec"]["template"]["spec"]["tolerations"] == dep["spec"]["template"]["spec"]["tolerations"]


@pytest.mark.parametrize("body", [None, [], [{"a": 1}], "x", 5, True])
def test_merge_patch_non_object_is_400(body):
    err = raises(p.merge_patch, {"a": 1}, body)
    assert (err.code, err.reason, err.message) == (400, "BadRequest", "Invalid JSON Patch")


def test_merge_patch_result_does_not_alias_inputs():
    patch = {"new": {"x": [1]}}
    out = p.merge_patch({"keep": {"y": 1}}, patch)
    out["new"]["x"].append(2)
    assert patch == {"new": {"x": [1]}}


# ---------------------------------------------------------------------------------------
# Strategic merge patch
# ---------------------------------------------------------------------------------------

def deployment() -> dict:
    """The Deployment of the "Update API Objects in Place Using kubectl patch" task."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "patch-demo"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {
                    "containers": [{"name": "patch-demo-ctr", "image": "nginx"}],
                    "tolerations": [{"effect": "NoSchedule", "key": "dedicated",
                                     "value": "test-team"}],
                },
            },
        },
    }


def pod() -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "web", "namespace": "default", "labels": {"app": "web", "tier": "fe"},
            "finalizers": ["a", "b"],
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                 "uid": "u1", "controller": True}],
        },
        "spec": {
            "containers": [
                {"name": "app", "image": "app:1", "args": ["--a", "--b"],
                 "ports": [{"containerPort": 80, "protocol": "TCP"}],
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                 "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                {"name": "sidecar", "image": "side:1"},
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "securityContext": {"runAsUser": 1000},
        },
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": "False"},
                                  {"type": "Initialized", "status": "True"}]},
    }


def smp(doc, patch, group="", version="v1", kind="Pod"):
    doc_before, patch_before = copy.deepcopy(doc), copy.deepcopy(patch)
    out = p.strategic_merge_patch(doc, patch, group, version, kind)
    assert doc == doc_before, "the document was mutated"
    assert patch == patch_before, "the patch was mutated"
    return out


def names(items, key="name"):
    return [i[key] for i in items]


class TestKubectlPatchDocs:
    """The examples of the kubectl patch task page."""

    def test_containers_are_merged_by_name_new_ones_first(self):
        out = smp(deployment(), {"spec": {"template": {"spec": {"containers": [
            {"name": "patch-demo-ctr-2", "image": "redis"}]}}}}, "apps", "v1", "Deployment")
        assert out["spec"]["template"]["spec"]["containers"] == [
            {"name": "patch-demo-ctr-2", "image": "redis"},
            {"name": "patch-demo-ctr", "image": "nginx"},
        ]

    def test_tolerations_are_replaced(self):
        out = smp(deployment(), {"spec": {"template": {"spec": {"tolerations": [
            {"effect": "NoSchedule", "key": "disktype", "value": "ssd"}]}}}},
            "apps", "v1", "Deployment")
        assert out["spec"]["template"]["spec"]["tolerations"] == [
            {"effect": "NoSchedule", "key": "disktype", "value": "ssd"}]
        assert names(out["spec"]["template"]["spec"]["containers"]) == ["patch-demo-ctr"]

    def test_strategy_without_retain_keys_keeps_rolling_update(self):
        dep = deployment()
        dep["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "30%"}}
        out = smp(dep, {"spec": {"strategy": {"type": "Recreate"}}}, "apps", "v1", "Deployment")
        assert out["spec"]["strategy"] == {"type": "Recreate", "rollingUpdate": {"maxSurge": "30%"}}

    def test_strategy_with_retain_keys_clears_the_rest(self):
        dep = deployment()
        dep["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "30%"}}
        out = smp(dep, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
                  "apps", "v1", "Deployment")
        assert out["spec"]["strategy"] == {"type": "Recreate"}

    def test_replicas(self):
        out = smp(deployment(), {"spec": {"replicas": 5}}, "apps", "v1", "Deployment")
        assert out["spec"]["replicas"] == 5


# (name, patch, path to inspect, expected value there) -- all against pod()
SMP_CASES = [
    ("update a container by name keeps order",
     {"spec": {"containers": [{"name": "sidecar", "image": "side:2"}]}},
     ("spec", "containers"),
     [pod()["spec"]["containers"][0], {"name": "sidecar", "image": "side:2"}]),
    ("container fields merge recursively",
     {"spec": {"containers": [{"name": "app", "image": "app:2"}]}},
     ("spec", "containers", 0, "image"), "app:2"),
    ("untagged args are replaced",
     {"spec": {"containers": [{"name": "app", "args": ["--c"]}]}},
     ("spec", "containers", 0, "args"), ["--c"]),
    ("ports merge by containerPort",
     {"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 443}]}]}},
     ("spec", "containers", 0, "ports"),
     [{"containerPort": 443}, {"containerPort": 80, "protocol": "TCP"}]),
    ("env merges by name",
     {"spec": {"containers": [{"name": "app", "env": [{"name": "B", "value": "two"},
                                                       {"name": "C", "value": "3"}]}]}},
     ("spec", "containers", 0, "env"),
     [{"name": "A", "value": "1"}, {"name": "B", "value": "two"}, {"name": "C", "value": "3"}]),
    ("null inside a merged item deletes the field",
     {"spec": {"containers": [{"name": "app", "env": [{"name": "A", "value": None}]}]}},
     ("spec", "containers", 0, "env"), [{"name": "A"}, {"name": "B", "value": "2"}]),
    ("volumeMounts merge by mountPath",
     {"spec": {"containers": [{"name": "app", "volumeMounts": [
         {"mountPath": "/data", "readOnly": True}]}]}},
     ("spec", "containers", 0, "volumeMounts"),
     [{"name": "data", "mountPath": "/data", "readOnly": True}]),
    ("conditions merge by type",
     {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
     ("status", "conditions"),
     [{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}]),
    ("ownerReferences merge by uid",
     {"metadata": {"ownerReferences": [{"uid": "u2", "name": "other", "kind": "X",
                                        "apiVersion": "v1"}]}},
     ("metadata", "ownerReferences"),
     [{"uid": "u2", "name": "other", "kind": "X", "apiVersion": "v1"},
      pod()["metadata"]["ownerReferences"][0]]),
    ("finalizers merge as a set, patch items first",
     {"metadata": {"finalizers": ["c", "a"]}},
     ("metadata", "finalizers"), ["c", "a", "b"]),
    ("finalizers already present are not duplicated",
     {"metadata": {"finalizers": ["b"]}},
     ("metadata", "finalizers"), ["a", "b"]),
    ("tolerations are replaced",
     {"spec": {"tolerations": [{"key": "other", "operator": "Exists"}]}},
     ("spec", "tolerations"), [{"key": "other", "operator": "Exists"}]),
    ("labels merge, null deletes one",
     {"metadata": {"labels": {"tier": None, "new": "x"}}},
     ("metadata", "labels"), {"app": "web", "new": "x"}),
    ("null deletes a field",
     {"spec": {"securityContext": None}},
     ("spec",), {k: v for k, v in pod()["spec"].items() if k != "securityContext"}),
    ("null for a missing field is ignored",
     {"spec": {"hostname": None}}, ("spec",), pod()["spec"]),
    ("scalar replaced by another type",
     {"spec": {"securityContext": "oops"}}, ("spec", "securityContext"), "oops"),
    ("$patch: delete removes a container",
     {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}},
     ("spec", "containers"), [pod()["spec"]["containers"][0]]),
    ("$patch: delete of an unknown item is a no-op",
     {"spec": {"containers": [{"name": "nope", "$patch": "delete"}]}},
     ("spec", "containers"), pod()["spec"]["containers"]),
    ("$patch: replace replaces a merge list",
     {"spec": {"containers": [{"name": "only", "image": "x"}, {"$patch": "replace"}]}},
     ("spec", "containers"), [{"name": "only", "image": "x"}]),
    ("$patch: replace replaces a map",
     {"metadata": {"labels": {"$patch": "replace", "fresh": "1"}}},
     ("metadata", "labels"), {"fresh": "1"}),
    ("$patch: delete on a map empties it",
     {"spec": {"securityContext": {"$patch": "delete"}}},
     ("spec", "securityContext"), {}),
    ("$deleteFromPrimitiveList removes finalizers",
     {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}},
     ("metadata", "finalizers"), ["b"]),
    ("$deleteFromPrimitiveList together with additions",
     {"metadata": {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a", "zz"]}},
     ("metadata", "finalizers"), ["c", "b"]),
    ("$deleteFromPrimitiveList on a missing list is a no-op",
     {"spec": {"containers": [{"name": "sidecar", "$deleteFromPrimitiveList/args": ["x"]}]}},
     ("spec", "containers", 1), {"name": "sidecar", "image": "side:1"}),
    ("$setElementOrder reorders containers",
     {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}]}},
     ("spec", "containers"),
     [pod()["spec"]["containers"][1], pod()["spec"]["containers"][0]]),
    ("$setElementOrder reorders finalizers",
     {"metadata": {"$setElementOrder/finalizers": ["b", "a"]}},
     ("metadata", "finalizers"), ["b", "a"]),
    ("$setElementOrder places a new item",
     {"spec": {"$setElementOrder/containers": [{"name": "app"}, {"name": "new"}, {"name": "sidecar"}],
               "containers": [{"name": "new", "image": "n"}]}},
     ("spec", "containers"),
     [pod()["spec"]["containers"][0], {"name": "new", "image": "n"}, pod()["spec"]["containers"][1]]),
    ("$setElementOrder with items it does not list",
     {"spec": {"$setElementOrder/containers": [{"name": "new"}, {"name": "app"}],
               "containers": [{"name": "new", "image": "n"}]}},
     ("spec", "containers"),
     [{"name": "new", "image": "n"}, pod()["spec"]["containers"][0], pod()["spec"]["containers"][1]]),
    ("$setElementOrder as kubectl sends it with an update",
     {"spec": {"$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
               "containers": [{"name": "sidecar", "image": "side:2"}]}},
     ("spec", "containers"),
     [pod()["spec"]["containers"][0], {"name": "sidecar", "image": "side:2"}]),
    ("$setElementOrder with a $patch: delete item, as kubectl apply removes a container",
     {"spec": {"$setElementOrder/containers": [{"name": "app"}],
               "containers": [{"name": "sidecar", "$patch": "delete"}]}},
     ("spec", "containers"), [pod()["spec"]["containers"][0]]),
    ("$retainKeys on a volume switches its source",
     {"spec": {"volumes": [{"name": "data", "$retainKeys": ["configMap", "name"],
                            "configMap": {"name": "cm"}}]}},
     ("spec", "volumes"), [{"name": "data", "configMap": {"name": "cm"}}]),
    ("new list gets directives stripped",
     {"spec": {"initContainers": [{"name": "i1", "image": "x", "env": None},
                                  {"name": "gone", "$patch": "delete"}]}},
     ("spec", "initContainers"), [{"name": "i1", "image": "x"}]),
    ("new map with $patch: delete is not added",
     {"spec": {"affinity": {"$patch": "delete"}}},
     ("spec",), pod()["spec"]),
    ("new map drops null members and directive keys",
     {"spec": {"dnsConfig": {"nameservers": ["1.1.1.1"], "options": None,
                             "$setElementOrder/nameservers": ["1.1.1.1"]}}},
     ("spec", "dnsConfig"), {"nameservers": ["1.1.1.1"]}),
    ("unknown $ keys are not stored",
     {"spec": {"$bogus": 1}}, ("spec",), pod()["spec"]),
    ("empty patch", {}, (), pod()),
]


@pytest.mark.parametrize("name, patch, where, expected", SMP_CASES, ids=[c[0] for c in SMP_CASES])
def test_strategic_merge_patch(name, patch, where, expected):
    out = smp(pod(), patch)
    for step in where:
        out = out[step]
    assert out == expected


def test_smp_leaves_the_rest_untouched():
    out = smp(pod(), {"spec": {"containers": [{"name": "app", "image": "app:2"}]}})
    want = pod()
    want["spec"]["containers"][0]["image"] = "app:2"
    assert out == want


def test_smp_null_body_is_a_noop():
    assert smp(pod(), None) == pod()


def test_smp_top_level_directives():
    assert smp(pod(), {"$patch": "delete"}) == {}
    assert smp(pod(), {"$patch": "replace", "kind": "Pod", "x": None}) == {"kind": "Pod"}


def test_smp_service_ports_merge_by_port():
    svc = {"apiVersion": "v1", "kind": "Service", "spec": {"ports": [
        {"name": "http", "port": 80, "targetPort": 8080},
        {"name": "https", "port": 443, "targetPort": 8443}]}}
    out = smp(svc, {"spec": {"ports": [{"port": 443, "targetPort": 9443}]}}, "", "v1", "Service")
    assert out["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": 8080},
                                    {"name": "https", "port": 443, "targetPort": 9443}]


def test_smp_replace_strategy_map():
    pdb = {"spec": {"selector": {"matchLabels": {"a": "1"}}, "minAvailable": 1}}
    patch = {"spec": {"selector": {"matchExpressions": [
        {"key": "b", "operator": "Exists"}]}}}
    out = smp(pdb, patch, "policy", "v1", "PodDisruptionBudget")
    assert out["spec"] == {"selector": {"matchExpressions": [{"key": "b", "operator": "Exists"}]},
                           "minAvailable": 1}


def test_smp_scale_subresource_kind():
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "spec": {"replicas": 1}}
    assert smp(scale, {"spec": {"replicas": 4}}, "autoscaling", "v1", "Scale")["spec"] == {"replicas": 4}


def test_smp_keeps_schema_fields_that_start_with_dollar():
    crd = {"spec": {"group": "x.io", "versions": []}}
    patch = {"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
        "$ref": "#/x", "$schema": "s"}}}]}}
    out = smp(crd, patch, "apiextensions.k8s.io", "v1", "CustomResourceDefinition")
    assert out["spec"]["versions"][0]["schema"]["openAPIV3Schema"] == {"$ref": "#/x", "$schema": "s"}


def test_smp_result_does_not_alias_inputs():
    doc, patch = pod(), {"spec": {"containers": [{"name": "new", "env": [{"name": "X"}]}]}}
    out = p.strategic_merge_patch(doc, patch, "", "v1", "Pod")
    out["spec"]["containers"][0]["env"].append({"name": "Y"})
    out["spec"]["containers"][1]["image"] = "changed"
    assert patch["spec"]["containers"][0]["env"] == [{"name": "X"}]
    assert doc["spec"]["containers"][0]["image"] == "app:1"


def test_smp_custom_resource_is_415():
    err = raises(p.strategic_merge_patch, {"spec": {}}, {"spec": {"x": 1}}, "example.com", "v1", "Widget")
    assert (err.code, err.reason, err.message) == (415, "UnsupportedMediaType", CR_415)


SMP_ERRORS = [
    ("patch body is a list", ["x"], 400, "BadRequest",
     "json: cannot unmarshal array into Go value of type map[string]interface {}"),
    ("merge item without its merge key",
     {"spec": {"containers": [{"image": "foo"}]}}, 500, "",
     "map: map[image:foo] does not contain declared merge key: name"),
    ("$patch: delete item without its merge key",
     {"spec": {"containers": [{"$patch": "delete"}]}}, 500, "",
     "map: map[$patch:delete] does not contain declared merge key: name"),
    ("$patch: merge in a list",
     {"spec": {"containers": [{"name": "app", "$patch": "merge"}]}}, 500, "",
     "merging lists cannot yet be specified in the patch"),
    ("unknown $patch in a list",
     {"spec": {"containers": [{"name": "app", "$patch": "bogus"}]}}, 500, "",
     "unknown patch type: bogus in map: map[$patch:bogus name:app]"),
    ("unknown $patch in a map",
     {"spec": {"securityContext": {"$patch": "merge"}}}, 500, "",
     "unknown patch type: merge in map: map[$patch:merge]"),
    ("$retainKeys not a list",
     {"spec": {"securityContext": {"$retainKeys": "runAsUser"}}}, 400, "BadRequest",
     "invalid patch format of retainKeys"),
    ("$retainKeys missing a patched field",
     {"spec": {"securityContext": {"$retainKeys": ["runAsUser"], "runAsGroup": 1}}},
     400, "BadRequest", "invalid patch format of retainKeys"),
    ("$deleteFromPrimitiveList without a field",
     {"metadata": {"$deleteFromPrimitiveList": ["a"]}}, 400, "BadRequest",
     "invalid patch format of primitive list"),
    ("$setElementOrder without a field",
     {"metadata": {"$setElementOrder": ["a"]}}, 400, "BadRequest",
     "invalid patch format of setElementOrder list"),
    ("$setElementOrder not a list",
     {"metadata": {"$setElementOrder/finalizers": "a"}}, 500, "",
     "expected a []interface {}, but received a string"),
    ("$setElementOrder contradicting the patch order",
     {"spec": {"$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
               "containers": [{"name": "sidecar"}, {"name": "app"}]}}, 500, "",
     "the order in patch list:\n[map[name:sidecar] map[name:app]]\n doesn't match "
     "$setElementOrder list:\n[map[name:app] map[name:sidecar]]"),
    ("mixed element types in a merge list",
     {"metadata": {"finalizers": [1]}}, 500, "",
     "list element types are not identical: [[a b] [1]]"),
    ("lists of lists",
     {"status": {"conditions": [["x"]]}}, 500, "",
     "list element types are not identical: [[map[status:False type:Ready] "
     "map[status:True type:Initialized]] [[x]]]"),
]


@pytest.mark.parametrize("name, patch, code, reason, message", SMP_ERRORS,
                         ids=[c[0] for c in SMP_ERRORS])
def test_smp_errors(name, patch, code, reason, message):
    err = raises(p.strategic_merge_patch, pod(), patch, "", "v1", "Pod")
    assert (err.code, err.reason, err.message) == (code, reason, message)


def test_smp_list_of_lists_is_422():
    doc = {"metadata": {"finalizers": []}}
    err = raises(p.strategic_merge_patch, doc, {"metadata": {"finalizers": [["x"]]}}, "", "v1", "Pod")
    assert (err.code, err.reason, err.message) == (422, "Invalid", REJECTED)


def test_smp_is_fast():
    doc = pod()
    doc["spec"]["containers"] = [
        {"name": f"c{i}", "image": "nginx", "ports": [{"containerPort": 80 + i}],
         "env": [{"name": f"E{j}", "value": "v"} for j in range(10)],
         "volumeMounts": [{"name": "data", "mountPath": f"/m{i}"}]} for i in range(4)]
    patch = {"metadata": {"labels": {"x": "y"}},
             "spec": {"containers": [{"name": "c1", "image": "nginx:2",
                                      "env": [{"name": "NEW", "value": "1"}]}]}}
    p.strategic_merge_patch(doc, patch, "", "v1", "Pod")     # warm the schema cache
    runs = 200
    start = time.perf_counter()
    for _ in range(runs):
        p.strategic_merge_patch(doc, patch, "", "v1", "Pod")
    per_patch = (time.perf_counter() - start) / runs
    assert per_patch < 0.001, f"{per_patch * 1e6:.0f} µs per patch"


# ---------------------------------------------------------------------------------------
# Two-way strategic merge patch
# ---------------------------------------------------------------------------------------

def test_two_way_patch_shape():
    original = pod()
    modified = pod()
    modified["metadata"]["labels"] = {"app": "web", "new": "1"}
    modified["spec"]["containers"][0]["image"] = "app:2"
    patch = p.create_two_way_merge_patch(original, modified, "", "v1", "Pod")
    assert patch == {
        "metadata": {"labels": {"new": "1", "tier": None}},
        "spec": {"$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                 "containers": [{"name": "app", "image": "app:2"}]},
    }


def test_two_way_patch_lists():
    original = pod()
    modified = pod()
    modified["metadata"]["finalizers"] = ["b", "c"]
    del modified["spec"]["containers"][1]
    modified["spec"]["volumes"] = [{"name": "data", "configMap": {"name": "cm"}}]
    patch = p.create_two_way_merge_patch(original, modified, "", "v1", "Pod")
    assert patch["metadata"] == {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"],
                                 "$setElementOrder/finalizers": ["b", "c"]}
    assert patch["spec"]["containers"] == [{"name": "sidecar", "$patch": "delete"}]
    assert patch["spec"]["volumes"] == [{"name": "data", "$retainKeys": ["configMap", "name"],
                                         "configMap": {"name": "cm"}, "emptyDir": None}]


def _variants():
    base = pod()
    reordered = pod()
    reordered["spec"]["containers"].reverse()
    reordered["spec"]["containers"][0]["image"] = "side:9"
    env = pod()
    env["spec"]["containers"][0]["env"] = [{"name": "C", "value": "3"}, {"name": "A", "value": "1"}]
    fin = pod()
    fin["metadata"]["finalizers"] = ["z", "b"]
    vol = pod()
    vol["spec"]["volumes"] = [{"name": "data", "configMap": {"name": "cm"}},
                              {"name": "more", "emptyDir": {}}]
    gone = pod()
    del gone["spec"]["securityContext"]
    del gone["metadata"]["labels"]["tier"]
    gone["spec"]["tolerations"] = []
    return [base, reordered, env, fin, vol, gone]


@pytest.mark.parametrize("modified", _variants())
def test_two_way_patch_round_trips(modified):
    original = pod()
    patch = p.create_two_way_merge_patch(original, modified, "", "v1", "Pod")
    assert p.strategic_merge_patch(original, patch, "", "v1", "Pod") == modified
    assert original == pod()


def test_two_way_patch_of_identical_objects_is_empty():
    assert p.create_two_way_merge_patch(pod(), pod(), "", "v1", "Pod") == {}
