"""`skube up`: API server, controllers, scheduler and the virtual node in one command."""
from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import BIN, Cluster, free_port, wait_for


def start_up(data_dir: Path, port: int | None = None, timeout: float = 60) -> Cluster:
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / f"up-{port}-{int(time.time() * 1000)}.log"
    proc = subprocess.Popen([str(BIN / "skube"), "up", "--data-dir", str(data_dir), "--port", str(port),
                             "--kubelet-port", "0"], stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    c = Cluster(proc, data_dir, port, log)
    wait_for(lambda: "ready" in log.read_text() or proc.poll() is not None, timeout=timeout,
             message="skube up to be ready")
    assert proc.poll() is None, log.read_text()
    return c


def phase(c: Cluster, name: str, ns: str = "default") -> str:
    res = c.kubectl("-n", ns, "get", "pod", name, "-o", "jsonpath={.status.phase}", check=False)
    return res.stdout if res.returncode == 0 else ""


def test_up_runs_pods_on_the_virtual_node_and_resumes(tmp_path):
    data = tmp_path / "cluster"
    (data).mkdir()
    (data / "config.yaml").write_text(
        "serverless:\n  default: true\n  rules:\n  - namespace: pinned\n    enabled: false\n")
    c = start_up(data)
    try:
        out = c.log.read_text()
        assert f"export KUBECONFIG={data / 'kubeconfig'}" in out
        nodes = c.kubectl_json("get", "nodes")["items"]
        assert [n["metadata"]["name"] for n in nodes] == ["skube-virtual-node"]
        c.kubectl("run", "web", "--image=busybox:1.36", "--", "sleep", "3600")
        wait_for(lambda: phase(c, "web") == "Running", timeout=30, message="pod Running")
        pod = c.kubectl_json("get", "pod", "web")
        assert pod["spec"]["nodeName"] == "skube-virtual-node"
        assert {"key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoSchedule"} \
            in pod["spec"]["tolerations"]
        assert "busybox:1.36" in c.kubectl("logs", "web").stdout
        # a namespace the config keeps off the virtual node: no toleration, so it cannot be placed
        c.kubectl("create", "namespace", "pinned")
        c.kubectl("-n", "pinned", "run", "stay", "--image=busybox:1.36")
        wait_for(lambda: "FailedScheduling" in c.kubectl("-n", "pinned", "describe", "pod", "stay").stdout,
                 timeout=30, message="FailedScheduling event")
        assert "untolerated taint" in c.kubectl("-n", "pinned", "describe", "pod", "stay").stdout
        assert c.stop(signal.SIGINT) == 0
        assert "skube cluster stopped" in c.log.read_text()
        # running `skube up` again resumes the cluster with its pods
        c = start_up(data, c.port)
        assert phase(c, "web") == "Running"
        c.kubectl("delete", "pod", "web", "--wait=true", "--timeout=30s")
        assert c.kubectl("get", "pod", "web", check=False).returncode != 0
    finally:
        assert c.stop() == 0, c.log.read_text()
