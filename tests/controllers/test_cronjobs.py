"""CronJobs against the in-process controller: time zones, startingDeadlineSeconds,
missed runs, concurrency policies, suspend and history limits (mock pods)."""
from __future__ import annotations

import datetime as dt
import json
import re
import time
from zoneinfo import ZoneInfo

from tests.conftest import wait_for
from tests.controllers.conftest import pod_template

NS = "default"
CLOCK_OFFSET = [61.0]        # the CronJob controller lives a minute ahead; tests move it further


def _clock():
    return time.time() + CLOCK_OFFSET[0]


def advance(env, seconds: float, *names: str) -> None:
    """Move the controller's clock forward and poke the cronjobs so they sync at once (job
    names are per scheduled minute, as upstream's, so runs are a minute apart)."""
    CLOCK_OFFSET[0] += seconds
    for name in names:
        env.kubectl("annotate", "--overwrite", "cronjob", name, "-n", NS, f"poke={CLOCK_OFFSET[0]}")


CONTROLLER_OPTIONS = {"job": {"pod_failure_backoff": 0.0}, "cronjob": {"clock": _clock}}


def cronjob(name: str, schedule: str, *, run_seconds: int = 1, exit_code: int = 0, **spec) -> dict:
    ann = {"mock.skube.io/run-seconds": str(run_seconds), "mock.skube.io/exit-code": str(exit_code)}
    template = pod_template({"cj": name}, "busybox", ann, restart_policy="Never")
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": NS},
            "spec": {"schedule": schedule, "jobTemplate": {"spec": {"backoffLimit": 0, "template": template}},
                     **spec}}


def jobs_of(env, name: str) -> list[dict]:
    return [j for j in env.get("jobs", "-n", NS)["items"]
            if any(r.get("name") == name and r.get("kind") == "CronJob"
                   for r in j["metadata"].get("ownerReferences") or [])]


def finished(job: dict) -> str | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c["type"] in ("Complete", "Failed") and c["status"] == "True":
            return c["type"]
    return None


def describe(env, name: str) -> str:
    return env.kubectl("describe", "cronjob", name, "-n", NS).stdout


def delete(env, *names: str) -> None:
    env.kubectl("delete", "cronjob", *names, "-n", NS, "--wait=false")


def test_time_zone_schedule(env):
    """`M H D Mo *` written in Asia/Kolkata (UTC+05:30) fires at that local minute."""
    tz = ZoneInfo("Asia/Kolkata")
    due = (int(time.time() + 3) // 60 + 1) * 60          # a minute boundary the controller reaches soon
    local = dt.datetime.fromtimestamp(due, tz)
    env.apply(cronjob("kolkata", f"{local.minute} {local.hour} {local.day} {local.month} *",
                      timeZone="Asia/Kolkata"))
    j = wait_for(lambda: jobs_of(env, "kolkata"), 70, message="time-zoned cronjob fired")[0]
    assert j["metadata"]["name"] == f"kolkata-{due // 60}"
    stamp = j["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    assert stamp == local.isoformat() and stamp.endswith("+05:30")
    cj = env.get("cronjob", "kolkata", "-n", NS)
    assert cj["status"]["lastScheduleTime"] == dt.datetime.fromtimestamp(due, dt.timezone.utc) \
        .strftime("%Y-%m-%dT%H:%M:%SZ")
    delete(env, "kolkata")


def test_time_zone_validation(env):
    bad = env.kubectl("apply", "-f", "-", input=json.dumps(cronjob("nowhere", "* * * * *", timeZone="Mars/Olympus")),
                      check=False)
    assert bad.returncode != 0 and "spec.timeZone: Invalid value: \"Mars/Olympus\"" in bad.stderr
    assert "unknown time zone Mars/Olympus" in bad.stderr
    bad = env.kubectl("apply", "-f", "-", input=json.dumps(cronjob("crontz", "CRON_TZ=UTC * * * * *")), check=False)
    assert bad.returncode != 0
    assert "cannot use TZ or CRON_TZ in schedule, use timeZone field instead" in bad.stderr


def test_starting_deadline_skips_missed_runs(env):
    """Same schedule, one run due a moment ago: startingDeadlineSeconds 0 skips it, 600 runs it."""
    due = int(_clock()) // 60 * 60
    if due <= time.time() + 1:                            # keep the run after both creations
        due += 60
    when = dt.datetime.fromtimestamp(due, dt.timezone.utc)
    sched = f"{when.minute} {when.hour} {when.day} {when.month} *"
    env.apply(cronjob("strict", sched, startingDeadlineSeconds=0))
    env.apply(cronjob("lenient", sched, startingDeadlineSeconds=600))
    wait_for(lambda: jobs_of(env, "lenient"), 70, message="lenient cronjob ran")
    env.kubectl("annotate", "cronjob", "strict", "-n", NS, "poke=1")     # one more sync of the strict one
    wait_for(lambda: _clock() > due + 2, 70)
    assert not jobs_of(env, "strict")
    assert not env.get("cronjob", "strict", "-n", NS).get("status", {}).get("lastScheduleTime")
    delete(env, "strict", "lenient")


def test_too_many_missed_start_times(env):
    env.apply(cronjob("behind", "* * * * *", run_seconds=600, concurrencyPolicy="Forbid", suspend=True))
    last = int(time.time() - 3 * 3600) // 60 * 60
    three_hours_ago = dt.datetime.fromtimestamp(last, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    env.kubectl("patch", "cronjob", "behind", "-n", NS, "--subresource=status", "--type=merge",
                "-p", json.dumps({"status": {"lastScheduleTime": three_hours_ago}}))
    env.kubectl("patch", "cronjob", "behind", "-n", NS, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    wait_for(lambda: "TooManyMissedTimes" in describe(env, "behind"), 30, message="TooManyMissedTimes event")
    m = re.search(r"too many missed start times: (\d+)\. Set or decrease \.spec\.startingDeadlineSeconds "
                  r"or check clock skew", describe(env, "behind"))
    assert m and abs(int(m.group(1)) - (_clock() - last) // 60) <= 2
    jobs = wait_for(lambda: jobs_of(env, "behind"), 30, message="the most recent run started")
    assert len(jobs) == 1                                  # only the most recent missed run
    assert int(_clock()) // 60 - int(jobs[0]["metadata"]["name"].rsplit("-", 1)[1]) in (0, 1)
    delete(env, "behind")


def test_concurrency_policies(env):
    names = ("allow", "forbid", "replace")
    for name, policy in zip(names, ("Allow", "Forbid", "Replace")):
        env.apply(cronjob(name, "* * * * *", run_seconds=600, concurrencyPolicy=policy))
    first = {n: wait_for(lambda: jobs_of(env, n), 30, message=f"{n} first run")[0]["metadata"]["name"]
             for n in names}
    advance(env, 60, *names)
    wait_for(lambda: len([j for j in jobs_of(env, "allow") if not finished(j)]) == 2, 30,
             message="Allow runs jobs side by side")
    wait_for(lambda: "JobAlreadyActive" in describe(env, "forbid"), 30, message="Forbid skips a run")
    assert [j["metadata"]["name"] for j in jobs_of(env, "forbid")] == [first["forbid"]]
    assert "Not starting job because prior execution is running and concurrency policy is Forbid" \
        in describe(env, "forbid")
    wait_for(lambda: f"Deleted job {first['replace']}" in describe(env, "replace"), 30,
             message="Replace deletes the running job")
    active = wait_for(lambda: (lambda a: a if len(a) == 1 and a[0]["name"] != first["replace"] else None)(
        env.get("cronjob", "replace", "-n", NS).get("status", {}).get("active") or []), 30,
        message="the new run is the active one")
    assert active[0]["name"] in {j["metadata"]["name"] for j in jobs_of(env, "replace")}
    delete(env, *names)


def test_suspend(env):
    env.apply(cronjob("paused", "* * * * *", suspend=True))
    env.apply(cronjob("running", "* * * * *", run_seconds=0))
    wait_for(lambda: jobs_of(env, "running"), 30, message="the unsuspended cronjob ran")
    assert not jobs_of(env, "paused")
    assert not env.get("cronjob", "paused", "-n", NS).get("status", {}).get("lastScheduleTime")
    env.kubectl("patch", "cronjob", "paused", "-n", NS, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    wait_for(lambda: jobs_of(env, "paused"), 30, message="resumed cronjob ran")
    delete(env, "paused", "running")


def test_history_limits(env):
    names = ("keep-ok", "keep-bad")
    env.apply(cronjob("keep-ok", "* * * * *", run_seconds=0, successfulJobsHistoryLimit=1))
    env.apply(cronjob("keep-bad", "* * * * *", run_seconds=0, exit_code=1, failedJobsHistoryLimit=1))
    for runs in (1, 2, 3):
        for name in names:
            wait_for(lambda: len(jobs_of(env, name)) + describe(env, name).count("Deleted job") >= runs
                     and all(finished(j) for j in jobs_of(env, name)), 60, message=f"{name} run {runs} done")
        if runs < 3:
            advance(env, 60, *names)
    for name, kind in (("keep-ok", "Complete"), ("keep-bad", "Failed")):
        wait_for(lambda: describe(env, name).count("Deleted job") >= 2, 30, message=f"{name} history pruned")
        jobs = wait_for(lambda: (lambda js: js if len(js) == 1 else None)(
            [j for j in jobs_of(env, name) if not j["metadata"].get("deletionTimestamp")]), 30,
            message=f"{name} keeps one job")
        assert finished(jobs[0]) == kind
    ok = env.get("cronjob", "keep-ok", "-n", NS)
    assert ok["status"]["lastSuccessfulTime"] and ok["status"]["lastScheduleTime"]
    assert not env.get("cronjob", "keep-bad", "-n", NS)["status"].get("lastSuccessfulTime")
    delete(env, *names)


def test_schedule_evaluation():
    """The evaluator alone: robfig's day-of-month/day-of-week rule, time zones across DST,
    and the bounded count of missed runs."""
    from skube.controllers.cronjob import Schedule, unmet_times

    def runs(spec, start, n, tz=None):
        s, t, out = Schedule(spec, tz), start.timestamp(), []
        for _ in range(n):
            t = s.next(t)
            out.append(dt.datetime.fromtimestamp(t, s.tz))
        return out

    utc = dt.timezone.utc
    start = dt.datetime(2026, 6, 1, tzinfo=utc)                      # a Monday
    assert [d.day for d in runs("0 0 * * mon", start, 3)] == [8, 15, 22]
    # `*/2` is not a star: day-of-month OR day-of-week (odd days, and Mondays)
    assert [d.day for d in runs("0 0 */2 * mon", start, 5)] == [3, 5, 7, 8, 9]
    # America/New_York: 02:30 does not exist on 8 March 2026 and is skipped
    ny = runs("30 2 * * *", dt.datetime(2026, 3, 7, 12, tzinfo=utc), 2, "America/New_York")
    assert [(d.day, d.hour, d.utcoffset().total_seconds() / 3600) for d in ny] == [(9, 2, -4), (10, 2, -4)]
    # ...and 01:30 happens twice on 1 November 2026: robfig runs both
    ny = runs("30 1 * * *", dt.datetime(2026, 10, 31, 12, tzinfo=utc), 3, "America/New_York")
    assert [(d.day, d.utcoffset().total_seconds() / 3600) for d in ny] == [(1, -4), (1, -5), (2, -5)]
    ny = runs("* * * * *", dt.datetime(2026, 11, 1, 5, 58, tzinfo=utc), 3, "America/New_York")
    assert [d.strftime("%H:%M%z") for d in ny] == ["01:59-0400", "01:00-0500", "01:01-0500"]
    assert [d.hour for d in runs("@daily", start, 1, "Asia/Kolkata")] == [0]
    assert runs("@daily", start, 1, "Asia/Kolkata")[0].astimezone(utc).hour == 18
    sched = Schedule("*/5 * * * *")
    last, n = unmet_times(sched, start.timestamp(), start.timestamp() + 86400 + 1)
    assert n == 288 and last == start.timestamp() + 86400
    last, n = unmet_times(sched, start.timestamp(), start.timestamp() + 299)
    assert (last, n) == (None, 0)
