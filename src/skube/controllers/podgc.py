"""The pod garbage collector (upstream's podgc):

* pods bound to a node that no longer exists are deleted (force, grace 0) once
  the node has been missing for ``quarantine`` seconds (checked with a live GET);
* terminating pods that were never scheduled are deleted at once;
* finished pods (Succeeded/Failed) beyond ``terminated_threshold`` are deleted,
  oldest first (upstream's --terminated-pod-gc-threshold, default 12500).
Runs every ``period`` seconds."""
from __future__ import annotations

import asyncio
import logging
import time

from ..client import ApiError, Client
from .controllerutils import NODES, PODS, BaseController, is_terminating, phase

log = logging.getLogger("skube.controllers.podgc")

PERIOD = 20.0
QUARANTINE = 40.0
TERMINATED_THRESHOLD = 12500


class PodGCController(BaseController):
    name = "podgc"

    def __init__(self, client: Client, *, period: float = PERIOD, quarantine: float = QUARANTINE,
                 terminated_threshold: int = TERMINATED_THRESHOLD):
        super().__init__(client, workers=1)
        self.period = period
        self.quarantine = quarantine
        self.terminated_threshold = terminated_threshold
        self.pods = self.informer(PODS)
        self.nodes = self.informer(NODES)
        self._missing_since: dict[str, float] = {}

    def component_name(self) -> str:
        return "pod-garbage-collector"

    def background(self) -> list:
        return [self._loop()]

    async def _loop(self) -> None:
        while True:
            try:
                await self.gc_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - try again next period
                log.exception("pod gc pass failed")
            await asyncio.sleep(self.period)

    async def sync(self, key: str):
        return None

    async def gc_once(self) -> int:
        deleted = 0
        pods = self.pods.list()
        # finished pods beyond the threshold, oldest first
        done = [p for p in pods if phase(p) in ("Succeeded", "Failed") and not is_terminating(p)]
        excess = len(done) - self.terminated_threshold
        if self.terminated_threshold > 0 and excess > 0:
            done.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "")
            for p in done[:excess]:
                deleted += await self._delete(p)
        # pods of missing nodes
        now = time.monotonic()
        nodes = {n["metadata"]["name"] for n in self.nodes.list()}
        seen_missing = set()
        for p in pods:
            node = p["spec"].get("nodeName")
            if not node:
                if is_terminating(p):
                    deleted += await self._delete(p)
                continue
            if node in nodes:
                continue
            seen_missing.add(node)
            since = self._missing_since.setdefault(node, now)
            if now - since < self.quarantine:
                continue
            try:
                await self.client.get(NODES, node)
                continue
            except ApiError as e:
                if not e.not_found:
                    raise
            deleted += await self._delete(p)
        for n in list(self._missing_since):
            if n not in seen_missing:
                self._missing_since.pop(n)
        return deleted

    async def _delete(self, pod: dict) -> int:
        m = pod["metadata"]
        try:
            await self.client.delete(PODS, m["name"], m["namespace"], grace_period_seconds=0,
                                     preconditions={"uid": m.get("uid")})
            log.info("podgc: deleted pod %s/%s", m["namespace"], m["name"])
            return 1
        except ApiError as e:
            if e.not_found or e.conflict:
                return 0
            raise


__all__ = ["PodGCController"]
