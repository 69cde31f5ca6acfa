"""Recording core v1 Events (client-go's tools/record): aggregated as client-go's
correlator does — the same (object, type, reason, message) again patches
``count``/``lastTimestamp`` of the first Event. Best effort, sent in the background."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
import time

from .api import ApiError, Client, resource
from .informer import object_key

log = logging.getLogger("skube.client.events")

EVENTS = resource("v1", "events", kind="Event")
EVENT_CACHE_SIZE = 4096


def rfc3339() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    """Core v1 Events, aggregated as client-go's correlator does: the same
    (object, type, reason, message) again patches ``count``/``lastTimestamp`` of the
    first Event. Best effort, sent in the background; ``start()`` before use."""

    def __init__(self, client: Client, component: str, workers: int = 2, *,
                 default_kind: str | None = None, default_api_version: str | None = None):
        self.client = client
        self.component = component
        # list items from upstream servers carry no kind/apiVersion: what the objects are
        self.default_kind, self.default_api_version = default_kind, default_api_version
        self.instance = f"{component}-{socket.gethostname()}"
        self._queue: asyncio.Queue | None = None
        self._workers = workers
        self._tasks: list[asyncio.Task] = []
        self._seen: dict[tuple, list] = {}
        self._locks: dict[tuple, asyncio.Lock] = {}

    def start(self) -> None:
        if not self._tasks:
            self._queue = asyncio.Queue()
            self._tasks = [asyncio.create_task(self._worker(), name=f"{self.component} events")
                           for _ in range(self._workers)]

    async def stop(self, drain: float = 1.0) -> None:
        if self._queue is not None and drain:
            try:
                await asyncio.wait_for(self._queue.join(), drain)
            except asyncio.TimeoutError:
                pass
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def event(self, obj: dict, etype: str, reason: str, message: str, action: str = "") -> None:
        log.debug("%s event %s %s: %s", self.component, object_key(obj), reason, message)
        if self._queue is not None:
            self._queue.put_nowait((obj, etype, reason, message, rfc3339(), action))

    def normal(self, obj: dict, reason: str, message: str) -> None:
        self.event(obj, "Normal", reason, message)

    def warning(self, obj: dict, reason: str, message: str) -> None:
        self.event(obj, "Warning", reason, message)

    async def _worker(self) -> None:
        assert self._queue is not None
        while True:
            item = await self._queue.get()
            try:
                await self._send(*item)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - events are best effort
                log.debug("event not recorded: %s", e)
            finally:
                self._queue.task_done()

    async def _send(self, obj, etype, reason, message, ts, action="") -> None:
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        key = (ns, meta.get("uid"), etype, reason, message)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            seen = self._seen.get(key)
            if seen is not None:
                seen[1] += 1
                try:
                    await self.client.patch(EVENTS, seen[0], {"count": seen[1], "lastTimestamp": ts},
                                            ns, patch_type="merge")
                    return
                except ApiError as e:
                    if not e.not_found:
                        raise
                    self._seen.pop(key, None)
            name = f"{meta.get('name')}.{time.time_ns():x}"
            body = {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": ns},
                "involvedObject": {"apiVersion": obj.get("apiVersion") or self.default_api_version,
                                   "kind": obj.get("kind") or self.default_kind,
                                   "name": meta.get("name"), "namespace": meta.get("namespace"),
                                   "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")},
                "reason": reason, "message": message, "type": etype,
                "source": {"component": self.component},
                "firstTimestamp": ts, "lastTimestamp": ts, "count": 1,
                "reportingComponent": self.component, "reportingInstance": self.instance,
            }
            if action:
                body["action"] = action
            await self.client.create(EVENTS, body, ns)
            if len(self._seen) >= EVENT_CACHE_SIZE:
                old = next(iter(self._seen))
                self._seen.pop(old)
                self._locks.pop(old, None)
            self._seen[key] = [name, 1]
