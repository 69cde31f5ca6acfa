"""Spot instances: pods that ask for spot pricing (ECI's annotation
``k8s.aliyun.com/eci-spot-strategy: SpotAsPriceGo|SpotWithPriceLimit``) can be
reclaimed by the provider, as ECI reclaims a preemptible instance.

A reclaim is: a Warning Event ``SpotToBeReleased`` on the pod (ECI sends one about
3 minutes ahead), then, ``warningSeconds`` later, the instance stops and the pod is
reported ``Failed`` (reason ``Terminated``) with the condition ``DisruptionTarget``
(reason ``TerminationByKubelet``) — the way the kubelet reports pods it stops for a
node shutdown — so the ReplicaSet or Job controller replaces it.

When (provider config ``spot:``, times in seconds of the workload clock,
:mod:`skube.clock`)::

    spot:
      reclaimAfterSeconds: 600   # every spot instance, this long after it starts running
      reclaimRate: 0.5           # or: reclaims per instance-hour after the protection period
      protectionSeconds: 3600    # (ECI: 1 hour)
      warningSeconds: 180        # SpotToBeReleased this long before the reclaim
      seed: 1

Per pod: ``spot.skube.io/reclaim-after-seconds: "N"`` (set at creation) overrides the
config; ``spot.skube.io/reclaim: "true"`` (e.g. ``kubectl annotate``) reclaims a
running spot instance now, after the warning. Pending reclaims survive a restart
(``spot.json`` in the node's data dir).
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
from pathlib import Path
from typing import Callable

import orjson

from ..billing.specs import SPOT_STRATEGY_ANNOTATION, is_spot
from ..client.events import EventRecorder
from ..clock import clock

log = logging.getLogger("skube.providers.spot")

RECLAIM_AFTER_ANNOTATION = "spot.skube.io/reclaim-after-seconds"
RECLAIM_ANNOTATION = "spot.skube.io/reclaim"
WARNING_REASON = "SpotToBeReleased"
TERMINATED_REASON = "Terminated"
DISRUPTION_REASON = "TerminationByKubelet"
RECLAIMED_MESSAGE = "Pod was terminated because its spot instance was reclaimed."
DEFAULT_PROTECTION = 3600.0
DEFAULT_WARNING = 180.0


def _seconds(doc: dict, key: str, default: float | None) -> float | None:
    v = doc.get(key, default)
    if v is None:
        return None
    if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
        raise ValueError(f"spot.{key}: must be a non-negative number of seconds, not {v!r}")
    return float(v)


class SpotConfig:
    """The provider config's ``spot`` section (see the module docstring)."""

    def __init__(self, doc: dict | None = None):
        doc = doc or {}
        if not isinstance(doc, dict):
            raise ValueError("spot: expected a mapping")
        self.reclaim_after = _seconds(doc, "reclaimAfterSeconds", None)
        rate = doc.get("reclaimRate", 0.0)
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or rate < 0:
            raise ValueError(f"spot.reclaimRate: must be a non-negative number per hour, not {rate!r}")
        self.rate_per_hour = float(rate)
        self.protection = _seconds(doc, "protectionSeconds", DEFAULT_PROTECTION)
        self.warning = _seconds(doc, "warningSeconds", DEFAULT_WARNING)
        self.rng = random.Random(doc.get("seed"))

    def reclaim_delay(self, annotations: dict) -> float | None:
        """Seconds after the instance starts running until it is reclaimed (None: never)."""
        v = annotations.get(RECLAIM_AFTER_ANNOTATION)
        if v is not None:
            try:
                return max(0.0, float(v))
            except ValueError:
                log.info("ignoring %s=%r: not a number", RECLAIM_AFTER_ANNOTATION, v)
        if self.reclaim_after is not None:
            return self.reclaim_after
        if self.rate_per_hour > 0:
            return self.protection + self.rng.expovariate(self.rate_per_hour / 3600.0)
        return None


def reclaimed_status(status: dict, at: str) -> dict:
    """``status`` (a provider's pod status) as it reads once the instance is reclaimed."""
    st = {k: v for k, v in status.items() if k not in ("podIP", "podIPs")}
    st.update(phase="Failed", reason=TERMINATED_REASON, message=RECLAIMED_MESSAGE)
    conds = [c for c in st.get("conditions") or () if c.get("type") != "DisruptionTarget"]
    conds.append({"type": "DisruptionTarget", "status": "True", "reason": DISRUPTION_REASON,
                  "message": RECLAIMED_MESSAGE, "lastProbeTime": None, "lastTransitionTime": at})
    st["conditions"] = conds
    for group in ("containerStatuses", "initContainerStatuses"):
        out = []
        for cs in st.get(group) or ():
            cs = dict(cs, ready=False, started=False)
            state = cs.get("state") or {}
            if "terminated" not in state:
                started = (state.get("running") or {}).get("startedAt")
                term = {"exitCode": 137, "reason": "Error", "message": RECLAIMED_MESSAGE, "finishedAt": at}
                if started:
                    term["startedAt"] = started
                cs["state"] = {"terminated": term}
            out.append(cs)
        if out:
            st[group] = out
    return st


class SpotReclaimer:
    """Timers that reclaim a provider's spot instances: ``watch(pod)`` when an instance
    starts running, ``forget(key)`` when it goes; ``terminate(key, uid)`` (the
    provider's) stops the instance and reports it reclaimed."""

    def __init__(self, config: SpotConfig, data_dir: Path, client, node_name: str,
                 terminate: Callable[[str, str], None]):
        self.cfg = config
        self.client = client
        self.node_name = node_name
        self.terminate = terminate
        self.path = Path(data_dir) / "spot.json"
        self.plans: dict[str, list] = {}        # key -> [uid, name, namespace, reclaim_at, warned]
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._save_pending: asyncio.TimerHandle | None = None
        self.recorder = EventRecorder(client, "virtual-kubelet", default_kind="Pod",
                                      default_api_version="v1") if client is not None else None
        self.reclaimed = 0

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self, live: dict[str, str]) -> None:
        """Re-arm the reclaims saved before a restart, for the instances still ``live``
        (key -> uid)."""
        try:
            saved = orjson.loads(self.path.read_bytes()) if self.path.exists() else {}
        except ValueError:
            saved = {}
        self.plans = {k: p for k, p in saved.items() if live.get(k) == p[0]}
        if self.recorder is not None:
            self.recorder.start()
        for key in self.plans:
            self._arm(key)
        self._save()

    async def close(self) -> None:
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()
        if self._save_pending is not None:
            self._save_pending.cancel()
            self._write()
        if self.recorder is not None:
            await self.recorder.stop()

    # ---- what the provider calls ----------------------------------------------------------

    def watch(self, pod_meta: dict, running_at: float | None = None) -> None:
        """A spot pod's instance runs: plan its reclaim (once per instance)."""
        if not is_spot({"metadata": pod_meta}):
            return
        ann = pod_meta.get("annotations") or {}
        key = f"{pod_meta['namespace']}/{pod_meta['name']}"
        if key in self.plans and self.plans[key][0] == pod_meta.get("uid"):
            return
        delay = self.cfg.reclaim_delay(ann)
        if delay is None:
            return
        at = (clock().time() if running_at is None else running_at) + delay
        self.plans[key] = [pod_meta.get("uid"), pod_meta["name"], pod_meta["namespace"], at, False]
        self._save()
        self._arm(key)

    def reclaim_now(self, pod_meta: dict) -> bool:
        """Reclaim a spot pod's instance after the warning (the manual trigger); False
        when the pod is not a spot pod."""
        if not is_spot({"metadata": pod_meta}):
            return False
        key = f"{pod_meta['namespace']}/{pod_meta['name']}"
        plan = self.plans.get(key)
        at = clock().time() + (self.cfg.warning or 0.0)
        if plan is not None and plan[0] == pod_meta.get("uid") and (plan[4] or plan[3] <= at):
            return True            # already on its way out
        self.plans[key] = [pod_meta.get("uid"), pod_meta["name"], pod_meta["namespace"], at, False]
        self._save()
        self._arm(key)
        return True

    def forget(self, key: str) -> None:
        t = self._timers.pop(key, None)
        if t is not None:
            t.cancel()
        if self.plans.pop(key, None) is not None:
            self._save()

    # ---- timers ---------------------------------------------------------------------------

    def _arm(self, key: str) -> None:
        plan = self.plans[key]
        uid, _, _, at, warned = plan
        now = clock().time()
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        if not warned:
            warn_at = max(now, at - (self.cfg.warning or 0.0))
            self._timers[key] = loop.call_later(clock().real_seconds(warn_at - now), self._warn, key, uid)
        else:
            self._timers[key] = loop.call_later(clock().real_seconds(max(0.0, at - now)),
                                                self._reclaim, key, uid)

    def _warn(self, key: str, uid: str) -> None:
        plan = self.plans.get(key)
        if plan is None or plan[0] != uid:
            return
        plan[4] = True
        self._save()
        left = max(0.0, plan[3] - clock().time())
        if self.recorder is not None:
            self.recorder.warning({"metadata": {"name": plan[1], "namespace": plan[2], "uid": uid}},
                                  WARNING_REASON, f"Spot instance will be released in {left:.0f}s "
                                  "(reclaimed by the provider)")
        self._arm(key)

    def _reclaim(self, key: str, uid: str) -> None:
        self._timers.pop(key, None)
        plan = self.plans.pop(key, None)
        if plan is None or plan[0] != uid:
            return
        self._save()
        self.reclaimed += 1
        log.info("reclaiming spot instance of %s", key)
        try:
            self.terminate(key, uid)
        except Exception:  # noqa: BLE001 - one instance's trouble must not stop the others
            log.exception("reclaiming the spot instance of %s failed", key)

    def _save(self) -> None:
        """Write the plans soon (coalescing bursts of changes into one write)."""
        if self._save_pending is None:
            self._save_pending = asyncio.get_running_loop().call_later(0.2, self._write)

    def _write(self) -> None:
        self._save_pending = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(self.plans))
        os.replace(tmp, self.path)


__all__ = ["SpotConfig", "SpotReclaimer", "reclaimed_status", "RECLAIM_AFTER_ANNOTATION",
           "RECLAIM_ANNOTATION", "WARNING_REASON", "TERMINATED_REASON", "DISRUPTION_REASON",
           "SPOT_STRATEGY_ANNOTATION"]
