"""Fixtures for real runc containers: a busybox rootfs (Debian busybox-static), a private
bridge/CIDR per test worker, and a leak check after every test."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from skube.runtime import cgroups
from rtc_helpers import Env, build_busybox_rootfs, leaks
from skube.runtime.sandbox import NetworkConfig


_worker_seq = [0]


@pytest.fixture
def env(request):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    wid = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    n = int(wid[2:]) if wid.startswith("gw") else 0
    data = Path(tempfile.mkdtemp(prefix="skrt", dir="/tmp"))
    base = build_busybox_rootfs(data / "busybox")
    net = NetworkConfig(cidr=f"10.{200 + n}.0.0/24", bridge=f"skt{n}", name=f"sktest{n}")
    e = Env(data, net, base, set())
    yield e
    left = leaks(e)
    new_cg = set(cgroups.list_pods()) & e.uids
    # clean up whatever is left even when the test failed, then report
    if left or new_cg:
        subprocess.run(["sh", "-c", f"runc --root {data}/runc list -q | xargs -r -n1 runc --root {data}/runc delete -f"],
                       capture_output=True)
        for p in Path("/run/netns").glob("skube-*"):
            if p.name[len('skube-'):] in e.uids:
                subprocess.run(["ip", "netns", "delete", p.name], capture_output=True)
        for m in sorted(left.get("mounts", []), key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        for uid in new_cg:
            cgroups.remove(cgroups.pod_path(uid))
    subprocess.run(["ip", "link", "delete", net.bridge], capture_output=True)
    shutil.rmtree(data, ignore_errors=True)
    assert not left and not new_cg, f"leaked: {left} cgroups={new_cg}"
