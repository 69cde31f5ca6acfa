"""Fixtures for virtual-node tests: a `skube apiserver` without controllers (its
pods/log proxies to the node's kubelet API) and `skube virtual-node` processes
(mock provider)."""
from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Cluster, free_port, start_apiserver

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


@dataclass
class Node:
    """A `skube virtual-node` subprocess."""
    name: str
    proc: subprocess.Popen
    data_dir: Path
    kubelet_port: int
    log: Path

    def stop(self, sig=signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"node did not stop within {timeout}s")
        return self.proc.returncode

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait()


def start_node(cluster: Cluster, name: str, data_dir: Path, *extra: str, kubelet_port: int | None = None,
               config: str | None = None, timeout: float = 60) -> Node:
    kubelet_port = kubelet_port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "skube.cli_node", "--kubeconfig", str(cluster.kubeconfig),
            "--name", name, "--provider", "mock", "--kubelet-port", str(kubelet_port),
            "--data-dir", str(data_dir), *extra]
    if config is not None:
        cfg = data_dir / "provider.yaml"
        cfg.write_text(config)
        args += ["--provider-config", str(cfg)]
    log = data_dir / f"node-{int(time.time() * 1000)}.log"
    out = open(log, "w")
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"node exited with {proc.returncode}:\n{log.read_text()}")
        if "ready" in log.read_text():
            return Node(name, proc, data_dir, kubelet_port, log)
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"node not ready in {timeout}s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = start_apiserver(tmp_path_factory.mktemp("skube"), None, "--controllers=")
    yield c
    code = c.stop()
    assert code == 0, f"apiserver exit code {code}:\n{c.log.read_text()}"


def run(coro):
    return asyncio.run(coro)


def pod_body(name: str, node: str, *, image: str = "nginx:1.27", annotations: dict | None = None,
             restart_policy: str | None = None, **spec) -> dict:
    s = {"nodeName": node, "containers": [{"name": "c", "image": image}],
         "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}], **spec}
    if restart_policy:
        s["restartPolicy"] = restart_policy
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "annotations": annotations or {}},
            "spec": s}


async def create_pods(cluster: Cluster, bodies: list[dict], concurrency: int = 64) -> None:
    from skube.client import Client
    sem = asyncio.Semaphore(concurrency)
    async with Client.from_kubeconfig(str(cluster.kubeconfig), component="test") as c:
        async def one(b):
            async with sem:
                await c.create("/api/v1/namespaces/default/pods", b)
        await asyncio.gather(*(one(b) for b in bodies))


async def delete_pods(cluster: Cluster, names: list[str], concurrency: int = 64, **kw) -> None:
    from skube.client import ApiError, Client, resource
    pods = resource("v1", "pods")
    sem = asyncio.Semaphore(concurrency)
    async with Client.from_kubeconfig(str(cluster.kubeconfig), component="test") as c:
        async def one(n):
            async with sem:
                try:
                    await c.delete(pods, n, "default", **kw)
                except ApiError as e:
                    if not e.not_found:
                        raise
        await asyncio.gather(*(one(n) for n in names))


async def list_pods(cluster: Cluster, label_selector: str | None = None) -> list[dict]:
    from skube.client import Client, resource
    async with Client.from_kubeconfig(str(cluster.kubeconfig), component="test") as c:
        return (await c.list_all(resource("v1", "pods"), "default", label_selector=label_selector))["items"]


def kubelet_client(cluster: Cluster, cert: bool = True):
    """An httpx client for a node's kubelet API, with the cluster's admin client certificate."""
    import ssl

    import httpx
    pki = cluster.data_dir / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if cert:
        ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return httpx.Client(verify=ctx, timeout=10)
