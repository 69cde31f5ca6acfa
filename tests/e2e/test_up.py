"""`skube up`: API server, controllers, scheduler and the virtual node (local provider:
real runc containers) in one command, with the examples a newcomer applies."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import BIN, ROOT, Cluster, free_port, wait_for

IMAGE = "skube.local/busybox:host"


def start_up(data_dir: Path, port: int | None = None, timeout: float = 90, *, net: int = 0,
             network_extra: str = "", args: tuple[str, ...] = (), provider_extra: str = "") -> Cluster:
    """`skube up` on its own pod network (bridge and CIDR per ``net`` and xdist worker), so
    clusters of tests running side by side never share addresses. ``network_extra``: more
    lines of the provider config's ``network:`` block (e.g. ``"  defaultRoute: true\n"``);
    ``provider_extra``: more top-level lines of it (e.g. ``"spot: {warningSeconds: 1}\n"``);
    ``args``: more `skube up` arguments (e.g. ``("--provider", "mock")``)."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    k = net * 8 + (int(worker[2:]) if worker[2:].isdigit() else 0)
    config = data_dir / "provider.yaml"
    config.write_text(f"network:\n  cidr: 10.{160 + k}.0.0/24\n  bridge: skup{k}\n  name: skup{k}\n"
                      f"  serviceCIDR: 10.{160 + k}.1.0/24\n  nodePortRange: {30000 + 100 * k}-{30099 + 100 * k}\n"
                      + network_extra + provider_extra)
    log = data_dir / f"up-{port}-{int(time.time() * 1000)}.log"
    proc = subprocess.Popen([str(BIN / "skube"), "up", "--data-dir", str(data_dir), "--port", str(port),
                             "--kubelet-port", "0", "--provider-config", str(config), *args],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    c = Cluster(proc, data_dir, port, log)
    c.bridge = f"skup{k}"   # type: ignore[attr-defined]
    wait_for(lambda: "ready" in log.read_text() or proc.poll() is not None, timeout=timeout,
             message="skube up to be ready")
    assert proc.poll() is None, log.read_text()
    return c


def phase(c: Cluster, name: str, ns: str = "default") -> str:
    res = c.kubectl("-n", ns, "get", "pod", name, "-o", "jsonpath={.status.phase}", check=False)
    return res.stdout if res.returncode == 0 else ""


def no_pods_left(c: Cluster) -> bool:
    return not c.kubectl_json("get", "pods", "-A")["items"]


def test_up_runs_real_pods_and_the_examples_then_resumes(tmp_path):
    data = tmp_path / "cluster"
    data.mkdir()
    (data / "config.yaml").write_text(
        "serverless:\n  default: true\n  rules:\n  - namespace: pinned\n    enabled: false\n")
    c = start_up(data)
    try:
        out = c.log.read_text()
        assert f"export KUBECONFIG={data / 'kubeconfig'}" in out and IMAGE in out
        nodes = c.kubectl_json("get", "nodes")["items"]
        assert [n["metadata"]["name"] for n in nodes] == ["skube-virtual-node"]
        assert nodes[0]["status"]["nodeInfo"]["containerRuntimeVersion"] == "skube://local"
        # a bare pod: a real container from the offline image
        c.kubectl("run", "hello", f"--image={IMAGE}", "--", "sh", "-c", "echo hi from $(hostname); sleep 3600")
        wait_for(lambda: phase(c, "hello") == "Running", timeout=60, message="pod Running")
        pod = c.kubectl_json("get", "pod", "hello")
        assert pod["spec"]["nodeName"] == "skube-virtual-node"
        assert {"key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoSchedule"} \
            in pod["spec"]["tolerations"]
        wait_for(lambda: "hi from hello" in c.kubectl("logs", "hello").stdout, message="container output")
        assert c.kubectl("exec", "hello", "--", "cat", "/etc/hostname").stdout.strip() == "hello"
        # the examples of the README
        c.kubectl("apply", "-f", str(ROOT / "examples"))
        c.kubectl("rollout", "status", "deployment/web", "--timeout=90s")
        c.kubectl("wait", "--for=condition=Complete", "job/count", "--timeout=120s")
        assert len(c.kubectl_json("get", "endpoints", "web")["subsets"][0]["addresses"]) == 2
        # a namespace the config keeps off the virtual node: no toleration, so it cannot be placed
        c.kubectl("create", "namespace", "pinned")
        c.kubectl("-n", "pinned", "run", "stay", f"--image={IMAGE}")
        wait_for(lambda: "FailedScheduling" in c.kubectl("-n", "pinned", "describe", "pod", "stay").stdout,
                 timeout=30, message="FailedScheduling event")
        assert "untolerated taint" in c.kubectl("-n", "pinned", "describe", "pod", "stay").stdout
        started = pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
        assert c.stop(signal.SIGINT) == 0
        assert "skube cluster stopped" in c.log.read_text()
        # running `skube up` again resumes the cluster; the container kept running meanwhile
        c = start_up(data, c.port, net=0)
        wait_for(lambda: phase(c, "hello") == "Running", timeout=30, message="pod re-adopted")
        again = c.kubectl_json("get", "pod", "hello")["status"]["containerStatuses"][0]
        assert again["state"]["running"]["startedAt"] == started and again["restartCount"] == 0
        # the bill covers the pods that ran
        out = subprocess.run([str(BIN / "skube"), "bill", "--data-dir", str(data), "-o", "json"],
                             capture_output=True, text=True, check=True).stdout
        assert "hello" in out and "count-" in out
    finally:
        if c.proc.poll() is None:
            c.kubectl("delete", "namespace", "pinned", "--wait=false", check=False)
            c.kubectl("delete", "-f", str(ROOT / "examples"), "--wait=true", "--timeout=60s", check=False)
            c.kubectl("delete", "pods", "--all", "--wait=true", "--timeout=60s", check=False)
            wait_for(lambda: no_pods_left(c), timeout=90, message="every pod gone")
        assert c.stop() == 0, c.log.read_text()
        remove_bridge(c)


def remove_bridge(c: Cluster) -> None:
    """The pod network bridge outlives skube (as on a real node); tests remove theirs."""
    subprocess.run(["ip", "link", "delete", c.bridge], capture_output=True)
