"""Kubernetes protobuf request bodies: the field table, the decoder and real kubectl bodies.

Fixtures under ``fixtures/protobuf`` were captured from kubectl 1.37 talking to a
throwaway loopback HTTP server: ``<name>.pb`` is the exact POST/DELETE body kubectl
sent, ``<name>.json`` is what ``kubectl <same command> --dry-run=client -o json``
printed for the same object (kubectl's own JSON of it); ``*.body.json`` are bodies
kubectl sends as JSON (``run``, ``expose``, the drain Eviction).
"""
from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from skube.api import protobuf as pb
from skube.api.errors import APIError
from skube.api.protobuf_fields import MESSAGES
from skube.api.schema import definitions, gvk_index

FIXTURES = Path(__file__).parent / "fixtures" / "protobuf"

SPECIAL = {
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
    "io.k8s.apimachinery.pkg.api.resource.Quantity",
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
}

GROUPS = {  # the API groups kubectl's typed commands and controllers use
    ("", "v1"), ("apps", "v1"), ("batch", "v1"), ("rbac.authorization.k8s.io", "v1"),
    ("policy", "v1"), ("coordination.k8s.io", "v1"), ("discovery.k8s.io", "v1"),
    ("events.k8s.io", "v1"), ("networking.k8s.io", "v1"), ("scheduling.k8s.io", "v1"),
    ("autoscaling", "v1"), ("autoscaling", "v2"), ("authentication.k8s.io", "v1"),
}


# --------------------------------------------------------------------------- helpers

def _ref(schema: dict) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def _reachable(roots) -> set[str]:
    defs = definitions()
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        for prop in defs[name].get("properties", {}).values():
            for s in (prop, prop.get("items", {}), prop.get("additionalProperties") or {}):
                if isinstance(s, dict):
                    r = _ref(s) or _ref(s.get("items", {}))
                    if r:
                        stack.append(r)
    return seen


def _root_definitions() -> set[str]:
    idx = gvk_index()
    roots = {name for (g, v, _k), name in idx.items() if (g, v) in GROUPS}
    roots.add("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")
    return roots


def _covered_names(message: str) -> set[str]:
    out = set()
    for entry in MESSAGES[message].values():
        if entry.startswith("="):
            out |= _covered_names(entry[1:])
        else:
            out.add(entry.rstrip("!?~"))
    return out


def _strip_null_collections(obj, definition: str):
    """kubectl's JSON writes nil slices/maps without omitempty as ``null``; protobuf
    cannot carry that (an empty repeated field is just absent)."""
    schema = definitions()[definition]
    props = schema.get("properties", {})
    out = {}
    for k, v in obj.items():
        p = props.get(k, {})
        t = p.get("type")
        t = [x for x in t if x != "null"][0] if isinstance(t, list) and len(t) > 1 else t
        if v is None and (t == "array" or (t == "object" and "additionalProperties" in p)):
            continue
        ref = _ref(p)
        items = _ref(p.get("items", {}))
        if isinstance(v, dict) and ref and ref not in SPECIAL:
            v = _strip_null_collections(v, ref)
        elif isinstance(v, list) and items and items not in SPECIAL:
            v = [_strip_null_collections(x, items) if isinstance(x, dict) else x for x in v]
        out[k] = v
    return out


def _definition_of(obj: dict) -> str:
    return pb.definition_name(obj["apiVersion"], obj["kind"])


def roundtrip(obj: dict) -> dict:
    data = pb.encode(obj)
    assert data[:4] == pb.MAGIC
    return pb.decode(data)


def _field(num: int, wt: int, payload: bytes | int) -> bytes:
    key = pb._enc_varint(num << 3 | wt)
    if wt == 0:
        return key + pb._enc_varint(payload)
    return key + pb._enc_varint(len(payload)) + payload


def _envelope(api_version: str, kind: str, raw: bytes, **extra: bytes) -> bytes:
    tm = _field(1, 2, api_version.encode()) + _field(2, 2, kind.encode())
    body = _field(1, 2, tm) + _field(2, 2, raw)
    for num, val in extra.items():
        body += _field({"encoding": 3, "ctype": 4}[num], 2, val)
    return pb.MAGIC + body


# --------------------------------------------------------------------------- the table

def test_every_entry_names_a_real_property():
    defs = definitions()
    inline_owners: dict[str, set[str]] = {}
    for message, table in MESSAGES.items():
        for entry in table.values():
            if entry.startswith("="):
                inline_owners.setdefault(entry[1:], set()).add(message)

    def owners(message: str) -> set[str]:
        """The OpenAPI definitions whose JSON objects hold this message's fields."""
        if message in defs and message not in inline_owners:
            return {message}
        out = set()
        for parent in inline_owners.get(message, ()):
            out |= owners(parent)
        return out

    checked = 0
    for message, table in MESSAGES.items():
        assert message in defs or message in inline_owners, f"{message}: unknown message"
        assert message not in SPECIAL
        own = owners(message)
        assert own, message
        names = []
        for num, entry in table.items():
            assert isinstance(num, int) and 0 < num < 1 << 29
            if entry.startswith("="):
                assert entry[1:] in MESSAGES, f"{message}.{num}: {entry}"
                continue
            name = entry.rstrip("!?~")
            assert len(entry) - len(name) <= 1, entry
            names.append(name)
            for owner in own:
                props = defs[owner].get("properties", {})
                assert name in props, f"{message} field {num} {name!r} is not a property of {owner}"
                checked += 1
        assert len(names) == len(set(names)), f"{message}: duplicate JSON names"
    assert checked > 2500


def test_kinds_of_the_typed_commands_are_fully_covered():
    roots = _root_definitions()
    for kind in ("ConfigMap", "Secret", "Namespace", "Service", "ServiceAccount", "ResourceQuota",
                 "Pod", "Binding", "Node", "Endpoints", "Event", "PersistentVolumeClaim"):
        assert ("", "v1", kind) in gvk_index()
    reachable = _reachable(roots)
    assert {"io.k8s.api.core.v1.PodSpec", "io.k8s.api.policy.v1.Eviction",
            "io.k8s.api.authentication.v1.TokenRequest", "io.k8s.api.autoscaling.v1.Scale",
            "io.k8s.api.core.v1.Binding", "io.k8s.api.batch.v1.CronJob",
            "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
            "io.k8s.api.coordination.v1.Lease", "io.k8s.api.discovery.v1.EndpointSlice",
            "io.k8s.api.events.v1.Event", "io.k8s.api.networking.v1.Ingress",
            "io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry"} <= reachable
    missing = []
    for name in sorted(reachable - SPECIAL):
        if name not in MESSAGES:
            missing.append(name)
            continue
        props = set(definitions()[name].get("properties", {})) - {"apiVersion", "kind"}
        uncovered = props - _covered_names(name)
        if uncovered:
            missing.append(f"{name}: {sorted(uncovered)}")
    assert not missing, missing


def test_every_covered_message_compiles_to_a_plan():
    for name in sorted(_reachable(_root_definitions()) - SPECIAL):
        plan = pb._root_plan(name)
        bad = [f[2] for f in plan.values() if f[1] == pb.BAD]
        assert not bad, bad


def test_definition_name():
    assert pb.definition_name("apps/v1", "Deployment") == "io.k8s.api.apps.v1.Deployment"
    assert pb.definition_name("v1", "Pod") == "io.k8s.api.core.v1.Pod"
    assert pb.definition_name("policy/v1", "Eviction") == "io.k8s.api.policy.v1.Eviction"
    assert pb.definition_name("v1", "DeleteOptions") == \
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
    assert pb.definition_name("example.com/v1", "Widget") is None
    # CRDs and APIServices are served to kubectl as JSON only
    assert pb.definition_name("apiextensions.k8s.io/v1", "CustomResourceDefinition") is None


# --------------------------------------------------------------------------- real kubectl bodies

CAPTURED = sorted(p.stem for p in FIXTURES.glob("*.pb") if (FIXTURES / f"{p.stem}.json").exists())


def test_fixtures_are_present():
    for name in ("create-configmap", "create-secret-generic", "create-namespace",
                 "create-deployment", "create-job", "create-cronjob",
                 "create-service-clusterip", "create-token", "autoscale", "create-ingress"):
        assert (FIXTURES / f"{name}.pb").exists(), name
    assert len(CAPTURED) >= 25


@pytest.mark.parametrize("name", CAPTURED)
def test_kubectl_protobuf_bodies_decode_to_kubectls_json(name):
    body = (FIXTURES / f"{name}.pb").read_bytes()
    assert body[:4] == pb.MAGIC
    expected = json.loads((FIXTURES / f"{name}.json").read_text())
    got = pb.decode(body)
    assert got == _strip_null_collections(expected, _definition_of(expected))
    # and our encoder produces something that decodes the same
    assert roundtrip(got) == got


def test_kubectl_configmap_with_binary_file():
    got = pb.decode((FIXTURES / "create-configmap.pb").read_bytes())
    assert got == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-config"},
                   "data": {"a": "b", "greeting": "hello world"},
                   "binaryData": {"blob.bin": base64.b64encode(b"bin\x00\x01\x02\xff\xfeary").decode()}}


def test_kubectl_secret_generic():
    got = pb.decode((FIXTURES / "create-secret-generic.pb").read_bytes())
    assert got["type"] == "Opaque"
    assert {k: base64.b64decode(v) for k, v in got["data"].items()} == {
        "username": b"admin", "password": b"s3cr3t!", "key.bin": b"bin\x00\x01\x02\xff\xfeary"}


def test_kubectl_deployment_keeps_zero_replicas_and_drops_go_zero_values():
    got = pb.decode((FIXTURES / "create-deployment-zero.pb").read_bytes())
    assert got["spec"]["replicas"] == 0  # *int32: present zero is meaningful
    meta = got["metadata"]
    # Go writes namespace "", generation 0, an empty creationTimestamp...: all unset
    assert meta == {"name": "idle", "labels": {"app": "idle"}}
    container = got["spec"]["template"]["spec"]["containers"][0]
    assert "stdin" not in container and "imagePullPolicy" not in container
    assert container["resources"] == {}


def test_kubectl_service_ports_intorstring():
    got = pb.decode((FIXTURES / "create-service-clusterip.pb").read_bytes())
    assert got["spec"]["ports"] == [
        {"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080},
        {"name": "443-8443", "port": 443, "protocol": "TCP", "targetPort": 8443}]
    got = pb.decode((FIXTURES / "create-service-nodeport.pb").read_bytes())
    assert got["spec"]["ports"][0]["targetPort"] == "http"
    assert got["spec"]["ports"][0]["nodePort"] == 30080


def test_kubectl_priorityclass_zero_value_is_kept():
    got = pb.decode((FIXTURES / "create-priorityclass-zero.pb").read_bytes())
    assert got["value"] == 0  # `json:"value"` without omitempty: JSON always carries it


def test_kubectl_token_request():
    got = pb.decode((FIXTURES / "create-token.pb").read_bytes())
    assert got == {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "metadata": {},
        "spec": {"audiences": ["api", "vault"], "expirationSeconds": 600,
                 "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "nginx",
                                    "uid": "1234"}},
        "status": {"token": "", "expirationTimestamp": None},
    }


def test_kubectl_drain_delete_options_grace_period_zero():
    got = pb.decode((FIXTURES / "drain-delete-options.pb").read_bytes())
    assert got == {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0}


@pytest.mark.parametrize("name", ["run", "expose", "drain-eviction"])
def test_kubectl_json_bodies_roundtrip(name):
    obj = json.loads((FIXTURES / f"{name}.body.json").read_text())
    assert roundtrip(obj) == obj


# --------------------------------------------------------------------------- round trips

FULL_DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {
        "name": "web", "namespace": "prod", "uid": "5a0b7d3e-1c5f-4c1e-9d0a-1b2c3d4e5f60",
        "resourceVersion": "12345", "generation": 7,
        "creationTimestamp": "2024-05-06T07:08:09Z",
        "labels": {"app": "web", "tier": "frontend"},
        "annotations": {"deployment.kubernetes.io/revision": "3", "note": "ünïcødé ✓"},
        "ownerReferences": [{"apiVersion": "example.com/v1", "kind": "App", "name": "web",
                             "uid": "0f0e0d0c", "controller": True, "blockOwnerDeletion": False}],
        "finalizers": ["example.com/cleanup"],
        "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update",
                           "apiVersion": "apps/v1", "time": "2024-05-06T07:08:09Z",
                           "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:spec": {"f:replicas": {}}}}],
    },
    "spec": {
        "replicas": 3, "revisionHistoryLimit": 0, "progressDeadlineSeconds": 600,
        "minReadySeconds": 5, "paused": True,
        "selector": {"matchLabels": {"app": "web"},
                     "matchExpressions": [{"key": "tier", "operator": "In",
                                           "values": ["frontend", "edge"]}]},
        "strategy": {"type": "RollingUpdate",
                     "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
        "template": {
            "metadata": {"labels": {"app": "web", "tier": "frontend"},
                         "annotations": {"prometheus.io/scrape": "true"}},
            "spec": {
                "serviceAccountName": "web", "automountServiceAccountToken": False,
                "terminationGracePeriodSeconds": 0, "restartPolicy": "Always",
                "dnsPolicy": "ClusterFirst", "priority": -5, "enableServiceLinks": False,
                "nodeSelector": {"kubernetes.io/os": "linux"},
                "imagePullSecrets": [{"name": "regcred"}],
                "securityContext": {"runAsUser": 0, "runAsNonRoot": False, "fsGroup": 2000,
                                    "supplementalGroups": [1000, 3000],
                                    "seccompProfile": {"type": "RuntimeDefault"},
                                    "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]},
                "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["a.local", "b.local"]}],
                "affinity": {
                    "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [
                            {"key": "topology.kubernetes.io/zone", "operator": "In",
                             "values": ["eu-1a", "eu-1b"]}]}]}},
                    "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 100, "podAffinityTerm": {
                            "labelSelector": {"matchLabels": {"app": "web"}},
                            "topologyKey": "kubernetes.io/hostname",
                            "namespaces": ["prod"]}}]},
                },
                "tolerations": [
                    {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                     "effect": "NoExecute", "tolerationSeconds": 300},
                    {"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}],
                "topologySpreadConstraints": [
                    {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                     "whenUnsatisfiable": "ScheduleAnyway",
                     "labelSelector": {"matchLabels": {"app": "web"}}, "minDomains": 2}],
                "initContainers": [{"name": "init", "image": "busybox:1.36",
                                    "command": ["sh", "-c", "echo init"], "resources": {},
                                    "restartPolicy": "Always"}],
                "containers": [{
                    "name": "app", "image": "registry.example.com/web:1.2.3",
                    "imagePullPolicy": "IfNotPresent", "workingDir": "/srv",
                    "command": ["/bin/web"], "args": ["--port=8080", "--verbose"],
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                              {"name": "metrics", "containerPort": 9090, "hostPort": 19090,
                               "protocol": "UDP", "hostIP": "0.0.0.0"}],
                    "env": [
                        {"name": "MODE", "value": "production"},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {
                            "apiVersion": "v1", "fieldPath": "metadata.name"}}},
                        {"name": "CPU_LIMIT", "valueFrom": {"resourceFieldRef": {
                            "containerName": "app", "resource": "limits.cpu", "divisor": "1m"}}},
                        {"name": "DB_HOST", "valueFrom": {"configMapKeyRef": {
                            "name": "db", "key": "host", "optional": False}}},
                        {"name": "DB_PASS", "valueFrom": {"secretKeyRef": {
                            "name": "db", "key": "password", "optional": True}}}],
                    "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "web-config"}},
                                {"secretRef": {"name": "web-secret", "optional": True}}],
                    "resources": {"limits": {"cpu": "500m", "memory": "256Mi"},
                                  "requests": {"cpu": "100m", "memory": "128Mi",
                                               "ephemeral-storage": "1Gi"}},
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/web", "readOnly": True},
                                     {"name": "cache", "mountPath": "/cache", "subPath": "web"}],
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http",
                                                  "scheme": "HTTP",
                                                  "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
                                      "initialDelaySeconds": 10, "periodSeconds": 5,
                                      "failureThreshold": 3, "terminationGracePeriodSeconds": 0},
                    "readinessProbe": {"tcpSocket": {"port": 8080}, "timeoutSeconds": 2,
                                       "successThreshold": 1},
                    "startupProbe": {"exec": {"command": ["cat", "/tmp/ready"]}},
                    "lifecycle": {"preStop": {"sleep": {"seconds": 5}},
                                  "postStart": {"exec": {"command": ["touch", "/tmp/started"]}}},
                    "securityContext": {"allowPrivilegeEscalation": False, "privileged": False,
                                        "readOnlyRootFilesystem": True, "runAsUser": 1000,
                                        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                    "stdin": True, "tty": True,
                }],
                "volumes": [
                    {"name": "config", "configMap": {"name": "web-config", "defaultMode": 420,
                                                     "items": [{"key": "a", "path": "a.conf",
                                                                "mode": 256}]}},
                    {"name": "secret", "secret": {"secretName": "web-secret", "defaultMode": 0,
                                                  "optional": False}},
                    {"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
                    {"name": "data", "persistentVolumeClaim": {"claimName": "data",
                                                               "readOnly": True}},
                    {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
                    {"name": "token", "projected": {"sources": [
                        {"serviceAccountToken": {"audience": "vault", "expirationSeconds": 3600,
                                                 "path": "token"}},
                        {"downwardAPI": {"items": [{"path": "labels", "fieldRef": {
                            "fieldPath": "metadata.labels"}}]}}]}},
                ],
            },
        },
    },
    "status": {
        "observedGeneration": 7, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
        "availableReplicas": 3,
        "conditions": [{"type": "Available", "status": "True",
                        "lastUpdateTime": "2024-05-06T07:09:00Z",
                        "lastTransitionTime": "2024-05-06T07:09:00Z",
                        "reason": "MinimumReplicasAvailable",
                        "message": "Deployment has minimum availability."}],
    },
}

SECRET = {
    "apiVersion": "v1", "kind": "Secret",
    "metadata": {"name": "tls", "namespace": "default"},
    "type": "kubernetes.io/tls", "immutable": False,
    "data": {"tls.crt": base64.b64encode(bytes(range(256))).decode(),
             "tls.key": base64.b64encode(b"\x00\xff\x10binary").decode(),
             "empty": ""},
    "stringData": {"note": "written as text"},
}

CRONJOB = {
    "apiVersion": "batch/v1", "kind": "CronJob",
    "metadata": {"name": "nightly", "namespace": "ops"},
    "spec": {
        "schedule": "0 3 * * *", "timeZone": "Europe/Berlin", "concurrencyPolicy": "Forbid",
        "suspend": False, "startingDeadlineSeconds": 120,
        "successfulJobsHistoryLimit": 0, "failedJobsHistoryLimit": 1,
        "jobTemplate": {
            "metadata": {"labels": {"job": "nightly"}},
            "spec": {
                "backoffLimit": 0, "completions": 1, "parallelism": 1,
                "activeDeadlineSeconds": 3600, "ttlSecondsAfterFinished": 86400,
                "completionMode": "NonIndexed",
                "podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {
                    "operator": "In", "values": [42, 43]}}]},
                "template": {"spec": {
                    "restartPolicy": "OnFailure",
                    "containers": [{"name": "backup", "image": "backup:2",
                                    "args": ["--all"], "resources": {}}]}},
            },
        },
    },
    "status": {"lastScheduleTime": "2024-01-01T03:00:00Z", "active": [
        {"kind": "Job", "namespace": "ops", "name": "nightly-28400000", "uid": "u1",
         "apiVersion": "batch/v1", "resourceVersion": "9"}]},
}

SERVICE = {
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
        "type": "LoadBalancer", "selector": {"app": "web"},
        "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP",
                   "appProtocol": "http"},
                  {"name": "https", "port": 443, "targetPort": 8443, "nodePort": 30443,
                   "protocol": "TCP"}],
        "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10", "fd00::10"],
        "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack",
        "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
        "externalTrafficPolicy": "Local", "healthCheckNodePort": 31000,
        "allocateLoadBalancerNodePorts": False, "loadBalancerSourceRanges": ["10.0.0.0/8"],
    },
    "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1", "ipMode": "VIP",
                                             "ports": [{"port": 80, "protocol": "TCP"}]}]}},
}

OTHERS = [
    {"apiVersion": "policy/v1", "kind": "Eviction",
     "metadata": {"name": "web-0", "namespace": "prod"},
     "deleteOptions": {"gracePeriodSeconds": 0, "propagationPolicy": "Foreground",
                       "preconditions": {"uid": "abc", "resourceVersion": "7"},
                       "dryRun": ["All"]}},
    {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 30,
     "orphanDependents": False},
    {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "metadata": {},
     "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600,
              "boundObjectRef": {"kind": "Secret", "apiVersion": "v1", "name": "s", "uid": "u"}},
     "status": {"token": "eyJhbGciOi", "expirationTimestamp": "2030-01-02T03:04:05Z"}},
    {"apiVersion": "autoscaling/v1", "kind": "Scale",
     "metadata": {"name": "web", "namespace": "prod"},
     "spec": {"replicas": 5}, "status": {"replicas": 3, "selector": "app=web"}},
    {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web-0", "namespace": "prod"},
     "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
     "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {}}],
              "overhead": {"cpu": "250m"}},
     "status": {"phase": "Running", "podIP": "10.1.2.3", "podIPs": [{"ip": "10.1.2.3"}],
                "startTime": "2024-01-01T00:00:00Z",
                "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0,
                                       "image": "busybox", "imageID": "sha256:abc",
                                       "started": True,
                                       "state": {"running": {"startedAt": "2024-01-01T00:00:01Z"}},
                                       "lastState": {"terminated": {
                                           "exitCode": 137, "signal": 9,
                                           "reason": "OOMKilled",
                                           "startedAt": "2023-12-31T23:00:00Z",
                                           "finishedAt": "2023-12-31T23:59:59Z"}}}]}},
    {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
     "spec": {"hard": {"cpu": "2", "memory": "1Gi", "pods": "10"}, "scopes": ["NotBestEffort"],
              "scopeSelector": {"matchExpressions": [{"scopeName": "PriorityClass",
                                                      "operator": "In", "values": ["high"]}]}}},
    {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
     "metadata": {"name": "kube-scheduler", "namespace": "kube-system"},
     "spec": {"holderIdentity": "node-1_abc", "leaseDurationSeconds": 15, "leaseTransitions": 0,
              "acquireTime": "2024-05-06T07:08:09.123456Z",
              "renewTime": "2024-05-06T07:08:19.000001Z"}},
    {"apiVersion": "events.k8s.io/v1", "kind": "Event",
     "metadata": {"name": "e1", "namespace": "default"},
     "eventTime": "2024-05-06T07:08:09.500000Z", "reportingController": "skube",
     "reportingInstance": "skube-1", "action": "Scheduled", "reason": "Scheduled",
     "type": "Normal", "note": "assigned", "regarding": {"kind": "Pod", "name": "p"},
     "series": {"count": 2, "lastObservedTime": "2024-05-06T07:09:09.000000Z"},
     "deprecatedCount": 2, "deprecatedFirstTimestamp": None},
    {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
     "metadata": {"name": "web-abc", "labels": {"kubernetes.io/service-name": "web"}},
     "addressType": "IPv4",
     "endpoints": [{"addresses": ["10.1.2.3"], "conditions": {"ready": True, "serving": True,
                                                              "terminating": False},
                    "nodeName": "node-1", "targetRef": {"kind": "Pod", "name": "p"}}],
     "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]},
    {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "web-1"},
     "revision": 1, "data": {"spec": {"template": {"metadata": {"labels": {"a": "b"}}}}}},
    {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
     "metadata": {"name": "web"},
     "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
              "minReplicas": 1, "maxReplicas": 10,
              "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                  "type": "Utilization", "averageUtilization": 80}}},
                  {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {
                      "type": "AverageValue", "averageValue": "1k"}}}],
              "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300,
                                         "selectPolicy": "Max", "tolerance": "50m",
                                         "policies": [{"type": "Percent", "value": 10,
                                                       "periodSeconds": 60}]}}}},
    {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
     "spec": {"ingressClassName": "nginx",
              "defaultBackend": {"service": {"name": "def", "port": {"number": 80}}},
              "tls": [{"hosts": ["foo.com"], "secretName": "cert"}],
              "rules": [{"host": "foo.com", "http": {"paths": [
                  {"path": "/bar", "pathType": "Prefix",
                   "backend": {"service": {"name": "svc", "port": {"name": "http"}}}}]}}]}},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
     "metadata": {"name": "view"},
     "rules": [{"apiGroups": ["", "apps"], "resources": ["pods", "deployments"],
                "verbs": ["get", "list", "watch"]},
               {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}],
     "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "true"}}]}},
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "empty-values"},
     "data": {"empty": "", "x": "y"}, "binaryData": {"b": ""}, "immutable": True},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"},
     "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}},
]


@pytest.mark.parametrize("obj", [FULL_DEPLOYMENT, SECRET, CRONJOB, SERVICE, *OTHERS],
                         ids=lambda o: o["kind"])
def test_roundtrip(obj):
    assert roundtrip(obj) == obj


def test_deployment_intorstring_and_pointer_zeros():
    got = roundtrip(FULL_DEPLOYMENT)
    spec = got["spec"]
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": 0}
    assert spec["revisionHistoryLimit"] == 0
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 0
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsUser"] == 0
    assert pod["priority"] == -5
    c = pod["containers"][0]
    assert c["livenessProbe"]["httpGet"]["port"] == "http"
    assert c["readinessProbe"]["tcpSocket"]["port"] == 8080
    assert c["env"][2]["valueFrom"]["resourceFieldRef"]["divisor"] == "1m"
    assert pod["volumes"][1]["secret"]["defaultMode"] == 0


def test_scale_replicas_zero_is_omitempty_like_json():
    # ScaleSpec.replicas is a plain int32 with omitempty: 0 is "unset" in JSON as well
    obj = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"},
           "spec": {"replicas": 0}}
    assert roundtrip(obj)["spec"] == {}


def test_zero_values_written_by_go_are_unset():
    """Go's marshaller writes every non-pointer field; zeros of omitempty ones are unset."""
    meta = (_field(1, 2, b"cm") + _field(2, 2, b"") + _field(3, 2, b"") + _field(4, 2, b"")
            + _field(5, 2, b"") + _field(6, 2, b"") + _field(7, 0, 0) + _field(8, 2, b""))
    raw = _field(1, 2, meta) + _field(4, 0, 0)  # immutable: *bool false -> kept
    got = pb.decode(_envelope("v1", "ConfigMap", raw))
    assert got == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"},
                   "immutable": False}


def test_non_omitempty_zero_is_kept():
    # ContainerPort.containerPort is `json:"containerPort"`: 0 stays, as in JSON
    port = _field(1, 2, b"") + _field(2, 0, 0) + _field(3, 0, 0) + _field(4, 2, b"TCP")
    container = _field(1, 2, b"c") + _field(6, 2, port)
    spec = _field(2, 2, container)
    got = pb.decode(_envelope("v1", "Pod", _field(2, 2, spec)))
    assert got["spec"]["containers"] == [{"name": "c", "ports": [
        {"containerPort": 0, "protocol": "TCP"}]}]


def test_empty_env_value_matches_json():
    # EnvVar.value is omitempty: "" is the same as unset in JSON too
    env = _field(1, 2, b"EMPTY") + _field(2, 2, b"")
    container = _field(1, 2, b"c") + _field(7, 2, env)
    got = pb.decode(_envelope("v1", "Pod", _field(2, 2, _field(2, 2, container))))
    assert got["spec"]["containers"][0]["env"] == [{"name": "EMPTY"}]


def test_packed_and_unpacked_repeated_ints():
    unpacked = _field(4, 0, 1000) + _field(4, 0, 3000)
    packed = _field(4, 2, pb._enc_varint(1000) + pb._enc_varint(3000))
    for sc in (unpacked, packed):
        got = pb.decode(_envelope("v1", "Pod", _field(2, 2, _field(14, 2, sc))))
        assert got["spec"]["securityContext"]["supplementalGroups"] == [1000, 3000]


def test_negative_int32_is_ten_byte_varint():
    raw = _field(2, 2, _field(25, 0, (-7) & (2 ** 64 - 1)))
    assert pb.decode(_envelope("v1", "Pod", raw))["spec"]["priority"] == -7


def test_unknown_fields_are_skipped():
    raw = _field(1, 2, _field(1, 2, b"x") + _field(999, 0, 5) + _field(998, 2, b"zz"))
    raw += pb._enc_varint(77 << 3 | 5) + b"\x00\x00\x00\x00"
    raw += pb._enc_varint(78 << 3 | 1) + b"\x00" * 8
    assert pb.decode(_envelope("v1", "ConfigMap", raw)) == {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}


def test_repeated_message_field_merges():
    # proto2: a non-repeated message field seen twice is merged
    raw = _field(1, 2, _field(1, 2, b"x")) + _field(1, 2, _field(3, 2, b"ns"))
    assert pb.decode(_envelope("v1", "ConfigMap", raw))["metadata"] == {"name": "x",
                                                                       "namespace": "ns"}


def test_map_entry_without_value():
    raw = _field(2, 2, _field(1, 2, b"k"))
    assert pb.decode(_envelope("v1", "ConfigMap", raw))["data"] == {"k": ""}


# --------------------------------------------------------------------------- special types

def test_time_formats():
    t = pb._dec_time
    assert t(b"", 0, 0) is None
    assert t(_field(1, 0, 0), 0, 2) == "1970-01-01T00:00:00Z"
    data = _field(1, 0, 1714979289) + _field(2, 0, 999)
    assert t(data, 0, len(data)) == "2024-05-06T07:08:09Z"
    data = _field(1, 0, (-86400) & (2 ** 64 - 1))
    assert t(data, 0, len(data)) == "1969-12-31T00:00:00Z"
    data = _field(1, 0, 1714979289) + _field(2, 0, 123456789)
    assert pb._dec_microtime(data, 0, len(data)) == "2024-05-06T07:08:09.123456Z"
    assert pb._dec_microtime(b"", 0, 0) is None


def test_time_encoding_keeps_nanos():
    assert pb._parse_time("2024-05-06T07:08:09.123456789Z") == (1714979289, 123456789)
    assert pb._parse_time("2024-05-06T09:08:09+02:00") == (1714979289, 0)


@pytest.mark.parametrize("ns,text", [
    (0, "0s"), (1, "1ns"), (1500, "1.5µs"), (1_500_000, "1.5ms"), (1_000_000_000, "1s"),
    (90 * 10 ** 9, "1m30s"), (3600 * 10 ** 9, "1h0m0s"), (3_723_500_000_000, "1h2m3.5s"),
    (-120_500_000_000, "-2m0.5s"), (999_999_999, "999.999999ms"),
])
def test_duration(ns, text):
    assert pb.format_duration(ns) == text
    assert pb.parse_duration(text) == ns
    data = _field(1, 0, ns & (2 ** 64 - 1))
    assert pb._dec_duration(data, 0, len(data)) == text


def test_quantity_and_intorstring():
    assert pb._dec_quantity(b"", 0, 0) == "0"
    q = _field(1, 2, b"1500m")
    assert pb._dec_quantity(q, 0, len(q)) == "1500m"
    assert pb._dec_intorstring(b"", 0, 0) == 0
    s = _field(1, 0, 1) + _field(3, 2, b"50%")
    assert pb._dec_intorstring(s, 0, len(s)) == "50%"
    i = _field(1, 0, 0) + _field(2, 0, (-3) & (2 ** 64 - 1))
    assert pb._dec_intorstring(i, 0, len(i)) == -3


def test_raw_extension_with_embedded_protobuf():
    inner = pb.encode({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    raw = _field(1, 2, _field(1, 2, b"web-1")) + _field(2, 2, _field(1, 2, inner))
    got = pb.decode(_envelope("apps/v1", "ControllerRevision", raw))
    assert got["data"] == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}


def test_embedded_json_content_type():
    body = _envelope("v1", "ConfigMap", b'{"metadata":{"name":"j"},"data":{"a":"b"}}',
                     ctype=b"application/json")
    assert pb.decode(body) == {"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": "j"}, "data": {"a": "b"}}


# --------------------------------------------------------------------------- errors

def _error(body: bytes) -> APIError:
    with pytest.raises(APIError) as exc:
        pb.decode(body)
    return exc.value


def test_missing_magic_is_bad_request():
    e = _error(b'{"kind":"ConfigMap"}')
    assert (e.code, e.reason) == (400, "BadRequest")
    assert "k8s" in e.message


@pytest.mark.parametrize("cut", [5, 10, 20, 40, 60, 100])
def test_truncated_body_is_bad_request(cut):
    body = pb.encode(FULL_DEPLOYMENT)
    e = _error(body[:cut])
    assert e.code == 400 and e.reason == "BadRequest"


def test_every_truncation_fails_cleanly():
    body = (FIXTURES / "create-deployment.pb").read_bytes()
    for cut in range(4, len(body)):
        try:
            pb.decode(body[:cut])
        except APIError as e:
            assert e.code == 400
        # some prefixes are themselves valid messages (a field boundary): fine


def test_garbage_never_crashes():
    import random
    rnd = random.Random(7)
    base = (FIXTURES / "create-deployment.pb").read_bytes()
    for _ in range(500):
        b = bytearray(base)
        for _ in range(rnd.randint(1, 4)):
            b[rnd.randrange(4, len(b))] = rnd.randrange(256)
        try:
            pb.decode(bytes(b))
        except APIError as e:
            assert e.code in (400, 415)


def test_wrong_wire_type_is_bad_request():
    raw = _field(1, 0, 5)  # metadata as a varint
    e = _error(_envelope("v1", "ConfigMap", raw))
    assert e.code == 400 and "metadata" in e.message


def test_invalid_utf8_is_bad_request():
    raw = _field(1, 2, _field(1, 2, b"\xff\xfe"))
    e = _error(_envelope("v1", "ConfigMap", raw))
    assert e.code == 400 and "UTF-8" in e.message


def test_unknown_kind_is_unsupported_media_type():
    e = _error(_envelope("example.com/v1", "Widget", b""))
    assert (e.code, e.reason) == (415, "UnsupportedMediaType")
    assert "Widget" in e.message
    e = _error(_envelope("apiextensions.k8s.io/v1", "CustomResourceDefinition", b""))
    assert e.code == 415


def test_missing_kind_is_bad_request():
    e = _error(pb.MAGIC + _field(2, 2, b""))
    assert e.code == 400 and "Kind" in e.message


def test_content_encoding_is_unsupported():
    e = _error(_envelope("v1", "ConfigMap", b"", encoding=b"gzip"))
    assert e.code == 415


# --------------------------------------------------------------------------- speed

def test_decoding_a_deployment_is_fast():
    body = pb.encode(FULL_DEPLOYMENT)
    pb.decode(body)
    n = 200
    start = time.perf_counter()
    for _ in range(n):
        pb.decode(body)
    per_call = (time.perf_counter() - start) / n
    assert per_call < 1e-3, f"{per_call * 1e6:.0f} µs per Deployment ({len(body)} bytes)"
