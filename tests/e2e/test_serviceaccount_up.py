"""A pod's service-account credentials on `skube up` with a real container: the files
under /var/run/secrets/kubernetes.io/serviceaccount, and the official client's
in-cluster config using them from inside the pod's network namespace, allowed or
refused by RBAC."""
from __future__ import annotations

import base64
import json
import subprocess
import sys

import yaml

from tests.conftest import wait_for
from tests.e2e.test_up import IMAGE, no_pods_left, remove_bridge, start_up

NET = 8          # start_up's network slot for this file
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

IN_CLUSTER_LIST = """
import sys
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.config.incluster_config import InClusterConfigLoader
token, ca, host, port = sys.argv[1:5]
InClusterConfigLoader(token_filename=token, cert_filename=ca,
                      environ={"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}).load_and_set()
ns = open(sys.argv[5]).read()
try:
    pods = client.CoreV1Api().list_namespaced_pod(ns, _request_timeout=10)
    print("pods:" + ",".join(p.metadata.name for p in pods.items))
except ApiException as e:
    print("status:%d" % e.status)
"""


def test_pod_reads_its_credentials_and_talks_to_the_api(tmp_path):
    c = start_up(tmp_path / "cluster", net=NET)
    try:
        c.kubectl("run", "reader", f"--image={IMAGE}", "--", "sleep", "3600")
        c.kubectl("wait", "--for=condition=Ready", "pod/reader", "--timeout=90s")
        pod = c.kubectl_json("get", "pod", "reader")
        vol = next(v for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api-access-"))
        assert pod["spec"]["containers"][0]["volumeMounts"] == [
            {"mountPath": SA_DIR, "name": vol["name"], "readOnly": True}]

        def cat(name: str) -> str:
            return c.kubectl("exec", "reader", "--", "cat", f"{SA_DIR}/{name}").stdout

        token, ca, namespace = cat("token"), cat("ca.crt"), cat("namespace")
        kubeconfig = yaml.safe_load(c.kubeconfig.read_text())
        assert ca == base64.b64decode(kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
        assert namespace == "default"
        body = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        assert claims["kubernetes.io"]["pod"] == {"name": "reader", "uid": pod["metadata"]["uid"]}
        assert claims["sub"] == "system:serviceaccount:default:default"
        # as kube-apiserver extends them: valid a year, with a warning after the 3607 s asked for
        assert claims["exp"] - claims["iat"] == 365 * 86400
        assert claims["kubernetes.io"]["warnafter"] - claims["iat"] == 3607
        node = c.kubectl_json("get", "node", pod["spec"]["nodeName"])
        assert claims["kubernetes.io"]["node"] == {"name": node["metadata"]["name"], "uid": node["metadata"]["uid"]}
        assert claims["jti"]
        # the volume is read-only in the container
        res = c.kubectl("exec", "reader", "--", "sh", "-c", f"echo x > {SA_DIR}/token", check=False)
        assert res.returncode != 0

        env = dict(line.split("=", 1) for line in c.kubectl("exec", "reader", "--", "env").stdout.splitlines()
                   if "=" in line)
        files = tmp_path / "sa"
        files.mkdir()
        for name, text in (("token", token), ("ca.crt", ca), ("namespace", namespace)):
            (files / name).write_text(text)

        def in_cluster_list() -> str:
            res = subprocess.run(["ip", "netns", "exec", f"skube-{pod['metadata']['uid']}", sys.executable,
                                  "-c", IN_CLUSTER_LIST, str(files / "token"), str(files / "ca.crt"),
                                  env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"],
                                  str(files / "namespace")], capture_output=True, text=True, timeout=60)
            return res.stdout.strip() or res.stderr

        assert in_cluster_list() == "status:403"           # authenticated, but no RBAC grant yet
        c.kubectl("create", "role", "pod-reader", "--verb=list", "--resource=pods")
        c.kubectl("create", "rolebinding", "pod-reader", "--role=pod-reader", "--serviceaccount=default:default")
        assert in_cluster_list() == "pods:reader"
    finally:
        if c.proc.poll() is None:
            c.kubectl("delete", "pods", "--all", "--wait=true", "--timeout=60s", check=False)
            wait_for(lambda: no_pods_left(c), timeout=90, message="every pod gone")
        assert c.stop() == 0, c.log.read_text()
        remove_bridge(c)
