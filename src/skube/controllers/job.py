"""The Job controller: runs pods to completion as kube-controller-manager does (1.3x).

* Pods carry the ``batch.kubernetes.io/job-tracking`` finalizer; a finished pod is
  first recorded in ``status.uncountedTerminatedPods``, then its finalizer is
  removed, then it moves into ``succeeded``/``failed`` — nothing is counted twice
  or lost if the controller restarts.
* parallelism / completions (NonIndexed and Indexed: index annotation and label,
  ``JOB_COMPLETION_INDEX``, hostname ``<job>-<index>``, ``completedIndexes``,
  ``failedIndexes``), suspend (Suspended condition, active pods deleted),
  backoffLimit (BackoffLimitExceeded), activeDeadlineSeconds (DeadlineExceeded),
  podFailurePolicy (onExitCodes / onPodConditions; FailJob, Ignore, Count,
  FailIndex), pod re-creation back-off (10 s doubling, configurable),
  ttlSecondsAfterFinished (the Job is deleted with Background propagation).
* backoffLimitPerIndex / maxFailedIndexes (failures per index carried on the pods'
  ``batch.kubernetes.io/job-index-failure-count`` / ``…-ignored-failure-count``
  annotations; MaxFailedIndexesExceeded, FailedIndexes), successPolicy
  (succeededIndexes / succeededCount → SuccessCriteriaMet reason SuccessPolicy),
  podReplacementPolicy (``Failed``: a terminating pod is neither counted as failed
  nor replaced until it is terminal — see ``pod_failed``), and ``spec.managedBy``: a Job
  managed by another controller is left alone.
* Conditions as upstream 1.3x: FailureTarget then Failed; SuccessCriteriaMet then
  Complete (once no pod is left running; the final condition carries the reason and
  message of the interim one); status active/ready/terminating, startTime,
  completionTime.
"""
from __future__ import annotations

import asyncio
import copy
import logging
import time

from ..client import ApiError, Client, object_key
from .controllerutils import (JOBS, PODS, BaseController, Expectations, claim_candidates, claim_pods,
                              condition, controlled_by, controller_ref, deletion_order,
                              index_owners, is_ready, is_terminating,
                              owner_ref, parse_time, phase, pod_from_template, rfc3339, selector_of,
                              set_condition, update_status)
from .replicaset import slow_start

log = logging.getLogger("skube.controllers.job")

FINALIZER = "batch.kubernetes.io/job-tracking"
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
INDEX_ENV = "JOB_COMPLETION_INDEX"
INDEX_FAILURES = "batch.kubernetes.io/job-index-failure-count"
INDEX_IGNORED = "batch.kubernetes.io/job-index-ignored-failure-count"
CONTROLLER_NAME = "kubernetes.io/job-controller"
POD_FAILURE_BACKOFF = 10.0
MAX_POD_FAILURE_BACKOFF = 360.0


def is_finished(job: dict) -> bool:
    for ctype in ("Complete", "Failed"):
        c = condition(job, ctype)
        if c and c.get("status") == "True":
            return True
    return False


def finish_time(job: dict) -> float | None:
    for ctype in ("Complete", "Failed"):
        c = condition(job, ctype)
        if c and c.get("status") == "True":
            return parse_time(c.get("lastTransitionTime"))
    return None


def pod_index(pod: dict) -> int | None:
    m = pod["metadata"]
    v = (m.get("annotations") or {}).get(INDEX_KEY) or (m.get("labels") or {}).get(INDEX_KEY)
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def parse_indexes(s: str | None) -> set[int]:
    out: set[int] = set()
    for part in (s or "").split(","):
        if not part:
            continue
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def format_indexes(idx: set[int]) -> str:
    parts = []
    run: list[int] = []
    for i in sorted(idx):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [i]
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(parts)


def _has_finalizer(pod: dict) -> bool:
    return FINALIZER in (pod["metadata"].get("finalizers") or ())


def only_replace_failed(job: dict) -> bool:
    """podReplacementPolicy Failed (the default when a podFailurePolicy is set)."""
    spec = job["spec"]
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def pod_failed(pod: dict, job: dict | None = None) -> bool:
    """Upstream's isPodFailed: phase Failed, or (unless only failed pods are replaced)
    being deleted without having succeeded. skube's node does not write a terminal
    phase before its final delete (upstream's kubelet does), so a pod whose grace
    period is down to 0 — its containers are stopped — counts as terminal too."""
    if phase(pod) == "Failed":
        return True
    if not is_terminating(pod) or phase(pod) == "Succeeded":
        return False
    if job is not None and only_replace_failed(job):
        return pod["metadata"].get("deletionGracePeriodSeconds") == 0
    return True


def _annotation_int(pod: dict, key: str) -> int:
    try:
        return max(0, int((pod["metadata"].get("annotations") or {}).get(key) or 0))
    except ValueError:
        return 0


def match_success_policy(job: dict, completed: set[int]) -> str | None:
    """The SuccessCriteriaMet message of the first successPolicy rule that ``completed``
    (the succeeded indexes) satisfies, or None."""
    completions = int(job["spec"].get("completions") or 0)
    if not completed:
        return None
    for i, rule in enumerate((job["spec"].get("successPolicy") or {}).get("rules") or ()):
        count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is not None:
            try:
                required = {x for x in parse_indexes(rule["succeededIndexes"]) if x < completions}
            except ValueError:
                continue
            if not required:
                continue
            hit = len(required & completed)
            if hit >= (int(count) if count is not None else len(required)):
                return f"Matched rules at index {i}"
        elif count is not None and len(completed) >= int(count):
            return f"Matched rules at index {i}"
    return None


def match_failure_policy(job: dict, pod: dict) -> tuple[str | None, str]:
    """(action, message) of the first podFailurePolicy rule matching a failed pod."""
    rules = ((job["spec"].get("podFailurePolicy") or {}).get("rules")) or []
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    statuses = statuses + ((pod.get("status") or {}).get("initContainerStatuses") or [])
    for i, rule in enumerate(rules):
        action = rule.get("action")
        ec = rule.get("onExitCodes")
        if ec:
            values = set(ec.get("values") or ())
            for cs in statuses:
                if ec.get("containerName") and cs.get("name") != ec["containerName"]:
                    continue
                term = (cs.get("state") or {}).get("terminated") or {}
                if not term:
                    continue
                code = int(term.get("exitCode") or 0)
                if code == 0:
                    continue
                hit = code in values if ec.get("operator") == "In" else code not in values
                if hit:
                    m = pod["metadata"]
                    return action, (f"Container {cs.get('name')} for pod {m['namespace']}/{m['name']} failed "
                                    f"with exit code {code} matching {action} rule at index {i}")
        for pc in rule.get("onPodConditions") or ():
            c = condition(pod, pc.get("type"))
            if c and c.get("status") == (pc.get("status") or "True"):
                m = pod["metadata"]
                return action, (f"Pod {m['namespace']}/{m['name']} has condition {pc.get('type')} "
                                f"matching {action} rule at index {i}")
    return None, ""


class JobController(BaseController):
    name = "job"

    def __init__(self, client: Client, *, workers: int = 4, pod_failure_backoff: float = POD_FAILURE_BACKOFF,
                 clock=time.time):
        super().__init__(client, workers=workers)
        self.pod_failure_backoff = pod_failure_backoff
        self.clock = clock
        self.expectations = Expectations()
        self.jobs = self.informer(JOBS)
        self.pods = index_owners(self.informer(PODS))
        self.jobs.add_handlers(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n),
                               on_delete=self._job_deleted)
        self.pods.add_handlers(on_add=self._pod_added, on_update=self._pod_updated,
                               on_delete=self._pod_deleted)
        self._last_failure: dict[str, float] = {}
        self._deleted_by_us: set[str] = set()     # pod uids: not failures, only released

    def _job_deleted(self, job: dict) -> None:
        self.expectations.delete(object_key(job))
        uid = job["metadata"]["uid"]
        for p in controlled_by(self.pods, uid):
            if _has_finalizer(p):
                self.queue.add(("orphan", object_key(p)))

    async def _sync_orphan(self, pod_key: str) -> None:
        pod = self.pods.get(pod_key)
        if pod is None or not _has_finalizer(pod):
            return
        ref = controller_ref(pod)
        if ref is not None and ref.get("kind") == "Job":
            try:
                live = await self.client.get(JOBS, ref["name"], pod["metadata"]["namespace"])
                if live["metadata"]["uid"] == ref.get("uid") and not live["metadata"].get("deletionTimestamp"):
                    return
            except ApiError as e:
                if not e.not_found:
                    raise
        await self._remove_finalizers([pod])

    def _owner_key(self, pod: dict) -> str | None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "Job":
            return None
        job = self.jobs.get_by_name(ref.get("name"), pod["metadata"].get("namespace"))
        if job is None or job["metadata"].get("uid") != ref.get("uid"):
            return None
        return object_key(job)

    def _orphan_check(self, pod: dict) -> None:
        """A pod still holding our finalizer whose Job is gone gets it removed."""
        if not _has_finalizer(pod):
            return
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "Job" or self._owner_key(pod) is None:
            self.queue.add(("orphan", object_key(pod)))

    def _pod_added(self, pod: dict) -> None:
        key = self._owner_key(pod)
        if not key:
            self._orphan_check(pod)
        if key:
            self.expectations.creation_observed(key)
            if is_terminating(pod):
                self.expectations.deletion_observed(key, object_key(pod))
            self.queue.add(key)

    def _pod_updated(self, old: dict, new: dict) -> None:
        key = self._owner_key(new)
        if not key:
            self._orphan_check(new)
        if key:
            if is_terminating(new):
                self.expectations.deletion_observed(key, object_key(new))
            self.queue.add(key)

    def _pod_deleted(self, pod: dict) -> None:
        key = self._owner_key(pod)
        if key:
            self.expectations.deletion_observed(key, object_key(pod))
            self.queue.add(key)

    # ---- sync ----------------------------------------------------------------------------

    async def sync(self, key):
        if isinstance(key, tuple):
            return await self._sync_orphan(key[1])
        job = self.jobs.get(key)
        if job is None:
            return None
        job = copy.deepcopy(job)
        managed_by = (job.get("spec") or {}).get("managedBy")
        if managed_by and managed_by != CONTROLLER_NAME:
            return None     # another controller owns this Job's status and pods
        if is_finished(job):
            await self._remove_finalizers(self._owned_pods(job))
            return await self._ttl(job)
        ref = owner_ref(job, "batch/v1", "Job")
        pods = await claim_pods(self.client, job, ref, selector_of(job), claim_candidates(self.pods, job))
        now = self.clock()
        spec = job["spec"]
        status = copy.deepcopy(job.get("status") or {})
        indexed = spec.get("completionMode") == "Indexed"
        completions = spec.get("completions")
        parallelism = int(spec.get("parallelism", 1) if spec.get("parallelism") is not None else 1)
        backoff_limit = int(spec.get("backoffLimit", 6) if spec.get("backoffLimit") is not None else 6)
        by_uid = {p["metadata"]["uid"]: p for p in pods}

        # 1. uncounted pods whose finalizer is gone are counted now
        unc = status.get("uncountedTerminatedPods") or {}
        unc_s, unc_f = list(unc.get("succeeded") or []), list(unc.get("failed") or [])
        succeeded, failed = int(status.get("succeeded") or 0), int(status.get("failed") or 0)
        for uid in list(unc_s):
            p = by_uid.get(uid)
            if p is None or not _has_finalizer(p):
                unc_s.remove(uid)
                succeeded += 1
        for uid in list(unc_f):
            p = by_uid.get(uid)
            if p is None or not _has_finalizer(p):
                unc_f.remove(uid)
                failed += 1
        completed_idx = parse_indexes(status.get("completedIndexes"))
        failed_idx = parse_indexes(status.get("failedIndexes"))

        # 2. newly finished pods (still holding the finalizer) become uncounted; pods we
        # deleted ourselves, ignored failures and duplicate indexes only lose the finalizer
        fail_job: tuple[str, str] | None = None
        release_only: list[dict] = []
        for p in pods:
            uid = p["metadata"]["uid"]
            if not _has_finalizer(p) or uid in unc_s or uid in unc_f:
                continue
            if phase(p) == "Succeeded":
                idx = pod_index(p)
                if indexed:
                    if idx is None or idx in completed_idx or completions is None or idx >= int(completions):
                        release_only.append(p)
                        continue
                    completed_idx.add(idx)
                unc_s.append(uid)
            elif uid in self._deleted_by_us and is_terminating(p) and phase(p) != "Succeeded":
                release_only.append(p)      # removed by this controller: never a failure
                continue
            elif pod_failed(p, job):
                action, msg = match_failure_policy(job, p)
                if action == "Ignore":
                    release_only.append(p)
                    continue
                if action == "FailJob" and fail_job is None:
                    fail_job = ("PodFailurePolicy", msg)
                if indexed and pod_index(p) is not None and spec.get("backoffLimitPerIndex") is not None and (
                        action == "FailIndex"
                        or _annotation_int(p, INDEX_FAILURES) >= int(spec["backoffLimitPerIndex"])):
                    failed_idx.add(pod_index(p))
                unc_f.append(uid)
                self._last_failure[key] = now
        counted_failed = failed + len(unc_f)
        counted_succeeded = len(completed_idx) if indexed else succeeded + len(unc_s)

        active = [p for p in pods if phase(p) not in ("Succeeded", "Failed") and not is_terminating(p)]
        terminating = [p for p in pods if is_terminating(p) and phase(p) not in ("Succeeded", "Failed")]
        # replacement pods of an index carry its failure counts (backoffLimitPerIndex)
        index_failures: dict[int, tuple[int, int]] = {}
        if indexed and spec.get("backoffLimitPerIndex") is not None:
            for p in pods:
                idx = pod_index(p)
                if idx is None or not pod_failed(p, job) or p["metadata"]["uid"] in self._deleted_by_us:
                    continue
                action, _ = match_failure_policy(job, p)
                ignored = action == "Ignore"
                counts = (_annotation_int(p, INDEX_FAILURES) + (0 if ignored else 1),
                          _annotation_int(p, INDEX_IGNORED) + (1 if ignored else 0))
                index_failures[idx] = max(index_failures.get(idx, (0, 0)), counts)

        # 3. failure and success criteria
        if condition(job, "FailureTarget") is None and fail_job is None:
            if counted_failed > backoff_limit:
                fail_job = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
            if fail_job is None and spec.get("template", {}).get("spec", {}).get("restartPolicy") == "OnFailure":
                total_restarts = sum(int(cs.get("restartCount") or 0) for p in active
                                     for cs in (p.get("status") or {}).get("containerStatuses") or ())
                if backoff_limit == 0 and total_restarts > 0 or backoff_limit and total_restarts >= backoff_limit:
                    fail_job = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
            if fail_job is None and indexed and failed_idx and spec.get("maxFailedIndexes") is not None \
                    and len(failed_idx) > int(spec["maxFailedIndexes"]):
                fail_job = ("MaxFailedIndexesExceeded", "Job has exceeded the specified maximal number of "
                            "failed indexes")
            start = parse_time(status.get("startTime"))
            deadline = spec.get("activeDeadlineSeconds")
            if fail_job is None and deadline is not None and start is not None and not spec.get("suspend") \
                    and now - start >= int(deadline):
                fail_job = ("DeadlineExceeded", "Job was active longer than specified deadline")
        ts = rfc3339(now)
        target = condition({"status": status}, "FailureTarget")
        if fail_job is not None and target is None:
            set_condition(status, "FailureTarget", "True", fail_job[0], fail_job[1], ts)
            self.recorder.warning(job, fail_job[0], fail_job[1])
        target = condition({"status": status}, "FailureTarget")

        success = False
        if target is None:
            if indexed:
                success = completions is not None and len(completed_idx) >= int(completions)
                if not success and completions is not None and failed_idx and \
                        len(completed_idx) + len(failed_idx) >= int(completions):
                    set_condition(status, "FailureTarget", "True", "FailedIndexes", "Job has failed indexes", ts)
                    target = condition({"status": status}, "FailureTarget")
            elif completions is not None:
                success = counted_succeeded >= int(completions)
            else:
                success = counted_succeeded > 0 and not active
            if success and condition({"status": status}, "SuccessCriteriaMet") is None:
                set_condition(status, "SuccessCriteriaMet", "True", "CompletionsReached",
                              "Reached expected number of succeeded pods", ts)
            elif indexed and target is None and spec.get("successPolicy") and \
                    condition({"status": status}, "SuccessCriteriaMet") is None:
                msg = match_success_policy(job, completed_idx)
                if msg:
                    set_condition(status, "SuccessCriteriaMet", "True", "SuccessPolicy", msg, ts)

        # 4. pods
        deleting: list[dict] = []
        creating = 0
        criteria_met = target is not None or condition({"status": status}, "SuccessCriteriaMet") is not None
        if criteria_met or spec.get("suspend"):
            deleting = active
        elif self.expectations.satisfied(key):
            want = parallelism
            if indexed:
                missing = [i for i in range(int(completions or 0))
                           if i not in completed_idx and i not in failed_idx
                           and i not in {pod_index(p) for p in active + terminating}]
                want_new = max(0, min(parallelism - len(active), len(missing)))
                creating = want_new
                extra = len(active) - parallelism
                if extra > 0:
                    deleting = deletion_order(active)[:extra]
            else:
                if completions is not None:
                    want = min(parallelism, max(0, int(completions) - counted_succeeded))
                elif counted_succeeded > 0:
                    want = 0
                if len(active) > want:
                    deleting = deletion_order(active)[:len(active) - want]
                else:
                    # with podReplacementPolicy Failed, terminating pods still hold their slot
                    held = len(terminating) if only_replace_failed(job) else 0
                    creating = max(0, want - len(active) - held)
        delay = None
        if creating and counted_failed > 0:
            last = self._last_failure.get(key)
            if last is not None and self.pod_failure_backoff > 0:
                n = max(1, counted_failed)
                backoff = min(self.pod_failure_backoff * 2 ** (n - 1), MAX_POD_FAILURE_BACKOFF)
                wait = last + backoff - now
                if wait > 0:
                    delay, creating = wait, 0

        # suspend / resume
        if spec.get("suspend"):
            if set_condition(status, "Suspended", "True", "JobSuspended", "Job suspended", ts):
                self.recorder.normal(job, "Suspended", "Job suspended")
                status.pop("startTime", None)
        else:
            c = condition({"status": status}, "Suspended")
            if c is not None and c.get("status") == "True":
                set_condition(status, "Suspended", "False", "JobResumed", "Job resumed", ts)
                self.recorder.normal(job, "Resumed", "Job resumed")
                status["startTime"] = ts
            if not status.get("startTime"):
                status["startTime"] = ts

        # the status (with uncounted pods) is written before finalizers are removed
        status["uncountedTerminatedPods"] = {k: v for k, v in (("succeeded", unc_s), ("failed", unc_f)) if v}
        status["succeeded"] = len(completed_idx) - len(unc_s) if indexed else succeeded
        status["failed"] = max(0, failed)
        if indexed:
            status["completedIndexes"] = format_indexes(completed_idx)
            if failed_idx:
                status["failedIndexes"] = format_indexes(failed_idx)
            elif spec.get("backoffLimitPerIndex") is not None:
                status["failedIndexes"] = ""
        status["active"] = len(active) - len(deleting) + creating
        status["ready"] = sum(1 for p in active if is_ready(p) and p not in deleting)
        status["terminating"] = len(terminating) + len(deleting)
        remaining_pods = status["active"] + status["terminating"]
        finished = False
        if not (unc_s or unc_f) and remaining_pods == 0:
            t = condition({"status": status}, "FailureTarget")
            if t is not None:
                set_condition(status, "Failed", "True", t["reason"], t["message"], ts)
                finished = True
            elif (met := condition({"status": status}, "SuccessCriteriaMet")) is not None:
                set_condition(status, "Complete", "True", met["reason"], met["message"], ts)
                status["completionTime"] = ts
                finished = True
        for k in ("active", "succeeded", "failed"):
            if not status.get(k):
                status.pop(k, None)
        if not status.get("uncountedTerminatedPods") and "uncountedTerminatedPods" not in (job.get("status") or {}):
            status.pop("uncountedTerminatedPods", None)
        if status != (job.get("status") or {}):
            job = await update_status(self.client, JOBS, job, status) or job
        if finished:
            if condition(job, "Complete"):
                self.recorder.normal(job, "Completed", "Job completed")

        # 5. act on pods
        await self._remove_finalizers([by_uid[u] for u in unc_s + unc_f if u in by_uid] + release_only)
        if deleting:
            await self._delete(key, job, deleting)
        if creating:
            await self._create(key, job, ref, creating, active + terminating, completed_idx, failed_idx,
                               index_failures)
        if finished:
            return await self._ttl(job)
        requeue = delay
        deadline = spec.get("activeDeadlineSeconds")
        start = parse_time(status.get("startTime"))
        if deadline is not None and start is not None and not spec.get("suspend"):
            left = start + int(deadline) - now
            requeue = min(requeue, left + 0.05) if requeue else max(0.05, left + 0.05)
        return requeue

    def _owned_pods(self, job: dict) -> list[dict]:
        return controlled_by(self.pods, job["metadata"]["uid"])

    async def _remove_finalizers(self, pods: list[dict]) -> None:
        async def one(p):
            fins = p["metadata"].get("finalizers") or []
            if FINALIZER not in fins:
                return
            idx = fins.index(FINALIZER)
            patch = [{"op": "test", "path": f"/metadata/finalizers/{idx}", "value": FINALIZER},
                     {"op": "remove", "path": f"/metadata/finalizers/{idx}"}]
            try:
                await self.client.patch(PODS, p["metadata"]["name"], patch, p["metadata"]["namespace"],
                                        patch_type="json")
            except ApiError as e:
                if not (e.not_found or e.status in (409, 422)):
                    raise
        await asyncio.gather(*(one(p) for p in pods))

    async def _delete(self, key: str, job: dict, pods: list[dict]) -> None:
        self.expectations.expect_deletions(key, [object_key(p) for p in pods])

        async def one(p):
            self._deleted_by_us.add(p["metadata"]["uid"])
            try:
                await self.client.delete(PODS, p["metadata"]["name"], p["metadata"]["namespace"],
                                         preconditions={"uid": p["metadata"]["uid"]})
                self.recorder.normal(job, "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}")
            except ApiError as e:
                self.expectations.deletion_observed(key, object_key(p))
                if not (e.not_found or e.conflict):
                    raise
        await asyncio.gather(*(one(p) for p in pods))

    async def _create(self, key: str, job: dict, ref: dict, n: int, existing: list[dict],
                      completed: set[int], failed_idx: set[int],
                      index_failures: dict[int, tuple[int, int]] | None = None) -> None:
        template = job["spec"].get("template") or {}
        indexed = job["spec"].get("completionMode") == "Indexed"
        indexes: list[int | None] = [None] * n
        if indexed:
            taken = completed | failed_idx | {pod_index(p) for p in existing}
            free = [i for i in range(int(job["spec"].get("completions") or 0)) if i not in taken]
            indexes = free[:n]
            n = len(indexes)
        self.expectations.expect_creations(key, n)
        queue = list(indexes)

        async def create():
            idx = queue.pop(0)
            name = job["metadata"]["name"]
            body = pod_from_template(template, job, ref,
                                     generate_name=f"{name}-{idx}-" if idx is not None else f"{name}-")
            body["metadata"].setdefault("finalizers", [])
            if FINALIZER not in body["metadata"]["finalizers"]:
                body["metadata"]["finalizers"].append(FINALIZER)
            if idx is not None:
                body["metadata"].setdefault("annotations", {})[INDEX_KEY] = str(idx)
                if job["spec"].get("backoffLimitPerIndex") is not None:
                    fails, ignored = (index_failures or {}).get(idx, (0, 0))
                    body["metadata"]["annotations"][INDEX_FAILURES] = str(fails)
                    if ignored:
                        body["metadata"]["annotations"][INDEX_IGNORED] = str(ignored)
                body["metadata"]["labels"][INDEX_KEY] = str(idx)
                spec = body["spec"]
                if not spec.get("hostname"):
                    spec["hostname"] = f"{name}-{idx}"
                env = {"name": INDEX_ENV, "valueFrom": {"fieldRef": {
                    "fieldPath": f"metadata.annotations['{INDEX_KEY}']"}}}
                for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
                    if not any(e.get("name") == INDEX_ENV for e in c.get("env") or ()):
                        c.setdefault("env", []).append(dict(env))
            try:
                pod = await self.client.create(PODS, body, job["metadata"]["namespace"])
            except ApiError as e:
                self.expectations.creation_observed(key)
                self.recorder.warning(job, "FailedCreate", f"Error creating: {e.message}")
                raise
            self.recorder.normal(job, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")

        done, err = await slow_start(n, create)
        for _ in range(max(0, n - done - (1 if err else 0))):
            self.expectations.creation_observed(key)
        if err:
            raise err

    async def _ttl(self, job: dict):
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        if ttl is None:
            return None
        done = finish_time(job)
        if done is None:
            return None
        left = done + int(ttl) - self.clock()
        if left > 0:
            return left + 0.05
        try:
            await self.client.delete(JOBS, job["metadata"]["name"], job["metadata"]["namespace"],
                                     propagation_policy="Background",
                                     preconditions={"uid": job["metadata"]["uid"]})
        except ApiError as e:
            if not (e.not_found or e.conflict):
                raise
        return None


__all__ = ["JobController", "FINALIZER", "INDEX_KEY", "parse_indexes", "format_indexes", "is_finished"]
