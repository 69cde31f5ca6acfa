"""Helm 4 (server-side apply by default) installs, upgrades and uninstalls a real chart."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

HELM = str(Path(sys.executable).parent / "helm")

CHART = {
    "Chart.yaml": "apiVersion: v2\nname: shop\nversion: 0.1.0\nappVersion: '1.0'\n",
    "values.yaml": "replicas: 2\nimage: busybox:1.36\ngreeting: hello\n",
    "templates/deployment.yaml": textwrap.dedent("""\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {{ .Release.Name }}-web
          labels: {app: {{ .Release.Name }}}
        spec:
          replicas: {{ .Values.replicas }}
          selector:
            matchLabels: {app: {{ .Release.Name }}}
          template:
            metadata:
              labels: {app: {{ .Release.Name }}}
            spec:
              containers:
              - name: web
                image: {{ .Values.image }}
                ports:
                - containerPort: 8080
                env:
                - name: GREETING
                  valueFrom:
                    configMapKeyRef: {name: {{ .Release.Name }}-config, key: greeting}
        """),
    "templates/service.yaml": textwrap.dedent("""\
        apiVersion: v1
        kind: Service
        metadata:
          name: {{ .Release.Name }}-web
        spec:
          selector: {app: {{ .Release.Name }}}
          ports:
          - port: 80
            targetPort: 8080
        """),
    "templates/configmap.yaml": textwrap.dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {{ .Release.Name }}-config
        data:
          greeting: {{ .Values.greeting | quote }}
        """),
}


def helm(cluster, *args: str) -> str:
    env = dict(os.environ, KUBECONFIG=str(cluster.kubeconfig), HELM_CACHE_HOME=str(cluster.data_dir / "helm-cache"),
               HELM_CONFIG_HOME=str(cluster.data_dir / "helm-config"), HELM_DATA_HOME=str(cluster.data_dir / "helm-data"))
    res = subprocess.run([HELM, *args], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, f"helm {' '.join(args)}:\n{res.stdout}\n{res.stderr}"
    return res.stdout


def test_helm_install_upgrade_uninstall(cluster, tmp_path):
    chart = tmp_path / "shop"
    for rel, text in CHART.items():
        (chart / rel).parent.mkdir(parents=True, exist_ok=True)
        (chart / rel).write_text(text)
    helm(cluster, "install", "shop", str(chart), "--namespace", "default")
    d = cluster.kubectl_json("get", "deployment", "shop-web")
    assert d["spec"]["replicas"] == 2
    svc = cluster.kubectl_json("get", "service", "shop-web")
    assert svc["spec"]["clusterIP"] and svc["spec"]["ports"][0]["targetPort"] == 8080
    managed = json.loads(cluster.kubectl("get", "deployment", "shop-web", "-o", "json",
                                         "--show-managed-fields").stdout)["metadata"]["managedFields"]
    assert any(m["operation"] == "Apply" for m in managed)          # Helm 4 applies server-side
    releases = json.loads(helm(cluster, "list", "-o", "json"))
    assert [(r["name"], r["status"]) for r in releases] == [("shop", "deployed")]

    helm(cluster, "upgrade", "shop", str(chart), "--set", "replicas=3", "--set", "greeting=hi")
    assert cluster.kubectl_json("get", "deployment", "shop-web")["spec"]["replicas"] == 3
    assert cluster.kubectl_json("get", "configmap", "shop-config")["data"] == {"greeting": "hi"}
    history = json.loads(helm(cluster, "history", "shop", "-o", "json"))
    assert [h["revision"] for h in history] == [1, 2]

    helm(cluster, "rollback", "shop", "1")
    assert cluster.kubectl_json("get", "deployment", "shop-web")["spec"]["replicas"] == 2

    helm(cluster, "uninstall", "shop")
    for kind, name in (("deployment", "shop-web"), ("service", "shop-web"), ("configmap", "shop-config")):
        assert cluster.kubectl("get", kind, name, check=False).returncode != 0
