"""OpenAPI documents as kube-apiserver serves them: v3 per group-version, v2 whole.

Schemas come from the upstream definitions in ``schema.py`` (built-in kinds) and
from each CRD version's ``openAPIV3Schema`` (custom kinds). The JSON-Schema form
of the package is converted back to what upstream publishes: single ``type``,
``$ref`` into ``#/components/schemas`` (v3) or ``#/definitions`` (v2), a ``$ref``
with siblings wrapped in ``allOf`` (v3), IntOrString and Quantity as upstream.

kubectl needs two things from here: a PATCH operation per GVK that lists a
``fieldValidation`` parameter (then it validates on the server, sending
``fieldValidation=Strict``), and ``components.schemas`` with descriptions for
``kubectl explain``. Documents are cached per registry content and hashed like
kube-openapi's handler3 (upper-case hex SHA-512 of the JSON) so clients cache
``/openapi/v3/<gv>?hash=<HASH>`` and refetch when a CRD changes.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import threading
import weakref
from typing import Any, Iterable

import orjson

from . import schema as upstream
from .registry import Registry, ResourceInfo

V3_PREFIX = "#/components/schemas/"
V2_PREFIX = "#/definitions/"
_SRC_PREFIX = "#/$defs/"

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
OBJECT_META = META + "ObjectMeta"
LIST_META = META + "ListMeta"
STATUS = META + "Status"
DELETE_OPTIONS = META + "DeleteOptions"
PATCH = META + "Patch"
WATCH_EVENT = META + "WatchEvent"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
SCALE = "io.k8s.api.autoscaling.v1.Scale"

_INT_OR_STRING_DESC = ("IntOrString is a type that can hold an int32 or a string.  When used in JSON or "
                       "YAML marshalling and unmarshalling, it produces or consumes the inner type.  This "
                       "allows you to have, for example, a JSON field that can accept a name or number.")
_QUANTITY_DESC = ("Quantity is a fixed-point representation of a number. It provides convenient "
                  "marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() "
                  "accessors.")
_TYPEMETA_API_VERSION = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should convert "
    "recognized schemas to the latest internal value, and may reject unrecognized values. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources")
_TYPEMETA_KIND = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer this "
    "from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds")
_OBJECT_META_DESC = ("Standard object's metadata. More info: "
                     "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata")
_LIST_META_DESC = ("Standard list metadata. More info: "
                   "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds")

_ZERO = {"string": "", "integer": 0, "number": 0, "boolean": False}


# --------------------------------------------------------------------------- schemas

def _single_type(t: Any) -> str | None:
    if isinstance(t, list):
        rest = [x for x in t if x != "null"]
        return rest[0] if rest else None
    return t


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _has_properties(name: str) -> bool:
    d = upstream.definitions().get(name)
    return bool(d and d.get("properties"))


class _Converter:
    """Package JSON-Schema -> upstream OpenAPI form, for one OpenAPI version."""

    def __init__(self, v3: bool):
        self.v3 = v3
        self.prefix = V3_PREFIX if v3 else V2_PREFIX

    def ref(self, name: str, siblings: dict | None = None) -> dict:
        if not siblings:
            return {"$ref": self.prefix + name}
        if self.v3:
            out = {"allOf": [{"$ref": self.prefix + name}]}
            out.update(siblings)
            return out
        out = {"$ref": self.prefix + name}
        out.update(siblings)
        return out

    def node(self, s: dict, default: Any = None, has_default: bool = False) -> dict:
        if "$ref" in s:
            name = _ref_name(s["$ref"])
            sib = {k: self.node(v) if isinstance(v, dict) and k in ("items", "additionalProperties") else v
                   for k, v in s.items() if k != "$ref"}
            if has_default and self.v3:
                sib["default"] = default
            return self.ref(name, sib)
        out: dict[str, Any] = {}
        for k, v in s.items():
            if k == "type":
                t = _single_type(v)
                if t:
                    out["type"] = t
            elif k == "properties":
                out[k] = self.properties(v, set(s.get("required", ())))
            elif k == "items" and isinstance(v, dict):
                out[k] = self.element(v)
            elif k == "additionalProperties" and isinstance(v, dict):
                out[k] = self.element(v)
            elif k in ("oneOf", "anyOf", "allOf") and isinstance(v, list):
                out[k] = [self.node(x) for x in v]
            else:
                out[k] = v
        if has_default and self.v3:
            out["default"] = default
        return out

    def element(self, s: dict) -> dict:
        """Array items / map values: Go value elements carry their zero value as default."""
        if "$ref" in s:
            return self.node(s, {}, True)
        t = _single_type(s.get("type"))
        if t in _ZERO and "enum" not in s:
            return self.node(s, _ZERO[t], True)
        return self.node(s)

    def properties(self, props: dict, required: set[str], top_kind: bool = False) -> dict:
        out = {}
        for name, p in props.items():
            if "$ref" in p:
                target = _ref_name(p["$ref"])
                struct = _has_properties(target)
                non_pointer = name in required or name == "metadata" or (top_kind and name in ("spec", "status"))
                out[name] = self.node(p, {}, struct and non_pointer)
                continue
            t = _single_type(p.get("type"))
            # required scalars are non-pointer Go fields: upstream publishes their zero value
            if name in required and t in _ZERO and not isinstance(p.get("type"), list):
                out[name] = self.node(p, _ZERO[t], True)
            else:
                out[name] = self.node(p)
        return out

    def definition(self, name: str) -> dict:
        d = upstream.definitions()[name]
        if name == INT_OR_STRING:
            if self.v3:
                return {"description": _INT_OR_STRING_DESC, "format": "int-or-string",
                        "oneOf": [{"type": "integer"}, {"type": "string"}]}
            return {"description": _INT_OR_STRING_DESC, "type": "string", "format": "int-or-string"}
        if name == QUANTITY:
            if self.v3:
                return {"description": _QUANTITY_DESC, "oneOf": [{"type": "string"}, {"type": "number"}]}
            return {"description": _QUANTITY_DESC, "type": "string"}
        top_kind = "x-kubernetes-group-version-kind" in d
        out: dict[str, Any] = {}
        for k, v in d.items():
            if k == "properties":
                props = dict(v)
                if top_kind:
                    # the package pins apiVersion/kind with an enum; upstream does not
                    for tm in ("apiVersion", "kind"):
                        if tm in props and "enum" in props[tm]:
                            props[tm] = {kk: vv for kk, vv in props[tm].items() if kk != "enum"}
                out[k] = self.properties(props, set(d.get("required", ())), top_kind)
            elif k == "type":
                t = _single_type(v)
                if t:
                    out["type"] = t
            elif k in ("items", "additionalProperties") and isinstance(v, dict):
                out[k] = self.element(v)
            else:
                out[k] = v
        return out


_V3 = _Converter(True)
_V2 = _Converter(False)


@functools.cache
def _builtin_definition(name: str, v3: bool) -> dict:
    return (_V3 if v3 else _V2).definition(name)


def _refs_in(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            out.add(_ref_name(ref))
        for v in node.values():
            if isinstance(v, (dict, list)):
                _refs_in(v, out)
    elif isinstance(node, list):
        for v in node:
            _refs_in(v, out)


@functools.cache
def _builtin_closure(name: str) -> frozenset[str]:
    """Every definition reachable from ``name`` (itself included)."""
    defs = upstream.definitions()
    seen: set[str] = set()
    todo = [name]
    while todo:
        n = todo.pop()
        if n in seen or n not in defs:
            continue
        seen.add(n)
        refs: set[str] = set()
        _refs_in(defs[n], refs)
        todo.extend(refs - seen)
    return frozenset(seen)


def _schemas_for(names: Iterable[str], v3: bool, custom: dict[str, dict]) -> dict[str, dict]:
    """Converted schemas for ``names`` plus everything they reference."""
    out: dict[str, dict] = {}
    todo = list(names)
    while todo:
        n = todo.pop()
        if n in out:
            continue
        if n in custom:
            out[n] = custom[n]
            refs: set[str] = set()
            _refs_in(custom[n], refs)
            todo.extend(refs)
        elif n in upstream.definitions():
            for m in _builtin_closure(n):
                if m not in out:
                    out[m] = _builtin_definition(m, v3)
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------- custom resources

def crd_definition_name(group: str, version: str, kind: str) -> str:
    """Upstream's REST-friendly name: group reversed, e.g. ``com.example.stable.v1.CronTab``."""
    return ".".join(list(reversed(group.split("."))) + [version, kind])


def _unfold(s: Any, v3: bool) -> Any:
    """A CRD schema as the CRD OpenAPI builder publishes it (structural ``Unfold``)."""
    if isinstance(s, list):
        return [_unfold(x, v3) for x in s]
    if not isinstance(s, dict):
        return s
    out = {}
    for k, v in s.items():
        if k in ("properties", "patternProperties", "definitions") and isinstance(v, dict):
            out[k] = {pk: _unfold(pv, v3) for pk, pv in v.items()}
        elif k in ("items", "additionalProperties", "not") and isinstance(v, dict):
            out[k] = _unfold(v, v3)
        elif k in ("allOf", "anyOf", "oneOf") and isinstance(v, list):
            out[k] = [_unfold(x, v3) for x in v]
        else:
            out[k] = v
    if out.get("x-kubernetes-int-or-string"):
        if v3:
            any_of = [{"type": "integer"}, {"type": "string"}]
            all_of = out.get("allOf") or []
            if out.get("anyOf") == any_of or (all_of and isinstance(all_of[0], dict)
                                              and all_of[0].get("anyOf") == any_of):
                pass
            elif "anyOf" not in out:
                out["anyOf"] = any_of
            else:
                out["allOf"] = [{"anyOf": any_of}] + list(all_of)
        else:
            out.pop("type", None)
            for k in ("anyOf", "allOf", "oneOf", "not"):
                out.pop(k, None)
    if out.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"description": "apiVersion defines the versioned schema of this "
                                        "representation of an object. More info: https://git.k8s.io/community/"
                                        "contributors/devel/sig-architecture/api-conventions.md#resources",
                                        "type": "string"})
        props.setdefault("kind", {"description": "kind is a string value representing the type of this object. "
                                  "In CamelCase. More info: https://git.k8s.io/community/contributors/devel/"
                                  "sig-architecture/api-conventions.md#types-kinds", "type": "string"})
        props["metadata"] = _meta_ref(OBJECT_META, _OBJECT_META_DESC, v3)
        req = list(out.get("required", ()))
        for f in ("kind", "apiVersion"):
            if f not in req:
                req.append(f)
        out["required"] = req
    return out


_VALUE_VALIDATIONS = ("format", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength",
                      "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "multipleOf", "enum",
                      "maxProperties", "minProperties", "allOf", "anyOf", "oneOf", "not")


def _to_v2(s: Any) -> Any:
    """CRD schema for swagger 2.0 as upstream publishes it: no value validations, no nullable."""
    if isinstance(s, list):
        return [_to_v2(x) for x in s]
    if not isinstance(s, dict):
        return s
    out = {}
    for k, v in s.items():
        if k in _VALUE_VALIDATIONS or k in ("nullable", "x-kubernetes-validations"):
            continue
        if k == "properties" and isinstance(v, dict):
            out[k] = {pk: _to_v2(pv) for pk, pv in v.items()}
        elif k in ("items", "additionalProperties") and isinstance(v, dict):
            out[k] = _to_v2(v)
        else:
            out[k] = v
    return out


def _meta_ref(name: str, desc: str, v3: bool) -> dict:
    if v3:
        return {"allOf": [{"$ref": V3_PREFIX + name}], "description": desc}
    return {"$ref": V2_PREFIX + name, "description": desc}


def _gvk(info: ResourceInfo, kind: str | None = None) -> dict:
    return {"group": info.group, "kind": kind or info.kind, "version": info.version}


def _custom_schemas(info: ResourceInfo, v3: bool) -> dict[str, dict]:
    """The kind's and its list's definitions for a custom resource."""
    name = crd_definition_name(info.group, info.version, info.kind)
    list_name = crd_definition_name(info.group, info.version, info.list_kind)
    raw = info.schema
    preserve_root = bool(raw and raw.get("x-kubernetes-preserve-unknown-fields"))
    if not raw or (not v3 and preserve_root):
        kind_schema: dict[str, Any] = {"type": "object"}
    else:
        kind_schema = _unfold(copy.deepcopy(raw), v3)
        if not v3:
            kind_schema = _to_v2(kind_schema)
        props = kind_schema.setdefault("properties", {})
        props["metadata"] = _meta_ref(OBJECT_META, _OBJECT_META_DESC, v3)
        props["apiVersion"] = {"description": _TYPEMETA_API_VERSION, "type": "string"}
        props["kind"] = {"description": _TYPEMETA_KIND, "type": "string"}
        kind_schema["properties"] = dict(sorted(props.items()))
        kind_schema.setdefault("type", "object")
    kind_schema["x-kubernetes-group-version-kind"] = [_gvk(info)]
    prefix = V3_PREFIX if v3 else V2_PREFIX
    list_schema = {
        "description": f"{info.list_kind} is a list of {info.kind}",
        "properties": {
            "apiVersion": {"description": _TYPEMETA_API_VERSION, "type": "string"},
            "items": {"description": f"List of {info.plural}. More info: "
                                     "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md",
                      "items": {"$ref": prefix + name}, "type": "array"},
            "kind": {"description": _TYPEMETA_KIND, "type": "string"},
            "metadata": _meta_ref(LIST_META, _LIST_META_DESC, v3),
        },
        "required": ["items"],
        "type": "object",
        "x-kubernetes-group-version-kind": [_gvk(info, info.list_kind)],
    }
    return {name: kind_schema, list_name: list_schema}


def _kind_def(info: ResourceInfo) -> str:
    if info.custom:
        return crd_definition_name(info.group, info.version, info.kind)
    return upstream.gvk_index().get((info.group, info.version, info.kind), "")


def _list_def(info: ResourceInfo) -> str:
    if info.custom:
        return crd_definition_name(info.group, info.version, info.list_kind)
    return upstream.gvk_index().get((info.group, info.version, info.list_kind), "")


# --------------------------------------------------------------------------- parameters

def _qp(name: str, typ: str, desc: str) -> tuple[str, str, str]:
    return (name, typ, desc)


P_PRETTY = _qp("pretty", "string", "If 'true', then the output is pretty printed. Defaults to 'false' unless the "
               "user-agent indicates a browser or command-line HTTP tool (curl and wget).")
P_DRY_RUN = _qp("dryRun", "string", "When present, indicates that modifications should not be persisted. An "
                "invalid or unrecognized dryRun directive will result in an error response and no further "
                "processing of the request. Valid values are: - All: all dry run stages will be processed")
_FM = ("fieldManager is a name associated with the actor or entity that is making these changes. The value must "
       "be less than or 128 characters long, and only contain printable characters, as defined by "
       "https://golang.org/pkg/unicode/#IsPrint.")
P_FIELD_MANAGER = _qp("fieldManager", "string", _FM)
P_FIELD_MANAGER_PATCH = _qp("fieldManager", "string", _FM + " This field is required for apply requests "
                            "(application/apply-patch) but optional for non-apply patch types (JsonPatch, "
                            "MergePatch, StrategicMergePatch).")
P_FIELD_VALIDATION = _qp(
    "fieldValidation", "string",
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing "
    "unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are "
    "silently dropped from the object, and will ignore all but the last duplicate field that the decoder "
    "encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard "
    "warning response header for each unknown field that is dropped from the object, and for each duplicate "
    "field that is encountered. The request will still succeed if there are no other errors, and will only "
    "persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the "
    "request with a BadRequest error if any unknown fields would be dropped from the object, or if any "
    "duplicate fields are present. The error returned from the server will contain all unknown and duplicate "
    "fields encountered.")
P_FORCE = _qp("force", "boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire "
              "conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.")
P_GRACE = _qp("gracePeriodSeconds", "integer", "The duration in seconds before the object should be deleted. "
              "Value must be non-negative integer. The value zero indicates delete immediately. If this value is "
              "nil, the default grace period for the specified type will be used. Defaults to a per object value "
              "if not specified. zero means delete immediately.")
P_IGNORE_STORE = _qp("ignoreStoreReadErrorWithClusterBreakingPotential", "boolean",
                     "if set to true, it will trigger an unsafe deletion of the resource in case the normal "
                     "deletion flow fails with a corrupt object error. A resource is considered corrupt if it can "
                     "not be retrieved from the underlying storage successfully because of a) its data can not be "
                     "transformed e.g. decryption failure, or b) it fails to decode into an object. NOTE: unsafe "
                     "deletion ignores finalizer constraints, skips precondition checks, and removes the object "
                     "from the storage. WARNING: This may potentially break the cluster if the workload "
                     "associated with the resource being unsafe-deleted relies on normal deletion flow. Use only "
                     "if you REALLY know what you are doing. The default value is false, and the user must opt in "
                     "to enable it")
P_ORPHAN = _qp("orphanDependents", "boolean", "Deprecated: please use the PropagationPolicy, this field will be "
               "deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the \"orphan\" "
               "finalizer will be added to/removed from the object's finalizers list. Either this field or "
               "PropagationPolicy may be set, but not both.")
P_PROPAGATION = _qp("propagationPolicy", "string", "Whether and how garbage collection will be performed. Either "
                    "this field or OrphanDependents may be set, but not both. The default policy is decided by the "
                    "existing finalizer set in the metadata.finalizers and the resource-specific default policy. "
                    "Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage "
                    "collector to delete the dependents in the background; 'Foreground' - a cascading policy that "
                    "deletes all dependents in the foreground.")
P_BOOKMARKS = _qp("allowWatchBookmarks", "boolean", "allowWatchBookmarks requests watch events with type "
                  "\"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are "
                  "sent at the server's discretion. Clients should not assume bookmarks are returned at any "
                  "specific interval, nor may they assume the server will send any BOOKMARK event during a "
                  "session. If this is not a watch, this field is ignored.")
P_CONTINUE = _qp("continue", "string", "The continue option should be set when retrieving more results from the "
                 "server. Since this value is server defined, clients may only use the continue value from a "
                 "previous query result with identical query parameters (except for the value of continue) and "
                 "the server may reject a continue value it does not recognize. If the specified continue value is "
                 "no longer valid whether due to expiration (generally five to fifteen minutes) or a "
                 "configuration change on the server, the server will respond with a 410 ResourceExpired error "
                 "together with a continue token. If the client needs a consistent list, it must restart their "
                 "list without the continue field. Otherwise, the client may send another list request with the "
                 "token received with the 410 error, the server will respond with a list starting from the next "
                 "key, but from the latest snapshot, which is inconsistent from the previous list results - "
                 "objects that are created, modified, or deleted after the first list request will be included "
                 "in the response, as long as their keys are after the \"next key\".\n\nThis field is not "
                 "supported when watch is true. Clients may start a watch from the last resourceVersion value "
                 "returned by the server and not miss any modifications.")
P_FIELD_SELECTOR = _qp("fieldSelector", "string", "A selector to restrict the list of returned objects by their "
                       "fields. Defaults to everything.")
P_LABEL_SELECTOR = _qp("labelSelector", "string", "A selector to restrict the list of returned objects by their "
                       "labels. Defaults to everything.")
P_LIMIT = _qp("limit", "integer", "limit is a maximum number of responses to return for a list call. If more "
              "items exist, the server will set the `continue` field on the list metadata to a value that can be "
              "used with the same initial query to retrieve the next set of results. Setting a limit may return "
              "fewer than the requested amount of items (up to zero items) in the event all requested objects "
              "are filtered out and clients should only use the presence of the continue field to determine "
              "whether more results are available. Servers may choose not to support the limit argument and "
              "will return all of the available results. If limit is specified and the continue field is empty, "
              "clients may assume that no more results are available. This field is not supported if watch is "
              "true.\n\nThe server guarantees that the objects returned when using continue will be identical to "
              "issuing a single list call without a limit - that is, no objects created, modified, or deleted "
              "after the first request is issued will be included in any subsequent continued requests. This is "
              "sometimes referred to as a consistent snapshot, and ensures that a client that is using limit to "
              "receive smaller chunks of a very large result can ensure they see all possible objects. If "
              "objects are updated during a chunked list the version of the object that was present at the time "
              "the first list result was calculated is returned.")
P_RV = _qp("resourceVersion", "string", "resourceVersion sets a constraint on what resource versions a request "
           "may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions "
           "for details.\n\nDefaults to unset")
P_RV_MATCH = _qp("resourceVersionMatch", "string", "resourceVersionMatch determines how resourceVersion is applied "
                 "to list calls. It is highly recommended that resourceVersionMatch be set for list calls where "
                 "resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/"
                 "#resource-versions for details.\n\nDefaults to unset")
P_SEND_INITIAL = _qp("sendInitialEvents", "boolean", "`sendInitialEvents=true` may be set together with "
                     "`watch=true`. In that case, the watch stream will begin with synthetic events to produce the "
                     "current state of objects in the collection. Once all such events have been sent, a synthetic "
                     "\"Bookmark\" event  will be sent. The bookmark will report the ResourceVersion (RV) "
                     "corresponding to the set of objects, and be marked with `\"k8s.io/initial-events-end\": "
                     "\"true\"` annotation. Afterwards, the watch stream will proceed as usual, sending watch events "
                     "corresponding to changes (subsequent to the RV) to objects watched.\n\nWhen "
                     "`sendInitialEvents` option is set, we require `resourceVersionMatch` option to also be set. "
                     "The semantic of the watch request is as following: - `resourceVersionMatch` = NotOlderThan\n"
                     "  is interpreted as \"data at least as new as the provided `resourceVersion`\"\n  and the "
                     "bookmark event is send when the state is synced\n  to a `resourceVersion` at least as fresh as "
                     "the one provided by the ListOptions.\n  If `resourceVersion` is unset, this is interpreted as "
                     "\"consistent read\" and the\n  bookmark event is send when the state is synced at least to the "
                     "moment\n  when request started being processed.\n- `resourceVersionMatch` set to any other "
                     "value or unset\n  Invalid error is returned.\n\nDefaults to true if `resourceVersion=\"\"` or "
                     "`resourceVersion=\"0\"` (for backward compatibility reasons) and to false otherwise.")
P_TIMEOUT = _qp("timeoutSeconds", "integer", "Timeout for the list/watch call. This limits the duration of the "
                "call, regardless of any activity or inactivity.")
P_WATCH = _qp("watch", "boolean", "Watch for changes to the described resources and return them as a stream of "
              "add, update, and remove notifications. Specify resourceVersion.")

LIST_PARAMS = (P_BOOKMARKS, P_CONTINUE, P_FIELD_SELECTOR, P_LABEL_SELECTOR, P_LIMIT, P_RV, P_RV_MATCH,
               P_SEND_INITIAL, P_TIMEOUT, P_WATCH)
DELETECOLLECTION_PARAMS = (P_CONTINUE, P_DRY_RUN, P_FIELD_SELECTOR, P_GRACE, P_IGNORE_STORE, P_LABEL_SELECTOR,
                           P_LIMIT, P_ORPHAN, P_PROPAGATION, P_RV, P_RV_MATCH, P_SEND_INITIAL, P_TIMEOUT)
DELETE_PARAMS = (P_DRY_RUN, P_GRACE, P_IGNORE_STORE, P_ORPHAN, P_PROPAGATION)
CREATE_PARAMS = (P_DRY_RUN, P_FIELD_MANAGER, P_FIELD_VALIDATION)
UPDATE_PARAMS = CREATE_PARAMS
PATCH_PARAMS = (P_DRY_RUN, P_FIELD_MANAGER_PATCH, P_FIELD_VALIDATION, P_FORCE)
LOG_PARAMS = (
    _qp("container", "string", "The container for which to stream logs. Defaults to only container if there is "
        "one container in the pod."),
    _qp("follow", "boolean", "Follow the log stream of the pod. Defaults to false."),
    _qp("insecureSkipTLSVerifyBackend", "boolean", "insecureSkipTLSVerifyBackend indicates that the apiserver "
        "should not confirm the validity of the serving certificate of the backend it is connecting to.  This "
        "will make the HTTPS connection between the apiserver and the backend insecure. This means the apiserver "
        "cannot verify the log data it is receiving came from the real kubelet.  If the kubelet is configured to "
        "verify the apiserver's TLS credentials, it does not mean the connection to the real kubelet is "
        "vulnerable to a man in the middle attack (e.g. an attacker could not intercept the actual log data "
        "coming from the real kubelet)."),
    _qp("limitBytes", "integer", "If set, the number of bytes to read from the server before terminating the log "
        "output. This may not display a complete final line of logging, and may return slightly more or slightly "
        "less than the specified limit."),
    _qp("previous", "boolean", "Return previous terminated container logs. Defaults to false."),
    _qp("sinceSeconds", "integer", "A relative time in seconds before the current time from which to show logs. "
        "If this value precedes the time a pod was started, only logs since the pod start will be returned. If "
        "this value is in the future, no logs will be returned. Only one of sinceSeconds or sinceTime may be "
        "specified."),
    _qp("stream", "string", "Specify which container log stream to return to the client. Acceptable values are "
        "\"All\", \"Stdout\" and \"Stderr\". If not specified, \"All\" is used, and both stdout and stderr are "
        "returned interleaved. Note that when \"TailLines\" is specified, \"Stream\" can only be set to nil or "
        "\"All\"."),
    _qp("tailLines", "integer", "If set, the number of lines from the end of the logs to show. If not specified, "
        "logs are shown from the creation of the container or sinceSeconds or sinceTime. Note that when "
        "\"TailLines\" is specified, \"Stream\" can only be set to nil or \"All\"."),
    _qp("timestamps", "boolean", "If true, add an RFC3339 or RFC3339Nano timestamp at the beginning of every line "
        "of log output. Defaults to false."),
)
_EXEC_PARAMS = (
    _qp("command", "string", "Command is the remote command to execute. argv array. Not executed within a shell."),
    _qp("container", "string", "Container in which to execute the command. Defaults to only container if there "
        "is only one container in the pod."),
    _qp("stderr", "boolean", "Redirect the standard error stream of the pod for this call."),
    _qp("stdin", "boolean", "Redirect the standard input stream of the pod for this call. Defaults to false."),
    _qp("stdout", "boolean", "Redirect the standard output stream of the pod for this call."),
    _qp("tty", "boolean", "TTY if true indicates that a tty will be allocated for the exec call. Defaults to "
        "false."),
)
_ATTACH_PARAMS = (
    _qp("container", "string", "The container in which to execute the command. Defaults to only container if "
        "there is only one container in the pod."),
    _qp("stderr", "boolean", "Stderr if true indicates that stderr is to be redirected for the attach call. "
        "Defaults to true."),
    _qp("stdin", "boolean", "Stdin if true, redirects the standard input stream of the pod for this call. "
        "Defaults to false."),
    _qp("stdout", "boolean", "Stdout if true indicates that stdout is to be redirected for the attach call. "
        "Defaults to true."),
    _qp("tty", "boolean", "TTY if true indicates that a tty will be allocated for the attach call. This is "
        "passed through the container runtime so the tty is allocated on the worker node by the container "
        "runtime. Defaults to false."),
)
_PORTFORWARD_PARAMS = (_qp("ports", "integer", "List of ports to forward Required when using WebSockets"),)


def _param(p: tuple[str, str, str], v3: bool, where: str = "query", required: bool = False) -> dict:
    name, typ, desc = p
    out: dict[str, Any] = {"description": desc, "in": where, "name": name}
    if required:
        out["required"] = True
    if v3:
        out["schema"] = {"type": typ, "uniqueItems": True}
    else:
        out["type"] = typ
        out["uniqueItems"] = True
    return out


# --------------------------------------------------------------------------- paths

_JSON_TYPES = ("application/json", "application/vnd.kubernetes.protobuf", "application/yaml")
_CRD_TYPES = ("application/json", "application/yaml")
_WATCH_TYPES = ("application/json", "application/json;stream=watch", "application/vnd.kubernetes.protobuf",
                "application/vnd.kubernetes.protobuf;stream=watch", "application/yaml")
_BUILTIN_PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json",
                        "application/merge-patch+json", "application/strategic-merge-patch+json")
_CRD_PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json")


def _op_prefix(group: str) -> str:
    if not group:
        return "Core"
    g = group[:-len(".k8s.io")] if group.endswith(".k8s.io") else group
    return "".join(p[:1].upper() + p[1:] for p in g.replace("-", ".").split(".") if p)


def _tag(group: str, version: str) -> str:
    p = _op_prefix(group)
    return f"{p[:1].lower()}{p[1:]}_{version}"


def _article(kind: str) -> str:
    return " an " if kind[:1].lower() in "aeiou" else " a "


class _PathBuilder:
    """Builds the ``paths`` of one group-version for v3 or v2."""

    def __init__(self, group: str, version: str, v3: bool):
        self.group, self.version, self.v3 = group, version, v3
        self.prefix = V3_PREFIX if v3 else V2_PREFIX
        self.paths: dict[str, dict] = {}
        self.refs: set[str] = set()
        self.root = f"/apis/{group}/{version}" if group else f"/api/{version}"
        self.op_base = _op_prefix(group) + version[:1].upper() + version[1:]
        self.tag = _tag(group, version)

    # -- pieces
    def _schema(self, name: str) -> dict:
        self.refs.add(name)
        return {"$ref": self.prefix + name}

    def _content(self, schema: dict, types: Iterable[str]) -> dict:
        return {t: {"schema": schema} for t in types}

    def _responses(self, codes: dict[str, str], schema: dict | None, types: Iterable[str]) -> dict:
        out: dict[str, Any] = {}
        for code, desc in codes.items():
            r: dict[str, Any] = {"description": desc}
            if schema is not None:
                if self.v3:
                    r["content"] = self._content(schema, types)
                else:
                    r["schema"] = schema
            out[code] = r
        out["401"] = {"description": "Unauthorized"}
        return out

    def _op(self, op_id: str, desc: str, action: str | None, gvk: dict | None, params=(), body: dict | None = None,
            body_types: Iterable[str] = ("*/*",), body_required: bool = True, responses: dict | None = None,
            produces: Iterable[str] = _JSON_TYPES) -> dict:
        op: dict[str, Any] = {"description": desc, "operationId": op_id}
        if params:
            op["parameters"] = [_param(p, self.v3) for p in params]
        if body is not None:
            if self.v3:
                rb: dict[str, Any] = {"content": self._content(body, body_types)}
                if body_required:
                    rb["required"] = True
                op["requestBody"] = rb
            else:
                bp: dict[str, Any] = {"in": "body", "name": "body", "schema": body}
                if body_required:
                    bp["required"] = True
                op.setdefault("parameters", []).insert(0, bp)
                op["consumes"] = list(body_types)
        if not self.v3:
            op["produces"] = list(produces)
            op["schemes"] = ["https"]
        op["responses"] = responses or {}
        op["tags"] = [self.tag]
        if action:
            op["x-kubernetes-action"] = action
        if gvk:
            op["x-kubernetes-group-version-kind"] = gvk
        return op

    def _path_params(self, namespaced: bool, name_of: str | None, extra=()) -> list[dict]:
        ps = []
        if name_of:
            ps.append(_param(("name", "string", f"name of the {name_of}"), self.v3, "path", True))
        if namespaced:
            ps.append(_param(("namespace", "string", "object name and auth scope, such as for teams and projects"),
                             self.v3, "path", True))
        ps.extend(_param(p, self.v3) for p in extra)
        return ps

    # -- whole resource
    def discovery(self) -> None:
        resp = self._responses({"200": "OK"}, self._schema(META + "APIResourceList"), _JSON_TYPES)
        op = self._op(f"get{self.op_base}APIResources", "get available resources", None, None, responses=resp)
        self.paths[self.root + "/"] = {"get": op}

    def resource(self, info: ResourceInfo) -> None:
        kind_def, list_def = _kind_def(info), _list_def(info)
        if not kind_def:
            return
        custom = info.custom
        types = _CRD_TYPES if custom else _JSON_TYPES
        kind, ns = info.kind, info.namespaced
        nsw = "Namespaced" if ns else ""
        gvk = _gvk(info)
        obj = self._schema(kind_def)
        coll = f"{self.root}/namespaces/{{namespace}}/{info.plural}" if ns else f"{self.root}/{info.plural}"
        item = coll + "/{name}"
        verbs = set(info.verbs)
        base = self.op_base

        # collection
        entry: dict[str, Any] = {}
        if "list" in verbs and list_def:
            entry["get"] = self._op(
                f"list{base}{nsw}{kind}", f"list or watch objects of kind {kind}" if not custom
                else f"list objects of kind {kind}", "list", gvk,
                LIST_PARAMS, responses=self._responses({"200": "OK"}, self._schema(list_def),
                                                       _CRD_TYPES if custom else _WATCH_TYPES))
        if "create" in verbs:
            entry["post"] = self._op(
                f"create{base}{nsw}{kind}", f"create{_article(kind)}{kind}", "post", gvk, CREATE_PARAMS,
                body=obj, body_types=("*/*",),
                responses=self._responses({"200": "OK", "201": "Created", "202": "Accepted"}, obj, types))
        if "deletecollection" in verbs:
            entry["delete"] = self._op(
                f"delete{base}Collection{nsw}{kind}", f"delete collection of {kind}", "deletecollection", gvk,
                DELETECOLLECTION_PARAMS, body=self._schema(DELETE_OPTIONS), body_required=False,
                responses=self._responses({"200": "OK"}, self._schema(STATUS), types))
        if entry:
            entry["parameters"] = self._path_params(ns, None, (P_PRETTY,))
            self.paths[coll] = entry

        # item
        entry = {}
        if "get" in verbs:
            entry["get"] = self._op(f"read{base}{nsw}{kind}", f"read the specified {kind}", "get", gvk,
                                    responses=self._responses({"200": "OK"}, obj, types))
        if "update" in verbs:
            entry["put"] = self._op(f"replace{base}{nsw}{kind}", f"replace the specified {kind}", "put", gvk,
                                    UPDATE_PARAMS, body=obj,
                                    responses=self._responses({"200": "OK", "201": "Created"}, obj, types))
        if "patch" in verbs:
            entry["patch"] = self._op(f"patch{base}{nsw}{kind}", f"partially update the specified {kind}", "patch",
                                      gvk, PATCH_PARAMS, body=self._schema(PATCH),
                                      body_types=_CRD_PATCH_TYPES if custom else _BUILTIN_PATCH_TYPES,
                                      responses=self._responses({"200": "OK", "201": "Created"}, obj, types))
        if "delete" in verbs:
            entry["delete"] = self._op(f"delete{base}{nsw}{kind}", f"delete{_article(kind)}{kind}", "delete", gvk,
                                       DELETE_PARAMS, body=self._schema(DELETE_OPTIONS), body_required=False,
                                       responses=self._responses({"200": "OK", "202": "Accepted"},
                                                                 self._schema(STATUS) if custom else obj, types))
        if entry:
            entry["parameters"] = self._path_params(ns, kind, (P_PRETTY,))
            self.paths[item] = entry

        # list across namespaces and watch paths (built-in only, as upstream)
        if ns and "list" in verbs and list_def:
            self.paths[f"{self.root}/{info.plural}"] = {
                "get": self._op(f"list{base}{kind}ForAllNamespaces", f"list or watch objects of kind {kind}"
                                if not custom else f"list objects of kind {kind}", "list", gvk,
                                responses=self._responses({"200": "OK"}, self._schema(list_def),
                                                          _CRD_TYPES if custom else _WATCH_TYPES)),
                "parameters": [_param(p, self.v3) for p in (LIST_PARAMS[:5] + (P_PRETTY,) + LIST_PARAMS[5:])],
            }
        if not custom and "watch" in verbs:
            self._watch_paths(info, kind_def)

        for sub in info.subresources:
            self._subresource(info, sub, kind_def, coll, item)

    def _watch_paths(self, info: ResourceInfo, kind_def: str) -> None:
        kind, ns, base = info.kind, info.namespaced, self.op_base
        gvk = _gvk(info)
        ev = self._schema(WATCH_EVENT)
        params = LIST_PARAMS[:5] + (P_PRETTY,) + LIST_PARAMS[5:]
        w = f"{self.root}/watch"
        nsw = "Namespaced" if ns else ""
        coll = f"{w}/namespaces/{{namespace}}/{info.plural}" if ns else f"{w}/{info.plural}"
        self.paths[coll] = {
            "get": self._op(f"watch{base}{nsw}{kind}List", f"watch individual changes to a list of {kind}. "
                            "deprecated: use the 'watch' parameter with a list operation instead.", "watchlist",
                            gvk, responses=self._responses({"200": "OK"}, ev, _WATCH_TYPES)),
            "parameters": self._path_params(ns, None, params),
        }
        self.paths[coll + "/{name}"] = {
            "get": self._op(f"watch{base}{nsw}{kind}", f"watch changes to an object of kind {kind}. deprecated: "
                            "use the 'watch' parameter with a list operation instead, filtered to a single item "
                            "with the 'fieldSelector' parameter.", "watch", gvk,
                            responses=self._responses({"200": "OK"}, ev, _WATCH_TYPES)),
            "parameters": self._path_params(ns, kind, params),
        }
        if ns:
            self.paths[f"{w}/{info.plural}"] = {
                "get": self._op(f"watch{base}{kind}ListForAllNamespaces", f"watch individual changes to a list of "
                                f"{kind}. deprecated: use the 'watch' parameter with a list operation instead.",
                                "watchlist", gvk, responses=self._responses({"200": "OK"}, ev, _WATCH_TYPES)),
                "parameters": [_param(p, self.v3) for p in params],
            }

    def _subresource(self, info: ResourceInfo, sub: str, kind_def: str, coll: str, item: str) -> None:
        kind, ns, base, custom = info.kind, info.namespaced, self.op_base, info.custom
        nsw = "Namespaced" if ns else ""
        types = _CRD_TYPES if custom else _JSON_TYPES
        path = f"{item}/{sub}"
        Sub = sub[:1].upper() + sub[1:]
        patch_types = _CRD_PATCH_TYPES if custom else _BUILTIN_PATCH_TYPES

        def get_put_patch(schema_name: str, gvk: dict, what: str, patch_gvk_only: bool = False) -> dict:
            s = self._schema(schema_name)
            return {
                "get": self._op(f"read{base}{nsw}{kind}{Sub}", f"read {what} of the specified {kind}", "get", gvk,
                                responses=self._responses({"200": "OK"}, s, types)),
                "put": self._op(f"replace{base}{nsw}{kind}{Sub}", f"replace {what} of the specified {kind}", "put",
                                gvk, UPDATE_PARAMS, body=s,
                                responses=self._responses({"200": "OK", "201": "Created"}, s, types)),
                "patch": self._op(f"patch{base}{nsw}{kind}{Sub}", f"partially update {what} of the specified {kind}",
                                  "patch", gvk, PATCH_PARAMS, body=self._schema(PATCH), body_types=patch_types,
                                  responses=self._responses({"200": "OK", "201": "Created"}, s, types)),
            }

        def connect(options_kind: str, methods: Iterable[str], params, with_path: bool = False) -> None:
            gvk = {"group": "", "kind": options_kind, "version": "v1"}
            entry: dict[str, Any] = {}
            for m in methods:
                M = m[:1].upper() + m[1:]
                entry[m] = self._op(f"connect{base}{M}{nsw}{kind}{Sub}" + ("WithPath" if with_path else ""),
                                    f"connect {m.upper()} requests to {sub} of {kind}", "connect", gvk,
                                    responses=self._responses({"200": "OK"}, {"type": "string"}, ("*/*",)))
            extra = list(params)
            p = path + ("/{path}" if with_path else "")
            ps = self._path_params(ns, options_kind, ())
            if with_path:
                ps.append(_param(("path", "string", "path to the resource"), self.v3, "path", True))
            ps.extend(_param(x, self.v3) for x in extra)
            entry["parameters"] = ps
            self.paths[p] = entry

        if sub == "status":
            entry = get_put_patch(kind_def, _gvk(info), "status")
        elif sub in ("ephemeralcontainers", "resize"):
            entry = get_put_patch(kind_def, _gvk(info), sub)
        elif sub == "scale":
            entry = get_put_patch(SCALE, {"group": "autoscaling", "kind": "Scale", "version": "v1"}, "scale")
        elif sub == "binding":
            s = self._schema("io.k8s.api.core.v1.Binding")
            entry = {"post": self._op(f"create{base}{nsw}{kind}Binding", f"create binding of{_article(kind)}{kind}",
                                      "post", {"group": "", "kind": "Binding", "version": "v1"}, CREATE_PARAMS,
                                      body=s, responses=self._responses(
                                          {"200": "OK", "201": "Created", "202": "Accepted"}, s, types))}
        elif sub == "eviction":
            s = self._schema("io.k8s.api.policy.v1.Eviction")
            entry = {"post": self._op(f"create{base}{nsw}{kind}Eviction",
                                      f"create eviction of{_article(kind)}{kind}", "post",
                                      {"group": "policy", "kind": "Eviction", "version": "v1"}, CREATE_PARAMS,
                                      body=s, responses=self._responses(
                                          {"200": "OK", "201": "Created", "202": "Accepted"}, s, types))}
        elif sub == "token":
            s = self._schema("io.k8s.api.authentication.v1.TokenRequest")
            entry = {"post": self._op(f"create{base}{nsw}{kind}Token", f"create token of{_article(kind)}{kind}",
                                      "post", {"group": "authentication.k8s.io", "kind": "TokenRequest",
                                               "version": "v1"}, CREATE_PARAMS, body=s,
                                      responses=self._responses({"200": "OK", "201": "Created",
                                                                 "202": "Accepted"}, s, types))}
        elif sub == "finalize":
            s = self._schema(kind_def)
            entry = {"put": self._op(f"replace{base}{nsw}{kind}Finalize", f"replace finalize of the specified {kind}",
                                     "put", _gvk(info), UPDATE_PARAMS, body=s,
                                     responses=self._responses({"200": "OK", "201": "Created"}, s, types))}
        elif sub == "log":
            entry = {"get": self._op(f"read{base}{nsw}{kind}Log", f"read log of the specified {kind}", "get",
                                     _gvk(info), responses=self._responses(
                                         {"200": "OK"}, {"type": "string"},
                                         ("application/json", "application/vnd.kubernetes.protobuf",
                                          "application/yaml", "text/plain")))}
            entry["parameters"] = self._path_params(ns, kind, LOG_PARAMS + (P_PRETTY,))
            self.paths[path] = entry
            return
        elif sub == "exec":
            return connect("PodExecOptions", ("get", "post"), _EXEC_PARAMS)
        elif sub == "attach":
            return connect("PodAttachOptions", ("get", "post"), _ATTACH_PARAMS)
        elif sub == "portforward":
            return connect("PodPortForwardOptions", ("get", "post"), _PORTFORWARD_PARAMS)
        elif sub == "proxy":
            opts = {"Pod": "PodProxyOptions", "Node": "NodeProxyOptions", "Service": "ServiceProxyOptions"}
            if kind not in opts:
                return
            methods = ("delete", "get", "head", "options", "patch", "post", "put")
            pp = (_qp("path", "string", f"Path is the URL path to use for the current proxy request to "
                      f"{kind.lower()}."),)
            connect(opts[kind], methods, pp)
            connect(opts[kind], methods, pp, with_path=True)
            return
        else:
            return
        entry["parameters"] = self._path_params(ns, kind, (P_PRETTY,))
        self.paths[path] = entry


# --------------------------------------------------------------------------- documents

def _dumps(doc: dict) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def content_hash(body: bytes) -> str:
    """kube-openapi handler3's hash: upper-case hex SHA-512 of the JSON document."""
    return hashlib.sha512(body).hexdigest().upper()


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _build_v3_gv(resources: list[ResourceInfo], group: str, version: str) -> dict:
    pb = _PathBuilder(group, version, True)
    custom: dict[str, dict] = {}
    has_builtin = any(not r.custom for r in resources)
    if has_builtin:
        pb.discovery()
    for r in sorted(resources, key=lambda r: r.plural):
        if r.custom:
            custom.update(_custom_schemas(r, True))
        pb.resource(r)
    doc: dict[str, Any] = {
        "components": {"schemas": _schemas_for(pb.refs, True, custom)},
        "info": {"title": "Kubernetes", "version": "unversioned"} if has_builtin
        else {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
        "openapi": "3.0.0",
        "paths": dict(sorted(pb.paths.items())),
    }
    if has_builtin:
        doc["components"]["securitySchemes"] = {"BearerToken": {
            "description": "Bearer Token authentication", "in": "header", "name": "authorization", "type": "apiKey"}}
    return doc


def _simple_doc(path: str, op_id: str, desc: str, schema_name: str, tag: str) -> dict:
    pb = _PathBuilder("", "v1", True)
    resp = pb._responses({"200": "OK"}, pb._schema(schema_name), _JSON_TYPES)
    op = {"description": desc, "operationId": op_id, "responses": resp, "tags": [tag]}
    return {
        "components": {"schemas": _schemas_for([schema_name], True, {}),
                       "securitySchemes": {"BearerToken": {"description": "Bearer Token authentication",
                                                           "in": "header", "name": "authorization",
                                                           "type": "apiKey"}}},
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "openapi": "3.0.0",
        "paths": {path: {"get": op}},
    }


def _build_v3_path(registry: Registry, path: str) -> dict | None:
    parts = path.strip("/").split("/")
    if parts == ["api"]:
        return _simple_doc("/api/", "getCoreAPIVersions", "get available API versions",
                           META + "APIVersions", "core")
    if parts == ["apis"]:
        return _simple_doc("/apis/", "getAPIVersions", "get available API versions",
                           META + "APIGroupList", "apis")
    if parts == ["version"]:
        return _simple_doc("/version/", "getCodeVersion", "get the version information for this server",
                           "io.k8s.apimachinery.pkg.version.Info", "version")
    if len(parts) == 2 and parts[0] == "api":
        rs = registry.in_group_version("", parts[1])
        return _build_v3_gv(rs, "", parts[1]) if rs else None
    if len(parts) == 2 and parts[0] == "apis":
        if parts[1] not in registry.groups():
            return None
        p = _op_prefix(parts[1])
        return _simple_doc(f"/apis/{parts[1]}/", f"get{p}APIGroup", "get information of a group",
                           META + "APIGroup", p[:1].lower() + p[1:])
    if len(parts) == 3 and parts[0] == "apis":
        rs = registry.in_group_version(parts[1], parts[2])
        return _build_v3_gv(rs, parts[1], parts[2]) if rs else None
    return None


def _fingerprint(resources: Iterable[ResourceInfo]) -> tuple:
    out = []
    for r in sorted(resources, key=lambda r: (r.group, r.version, r.plural)):
        extra = orjson.dumps([r.schema, r.scale], option=orjson.OPT_SORT_KEYS) if r.custom else b""
        out.append((r, extra))
    return tuple(out)


class _Cache:
    """Per-registry document cache keyed by the content that shapes each document."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[Any, bytes, str]] = {}
        self.index: tuple[Any, dict] | None = None
        self.v2: tuple[Any, bytes] | None = None


_caches: "weakref.WeakKeyDictionary[Registry, _Cache]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _cache(registry: Registry) -> _Cache:
    with _lock:
        c = _caches.get(registry)
        if c is None:
            c = _caches[registry] = _Cache()
        return c


def _doc_key(registry: Registry, path: str) -> Any:
    gen = getattr(registry, "generation", None)
    parts = path.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "api":
        rs = registry.in_group_version("", parts[1])
    elif len(parts) == 3 and parts[0] == "apis":
        rs = registry.in_group_version(parts[1], parts[2])
    elif len(parts) == 2 and parts[0] == "apis":
        return ("group", parts[1] in registry.groups())
    else:
        return ("static",)
    return ("gen", gen) if gen is not None else _fingerprint(rs)


def _entry(registry: Registry, path: str) -> tuple[bytes, str] | None:
    path = path.strip("/")
    c = _cache(registry)
    key = _doc_key(registry, path)
    hit = c.docs.get(path)
    if hit is not None and hit[0] == key:
        return hit[1], hit[2]
    doc = _build_v3_path(registry, path)
    if doc is None:
        c.docs.pop(path, None)
        return None
    body = _dumps(doc)
    h = content_hash(body)
    c.docs[path] = (key, body, h)
    return body, h


def v3_paths(registry: Registry) -> list[str]:
    """The keys a real kube-apiserver lists under /openapi/v3 (sorted)."""
    out = {"api", "apis", "version"}
    gvs = {(r.group, r.version) for r in registry.resources()}
    for g, v in gvs:
        out.add(_gv_path(g, v))
        if g:
            out.add(f"apis/{g}")
    return sorted(out)


def v3_document_for_path(registry: Registry, path: str) -> bytes | None:
    """The document for an /openapi/v3 key (``api/v1``, ``apis/apps/v1``, ``apis/apps``,
    ``api``, ``apis``, ``version``), or None for an unknown key."""
    e = _entry(registry, path)
    return e[0] if e else None


def v3_hash(registry: Registry, path: str) -> str | None:
    """The content hash served as ``?hash=`` and (quoted) as the ETag for that key."""
    e = _entry(registry, path)
    return e[1] if e else None


def v3_document(registry: Registry, group: str, version: str) -> bytes:
    """The OpenAPI 3.0 document (JSON) of one group-version; empty paths if unknown."""
    body = v3_document_for_path(registry, _gv_path(group, version))
    if body is None:
        return _dumps({"components": {"schemas": {}}, "info": {"title": "Kubernetes", "version": "unversioned"},
                       "openapi": "3.0.0", "paths": {}})
    return body


def v3_index(registry: Registry) -> dict:
    """``/openapi/v3``: ``{"paths": {key: {"serverRelativeURL": "/openapi/v3/<key>?hash=<HASH>"}}}``."""
    out = {}
    for p in v3_paths(registry):
        h = v3_hash(registry, p)
        if h is not None:
            out[p] = {"serverRelativeURL": f"/openapi/v3/{p}?hash={h}"}
    return {"paths": out}


# --------------------------------------------------------------------------- v2

def _build_v2(registry: Registry) -> dict:
    paths: dict[str, dict] = {}
    refs: set[str] = set()
    custom: dict[str, dict] = {}
    by_gv: dict[tuple[str, str], list[ResourceInfo]] = {}
    for r in registry.resources():
        by_gv.setdefault((r.group, r.version), []).append(r)
    for (g, v), rs in sorted(by_gv.items()):
        pb = _PathBuilder(g, v, False)
        if any(not r.custom for r in rs):
            pb.discovery()
        for r in sorted(rs, key=lambda r: r.plural):
            if r.custom:
                custom.update(_custom_schemas(r, False))
            pb.resource(r)
        paths.update(pb.paths)
        refs |= pb.refs
    return {
        "definitions": _schemas_for(refs, False, custom),
        "info": {"title": "Kubernetes", "version": f"v{upstream.KUBERNETES_VERSION}"},
        "paths": dict(sorted(paths.items())),
        "security": [{"BearerToken": []}],
        "securityDefinitions": {"BearerToken": {"description": "Bearer Token authentication", "in": "header",
                                                "name": "authorization", "type": "apiKey"}},
        "swagger": "2.0",
    }


def v2_document(registry: Registry) -> bytes:
    """``/openapi/v2`` as swagger 2.0 JSON (for clients that accept application/json)."""
    c = _cache(registry)
    gen = getattr(registry, "generation", None)
    key = ("gen", gen) if gen is not None else _fingerprint(registry.resources())
    if c.v2 is not None and c.v2[0] == key:
        return c.v2[1]
    body = _dumps(_build_v2(registry))
    c.v2 = (key, body)
    return body
