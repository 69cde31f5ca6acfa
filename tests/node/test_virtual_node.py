"""The virtual node with the mock provider against a real API server: registration,
lease, pod status, logs (kubelet API and kubectl through the API server), graceful
deletion, unsupported pods, lifecycles, shutdown."""
from __future__ import annotations

import json
import signal
import time

import pytest

from tests.conftest import WatchLines, wait_for
from tests.node.conftest import kubelet_client, pod_body, start_node

NODE = "vn-basic"


@pytest.fixture(scope="module")
def node(cluster, tmp_path_factory):
    n = start_node(cluster, NODE, tmp_path_factory.mktemp("node"), "--lease-renew-interval", "0.5",
                   "--zone", "zone-a", "--region", "region-1")
    yield n
    assert n.stop() == 0, n.log.read_text()


def get_pod(cluster, name):
    res = cluster.kubectl("get", "pod", name, "-o", "json", check=False)
    return json.loads(res.stdout) if res.returncode == 0 else None


def running(cluster, name):
    pod = get_pod(cluster, name)
    return pod if pod and (pod.get("status") or {}).get("phase") == "Running" else None


def test_node_registered(cluster, node):
    n = cluster.kubectl_json("get", "node", NODE)
    labels = n["metadata"]["labels"]
    assert labels["type"] == "virtual-kubelet"
    assert labels["kubernetes.io/role"] == "agent"
    assert labels["kubernetes.io/os"] == "linux"
    assert labels["kubernetes.io/hostname"] == NODE
    assert labels["kubernetes.io/arch"]
    assert labels["node.kubernetes.io/instance-type"] == "virtual-node"
    assert labels["topology.kubernetes.io/zone"] == "zone-a"
    assert labels["topology.kubernetes.io/region"] == "region-1"
    assert {"key": "virtual-kubelet.io/provider", "value": "skube", "effect": "NoSchedule"} in n["spec"]["taints"]
    st = n["status"]
    assert st["capacity"]["cpu"] == "1000" and st["capacity"]["memory"] == "4Ti"
    assert st["capacity"]["pods"] == "10000" and st["allocatable"]["pods"] == "10000"
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Ready"]["status"] == "True" and conds["Ready"]["reason"] == "KubeletReady"
    assert conds["MemoryPressure"]["status"] == "False"
    assert {"type": "InternalIP", "address": "127.0.0.1"} in st["addresses"]
    assert {"type": "Hostname", "address": NODE} in st["addresses"]
    assert st["daemonEndpoints"]["kubeletEndpoint"]["Port"] == node.kubelet_port
    info = st["nodeInfo"]
    assert info["kubeletVersion"] == "v1.37.0-skube"
    assert info["containerRuntimeVersion"] == "skube://mock"
    assert info["operatingSystem"] == "linux" and info["architecture"] and info["kernelVersion"]
    out = cluster.kubectl("get", "nodes").stdout
    assert NODE in out and "Ready" in out


def test_lease_renewed(cluster, node):
    first = cluster.kubectl_json("get", "lease", NODE, "-n", "kube-node-lease")
    assert first["spec"]["holderIdentity"] == NODE
    assert first["spec"]["leaseDurationSeconds"] == 40
    assert first["metadata"]["ownerReferences"][0]["kind"] == "Node"
    wait_for(lambda: cluster.kubectl_json("get", "lease", NODE, "-n", "kube-node-lease")["spec"]["renewTime"]
             != first["spec"]["renewTime"], timeout=10, interval=0.2, message="lease renewal")


@pytest.fixture(scope="module")
def web(cluster, node):
    """Pod web on the node, Running (the tests below read it)."""
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod_body(
        "web", NODE, image="nginx:1.27",
        containers=[{"name": "c", "image": "nginx:1.27",
                     "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                                   "limits": {"cpu": "100m", "memory": "64Mi"}}}])))
    return wait_for(lambda: running(cluster, "web"), message="web Running")


def test_pod_reaches_running_with_full_status(cluster, node, web):
    pod = web
    st = pod["status"]
    conds = {c["type"]: c for c in st["conditions"]}
    for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready"):
        assert conds[t]["status"] == "True" and conds[t]["lastTransitionTime"]
    assert st["podIP"].startswith("10.250.") and st["podIPs"] == [{"ip": st["podIP"]}]
    assert st["hostIP"] == "127.0.0.1" and st["hostIPs"] == [{"ip": "127.0.0.1"}]
    assert st["startTime"] and st["qosClass"] == "Guaranteed"
    cs = st["containerStatuses"][0]
    assert cs["name"] == "c" and cs["ready"] and cs["started"] and cs["restartCount"] == 0
    assert cs["image"] == "nginx:1.27" and cs["imageID"] and cs["containerID"].startswith("mock://")
    assert "running" in cs["state"] and cs["state"]["running"]["startedAt"]
    out = cluster.kubectl("get", "pod", "web", "-o", "wide").stdout
    assert "1/1" in out and "Running" in out and st["podIP"] in out
    # the kubelet's own view
    with kubelet_client(cluster) as c:
        pods = c.get(f"https://127.0.0.1:{node.kubelet_port}/pods").json()
        assert "web" in [p["metadata"]["name"] for p in pods["items"]]
        stats = c.get(f"https://127.0.0.1:{node.kubelet_port}/stats/summary").json()
        assert stats["node"]["nodeName"] == NODE
        web = [p for p in stats["pods"] if p["podRef"]["name"] == "web"][0]
        assert web["containers"][0]["memory"]["workingSetBytes"] > 0
        assert web["cpu"]["usageNanoCores"] > 0


def test_logs_through_kubelet_and_kubectl(cluster, node, web):
    base = f"https://127.0.0.1:{node.kubelet_port}"
    with kubelet_client(cluster) as c:
        r = c.get(f"{base}/containerLogs/default/web/c")
        assert r.status_code == 200, r.text
        assert r.text.splitlines() == ["started nginx:1.27", "running"]
        r = c.get(f"{base}/containerLogs/default/web/c", params={"timestamps": "true", "tailLines": "1"})
        line = r.text.strip()
        assert line.endswith(" running") and line[:4].isdigit() and "Z " in line
        assert c.get(f"{base}/containerLogs/default/web/c", params={"limitBytes": "4"}).text == "star"
        assert c.get(f"{base}/containerLogs/default/web/nope").status_code == 404
        assert c.get(f"{base}/containerLogs/default/nope/c").status_code == 404
        r = c.get(f"{base}/containerLogs/default/web/c", params={"previous": "true"})
        assert r.status_code == 400 and "previous terminated container" in r.text
        r = c.post(f"{base}/exec/default/web/c", params={"command": "ls"})
        assert r.status_code == 501 and "not supported by the mock provider" in r.text
        r = c.get(f"{base}/portForward/default/web")
        assert r.status_code == 501
    with kubelet_client(cluster, cert=False) as anon:
        assert anon.get(f"{base}/containerLogs/default/web/c").status_code == 401
        assert anon.get(f"{base}/healthz").status_code == 401       # as the kubelet's port 10250
    # kubectl logs: API server -> proxy -> kubelet
    out = cluster.kubectl("logs", "web").stdout
    assert out.splitlines() == ["started nginx:1.27", "running"]
    out = cluster.kubectl("logs", "web", "--timestamps", "--tail=1").stdout
    assert out.strip().endswith(" running")
    res = cluster.kubectl("logs", "web", "-c", "nope", check=False)
    assert res.returncode != 0
    res = cluster.kubectl("get", "--raw", "/api/v1/namespaces/default/pods/web/log?tailLines=-1", check=False)
    assert "must be greater than or equal to 0" in res.stderr


def test_logs_follow_and_multi_container(cluster, node, tmp_path):
    import subprocess
    from tests.conftest import KUBECTL
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod_body(
        "two", NODE, containers=[{"name": "a", "image": "busybox"}, {"name": "b", "image": "redis:7"}])))
    wait_for(lambda: running(cluster, "two"), message="two Running")
    assert cluster.kubectl("logs", "two").stdout.splitlines()[0] == "started busybox"   # kubectl picks "a"
    res = cluster.kubectl("get", "--raw", "/api/v1/namespaces/default/pods/two/log", check=False)
    assert res.returncode != 0
    assert "a container name must be specified for pod two, choose one of: [a b]" in res.stderr
    assert cluster.kubectl("logs", "two", "-c", "b").stdout.splitlines()[0] == "started redis:7"
    # follow stays open until the pod goes
    out = tmp_path / "follow.txt"
    with open(out, "w") as f:
        proc = subprocess.Popen([KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "logs", "-f", "two", "-c", "a"],
                                stdout=f, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "running" in out.read_text(), message="followed log")
        assert proc.poll() is None, "kubectl logs -f ended while the container runs"
        cluster.kubectl("delete", "pod", "two", "--wait=false")
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out.read_text().splitlines()[:2] == ["started busybox", "running"]


def test_delete_with_grace(cluster, node):
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod_body("graceful", NODE)))
    wait_for(lambda: running(cluster, "graceful"), message="graceful Running")
    with WatchLines(cluster, "pod", "graceful",
                    "{.object.status.phase} {.object.status.containerStatuses[0].state}") as watch:
        assert watch.next().startswith("ADDED Running")
        t0 = time.monotonic()
        cluster.kubectl("delete", "pod", "graceful", "--grace-period=20", timeout=30)
        assert time.monotonic() - t0 < 10, "the node should confirm the deletion well before the grace period"
        assert get_pod(cluster, "graceful") is None
        seen = watch.until_deleted()
    # as kubelet 1.27+: the pod reaches a terminal phase (its containers' exit) before it goes
    assert seen[-1].startswith("DELETED Succeeded"), seen
    assert any(line.startswith("MODIFIED Succeeded") and '"exitCode":0' in line for line in seen), seen
    with kubelet_client(cluster) as c:
        pods = c.get(f"https://127.0.0.1:{node.kubelet_port}/pods").json()
        assert "graceful" not in [p["metadata"]["name"] for p in pods["items"]]


@pytest.mark.parametrize("name,spec_extra,metadata_extra,needle", [
    ("hostnet", {"hostNetwork": True}, {}, "hostNetwork"),
    ("hostpath", {"volumes": [{"name": "h", "hostPath": {"path": "/etc"}}],
                  "containers": [{"name": "c", "image": "nginx", "volumeMounts": [{"name": "h", "mountPath": "/h"}]}]},
     {}, "hostPath"),
    ("priv", {"containers": [{"name": "c", "image": "nginx", "securityContext": {"privileged": True}}]}, {},
     "privileged"),
    ("ds-pod", {}, {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                                         "uid": "8f1c2a5e-0000-4000-8000-000000000001", "controller": True}]},
     "DaemonSet"),
])
def test_unsupported_pods_fail_with_event(cluster, node, name, spec_extra, metadata_extra, needle):
    body = pod_body(name, NODE, **spec_extra)
    body["metadata"].update(metadata_extra)
    cluster.kubectl("apply", "-f", "-", input=json.dumps(body))

    def failed():
        pod = get_pod(cluster, name)
        return pod if pod and pod["status"].get("phase") == "Failed" else None
    pod = wait_for(failed, message=f"{name} Failed")
    assert pod["status"]["reason"] == "NotSupported"
    assert needle in pod["status"]["message"]
    events = cluster.kubectl_json("get", "events", "--field-selector", f"involvedObject.name={name}")["items"]
    assert any(e["reason"] == "NotSupported" and e["type"] == "Warning" and needle in e["message"]
               for e in events), events
    assert cluster.kubectl("get", "pod", name).stdout.split("\n")[1].split()[2] == "NotSupported"


def test_finite_lifecycles(cluster, node):
    ann = "mock.skube.io/"
    cluster.kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(b) for b in [
        pod_body("job-ok", NODE, restart_policy="Never", annotations={ann + "run-seconds": "0.3"}),
        pod_body("job-bad", NODE, restart_policy="Never",
                 annotations={ann + "run-seconds": "0.3", ann + "exit-code": "3"}),
        pod_body("crash", NODE, restart_policy="Always", annotations={ann + "fail-start": "true"}),
    ]))

    def phase(name, want):
        pod = get_pod(cluster, name)
        return pod if pod and pod["status"].get("phase") == want else None
    ok = wait_for(lambda: phase("job-ok", "Succeeded"), message="job-ok Succeeded")
    term = ok["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 0 and term["reason"] == "Completed"
    assert {c["type"]: c for c in ok["status"]["conditions"]}["Ready"]["reason"] == "PodCompleted"
    bad = wait_for(lambda: phase("job-bad", "Failed"), message="job-bad Failed")
    assert bad["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    assert cluster.kubectl("logs", "job-bad").stdout.splitlines()[-1] == "exited with code 3"

    def backing_off():
        pod = get_pod(cluster, "crash")
        cs = (pod or {}).get("status", {}).get("containerStatuses") or [{}]
        return pod if cs[0].get("restartCount") == 1 and "waiting" in cs[0].get("state", {}) else None
    crash = wait_for(backing_off, message="crash in CrashLoopBackOff")
    cs = crash["status"]["containerStatuses"][0]
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert "CrashLoopBackOff" in cluster.kubectl("get", "pod", "crash").stdout
    assert cluster.kubectl("logs", "crash", "--previous").stdout.splitlines()[-1].startswith("simulated start failure")


def test_shutdown_marks_not_ready_or_removes(cluster, tmp_path):
    n = start_node(cluster, "vn-stop", tmp_path / "a")
    assert n.stop(signal.SIGINT) == 0
    node = cluster.kubectl_json("get", "node", "vn-stop")
    ready = {c["type"]: c for c in node["status"]["conditions"]}["Ready"]
    assert ready["status"] == "False"
    n = start_node(cluster, "vn-stop", tmp_path / "a", "--remove-on-shutdown")
    node = cluster.kubectl_json("get", "node", "vn-stop")
    assert {c["type"]: c for c in node["status"]["conditions"]}["Ready"]["status"] == "True"
    assert n.stop() == 0
    assert cluster.kubectl("get", "node", "vn-stop", check=False).returncode != 0
