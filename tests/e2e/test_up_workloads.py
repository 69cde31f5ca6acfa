"""Workloads on `skube up` with real containers: a Deployment rolled out to a new image
keeps its availability and `rollout undo` returns; a failing Job stops at backoffLimit;
a StatefulSet scales up and down in order; an Indexed Job fails one index under
backoffLimitPerIndex; a never-ready Deployment exceeds its progress deadline."""
from __future__ import annotations

import json
import subprocess
import threading

from skube.runtime.images.builtin import busybox_layer, write_oci_layout
from tests.conftest import BIN, wait_for
from tests.e2e.test_up import IMAGE, no_pods_left, remove_bridge, start_up

TOL = [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}]


def deployment(image: str) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                 "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                                  "name": "httpd", "image": image,
                                  "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
                                  "readinessProbe": {"tcpSocket": {"port": 8080}}}]}}}})


def test_workloads_with_real_containers(tmp_path):
    data = tmp_path / "cluster"
    c = start_up(data, net=1)
    try:
        # a second image: the same busybox under another tag, imported with the CLI
        import shutil
        archive = tmp_path / "v2.tar"
        write_oci_layout(archive, busybox_layer(shutil.which("busybox")), "skube.local/busybox:v2", "amd64")
        subprocess.run([str(BIN / "skube"), "image", "import", str(archive), "--data-dir", str(data)],
                       check=True, capture_output=True)
        c.kubectl("apply", "-f", "-", input=deployment(IMAGE))
        c.kubectl("rollout", "status", "deployment/web", "--timeout=120s")
        low = [3]

        def watch_ready():
            proc = subprocess.Popen([str(BIN / "kubectl"), "--kubeconfig", str(c.kubeconfig), "get",
                                     "deployment", "web", "-w", "-o", "jsonpath={.status.readyReplicas}{\"\\n\"}"],
                                    stdout=subprocess.PIPE, text=True)
            watchers.append(proc)
            for line in proc.stdout:
                if line.strip().isdigit():
                    low[0] = min(low[0], int(line.strip()))
        watchers: list = []
        t = threading.Thread(target=watch_ready, daemon=True)
        t.start()
        c.kubectl("set", "image", "deployment/web", "httpd=skube.local/busybox:v2")
        c.kubectl("rollout", "status", "deployment/web", "--timeout=120s")
        images = {p["spec"]["containers"][0]["image"] for p in c.kubectl_json("get", "pods", "-l", "app=web")["items"]
                  if not p["metadata"].get("deletionTimestamp")}
        assert images == {"skube.local/busybox:v2"}
        c.kubectl("rollout", "undo", "deployment/web")
        c.kubectl("rollout", "status", "deployment/web", "--timeout=120s")
        d = c.kubectl_json("get", "deployment", "web")
        assert d["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
        for w in watchers:
            w.terminate()
        assert low[0] >= 3, "availability dropped below the declared replicas during the rollout"

        # a failing Job stops at its backoffLimit
        c.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "fails"},
            "spec": {"backoffLimit": 1, "template": {"spec": {"restartPolicy": "Never", "containers": [{
                "name": "c", "image": IMAGE, "command": ["sh", "-c", "exit 1"]}]}}}}))
        c.kubectl("wait", "--for=condition=Failed", "job/fails", "--timeout=120s")
        job = c.kubectl_json("get", "job", "fails")
        assert job["status"]["failed"] == 2
        assert any(x["type"] == "Failed" and x["reason"] == "BackoffLimitExceeded" for x in job["status"]["conditions"])

        # a StatefulSet scales up in order and down in reverse
        c.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
            "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                     "template": {"metadata": {"labels": {"app": "db"}},
                                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                                      "name": "c", "image": IMAGE, "command": ["sleep", "3600"]}]}}}}))
        c.kubectl("rollout", "status", "statefulset/db", "--timeout=120s")
        pods = {p["metadata"]["name"]: p for p in c.kubectl_json("get", "pods", "-l", "app=db")["items"]}
        assert sorted(pods) == ["db-0", "db-1", "db-2"]
        def ready_at(p):
            return next(x["lastTransitionTime"] for x in p["status"]["conditions"] if x["type"] == "Ready")
        # OrderedReady: each pod is created only once its predecessor is Ready
        for prev, nxt in (("db-0", "db-1"), ("db-1", "db-2")):
            assert pods[nxt]["metadata"]["creationTimestamp"] >= ready_at(pods[prev])
        c.kubectl("scale", "statefulset/db", "--replicas=1")
        wait_for(lambda: [p["metadata"]["name"] for p in c.kubectl_json("get", "pods", "-l", "app=db")["items"]]
                 == ["db-0"], timeout=90, message="scaled down to db-0")

        # backoffLimitPerIndex: index 0 fails (twice: limit 1), index 1 succeeds, read from the
        # JOB_COMPLETION_INDEX the container gets through the downward API
        c.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "perindex"},
            "spec": {"completionMode": "Indexed", "completions": 2, "parallelism": 2, "backoffLimitPerIndex": 1,
                     "template": {"spec": {"restartPolicy": "Never", "containers": [{
                         "name": "c", "image": IMAGE,
                         "command": ["sh", "-c", 'test "$JOB_COMPLETION_INDEX" = 1']}]}}}}))
        c.kubectl("wait", "--for=condition=Failed", "job/perindex", "--timeout=120s")
        st = c.kubectl_json("get", "job", "perindex")["status"]
        assert (st["failedIndexes"], st["completedIndexes"], st["failed"], st["succeeded"]) == ("0", "1", 2, 1)
        assert any(x["type"] == "Failed" and x["reason"] == "FailedIndexes" for x in st["conditions"])

        # a Deployment whose pods never turn ready exceeds its progress deadline
        c.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "stuck"},
            "spec": {"replicas": 1, "progressDeadlineSeconds": 5, "selector": {"matchLabels": {"app": "stuck"}},
                     "template": {"metadata": {"labels": {"app": "stuck"}},
                                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                                      "name": "c", "image": IMAGE, "command": ["sleep", "3600"],
                                      "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}}}))
        res = c.kubectl("rollout", "status", "deployment/stuck", "--timeout=120s", check=False)
        assert res.returncode != 0 and 'deployment "stuck" exceeded its progress deadline' in res.stderr, res.stderr
    finally:
        if c.proc.poll() is None:
            for kind in ("deployment/web", "job/fails", "statefulset/db", "job/perindex", "deployment/stuck"):
                c.kubectl("delete", kind, "--wait=true", "--timeout=60s", "--ignore-not-found", check=False)
            c.kubectl("delete", "pods", "--all", "--wait=true", "--timeout=60s", check=False)
            wait_for(lambda: no_pods_left(c), timeout=90, message="every pod gone")
        assert c.stop() == 0, c.log.read_text()
        remove_bridge(c)
