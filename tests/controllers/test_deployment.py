"""Deployments end to end: rolling update availability, rollout status/history/undo,
pause/resume and restart, Recreate; ReplicaSet scale-down order."""
from __future__ import annotations

import threading
import time

from tests.conftest import wait_for
from tests.controllers.conftest import PodWatch, is_ready, pod_template

NS = "default"


def deployment(name: str, replicas: int, image: str, **strategy) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "strategy": strategy or {"type": "RollingUpdate"},
                     "template": pod_template(labels, image)}}


def test_rolling_update_keeps_availability_and_undo(env):
    env.apply(deployment("web", 3, "nginx:1.0",
                         type="RollingUpdate", rollingUpdate={"maxUnavailable": 0, "maxSurge": 1}))
    env.kubectl("rollout", "status", "deployment/web", "--timeout=60s")
    d = env.get("deployment", "web", "-n", NS)
    assert d["status"]["availableReplicas"] == 3 and d["status"]["updatedReplicas"] == 3
    conds = {c["type"]: c for c in d["status"]["conditions"]}
    assert conds["Available"]["status"] == "True"
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
    rs1 = env.get("rs", "-n", NS, "-l", "app=web")["items"]
    assert len(rs1) == 1
    h1 = rs1[0]["metadata"]["labels"]["pod-template-hash"]
    assert rs1[0]["metadata"]["name"] == f"web-{h1}"
    assert rs1[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert rs1[0]["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "3"
    assert rs1[0]["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "4"

    ready: dict[str, bool] = {}
    low = [3]
    lock = threading.Lock()

    def on_event(etype, pod):
        with lock:
            name = pod["metadata"]["name"]
            if etype == "DELETED":
                ready.pop(name, None)
            else:
                ready[name] = is_ready(pod) and not pod["metadata"].get("deletionTimestamp")
            low[0] = min(low[0], sum(ready.values()))

    for p in env.pods(NS, "app=web"):
        ready[p["metadata"]["name"]] = is_ready(p)
    watch = PodWatch(env, NS, "app=web", on_event)
    try:
        env.kubectl("set", "image", "deployment/web", "c=nginx:2.0", "-n", NS)
        env.kubectl("annotate", "deployment/web", "kubernetes.io/change-cause=to 2.0", "-n", NS)
        env.kubectl("rollout", "status", "deployment/web", "--timeout=60s")
    finally:
        watch.stop()
    assert low[0] >= 3, f"ready pods fell to {low[0]} with maxUnavailable 0"
    pods = env.pods(NS, "app=web")
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert len(live) == 3 and all(p["spec"]["containers"][0]["image"] == "nginx:2.0" for p in live)

    hist = env.kubectl("rollout", "history", "deployment/web", "-n", NS).stdout
    assert "1 " in hist and "2 " in hist and "to 2.0" in hist

    env.kubectl("rollout", "undo", "deployment/web", "-n", NS)
    env.kubectl("rollout", "status", "deployment/web", "--timeout=60s")
    d = env.get("deployment", "web", "-n", NS)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.0"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    old = env.get("rs", f"web-{h1}", "-n", NS)
    assert old["spec"]["replicas"] == 3
    assert old["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert old["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    events = env.kubectl("describe", "deployment", "web", "-n", NS).stdout
    assert "ScalingReplicaSet" in events and "Scaled up replica set" in events


def test_pause_resume_restart_and_scale(env):
    env.apply(deployment("pr", 2, "nginx:1.0"))
    env.kubectl("rollout", "status", "deployment/pr", "--timeout=60s")
    env.kubectl("rollout", "pause", "deployment/pr", "-n", NS)
    wait_for(lambda: any(c.get("reason") == "DeploymentPaused"
                         for c in env.get("deployment", "pr", "-n", NS)["status"].get("conditions", [])),
             message="DeploymentPaused")
    env.kubectl("set", "image", "deployment/pr", "c=nginx:9", "-n", NS)
    env.kubectl("scale", "deployment/pr", "--replicas=4", "-n", NS)
    wait_for(lambda: env.get("deployment", "pr", "-n", NS)["status"].get("availableReplicas") == 4,
             30, message="paused deployment scaled")
    assert len(env.get("rs", "-n", NS, "-l", "app=pr")["items"]) == 1      # no rollout while paused
    env.kubectl("rollout", "resume", "deployment/pr", "-n", NS)
    env.kubectl("rollout", "status", "deployment/pr", "--timeout=60s")
    assert len(env.get("rs", "-n", NS, "-l", "app=pr")["items"]) == 2
    env.kubectl("rollout", "restart", "deployment/pr", "-n", NS)
    env.kubectl("rollout", "status", "deployment/pr", "--timeout=60s")
    sets = env.get("rs", "-n", NS, "-l", "app=pr")["items"]
    assert len(sets) == 3
    assert sorted(s["spec"]["replicas"] for s in sets) == [0, 0, 4]


def test_recreate(env):
    env.apply(deployment("rc", 2, "nginx:1.0", type="Recreate"))
    env.kubectl("rollout", "status", "deployment/rc", "--timeout=60s")
    env.kubectl("set", "image", "deployment/rc", "c=nginx:2.0", "-n", NS)
    env.kubectl("rollout", "status", "deployment/rc", "--timeout=60s")
    pods = [p for p in env.pods(NS, "app=rc") if not p["metadata"].get("deletionTimestamp")]
    assert len(pods) == 2 and all(p["spec"]["containers"][0]["image"] == "nginx:2.0" for p in pods)


def test_pod_template_hash_shape(env):
    from skube.controllers.deployment import SAFE_ALPHABET, template_hash
    env.apply(deployment("hashed", 1, "nginx:1.0"))
    rs = wait_for(lambda: env.get("rs", "-n", NS, "-l", "app=hashed")["items"], 30, message="rs")[0]
    d = env.get("deployment", "hashed", "-n", NS)
    h = rs["metadata"]["labels"]["pod-template-hash"]
    assert h == template_hash(d["spec"]["template"], d["status"].get("collisionCount"))
    assert set(h) <= set(SAFE_ALPHABET) and 1 <= len(h) <= 10     # safe-encoded decimal of a uint32
    assert rs["spec"]["selector"]["matchLabels"]["pod-template-hash"] == h
    assert template_hash(d["spec"]["template"], 1) != h
    env.kubectl("delete", "deployment", "hashed", "-n", NS, "--wait=false")


def _progressing(env, name: str) -> dict:
    d = env.get("deployment", name, "-n", NS)
    return next((c for c in d["status"].get("conditions") or [] if c["type"] == "Progressing"), {})


def test_progress_deadline_exceeded_and_paused(env):
    """Pods that never start: Progressing=False/ProgressDeadlineExceeded after the deadline and
    `kubectl rollout status` fails with upstream's message; a paused deployment never times out."""
    for name in ("stuck", "held"):
        d = deployment(name, 2, "nginx:1.0")
        d["spec"]["progressDeadlineSeconds"] = 3
        d["spec"]["template"]["metadata"]["annotations"] = {"mock.skube.io/start-delay-ms": "600000"}
        env.apply(d)
    env.kubectl("rollout", "pause", "deployment/held", "-n", NS)
    wait_for(lambda: _progressing(env, "held").get("reason") == "DeploymentPaused", 30, message="paused")
    assert _progressing(env, "stuck").get("reason") in ("NewReplicaSetCreated", "ReplicaSetUpdated")
    res = env.kubectl("rollout", "status", "deployment/stuck", "-n", NS, "--timeout=60s", check=False)
    assert res.returncode != 0
    assert 'error: deployment "stuck" exceeded its progress deadline' in res.stderr
    cond = _progressing(env, "stuck")
    rs = env.get("rs", "-n", NS, "-l", "app=stuck")["items"][0]["metadata"]["name"]
    assert cond["status"] == "False" and cond["reason"] == "ProgressDeadlineExceeded"
    assert cond["message"] == f'ReplicaSet "{rs}" has timed out progressing.'
    held_since = _progressing(env, "held")["lastUpdateTime"]
    from skube.controllers.controllerutils import parse_time
    wait_for(lambda: time.time() > parse_time(held_since) + 5, 15)
    env.kubectl("annotate", "deployment", "held", "-n", NS, "poke=1")     # one more sync past the deadline
    wait_for(lambda: env.get("deployment", "held", "-n", NS)["status"].get("observedGeneration") is not None, 10)
    held = _progressing(env, "held")
    assert held["status"] == "Unknown" and held["reason"] == "DeploymentPaused"
    env.kubectl("delete", "deployment", "stuck", "held", "-n", NS, "--wait=false")
