"""A work queue with client-go's semantics, for controllers.

* A key added while it waits in the queue is coalesced (queued once).
* A key being processed is never handed to a second worker: added again
  meanwhile, it is queued when its worker calls :meth:`WorkQueue.done`.
* :meth:`WorkQueue.add_after` delays a key (an earlier time wins over a later one);
  :meth:`WorkQueue.add_rate_limited` delays it by its rate limiter (per-key
  exponential back-off, 5 ms doubling to 1000 s, and an overall token bucket,
  like client-go's default controller rate limiter); :meth:`forget` resets it.
* With ``pace`` set (controllers use 2; off by default, e.g. for the virtual node's
  per-pod syncs whose time is mostly the provider's), a key whose handler ran long
  (``busy`` passed to :meth:`WorkQueue.done`, at least ``PACE_MIN`` seconds) is not
  handed out again for ``pace`` times that long (at most ``PACE_MAX``): events
  arriving meanwhile coalesce into one later run. A controller whose sync walks many
  objects (a ReplicaSet of 20,000 pods) then takes a bounded share of a process it
  shares with the API server, scheduler and nodes, instead of re-running back to back
  on every pod event. (client-go has no such pacing; Go syncs are cheap enough.)
* :meth:`WorkQueue.shut_down` stops new adds; :meth:`get` still hands out what is
  queued, then returns None.

:func:`run_workers` runs ``n`` workers around a handler.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import deque
from typing import Any, Awaitable, Callable, Hashable

log = logging.getLogger("skube.client.workqueue")


# ---- rate limiters ----------------------------------------------------------------------


class ExponentialFailureRateLimiter:
    """Per-key back-off: ``base * 2**failures``, at most ``max_delay``."""

    def __init__(self, base: float = 0.005, max_delay: float = 1000.0):
        self.base = base
        self.max_delay = max_delay
        self._failures: dict[Hashable, int] = {}

    def when(self, key: Hashable) -> float:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        if n > 62:   # 2**n overflows any sensible delay long before this
            return self.max_delay
        return min(self.base * (2 ** n), self.max_delay)

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: Hashable) -> int:
        return self._failures.get(key, 0)


class BucketRateLimiter:
    """Overall token bucket: ``qps`` tokens a second, at most ``burst`` saved up.
    Each ``when()`` reserves a token and answers how long to wait for it."""

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Callable[[], float] = time.monotonic):
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def when(self, key: Hashable) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, key: Hashable) -> None:
        pass

    def num_requeues(self, key: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """The longest delay of several limiters."""

    def __init__(self, *limiters):
        self.limiters = limiters

    def when(self, key: Hashable) -> float:
        return max(limiter.when(key) for limiter in self.limiters)

    def forget(self, key: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(key)

    def num_requeues(self, key: Hashable) -> int:
        return max(limiter.num_requeues(key) for limiter in self.limiters)


def default_controller_rate_limiter() -> MaxOfRateLimiter:
    """client-go's DefaultControllerRateLimiter: 5 ms..1000 s per key, 10 qps / 100 burst overall."""
    return MaxOfRateLimiter(ExponentialFailureRateLimiter(0.005, 1000.0), BucketRateLimiter(10.0, 100))


# ---- the queue --------------------------------------------------------------------------


class WorkQueue:
    """Rate-limited, delaying work queue of hashable keys (see the module docstring)."""

    PACE_MIN = 0.02         # seconds of work before a key is paced
    PACE_MAX = 1.0          # the longest pause (a run that mostly awaited the network)

    def __init__(self, rate_limiter=None, name: str = "", pace: float = 0.0):
        self.name = name
        self.pace = pace
        self._not_before: dict[Hashable, float] = {}
        self.rate_limiter = rate_limiter or default_controller_rate_limiter()
        self._queue: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._waiters: list[asyncio.Future] = []
        self._delayed: dict[Hashable, tuple[float, asyncio.TimerHandle]] = {}
        self._shutting_down = False

    # -- basic queue

    def add(self, key: Hashable) -> None:
        """Queue ``key`` unless it is already waiting; a key being processed is
        queued again once its worker calls :meth:`done`."""
        if self._shutting_down or key in self._dirty:
            return
        not_before = self._not_before.get(key)
        if not_before is not None:
            wait = not_before - asyncio.get_running_loop().time()
            if wait > 0:
                self.add_after(key, wait)
                return
            del self._not_before[key]
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._wake()

    def __len__(self) -> int:
        return len(self._queue)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._dirty

    async def get(self) -> Any:
        """The next key (now owned by the caller until :meth:`done`), or None once the
        queue is shut down and empty."""
        while not self._queue:
            if self._shutting_down:
                return None
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            finally:
                if fut in self._waiters:
                    self._waiters.remove(fut)
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: Hashable, busy: float = 0.0) -> None:
        """The worker finished ``key`` after ``busy`` seconds of work; if it was added
        meanwhile, queue it again (paced, after a long run: see the module docstring)."""
        self._processing.discard(key)
        if busy >= self.PACE_MIN and self.pace > 0 and not self._shutting_down:
            self._not_before[key] = asyncio.get_running_loop().time() + min(self.pace * busy, self.PACE_MAX)
            if key in self._dirty:
                self._dirty.discard(key)
                self.add(key)
            return
        if key in self._dirty:
            self._queue.append(key)
            self._wake()

    def _wake(self) -> None:
        # wake every waiter: each re-checks the queue, so a cancelled getter loses nothing
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def shut_down(self) -> None:
        """No more adds; getters drain what is queued, then get None."""
        self._shutting_down = True
        for _, handle in self._delayed.values():
            handle.cancel()
        self._delayed.clear()
        self._wake()

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    @property
    def processing(self) -> frozenset:
        return frozenset(self._processing)

    # -- delaying

    def add_after(self, key: Hashable, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds; if it is already waiting for a later
        time, the earlier one wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        ready = loop.time() + delay
        current = self._delayed.get(key)
        if current is not None:
            if current[0] <= ready:
                return
            current[1].cancel()
        self._delayed[key] = (ready, loop.call_at(ready, self._fire, key))

    def _fire(self, key: Hashable) -> None:
        self._delayed.pop(key, None)
        self.add(key)

    # -- rate limiting

    def add_rate_limited(self, key: Hashable) -> None:
        """Queue ``key`` after its rate limiter's delay (grows with each call until forget)."""
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: Hashable) -> None:
        """Stop tracking ``key``'s failures (its next back-off starts over)."""
        self.rate_limiter.forget(key)

    def num_requeues(self, key: Hashable) -> int:
        return self.rate_limiter.num_requeues(key)


# ---- workers ----------------------------------------------------------------------------


Handler = Callable[[Any], "Awaitable[Any] | Any"]


async def run_workers(queue: WorkQueue, handler: Handler, n: int = 1) -> None:
    """Run ``n`` workers until the queue is shut down (and drained) or the task is
    cancelled. Each calls ``handler(key)`` (sync or async): on success the key's
    back-off is forgotten; on an exception it is re-queued rate limited. A handler
    may return a number of seconds to be called again for the key after that delay."""

    async def worker() -> None:
        while True:
            key = await queue.get()
            if key is None:
                return
            started = loop.time()
            try:
                result = handler(key)
                if inspect.isawaitable(result):
                    result = await result
            except asyncio.CancelledError:
                queue.done(key)
                raise
            except Exception as e:  # noqa: BLE001 - a controller must survive any failure
                n_failed = queue.num_requeues(key)
                level = logging.DEBUG if n_failed < 3 else logging.WARNING
                log.log(level, "%s: %r failed (retry %d): %s", queue.name or "workqueue", key,
                        n_failed + 1, e, exc_info=level >= logging.WARNING)
                queue.add_rate_limited(key)
            else:
                queue.forget(key)
                if isinstance(result, (int, float)) and not isinstance(result, bool) and result > 0:
                    queue.add_after(key, float(result))
            queue.done(key, loop.time() - started)

    loop = asyncio.get_running_loop()
    await asyncio.gather(*(worker() for _ in range(max(1, n))))


__all__ = ["WorkQueue", "run_workers", "ExponentialFailureRateLimiter", "BucketRateLimiter",
           "MaxOfRateLimiter", "default_controller_rate_limiter"]
