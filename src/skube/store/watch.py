"""Watch fan-out: the watch cache (a ring of recent changes) and the watchers.

Every committed write is published once: it goes into the ring and is appended
to the queue of each watcher whose prefix matches, found through a prefix index
so watchers of other prefixes cost nothing. A watcher that starts in the past
first replays history — from the ring while it still holds the revisions, from
sqlite (through the store's history reader) before that — then drains its live
queue. Revisions are dense (every write is exactly one revision), so the ring
is indexed by revision.
"""
from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Awaitable, Callable

import orjson

from .records import Event, Record

if TYPE_CHECKING:
    from collections.abc import Iterable

# How many history events a watcher fetches per step (ring scan or sqlite page).
HISTORY_BATCH = 512

HistoryReader = Callable[[str, int, int, int], Awaitable["list[Event]"]]


class WatchCache:
    """The last ``size`` changes, by revision, kept compact (bytes, not dicts).

    An entry is ``(revision, key, type, raw, prev_raw)``; events are rebuilt on
    demand, reusing the current object when the entry is still the newest
    version of its key, so the ring does not keep old parsed objects alive.
    """

    __slots__ = ("_slots", "_size", "_lo", "_current")

    def __init__(self, size: int, revision: int, current: Callable[[str], Record | None]):
        self._size = max(size, 0)
        self._slots: list = [None] * self._size
        self._lo = revision            # the ring holds revisions (_lo, newest]
        self._current = current

    @property
    def oldest_missing(self) -> int:
        """Revisions greater than this one are in the ring (up to the newest)."""
        return self._lo

    def covers(self, revision: int) -> bool:
        return revision > self._lo

    def append(self, revision: int, key: str, type_: str, raw: bytes, prev_raw: bytes | None) -> None:
        size = self._size
        if size == 0:
            self._lo = revision
            return
        self._slots[revision % size] = (revision, key, type_, raw, prev_raw)
        if revision - self._lo > size:
            self._lo = revision - size

    def scan(self, prefix: str, after: int, upto: int, out: deque, max_events: int) -> int:
        """Append events under ``prefix`` with revisions in (after, upto] to ``out``.

        Stops after ``max_events`` matches; returns the last revision scanned.
        The caller checks ``covers(after + 1)`` first.
        """
        slots, size = self._slots, self._size
        r = after
        found = 0
        while r < upto and found < max_events:
            r += 1
            entry = slots[r % size]
            if entry[1].startswith(prefix):
                out.append(self._event(entry))
                found += 1
        return r

    def _event(self, entry) -> Event:
        revision, key, type_, raw, prev_raw = entry
        cur = self._current(key)
        obj = cur.obj if cur is not None and cur.raw is raw else orjson.loads(raw)
        prev = orjson.loads(prev_raw) if prev_raw is not None else None
        return Event(type_, key, obj, raw, revision, prev)


class Watcher:
    """Async iterator of Events with revision > from_revision for keys under a prefix.

    Iteration ends when the watcher is closed, when the store closes, when the
    watcher falls too far behind (its queue passed the store's bound), or when
    compaction removed history it still had to read from sqlite. ``reason``
    tells which ("closed", "store closed", "too slow", "compacted").
    """

    __slots__ = ("prefix", "reason", "_hub", "_from", "_cursor", "_target", "_hist", "_queue",
                 "_waiter", "_closed", "_delivered")

    def __init__(self, hub: WatchHub, prefix: str, from_revision: int, current_revision: int):
        self.prefix = prefix
        self.reason: str | None = None
        self._hub = hub
        self._from = from_revision
        self._cursor = from_revision        # history scanned up to this revision
        self._target = current_revision     # history ends here; later events arrive live
        self._hist: deque[Event] = deque()  # history fetched, not yet delivered
        self._queue: deque[Event] = deque()  # live events, not yet delivered
        self._waiter: asyncio.Future | None = None
        self._closed = False
        self._delivered = from_revision

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def progress_revision(self) -> int:
        """Every matching event up to this revision has been returned (for BOOKMARKs)."""
        if self._hist:
            return self._delivered
        if self._cursor < self._target:
            return max(self._delivered, self._cursor)
        if self._queue:
            return max(self._delivered, self._queue[0].revision - 1)
        return max(self._delivered, self._hub.revision())

    def close(self) -> None:
        self._end("closed")

    def __aiter__(self) -> Watcher:
        return self

    async def __anext__(self) -> Event:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._hist:
                ev = self._hist.popleft()
                self._delivered = ev.revision
                return ev
            if self._cursor < self._target:
                await self._fetch_history()
                continue
            queue = self._queue
            if queue:
                ev = queue.popleft()
                if ev.revision <= self._from:   # watch started at a future revision
                    continue
                self._delivered = ev.revision
                return ev
            self._waiter = waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    async def _fetch_history(self) -> None:
        hub = self._hub
        cache = hub.cache
        after = self._cursor
        if cache.covers(after + 1):
            self._cursor = cache.scan(self.prefix, after, self._target, self._hist, HISTORY_BATCH)
            return
        upto = min(self._target, cache.oldest_missing)
        events = await hub.read_history(self.prefix, after, upto, HISTORY_BATCH)
        if self._closed or self._cursor != after:
            return
        if hub.compacted_revision() > after:
            # compaction may have removed rows this page should have returned
            self._end("compacted")
            return
        self._hist.extend(events)
        self._cursor = events[-1].revision if len(events) == HISTORY_BATCH else upto

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _end(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        self.reason = reason
        self._queue.clear()
        self._hist.clear()
        self._hub.remove(self)
        self._wake()


class WatchHub:
    """Registry of watchers by prefix, the watch cache, and the fan-out of commits."""

    def __init__(self, *, cache: WatchCache, max_queue: int, read_history: HistoryReader,
                 revision: Callable[[], int], compacted_revision: Callable[[], int]):
        self.cache = cache
        self.read_history = read_history
        self.revision = revision
        self.compacted_revision = compacted_revision
        self._max_queue = max_queue
        self._by_prefix: dict[str, set[Watcher]] = {}
        self._lengths: list[int] = []          # distinct prefix lengths, ascending
        self._length_count: dict[int, int] = {}

    def __len__(self) -> int:
        return sum(len(ws) for ws in self._by_prefix.values())

    def watch(self, prefix: str, from_revision: int, current_revision: int) -> Watcher:
        w = Watcher(self, prefix, from_revision, current_revision)
        ws = self._by_prefix.get(prefix)
        if ws is None:
            ws = self._by_prefix[prefix] = set()
            n = len(prefix)
            count = self._length_count.get(n, 0)
            self._length_count[n] = count + 1
            if count == 0:
                self._lengths = sorted(self._length_count)
        ws.add(w)
        return w

    def remove(self, w: Watcher) -> None:
        ws = self._by_prefix.get(w.prefix)
        if ws is None or w not in ws:
            return
        ws.discard(w)
        if not ws:
            del self._by_prefix[w.prefix]
            n = len(w.prefix)
            self._length_count[n] -= 1
            if self._length_count[n] == 0:
                del self._length_count[n]
                self._lengths = sorted(self._length_count)

    def publish(self, events: Iterable[Event]) -> None:
        """Queue committed events on the matching watchers and wake them."""
        by_prefix = self._by_prefix
        if not by_prefix:
            return
        lengths = self._lengths
        touched: set[Watcher] = set()
        for ev in events:
            key = ev.key
            n = len(key)
            for length in lengths:
                if length > n:
                    break
                ws = by_prefix.get(key[:length])
                if ws:
                    for w in ws:
                        w._queue.append(ev)
                    touched.update(ws)
        limit = self._max_queue
        for w in touched:
            if len(w._queue) > limit:
                w._end("too slow")
            else:
                w._wake()

    def close_all(self) -> None:
        for ws in list(self._by_prefix.values()):
            for w in list(ws):
                w._end("store closed")
