"""kubectl attach to a pod of the mock provider: its simulated main process echoes stdin."""
from __future__ import annotations

import json

import pytest

from tests.conftest import KUBECTL, wait_for
from tests.node.conftest import pod_body, start_node

NODE = "vn-attach"


@pytest.fixture(scope="module")
def node(cluster, tmp_path_factory):
    n = start_node(cluster, NODE, tmp_path_factory.mktemp("node"))
    yield n
    assert n.stop() == 0, n.log.read_text()


def test_kubectl_attach_i_echoes_stdin_on_the_mock_provider(cluster, node):
    import subprocess
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod_body(
        "echo", NODE, containers=[{"name": "c", "image": "busybox", "stdin": True}])))
    wait_for(lambda: json.loads(cluster.kubectl("get", "pod", "echo", "-o", "json").stdout)
             .get("status", {}).get("phase") == "Running", message="echo Running")
    res = subprocess.run([KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "attach", "-i", "echo"],
                         input=b"ping\npong\n", capture_output=True, timeout=60)
    assert res.returncode == 0, res
    assert res.stdout == b"ping\npong\n", res
    res = cluster.kubectl("attach", "echo", "-c", "nope", check=False)
    assert res.returncode != 0 and "nope" in res.stderr
    cluster.kubectl("delete", "pod", "echo", "--grace-period=0", "--wait=true", "--timeout=30s")
