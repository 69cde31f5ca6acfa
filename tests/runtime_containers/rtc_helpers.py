"""Helpers for real runc container tests: a busybox rootfs (Debian busybox-static), a private
bridge/CIDR per test worker, and a leak check after every test."""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from skube.runtime import cgroups
from skube.runtime.instance import InstanceManager, Prepared
from skube.runtime.sandbox import NetworkConfig

BUSYBOX = "/bin/busybox"

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("runc") or not shutil.which("conmon")
    or not os.path.exists(BUSYBOX) or not os.path.exists("/usr/lib/cni/bridge"),
    reason="needs root, runc, conmon, busybox-static and containernetworking-plugins")


def build_busybox_rootfs(root: Path) -> Path:
    """A plain-directory rootfs: /bin/busybox plus a symlink per applet, passwd/group."""
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True).stdout.split()
    for a in applets:
        if a != "busybox":
            os.symlink("busybox", root / "bin" / a)
    for d in ("etc", "tmp", "proc", "sys", "dev", "root"):
        (root / d).mkdir(exist_ok=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                         "nobody:x:65534:65534:nobody:/:/bin/false\n")
    (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    return root


@dataclass
class Env:
    data_dir: Path
    net: NetworkConfig
    base_rootfs: Path
    uids: set

    def pod(self, name: str, containers: list[dict], **spec) -> dict:
        p = pod(name, containers, **spec)
        self.uids.add(p["metadata"]["uid"])
        return p

    async def prepare(self, pod: dict, container: dict, cdir: Path) -> Prepared:
        rootfs = cdir / "bundle" / "rootfs"
        if rootfs.exists():
            shutil.rmtree(rootfs)
        await asyncio.to_thread(shutil.copytree, self.base_rootfs, rootfs,
                                symlinks=True, copy_function=os.link)
        return Prepared(rootfs=rootfs, image_config={"Env": ["PATH=/bin"], "Cmd": ["sh"]},
                        image_id="busybox-static")

    def manager(self, **kw) -> InstanceManager:
        return InstanceManager(self.data_dir, self.prepare, network=self.net, **kw)


def pod(name: str, containers: list[dict], **spec) -> dict:
    return {"metadata": {"name": name, "namespace": "default", "uid": str(uuid.uuid4())},
            "spec": {"containers": containers, **spec}}


async def until(fn, timeout: float = 15, what: str = "condition"):
    """Poll ``fn`` (sync or async) until truthy; returns its value."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        v = fn()
        if asyncio.iscoroutine(v):
            v = await v
        if v:
            return v
        if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.2)


def leaks(env: Env) -> dict:
    """Everything a deleted instance could leave behind."""
    out = {}
    ns = [p.name for p in Path("/run/netns").glob("skube-*")] if Path("/run/netns").exists() else []
    mgr_pods = env.data_dir / "pods"
    owned = {p.name for p in mgr_pods.iterdir()} if mgr_pods.exists() else set()
    out["netns"] = [n for n in ns if n[len("skube-"):] in env.uids]
    with open("/proc/self/mountinfo") as f:
        out["mounts"] = [l.split()[4] for l in f if str(env.data_dir) in l.split()[4]]
    out["ips"] = [p.name for p in (env.data_dir / "cni" / "ipam" / env.net.name).glob("*.*.*.*")] \
        if (env.data_dir / "cni" / "ipam" / env.net.name).exists() else []
    out["pods_dirs"] = sorted(owned)
    procs = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes()
            except OSError:
                continue
            if str(env.data_dir).encode() in cmd:
                procs.append(int(p.name))
    out["processes"] = procs
    return {k: v for k, v in out.items() if v}


