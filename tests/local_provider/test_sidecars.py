"""Sidecar containers through the virtual node: status in initContainerStatuses (started,
ready), their readiness in the pod's Ready condition, and a restartPolicy: Never pod that
completes when its app container exits while the sidecar was still running."""
from __future__ import annotations

from tests.conftest import wait_for
from tests.local_provider.conftest import leftovers, needs_host
from tests.local_provider.test_local_provider import create, get, pod

pytestmark = needs_host

LOOP = "while true; do sleep 0.1; done"


def conds(p: dict) -> dict:
    return {c["type"]: c["status"] for c in (p.get("status") or {}).get("conditions") or []}


def test_sidecar_readiness_and_completion_of_a_never_restarting_pod(env):
    create(env, pod("sided", [{"name": "main", "image": env.image, "command": [
        "sh", "-c", "until [ -f /tmp/go ]; do sleep 0.1; done; echo done"]}],
        restartPolicy="Never",
        initContainers=[{"name": "side", "image": env.image, "restartPolicy": "Always",
                         "command": ["sh", "-c", f"trap 'exit 0' TERM; {LOOP}"],
                         "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/ready"]},
                                            "periodSeconds": 1}}]))

    def main_running():
        p = get(env, "sided")
        cs = (p.get("status") or {}).get("containerStatuses") or [{}]
        return p if "running" in (cs[0].get("state") or {}) and cs[0].get("ready") else None
    p = wait_for(main_running, timeout=60, message="main running")
    side = p["status"]["initContainerStatuses"][0]
    assert side["name"] == "side" and "running" in side["state"]
    assert side["started"] is True and side["ready"] is False
    c = conds(p)
    assert c["Initialized"] == "True" and c["Ready"] == "False" and c["ContainersReady"] == "False"
    assert p["status"]["phase"] == "Running"
    # the sidecar becomes ready: so does the pod
    env.cluster.kubectl("exec", "sided", "-c", "side", "--", "touch", "/tmp/ready")
    wait_for(lambda: conds(get(env, "sided")).get("Ready") == "True", timeout=30, message="pod Ready")
    # the app container finishes: the pod completes and the sidecar is stopped
    env.cluster.kubectl("exec", "sided", "-c", "main", "--", "touch", "/tmp/go")
    p = wait_for(lambda: (x := get(env, "sided")).get("status", {}).get("phase") == "Succeeded" and x,
                 timeout=60, message="pod Succeeded")
    side = p["status"]["initContainerStatuses"][0]
    assert side["state"]["terminated"]["exitCode"] == 0 and side["restartCount"] == 0
    assert p["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    uid = p["metadata"]["uid"]
    env.cluster.kubectl("delete", "pod", "sided", "--grace-period=1", "--wait=true", "--timeout=30s")
    wait_for(lambda: leftovers(env.node_dir, uid) == {}, timeout=30, message="sided cleaned up")
