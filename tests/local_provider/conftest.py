"""Fixtures for the local provider: a loopback registry holding a busybox image (built from
Debian's busybox-static), a `skube apiserver` without controllers, and a `skube virtual-node
--provider local` process with its own bridge and pod CIDR; everything it leaves is removed."""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.node.conftest import Node
from tests.conftest import Cluster, free_port, start_apiserver, wait_for
from tests.runtime.conftest import BUSYBOX, REGISTRY_BIN, build_image, busybox_tar, push_image, start_registry

ROOT = Path(__file__).resolve().parent.parent.parent
NODE = "local-node"

needs_host = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("runc") or not shutil.which("conmon")
    or not os.path.exists(BUSYBOX) or not os.path.exists(REGISTRY_BIN)
    or not os.path.exists("/usr/lib/cni/bridge"),
    reason="needs root, runc, conmon, busybox-static, docker-registry and containernetworking-plugins")


@dataclass
class Env:
    cluster: Cluster
    registry: str          # host:port
    image: str             # the busybox image reference in it
    node_dir: Path
    bridge: str
    node: Node | None = None
    config: Path | None = None

    def start_node(self, timeout: float = 60) -> Node:
        port = free_port()
        log = self.node_dir / f"node-{int(time.time() * 1000)}.log"
        args = [sys.executable, "-m", "skube.cli_node", "--kubeconfig", str(self.cluster.kubeconfig),
                "--name", NODE, "--provider", "local", "--kubelet-port", str(port),
                "--kubelet-bind", "127.0.0.1", "--data-dir", str(self.node_dir),
                "--provider-config", str(self.config), "-v"]
        proc = subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=ROOT)
        wait_for(lambda: proc.poll() is not None or "ready" in log.read_text(), timeout=timeout,
                 message="virtual node ready")
        assert proc.poll() is None, log.read_text()
        self.node = Node(NODE, proc, self.node_dir, port, log)
        return self.node

    def push(self, tag: str) -> str:
        from skube.runtime.images.registry import RegistryClient

        async def go():
            c = RegistryClient()
            try:
                await push_image(c, f"{self.registry}/library/busybox:{tag}", _IMAGE[0])
            finally:
                await c.close()
        asyncio.run(go())
        return f"{self.registry}/library/busybox:{tag}"


_IMAGE: list = []


def leftovers(node_dir: Path, uid: str) -> dict:
    """What a deleted pod could leave on this host."""
    from skube.runtime import cgroups
    out = {}
    if Path(f"/run/netns/skube-{uid}").exists():
        out["netns"] = f"skube-{uid}"
    with open("/proc/self/mountinfo") as f:
        mounts = [ln.split()[4] for ln in f if uid in ln.split()[4]]
    if mounts:
        out["mounts"] = mounts
    if uid in cgroups.list_pods() or cgroups.exists(cgroups.pod_path(uid)):
        out["cgroup"] = cgroups.pod_path(uid)
    if (node_dir / "local" / "pods" / uid).exists():
        out["dir"] = str(node_dir / "local" / "pods" / uid)
    procs = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if uid.encode() in (p / "cmdline").read_bytes():
                    procs.append(int(p.name))
            except OSError:
                pass
    if procs:
        out["processes"] = procs
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    tmp = tmp_path_factory.mktemp("local")
    _IMAGE[:] = [build_image([busybox_tar()], ["gzip"], cmd=("sh",))]
    reg = start_registry(tmp, "registry")
    cluster = start_apiserver(tmp / "cluster", None, "--controllers=")
    wid = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    n = int(wid[2:]) if wid.startswith("gw") and wid[2:].isdigit() else 0
    bridge = f"sklp{n}"
    node_dir = tmp / "node"
    node_dir.mkdir()
    cfg = node_dir / "provider.yaml"
    cfg.write_text(f"network:\n  cidr: 10.{220 + n}.0.0/24\n  bridge: {bridge}\n  name: sklocal{n}\n"
                   f"volumeSyncPeriod: 30\n")
    e = Env(cluster, reg.host, "", node_dir, bridge, config=cfg)
    e.image = e.push("1.0")
    e.start_node()
    try:
        yield e
    finally:
        try:
            if e.node and e.node.proc.poll() is None:
                cluster.kubectl("delete", "pods", "--all", "--grace-period=0", "--wait=true", "--timeout=30s",
                                check=False)
                e.node.stop()
        finally:
            # whatever is still there (a failed test): containers, namespaces, mounts, cgroups
            runc_root = node_dir / "local" / "runc"
            subprocess.run(["sh", "-c", f"runc --root {runc_root} list -q | xargs -r -n1 "
                                        f"runc --root {runc_root} delete -f"], capture_output=True)
            pods = node_dir / "local" / "pods"
            uids = [p.name for p in pods.iterdir()] if pods.exists() else []
            with open("/proc/self/mountinfo") as f:
                mounts = [ln.split()[4] for ln in f if str(node_dir) in ln.split()[4]]
            for m in sorted(mounts, key=len, reverse=True):
                subprocess.run(["umount", "-l", m], capture_output=True)
            from skube.runtime import cgroups
            for uid in uids:
                subprocess.run(["ip", "netns", "delete", f"skube-{uid}"], capture_output=True)
                cgroups.remove(cgroups.pod_path(uid))
            subprocess.run(["ip", "link", "delete", bridge], capture_output=True)
            cluster.stop()
            reg.proc.terminate()
            reg.proc.wait(10)
