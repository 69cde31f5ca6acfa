"""Jobs and CronJobs end to end (mock pods that exit after a second)."""
from __future__ import annotations

import threading
import time

from tests.conftest import wait_for
from tests.controllers.conftest import PodWatch, pod_template

NS = "default"
CLOCK_OFFSET = 61.0          # the CronJob controller lives a minute ahead: `* * * * *` fires at once


def _clock():
    return time.time() + CLOCK_OFFSET


CONTROLLER_OPTIONS = {"job": {"pod_failure_backoff": 0.0}, "cronjob": {"clock": _clock}}


def job(name: str, *, completions=None, parallelism=None, backoff_limit=None, exit_code=0, run_seconds=1,
        **spec) -> dict:
    ann = {"mock.skube.io/run-seconds": str(run_seconds), "mock.skube.io/exit-code": str(exit_code)}
    s = {"template": pod_template({"job": name}, "busybox", ann, restart_policy="Never"), **spec}
    for k, v in (("completions", completions), ("parallelism", parallelism), ("backoffLimit", backoff_limit)):
        if v is not None:
            s[k] = v
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NS}, "spec": s}


def conditions(obj: dict) -> dict:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("status") == "True"}


def test_completions_with_parallelism(env):
    active: set[str] = set()
    peak = [0]
    lock = threading.Lock()

    def on_event(etype, pod):
        with lock:
            name = pod["metadata"]["name"]
            live = etype != "DELETED" and not pod["metadata"].get("deletionTimestamp") and \
                (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            (active.add if live else active.discard)(name)
            peak[0] = max(peak[0], len(active))

    watch = PodWatch(env, NS, "job=five", on_event)
    try:
        env.apply(job("five", completions=5, parallelism=2))
        j = wait_for(lambda: (lambda o: o if "Complete" in conditions(o) else None)(env.get("job", "five", "-n", NS)),
                     60, message="job five complete")
    finally:
        watch.stop()
    assert peak[0] <= 2, f"{peak[0]} pods active at once with parallelism 2"
    assert j["status"]["succeeded"] == 5 and not j["status"].get("failed")
    assert "SuccessCriteriaMet" in conditions(j) and j["status"].get("completionTime")
    assert not j["status"].get("uncountedTerminatedPods", {}).get("succeeded")
    pods = env.pods(NS, "job=five")
    assert len(pods) == 5
    assert all("batch.kubernetes.io/job-tracking" not in (p["metadata"].get("finalizers") or []) for p in pods)
    out = env.kubectl("describe", "job", "five", "-n", NS).stdout
    assert "SuccessfulCreate" in out and "Completed" in out


def test_backoff_limit(env):
    env.apply(job("fails", backoff_limit=1, exit_code=1))
    j = wait_for(lambda: (lambda o: o if "Failed" in conditions(o) else None)(env.get("job", "fails", "-n", NS)),
                 60, message="job fails failed")
    c = conditions(j)
    assert c["Failed"]["reason"] == "BackoffLimitExceeded" and "FailureTarget" in c
    assert j["status"]["failed"] == 2
    assert len(env.pods(NS, "job=fails")) == 2
    assert "BackoffLimitExceeded" in env.kubectl("describe", "job", "fails", "-n", NS).stdout


def test_pod_failure_policy_fail_job(env):
    env.apply(job("pfp", backoff_limit=6, exit_code=42, podFailurePolicy={"rules": [
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}))
    j = wait_for(lambda: (lambda o: o if "Failed" in conditions(o) else None)(env.get("job", "pfp", "-n", NS)),
                 60, message="job pfp failed")
    assert conditions(j)["Failed"]["reason"] == "PodFailurePolicy"
    assert j["status"]["failed"] == 1


def test_indexed_job(env):
    env.apply(job("idx", completions=3, parallelism=3, completionMode="Indexed"))
    j = wait_for(lambda: (lambda o: o if "Complete" in conditions(o) else None)(env.get("job", "idx", "-n", NS)),
                 60, message="indexed job complete")
    assert j["status"]["completedIndexes"] == "0-2" and j["status"]["succeeded"] == 3
    pods = env.pods(NS, "job=idx")
    idx = sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in pods)
    assert idx == ["0", "1", "2"]
    for p in pods:
        i = p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]
        assert p["spec"]["hostname"] == f"idx-{i}"
        assert any(e["name"] == "JOB_COMPLETION_INDEX" for e in p["spec"]["containers"][0]["env"])


def test_ttl_after_finished_and_suspend(env):
    env.apply(job("ttl", ttlSecondsAfterFinished=0))
    wait_for(lambda: env.try_get("job", "ttl", "-n", NS) is None, 60, message="job deleted after ttl")
    env.apply(job("sus", suspend=True))
    j = wait_for(lambda: (lambda o: o if "Suspended" in conditions(o) else None)(env.get("job", "sus", "-n", NS)),
                 30, message="suspended")
    assert not env.pods(NS, "job=sus") and not j["status"].get("active")
    env.kubectl("patch", "job", "sus", "-n", NS, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    wait_for(lambda: "Complete" in conditions(env.get("job", "sus", "-n", NS)), 60, message="resumed job done")


def test_cronjob_fires(env):
    cj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick", "namespace": NS},
          "spec": {"schedule": "* * * * *", "concurrencyPolicy": "Forbid",
                   "jobTemplate": {"spec": job("x")["spec"] | {"template": pod_template(
                       {"cj": "tick"}, "busybox", {"mock.skube.io/run-seconds": "1"}, restart_policy="Never")}}}}
    env.apply(cj)
    jobs = wait_for(lambda: env.get("jobs", "-n", NS)["items"] and
                    [j for j in env.get("jobs", "-n", NS)["items"] if j["metadata"]["name"].startswith("tick-")],
                    30, message="cronjob created a job")
    j = jobs[0]
    minutes = int(j["metadata"]["name"].split("-")[1])
    assert minutes * 60 <= _clock()
    assert j["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"].endswith("Z")
    assert j["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    c = wait_for(lambda: (lambda o: o if o.get("status", {}).get("lastSuccessfulTime") else None)(
        env.get("cronjob", "tick", "-n", NS)), 60, message="lastSuccessfulTime")
    assert c["status"]["lastScheduleTime"]
    assert "SawCompletedJob" in env.kubectl("describe", "cronjob", "tick", "-n", NS).stdout


def _finished(name: str, ctype: str, timeout: float = 60) -> dict:
    return lambda env: wait_for(lambda: (lambda o: o if ctype in conditions(o) else None)(
        env.get("job", name, "-n", NS)), timeout, message=f"job {name} {ctype}")


def test_backoff_limit_per_index(env):
    env.apply(job("perindex", completions=2, parallelism=2, exit_code=1, completionMode="Indexed",
                  backoffLimitPerIndex=1))
    j = _finished("perindex", "Failed")(env)
    c = conditions(j)
    assert c["Failed"]["reason"] == "FailedIndexes" and c["FailureTarget"]["reason"] == "FailedIndexes"
    assert j["status"]["failedIndexes"] == "0-1" and j["status"]["failed"] == 4
    assert j["spec"]["backoffLimit"] == 2147483647
    counts = sorted((p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"],
                     p["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"])
                    for p in env.pods(NS, "job=perindex"))
    assert counts == [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")]


def test_fail_index_and_max_failed_indexes(env):
    env.apply(job("failidx", completions=3, parallelism=1, exit_code=42, completionMode="Indexed",
                  backoffLimitPerIndex=5, maxFailedIndexes=0, podFailurePolicy={"rules": [
                      {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [42]}}]}))
    j = _finished("failidx", "Failed")(env)
    assert conditions(j)["Failed"]["reason"] == "MaxFailedIndexesExceeded"
    assert conditions(j)["Failed"]["message"] == "Job has exceeded the specified maximal number of failed indexes"
    assert j["status"]["failedIndexes"] == "0" and j["status"]["failed"] == 1
    assert len(env.pods(NS, "job=failidx")) == 1


def test_pod_failure_policy_ignore_and_count(env):
    env.apply(job("ignored", backoff_limit=0, exit_code=3, completions=1, podFailurePolicy={"rules": [
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}}]}))
    wait_for(lambda: len(env.pods(NS, "job=ignored")) >= 3, 60, message="ignored failures are retried")
    j = env.get("job", "ignored", "-n", NS)
    assert not j["status"].get("failed") and "Failed" not in conditions(j)
    env.kubectl("delete", "job", "ignored", "-n", NS, "--wait=false")
    env.apply(job("counted", backoff_limit=0, exit_code=3, podFailurePolicy={"rules": [
        {"action": "Count", "onExitCodes": {"operator": "In", "values": [3]}}]}))
    j = _finished("counted", "Failed")(env)
    assert conditions(j)["Failed"]["reason"] == "BackoffLimitExceeded" and j["status"]["failed"] == 1


def test_success_policy(env):
    env.apply(job("policy", completions=4, parallelism=1, completionMode="Indexed", successPolicy={"rules": [
        {"succeededCount": 4}, {"succeededIndexes": "0-1", "succeededCount": 1}]}))
    j = _finished("policy", "Complete")(env)
    c = conditions(j)
    assert c["SuccessCriteriaMet"]["reason"] == "SuccessPolicy"
    assert c["Complete"]["reason"] == "SuccessPolicy" and c["Complete"]["message"] == "Matched rules at index 1"
    assert j["status"]["completedIndexes"] == "0" and j["status"]["succeeded"] == 1
    assert j["status"].get("completionTime")


def test_managed_by_other_controller_is_left_alone(env):
    env.apply(job("foreign", managedBy="example.com/batch-controller"))
    env.apply(job("ours"))
    _finished("ours", "Complete")(env)        # the controller is working
    assert not env.pods(NS, "job=foreign")
    assert not env.get("job", "foreign", "-n", NS).get("status")


def test_pod_replacement_policy(env):
    """A terminating pod is replaced at once by default, only once it is terminal with
    podReplacementPolicy Failed (pods bound to a node no kubelet runs stay terminating)."""
    env.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "idle-node"}})
    for name, policy in (("eager", "TerminatingOrFailed"), ("patient", "Failed")):
        j = job(name, backoff_limit=3, podReplacementPolicy=policy)
        j["spec"]["template"]["spec"].update(nodeName="idle-node", terminationGracePeriodSeconds=300)
        env.apply(j)
        first = wait_for(lambda: env.pods(NS, f"job={name}"), 30, message=f"{name} pod")[0]["metadata"]["name"]
        env.kubectl("delete", "pod", first, "-n", NS, "--wait=false")
        if policy == "TerminatingOrFailed":
            wait_for(lambda: len(env.pods(NS, f"job={name}")) == 2, 30, message="replacement while terminating")
            assert env.get("pod", first, "-n", NS)["metadata"].get("deletionTimestamp")
            continue
        got = wait_for(lambda: (lambda o: o if (o.get("status") or {}).get("terminating") == 1 else None)(
            env.get("job", name, "-n", NS)), 30, message="terminating counted")
        assert not got["status"].get("failed")
        assert [p["metadata"]["name"] for p in env.pods(NS, f"job={name}")] == [first]
        env.kubectl("delete", "pod", first, "-n", NS, "--grace-period=0", "--force", "--wait=false")
        wait_for(lambda: [p for p in env.pods(NS, f"job={name}") if p["metadata"]["name"] != first], 30,
                 message="replacement once terminal")
        assert env.get("job", name, "-n", NS)["status"]["failed"] == 1
    env.kubectl("delete", "job", "eager", "patient", "-n", NS, "--wait=false")
    env.kubectl("delete", "node", "idle-node", "--wait=false")


def test_pod_failure_policy_ignores_disruption(env):
    """A pod failing with the DisruptionTarget condition (as a spot reclaim or eviction
    marks it) is not counted against backoffLimit 0 under an Ignore rule."""
    env.apply(job("disrupted", backoff_limit=0, exit_code=1, run_seconds=4, podFailurePolicy={"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}))
    pod = wait_for(lambda: [p for p in env.pods(NS, "job=disrupted")
                            if (p.get("status") or {}).get("phase") == "Running"], 30, message="running")[0]
    env.kubectl("patch", "pod", pod["metadata"]["name"], "-n", NS, "--subresource=status", "--type=strategic",
                "-p", '{"status":{"conditions":[{"type":"DisruptionTarget","status":"True",'
                      '"reason":"TerminationByKubelet","message":"spot reclaim"}]}}')
    wait_for(lambda: len(env.pods(NS, "job=disrupted")) >= 2, 30, message="disrupted pod replaced")
    j = env.get("job", "disrupted", "-n", NS)
    assert not j["status"].get("failed") and "Failed" not in conditions(j)
    env.kubectl("delete", "job", "disrupted", "-n", NS, "--wait=false")
