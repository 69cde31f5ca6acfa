"""Spot instances on the local provider: a real container of a spot pod is stopped (SIGTERM
within its grace period) after a SpotToBeReleased warning, and the pod fails with the
DisruptionTarget condition."""
from __future__ import annotations

import pytest

from tests.conftest import wait_for
from tests.local_provider.conftest import leftovers, needs_host
from tests.local_provider.test_local_provider import create, get, logs, pod, running

pytestmark = needs_host


@pytest.fixture(scope="module")
def spot_env(env):
    """The module's node, restarted with a short spot warning."""
    env.node.stop()
    env.config.write_text(env.config.read_text() + "spot: {warningSeconds: 1}\n")
    env.start_node()
    return env


def test_reclaimed_spot_instance_stops_its_container_and_fails_the_pod(spot_env):
    env = spot_env
    body = pod("spot", [{"name": "main", "image": env.image,
                         "command": ["sh", "-c", "trap 'echo got TERM; exit 0' TERM; echo started; "
                                                 "while true; do sleep 0.1; done"]}])
    body["metadata"]["annotations"] = {"k8s.aliyun.com/eci-spot-strategy": "SpotAsPriceGo",
                                       "spot.skube.io/reclaim-after-seconds": "3"}
    create(env, body)
    uid = running(env, "spot")["metadata"]["uid"]
    wait_for(lambda: "started" in logs(env, "spot"), message="started")
    wait_for(lambda: get(env, "spot")["status"]["phase"] == "Failed", timeout=30, message="reclaimed")
    st = get(env, "spot")["status"]
    cond = next(c for c in st["conditions"] if c["type"] == "DisruptionTarget")
    assert cond["status"] == "True" and cond["reason"] == "TerminationByKubelet"
    assert st["reason"] == "Terminated"
    assert "got TERM" in logs(env, "spot")            # the real process was asked to stop
    events = env.cluster.kubectl_json("get", "events", "--field-selector", "reason=SpotToBeReleased")["items"]
    assert [e["involvedObject"]["uid"] for e in events] == [uid]
    env.cluster.kubectl("delete", "pod", "spot", "--grace-period=0", "--wait=true", "--timeout=30s")
    wait_for(lambda: leftovers(env.node_dir, uid) == {}, timeout=30, message="cleaned up")
