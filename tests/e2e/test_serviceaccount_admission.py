"""Service-account credentials of pods through kubectl against a real `skube apiserver`
running the serviceaccount and root-ca-cert-publisher controllers: the ServiceAccount
admission (the kube-api-access volume, automount, missing accounts), apply staying
idempotent, the kube-root-ca.crt ConfigMap, and pod-bound tokens."""
from __future__ import annotations

import base64
import json
import re
import subprocess
import ssl
import urllib.error
import urllib.request

import pytest
import yaml

from tests.conftest import BIN, start_apiserver, wait_for

MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_NAME = re.compile(r"^kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}$")
# the volume exactly as upstream's admission writes it (kubectl get pod -o yaml)
UPSTREAM_SOURCE = yaml.safe_load("""
defaultMode: 420
sources:
- serviceAccountToken:
    expirationSeconds: 3607
    path: token
- configMap:
    items:
    - key: ca.crt
      path: ca.crt
    name: kube-root-ca.crt
- downwardAPI:
    items:
    - fieldRef:
        apiVersion: v1
        fieldPath: metadata.namespace
      path: namespace
""")


@pytest.fixture(scope="module")
def sa_cluster(tmp_path_factory):
    c = start_apiserver(tmp_path_factory.mktemp("sa"), None,
                        "--controllers=serviceaccount,root-ca-cert-publisher,deployment,replicaset",
                        "--disable-admission-plugins=")
    wait_for(lambda: c.kubectl("get", "sa", "default", check=False).returncode == 0, timeout=30,
             message="the default ServiceAccount")
    yield c
    assert c.stop() == 0, c.log.read_text()


def pod_yaml(name: str, *, spec_extra: dict | None = None, init: bool = False, mounts=None) -> str:
    c = {"name": "app", "image": "busybox", "command": ["sleep", "3600"]}
    if mounts:
        c["volumeMounts"] = mounts
    spec = {"containers": [c], **(spec_extra or {})}
    if init:
        spec["initContainers"] = [{"name": "init", "image": "busybox", "command": ["true"]}]
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})


def api_volumes(pod: dict) -> list[dict]:
    return [v for v in pod["spec"].get("volumes") or [] if v["name"].startswith("kube-api-access-")]


def test_pod_gets_the_api_access_volume_as_upstream(sa_cluster):
    c = sa_cluster
    c.kubectl("apply", "-f", "-", input=pod_yaml("plain", init=True))
    pod = yaml.safe_load(c.kubectl("get", "pod", "plain", "-o", "yaml").stdout)
    assert pod["spec"]["serviceAccountName"] == "default" and pod["spec"]["serviceAccount"] == "default"
    (vol,) = api_volumes(pod)
    assert VOLUME_NAME.match(vol["name"]), vol["name"]
    assert vol["projected"] == UPSTREAM_SOURCE
    for ctr in pod["spec"]["initContainers"] + pod["spec"]["containers"]:
        assert ctr["volumeMounts"] == [{"mountPath": MOUNT, "name": vol["name"], "readOnly": True}]


def test_existing_mount_at_the_token_path_is_kept(sa_cluster):
    c = sa_cluster
    spec = {"volumes": [{"name": "mine", "emptyDir": {}}]}
    c.kubectl("apply", "-f", "-", input=pod_yaml("own-mount", spec_extra=spec, init=True,
                                                 mounts=[{"name": "mine", "mountPath": MOUNT}]))
    pod = c.kubectl_json("get", "pod", "own-mount")
    (vol,) = api_volumes(pod)          # the init container still needs it
    assert pod["spec"]["containers"][0]["volumeMounts"] == [{"name": "mine", "mountPath": MOUNT}]
    assert pod["spec"]["initContainers"][0]["volumeMounts"][0]["name"] == vol["name"]


def test_automount_false_on_the_pod_and_on_the_service_account(sa_cluster):
    c = sa_cluster
    c.kubectl("apply", "-f", "-", input=pod_yaml("no-mount", spec_extra={"automountServiceAccountToken": False}))
    pod = c.kubectl_json("get", "pod", "no-mount")
    assert not api_volumes(pod) and "volumeMounts" not in pod["spec"]["containers"][0]

    c.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "quiet"},
        "automountServiceAccountToken": False, "imagePullSecrets": [{"name": "regcred"}]}))
    c.kubectl("apply", "-f", "-", input=pod_yaml("quiet-pod", spec_extra={"serviceAccountName": "quiet"}))
    pod = c.kubectl_json("get", "pod", "quiet-pod")
    assert not api_volumes(pod)
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]   # taken from the account
    # the pod's own preference wins over its account's
    c.kubectl("apply", "-f", "-", input=pod_yaml("loud-pod", spec_extra={
        "serviceAccountName": "quiet", "automountServiceAccountToken": True}))
    assert len(api_volumes(c.kubectl_json("get", "pod", "loud-pod"))) == 1


def test_missing_service_account_is_forbidden(sa_cluster):
    c = sa_cluster
    res = c.kubectl("apply", "-f", "-", input=pod_yaml("orphan", spec_extra={"serviceAccountName": "nope"}),
                    check=False)
    assert res.returncode != 0
    assert ('pods "orphan" is forbidden: error looking up service account default/nope: '
            'serviceaccount "nope" not found') in res.stderr, res.stderr
    assert "Forbidden" in res.stderr
    assert c.kubectl("get", "pod", "orphan", check=False).returncode != 0


def test_pod_right_after_its_namespace_waits_for_default(sa_cluster):
    c = sa_cluster
    c.kubectl("create", "namespace", "fresh")
    c.kubectl("-n", "fresh", "apply", "-f", "-", input=pod_yaml("early"))
    assert len(api_volumes(c.kubectl_json("-n", "fresh", "get", "pod", "early"))) == 1


def test_apply_twice_keeps_the_volume_and_the_template(sa_cluster):
    c = sa_cluster
    c.kubectl("apply", "-f", "-", input=pod_yaml("twice"))
    first = c.kubectl_json("get", "pod", "twice")
    out = c.kubectl("apply", "-f", "-", input=pod_yaml("twice")).stdout
    assert "pod/twice unchanged" in out
    again = c.kubectl_json("get", "pod", "twice")
    assert again["spec"] == first["spec"]
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    # server-side apply, twice, by the same manager
    c.kubectl("apply", "--server-side", "-f", "-", input=pod_yaml("ssa"))
    first = c.kubectl_json("get", "pod", "ssa")
    c.kubectl("apply", "--server-side", "-f", "-", input=pod_yaml("ssa"))
    again = c.kubectl_json("get", "pod", "ssa")
    assert len(api_volumes(again)) == 1 and again["spec"] == first["spec"]

    deploy = json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                                  "template": {"metadata": {"labels": {"app": "web"}},
                                               "spec": {"containers": [{"name": "web", "image": "busybox"}]}}}})
    c.kubectl("apply", "-f", "-", input=deploy)
    wait_for(lambda: c.kubectl_json("get", "pods", "-l", "app=web")["items"], timeout=30,
             message="the Deployment's pod")
    before = c.kubectl_json("get", "deployment", "web")
    assert "unchanged" in c.kubectl("apply", "-f", "-", input=deploy).stdout
    after = c.kubectl_json("get", "deployment", "web")
    assert after["metadata"]["generation"] == before["metadata"]["generation"] == 1
    assert after["spec"]["template"] == before["spec"]["template"]
    assert "volumes" not in after["spec"]["template"]["spec"]
    (pod,) = c.kubectl_json("get", "pods", "-l", "app=web")["items"]
    assert len(api_volumes(pod)) == 1


def kubeconfig_ca(c) -> str:
    cfg = yaml.safe_load(c.kubeconfig.read_text())
    return base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"]).decode()


def root_ca(c, ns: str) -> dict | None:
    res = c.kubectl("-n", ns, "get", "configmap", "kube-root-ca.crt", "-o", "json", check=False)
    return json.loads(res.stdout) if res.returncode == 0 else None


def test_root_ca_configmap_in_every_namespace(sa_cluster):
    c = sa_cluster
    ca = kubeconfig_ca(c)
    assert "BEGIN CERTIFICATE" in ca
    c.kubectl("create", "namespace", "ca-test")
    for ns in ("default", "kube-system", "kube-public", "ca-test"):
        cm = wait_for(lambda: root_ca(c, ns), timeout=20, message=f"kube-root-ca.crt in {ns}")
        assert cm["data"] == {"ca.crt": ca}
        assert cm["metadata"]["annotations"]["kubernetes.io/description"].startswith(
            "Contains a CA bundle that can be used to verify the kube-apiserver")
    # deleted: published again; changed: restored
    uid = root_ca(c, "ca-test")["metadata"]["uid"]
    c.kubectl("-n", "ca-test", "delete", "configmap", "kube-root-ca.crt")
    wait_for(lambda: (root_ca(c, "ca-test") or {}).get("metadata", {}).get("uid") not in (None, uid),
             timeout=20, message="kube-root-ca.crt re-created")
    c.kubectl("-n", "ca-test", "patch", "configmap", "kube-root-ca.crt", "--type=merge",
              "-p", '{"data":{"ca.crt":"bogus","extra":"x"},"metadata":{"annotations":{"kubernetes.io/description":""}}}')
    wait_for(lambda: (root_ca(c, "ca-test") or {}).get("data") == {"ca.crt": ca}, timeout=20,
             message="kube-root-ca.crt restored")
    assert root_ca(c, "ca-test")["metadata"]["annotations"]["kubernetes.io/description"]


def claims(token: str) -> dict:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def test_pod_bound_token_dies_with_its_pod(sa_cluster):
    c = sa_cluster
    c.kubectl("apply", "-f", "-", input=pod_yaml("holder"))
    uid = c.kubectl_json("get", "pod", "holder")["metadata"]["uid"]
    token = c.kubectl("create", "token", "default", "--bound-object-kind=Pod", "--bound-object-name=holder",
                      "--duration=3607s").stdout.strip()
    k = claims(token)["kubernetes.io"]
    assert k["pod"] == {"name": "holder", "uid": uid} and k["namespace"] == "default"
    assert k["serviceaccount"]["name"] == "default"
    assert "node" not in k                        # the pod is not scheduled
    assert k["warnafter"] - claims(token)["iat"] == 3607 and claims(token)["exp"] - claims(token)["iat"] == 365 * 86400
    other = c.kubectl("create", "token", "default", "--bound-object-kind=Pod", "--bound-object-name=holder",
                      "--duration=3600s").stdout.strip()
    assert "warnafter" not in claims(other)["kubernetes.io"]
    assert claims(other)["exp"] - claims(other)["iat"] == 3600
    assert whoami(c, token) == "system:serviceaccount:default:default"
    c.kubectl("delete", "pod", "holder", "--grace-period=0", "--force")
    wait_for(lambda: c.kubectl("get", "pod", "holder", check=False).returncode != 0, message="pod gone")
    assert whoami(c, token) == 401


def whoami(c, token: str):
    """The user the bearer token authenticates as (only the token is sent; RBAC refuses the
    request and names the user), or the HTTP code when it is not a 403."""
    ctx = ssl.create_default_context(cadata=kubeconfig_ca(c))
    req = urllib.request.Request(c.url + "/api/v1/namespaces/kube-system/secrets",
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        if e.code != 403:
            return e.code
        return re.search(r'User "([^"]+)"', json.loads(e.read())["message"]).group(1)


def test_default_apiserver_admits_pods_with_credentials(tmp_path):
    # `skube apiserver` with its default controllers and the plugin on
    c = start_apiserver(tmp_path / "defaults", None, "--disable-admission-plugins=")
    try:
        c.kubectl("apply", "-f", "-", input=pod_yaml("first"))
        assert len(api_volumes(c.kubectl_json("get", "pod", "first"))) == 1
        wait_for(lambda: root_ca(c, "default"), timeout=20, message="kube-root-ca.crt")
    finally:
        assert c.stop() == 0, c.log.read_text()


def test_unknown_admission_plugin_is_refused(tmp_path):
    res = subprocess.run([str(BIN / "skube"), "apiserver", "--data-dir", str(tmp_path),
                          "--disable-admission-plugins=Bogus"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "unknown admission plugins ['Bogus']" in res.stderr, res.stderr
