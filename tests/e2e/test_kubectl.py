"""kubectl against a real `skube apiserver`: apply, get, describe, patch, scale, wait, explain."""
from __future__ import annotations

import json
import textwrap

import pytest
import yaml

DEPLOYMENT = textwrap.dedent("""
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      labels: {app: web}
    spec:
      replicas: {replicas}
      selector:
        matchLabels: {app: web}
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
          - name: web
            image: busybox:1.36
            command: ["httpd", "-f", "-p", "8080"]
            ports:
            - containerPort: 8080
""")


def deployment(replicas: int) -> str:
    return DEPLOYMENT.replace("{replicas}", str(replicas))


def test_api_resources_and_versions(cluster):
    out = cluster.kubectl("api-resources").stdout
    for line in ("pods", "deployments", "customresourcedefinitions", "leases", "endpointslices",
                 "poddisruptionbudgets", "clusterrolebindings"):
        assert line in out
    assert "po " in out or "po\n" in out or " po " in out
    versions = cluster.kubectl("api-versions").stdout.split()
    assert "v1" in versions and "apps/v1" in versions and "batch/v1" in versions
    v = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert v["serverVersion"]["major"] == "1"


def test_apply_twice_with_changed_field(cluster):
    out = cluster.kubectl("apply", "-f", "-", input=deployment(2)).stdout
    assert "deployment.apps/web created" in out
    d = cluster.kubectl_json("get", "deployment", "web")
    assert d["spec"]["replicas"] == 2
    assert d["metadata"]["generation"] == 1
    # upstream defaulting
    assert d["spec"]["strategy"]["type"] == "RollingUpdate"
    assert d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert "kubectl.kubernetes.io/last-applied-configuration" in d["metadata"]["annotations"]
    out = cluster.kubectl("apply", "-f", "-", input=deployment(3)).stdout
    assert "deployment.apps/web configured" in out
    d2 = cluster.kubectl_json("get", "deployment", "web")
    assert d2["spec"]["replicas"] == 3
    assert d2["metadata"]["generation"] == 2
    assert int(d2["metadata"]["resourceVersion"]) > int(d["metadata"]["resourceVersion"])
    out = cluster.kubectl("apply", "-f", "-", input=deployment(3)).stdout
    assert "deployment.apps/web unchanged" in out


def test_server_side_apply(cluster):
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: '1'\n  b: '2'\n"
    out = cluster.kubectl("apply", "--server-side", "-f", "-", input=cm).stdout
    assert "serverside-applied" in out
    obj = json.loads(cluster.kubectl("get", "cm", "ssa", "-o", "json", "--show-managed-fields").stdout)
    managers = {m["manager"]: m for m in obj["metadata"]["managedFields"]}
    assert managers["kubectl"]["operation"] == "Apply"
    # dropping a field the manager applied removes it
    cluster.kubectl("apply", "--server-side", "-f", "-", input=cm.replace("  b: '2'\n", ""))
    assert cluster.kubectl_json("get", "cm", "ssa")["data"] == {"a": "1"}
    # another manager changing an owned field conflicts, --force-conflicts takes it over
    res = cluster.kubectl("apply", "--server-side", "--field-manager", "other", "-f", "-",
                          input=cm.replace("'1'", "'9'"), check=False)
    assert res.returncode != 0 and "conflict" in res.stderr.lower()
    cluster.kubectl("apply", "--server-side", "--field-manager", "other", "--force-conflicts", "-f", "-",
                    input=cm.replace("'1'", "'9'"))
    assert cluster.kubectl_json("get", "cm", "ssa")["data"]["a"] == "9"


@pytest.mark.parametrize("fmt,check", [
    ("json", lambda s: json.loads(s)["kind"] == "Pod"),
    ("yaml", lambda s: yaml.safe_load(s)["metadata"]["name"] == "fmt"),
    ("name", lambda s: s.strip() == "pod/fmt"),
    ("wide", lambda s: "NOMINATED NODE" in s and "fmt" in s),
    ("jsonpath={.spec.containers[0].image}", lambda s: s == "busybox:1.36"),
    ("custom-columns=N:.metadata.name,I:.spec.containers[*].image", lambda s: "busybox:1.36" in s),
    ("go-template={{.metadata.name}}", lambda s: s == "fmt"),
])
def test_get_output_formats(cluster, fmt, check):
    if cluster.kubectl("get", "pod", "fmt", check=False).returncode != 0:
        cluster.kubectl("run", "fmt", "--image=busybox:1.36", "--restart=Never", "--", "sleep", "3600")
    out = cluster.kubectl("get", "pod", "fmt", "-o", fmt).stdout
    assert check(out), out


def test_get_table_columns(cluster):
    cluster.kubectl("create", "namespace", "tables")
    cluster.kubectl("-n", "tables", "run", "p1", "--image=busybox:1.36", "--", "sleep", "1")
    out = cluster.kubectl("-n", "tables", "get", "pods").stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert out[1].split()[:4] == ["p1", "0/1", "Pending", "0"]
    out = cluster.kubectl("get", "pods", "-A", "--show-labels").stdout
    assert "NAMESPACE" in out and "run=p1" in out
    assert cluster.kubectl("get", "ns").stdout.splitlines()[0].split() == ["NAME", "STATUS", "AGE"]


def test_describe(cluster):
    cluster.kubectl("create", "configmap", "desc", "--from-literal=k=v")
    out = cluster.kubectl("describe", "configmap", "desc").stdout
    assert "Name:" in out and "desc" in out and "k:" in out
    cluster.kubectl("apply", "-f", "-", input=deployment(1).replace("name: web\n", "name: dsc\n", 1))
    out = cluster.kubectl("describe", "deployment", "dsc").stdout
    assert "RollingUpdateStrategy" in out and "busybox:1.36" in out


def test_patch_each_type(cluster):
    cluster.kubectl("apply", "-f", "-", input=deployment(1).replace("name: web\n", "name: pt\n", 1))
    cluster.kubectl("patch", "deployment", "pt", "--type=strategic", "-p",
                    json.dumps({"spec": {"template": {"spec": {"containers": [
                        {"name": "side", "image": "busybox:1.36"}]}}}}))
    d = cluster.kubectl_json("get", "deployment", "pt")
    assert [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["side", "web"] or \
        sorted(c["name"] for c in d["spec"]["template"]["spec"]["containers"]) == ["side", "web"]
    cluster.kubectl("patch", "deployment", "pt", "--type=merge", "-p", '{"metadata":{"labels":{"m":"1"}}}')
    assert cluster.kubectl_json("get", "deployment", "pt")["metadata"]["labels"]["m"] == "1"
    cluster.kubectl("patch", "deployment", "pt", "--type=json", "-p",
                    '[{"op":"replace","path":"/spec/replicas","value":4}]')
    assert cluster.kubectl_json("get", "deployment", "pt")["spec"]["replicas"] == 4
    res = cluster.kubectl("patch", "deployment", "pt", "--type=json", "-p",
                          '[{"op":"remove","path":"/spec/nothere"}]', check=False)
    assert res.returncode != 0


def test_label_annotate_scale(cluster):
    cluster.kubectl("apply", "-f", "-", input=deployment(1).replace("name: web\n", "name: las\n", 1))
    cluster.kubectl("label", "deployment", "las", "tier=front")
    cluster.kubectl("annotate", "deployment", "las", "note=hello")
    d = cluster.kubectl_json("get", "deployment", "las")
    assert d["metadata"]["labels"]["tier"] == "front"
    assert d["metadata"]["annotations"]["note"] == "hello"
    assert "las" in cluster.kubectl("get", "deploy", "-l", "tier=front", "-o", "name").stdout
    assert cluster.kubectl("get", "deploy", "-l", "tier notin (front)", "-o", "name").stdout.count("las") == 0
    cluster.kubectl("label", "deployment", "las", "tier-")
    assert "tier" not in cluster.kubectl_json("get", "deployment", "las")["metadata"]["labels"]
    out = cluster.kubectl("scale", "deployment", "las", "--replicas=5").stdout
    assert "scaled" in out
    assert cluster.kubectl_json("get", "deployment", "las")["spec"]["replicas"] == 5
    scale = json.loads(cluster.kubectl("get", "--raw",
                                       "/apis/apps/v1/namespaces/default/deployments/las/scale").stdout)
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 5
    res = cluster.kubectl("scale", "deployment", "las", "--replicas=2", "--current-replicas=3", check=False)
    assert res.returncode != 0


def test_wait_for(cluster):
    cluster.kubectl("create", "configmap", "waiter")
    out = cluster.kubectl("wait", "--for=jsonpath={.metadata.name}=waiter", "configmap/waiter",
                          "--timeout=10s").stdout
    assert "condition met" in out
    cluster.kubectl("run", "cond", "--image=busybox:1.36")
    body = json.dumps({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    cluster.kubectl("patch", "pod", "cond", "--subresource=status", "--type=merge", "-p", body)
    out = cluster.kubectl("wait", "--for=condition=Ready", "pod/cond", "--timeout=10s").stdout
    assert "condition met" in out


def test_delete_wait(cluster):
    cluster.kubectl("create", "configmap", "gone")
    out = cluster.kubectl("delete", "configmap", "gone", "--wait=true", "--timeout=20s").stdout
    assert 'configmap "gone" deleted' in out
    res = cluster.kubectl("get", "configmap", "gone", check=False)
    assert res.returncode != 0 and "NotFound" in res.stderr


def test_explain(cluster):
    out = cluster.kubectl("explain", "pod.spec.containers").stdout
    assert "KIND:" in out and "Pod" in out and "image" in out
    out = cluster.kubectl("explain", "deployment.spec.strategy", "--recursive").stdout
    assert "rollingUpdate" in out


def test_custom_resource_definition_then_use(cluster):
    crd = textwrap.dedent("""
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {name: widgets.example.com}
        spec:
          group: example.com
          scope: Namespaced
          names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wg]}
          versions:
          - name: v1
            served: true
            storage: true
            subresources: {status: {}, scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}}
            additionalPrinterColumns:
            - {name: Size, type: integer, jsonPath: .spec.size}
            schema:
              openAPIV3Schema:
                type: object
                properties:
                  spec:
                    type: object
                    properties:
                      size: {type: integer, minimum: 1}
                      replicas: {type: integer}
                      color: {type: string, enum: [red, blue], default: red}
                  status:
                    type: object
                    properties:
                      replicas: {type: integer}
    """)
    cluster.kubectl("apply", "-f", "-", input=crd)
    cluster.kubectl("wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=20s")
    w = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3, replicas: 1}\n"
    cluster.kubectl("apply", "-f", "-", input=w)
    obj = cluster.kubectl_json("get", "widget", "w1")
    assert obj["spec"]["color"] == "red"      # schema default applied
    out = cluster.kubectl("get", "wg").stdout
    assert "SIZE" in out.splitlines()[0] and "3" in out.splitlines()[1]
    bad = cluster.kubectl("apply", "-f", "-", input=w.replace("size: 3", "size: 0").replace("w1", "w2"),
                          check=False)
    assert bad.returncode != 0 and "Invalid" in bad.stderr
    cluster.kubectl("scale", "widget", "w1", "--replicas=4")
    assert cluster.kubectl_json("get", "widget", "w1")["spec"]["replicas"] == 4
    cluster.kubectl("delete", "crd", "widgets.example.com")
    res = cluster.kubectl("get", "widgets.example.com", check=False)
    assert res.returncode != 0


def test_get_watch_prints_rows_as_objects_change(cluster):
    import subprocess
    import threading
    from tests.conftest import KUBECTL
    cluster.kubectl("create", "namespace", "gw")
    proc = subprocess.Popen([KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "-n", "gw", "get", "cm", "-w",
                             "--output-watch-events"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    header = threading.Event()

    def reader():
        for line in proc.stdout:
            lines.append(line)
            header.set()
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        cluster.kubectl("-n", "gw", "create", "configmap", "watched-one", "--from-literal=a=b")
        cluster.kubectl("-n", "gw", "delete", "configmap", "watched-one")
        from tests.conftest import wait_for
        wait_for(lambda: any(line.startswith("DELETED") for line in lines), timeout=20,
                 message="kubectl get -w to print the deletion")
    finally:
        proc.terminate()
        proc.wait(10)
    assert lines[0].split()[:3] == ["EVENT", "NAME", "DATA"]
    events = [line.split()[:3] for line in lines[1:]]
    assert ["ADDED", "watched-one", "1"] in events and ["DELETED", "watched-one", "1"] in events
