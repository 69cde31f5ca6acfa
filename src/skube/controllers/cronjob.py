"""The CronJob controller (upstream's cronjob v2 loop) and a small cron evaluator.

Schedules are robfig/cron ``ParseStandard`` strings (five fields, names, ranges,
steps, ``@hourly``-style descriptors, ``@every <duration>``; day-of-month and
day-of-week are OR-ed unless either is a bare ``*``/``?``, robfig's star bit).
Validation refuses ``TZ=``/``CRON_TZ=`` prefixes in new schedules (as upstream);
objects that already carry one still run in that zone unless ``spec.timeZone``
is set. Times are evaluated with :mod:`zoneinfo` (UTC when no zone is given).
Across DST, as robfig: a wall-clock time skipped by spring-forward does not run,
and one in a fall-back's repeated hour runs at both of its instants.

Each pass: refresh ``status.active`` from the owned Jobs (SawCompletedJob,
lastSuccessfulTime), find the most recent unmet schedule time since
lastScheduleTime (or creation), no earlier than now - startingDeadlineSeconds
(MissSchedule; more than 100 unmet times → TooManyMissedTimes with upstream's
estimate, and only the most recent runs), honour suspend and concurrencyPolicy
(Allow, Forbid, Replace), create the Job ``<cronjob>-<scheduled time in minutes>`` with the
``batch.kubernetes.io/cronjob-scheduled-timestamp`` annotation, record
lastScheduleTime, and delete finished Jobs beyond successful/failedJobsHistoryLimit.
The controller's "now" is injectable (``clock``) for tests and simulations.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import re
import time
from zoneinfo import ZoneInfo

from ..api.validation.cron import _BOUNDS
from ..client import ApiError, Client, object_key
from .controllerutils import (CRONJOBS, JOBS, BaseController, condition, controller_ref, in_namespace,
                              owner_ref, parse_time, update_status)

log = logging.getLogger("skube.controllers.cronjob")

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_MISSED = 100

_DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
                "@hourly": "0 * * * *"}
_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


class CronError(ValueError):
    pass


class UnknownTimeZone(CronError):
    pass


class Schedule:
    """A parsed cron schedule; ``next(t)`` is the first activation strictly after ``t``
    (epoch seconds)."""

    def __init__(self, spec: str, tz: str | None = None):
        spec = spec.strip()
        m = re.match(r"^(?:CRON_)?TZ=(\S+)\s+(.*)$", spec)
        if m:
            tz = tz or m.group(1)
            spec = m.group(2)
        try:
            self.tz = ZoneInfo(tz) if tz else dt.timezone.utc
        except Exception as e:  # noqa: BLE001
            raise UnknownTimeZone(f"unknown time zone {tz}") from e
        self.every: float | None = None
        if spec.startswith("@every "):
            total = 0.0
            rest = spec[len("@every "):].strip()
            for num, unit in _DURATION.findall(rest):
                total += float(num) * _UNITS[unit]
            if total <= 0:
                raise CronError(f"failed to parse duration {rest}")
            self.every = max(1.0, float(int(total)))
            return
        spec = _DESCRIPTORS.get(spec, spec)
        fields = spec.split()
        if len(fields) != 5:
            raise CronError(f"expected exactly 5 fields, found {len(fields)}: {spec}")
        self.sets: list[set[int]] = []
        self.star: list[bool] = []
        for f, (lo, hi, names) in zip(fields, _BOUNDS):
            vals: set[int] = set()
            for part in f.split(","):
                vals |= self._range(part, lo, hi, names)
            self.sets.append(vals)
            # robfig's starBit: a bare `*`/`?` (step 1) in the field; `*/2` is not a star
            self.star.append(any(part.split("/")[0] in ("*", "?") and part.split("/")[1:] in ([], ["1"])
                                 for part in f.split(",")))
        self.minutes, self.hours, self.dom, self.months, self.dow = self.sets

    @staticmethod
    def _num(s: str, names) -> int:
        if names and s.lower() in names:
            return names[s.lower()]
        if not s.isdigit():
            raise CronError(f"failed to parse int from {s}")
        return int(s)

    def _range(self, expr: str, lo: int, hi: int, names) -> set[int]:
        rng, _, step_s = expr.partition("/")
        step = int(step_s) if step_s else 1
        if step <= 0:
            raise CronError(f"step of range should be a positive number: {expr}")
        if rng in ("*", "?"):
            a, b = lo, hi
        elif "-" in rng:
            x, y = rng.split("-", 1)
            a, b = self._num(x, names), self._num(y, names)
        else:
            a = self._num(rng, names)
            b = hi if step_s else a
        if a < lo or b > hi or a > b:
            raise CronError(f"value out of range: {expr}")
        return set(range(a, b + 1, step))

    def _day_ok(self, d: dt.datetime) -> bool:
        dom_ok = d.day in self.dom
        dow_ok = (d.isoweekday() % 7) in self.dow
        if self.star[2] or self.star[4]:
            return dom_ok and dow_ok
        return dom_ok or dow_ok

    def _matches(self, d: dt.datetime) -> bool:
        return (d.minute in self.minutes and d.hour in self.hours and d.month in self.months
                and self._day_ok(d))

    def _instants(self, d: dt.datetime) -> list[float]:
        """The instants at which wall time ``d`` occurs: none in a DST gap, two in a
        repeated hour."""
        if self.tz is dt.timezone.utc:
            return [d.replace(tzinfo=dt.timezone.utc).timestamp()]
        out = []
        for fold in (0, 1):
            ts = d.replace(tzinfo=self.tz, fold=fold).timestamp()
            if dt.datetime.fromtimestamp(ts, self.tz).replace(tzinfo=None) == d and ts not in out:
                out.append(ts)
        return out

    def next(self, t: float) -> float | None:
        if self.every is not None:
            return float(int(t) + self.every)
        local = dt.datetime.fromtimestamp(t, self.tz)
        wall = local.replace(second=0, microsecond=0, tzinfo=None)
        best = None
        # in the first pass of a repeated hour, wall times before ours recur later
        if self.tz is not dt.timezone.utc and not local.fold:
            later = local.replace(fold=1)
            shift = (local.utcoffset() or dt.timedelta(0)) - (later.utcoffset() or dt.timedelta(0))
            d = wall - shift
            while shift > dt.timedelta(0) and d <= wall and best is None:
                if self._matches(d):
                    best = min((ts for ts in self._instants(d) if ts > t), default=None)
                d += dt.timedelta(minutes=1)
        d = wall
        limit = d.year + 5
        while d.year <= limit:
            if best is not None and self._earliest(d) >= best:
                return best         # no later wall time can occur before the best instant
            if d.month not in self.months:
                d = (d.replace(day=1, hour=0, minute=0) + dt.timedelta(days=32)).replace(day=1)
                continue
            if not self._day_ok(d):
                d = d.replace(hour=0, minute=0) + dt.timedelta(days=1)
                continue
            if d.hour not in self.hours:
                d = d.replace(minute=0) + dt.timedelta(hours=1)
                continue
            if d.minute not in self.minutes:
                d += dt.timedelta(minutes=1)
                continue
            found = [ts for ts in self._instants(d) if ts > t]   # none: a DST gap, or not after t
            if found:
                best = min(found + ([best] if best is not None else []))
                if self.tz is dt.timezone.utc:
                    return best
            d += dt.timedelta(minutes=1)
        return best

    def _earliest(self, d: dt.datetime) -> float:
        """The first instant wall time ``d`` can denote (its first fold)."""
        if self.tz is dt.timezone.utc:
            return d.replace(tzinfo=dt.timezone.utc).timestamp()
        return min(d.replace(tzinfo=self.tz, fold=0).timestamp(), d.replace(tzinfo=self.tz, fold=1).timestamp())


def unmet_times(sched: Schedule, earliest: float, now: float) -> tuple[float | None, int]:
    """(most recent schedule time in (earliest, now], how many there are).

    Exact up to MAX_MISSED; past that the count is upstream's estimate (time elapsed
    over the gap between the first two activations) and the most recent time is found
    by searching back from ``now``, so a cron job that missed years of runs costs little."""
    last = None
    n = 0
    t = sched.next(earliest)
    while t is not None and t <= now:
        last = t
        n += 1
        if n > MAX_MISSED:
            break
        t = sched.next(t)
    if n <= MAX_MISSED:
        return last, n
    t1 = sched.next(earliest)
    t2 = sched.next(t1)
    gap = max(1.0, round(t2 - t1))
    n = int((now - t1) // gap) + 1
    back = gap
    while True:         # widen the window until it holds an activation, then walk it
        start = max(earliest, now - back)
        t = sched.next(start)
        if t is not None and t <= now:
            break
        back *= 2
    while t is not None and t <= now:
        last = t
        t = sched.next(t)
    return last, n


def _iso(t: float, tz) -> str:
    d = dt.datetime.fromtimestamp(t, tz)
    if d.utcoffset() == dt.timedelta(0):
        return d.strftime("%Y-%m-%dT%H:%M:%SZ")
    return d.isoformat()


def _utc(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def job_finished(job: dict) -> str | None:
    for ctype in ("Complete", "Failed"):
        c = condition(job, ctype)
        if c and c.get("status") == "True":
            return ctype
    return None


class CronJobController(BaseController):
    name = "cronjob"

    def __init__(self, client: Client, *, workers: int = 2, clock=time.time):
        super().__init__(client, workers=workers)
        self.clock = clock
        self.cronjobs = self.informer(CRONJOBS)
        self.jobs = self.informer(JOBS)
        self.cronjobs.add_handlers(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n))
        self.jobs.add_handlers(on_add=self._job, on_update=lambda o, n: self._job(n), on_delete=self._job)

    def component_name(self) -> str:
        return "cronjob-controller"

    def _job(self, job: dict) -> None:
        ref = controller_ref(job)
        if ref is not None and ref.get("kind") == "CronJob":
            self.queue.add(f"{job['metadata']['namespace']}/{ref.get('name')}")

    async def sync(self, key: str):
        cj = self.cronjobs.get(key)
        if cj is None:
            return None
        cj = copy.deepcopy(cj)
        ns = cj["metadata"]["namespace"]
        uid = cj["metadata"]["uid"]
        now = self.clock()
        status = copy.deepcopy(cj.get("status") or {})
        jobs = [j for j in in_namespace(self.jobs, ns) if (controller_ref(j) or {}).get("uid") == uid]
        by_uid = {j["metadata"]["uid"]: j for j in jobs}

        # refresh status.active
        active = []
        for ref in status.get("active") or []:
            j = by_uid.get(ref.get("uid"))
            if j is None:
                continue
            done = job_finished(j)
            if done:
                self.recorder.normal(cj, "SawCompletedJob",
                                     f"Saw completed job: {j['metadata']['name']}, condition: {done}")
                continue
            active.append(ref)
        active_uids = {r.get("uid") for r in active}
        for j in jobs:
            if j["metadata"]["uid"] in active_uids:
                continue
            if not job_finished(j) and not j["metadata"].get("deletionTimestamp"):
                active.append(self._ref(j))
                active_uids.add(j["metadata"]["uid"])
        for j in jobs:
            if job_finished(j) == "Complete":
                ct = (j.get("status") or {}).get("completionTime")
                if ct and (not status.get("lastSuccessfulTime") or
                           parse_time(ct) > (parse_time(status["lastSuccessfulTime"]) or 0)):
                    status["lastSuccessfulTime"] = ct
        status["active"] = active
        requeue = None
        try:
            requeue = await self._schedule(cj, status, jobs, now)
        finally:
            if not status.get("active"):
                status.pop("active", None)
            if status != (cj.get("status") or {}):
                await update_status(self.client, CRONJOBS, cj, status)
        await self._cleanup(cj, jobs)
        return requeue

    @staticmethod
    def _ref(job: dict) -> dict:
        m = job["metadata"]
        return {"apiVersion": "batch/v1", "kind": "Job", "name": m["name"], "namespace": m["namespace"],
                "uid": m["uid"], "resourceVersion": m.get("resourceVersion")}

    async def _schedule(self, cj: dict, status: dict, jobs: list[dict], now: float) -> float | None:
        spec = cj["spec"]
        if cj["metadata"].get("deletionTimestamp") or spec.get("suspend"):
            return None
        try:
            sched = Schedule(spec["schedule"], spec.get("timeZone"))
        except UnknownTimeZone as e:
            self.recorder.warning(cj, "UnknownTimeZone",
                                  f"invalid timeZone: {json.dumps(spec.get('timeZone'))}: {e}")
            return None
        except CronError as e:
            self.recorder.warning(cj, "UnparseableSchedule",
                                  f"unparseable schedule: {json.dumps(spec.get('schedule'))} : {e}")
            return None
        created = parse_time(cj["metadata"].get("creationTimestamp")) or now
        earliest = parse_time(status.get("lastScheduleTime")) or created
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None:
            earliest = max(earliest, now - int(deadline))
        scheduled, missed = unmet_times(sched, earliest, now)
        nxt = sched.next(now)
        requeue = (nxt - now + 0.1) if nxt is not None else None
        if scheduled is None:
            return requeue
        if missed > MAX_MISSED:
            self.recorder.warning(cj, "TooManyMissedTimes",
                                  f"too many missed start times: {missed}. Set or decrease "
                                  ".spec.startingDeadlineSeconds or check clock skew")
        if deadline is not None and scheduled + int(deadline) < now:
            self.recorder.warning(cj, "MissSchedule", "Missed scheduled time to start a job: " +
                                  dt.datetime.fromtimestamp(scheduled, dt.timezone.utc)
                                  .strftime("%a, %d %b %Y %H:%M:%S +0000"))
            return requeue
        name = f"{cj['metadata']['name']}-{int(scheduled // 60)}"
        if any(r.get("name") == name for r in status.get("active") or []) or \
                any(j["metadata"]["name"] == name for j in jobs):
            return requeue
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and status.get("active"):
            self.recorder.normal(cj, "JobAlreadyActive",
                                 "Not starting job because prior execution is running and concurrency policy "
                                 "is Forbid")
            return requeue
        if policy == "Replace":
            for ref in list(status.get("active") or []):
                try:
                    await self.client.delete(JOBS, ref["name"], cj["metadata"]["namespace"],
                                             propagation_policy="Background")
                    self.recorder.normal(cj, "SuccessfulDelete", f"Deleted job {ref['name']}")
                except ApiError as e:
                    if not e.not_found:
                        raise
                status["active"].remove(ref)
        tmpl = copy.deepcopy(spec.get("jobTemplate") or {})
        tmeta = tmpl.get("metadata") or {}
        job = {"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": name, "namespace": cj["metadata"]["namespace"],
                            "labels": dict(tmeta.get("labels") or {}),
                            "annotations": {**(tmeta.get("annotations") or {}),
                                            SCHEDULED_TIMESTAMP: _iso(scheduled, sched.tz)},
                            "ownerReferences": [owner_ref(cj, "batch/v1", "CronJob")]},
               "spec": tmpl.get("spec") or {}}
        try:
            created_job = await self.client.create(JOBS, job)
            self.recorder.normal(cj, "SuccessfulCreate", f"Created job {name}")
        except ApiError as e:
            if not e.already_exists:
                self.recorder.warning(cj, "FailedCreate", f"Error creating job: {e.message}")
                raise
            created_job = await self.client.get(JOBS, name, cj["metadata"]["namespace"])
            if (controller_ref(created_job) or {}).get("uid") != cj["metadata"]["uid"]:
                return requeue
        if not any(r.get("uid") == created_job["metadata"]["uid"] for r in status["active"]):
            status["active"].append(self._ref(created_job))
        status["lastScheduleTime"] = _utc(scheduled)
        return requeue

    async def _cleanup(self, cj: dict, jobs: list[dict]) -> None:
        spec = cj["spec"]
        for kind, field, default in (("Complete", "successfulJobsHistoryLimit", 3),
                                     ("Failed", "failedJobsHistoryLimit", 1)):
            limit = spec.get(field)
            limit = default if limit is None else int(limit)
            done = [j for j in jobs if job_finished(j) == kind and not j["metadata"].get("deletionTimestamp")]
            if len(done) <= limit:
                continue
            done.sort(key=lambda j: ((j.get("status") or {}).get("startTime") or
                                     j["metadata"].get("creationTimestamp") or "", j["metadata"]["name"]))
            for j in done[:len(done) - limit]:
                try:
                    await self.client.delete(JOBS, j["metadata"]["name"], j["metadata"]["namespace"],
                                             propagation_policy="Background")
                    self.recorder.normal(cj, "SuccessfulDelete", f"Deleted job {j['metadata']['name']}")
                except ApiError as e:
                    if not e.not_found:
                        raise


_ = object_key
__all__ = ["CronJobController", "Schedule", "CronError", "unmet_times", "SCHEDULED_TIMESTAMP"]
