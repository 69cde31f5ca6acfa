"""The scheduling queue, after kube-scheduler's PriorityQueue.

* **active**: pods ready to be tried, highest ``spec.priority`` first, then oldest.
* **backoff**: pods that failed and wait out their back-off (1 s doubling per
  attempt up to 10 s) before going back to active.
* **unschedulable**: pods no node fits. They move on (to backoff, or straight to
  active when their back-off is over) when a cluster event that one of the plugins
  that rejected them cares about happens, or after 5 minutes in any case.

A pod that fails while a move request happened after its cycle began goes to
backoff instead of unschedulable (the event it might need has already passed).
Keys are ``namespace/name``.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Callable

from ..aio import wait_set
from ..clock import clock as workload_clock
from .cache import PodInfo

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_IN_UNSCHEDULABLE = 300.0       # podMaxInUnschedulablePodsDuration
UNSCHEDULABLE_FLUSH_INTERVAL = 30.0


class QueuedPod:
    """A pod in (or popped from) the queue, with its scheduling history."""

    __slots__ = ("info", "timestamp", "initial_timestamp", "attempts", "unschedulable_plugins",
                 "cycle", "backoff_expiry", "where", "popped_at", "first_seen")

    def __init__(self, info: PodInfo, now: float):
        self.info = info
        self.timestamp = now              # when it last entered the queue
        self.initial_timestamp = now      # when it first entered it
        self.attempts = 0
        self.unschedulable_plugins: set[str] = set()
        self.cycle = 0
        self.backoff_expiry = 0.0
        self.where = ""                   # "active" | "backoff" | "unschedulable" | "" (in flight)
        self.popped_at = 0.0
        self.first_seen = workload_clock().monotonic()   # simulated time: how long it waits

    @property
    def key(self) -> str:
        return self.info.key


class SchedulingQueue:
    """See the module docstring. ``clock`` is injectable for tests."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 initial_backoff: float = INITIAL_BACKOFF, max_backoff: float = MAX_BACKOFF,
                 max_in_unschedulable: float = MAX_IN_UNSCHEDULABLE):
        self.clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_in_unschedulable = max_in_unschedulable
        self._pods: dict[str, QueuedPod] = {}        # everything queued or in flight
        self._active: list[tuple] = []               # heap (-priority, timestamp, seq, key)
        self._backoff: list[tuple] = []              # heap (expiry, seq, key)
        self._unschedulable: dict[str, QueuedPod] = {}
        self._in_flight: set[str] = set()
        self._seq = itertools.count()
        self._wakeup: asyncio.Event | None = None
        self._closed = False
        self.scheduling_cycle = 0
        self.move_request_cycle = -1

    # ---- introspection ------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._pods) - len(self._in_flight)

    def __contains__(self, key: str) -> bool:
        return key in self._pods

    def get(self, key: str) -> QueuedPod | None:
        return self._pods.get(key)

    def pending(self) -> dict[str, list[str]]:
        """Keys by sub-queue (for debugging and tests)."""
        out: dict[str, list[str]] = {"active": [], "backoff": [], "unschedulable": []}
        for k, q in self._pods.items():
            if q.where:
                out[q.where].append(k)
        return out

    # ---- internals ----------------------------------------------------------------------

    def _backoff_of(self, q: QueuedPod) -> float:
        if q.attempts <= 0:
            return 0.0
        return min(self.initial_backoff * (2 ** (q.attempts - 1)), self.max_backoff)

    def _notify(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    def _to_active(self, q: QueuedPod) -> None:
        self._unschedulable.pop(q.key, None)
        q.where = "active"
        heapq.heappush(self._active, (-q.info.priority, q.timestamp, next(self._seq), q.key))
        self._notify()

    def _to_backoff(self, q: QueuedPod) -> None:
        self._unschedulable.pop(q.key, None)
        q.where = "backoff"
        q.backoff_expiry = q.timestamp + self._backoff_of(q)
        heapq.heappush(self._backoff, (q.backoff_expiry, next(self._seq), q.key))
        self._notify()

    def _to_unschedulable(self, q: QueuedPod) -> None:
        q.where = "unschedulable"
        self._unschedulable[q.key] = q

    def _flush_backoff(self, now: float) -> None:
        heap = self._backoff
        while heap and heap[0][0] <= now:
            _, _, key = heapq.heappop(heap)
            q = self._pods.get(key)
            if q is not None and q.where == "backoff" and q.backoff_expiry <= now:
                self._to_active(q)

    def _flush_unschedulable(self, now: float) -> None:
        stale = [q for q in self._unschedulable.values()
                 if now - q.timestamp >= self.max_in_unschedulable]
        for q in stale:
            self._requeue(q, now)

    def _requeue(self, q: QueuedPod, now: float) -> None:
        """Unschedulable → backoff (still backing off) or active."""
        if q.timestamp + self._backoff_of(q) > now:
            self._to_backoff(q)
        else:
            self._to_active(q)

    # ---- informer-facing ----------------------------------------------------------------

    def add(self, info: PodInfo) -> None:
        """A new pending pod (or one seen again): into active unless already queued."""
        q = self._pods.get(info.key)
        if q is not None:
            self.update(info)
            return
        q = self._pods[info.key] = QueuedPod(info, self.clock())
        self._to_active(q)

    def update(self, info: PodInfo) -> None:
        """A queued pod changed: keep the newest object; an unschedulable one whose spec or
        labels changed is tried again."""
        q = self._pods.get(info.key)
        if q is None:
            self.add(info)
            return
        old = q.info
        q.info = info
        if q.where == "unschedulable" and _spec_changed(old, info):
            self._requeue(q, self.clock())
        elif q.where == "active" and old.priority != info.priority:
            self._to_active(q)   # the stale heap entry is skipped on pop

    def delete(self, key: str) -> None:
        q = self._pods.pop(key, None)
        if q is not None:
            self._unschedulable.pop(key, None)
            q.where = ""
        self._in_flight.discard(key)

    # ---- scheduler-facing ---------------------------------------------------------------

    def pop_nowait(self) -> QueuedPod | None:
        """The next active pod (marking it in flight), or None."""
        self._flush_backoff(self.clock())
        heap = self._active
        while heap:
            prio, ts, _, key = heapq.heappop(heap)
            q = self._pods.get(key)
            if q is None or q.where != "active" or q.timestamp != ts or -prio != q.info.priority:
                continue
            q.where = ""
            q.attempts += 1
            self.scheduling_cycle += 1
            q.cycle = self.scheduling_cycle
            q.popped_at = self.clock()
            self._in_flight.add(key)
            return q
        return None

    async def pop(self) -> QueuedPod | None:
        """Wait for the next active pod; None once closed."""
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        last_flush = self.clock()
        while not self._closed:
            q = self.pop_nowait()
            if q is not None:
                return q
            self._wakeup.clear()
            now = self.clock()
            if now - last_flush >= UNSCHEDULABLE_FLUSH_INTERVAL:
                self._flush_unschedulable(now)
                last_flush = now
                continue
            timeout = UNSCHEDULABLE_FLUSH_INTERVAL
            if self._backoff:
                timeout = max(0.0, min(timeout, self._backoff[0][0] - now))
            await wait_set(self._wakeup, timeout)
        return None

    def flush(self) -> None:
        """Move what is due: expired back-offs, and pods unschedulable for too long."""
        now = self.clock()
        self._flush_backoff(now)
        self._flush_unschedulable(now)

    def done(self, key: str) -> None:
        """The pod was scheduled (or dropped): forget it."""
        self._in_flight.discard(key)
        q = self._pods.get(key)
        if q is not None and not q.where:
            del self._pods[key]

    def add_unschedulable(self, q: QueuedPod, plugins: set[str] | None = None) -> None:
        """A popped pod failed. With ``plugins`` (the ones that rejected it) it waits for a
        relevant event; without (an error), or if an event arrived during its cycle, it
        backs off."""
        key = q.key
        self._in_flight.discard(key)
        if key not in self._pods or q.where:
            return            # deleted meanwhile, or re-added by an update
        q.timestamp = self.clock()
        q.unschedulable_plugins = set(plugins or ())
        if not plugins or self.move_request_cycle >= q.cycle:
            self._to_backoff(q)
        else:
            self._to_unschedulable(q)

    def activate(self, key: str) -> bool:
        """Retry an unschedulable pod now (e.g. its policy opened more nodes); False if it
        is not waiting as unschedulable."""
        q = self._unschedulable.get(key)
        if q is None:
            return False
        self._requeue(q, self.clock())
        return True

    def requeue_error(self, q: QueuedPod) -> None:
        """A popped pod hit an error (e.g. a failed binding): back off and retry."""
        self.add_unschedulable(q, None)

    def move_all(self, event: str, interested: Callable[[QueuedPod, str], bool] | None = None) -> int:
        """A cluster event: unschedulable pods that a plugin interested in ``event``
        rejected move to backoff/active. Returns how many moved."""
        now = self.clock()
        moved = 0
        for q in list(self._unschedulable.values()):
            if interested is None or interested(q, event):
                self._requeue(q, now)
                moved += 1
        self.move_request_cycle = self.scheduling_cycle
        return moved

    def close(self) -> None:
        self._closed = True
        self._notify()


def _spec_changed(old: PodInfo, new: PodInfo) -> bool:
    a, b = old.pod, new.pod
    return (a.get("spec") != b.get("spec") or old.labels != new.labels
            or (a.get("metadata") or {}).get("annotations") != (b.get("metadata") or {}).get("annotations"))


__all__ = ["SchedulingQueue", "QueuedPod", "INITIAL_BACKOFF", "MAX_BACKOFF", "MAX_IN_UNSCHEDULABLE"]
