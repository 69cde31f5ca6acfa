"""Watch streams: newline-delimited JSON events, flushed one by one.

Implements resourceVersion semantics (unset, "0", exact), selector transitions
(an object leaving a selector is seen as DELETED), bookmarks, timeoutSeconds,
and watch-list (sendInitialEvents) ending with the `k8s.io/initial-events-end`
bookmark that client-go reflectors wait for."""
from __future__ import annotations

import asyncio
import random
import time
from typing import Callable

import orjson

from ..api import errors
from ..api.registry import ResourceInfo
from ..store import ExpiredError

BOOKMARK_INTERVAL = 60.0


def _event(kind: str, raw: bytes) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + raw + b'}\n'


def bookmark(info: ResourceInfo, rv: int, initial_end: bool = False) -> bytes:
    meta: dict = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj = {"kind": info.kind, "apiVersion": info.api_version, "metadata": meta}
    return b'{"type":"BOOKMARK","object":' + orjson.dumps(obj) + b'}\n'


def error_event(err: errors.APIError) -> bytes:
    return b'{"type":"ERROR","object":' + orjson.dumps(err.status()) + b'}\n'


class WatchStream:
    """One client's watch: yields encoded event lines until timeout, close or disconnect."""

    def __init__(self, store, info: ResourceInfo, prefix: str, match: Callable[[dict], bool],
                 *, rv: str | None, send_initial: bool | None, bookmarks: bool,
                 timeout: float | None, encode: Callable[[str, dict, bytes], bytes] | None = None):
        self.store = store
        self.info = info
        self.prefix = prefix
        self.match = match
        self.bookmarks = bookmarks
        self.deadline = time.monotonic() + (timeout if timeout else random.uniform(1800, 3600))
        self.encode = encode or (lambda t, obj, raw: _event(t, raw))
        self.initial: list = []
        self.initial_end = False
        if send_initial:
            # watch-list: the current state, then the initial-events-end bookmark
            self.initial, from_rev = store.list(prefix)
            self.initial_end = True
        elif not rv or rv == "0":
            if send_initial is None:
                self.initial, from_rev = store.list(prefix)
            else:
                from_rev = store.revision
        else:
            from_rev = int(rv)
        self.start_rev = from_rev
        # raises ExpiredError synchronously for compacted revisions
        self.watcher = store.watch(prefix, from_rev)
        self.last_rev = from_rev

    def close(self) -> None:
        self.watcher.close()

    async def events(self):
        try:
            for rec in self.initial:
                if self.match(rec.obj):
                    yield self.encode("ADDED", rec.obj, rec.raw)
            self.initial = []
            if self.initial_end:
                yield bookmark(self.info, self.start_rev, initial_end=True)
            it = self.watcher.__aiter__()
            next_bookmark = time.monotonic() + BOOKMARK_INTERVAL
            while True:
                now = time.monotonic()
                wait = self.deadline - now
                if self.bookmarks:
                    wait = min(wait, next_bookmark - now)
                if wait <= 0:
                    if now >= self.deadline:
                        return
                    yield bookmark(self.info, max(self.last_rev, self.watcher.progress_revision))
                    next_bookmark = time.monotonic() + BOOKMARK_INTERVAL
                    continue
                try:
                    ev = await asyncio.wait_for(it.__anext__(), wait)
                except asyncio.TimeoutError:
                    continue
                except StopAsyncIteration:
                    return
                self.last_rev = ev.revision
                line = self._filter(ev)
                if line is not None:
                    yield line
        finally:
            self.close()

    def _filter(self, ev) -> bytes | None:
        new_match = self.match(ev.obj)
        if ev.type == "ADDED":
            return self.encode("ADDED", ev.obj, ev.raw) if new_match else None
        if ev.type == "DELETED":
            return self.encode("DELETED", ev.obj, ev.raw) if new_match else None
        old_match = ev.prev_obj is not None and self.match(ev.prev_obj)
        if new_match:
            return self.encode("MODIFIED" if old_match else "ADDED", ev.obj, ev.raw)
        if old_match:
            return self.encode("DELETED", ev.obj, ev.raw)
        return None


def expired(rv: str, compacted: int) -> errors.APIError:
    return errors.gone(f"too old resource version: {rv} ({compacted})")


__all__ = ["WatchStream", "bookmark", "error_event", "expired", "ExpiredError"]
