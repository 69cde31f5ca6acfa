"""`kubectl top pod` / `kubectl top node` on `skube up`: real containers on the local
provider, their cgroup usage read by the kubelet's /metrics/resource and served by the
API server's metrics.k8s.io."""
from __future__ import annotations

import json
import re

from tests.conftest import wait_for
from tests.e2e.test_up import IMAGE, no_pods_left, phase, remove_bridge, start_up

NET = 2           # this module's pod network slot (see start_up)

# ~24 MB held in a shell variable, and a little CPU every 200 ms
SCRIPT = ('x=$(head -c 24000000 /dev/zero | tr "\\0" a); '
          'while true; do i=0; while [ $i -lt 400 ]; do i=$((i+1)); done; sleep 0.2; done')


def top_rows(c, *args: str) -> dict[str, list[str]]:
    res = c.kubectl("top", *args, check=False)
    if res.returncode != 0:
        return {}
    return {line.split()[0]: line.split()[1:] for line in res.stdout.splitlines()[1:] if line.strip()}


def millicores(v: str) -> int:
    return int(v[:-1]) if v.endswith("m") else int(v) * 1000


def mebibytes(v: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    return float(v[:-2]) * units[v[-2:]] if v[-2:] in units else float(v) / 2**20


def test_kubectl_top_with_real_containers(tmp_path):
    c = start_up(tmp_path / "cluster", net=NET)
    try:
        c.kubectl("run", "hog", f"--image={IMAGE}", "--labels=app=hog", "--", "sh", "-c", SCRIPT)
        c.kubectl("run", "idle", f"--image={IMAGE}", "--labels=app=idle", "--", "sleep", "3600")
        wait_for(lambda: phase(c, "hog") == "Running" and phase(c, "idle") == "Running", timeout=90,
                 message="pods Running")
        rows = wait_for(lambda: (r := top_rows(c, "pod")) and {"hog", "idle"} <= set(r) and r, timeout=60,
                        message="kubectl top pod lists both pods")
        hog_cpu, hog_mem = millicores(rows["hog"][0]), mebibytes(rows["hog"][1])
        assert hog_mem >= 23, rows          # the 24 MB variable is in the working set
        assert mebibytes(rows["idle"][1]) < hog_mem - 15, rows
        assert hog_cpu >= 1, rows           # the loop shows up as CPU use
        assert millicores(rows["idle"][0]) < 1000, rows

        only = top_rows(c, "pod", "-l", "app=idle")
        assert set(only) == {"idle"}
        containers = c.kubectl("top", "pod", "hog", "--containers").stdout
        assert re.search(r"^hog\s+hog\s+\d+m\s+\d+Mi", containers, re.M), containers

        pm = json.loads(c.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/hog").stdout)
        assert pm["containers"][0]["name"] == "hog" and pm["metadata"]["labels"] == {"app": "hog"}
        assert pm["window"].endswith("s") and pm["timestamp"].endswith("Z")

        nodes = wait_for(lambda: top_rows(c, "node"), timeout=30, message="kubectl top node")
        assert set(nodes) == {"skube-virtual-node"}
        cpu, cpu_pct, mem, mem_pct = nodes["skube-virtual-node"]
        assert mebibytes(mem) >= hog_mem - 1 and cpu.endswith("m") and cpu_pct.endswith("%")
    finally:
        if c.proc.poll() is None:
            c.kubectl("delete", "pods", "--all", "--wait=true", "--timeout=60s", check=False)
            wait_for(lambda: no_pods_left(c), timeout=90, message="every pod gone")
        assert c.stop() == 0, c.log.read_text()
        remove_bridge(c)
