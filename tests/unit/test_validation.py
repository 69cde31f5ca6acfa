"""Validation: upstream's rules, field paths and messages (as kubectl prints them)."""
import copy

import pytest

from skube.api import errors
from skube.api.defaults import apply_defaults, job_prepare_for_create
from skube.api.registry import Registry, ResourceInfo
from skube.api.validation import (causes_for_create, causes_for_update, validate_create, validate_object_meta,
                                  validate_update)
from skube.api.validation import names
from skube.api.validation.cron import parse_schedule

REG = Registry()

LABEL_ERR = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
             "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
             "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
SUBDOMAIN_ERR = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
DNS1035_ERR = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
               "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
               "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
NAME_PART_ERR = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
                 "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                 "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
LABEL_VALUE_ERR = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                   "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
                   "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
CM_KEY_ERR = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
              "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
QTY_ERR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
PORT_RANGE = "must be between 1 and 65535, inclusive"


def info(group, kind):
    return next(r for r in REG.resources() if r.group == group and r.kind == kind)


def found(group, kind, obj, *, default=True):
    """(field, message) of every cause for creating ``obj`` (defaulted first, as the server does)."""
    obj = copy.deepcopy(obj)
    if default:
        apply_defaults(info(group, kind), obj)
    return [(c["field"], c["message"]) for c in causes_for_create(info(group, kind), obj)]


def found_update(group, kind, new, old):
    new, old = copy.deepcopy(new), copy.deepcopy(old)
    apply_defaults(info(group, kind), old)
    apply_defaults(info(group, kind), new)
    return [(c["field"], c["message"]) for c in causes_for_update(info(group, kind), new, old)]


def meta(name="x", ns="default", **kw):
    m = {"name": name}
    if ns:
        m["namespace"] = ns
    m.update(kw)
    return m


def pod(spec=None, **md):
    s = {"containers": [{"name": "app", "image": "nginx:1.25"}]}
    s.update(spec or {})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta(**md), "spec": s}


def container(**kw):
    c = {"name": "app", "image": "nginx:1.25"}
    c.update(kw)
    return c


def tmpl(labels=None, **spec):
    s = {"containers": [{"name": "app", "image": "nginx"}]}
    s.update(spec)
    return {"metadata": {"labels": {"app": "web"} if labels is None else labels}, "spec": s}


# ---- string formats ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fn,value,problems", [
    (names.is_dns1123_label, "my-name", []),
    (names.is_dns1123_label, "My-Name", [LABEL_ERR]),
    (names.is_dns1123_label, "a.b", ["must not contain dots"]),
    (names.is_dns1123_label, "a" * 64, ["must be no more than 63 characters"]),
    (names.is_dns1123_label, "-a", [LABEL_ERR]),
    (names.is_dns1123_subdomain, "example.com", []),
    (names.is_dns1123_subdomain, "Bad_Name", [SUBDOMAIN_ERR]),
    (names.is_dns1123_subdomain, "a" * 254, ["must be no more than 253 characters"]),
    (names.is_dns1123_subdomain, "a..b", [SUBDOMAIN_ERR]),
    (names.is_dns1035_label, "web", []),
    (names.is_dns1035_label, "1web", [DNS1035_ERR]),
    (names.is_qualified_name, "app", []),
    (names.is_qualified_name, "app.kubernetes.io/name", []),
    (names.is_qualified_name, "My_Key.1", []),
    (names.is_qualified_name, "-app", [NAME_PART_ERR]),
    (names.is_qualified_name, "a" * 64, ["name part must be no more than 63 characters"]),
    (names.is_qualified_name, "/app", ["prefix part must be non-empty"]),
    (names.is_qualified_name, "example.com/", ["name part must be non-empty", NAME_PART_ERR]),
    (names.is_qualified_name, "Example.com/app", ["prefix part " + SUBDOMAIN_ERR]),
    (names.is_qualified_name, "a/b/c", [
        "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
        "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
        "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' "
        "(e.g. 'example.com/MyName')"]),
    (names.is_label_value, "", []),
    (names.is_label_value, "v1.2_b-3", []),
    (names.is_label_value, "my value", [LABEL_VALUE_ERR]),
    (names.is_label_value, "a" * 64, ["must be no more than 63 characters"]),
    (names.is_config_map_key, "app.properties", []),
    (names.is_config_map_key, "a b", [CM_KEY_ERR]),
    (names.is_config_map_key, "..", ["must not be '..'"]),
    (names.is_config_map_key, "..data", ["must not start with '..'"]),
    (names.is_valid_port_name, "http", []),
    (names.is_valid_port_name, "HTTP", ["must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                                        "must contain at least one letter (a-z)"]),
    (names.is_valid_port_name, "1234", ["must contain at least one letter (a-z)"]),
    (names.is_valid_port_name, "a--b", ["must not contain consecutive hyphens"]),
    (names.is_valid_port_name, "-ab", ["must not begin or end with a hyphen"]),
    (names.is_valid_port_name, "abcdefghijklmnop", ["must be no more than 15 characters"]),
    (names.is_valid_port_num, 0, [PORT_RANGE]),
    (names.is_valid_port_num, 65536, [PORT_RANGE]),
    (names.is_relaxed_env_var_name, "MY VAR:1", []),
    (names.is_relaxed_env_var_name, "A=B", [
        "a valid environment variable name must consist only of printable ASCII characters other than '='"]),
    (names.is_relaxed_env_var_name, "é", [
        "a valid environment variable name must consist only of printable ASCII characters other than '='"]),
    (names.is_env_var_name, "1A", [
        "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and "
        "must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for "
        "validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"]),
    (names.is_valid_percent, "25%", []),
    (names.is_valid_percent, "25", ["a valid percent string must be a numeric string followed by an ending '%' "
                                    "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"]),
    (names.is_path_segment_name, "..", ["may not be '..'"]),
    (names.is_path_segment_name, "a/b%c", ["may not contain '/'", "may not contain '%'"]),
    (names.is_valid_ip, "010.1.1.1", []),
    (names.is_valid_ip, "10.0.0.300", ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]),
    (names.is_valid_cidr, "10.0.0.0/8", []),
    (names.is_valid_cidr, "10.0.0.0/33", ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]),
])
def test_string_formats(fn, value, problems):
    assert fn(value) == problems


# ---- metadata ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("group,kind,md,expected", [
    ("", "ConfigMap", {"namespace": "default"},
     [("metadata.name", "Required value: name or generateName is required")]),
    ("", "ConfigMap", {"generateName": "cfg-", "namespace": "default"}, []),
    ("", "ConfigMap", {"generateName": "Cfg-", "namespace": "default"},
     [("metadata.generateName", 'Invalid value: "Cfg-": ' + SUBDOMAIN_ERR)]),
    ("", "ConfigMap", {"name": "Bad_Name", "namespace": "default"},
     [("metadata.name", 'Invalid value: "Bad_Name": ' + SUBDOMAIN_ERR)]),
    ("", "ConfigMap", {"name": "c"}, [("metadata.namespace", "Required value")]),
    ("", "ConfigMap", {"name": "c", "namespace": "Team_A"},
     [("metadata.namespace", 'Invalid value: "Team_A": ' + LABEL_ERR)]),
    ("", "Namespace", {"name": "team-a", "namespace": "x"},
     [("metadata.namespace", "Forbidden: not allowed on this type")]),
    ("", "Namespace", {"name": "team.a"}, [("metadata.name", 'Invalid value: "team.a": must not contain dots')]),
    ("", "Service", {"name": "1web", "namespace": "d"}, [("metadata.name", 'Invalid value: "1web": ' + DNS1035_ERR)]),
    ("apps", "StatefulSet", {"name": "web.v1", "namespace": "d"},
     [("metadata.name", 'Invalid value: "web.v1": must not contain dots')]),
    ("rbac.authorization.k8s.io", "ClusterRole", {"name": "a/b"}, [("metadata.name", "Invalid value: \"a/b\": may not contain '/'")]),
    ("rbac.authorization.k8s.io", "ClusterRole", {"name": "system:admin"}, []),
    ("", "ConfigMap", {"name": "c", "namespace": "d", "labels": {"app": "my value", "-bad": "x"}},
     [("metadata.labels", 'Invalid value: "my value": ' + LABEL_VALUE_ERR),
      ("metadata.labels", 'Invalid value: "-bad": ' + NAME_PART_ERR)]),
    ("", "ConfigMap", {"name": "c", "namespace": "d", "annotations": {"Example.COM/Key": "x", "a b": "y"}},
     [("metadata.annotations", 'Invalid value: "a b": ' + NAME_PART_ERR)]),
    ("", "ConfigMap", {"name": "c", "namespace": "d", "annotations": {"big": "x" * (256 * 1024)}},
     [("metadata.annotations", "Too long: must have at most 262144 bytes")]),
    ("", "ConfigMap", {"name": "c", "namespace": "d", "generation": -1},
     [("metadata.generation", "Invalid value: -1: must be greater than or equal to 0")]),
    ("", "ConfigMap", {"name": "c", "namespace": "d", "ownerReferences": [{"apiVersion": "apps/", "kind": ""}]},
     [("metadata.ownerReferences.apiVersion", 'Invalid value: "apps/": version must not be empty'),
      ("metadata.ownerReferences.kind", 'Invalid value: "": must not be empty'),
      ("metadata.ownerReferences.name", 'Invalid value: "": must not be empty'),
      ("metadata.ownerReferences.uid", 'Invalid value: "": must not be empty')]),
    ("", "ConfigMap", {"name": "c", "namespace": "d", "finalizers": ["example.com/cleanup", "kubernetes"]}, []),
    ("", "ConfigMap", {"name": "c", "namespace": "d", "finalizers": ["cleanup"]},
     [("metadata.finalizers[0]",
       'Invalid value: "cleanup": name is neither a standard finalizer name nor is it fully qualified')]),
    ("", "ConfigMap", {"name": "c", "namespace": "d", "finalizers": ["orphan", "foregroundDeletion"]},
     [("metadata.finalizers", 'Invalid value: []string{"orphan", "foregroundDeletion"}: '
                              "finalizer orphan and foregroundDeletion cannot be both set")]),
])
def test_object_meta(group, kind, md, expected):
    got = [c for c in found(group, kind, {"metadata": md}) if c[0].startswith("metadata")]
    assert got == expected


def test_two_controller_owner_references():
    refs = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": n, "uid": n, "controller": True} for n in "ab"]
    got = found("", "ConfigMap", {"metadata": meta(ownerReferences=refs)})
    assert len(got) == 1 and got[0][0] == "metadata.ownerReferences"
    assert got[0][1].endswith('Only one reference can have Controller set to true. Found "true" in references '
                              'for ReplicaSet/a and ReplicaSet/b')


def test_event_cannot_be_an_owner():
    refs = [{"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "u"}]
    got = found("", "ConfigMap", {"metadata": meta(ownerReferences=refs)})
    assert got[0][1].endswith("/v1, Kind=Event is disallowed from being an owner")


def test_validate_object_meta_public_api():
    i = info("", "Pod")
    assert validate_object_meta(i, {"metadata": {"generateName": "web-", "namespace": "d"}}) == []
    causes = validate_object_meta(i, {"metadata": {"generateName": "web-", "namespace": "d"}},
                                  name_optional_with_generate=False)
    assert causes == [{"reason": "FieldValueRequired", "message": "Required value: name or generateName is required",
                       "field": "metadata.name"}]


# ---- pods -----------------------------------------------------------------------------------------------

POD_CASES = [
    ("valid", pod(), []),
    ("no containers", pod({"containers": []}), [("spec.containers", "Required value")]),
    ("image required", pod({"containers": [{"name": "app"}]}), [("spec.containers[0].image", "Required value")]),
    ("image whitespace", pod({"containers": [container(image="nginx ")]}),
     [("spec.containers[0].image", 'Invalid value: "nginx ": must not have leading or trailing whitespace')]),
    ("container name", pod({"containers": [container(name="Web_1")]}),
     [("spec.containers[0].name", 'Invalid value: "Web_1": ' + LABEL_ERR)]),
    ("container name required", pod({"containers": [{"image": "x"}]}),
     [("spec.containers[0].name", "Required value")]),
    ("duplicate container", pod({"containers": [container(), container()]}),
     [("spec.containers[1].name", 'Duplicate value: "app"')]),
    ("init name collides", pod({"initContainers": [container()]}),
     [("spec.initContainers[0].name", 'Duplicate value: "app"')]),
    ("ports", pod({"containers": [container(ports=[
        {"containerPort": 0}, {"containerPort": 70000, "name": "http"}, {"containerPort": 81, "name": "http"},
        {"containerPort": 82, "protocol": "HTTP", "name": "HTTP"}, {"containerPort": 83, "hostPort": 99999}])]}),
     [("spec.containers[0].ports[0].containerPort", "Required value"),
      ("spec.containers[0].ports[1].containerPort", f"Invalid value: 70000: {PORT_RANGE}"),
      ("spec.containers[0].ports[2].name", 'Duplicate value: "http"'),
      ("spec.containers[0].ports[3].name",
       'Invalid value: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)'),
      ("spec.containers[0].ports[3].name", 'Invalid value: "HTTP": must contain at least one letter (a-z)'),
      ("spec.containers[0].ports[3].protocol", 'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"'),
      ("spec.containers[0].ports[4].hostPort", f"Invalid value: 99999: {PORT_RANGE}")]),
    ("env", pod({"containers": [container(env=[
        {"value": "x"}, {"name": "A=B"}, {"name": "C", "valueFrom": {}},
        {"name": "D", "value": "v", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
        {"name": "E", "valueFrom": {"secretKeyRef": {"name": "s"}}},
        {"name": "F", "valueFrom": {"fieldRef": {"fieldPath": "spec.hostname"}}},
        {"name": "G", "valueFrom": {"fieldRef": {"fieldPath": "status.phase"}}}])]}),
     [("spec.containers[0].env[0].name", "Required value"),
      ("spec.containers[0].env[1].name", 'Invalid value: "A=B": a valid environment variable name must consist '
                                          "only of printable ASCII characters other than '='"),
      ("spec.containers[0].env[2].valueFrom", 'Invalid value: "": must specify one of: `fieldRef`, '
                                               "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"),
      ("spec.containers[0].env[3].valueFrom", 'Invalid value: "": may not be specified when `value` is not empty'),
      ("spec.containers[0].env[4].valueFrom.secretKeyRef.key", "Required value"),
      ("spec.containers[0].env[5].valueFrom.fieldRef.fieldPath", 'Invalid value: "spec.hostname": error '
                                                                  "converting fieldPath: field label not supported: "
                                                                  "spec.hostname"),
      ("spec.containers[0].env[6].valueFrom.fieldRef.fieldPath",
       'Unsupported value: "status.phase": supported values: "metadata.name", "metadata.namespace", '
       '"metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", '
       '"status.podIP", "status.podIPs"')]),
    ("env from", pod({"containers": [container(envFrom=[{"prefix": "A="}, {"configMapRef": {"name": "c"}}])]}),
     [("spec.containers[0].envFrom[0].prefix", 'Invalid value: "A=": a valid environment variable name must '
                                                "consist only of printable ASCII characters other than '='"),
      ("spec.containers[0].envFrom", 'Invalid value: "": must specify one of: `configMapRef` or `secretRef`')]),
    ("requests over limits", pod({"containers": [container(resources={"requests": {"cpu": "2"},
                                                                     "limits": {"cpu": "1"}})]}),
     [("spec.containers[0].resources.requests", 'Invalid value: "2": must be less than or equal to cpu limit of 1')]),
    ("bad quantity", pod({"containers": [container(resources={"limits": {"memory": "1GB"}})]}),
     [("spec.containers[0].resources.limits[memory]", 'Invalid value: "1GB": ' + QTY_ERR),
      # requests were defaulted from the limit (upstream rejects the value while decoding)
      ("spec.containers[0].resources.requests[memory]", 'Invalid value: "1GB": ' + QTY_ERR)]),
    ("negative quantity", pod({"containers": [container(resources={"requests": {"cpu": "-1"}})]}),
     [("spec.containers[0].resources.requests[cpu]", 'Invalid value: "-1": must be greater than or equal to 0')]),
    ("resource names", pod({"containers": [container(resources={"requests": {"foo": "1", "example.com/gpu": "1"}})]}),
     [("spec.containers[0].resources.requests[foo]",
       'Invalid value: "foo": must be a standard resource type or fully qualified'),
      ("spec.containers[0].resources.requests[foo]", 'Invalid value: "foo": must be a standard resource for containers'),
      ("spec.containers[0].resources.limits", "Required value: Limit must be set for non overcommitable resources")]),
    ("extended resources equal", pod({"containers": [container(resources={
        "requests": {"example.com/gpu": "1"}, "limits": {"example.com/gpu": "2"}})]}),
     [("spec.containers[0].resources.requests", 'Invalid value: "1": must be equal to example.com/gpu limit of 2')]),
    ("restart policy", pod({"restartPolicy": "Sometimes"}),
     [("spec.restartPolicy", 'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"')]),
    ("dns policy", pod({"dnsPolicy": "Cluster"}),
     [("spec.dnsPolicy", 'Unsupported value: "Cluster": supported values: "ClusterFirstWithHostNet", '
                         '"ClusterFirst", "Default", "None"')]),
    ("dns none", pod({"dnsPolicy": "None"}),
     [("spec.dnsConfig", "Required value: must provide `dnsConfig` when `dnsPolicy` is None")]),
    ("pull policy", pod({"containers": [container(imagePullPolicy="Sometimes")]}),
     [("spec.containers[0].imagePullPolicy",
       'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"')]),
    ("termination message policy", pod({"containers": [container(terminationMessagePolicy="Log")]}),
     [("spec.containers[0].terminationMessagePolicy",
       'Unsupported value: "Log": supported values: "File", "FallbackToLogsOnError"')]),
    ("volumes", pod({"volumes": [{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}},
                                 {"name": "Bad", "emptyDir": {}},
                                 {"name": "two", "emptyDir": {}, "configMap": {"name": "c"}},
                                 {"name": "cm", "configMap": {}}]}),
     [("spec.volumes[1].name", 'Duplicate value: "a"'),
      ("spec.volumes[2].name", 'Invalid value: "Bad": ' + LABEL_ERR),
      ("spec.volumes[3].configMap", "Forbidden: may not specify more than 1 volume type"),
      ("spec.volumes[4].configMap.name", "Required value")]),
    ("volume mounts", pod({"volumes": [{"name": "data"}], "containers": [container(volumeMounts=[
        {"name": "missing", "mountPath": "/a"}, {"name": "data", "mountPath": "/a"}, {"name": "data"},
        {"name": "data", "mountPath": "/b", "subPath": "../x"}])]}),
     [("spec.containers[0].volumeMounts[0].name", 'Not found: "missing"'),
      ("spec.containers[0].volumeMounts[1].mountPath", 'Invalid value: "/a": must be unique'),
      ("spec.containers[0].volumeMounts[2].mountPath", "Required value"),
      ("spec.containers[0].volumeMounts.subPath", "Invalid value: \"../x\": must not contain '..'")]),
    ("probes", pod({"containers": [container(
        livenessProbe={"successThreshold": 2},
        readinessProbe={"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}, "terminationGracePeriodSeconds": 5},
        startupProbe={"httpGet": {"port": "HTTP"}, "initialDelaySeconds": -1})]}),
     [("spec.containers[0].livenessProbe", "Required value: must specify a handler type"),
      ("spec.containers[0].livenessProbe.successThreshold", "Invalid value: 2: must be 1"),
      ("spec.containers[0].readinessProbe.tcpSocket", "Forbidden: may not specify more than 1 handler type"),
      ("spec.containers[0].readinessProbe.terminationGracePeriodSeconds",
       "Invalid value: 5: must not be set for readinessProbes"),
      ("spec.containers[0].startupProbe.httpGet.port",
       'Invalid value: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)'),
      ("spec.containers[0].startupProbe.httpGet.port", 'Invalid value: "HTTP": must contain at least one letter (a-z)'),
      ("spec.containers[0].startupProbe.initialDelaySeconds", "Invalid value: -1: must be greater than or equal to 0")]),
    ("pre stop sleep", pod({"terminationGracePeriodSeconds": 10, "containers": [container(
        lifecycle={"preStop": {"sleep": {"seconds": 20}}})]}),
     [("spec.containers[0].lifecycle.preStop.sleep",
       "Invalid value: 20: must be non-negative and less than terminationGracePeriodSeconds (10)")]),
    ("init containers", pod({"initContainers": [
        {"name": "init", "image": "busybox", "restartPolicy": "OnFailure"},
        {"name": "init2", "image": "busybox", "readinessProbe": {"exec": {"command": ["x"]}}},
        {"name": "sidecar", "image": "busybox", "restartPolicy": "Always",
         "readinessProbe": {"exec": {"command": ["x"]}}}]}),
     [("spec.initContainers[0].restartPolicy", 'Unsupported value: "OnFailure": supported values: "Always"'),
      ("spec.initContainers[1].readinessProbe", "Forbidden: may not be set for init containers without "
                                                 "restartPolicy=Always")]),
    ("restart policy on regular container", pod({"containers": [container(restartPolicy="Always")]}),
     [("spec.containers[0].restartPolicy", "Forbidden: may not be set for non-init containers")]),
    ("active deadline", pod({"activeDeadlineSeconds": 0}),
     [("spec.activeDeadlineSeconds", "Invalid value: 0: must be between 1 and 2147483647, inclusive")]),
    ("tolerations", pod({"tolerations": [{"operator": "Equal", "value": "x"},
                                         {"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5},
                                         {"key": "k", "operator": "In"},
                                         {"key": "k", "operator": "Exists", "value": "v"}]}),
     [("spec.tolerations[0].operator", 'Invalid value: "Equal": operator must be Exists when `key` is empty, '
                                       'which means "match all values and all keys"'),
      ("spec.tolerations[1].effect",
       "Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set"),
      ("spec.tolerations[2].operator", 'Unsupported value: "In": supported values: "Equal", "Exists"'),
      ("spec.tolerations[3].operator", "Invalid value: \"v\": value must be empty when `operator` is 'Exists'")]),
    ("host network ports", pod({"hostNetwork": True, "containers": [container(
        ports=[{"containerPort": 80, "hostPort": 8080}])]}),
     [("spec.containers[0].ports[0].hostPort", "Invalid value: 8080: must match `containerPort` when `hostNetwork` "
                                               "is true")]),
    ("host port conflict", pod({"containers": [container(ports=[{"containerPort": 80, "hostPort": 80}]),
                                               container(name="b", ports=[{"containerPort": 81, "hostPort": 80}])]}),
     [("spec.containers[1].ports[0].hostPort", 'Duplicate value: "TCP//80"')]),
    ("node selector", pod({"nodeSelector": {"zone": "us east"}}),
     [("spec.nodeSelector", 'Invalid value: "us east": ' + LABEL_VALUE_ERR)]),
    ("security context", pod({"securityContext": {"runAsUser": -1}, "containers": [container(
        securityContext={"runAsGroup": 4294967296, "allowPrivilegeEscalation": False, "privileged": True})]}),
     [("spec.containers[0].securityContext.runAsGroup",
       "Invalid value: 4294967296: must be between 0 and 4294967295, inclusive"),
      ("spec.containers[0].securityContext", "Invalid value: &core.SecurityContext{...}: cannot set "
                                             "`allowPrivilegeEscalation` to false and `privileged` to true"),
      ("spec.securityContext.runAsUser", "Invalid value: -1: must be between 0 and 4294967295, inclusive")]),
    ("affinity", pod({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": []}}, "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 0, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}}}}]}}}),
     [("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
       "Required value: must have at least one node selector term"),
      ("spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
       "Invalid value: 0: must be in the range 1-100"),
      ("spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey",
       "Required value: can not be empty"),
      ("spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey",
       'Invalid value: "": name part must be non-empty'),
      ("spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey",
       'Invalid value: "": ' + NAME_PART_ERR)]),
    ("topology spread", pod({"topologySpreadConstraints": [
        {"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"},
        {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]}),
     [("spec.topologySpreadConstraints[0].maxSkew", "Invalid value: 0: must be greater than zero"),
      ("spec.topologySpreadConstraints[0].{topologyKey, whenUnsatisfiable}",
       'Duplicate value: "{zone, DoNotSchedule}"')]),
    ("ephemeral containers on create", pod({"ephemeralContainers": [{"name": "debug", "image": "busybox"}]}),
     [("spec.ephemeralContainers", "Forbidden: cannot be set on create")]),
    ("node name with gates", pod({"nodeName": "n1", "schedulingGates": [{"name": "example.com/g"}]}),
     [("spec.nodeName", "Forbidden: cannot be set until all schedulingGates have been cleared")]),
    ("deletion cost", pod(annotations={"controller.kubernetes.io/pod-deletion-cost": "high"}),
     [("metadata.annotations[controller.kubernetes.io/pod-deletion-cost]",
       'Invalid value: "high": must be a 32bit integer')]),
    ("service account name", pod({"serviceAccountName": "Robot"}),
     [("spec.serviceAccountName", 'Invalid value: "Robot": ' + SUBDOMAIN_ERR)]),
]


@pytest.mark.parametrize("name,obj,expected", POD_CASES, ids=[c[0] for c in POD_CASES])
def test_pod(name, obj, expected):
    assert found("", "Pod", obj) == expected


def test_termination_grace_period_is_required_without_defaults():
    got = found("", "Pod", pod(), default=False)
    assert ("spec.terminationGracePeriodSeconds", "Required value") in got
    assert ("spec.containers[0].imagePullPolicy", "Required value") in got
    assert ("spec.containers[0].terminationMessagePolicy", "Required value") in got
    assert ("spec.restartPolicy", "Required value") in got
    assert ("spec.dnsPolicy", "Required value") in got


def test_validate_create_raises_the_kubectl_message():
    obj = pod({"containers": [{"name": "app"}]}, name="x")
    apply_defaults(info("", "Pod"), obj)
    with pytest.raises(errors.APIError) as e:
        validate_create(info("", "Pod"), obj)
    err = e.value
    assert err.code == 422 and err.reason == "Invalid"
    assert err.message == 'Pod "x" is invalid: spec.containers[0].image: Required value'
    assert err.details == {"name": "x", "kind": "Pod", "causes": [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers[0].image"}]}


def test_several_causes_are_joined_and_grouped_kinds_are_qualified():
    obj = {"metadata": meta("web"), "spec": {"template": tmpl()}}
    apply_defaults(info("apps", "Deployment"), obj)
    with pytest.raises(errors.APIError) as e:
        validate_create(info("apps", "Deployment"), obj)
    assert e.value.message == (
        'Deployment.apps "web" is invalid: [spec.selector: Required value, spec.template.metadata.labels: '
        'Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`]')
    assert e.value.details["group"] == "apps"


def test_valid_objects_pass():
    validate_create(info("", "Pod"), _defaulted("", "Pod", pod()))


def _defaulted(group, kind, obj):
    obj = copy.deepcopy(obj)
    apply_defaults(info(group, kind), obj)
    return obj


# ---- pod updates ----------------------------------------------------------------------------------------

UPDATABLE = ("pod updates may not change fields other than `spec.containers[*].image`,"
             "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
             "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
             "previously negative)")


def _stored_pod(**spec):
    p = pod(spec)
    p["metadata"].update(uid="u1", resourceVersion="5", creationTimestamp="2024-05-01T10:00:00Z")
    apply_defaults(info("", "Pod"), p)
    return p


def test_pod_update_allowed_changes():
    old = _stored_pod(tolerations=[{"key": "a", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}],
                      activeDeadlineSeconds=100)
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.26"
    new["spec"]["activeDeadlineSeconds"] = 50
    new["spec"]["tolerations"][0]["tolerationSeconds"] = 10
    new["spec"]["tolerations"].append({"key": "b", "operator": "Exists"})
    new["metadata"]["labels"] = {"tier": "web"}
    assert found_update("", "Pod", new, old) == []


def test_pod_update_other_fields_forbidden():
    old = _stored_pod()
    new = copy.deepcopy(old)
    new["spec"]["restartPolicy"] = "Never"
    got = found_update("", "Pod", new, old)
    assert len(got) == 1 and got[0][0] == "spec"
    assert got[0][1].startswith("Forbidden: " + UPDATABLE + "\n  core.PodSpec{\n")
    assert '- \tRestartPolicy: "Always",\n+ \tRestartPolicy: "Never",\n' in got[0][1]


@pytest.mark.parametrize("change,expected", [
    (lambda s: s["containers"].append({"name": "b", "image": "x"}),
     [("spec.containers", "Forbidden: pod updates may not add or remove containers")]),
    (lambda s: s.update(activeDeadlineSeconds=200),
     [("spec.activeDeadlineSeconds", "Invalid value: 200: must be less than or equal to previous value")]),
    (lambda s: s.pop("activeDeadlineSeconds"),
     [("spec.activeDeadlineSeconds", "Invalid value: null: must not update from a positive integer to nil value")]),
    (lambda s: s.update(tolerations=[]),
     [("spec.tolerations", "Forbidden: existing toleration can not be modified except its tolerationSeconds")]),
    (lambda s: s["containers"][0].update(image=""),
     [("spec.containers[0].image", "Required value"), ("spec.containers[0].image", "Required value")]),
])
def test_pod_update_rules(change, expected):
    old = _stored_pod(activeDeadlineSeconds=100, tolerations=[{"key": "a", "operator": "Exists"}])
    new = copy.deepcopy(old)
    change(new["spec"])
    got = found_update("", "Pod", new, old)
    for e in expected:
        assert e in got
    assert not [g for g in got if g[0] == "spec"], got


def test_scheduling_gates_may_only_be_removed():
    old = _stored_pod(schedulingGates=[{"name": "example.com/a"}])
    new = copy.deepcopy(old)
    new["spec"]["schedulingGates"] = [{"name": "example.com/b"}]
    assert ("spec.schedulingGates[0].name",
            "Forbidden: only deletion is allowed, but found new scheduling gate 'example.com/b'") in \
        found_update("", "Pod", new, old)
    new["spec"]["schedulingGates"] = []
    assert found_update("", "Pod", new, old) == []


def test_grace_period_may_go_from_negative_to_one():
    old = _stored_pod(terminationGracePeriodSeconds=-1)
    new = copy.deepcopy(old)
    new["spec"]["terminationGracePeriodSeconds"] = 1
    assert found_update("", "Pod", new, old) == []


# ---- metadata on update --------------------------------------------------------------------------------

def test_metadata_immutable_fields():
    old = {"metadata": meta("a", uid="u1", resourceVersion="3", creationTimestamp="2024-05-01T10:00:00Z"),
           "data": {}}
    new = copy.deepcopy(old)
    new["metadata"].update(name="b", uid="u2", creationTimestamp="2024-05-02T10:00:00Z")
    got = found_update("", "ConfigMap", new, old)
    assert ("metadata.name", 'Invalid value: "b": field is immutable') in got
    assert ("metadata.uid", 'Invalid value: "u2": field is immutable') in got
    assert ("metadata.creationTimestamp", "Invalid value: 2024-05-02 10:00:00 +0000 UTC: field is immutable") in got


def test_no_new_finalizers_while_deleting():
    old = {"metadata": meta("a", deletionTimestamp="2024-05-01T10:00:00Z", finalizers=["example.com/a"])}
    new = copy.deepcopy(old)
    new["metadata"]["finalizers"] = ["example.com/a", "example.com/b"]
    assert found_update("", "ConfigMap", new, old) == [
        ("metadata.finalizers", 'Forbidden: no new finalizers can be added if the object is being deleted, '
                                'found new finalizers []string{"example.com/b"}')]


def test_generation_may_not_decrease():
    old = {"metadata": meta("a", generation=3)}
    new = {"metadata": meta("a", generation=2)}
    assert ("metadata.generation", "Invalid value: 2: must not be decremented") in found_update("", "ConfigMap", new, old)


# ---- apps -----------------------------------------------------------------------------------------------

SEL = {"matchLabels": {"app": "web"}}

DEPLOYMENT_CASES = [
    ("valid", {"selector": SEL, "template": tmpl()}, []),
    ("no selector", {"template": tmpl()},
     [("spec.selector", "Required value"),
      ("spec.template.metadata.labels",
       'Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`')]),
    ("empty selector", {"selector": {}, "template": tmpl()},
     [("spec.selector", "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
                        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment")]),
    ("mismatch", {"selector": {"matchLabels": {"app": "api"}}, "template": tmpl()},
     [("spec.template.metadata.labels",
       'Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`')]),
    ("bad selector", {"selector": {"matchExpressions": [{"key": "app", "operator": "Like"}]}, "template": tmpl()},
     [("spec.selector.matchExpressions[0].operator", 'Invalid value: "Like": not a valid selector operator'),
      ("spec.selector", "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
                        "MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:\"app\", "
                        "Operator:\"Like\", Values:[]string(nil)}}}: invalid label selector")]),
    ("replicas", {"replicas": -1, "selector": SEL, "template": tmpl()},
     [("spec.replicas", "Invalid value: -1: must be greater than or equal to 0")]),
    ("restart policy", {"selector": SEL, "template": tmpl(restartPolicy="Never")},
     [("spec.template.spec.restartPolicy", 'Unsupported value: "Never": supported values: "Always"')]),
    ("active deadline", {"selector": SEL, "template": tmpl(activeDeadlineSeconds=5)},
     [("spec.template.spec.activeDeadlineSeconds",
       "Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported")]),
    ("template pod spec", {"selector": SEL, "template": tmpl(containers=[{"name": "app"}])},
     [("spec.template.spec.containers[0].image", "Required value")]),
    ("template labels", {"selector": SEL, "template": tmpl(labels={"app": "web", "v": "not ok"})},
     [("spec.template.labels", 'Invalid value: "not ok": ' + LABEL_VALUE_ERR)]),
    ("surge and unavailable zero", {"selector": SEL, "template": tmpl(), "strategy": {
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}},
     [("spec.strategy.rollingUpdate.maxUnavailable", "Invalid value: 0%: may not be 0 when `maxSurge` is 0")]),
    ("percentages", {"selector": SEL, "template": tmpl(), "strategy": {
        "rollingUpdate": {"maxSurge": "abc", "maxUnavailable": "150%"}}},
     [("spec.strategy.rollingUpdate.maxSurge", "Invalid value: abc: a valid percent string must be a numeric string "
                                               "followed by an ending '%' (e.g. '1%',  or '93%', regex used for "
                                               "validation is '[0-9]+%')"),
      ("spec.strategy.rollingUpdate.maxUnavailable", "Invalid value: 150%: must not be greater than 100%")]),
    ("recreate with rolling update", {"selector": SEL, "template": tmpl(), "strategy": {
        "type": "Recreate", "rollingUpdate": {"maxSurge": 1}}},
     [("spec.strategy.rollingUpdate", "Forbidden: may not be specified when strategy `type` is 'Recreate'")]),
    ("progress deadline", {"selector": SEL, "template": tmpl(), "minReadySeconds": 600},
     [("spec.progressDeadlineSeconds", "Invalid value: 600: must be greater than minReadySeconds")]),
]


@pytest.mark.parametrize("name,spec,expected", DEPLOYMENT_CASES, ids=[c[0] for c in DEPLOYMENT_CASES])
def test_deployment(name, spec, expected):
    assert found("apps", "Deployment", {"metadata": meta("web"), "spec": spec}) == expected


def test_deployment_selector_is_immutable():
    old = {"metadata": meta("web", uid="u", resourceVersion="1"), "spec": {"selector": SEL, "template": tmpl()}}
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "v2"}}
    new["spec"]["template"]["metadata"]["labels"] = {"app": "v2"}
    assert found_update("apps", "Deployment", new, old) == [
        ("spec.selector", 'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"v2"}, '
                          "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable")]
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 5
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    assert found_update("apps", "Deployment", new, old) == []


def test_replica_set():
    assert found("apps", "ReplicaSet", {"metadata": meta("rs"), "spec": {"selector": {}, "template": tmpl()}}) == [
        ("spec.selector", "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
                          "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment")]


def test_stateful_set():
    spec = {"selector": SEL, "template": tmpl(), "podManagementPolicy": "Fast",
            "updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 1}}}
    assert found("apps", "StatefulSet", {"metadata": meta("db"), "spec": spec}) == [
        ("spec.podManagementPolicy", "Invalid value: \"Fast\": must be 'OrderedReady' or 'Parallel'"),
        ("spec.updateStrategy.rollingUpdate", "Invalid value: &apps.RollingUpdateStatefulSetStrategy{...}: "
                                              "only allowed for updateStrategy 'RollingUpdate'")]
    ok = {"selector": SEL, "template": tmpl(), "serviceName": "db"}
    assert found("apps", "StatefulSet", {"metadata": meta("db"), "spec": ok}) == []
    mismatch = {"selector": {"matchLabels": {"app": "x"}}, "template": tmpl(restartPolicy="OnFailure")}
    assert found("apps", "StatefulSet", {"metadata": meta("db"), "spec": mismatch}) == [
        ("spec.template.metadata.labels",
         'Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`'),
        ("spec.template.spec.restartPolicy", 'Unsupported value: "OnFailure": supported values: "Always"')]


def test_stateful_set_forbidden_updates():
    old = {"metadata": meta("db", uid="u", resourceVersion="1"),
           "spec": {"selector": SEL, "template": tmpl(), "serviceName": "db"}}
    new = copy.deepcopy(old)
    new["spec"]["serviceName"] = "other"
    assert found_update("apps", "StatefulSet", new, old) == [
        ("spec", "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
                 "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")]
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 3
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    assert found_update("apps", "StatefulSet", new, old) == []


@pytest.mark.parametrize("strategy,expected", [
    ({}, []),
    ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
     [("spec.updateStrategy.rollingUpdate.maxSurge", "Invalid value: 1: may not be set when maxUnavailable is non-zero")]),
    ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}},
     [("spec.updateStrategy.rollingUpdate.maxUnavailable", "Required value: cannot be 0 when maxSurge is 0")]),
    ({"type": "Surge"}, [("spec.updateStrategy", 'Unsupported value: apps.DaemonSetUpdateStrategy{Type:"Surge"}: '
                                                 'supported values: "RollingUpdate", "OnDelete"')]),
])
def test_daemon_set(strategy, expected):
    spec = {"selector": SEL, "template": tmpl(), "updateStrategy": strategy}
    assert found("apps", "DaemonSet", {"metadata": meta("ds"), "spec": spec}) == expected


# ---- batch ----------------------------------------------------------------------------------------------

def job(**spec):
    s = {"template": {"spec": {"containers": [{"name": "pi", "image": "perl"}], "restartPolicy": "Never"}}}
    s.update(spec)
    return {"metadata": meta("pi", uid="u-1"), "spec": s}


def job_causes(obj):
    obj = copy.deepcopy(obj)
    apply_defaults(info("batch", "Job"), obj)
    job_prepare_for_create(obj)
    return [(c["field"], c["message"]) for c in causes_for_create(info("batch", "Job"), obj)]


@pytest.mark.parametrize("spec,expected", [
    ({}, []),
    ({"parallelism": -1, "backoffLimit": -2},
     [("spec.parallelism", "Invalid value: -1: must be greater than or equal to 0"),
      ("spec.backoffLimit", "Invalid value: -2: must be greater than or equal to 0")]),
    ({"completionMode": "Fast"},
     [("spec.completionMode", 'Unsupported value: "Fast": supported values: "NonIndexed", "Indexed"')]),
    ({"completionMode": "Indexed", "parallelism": 2},
     [("spec.completions", "Required value: when completion mode is Indexed")]),
    ({"backoffLimitPerIndex": 1}, [("spec.backoffLimitPerIndex", "Invalid value: 1: requires indexed completion mode")]),
    ({"podReplacementPolicy": "Never"},
     [("spec.podReplacementPolicy", 'Unsupported value: "Never": supported values: "Failed", "TerminatingOrFailed"')]),
    ({"template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}},
     [("spec.template.spec.restartPolicy", 'Required value: valid values: "OnFailure", "Never"')]),
    ({"template": {"spec": {"containers": [{"name": "pi", "image": "perl"}], "restartPolicy": "Later"}}},
     [("spec.template.spec.restartPolicy",
       'Unsupported value: "Later": supported values: "Always", "OnFailure", "Never"'),
      ("spec.template.spec.restartPolicy", 'Unsupported value: "Later": supported values: "OnFailure", "Never"')]),
])
def test_job(spec, expected):
    assert job_causes(job(**spec)) == expected


def test_job_generated_selector_must_match():
    obj = job(selector={"matchLabels": {"batch.kubernetes.io/controller-uid": "other"}})
    got = job_causes(obj)
    assert ("spec.selector", 'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{'
                             '"batch.kubernetes.io/controller-uid":"other"}, '
                             "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: `selector` not auto-generated") in got


def test_job_without_generated_selector():
    got = found("batch", "Job", job())
    assert ("spec.selector", "Required value") in got


def test_job_updates():
    old = copy.deepcopy(job())
    old["metadata"]["resourceVersion"] = "1"
    apply_defaults(info("batch", "Job"), old)
    job_prepare_for_create(old)
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:2"
    new["spec"]["completions"] = 3
    got = [(c["field"], c["message"]) for c in causes_for_update(info("batch", "Job"), new, old)]
    assert ("spec.completions", "Invalid value: 3: field is immutable") in got
    assert ("spec.template", "Invalid value: core.PodTemplateSpec{...}: field is immutable") in got
    new = copy.deepcopy(old)
    new["spec"]["parallelism"] = 5
    new["spec"]["suspend"] = True
    assert causes_for_update(info("batch", "Job"), new, old) == []


def test_suspended_job_may_change_scheduling_directives():
    old = copy.deepcopy(job(suspend=True))
    old["metadata"]["resourceVersion"] = "1"
    apply_defaults(info("batch", "Job"), old)
    job_prepare_for_create(old)
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["nodeSelector"] = {"zone": "a"}
    new["spec"]["template"]["spec"]["tolerations"] = [{"key": "k", "operator": "Exists"}]
    new["spec"]["template"]["metadata"]["annotations"] = {"note": "x"}
    assert causes_for_update(info("batch", "Job"), new, old) == []
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:2"
    assert [c["field"] for c in causes_for_update(info("batch", "Job"), new, old)] == ["spec.template"]
    started = copy.deepcopy(old)
    started["status"] = {"startTime": "2024-05-01T10:00:00Z"}
    moved = copy.deepcopy(started)
    moved["spec"]["template"]["spec"]["nodeSelector"] = {"zone": "a"}
    assert [c["field"] for c in causes_for_update(info("batch", "Job"), moved, started)] == ["spec.template"]


@pytest.mark.parametrize("schedule,error", [
    ("*/5 * * * *", None),
    ("0 0 * JAN-MAR MON-FRI", None),
    ("0 9 1,15 * ?", None),
    ("@hourly", None),
    ("@every 1h30m", None),
    ("61 * * * *", "end of range (61) above maximum (59): 61"),
    ("* * * * 7", "end of range (7) above maximum (6): 7"),
    ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("a * * * *", 'failed to parse int from a: strconv.Atoi: parsing "a": invalid syntax'),
    ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
    ("1/2/3 * * * *", "too many slashes: 1/2/3"),
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("0 * * * * *", "expected exactly 5 fields, found 6: [0 * * * * *]"),
    ("@fortnightly", "unrecognized descriptor: @fortnightly"),
    ("@every 5x", 'failed to parse duration @every 5x: time: unknown unit "x" in duration "5x"'),
])
def test_cron_schedules(schedule, error):
    assert parse_schedule(schedule) == error


def cron(**spec):
    s = {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "OnFailure"}}}}}
    s.update(spec)
    return {"metadata": meta("backup"), "spec": s}


@pytest.mark.parametrize("obj,expected", [
    (cron(), []),
    (cron(schedule=""), [("spec.schedule", "Required value")]),
    (cron(schedule="61 * * * *"), [("spec.schedule", 'Invalid value: "61 * * * *": end of range (61) above maximum '
                                                     '(59): 61')]),
    (cron(schedule="CRON_TZ=UTC 0 * * * *"),
     [("spec.schedule", 'Invalid value: "CRON_TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use '
                        "timeZone field instead")]),
    (cron(timeZone="America/New_York"), []),
    (cron(timeZone="Mars/Olympus_Mons"), [("spec.timeZone", 'Invalid value: "Mars/Olympus_Mons": unknown time '
                                                            "zone Mars/Olympus_Mons")]),
    (cron(timeZone="Local"), [("spec.timeZone", 'Invalid value: "Local": timeZone must be an explicit time zone as '
                                                "defined in https://www.iana.org/time-zones")]),
    (cron(timeZone=""), [("spec.timeZone", 'Invalid value: "": timeZone must be nil or non-empty string')]),
    (cron(concurrencyPolicy="Sometimes"),
     [("spec.concurrencyPolicy", 'Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"')]),
    (cron(startingDeadlineSeconds=-1),
     [("spec.startingDeadlineSeconds", "Invalid value: -1: must be greater than or equal to 0")]),
    (cron(jobTemplate={"spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"spec": {
        "containers": [{"name": "c", "image": "b"}]}}}}),
     [("spec.jobTemplate.spec.template.spec.restartPolicy", 'Required value: valid values: "OnFailure", "Never"'),
      ("spec.jobTemplate.spec.selector", 'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"a":"b"}, '
                                         "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: `selector` will be "
                                         "auto-generated")]),
    ({"metadata": meta("b" * 53), "spec": cron()["spec"]},
     [("metadata.name", f'Invalid value: "{"b" * 53}": must be no more than 52 characters')]),
])
def test_cron_job(obj, expected):
    assert found("batch", "CronJob", obj) == expected


def test_cron_job_update_keeps_legacy_tz_but_not_long_name_rule():
    old = {"metadata": meta("b" * 53, uid="u", resourceVersion="1"), "spec": cron(schedule="TZ=UTC 0 * * * *")["spec"]}
    new = copy.deepcopy(old)
    assert found_update("batch", "CronJob", new, old) == []


# ---- services -------------------------------------------------------------------------------------------

def svc(**spec):
    s = {"selector": {"app": "web"}, "ports": [{"port": 80}]}
    s.update(spec)
    return {"metadata": meta("web"), "spec": s}


SERVICE_CASES = [
    ("valid", svc(), []),
    ("no ports", svc(ports=[]), [("spec.ports", "Required value")]),
    ("headless without ports", svc(ports=[], clusterIP="None"), []),
    ("port range", svc(ports=[{"port": 0}]), [("spec.ports[0].port", f"Invalid value: 0: {PORT_RANGE}"),
                                              ("spec.ports[0].targetPort", f"Invalid value: 0: {PORT_RANGE}")]),
    ("names required and unique", svc(ports=[{"port": 80}, {"port": 81, "name": "a"}, {"port": 82, "name": "a"}]),
     [("spec.ports[0].name", "Required value"), ("spec.ports[2].name", 'Duplicate value: "a"')]),
    ("protocol", svc(ports=[{"port": 80, "protocol": "HTTP"}]),
     [("spec.ports[0].protocol", 'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"')]),
    ("target port name", svc(ports=[{"port": 80, "targetPort": "web_http"}]),
     [("spec.ports[0].targetPort",
       'Invalid value: "web_http": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)')]),
    ("duplicate port", svc(ports=[{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]),
     [("spec.ports[1]", 'Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), '
                        'Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}')]),
    ("type", svc(type="Internal"),
     [("spec.type", 'Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", '
                    '"LoadBalancer", "NodePort"')]),
    ("external name required", svc(type="ExternalName", ports=[]), [("spec.externalName", "Required value")]),
    ("external name format", svc(type="ExternalName", externalName="Bad_Host."),
     [("spec.externalName", 'Invalid value: "Bad_Host": ' + SUBDOMAIN_ERR)]),
    ("headless node port", svc(type="NodePort", clusterIP="None"),
     [("spec.clusterIPs[0]", "Invalid value: \"None\": may not be set to 'None' for NodePort services")]),
    ("node port on cluster ip", svc(ports=[{"port": 80, "nodePort": 30080}]),
     [("spec.ports[0].nodePort", "Forbidden: may not be used when `type` is 'ClusterIP'")]),
    ("bad cluster ip", svc(clusterIP="10.0.0.300"),
     [("spec.clusterIPs[0]", 'Invalid value: "10.0.0.300": must be a valid IP address, (e.g. 10.9.8.7 or '
                             '2001:db8::ffff)')]),
    ("ip family mismatch", svc(clusterIP="fd00::1"),
     [("spec.clusterIPs[0]", 'Invalid value: "fd00::1": expected an IPv4 value as indicated by `ipFamilies[0]`')]),
    ("external ip", svc(externalIPs=["127.0.0.1"]),
     [("spec.externalIPs[0]", 'Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)')]),
    ("session affinity", svc(sessionAffinity="Sticky"),
     [("spec.sessionAffinity", 'Unsupported value: "Sticky": supported values: "ClientIP", "None"')]),
    ("client ip timeout", svc(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 0}}),
     [("spec.sessionAffinityConfig.clientIP.timeoutSeconds", "Invalid value: 0: must be greater than 0 and less "
                                                            "than 86400")]),
    ("source ranges", svc(loadBalancerSourceRanges=["10.0.0.0/8"]),
     [("spec.LoadBalancerSourceRanges", "Forbidden: may only be used when `type` is 'LoadBalancer'")]),
    ("selector labels", svc(selector={"app": "my app"}), [("spec.selector", 'Invalid value: "my app": ' + LABEL_VALUE_ERR)]),
]


@pytest.mark.parametrize("name,obj,expected", SERVICE_CASES, ids=[c[0] for c in SERVICE_CASES])
def test_service(name, obj, expected):
    assert found("", "Service", obj) == expected


def test_service_cluster_ip_is_immutable():
    old = svc(clusterIP="10.96.0.10")
    old["metadata"].update(uid="u", resourceVersion="1")
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.96.0.11"
    new["spec"]["clusterIPs"] = ["10.96.0.11"]
    assert found_update("", "Service", new, old) == [
        ("spec.clusterIPs[0]", 'Invalid value: []string{"10.96.0.11"}: may not change once set')]
    new = copy.deepcopy(old)
    new["spec"]["ports"][0]["port"] = 8080
    assert found_update("", "Service", new, old) == []


# ---- config maps and secrets -------------------------------------------------------------------------------

def test_config_map():
    cm = {"metadata": meta("c"), "data": {"a b": "x", "..": "y", "k": "v"}, "binaryData": {"k": "AAAA"}}
    assert found("", "ConfigMap", cm) == [
        ("data[a b]", 'Invalid value: "a b": ' + CM_KEY_ERR),
        ("data[..]", "Invalid value: \"..\": must not be '..'"),
        ("data[k]", 'Invalid value: "k": duplicate of key present in binaryData')]
    big = {"metadata": meta("c"), "data": {"a": "x" * (1024 * 1024), "b": "y"}}
    assert found("", "ConfigMap", big) == [("", "Too long: must have at most 1048576 bytes")]


@pytest.mark.parametrize("obj,expected", [
    ({"data": {"a": "YQ=="}}, []),
    ({"data": {"bad key": "YQ=="}}, [("data[bad key]", 'Invalid value: "bad key": ' + CM_KEY_ERR)]),
    ({"type": "kubernetes.io/dockerconfigjson"}, [("data[.dockerconfigjson]", "Required value")]),
    ({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "bm90IGpzb24="}},
     [("data[.dockerconfigjson]", "Invalid value: \"<secret contents redacted>\": invalid character 'o' in literal "
                                  "null (expecting 'u')")]),
    ({"type": "kubernetes.io/dockercfg", "data": {".dockercfg": "W10="}},
     [("data[.dockercfg]", 'Invalid value: "<secret contents redacted>": json: cannot unmarshal array into Go value '
                           "of type map[string]interface {}")]),
    ({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "eyJhdXRocyI6e319"}}, []),
    ({"type": "kubernetes.io/tls", "stringData": {"tls.crt": "x"}}, [("data[tls.key]", "Required value")]),
    ({"type": "kubernetes.io/service-account-token"},
     [("metadata.annotations[kubernetes.io/service-account.name]", "Required value")]),
    ({"type": "kubernetes.io/basic-auth"}, [("data[username]", "Required value"), ("data[password]", "Required value")]),
    ({"type": "kubernetes.io/ssh-auth", "data": {"ssh-privatekey": ""}}, [("data[ssh-privatekey]", "Required value")]),
    ({"type": "example.com/custom"}, []),
])
def test_secret(obj, expected):
    obj = dict(obj, metadata=meta("s"))
    assert found("", "Secret", obj) == expected


def test_immutable_config_maps_and_secrets():
    old = {"metadata": meta("c", uid="u", resourceVersion="1"), "data": {"a": "1"}, "immutable": True}
    new = copy.deepcopy(old)
    new["data"]["a"] = "2"
    assert found_update("", "ConfigMap", new, old) == [
        ("data", "Forbidden: field is immutable when `immutable` is set")]
    new = copy.deepcopy(old)
    new["immutable"] = False
    assert found_update("", "ConfigMap", new, old) == [
        ("immutable", "Forbidden: field is immutable when `immutable` is set")]
    sold = {"metadata": meta("s", uid="u", resourceVersion="1"), "data": {"a": "MQ=="}, "immutable": True}
    snew = copy.deepcopy(sold)
    snew["data"]["a"] = "Mg=="
    snew["type"] = "example.com/other"
    assert found_update("", "Secret", snew, sold) == [
        ("type", 'Invalid value: "example.com/other": field is immutable'),
        ("data", "Forbidden: field is immutable when `immutable` is set")]


# ---- other kinds --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("group,kind,obj,expected", [
    ("", "Namespace", {"metadata": {"name": "ok"}, "spec": {"finalizers": ["bad one"]}},
     [("spec.finalizers", 'Invalid value: "bad one": ' + NAME_PART_ERR),
      ("spec.finalizers", 'Invalid value: "bad one": name is neither a standard finalizer name nor is it fully '
                          "qualified")]),
    ("", "ServiceAccount", {"metadata": meta("robot")}, []),
    ("", "PersistentVolumeClaim", {"metadata": meta("data"), "spec": {"resources": {"requests": {"storage": "0"}}}},
     [("spec.accessModes", "Required value: at least 1 access mode is required"),
      ("spec.resources[storage]", 'Invalid value: "0": must be greater than zero')]),
    ("", "PersistentVolumeClaim", {"metadata": meta("data"), "spec": {"accessModes": ["ReadWriteOncePod", "ReadOnlyMany"],
                                                                      "resources": {}}},
     [("spec.accessModes", "Forbidden: may not use ReadWriteOncePod with other access modes"),
      ("spec.resources[storage]", "Required value")]),
    ("", "ResourceQuota", {"metadata": meta("q"), "spec": {"hard": {"pods": "1.5", "cpu": "-1"}}},
     [("spec.hard[pods]", "Invalid value: 1500m: must be an integer"),
      ("spec.hard[cpu]", 'Invalid value: "-1": must be greater than or equal to 0')]),
    ("", "LimitRange", {"metadata": meta("l"), "spec": {"limits": [{"type": "Container", "min": {"cpu": "2"},
                                                                    "max": {"cpu": "1"}}]}},
     [("spec.limits[0].min[cpu]", "Invalid value: 2: min value 2 is greater than max value 1"),
      ("spec.limits[0].defaultRequest[cpu]", "Invalid value: 1: min value 2 is greater than default request value 1"),
      ("spec.limits[0].default[cpu]", "Invalid value: 2: min value 2 is greater than default value 1")]),
    ("", "Endpoints", {"metadata": meta("e"), "subsets": [{"ports": [{"port": 80}]}]},
     [("subsets[0]", "Required value: must specify `addresses` or `notReadyAddresses`")]),
    ("", "Event", {"metadata": meta("e.1"), "involvedObject": {"kind": "Pod", "namespace": "other"}},
     [("involvedObject.namespace", 'Invalid value: "other": does not match event.namespace')]),
    ("events.k8s.io", "Event", {"metadata": meta("e.1"), "eventTime": "2024-05-01T10:00:00.000000Z",
                                "reportingController": "example.com/ctl", "reportingInstance": "i",
                                "action": "Scale", "reason": "Scaled", "type": "Normal",
                                "regarding": {"kind": "Pod", "namespace": "default"}}, []),
    ("events.k8s.io", "Event", {"metadata": meta("e.1"), "regarding": {"namespace": "default"}, "type": "Info"},
     [("eventTime", "Required value"), ("type", 'Invalid value: "": has invalid value: Info')]),
    ("rbac.authorization.k8s.io", "Role", {"metadata": meta("r"), "rules": [
        {"resources": ["pods"]}, {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]},
     [("rules[0].verbs", "Required value: verbs must contain at least one value"),
      ("rules[0].apiGroups", "Required value: resource rules must supply at least one api group"),
      ("rules[1].nonResourceURLs", 'Invalid value: []string{"/healthz"}: namespaced rules cannot apply to '
                                   "non-resource URLs")]),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding", {"metadata": {"name": "b"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "sa"}, {"kind": "Robot", "name": "x"}]},
     [("roleRef.kind", 'Unsupported value: "Role": supported values: "ClusterRole"'),
      ("subjects[0].namespace", "Required value"),
      ("subjects[1].kind", 'Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"')]),
    ("coordination.k8s.io", "Lease", {"metadata": meta("l"), "spec": {"leaseDurationSeconds": 0,
                                                                     "leaseTransitions": -1}},
     [("spec.leaseDurationSeconds", "Invalid value: 0: must be greater than 0"),
      ("spec.leaseTransitions", "Invalid value: -1: must be greater than or equal to 0")]),
    ("policy", "PodDisruptionBudget", {"metadata": meta("p"), "spec": {"minAvailable": "50%", "maxUnavailable": 1}},
     [("spec", "Invalid value: policy.PodDisruptionBudgetSpec{...}: minAvailable and maxUnavailable cannot be both "
               "set")]),
    ("policy", "PodDisruptionBudget", {"metadata": meta("p"), "spec": {"minAvailable": -1,
                                                                      "selector": {"matchLabels": {"a": "b c"}}}},
     [("spec.minAvailable", "Invalid value: -1: must be greater than or equal to 0"),
      ("spec.selector.matchLabels", 'Invalid value: "b c": ' + LABEL_VALUE_ERR)]),
    ("discovery.k8s.io", "EndpointSlice", {"metadata": meta("s"), "addressType": "IPv4",
                                           "endpoints": [{"addresses": ["fd00::1"]}, {"addresses": []}],
                                           "ports": [{"port": 80, "protocol": "HTTP"}]},
     [("endpoints[0].addresses[0]", 'Invalid value: "fd00::1": must be a valid IPv4 address'),
      ("endpoints[1].addresses", "Required value: must contain at least 1 address"),
      ("ports[0].protocol", 'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"')]),
    ("apiextensions.k8s.io", "CustomResourceDefinition",
     {"metadata": {"name": "widgets.example.com"}, "spec": {"group": "example", "scope": "Namespaced",
                                                             "names": {"plural": "widgets", "kind": "Widget",
                                                                       "listKind": "WidgetList"},
                                                             "versions": [{"name": "v1", "storage": False}]}},
     [("metadata.name", 'Invalid value: "widgets.example.com": must be spec.names.plural+"."+spec.group'),
      ("spec.group", 'Invalid value: "example": should be a domain with at least one dot'),
      ("spec.versions", "Invalid value: []apiextensions.CustomResourceDefinitionVersion{...}: must have exactly one "
                        "version marked as storage version")]),
])
def test_other_kinds(group, kind, obj, expected):
    assert found(group, kind, obj) == expected


def test_role_binding_role_ref_is_immutable():
    old = {"metadata": meta("b", uid="u", resourceVersion="1"),
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "a"}}
    new = copy.deepcopy(old)
    new["roleRef"]["name"] = "b"
    assert found_update("rbac.authorization.k8s.io", "RoleBinding", new, old) == [
        ("roleRef", 'Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", Name:"b"}: '
                    "cannot change roleRef")]


def test_pvc_spec_is_immutable():
    old = {"metadata": meta("d", uid="u", resourceVersion="1"),
           "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    new = copy.deepcopy(old)
    new["spec"]["accessModes"] = ["ReadWriteMany"]
    got = found_update("", "PersistentVolumeClaim", new, old)
    assert len(got) == 1 and got[0][0] == "spec"
    assert got[0][1].startswith("Forbidden: spec is immutable after creation except resources.requests and "
                                "volumeAttributesClassName for bound claims\n")


def test_custom_resources_get_metadata_rules_only():
    cr = ResourceInfo("example.com", "v1", "Widget", "widgets", "widget", True, custom=True)
    assert causes_for_create(cr, {"metadata": {"name": "w", "namespace": "d"}, "spec": {"anything": -1}}) == []
    got = causes_for_create(cr, {"metadata": {"name": "W", "namespace": "d", "finalizers": ["cleanup"]}})
    assert [c["field"] for c in got] == ["metadata.name"]   # no core finalizer rule for custom resources


def test_update_raises():
    old = {"metadata": meta("c", uid="u", resourceVersion="1")}
    new = {"metadata": meta("c", uid="v", resourceVersion="1")}
    with pytest.raises(errors.APIError) as e:
        validate_update(info("", "ConfigMap"), new, old)
    assert e.value.message == 'ConfigMap "c" is invalid: metadata.uid: Invalid value: "v": field is immutable'


MALFORMED = [{}, {"metadata": None}, {"metadata": {"name": 5, "labels": "x", "annotations": [1]}},
             {"spec": None}, {"spec": []}, {"spec": {"containers": [None, 3, {"name": 1, "image": 2,
                                                                             "ports": "x", "env": {}}]}},
             {"spec": {"template": "x", "selector": [], "replicas": "3", "ports": [None], "schedule": 5}},
             {"data": [], "binaryData": 3, "subsets": [{}], "rules": [None], "roleRef": 1},
             {"spec": {"containers": [{"name": "a", "image": "b", "resources": {"limits": {"cpu": []}}}],
                       "volumes": [{"name": "v", "secret": "x"}], "tolerations": [3], "affinity": []}}]


@pytest.mark.parametrize("resource", [r for r in REG.resources()], ids=lambda r: f"{r.group}/{r.kind}")
def test_malformed_objects_yield_causes_not_crashes(resource):
    for bad in MALFORMED:
        obj = copy.deepcopy(bad)
        apply_defaults(resource, obj)
        causes_for_create(resource, obj)
        causes_for_update(resource, obj, copy.deepcopy(bad))


def test_wrong_types_are_reported():
    got = found("apps", "Deployment", {"metadata": meta("d"), "spec": {"replicas": "3", "selector": SEL,
                                                                       "template": tmpl()}})
    assert got == [("spec.replicas", 'Invalid value: "3": must be of type integer')]


def test_controller_revision_and_node():
    assert found("apps", "ControllerRevision", {"metadata": meta("r"), "revision": -1}) == [
        ("data", "Required value: data is mandatory"),
        ("revision", "Invalid value: -1: must be greater than or equal to 0")]
    node = {"metadata": {"name": "n1"}, "spec": {"taints": [{"key": "a", "effect": "NoRun"}, {"key": "b"}]}}
    assert found("", "Node", node) == [
        ("metadata.taints[0].effect", 'Unsupported value: "NoRun": supported values: "NoSchedule", '
                                      '"PreferNoSchedule", "NoExecute"'),
        ("metadata.taints[1].effect", "Required value")]
    old = {"metadata": {"name": "n1", "uid": "u", "resourceVersion": "1"}, "spec": {"podCIDRs": ["10.0.0.0/24"]}}
    new = copy.deepcopy(old)
    new["spec"]["podCIDRs"] = ["10.0.1.0/24"]
    assert found_update("", "Node", new, old) == [
        ("spec.podCIDRs", 'Forbidden: node updates may not change podCIDR except from "" to valid')]


@pytest.mark.parametrize("group,kind,obj", [
    ("apps", "Deployment", {"metadata": meta("web"), "spec": {"selector": SEL, "template": tmpl()}}),
    ("apps", "DaemonSet", {"metadata": meta("agent"), "spec": {"selector": SEL, "template": tmpl()}}),
    ("apps", "StatefulSet", {"metadata": meta("db"), "spec": {"selector": SEL, "template": tmpl(),
                                                             "serviceName": "db"}}),
    ("", "Service", svc()),
    ("", "Namespace", {"metadata": {"name": "team-a"}}),
    ("", "ConfigMap", {"metadata": meta("c"), "data": {"app.properties": "a=b"}}),
    ("", "Secret", {"metadata": meta("s"), "stringData": {"password": "x"}}),
    ("", "ServiceAccount", {"metadata": meta("robot")}),
    ("", "PersistentVolumeClaim", {"metadata": meta("d"), "spec": {"accessModes": ["ReadWriteOnce"],
                                                                   "resources": {"requests": {"storage": "1Gi"}}}}),
    ("", "Endpoints", {"metadata": meta("web"), "subsets": [{"addresses": [{"ip": "10.1.2.3"}],
                                                            "ports": [{"port": 80}]}]}),
    ("", "LimitRange", {"metadata": meta("l"), "spec": {"limits": [{"type": "Container",
                                                                    "default": {"cpu": "500m"}}]}}),
    ("", "ResourceQuota", {"metadata": meta("q"), "spec": {"hard": {"pods": "10", "requests.cpu": "4"}}}),
    ("coordination.k8s.io", "Lease", {"metadata": meta("l"), "spec": {"holderIdentity": "me",
                                                                     "leaseDurationSeconds": 15}}),
    ("policy", "PodDisruptionBudget", {"metadata": meta("p"), "spec": {"minAvailable": "50%", "selector": SEL}}),
    ("rbac.authorization.k8s.io", "ClusterRole", {"metadata": {"name": "view"}, "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}),
    ("rbac.authorization.k8s.io", "RoleBinding", {"metadata": meta("b"), "roleRef": {"kind": "ClusterRole",
                                                                                     "name": "view"},
                                                  "subjects": [{"kind": "ServiceAccount", "name": "robot"}]}),
    ("discovery.k8s.io", "EndpointSlice", {"metadata": meta("web-1"), "addressType": "IPv4",
                                           "endpoints": [{"addresses": ["10.1.2.3"]}], "ports": [{"port": 80}]}),
])
def test_typical_objects_are_valid(group, kind, obj):
    obj = _defaulted(group, kind, obj)
    validate_create(info(group, kind), obj)
