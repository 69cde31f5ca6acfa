"""Server-side apply and field ownership (metadata.managedFields)."""
from __future__ import annotations

import copy

import pytest

from skube.api.apply import manager_from_user_agent, server_side_apply, track_update
from skube.api.errors import APIError
from skube.api.fieldmanager import fieldset
from skube.api.fieldmanager.typeinfo import root_type
from skube.api.fieldmanager.walk import to_set

T0, T1, T2, T3 = ("2024-05-01T10:00:00Z", "2024-05-01T10:01:00Z",
                  "2024-05-01T10:02:00Z", "2024-05-01T10:03:00Z")

APPS = dict(group="apps", version="v1", kind="Deployment")
CORE_POD = dict(group="", version="v1", kind="Pod")


def deployment(**spec) -> dict:
    base = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}},
        },
    }
    base["spec"].update(spec)
    return base


def apply(live, cfg, manager="kubectl", force=False, now=T1, kind=APPS, **kw):
    return server_side_apply(live, cfg, manager=manager, force=force, now=now, **kind, **kw)


def entries(obj) -> dict[tuple, dict]:
    return {(e["manager"], e["operation"], e.get("subresource", "")): e
            for e in obj["metadata"].get("managedFields", [])}


def fields(obj, manager, operation="Apply", subresource="") -> dict:
    return entries(obj)[(manager, operation, subresource)]["fieldsV1"]


def owns(obj, manager, path: str, operation="Apply") -> bool:
    """Whether ``manager`` owns a dotted path such as ``spec.replicas``."""
    pes = tuple(p if p[:2] in ("k:", "v:", "i:") else "f:" + p for p in path.split("."))
    entry = entries(obj).get((manager, operation, ""))
    return entry is not None and fieldset.contains(entry["fieldsV1"], pes)


def raises(fn, *args, **kw) -> APIError:
    with pytest.raises(APIError) as info:
        fn(*args, **kw)
    return info.value


# --- apply: create and re-apply ----------------------------------------------------

def test_apply_creates_object_and_records_applier():
    cfg = deployment(replicas=2)
    cfg["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    obj = apply(None, cfg, now=T0)
    assert obj["spec"]["replicas"] == 2
    assert obj["metadata"]["name"] == "web"
    assert obj["metadata"]["managedFields"] == [{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T0,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {'k:{"name":"nginx"}': {
                        ".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {
                            ".": {}, "f:containerPort": {}}}}}},
                },
            },
        },
    }]
    # The result shares nothing with the inputs.
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"
    assert cfg["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"


def test_reapply_changes_a_field_and_bumps_time():
    live = apply(None, deployment(replicas=2), now=T0)
    obj = apply(live, deployment(replicas=5), now=T1)
    assert obj["spec"]["replicas"] == 5
    (entry,) = obj["metadata"]["managedFields"]
    assert entry["time"] == T1 and owns(obj, "kubectl", "spec.replicas")


def test_identical_reapply_is_a_no_op():
    live = apply(None, deployment(replicas=2), now=T0)
    again = apply(live, deployment(replicas=2), now=T2)
    assert again == live          # same object, same managedFields, old timestamp


def test_reapply_without_a_field_removes_it():
    cfg = deployment(replicas=2, minReadySeconds=5)
    cfg["metadata"]["labels"] = {"team": "a", "tier": "web"}
    live = apply(None, cfg, now=T0)
    cfg2 = deployment(replicas=2)
    cfg2["metadata"]["labels"] = {"team": "a"}
    obj = apply(live, cfg2)
    assert "minReadySeconds" not in obj["spec"]
    assert obj["metadata"]["labels"] == {"team": "a"}
    assert not owns(obj, "kubectl", "spec.minReadySeconds")
    assert not owns(obj, "kubectl", "metadata.labels.tier")


def test_dropping_all_labels_removes_the_map_but_keeps_metadata():
    cfg = deployment()
    cfg["metadata"]["labels"] = {"team": "a"}
    live = apply(None, cfg, now=T0)
    obj = apply(live, deployment())
    assert "labels" not in obj["metadata"]
    assert obj["metadata"]["name"] == "web" and obj["metadata"]["namespace"] == "default"


def test_removed_field_kept_when_another_applier_owns_it():
    live = apply(None, deployment(replicas=2, minReadySeconds=5), manager="a", now=T0)
    live = apply(live, deployment(replicas=2, minReadySeconds=5), manager="b", now=T1)
    obj = apply(live, deployment(replicas=2), manager="a", now=T2)
    assert obj["spec"]["minReadySeconds"] == 5
    assert owns(obj, "b", "spec.minReadySeconds") and not owns(obj, "a", "spec.minReadySeconds")


def test_removed_field_kept_when_an_updater_owns_it():
    live = apply(None, deployment(replicas=2, minReadySeconds=5), now=T0)
    new = copy.deepcopy(live)
    new["spec"]["minReadySeconds"] = 9
    track_update(live, new, manager="kubectl-edit", now=T1, **APPS)
    obj = apply(new, deployment(replicas=2), now=T2)
    assert obj["spec"]["minReadySeconds"] == 9


def test_unowned_fields_survive_reapply():
    live = apply(None, deployment(replicas=2), now=T0)
    live["spec"]["revisionHistoryLimit"] = 10          # defaulted by the server, owned by no one
    obj = apply(live, deployment(replicas=3))
    assert obj["spec"]["revisionHistoryLimit"] == 10


# --- conflicts ---------------------------------------------------------------------------

def _created_by_client_side_apply(replicas=3):
    obj = deployment(replicas=replicas)
    track_update(None, obj, manager="kubectl-client-side-apply", now=T0, **APPS)
    return obj


def test_conflict_with_update_manager():
    live = _created_by_client_side_apply()
    err = raises(apply, live, deployment(replicas=5), manager="helm")
    assert (err.code, err.reason) == (409, "Conflict")
    assert err.message == ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" '
                           'using apps/v1: .spec.replicas')
    assert err.details == {"causes": [{
        "reason": "FieldManagerConflict",
        "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
        "field": ".spec.replicas"}]}
    assert err.status()["details"]["causes"][0]["field"] == ".spec.replicas"


def test_conflict_message_lists_many_conflicts_by_manager():
    live = _created_by_client_side_apply()
    live = apply(live, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                        "spec": {"minReadySeconds": 3}}, manager="argo", now=T1)
    cfg = deployment(replicas=5, minReadySeconds=4)
    cfg["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    err = raises(apply, live, cfg, manager="helm")
    assert err.message == (
        'Apply failed with 3 conflicts: conflicts with "argo":\n'
        "- .spec.minReadySeconds\n"
        'conflicts with "kubectl-client-side-apply" using apps/v1:\n'
        "- .spec.replicas\n"
        '- .spec.template.spec.containers[name="nginx"].image')
    assert [c["field"] for c in err.details["causes"]] == [
        ".spec.minReadySeconds", ".spec.replicas", '.spec.template.spec.containers[name="nginx"].image']
    assert err.details["causes"][0]["message"] == 'conflict with "argo"'


def test_conflict_describes_subresource_managers():
    live = apply(None, deployment(), now=T0)
    new = copy.deepcopy(live)
    new["status"] = {"replicas": 1}
    track_update(live, new, manager="kube-controller-manager", now=T1, subresource="status", **APPS)
    err = raises(apply, new, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                              "status": {"replicas": 4}}, manager="ctl", subresource="status")
    assert err.message == ('Apply failed with 1 conflict: conflict with "kube-controller-manager" with '
                           'subresource "status" using apps/v1: .status.replicas')


def test_force_moves_ownership():
    live = _created_by_client_side_apply()
    obj = apply(live, deployment(replicas=5), manager="helm", force=True)
    assert obj["spec"]["replicas"] == 5
    assert owns(obj, "helm", "spec.replicas")
    assert not owns(obj, "kubectl-client-side-apply", "spec.replicas", "Update")
    assert owns(obj, "kubectl-client-side-apply", "spec.selector", "Update")


def test_force_drops_a_manager_left_with_nothing():
    live = apply(None, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                        "spec": {"replicas": 1}}, manager="scaler", now=T0)
    obj = apply(live, deployment(replicas=4), manager="helm", force=True)
    assert [e["manager"] for e in obj["metadata"]["managedFields"]] == ["helm"]


def test_shared_field_with_same_value_is_co_owned_then_conflicts_on_change():
    live = apply(None, deployment(replicas=2), manager="a", now=T0)
    live = apply(live, deployment(replicas=2), manager="b", now=T1)
    assert owns(live, "a", "spec.replicas") and owns(live, "b", "spec.replicas")
    err = raises(apply, live, deployment(replicas=3), manager="a")
    assert err.message == 'Apply failed with 1 conflict: conflict with "b": .spec.replicas'
    # b stops managing replicas: a may change it freely now
    live = apply(live, deployment(), manager="b", now=T2)
    assert live["spec"]["replicas"] == 2 and owns(live, "a", "spec.replicas")
    assert apply(live, deployment(replicas=3), manager="a")["spec"]["replicas"] == 3


def test_second_applier_with_same_value_does_not_bump_time():
    live = apply(None, deployment(replicas=2), manager="a", now=T0)
    obj = apply(live, deployment(replicas=2), manager="b", now=T1)
    b = entries(obj)[("b", "Apply", "")]
    assert "time" not in b              # the object did not change
    assert [e["manager"] for e in obj["metadata"]["managedFields"]] == ["b", "a"]


def test_kubectl_server_side_upgrade_from_client_side_apply():
    """`kubectl apply --server-side` over an object `kubectl apply` (client-side) made:
    fields the last-applied annotation still describes change hands without conflicts."""
    live = deployment(replicas=3)
    live["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration":
            '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default"},'
            '"spec":{"replicas":3,"template":{"spec":{"containers":[{"image":"nginx:1.25","name":"nginx"}]}}}}\n'}
    track_update(None, live, manager="kubectl-client-side-apply", now=T0, **APPS)
    cfg = deployment(replicas=3)
    cfg["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    obj = apply(live, cfg, manager="kubectl")
    assert obj["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    csa = fields(obj, "kubectl-client-side-apply", "Update")
    assert "f:image" not in csa["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"nginx"}']
    # the annotation now carries the server-side configuration (Go's JSON: sorted keys, newline)
    text = obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert text.startswith('{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web",')
    assert text.endswith("}\n") and '"image":"nginx:1.26"' in text
    # another manager name gets the conflict
    err = raises(apply, live, cfg, manager="helm")
    assert err.message == ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using '
                           'apps/v1: .spec.template.spec.containers[name="nginx"].image')
    # and so does kubectl for a field changed since the annotation was written
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 7
    scaled_new = copy.deepcopy(scaled)
    track_update(live, scaled_new, manager="kubectl-client-side-apply", now=T1, **APPS)
    err = raises(apply, scaled_new, cfg, manager="kubectl")
    assert err.message == ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using '
                           'apps/v1: .spec.replicas')


def test_null_server_fields_in_configuration_are_ignored():
    live = apply(None, deployment(replicas=1), now=T0)
    live["metadata"]["creationTimestamp"] = T0
    cfg = deployment(replicas=2)
    cfg["metadata"]["creationTimestamp"] = None
    cfg["status"] = {}
    obj = apply(live, cfg)
    assert obj["metadata"]["creationTimestamp"] == T0 and "status" not in obj


def test_dropped_list_item_goes_even_if_an_updater_owns_a_field_in_it():
    cfg = deployment()
    cfg["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "s:1"})
    live = apply(None, cfg, now=T0)
    new = copy.deepcopy(live)
    new["spec"]["template"]["spec"]["containers"][1]["image"] = "s:2"
    track_update(live, new, manager="kubectl-edit", now=T1, **APPS)
    obj = apply(new, deployment(), now=T2)      # structured-merge-diff prunes the whole item
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["nginx"]
    assert ("kubectl-edit", "Update", "") not in entries(obj)


# --- list and map merge semantics ------------------------------------------------------------

def test_list_map_merges_containers_by_name_and_ports_by_port_and_protocol():
    a = deployment()
    a["spec"]["template"]["spec"]["containers"] = [
        {"name": "app", "image": "app:1", "ports": [{"containerPort": 8080}]}]
    live = apply(None, a, manager="team-a", now=T0)
    b = deployment()
    b["spec"]["template"]["spec"]["containers"] = [
        {"name": "sidecar", "image": "proxy:1"},
        {"name": "app", "ports": [{"containerPort": 8080, "protocol": "UDP"},
                                  {"containerPort": 8080}]}]
    obj = apply(live, b, manager="team-b", now=T1)
    containers = obj["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["sidecar", "app"]
    app = containers[1]
    assert app["image"] == "app:1"
    assert app["ports"] == [{"containerPort": 8080, "protocol": "UDP"}, {"containerPort": 8080}]
    spec_b = fields(obj, "team-b")["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert set(spec_b['k:{"name":"app"}']["f:ports"]) == {
        'k:{"containerPort":8080,"protocol":"UDP"}', 'k:{"containerPort":8080,"protocol":"TCP"}'}
    # team-a drops its container's port: b still owns TCP/8080, so it stays
    a2 = deployment()
    a2["spec"]["template"]["spec"]["containers"] = [{"name": "app", "image": "app:1"}]
    obj = apply(obj, a2, manager="team-a", now=T2)
    assert len(obj["spec"]["template"]["spec"]["containers"][1]["ports"]) == 2
    # team-b drops the sidecar: nobody else owns it, so it goes
    b2 = deployment()
    b2["spec"]["template"]["spec"]["containers"] = [{"name": "app"}]
    obj = apply(obj, b2, manager="team-b", now=T3)
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["app"]
    assert "ports" not in obj["spec"]["template"]["spec"]["containers"][0]


def test_list_merge_keeps_live_order_and_moves_shared_items_to_config_order():
    def env(*names):
        cfg = deployment()
        cfg["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": n, "value": n} for n in names]
        return cfg
    live = apply(None, env("A", "B", "C"), manager="one", now=T0)
    obj = apply(live, env("X", "C", "A"), manager="two", now=T1)
    got = [e["name"] for e in obj["spec"]["template"]["spec"]["containers"][0]["env"]]
    # live-only B keeps its place relative to the live order; X, C, A follow the config
    assert got == ["B", "X", "C", "A"]


def test_set_list_merges_finalizers_by_value():
    base = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}
    cm = dict(group="", version="v1", kind="ConfigMap")
    a = copy.deepcopy(base)
    a["metadata"]["finalizers"] = ["example.com/a", "example.com/shared"]
    live = apply(None, a, manager="a", now=T0, kind=cm)
    b = copy.deepcopy(base)
    b["metadata"]["finalizers"] = ["example.com/shared", "example.com/b"]
    obj = apply(live, b, manager="b", now=T1, kind=cm)
    assert obj["metadata"]["finalizers"] == ["example.com/a", "example.com/shared", "example.com/b"]
    assert fields(obj, "b")["f:metadata"]["f:finalizers"] == {
        'v:"example.com/b"': {}, 'v:"example.com/shared"': {}}
    # a drops its finalizers: its own goes, the shared one stays (b owns it)
    obj = apply(obj, base, manager="a", now=T2, kind=cm)
    assert obj["metadata"]["finalizers"] == ["example.com/shared", "example.com/b"]


def test_atomic_list_is_replaced_whole_and_owned_as_one_field():
    cfg = deployment()
    cfg["spec"]["template"]["spec"]["containers"][0]["args"] = ["--a", "--b"]
    live = apply(None, cfg, manager="a", now=T0)
    c = fields(live, "a")["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"nginx"}']
    assert c["f:args"] == {}
    cfg2 = deployment()
    cfg2["spec"]["template"]["spec"]["containers"][0]["args"] = ["--c"]
    err = raises(apply, live, cfg2, manager="b")
    assert err.message.endswith('.spec.template.spec.containers[name="nginx"].args')
    obj = apply(live, cfg2, manager="a")
    assert obj["spec"]["template"]["spec"]["containers"][0]["args"] == ["--c"]


def test_atomic_map_selector_is_replaced():
    live = apply(None, deployment(), now=T0)
    cfg = deployment()
    cfg["spec"]["selector"] = {"matchLabels": {"tier": "x"}}
    obj = apply(live, cfg)
    assert obj["spec"]["selector"] == {"matchLabels": {"tier": "x"}}


def test_granular_maps_merge_key_by_key():
    cfg = deployment()
    cfg["metadata"]["labels"] = {"a": "1"}
    live = apply(None, cfg, manager="one", now=T0)
    cfg2 = deployment()
    cfg2["metadata"]["labels"] = {"b": "2"}
    obj = apply(live, cfg2, manager="two", now=T1)
    assert obj["metadata"]["labels"] == {"a": "1", "b": "2"}


def test_empty_struct_in_configuration_is_owned_and_pruned_when_dropped():
    cfg = deployment()
    cfg["spec"]["template"]["spec"]["securityContext"] = {}
    live = apply(None, cfg, now=T0)
    assert fields(live, "kubectl")["f:spec"]["f:template"]["f:spec"]["f:securityContext"] == {}
    obj = apply(live, deployment())
    assert "securityContext" not in obj["spec"]["template"]["spec"]


def test_null_in_configuration_unsets_a_field():
    live = apply(None, deployment(replicas=2, minReadySeconds=4), now=T0)
    obj = apply(live, deployment(replicas=2, minReadySeconds=None))
    assert "minReadySeconds" not in obj["spec"]


# --- custom resources -----------------------------------------------------------------

WIDGET_SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "size": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "ports": {"type": "array", "x-kubernetes-list-type": "map",
                          "x-kubernetes-list-map-keys": ["port", "protocol"],
                          "items": {"type": "object", "required": ["port"], "properties": {
                              "port": {"type": "integer"},
                              "protocol": {"type": "string", "default": "TCP"},
                              "name": {"type": "string"}}}},
                "zones": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "target": {"type": "object", "x-kubernetes-map-type": "atomic",
                           "properties": {"name": {"type": "string"}, "kind": {"type": "string"}}},
            },
        },
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
    },
}
WIDGET = dict(group="example.com", version="v1", kind="Widget", schema=WIDGET_SCHEMA)


def widget(**spec):
    return {"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "default"}, "spec": spec}


def test_custom_resource_list_types_follow_the_crd_schema():
    live = apply(None, widget(tags=["a"], ports=[{"port": 80}], zones=["z1"],
                              config={"deep": {"x": 1}}, target={"name": "n", "kind": "K"}),
                 manager="one", now=T0, kind=WIDGET)
    f = fields(live, "one")["f:spec"]
    assert f["f:tags"] == {} and f["f:target"] == {}
    assert f["f:ports"] == {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}}}
    assert f["f:zones"] == {'v:"z1"': {}}
    assert f["f:config"] == {"f:deep": {".": {}, "f:x": {}}}
    obj = apply(live, widget(tags=["b"], ports=[{"port": 81, "name": "x"}], zones=["z2"],
                             config={"deep": {"y": 2}}, target={"name": "m"}),
                manager="two", force=True, now=T1, kind=WIDGET)
    s = obj["spec"]
    assert s["tags"] == ["b"]                               # lists default to atomic
    assert s["ports"] == [{"port": 80}, {"port": 81, "name": "x"}]
    assert s["zones"] == ["z1", "z2"]
    assert s["config"] == {"deep": {"x": 1, "y": 2}}        # deduced maps are granular
    assert s["target"] == {"name": "m"}                     # atomic map replaced


def test_custom_resource_unknown_field_is_rejected():
    err = raises(apply, None, widget(size=1, colour="red"), kind=WIDGET)
    assert err.message == ("failed to create typed patch object (default/w; example.com/v1, Kind=Widget): "
                           ".spec.colour: field not declared in schema")


def test_custom_resource_without_status_subresource_owns_status_on_main_endpoint():
    cfg = widget(size=1)
    cfg["status"] = {"ready": True}
    obj = apply(None, cfg, now=T0, kind=WIDGET, status_subresource=False)
    assert obj["status"] == {"ready": True}
    assert fields(obj, "kubectl")["f:status"] == {"f:ready": {}}
    obj = apply(None, cfg, now=T0, kind=WIDGET)               # with one: status is reset
    assert "status" not in obj and "f:status" not in fields(obj, "kubectl")


# --- status subresource ---------------------------------------------------------------------

def test_apply_to_status_subresource_owns_status_only():
    live = apply(None, deployment(replicas=1), now=T0)
    cfg = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": 9}, "status": {"replicas": 1, "readyReplicas": 1}}
    obj = apply(live, cfg, manager="ctrl", subresource="status", now=T1)
    assert obj["spec"]["replicas"] == 1 and obj["status"] == {"replicas": 1, "readyReplicas": 1}
    e = entries(obj)[("ctrl", "Apply", "status")]
    assert e["subresource"] == "status"
    assert e["fieldsV1"] == {"f:status": {"f:readyReplicas": {}, "f:replicas": {}}}


# --- validation ----------------------------------------------------------------------------

def test_version_mismatch_is_bad_request():
    cfg = deployment()
    cfg["apiVersion"] = "apps/v1beta1"
    err = raises(apply, None, cfg)
    assert (err.code, err.reason) == (400, "BadRequest")
    assert err.message == ("Incorrect version specified in apply patch. "
                           "Specified patch version: apps/v1beta1, expected: apps/v1")
    del cfg["apiVersion"]
    assert raises(apply, None, cfg).message.startswith(
        "Incorrect version specified in apply patch. Specified patch version: , expected")


def test_kind_missing_or_mismatched_is_bad_request():
    cfg = deployment()
    del cfg["kind"]
    err = raises(apply, None, cfg)
    assert err.code == 400
    assert err.message == ("failed to create typed patch object (default/web; apps/v1, Kind=): "
                           "no corresponding type for apps/v1, Kind=")
    cfg["kind"] = "StatefulSet"
    assert raises(apply, None, cfg).message.endswith("no corresponding type for apps/v1, Kind=StatefulSet")


def test_managed_fields_in_configuration_rejected():
    cfg = deployment()
    cfg["metadata"]["managedFields"] = []
    err = raises(apply, None, cfg)
    assert (err.code, err.message) == (400, "metadata.managedFields must be nil")


def test_missing_name_on_create_is_invalid():
    cfg = deployment()
    del cfg["metadata"]["name"]
    err = raises(apply, None, cfg)
    assert (err.code, err.reason) == (422, "Invalid")
    assert err.message == 'Deployment.apps "" is invalid: metadata.name: Required value: name or generateName is required'


def test_name_must_match_live_object():
    live = apply(None, deployment(), now=T0)
    cfg = deployment()
    cfg["metadata"]["name"] = "other"
    err = raises(apply, live, cfg)
    assert (err.code, err.message) == (400, "the name of the object (other) does not match the name on the URL (web)")


def test_field_manager_is_required():
    err = raises(apply, None, deployment(), manager="")
    assert (err.code, err.reason) == (422, "Invalid")
    assert err.message == 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'


def test_schema_errors_are_bad_requests_with_upstream_text():
    cfg = deployment()
    cfg["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    err = raises(apply, None, cfg)
    assert err.code == 400
    assert err.message == ("failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
                           '.spec.template.spec.containers[name="nginx"].imagePullPolcy: field not declared in schema')
    cfg = deployment()
    cfg["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A"}, {"name": "A", "value": "x"}]
    assert raises(apply, None, cfg).message.endswith(
        '.spec.template.spec.containers[name="nginx"].env: duplicate entries for key [name="A"]')
    cfg = deployment()
    cfg["spec"]["replicas"] = {"x": 1}
    cfg["spec"]["paused"] = [True]
    assert "errors:\n  .spec.replicas: expected scalar, got map\n  .spec.paused: expected scalar, got list" \
        in raises(apply, None, cfg).message


# --- track_update --------------------------------------------------------------------------

def test_track_update_on_create_owns_every_field_set():
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "namespace": "default", "uid": "u", "resourceVersion": "5",
                        "creationTimestamp": T0, "labels": {"app": "p"}},
           "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {},
                                    "ports": [{"containerPort": 80, "protocol": "TCP"}]}],
                    "restartPolicy": "Always"},
           "status": {"phase": "Pending"}}
    track_update(None, pod, manager="kubectl-create", now=T0, **CORE_POD)
    assert pod["metadata"]["managedFields"] == [{
        "manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": T0,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:containers": {'k:{"name":"c"}': {
                    ".": {}, "f:image": {}, "f:name": {},
                    "f:ports": {".": {}, 'k:{"containerPort":80,"protocol":"TCP"}': {
                        ".": {}, "f:containerPort": {}, "f:protocol": {}}},
                    "f:resources": {}}},
                "f:restartPolicy": {},
            },
        },
    }]


def test_track_update_moves_changed_fields_and_drops_removed_ones():
    obj = deployment(replicas=2, minReadySeconds=3)
    track_update(None, obj, manager="creator", now=T0, **APPS)
    new = copy.deepcopy(obj)
    new["spec"]["replicas"] = 4
    del new["spec"]["minReadySeconds"]
    track_update(obj, new, manager="scaler", now=T1, **APPS)
    mine = entries(new)
    assert mine[("scaler", "Update", "")]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    creator = mine[("creator", "Update", "")]["fieldsV1"]["f:spec"]
    assert "f:replicas" not in creator and "f:minReadySeconds" not in creator
    assert mine[("creator", "Update", "")]["time"] == T0
    # the same manager again: fields accumulate, time moves
    newer = copy.deepcopy(new)
    newer["spec"]["paused"] = True
    track_update(new, newer, manager="scaler", now=T2, **APPS)
    s = entries(newer)[("scaler", "Update", "")]
    assert s["time"] == T2 and set(s["fieldsV1"]["f:spec"]) == {"f:replicas", "f:paused"}


def test_track_update_without_changes_keeps_managed_fields():
    obj = deployment(replicas=2)
    track_update(None, obj, manager="creator", now=T0, **APPS)
    new = copy.deepcopy(obj)
    new["metadata"]["resourceVersion"] = "99"       # server bookkeeping is never owned
    track_update(obj, new, manager="other", now=T1, **APPS)
    assert new["metadata"]["managedFields"] == obj["metadata"]["managedFields"]


def test_track_update_status_subresource():
    obj = deployment(replicas=2)
    track_update(None, obj, manager="creator", now=T0, **APPS)
    new = copy.deepcopy(obj)
    new["status"] = {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}
    new["spec"]["replicas"] = 7                     # ignored on the status endpoint
    new["metadata"]["managedFields"] = []           # ignored on a subresource
    track_update(obj, new, manager="kube-controller-manager", now=T1, subresource="status", **APPS)
    st = entries(new)[("kube-controller-manager", "Update", "status")]
    assert st["subresource"] == "status"
    assert st["fieldsV1"] == {"f:status": {".": {}, "f:conditions": {".": {}, 'k:{"type":"Available"}': {
        ".": {}, "f:status": {}, "f:type": {}}}, "f:replicas": {}}}
    assert owns(new, "creator", "spec.replicas", "Update")
    # and the main endpoint does not track status
    main = copy.deepcopy(new)
    main["status"]["replicas"] = 3
    track_update(new, main, manager="editor", now=T2, **APPS)
    assert ("editor", "Update", "") not in entries(main)


def test_track_update_honours_client_managed_fields():
    obj = deployment(replicas=2)
    track_update(None, obj, manager="creator", now=T0, **APPS)
    reset = copy.deepcopy(obj)
    reset["metadata"]["managedFields"] = []
    track_update(obj, reset, manager="editor", now=T1, **APPS)
    assert "managedFields" not in reset["metadata"]
    one_empty = copy.deepcopy(obj)
    one_empty["metadata"]["managedFields"] = [{}]
    one_empty["spec"]["replicas"] = 3
    track_update(obj, one_empty, manager="editor", now=T1, **APPS)
    assert [e["manager"] for e in one_empty["metadata"]["managedFields"]] == ["editor"]
    custom = copy.deepcopy(obj)
    custom["metadata"]["managedFields"] = [{"manager": "someone", "operation": "Apply", "apiVersion": "apps/v1",
                                            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
    track_update(obj, custom, manager="editor", now=T1, **APPS)
    assert custom["metadata"]["managedFields"][0]["manager"] == "someone"
    garbage = copy.deepcopy(obj)
    garbage["metadata"]["managedFields"] = [{"manager": "x", "operation": "Bogus"}]
    track_update(obj, garbage, manager="editor", now=T1, **APPS)
    assert garbage["metadata"]["managedFields"] == obj["metadata"]["managedFields"]


def test_track_update_does_not_share_state_with_old():
    obj = deployment(replicas=2)
    track_update(None, obj, manager="creator", now=T0, **APPS)
    new = copy.deepcopy(obj)
    del new["metadata"]["managedFields"]
    new["status"] = {"replicas": 1}
    track_update(obj, new, manager="ctrl", now=T1, subresource="status", **APPS)
    new["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:x"] = {}
    assert "f:x" not in obj["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]


def test_update_managers_are_capped_into_ancient_changes():
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {}}
    cm = dict(group="", version="v1", kind="ConfigMap")
    for i in range(12):
        new = copy.deepcopy(obj)
        new["data"][f"k{i}"] = "v"
        track_update(obj, new, manager=f"m{i:02d}", now=f"2024-05-01T10:{i:02d}:00Z", **cm)
        obj = new
    names = [e["manager"] for e in obj["metadata"]["managedFields"]]
    assert len(names) == 10 and "ancient-changes" in names
    assert "m00" not in names and "m01" not in names and "m02" not in names and "m11" in names
    bucket = entries(obj)[("ancient-changes", "Update", "")]
    assert set(bucket["fieldsV1"]["f:data"]) == {"f:k0", "f:k1", "f:k2"}
    assert bucket["time"] == "2024-05-01T10:02:00Z"


def test_apply_then_update_then_apply_round_trip():
    live = apply(None, deployment(replicas=2), now=T0)
    new = copy.deepcopy(live)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:hotfix"
    track_update(live, new, manager="kubectl-edit", now=T1, **APPS)
    c = fields(new, "kubectl")["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"nginx"}']
    assert "f:image" not in c      # an Update takes the field from every other manager
    err = raises(apply, new, deployment(replicas=2))
    assert err.message == ('Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: '
                           '.spec.template.spec.containers[name="nginx"].image')


# --- FieldsV1 encoding ---------------------------------------------------------------------

def test_fieldsv1_path_elements_and_order():
    s = fieldset.from_paths([
        ("f:spec", "f:containers", 'k:{"name":"c"}', "f:image"),
        ("f:spec", "f:containers", 'k:{"name":"c"}'),
        ("f:metadata", "f:finalizers", 'v:"x"'),
        ("f:metadata", "f:finalizers", 'v:"a"'),
        ("f:spec", "f:list", "i:10"),
        ("f:spec", "f:list", "i:2"),
        ("f:spec", "f:a"),
    ])
    out = fieldset.canonical(s)
    assert list(out) == ["f:metadata", "f:spec"]
    assert list(out["f:spec"]) == ["f:a", "f:containers", "f:list"]
    assert list(out["f:spec"]["f:list"]) == ["i:2", "i:10"]
    assert list(out["f:metadata"]["f:finalizers"]) == ['v:"a"', 'v:"x"']
    assert out["f:spec"]["f:containers"] == {'k:{"name":"c"}': {".": {}, "f:image": {}}}
    assert list(fieldset.iter_paths(out)) == [
        ("f:metadata", "f:finalizers", 'v:"a"'), ("f:metadata", "f:finalizers", 'v:"x"'),
        ("f:spec", "f:a"), ("f:spec", "f:containers", 'k:{"name":"c"}'),
        ("f:spec", "f:containers", 'k:{"name":"c"}', "f:image"),
        ("f:spec", "f:list", "i:2"), ("f:spec", "f:list", "i:10")]
    assert fieldset.path_string(("f:spec", "f:containers", 'k:{"name":"c"}', "f:ports",
                                 'k:{"containerPort":80,"protocol":"TCP"}')) == \
        '.spec.containers[name="c"].ports[containerPort=80,protocol="TCP"]'
    assert fieldset.path_string(("f:metadata", "f:finalizers", 'v:"x"')) == '.metadata.finalizers[="x"]'
    assert fieldset.path_string(("f:spec", "f:list", "i:3")) == ".spec.list[3]"


def test_key_json_is_compact_sorted_and_html_escaped():
    t = root_type("", "v1", "Pod", None)
    pod = {"spec": {"containers": [{"name": "<a&b>", "ports": [{"protocol": "UDP", "containerPort": 53}]}]}}
    s = to_set(pod, t)
    (key,) = s["f:spec"]["f:containers"]
    assert key == 'k:{"name":"\\u003ca\\u0026b\\u003e"}'
    assert list(s["f:spec"]["f:containers"][key]["f:ports"]) == ['k:{"containerPort":53,"protocol":"UDP"}']


def test_set_algebra_membership():
    a = {"f:a": {".": {}, "f:b": {}}, "f:c": {}}
    b = {"f:a": {}, "f:c": {}}
    assert fieldset.difference(a, b) == {"f:a": {"f:b": {}}}
    assert fieldset.intersection(a, b) == {"f:a": {}, "f:c": {}}
    assert fieldset.union({"f:a": {"f:b": {}}}, {"f:a": {}}) == {"f:a": {".": {}, "f:b": {}}}
    assert fieldset.difference(a, {}) is a


# --- manager names -------------------------------------------------------------------------

@pytest.mark.parametrize("ua, manager", [
    ("kubectl/v1.31.0 (linux/amd64) kubernetes/abc123", "kubectl"),
    ("kubectl-client-side-apply/v1.31.0", "kubectl-client-side-apply"),
    ("Go-http-client/2.0", "Go-http-client"),
    ("OpenAPI-Generator/31.0.0/python", "OpenAPI-Generator"),
    ("Helm/4.0.0", "Helm"),
    ("", ""),
    ("tab\there/1", "tabhere"),
    ("x" * 200, "x" * 128),
])
def test_manager_from_user_agent(ua, manager):
    assert manager_from_user_agent(ua) == manager
