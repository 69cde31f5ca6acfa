"""PodDisruptionBudget status, as upstream's disruption controller keeps it, so the
eviction API (which refuses when ``disruptionsAllowed`` < 1) honours budgets.

expectedPods: the replicas of the selected pods' controllers (ReplicaSet,
StatefulSet, Deployment through its ReplicaSet) when a percentage or
maxUnavailable needs it, else the number of selected pods. currentHealthy: ready
pods not recently evicted (``disruptedPods``, kept 2 minutes). desiredHealthy
from minAvailable or maxUnavailable (percentages round up, as upstream).
"""
from __future__ import annotations

import datetime as dt
import logging
import math

from ..api.selectors import label_selector_from_dict
from ..client import ApiError, Client
from ..client.api import resource
from .controllerutils import (PODS, REPLICASETS, STATEFULSETS, BaseController, controller_ref, in_namespace,
                              is_ready, is_terminating, phase, set_condition)

log = logging.getLogger("skube.controllers.disruption")

PDBS = resource("policy/v1", "poddisruptionbudgets", kind="PodDisruptionBudget")
DISRUPTED_TTL = dt.timedelta(minutes=2)
_SCALABLE = {"ReplicaSet": REPLICASETS, "StatefulSet": STATEFULSETS}


def _int_or_percent(v, total: int, round_up: bool) -> int:
    if isinstance(v, str) and v.endswith("%"):
        frac = int(v[:-1]) * total / 100
        return math.ceil(frac) if round_up else math.floor(frac)
    return int(v)


def _parse(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))


class DisruptionController(BaseController):
    name = "disruption"

    def __init__(self, client: Client, *, workers: int = 2):
        super().__init__(client, workers=workers)
        self.pdbs = self.informer(PDBS)
        self.pods = self.informer(PODS)
        self.pdbs.add_handlers(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n))
        self.pods.add_handlers(on_add=self._pod, on_update=lambda o, n: (self._pod(o), self._pod(n)),
                               on_delete=self._pod)

    def _pod(self, pod: dict) -> None:
        labels = pod["metadata"].get("labels") or {}
        for pdb in in_namespace(self.pdbs, pod["metadata"].get("namespace")):
            sel = (pdb.get("spec") or {}).get("selector")
            if sel is not None and label_selector_from_dict(sel).matches(labels):
                self.enqueue(pdb)

    async def _expected(self, ns: str, pods: list[dict]) -> int:
        """Sum of the replicas of the pods' controllers (pods without one count once)."""
        total, seen = 0, set()
        for p in pods:
            ref = controller_ref(p)
            res = _SCALABLE.get(ref.get("kind")) if ref else None
            if res is None:
                total += 1
                continue
            if ref["uid"] in seen:
                continue
            seen.add(ref["uid"])
            try:
                owner = await self.client.get(res, ref["name"], ns)
                total += int((owner.get("spec") or {}).get("replicas", 1))
            except ApiError:
                total += 1
        return total

    async def sync(self, key: str):
        pdb = self.pdbs.get(key)
        if pdb is None:
            return None
        ns = pdb["metadata"]["namespace"]
        spec = pdb.get("spec") or {}
        sel = spec.get("selector")
        selector = label_selector_from_dict(sel) if sel is not None else None
        pods = [p for p in in_namespace(self.pods, ns)
                if selector is not None and selector.matches(p["metadata"].get("labels") or {})
                and not is_terminating(p) and phase(p) not in ("Succeeded", "Failed")]
        old = pdb.get("status") or {}
        now = dt.datetime.now(dt.timezone.utc)
        names = {p["metadata"]["name"] for p in pods}
        disrupted = {n: t for n, t in (old.get("disruptedPods") or {}).items()
                     if n in names and now - _parse(t) < DISRUPTED_TTL}
        healthy = sum(1 for p in pods if is_ready(p) and p["metadata"]["name"] not in disrupted)
        if "maxUnavailable" in spec:
            expected = await self._expected(ns, pods)
            desired = max(0, expected - _int_or_percent(spec["maxUnavailable"], expected, True))
        elif isinstance(spec.get("minAvailable"), str):
            expected = await self._expected(ns, pods)
            desired = _int_or_percent(spec["minAvailable"], expected, True)
        else:
            expected = len(pods)
            desired = int(spec.get("minAvailable", 0))
        allowed = max(0, healthy - desired)
        status = {**old, "observedGeneration": pdb["metadata"].get("generation", 1),
                  "disruptionsAllowed": allowed, "currentHealthy": healthy, "desiredHealthy": desired,
                  "expectedPods": expected}
        if disrupted:
            status["disruptedPods"] = disrupted
        else:
            status.pop("disruptedPods", None)
        set_condition(status, "DisruptionAllowed", "True" if allowed > 0 else "False",
                      "SufficientPods" if allowed > 0 else "InsufficientPods", "")
        if status != old:
            body = {**pdb, "status": status}
            try:
                await self.client.update_status(PDBS, body, ns)
            except ApiError as e:
                if e.conflict:
                    return 0.5      # re-read and try again shortly
                if not e.not_found:
                    raise
        # an evicted pod leaves disruptedPods after the TTL: look again then
        return DISRUPTED_TTL.total_seconds() if disrupted else None
