"""The meter: the virtual node tells it when instances start and stop; it keeps
the ledger.

The node calls, from its pod sync:

* :meth:`Meter.observe` with the API's pod and the provider's status of its
  instance, whenever it looks at one. The first status that shows the instance
  started opens a run (start = the instance's ``startTime``, i.e. from image
  pull, as ECI and Fargate bill; else the earliest container ``startedAt``);
  a Succeeded/Failed status closes it at the last container ``finishedAt``.
* :meth:`Meter.stopped` after it deleted an instance (pod deleted, orphan,
  replaced, lost): the open run stops now.
* :meth:`Meter.reconcile` once at start, with the uids of the instances the
  provider still runs: open runs of instances that vanished while the node was
  down stop now.

Running pods are metered up to "now" when a bill is made (see ``report``).
The meter never raises into the pod sync: a ledger error is logged.
"""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Callable, Iterable

from ..clock import clock as workload_clock
from .ledger import Ledger
from .specs import SpecTable, is_spot, spec_table

log = logging.getLogger("skube.billing.meter")

TERMINAL = ("Succeeded", "Failed")


def parse_time(s: str | None) -> float | None:
    if not s:
        return None
    try:
        return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _container_states(status: dict) -> Iterable[dict]:
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in status.get(key) or []:
            for which in ("state", "lastState"):
                for st in (cs.get(which) or {}).values():
                    if isinstance(st, dict):
                        yield st


def instance_start(status: dict) -> float | None:
    """When the instance started: its ``startTime``, else the earliest container start."""
    t = parse_time(status.get("startTime"))
    if t is not None:
        return t
    starts = [parse_time(st.get("startedAt")) for st in _container_states(status)]
    starts = [s for s in starts if s is not None]
    return min(starts) if starts else None


def instance_stop(status: dict) -> float | None:
    """When a terminated instance stopped: the last container ``finishedAt``."""
    ends = [parse_time(st.get("finishedAt")) for st in _container_states(status)]
    ends = [e for e in ends if e is not None]
    return max(ends) if ends else None


def workload_of(pod: dict) -> tuple[str | None, str | None]:
    """(kind, name) of the workload owning ``pod``: its controller, with a ReplicaSet
    created by a Deployment reported as that Deployment."""
    m = pod.get("metadata") or {}
    for ref in m.get("ownerReferences") or []:
        if not ref.get("controller"):
            continue
        kind, name = ref.get("kind"), ref.get("name")
        h = (m.get("labels") or {}).get("pod-template-hash")
        if kind == "ReplicaSet" and h and name and name.endswith("-" + h):
            return "Deployment", name[: -len(h) - 1]
        return kind, name
    return None, None


class Meter:
    """Records instance runs of one node in its :class:`Ledger`."""

    def __init__(self, ledger: Ledger, node: str, table: SpecTable | None = None,
                 clock: Callable[[], float] | None = None):
        self.ledger = ledger
        self.node = node
        self.table = table or spec_table(None)
        self.clock = clock or (lambda: workload_clock().time())   # skube.clock: simulated in the cost simulator
        self._open: dict[str, float] = {r.pod_uid: r.start for r in ledger.open_runs()}

    @classmethod
    def open(cls, data_dir: str | Path, node: str, table: str | dict | None = None) -> "Meter":
        """The meter of the node whose data dir is ``data_dir``, with spec table ``table``."""
        return cls(Ledger.for_data_dir(data_dir), node, spec_table(table))

    def close(self) -> None:
        self.ledger.close()

    # ---- hooks --------------------------------------------------------------------------

    def observe(self, pod: dict, status: dict | None) -> None:
        """The provider reported ``status`` for ``pod``'s instance."""
        try:
            self._observe(pod, status or {})
        except Exception:  # noqa: BLE001 - billing must not break pod sync
            log.exception("metering %s failed", _name(pod))

    def stopped(self, obj: dict, at: float | None = None) -> None:
        """The instance of ``obj`` (the pod or the provider's view of it) was stopped."""
        uid = (obj.get("metadata") or {}).get("uid")
        if not uid or uid not in self._open:
            return
        try:
            self.ledger.stop_run(uid, self.clock() if at is None else at)
            self._open.pop(uid, None)
        except Exception:  # noqa: BLE001
            log.exception("metering the stop of %s failed", _name(obj))

    def reconcile(self, live_uids: Iterable[str]) -> None:
        """Close the open runs of instances that no longer exist."""
        live = set(live_uids)
        now = self.clock()
        for uid in [u for u in self._open if u not in live]:
            try:
                self.ledger.stop_run(uid, now)
                self._open.pop(uid, None)
                log.info("closed the run of vanished instance (uid %s)", uid)
            except Exception:  # noqa: BLE001
                log.exception("closing the run of uid %s failed", uid)

    # ---- internals ----------------------------------------------------------------------

    def _observe(self, pod: dict, status: dict) -> None:
        m = pod.get("metadata") or {}
        uid = m.get("uid")
        if not uid:
            return
        start = instance_start(status)
        if start is None:
            return                                   # not started yet: nothing billed
        terminal = status.get("phase") in TERMINAL
        open_start = self._open.get(uid)
        if open_start is not None and open_start == start and not terminal:
            return                                   # the hot path: a running run, known
        if open_start is not None and open_start != start:
            # a new instance of the same pod while the old run was open: the old one stopped
            self.ledger.stop_run(uid, start, start=open_start)
            self._open.pop(uid, None)
            open_start = None
        if open_start is None:
            spec = self.table.spec_for_pod(pod, strict=False)   # the node failed unfitting pods
            req = self.table.pod_resources(pod)
            kind, owner = workload_of(pod)
            spot = is_spot(pod)
            self.ledger.start_run(pod_uid=uid, namespace=m.get("namespace") or "", name=m.get("name") or "",
                                  node=self.node, spec_table=self.table.name, cpu_m=spec.cpu_m,
                                  memory_mib=spec.memory_mib, rounded=spec.rounded,
                                  req_cpu_m=req.cpu_m, req_memory=req.memory_bytes, start=start,
                                  owner_kind=kind, owner_name=owner, spot=spot)
        if terminal:
            stop = instance_stop(status)
            self.ledger.stop_run(uid, stop if stop is not None else self.clock(), start=start)
            self._open.pop(uid, None)
        else:
            self._open[uid] = start


def _name(obj: dict) -> str:
    m = obj.get("metadata") or {}
    return f"{m.get('namespace')}/{m.get('name')}"


__all__ = ["Meter", "instance_start", "instance_stop", "workload_of", "parse_time"]
