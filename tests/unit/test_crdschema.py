"""Custom resources against CRD schemas: validation, pruning, defaulting; CRD validation."""
from __future__ import annotations

import copy

import pytest

from skube.api import crdschema, errors

SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["cronSpec"],
            "properties": {
                "cronSpec": {"type": "string", "pattern": "^[a-z* ]+$", "minLength": 2, "maxLength": 12},
                "replicas": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 10, "default": 1},
                "ratio": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "exclusiveMaximum": True,
                          "maximum": 1, "multipleOf": 0.25},
                "mode": {"type": "string", "enum": ["Fast", "Slow"], "default": "Fast"},
                "level": {"type": "integer", "enum": [1, 2]},
                "port": {"x-kubernetes-int-or-string": True},
                "when": {"type": "string", "format": "date-time"},
                "id": {"type": "string", "format": "uuid"},
                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set",
                         "minItems": 1, "maxItems": 3},
                "ports": {"type": "array", "x-kubernetes-list-type": "map",
                          "x-kubernetes-list-map-keys": ["name", "protocol"],
                          "items": {"type": "object", "required": ["name"], "properties": {
                              "name": {"type": "string"}, "protocol": {"type": "string", "default": "TCP"},
                              "port": {"type": "integer"}}}},
                "nested": {"type": "object", "default": {}, "properties": {
                    "depth": {"type": "integer", "default": 3},
                    "inner": {"type": "object", "properties": {"flag": {"type": "boolean", "default": True}}}}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "groups": {"type": "object", "additionalProperties": {
                    "type": "object", "properties": {"size": {"type": "integer", "default": 2}}}},
                "note": {"type": "string", "nullable": True},
                "plain": {"type": "string"},
                "props": {"type": "object", "minProperties": 1, "maxProperties": 2,
                          "additionalProperties": {"type": "string"}},
            },
        },
        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
    },
}


def good() -> dict:
    return {"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "c"},
            "spec": {"cronSpec": "* * * * *", "replicas": 3}}


def by_field(causes):
    return {c["field"]: c for c in causes}


# --------------------------------------------------------------------------- validation

def test_valid_object_has_no_causes():
    assert crdschema.validate_custom(SCHEMA, good()) == []
    obj = good()
    obj["spec"].update(ratio=0.5, mode="Slow", level=2, port="http", when="2024-01-02T03:04:05Z",
                       id="0b7f2a8c-2f3a-4c7e-9a55-0f6d7d1c0f11", tags=["a", "b"], note=None,
                       ports=[{"name": "a"}, {"name": "a", "protocol": "UDP"}], labels={"x": "y"},
                       free={"anything": [1, {"x": 2}]}, props={"a": "b"})
    assert crdschema.validate_custom(SCHEMA, obj) == []


def test_whole_numbers_as_floats_are_integers():
    obj = good()
    obj["spec"]["replicas"] = 2.0
    assert crdschema.validate_custom(SCHEMA, obj) == []


def test_type_errors_read_as_upstream():
    obj = good()
    obj["spec"]["replicas"] = "three"
    obj["spec"]["port"] = True
    obj["spec"]["plain"] = None
    c = by_field(crdschema.validate_custom(SCHEMA, obj))
    assert c["spec.replicas"] == {"reason": "FieldValueTypeInvalid", "field": "spec.replicas",
                                  "message": 'Invalid value: "string": spec.replicas in body must be of type '
                                             'integer: "string"'}
    assert c["spec.port"]["message"] == \
        'Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean"'
    assert c["spec.plain"]["message"] == 'Invalid value: "null": spec.plain in body must be of type string: "null"'


def test_required_enum_and_bounds():
    obj = {"spec": {"replicas": 0, "mode": "Medium", "level": 3, "ratio": 1}}
    c = by_field(crdschema.validate_custom(SCHEMA, obj))
    assert c["spec.cronSpec"] == {"reason": "FieldValueRequired", "field": "spec.cronSpec",
                                  "message": "Required value"}
    assert c["spec.replicas"]["message"] == \
        "Invalid value: 0: spec.replicas in body should be greater than or equal to 1"
    assert c["spec.mode"] == {"reason": "FieldValueNotSupported", "field": "spec.mode",
                              "message": 'Unsupported value: "Medium": supported values: "Fast", "Slow"'}
    assert c["spec.level"]["message"] == 'Unsupported value: 3: supported values: "1", "2"'
    assert c["spec.ratio"]["message"] == "Invalid value: 1: spec.ratio in body should be less than 1"
    obj = {"spec": {"cronSpec": "* *", "replicas": 11, "ratio": 0.3}}
    c = crdschema.validate_custom(SCHEMA, obj)
    assert [x["message"] for x in c] == [
        "Invalid value: 11: spec.replicas in body should be less than or equal to 10",
        "Invalid value: 0.3: spec.ratio in body should be a multiple of 0.25"]
    c = crdschema.validate_custom(SCHEMA, {"spec": {"cronSpec": "* *", "ratio": 0}})
    assert c[0]["message"] == "Invalid value: 0: spec.ratio in body should be greater than 0"


def test_strings_and_formats():
    obj = good()
    obj["spec"].update(cronSpec="A", when="yesterday", id="nope")
    c = crdschema.validate_custom(SCHEMA, obj)
    msgs = [(x["field"], x["message"]) for x in c]
    assert ("spec.cronSpec", 'Invalid value: "A": spec.cronSpec in body should be at least 2 chars long') in msgs
    assert ("spec.cronSpec", "Invalid value: \"A\": spec.cronSpec in body should match '^[a-z* ]+$'") in msgs
    assert ("spec.when", 'Invalid value: "yesterday": spec.when in body must be of type date-time: "yesterday"') \
        in msgs
    assert ("spec.id", 'Invalid value: "nope": spec.id in body must be of type uuid: "nope"') in msgs
    obj["spec"] = {"cronSpec": "* * * * * * * *"}
    c = crdschema.validate_custom(SCHEMA, obj)
    assert c == [{"reason": "FieldValueTooLong", "field": "spec.cronSpec",
                  "message": "Too long: may not be more than 12 bytes"}]


def test_arrays_and_list_types():
    obj = good()
    obj["spec"]["tags"] = ["a", "b", "a", "c"]
    obj["spec"]["ports"] = [{"name": "a"}, {"name": "a", "protocol": "TCP"}, {"name": "b"}]
    c = crdschema.validate_custom(SCHEMA, obj)
    assert {"reason": "FieldValueTooMany", "field": "spec.tags",
            "message": "Too many: 4: must have at most 3 items"} in c
    assert {"reason": "FieldValueDuplicate", "field": "spec.tags[2]", "message": 'Duplicate value: "a"'} in c
    assert {"reason": "FieldValueDuplicate", "field": "spec.ports[1]",
            "message": 'Duplicate value: map[string]interface {}{"name":"a", "protocol":"TCP"}'} in c
    obj["spec"]["tags"] = []
    obj["spec"]["ports"] = [{"port": 1}]
    c = by_field(crdschema.validate_custom(SCHEMA, obj))
    assert c["spec.tags"]["message"] == "Invalid value: 0: spec.tags in body should have at least 1 items"
    assert c["spec.ports[0].name"]["message"] == "Required value"


def test_maps_and_property_counts():
    obj = good()
    obj["spec"]["labels"] = {"a": 1}
    obj["spec"]["props"] = {}
    c = by_field(crdschema.validate_custom(SCHEMA, obj))
    assert c["spec.labels.a"]["message"] == 'Invalid value: "integer": spec.labels.a in body must be of type ' \
                                            'string: "integer"'
    assert c["spec.props"]["message"] == "Invalid value: 0: spec.props in body should have at least 1 properties"
    obj["spec"]["props"] = {"a": "1", "b": "2", "c": "3"}
    obj["spec"]["labels"] = {}
    c = by_field(crdschema.validate_custom(SCHEMA, obj))
    assert c["spec.props"]["message"] == "Too many: 3: must have at most 2 items"


def test_junctors():
    s = {"type": "object", "properties": {"v": {"type": "integer", "anyOf": [{"minimum": 5}, {"maximum": 1}],
                                                "not": {"enum": [0]}}}}
    assert crdschema.validate_custom(s, {"v": 7}) == []
    c = crdschema.validate_custom(s, {"v": 3})
    assert c == [{"reason": "FieldValueInvalid", "field": "<nil>",
                  "message": 'Invalid value: "": v must validate at least one schema (anyOf)'}]
    c = crdschema.validate_custom(s, {"v": 0})
    assert c[0]["message"] == 'Invalid value: "": v must not validate the schema (not)'


def test_causes_build_the_invalid_error():
    obj = good()
    obj["spec"]["replicas"] = 0
    e = errors.invalid("CronTab", "c", crdschema.validate_custom(SCHEMA, obj), "stable.example.com")
    assert e.code == 422
    assert e.message == ('CronTab.stable.example.com "c" is invalid: spec.replicas: Invalid value: 0: '
                         'spec.replicas in body should be greater than or equal to 1')


def test_no_schema_means_no_causes():
    assert crdschema.validate_custom(None, {"anything": 1}) == []


# --------------------------------------------------------------------------- pruning

def test_prune_drops_unknown_fields_only():
    obj = good()
    obj["metadata"]["bogus"] = 1
    obj["spec"].update(extra=1, free={"a": {"b": 1}}, labels={"k": "v"}, groups={"g": {"size": 1, "zz": 2}},
                       ports=[{"name": "a", "x": 1}])
    obj["status"] = {"replicas": 1, "ready": True}
    obj["top"] = 1
    pruned = crdschema.prune(SCHEMA, obj)
    assert pruned == ["metadata.bogus", "spec.extra", "spec.groups.g.zz", "spec.ports[0].x", "status.ready",
                      "top"]
    assert obj == {"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "c"},
                   "spec": {"cronSpec": "* * * * *", "replicas": 3, "free": {"a": {"b": 1}},
                            "labels": {"k": "v"}, "groups": {"g": {"size": 1}}, "ports": [{"name": "a"}]},
                   "status": {"replicas": 1}}


def test_prune_object_without_properties_and_preserve():
    s = {"type": "object", "properties": {
        "a": {"type": "object"},
        "b": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
              "properties": {"c": {"type": "object", "properties": {"d": {"type": "string"}}}}},
        "e": {"type": "object", "x-kubernetes-embedded-resource": True,
              "properties": {"spec": {"type": "object", "properties": {}}}}}}
    obj = {"a": {"x": 1}, "b": {"y": 1, "c": {"d": "k", "z": 1}},
           "e": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "n", "q": 1}, "spec": {"r": 1}, "w": 1}}
    assert crdschema.prune(s, obj) == ["a.x", "b.c.z", "e.metadata.q", "e.spec.r", "e.w"]
    assert obj == {"a": {}, "b": {"y": 1, "c": {"d": "k"}},
                   "e": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "n"}, "spec": {}}}


def test_prune_root_preserve_keeps_everything_but_metadata_junk():
    s = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    obj = {"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "x", "junk": 1}, "spec": {"anything": 1}}
    assert crdschema.prune(s, obj) == ["metadata.junk"]
    assert obj["spec"] == {"anything": 1}


# --------------------------------------------------------------------------- defaulting

def test_defaults_fill_missing_and_nested_values():
    obj = {"spec": {"cronSpec": "* *", "groups": {"g": {}}, "ports": [{"name": "a"}]}}
    crdschema.apply_schema_defaults(SCHEMA, obj)
    assert obj["spec"]["replicas"] == 1
    assert obj["spec"]["mode"] == "Fast"
    assert obj["spec"]["nested"] == {"depth": 3}
    assert obj["spec"]["groups"] == {"g": {"size": 2}}
    assert obj["spec"]["ports"] == [{"name": "a", "protocol": "TCP"}]
    assert "status" not in obj


def test_defaults_replace_or_drop_non_nullable_nulls():
    obj = {"spec": {"cronSpec": "* *", "replicas": None, "plain": None, "note": None,
                    "nested": {"inner": {"flag": None}}}}
    crdschema.apply_schema_defaults(SCHEMA, obj)
    assert obj["spec"]["replicas"] == 1
    assert "plain" not in obj["spec"]
    assert obj["spec"]["note"] is None
    assert obj["spec"]["nested"] == {"inner": {"flag": True}, "depth": 3}


def test_default_values_are_copies():
    a, b = {"spec": {"cronSpec": "x"}}, {"spec": {"cronSpec": "x"}}
    s = copy.deepcopy(SCHEMA)
    s["properties"]["spec"]["properties"]["nested"]["default"] = {"depth": 1}
    crdschema.apply_schema_defaults(s, a)
    crdschema.apply_schema_defaults(s, b)
    a["spec"]["nested"]["depth"] = 9
    assert b["spec"]["nested"]["depth"] == 1


def test_metadata_is_not_defaulted():
    s = {"type": "object", "properties": {"metadata": {"type": "object", "properties": {
        "name": {"type": "string", "default": "x"}}}}}
    obj = {"metadata": {}}
    crdschema.apply_schema_defaults(s, obj)
    assert obj == {"metadata": {}}


# --------------------------------------------------------------------------- the CRD object

def crd(**over) -> dict:
    c = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {"group": "stable.example.com", "scope": "Namespaced",
                 "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"]},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": copy.deepcopy(SCHEMA)},
                               "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                                        "statusReplicasPath": ".status.replicas"}}}]},
    }
    c["spec"].update(over)
    return c


def messages(causes):
    return [f"{c['field']}: {c['message']}" for c in causes]


def test_good_crd_passes():
    assert crdschema.validate_crd(crd()) == []


def test_name_must_be_plural_dot_group():
    c = crd()
    c["metadata"]["name"] = "tabs.stable.example.com"
    assert messages(crdschema.validate_crd(c)) == [
        'metadata.name: Invalid value: "tabs.stable.example.com": must be spec.names.plural+"."+spec.group']


def test_group_scope_and_names():
    c = crd(group="example", scope="Global")
    c["metadata"]["name"] = "crontabs.example"
    c["spec"]["names"].update(kind="CronTab", listKind="CronTab", plural="CronTabs")
    c["metadata"]["name"] = "CronTabs.example"
    m = messages(crdschema.validate_crd(c))
    assert 'spec.group: Invalid value: "example": should be a domain with at least one dot' in m
    assert 'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"' in m
    assert 'spec.names.listKind: Invalid value: "CronTab": kind and listKind may not be the same' in m
    assert any(x.startswith('spec.names.plural: Invalid value: "CronTabs": a DNS-1035 label') for x in m)


def test_exactly_one_storage_version():
    c = crd()
    v2 = copy.deepcopy(c["spec"]["versions"][0])
    v2["name"] = "v2"
    c["spec"]["versions"].append(v2)
    causes = crdschema.validate_crd(c)
    assert len(causes) == 1
    assert causes[0]["field"] == "spec.versions"
    assert causes[0]["message"].endswith(": must have exactly one version marked as storage version")
    c["spec"]["versions"][1]["storage"] = False
    assert crdschema.validate_crd(c) == []
    c["spec"]["versions"][0]["storage"] = False
    assert [x["field"] for x in crdschema.validate_crd(c)] == ["spec.versions"]


def test_schema_is_required_and_structural():
    c = crd()
    del c["spec"]["versions"][0]["schema"]
    assert messages(crdschema.validate_crd(c)) == [
        "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"]
    c = crd()
    s = c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    s["properties"]["spec"]["properties"]["untyped"] = {"description": "no type"}
    s["properties"]["spec"]["properties"]["arr"] = {"type": "array"}
    s["properties"]["spec"]["properties"]["uniq"] = {"type": "array", "items": {"type": "string"},
                                                     "uniqueItems": True}
    s["properties"]["metadata"] = {"type": "object", "properties": {"labels": {"type": "object"}}}
    s["properties"]["spec"]["properties"]["bad"] = {"type": "string", "pattern": "("}
    s["properties"]["spec"]["properties"]["nested"]["allOf"] = [{"type": "object", "description": "x"}]
    m = messages(crdschema.validate_crd(c))
    p = "spec.versions[0].schema.openAPIV3Schema"
    assert f"{p}.properties[spec].properties[untyped].type: Required value: must not be empty for specified " \
           f"object fields" in m
    assert f"{p}.properties[spec].properties[arr].items: Required value: must be specified" in m
    assert f"{p}.properties[spec].properties[uniq].uniqueItems: Forbidden: uniqueItems cannot be set to true " \
           f"since the runtime complexity becomes quadratic" in m
    assert f"{p}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, " \
           f"but metadata is implicitly specified" in m
    assert any(x.startswith(f'{p}.properties[spec].properties[bad].pattern: Invalid value: "(": must be a valid '
                            f'regular expression') for x in m)
    assert f"{p}.properties[spec].properties[nested].allOf[0].type: Forbidden: must be empty to be structural" in m
    assert f"{p}.properties[spec].properties[nested].allOf[0].description: Forbidden: must be empty to be " \
           f"structural" in m


def test_root_rules():
    c = crd()
    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = {"type": "array", "items": {"type": "string"}}
    assert "spec.versions[0].schema.openAPIV3Schema.type: Invalid value: \"array\": must be object at the root" \
        in messages(crdschema.validate_crd(c))
    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = {"properties": {}}
    assert "spec.versions[0].schema.openAPIV3Schema.type: Required value: must not be empty at the root" \
        in messages(crdschema.validate_crd(c))
    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = {"type": "object",
                                                             "additionalProperties": {"type": "string"}}
    assert "spec.versions[0].schema.openAPIV3Schema.additionalProperties: Forbidden: must not be used at the " \
           "root" in messages(crdschema.validate_crd(c))


def test_int_or_string_patterns_are_structural():
    c = crd()
    props = c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    props["a"] = {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
    props["b"] = {"x-kubernetes-int-or-string": True,
                  "allOf": [{"anyOf": [{"type": "integer"}, {"type": "string"}]}, {"pattern": "^[0-9a-z]+$"}]}
    assert crdschema.validate_crd(c) == []
    props["c"] = {"x-kubernetes-int-or-string": True, "x-kubernetes-preserve-unknown-fields": True}
    assert messages(crdschema.validate_crd(c)) == [
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[c].x-kubernetes-preserve-unknown-"
        "fields: Invalid value: true: must be false if x-kubernetes-int-or-string is true"]


def test_scale_paths_required():
    c = crd()
    c["spec"]["versions"][0]["subresources"]["scale"] = {"specReplicasPath": "spec.replicas"}
    m = messages(crdschema.validate_crd(c))
    assert 'spec.versions[0].subresources.scale.specReplicasPath: Invalid value: "spec.replicas": should be a ' \
           'json path and start with .' in m
    assert "spec.versions[0].subresources.scale.statusReplicasPath: Required value" in m


@pytest.mark.parametrize("field,value", [("preserveUnknownFields", True)])
def test_preserve_unknown_fields_is_rejected(field, value):
    m = messages(crdschema.validate_crd(crd(**{field: value})))
    assert m == ["spec.preserveUnknownFields: Invalid value: true: cannot set to true, set "
                 "x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead"]
