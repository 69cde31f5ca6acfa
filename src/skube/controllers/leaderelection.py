"""Leader election through a coordination.k8s.io/v1 Lease, with client-go's semantics.

Candidates share one Lease (``kube-system/skube-controller-manager`` by default).
Whoever holds it acts; the others keep trying every ``retry_period``:

* **acquire** — create the Lease, or take it over with an update guarded by the
  ``resourceVersion`` last read (optimistic concurrency: of two candidates racing
  for the same version, one gets a Conflict). A Lease held by someone else may be
  taken only once its holder is empty (released) or the record has not changed for
  ``leaseDurationSeconds`` *as observed on this candidate's own clock* (the holder's
  ``renewTime`` is never compared with the local wall clock, so clock skew between
  processes cannot make a candidate steal a live lease). Taking it from another
  holder sets ``acquireTime`` and increments ``leaseTransitions``.
* **renew** — the leader rewrites ``renewTime`` every ``retry_period``. If no renewal
  succeeds for ``renew_deadline`` (< ``lease_duration``), or the Lease turns out to be
  held by someone else, it steps down: ``on_stopped_leading`` runs and it becomes a
  candidate again. It thus stops acting before anybody else may take over.
* **release** — on a clean shutdown (``stop`` set) the leader, after
  ``on_stopped_leading`` has returned, writes ``holderIdentity: ""`` and
  ``leaseDurationSeconds: 1`` so the next candidate takes over at its next retry
  instead of waiting for the lease to expire. A process that dies (or a ``run`` that
  is cancelled) does not release: the lease then expires after ``lease_duration``.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
import random
import socket
import time
import uuid
from typing import Any, Callable

import aiohttp

from ..aio import wait_set
from ..client import ApiError, Client, resource

log = logging.getLogger("skube.controllers.leaderelection")

LEASES = resource("coordination.k8s.io/v1", "leases", kind="Lease")
JITTER = 1.2          # acquire retries wait retry_period * U(1, JITTER)
RELEASE_TIMEOUT = 5.0  # a release request may take this long on shutdown

Callback = Callable[[], Any]


def default_identity() -> str:
    """``<hostname>_<uuid4>``: unique per process, readable in ``kubectl get lease``."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def now_micro() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def _call(cb: Callback | None) -> None:
    if cb is None:
        return
    res = cb()
    if inspect.isawaitable(res):
        await res


class LeaderElector:
    """Compete for Lease ``namespace/name`` as ``identity``; see the module doc.

    ``await run(on_started_leading, on_stopped_leading, stop)`` loops until ``stop`` is
    set: wait to become leader, ``await on_started_leading()``, renew until leadership
    is lost or ``stop`` is set, ``await on_stopped_leading()``, then (on stop) release
    the Lease, or (on loss) compete again. Callbacks may be plain or async callables."""

    def __init__(self, client: Client, name: str = "skube-controller-manager",
                 namespace: str = "kube-system", identity: str | None = None, *,
                 lease_duration: float = 15.0, renew_deadline: float = 10.0,
                 retry_period: float = 2.0, release_on_stop: bool = True):
        if not lease_duration > renew_deadline:
            raise ValueError("lease_duration must be greater than renew_deadline")
        if not renew_deadline > retry_period * JITTER:
            raise ValueError(f"renew_deadline must be greater than retry_period*{JITTER}")
        if retry_period <= 0:
            raise ValueError("retry_period must be positive")
        self.client = client
        self.name = name
        self.namespace = namespace
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.release_on_stop = release_on_stop
        self._lease: dict | None = None          # the Lease as last read or written
        self._observed_spec: dict | None = None  # its spec, and when it last changed (monotonic)
        self._observed_at = 0.0
        self._leading = False

    # ---- state ----------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self._leading

    @property
    def leader(self) -> str:
        """The holder as last observed ("" if none or unknown)."""
        return (self._observed_spec or {}).get("holderIdentity") or ""

    def _lease_seconds(self) -> int:
        # the API field is an integer; a sub-second duration still has to be > 0
        return max(1, int(round(self.lease_duration)))

    def _held_by_other(self) -> bool:
        """Someone else holds the Lease and, by our clock, it has not expired."""
        spec = self._observed_spec or {}
        holder = spec.get("holderIdentity") or ""
        if not holder or holder == self.identity:
            return False
        duration = spec.get("leaseDurationSeconds") or self._lease_seconds()
        return self._observed_at + duration > time.monotonic()

    def _observe(self, lease: dict) -> None:
        self._lease = lease
        spec = dict(lease.get("spec") or {})
        if spec != self._observed_spec:
            self._observed_spec = spec
            self._observed_at = time.monotonic()

    # ---- one attempt ----------------------------------------------------------------------

    async def try_acquire_or_renew(self) -> bool:
        """One attempt to create, take over or renew the Lease; True if we hold it now."""
        now = now_micro()
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
        except ApiError as e:
            if not e.not_found:
                raise
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": {"holderIdentity": self.identity,
                             "leaseDurationSeconds": self._lease_seconds(),
                             "acquireTime": now, "renewTime": now, "leaseTransitions": 0}}
            try:
                created = await self.client.create(LEASES, body, self.namespace)
            except ApiError as e2:
                if e2.already_exists:
                    return False
                raise
            self._observe(created)
            return True

        self._observe(lease)
        if self._held_by_other():
            return False
        old = lease.get("spec") or {}
        spec = {"holderIdentity": self.identity, "leaseDurationSeconds": self._lease_seconds(),
                "renewTime": now}
        if old.get("holderIdentity") == self.identity:      # a renewal
            spec["acquireTime"] = old.get("acquireTime") or now
            spec["leaseTransitions"] = old.get("leaseTransitions") or 0
        else:                                               # a transition (also from released)
            spec["acquireTime"] = now
            spec["leaseTransitions"] = (old.get("leaseTransitions") or 0) + 1
        body = dict(lease)
        body["spec"] = {**old, **spec}
        try:
            updated = await self.client.update(LEASES, body, self.namespace)
        except ApiError as e:
            if e.conflict:   # someone else wrote it since our read
                return False
            raise
        self._observe(updated)
        return True

    async def _attempt(self, timeout: float) -> bool:
        """try_acquire_or_renew bounded by ``timeout``; errors count as a failed attempt."""
        try:
            return await asyncio.wait_for(self.try_acquire_or_renew(), max(timeout, 0.05))
        except asyncio.TimeoutError:
            log.warning("lease %s/%s: request timed out", self.namespace, self.name)
        except (ApiError, aiohttp.ClientError, OSError, ValueError) as e:
            log.warning("lease %s/%s: %s", self.namespace, self.name, e)
        return False

    async def release(self) -> bool:
        """Give the Lease up if we hold it (holder "", duration 1 s); True if released."""
        lease = self._lease
        for _ in range(2):
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return False
            now = now_micro()
            body = dict(lease)
            body["spec"] = {**(lease.get("spec") or {}), "holderIdentity": "",
                            "leaseDurationSeconds": 1, "acquireTime": now, "renewTime": now}
            try:
                self._observe(await self.client.update(LEASES, body, self.namespace))
                log.info("lease %s/%s released by %s", self.namespace, self.name, self.identity)
                return True
            except ApiError as e:
                if not e.conflict:
                    raise
                lease = await self.client.get(LEASES, self.name, self.namespace)
        return False

    # ---- the loop -------------------------------------------------------------------------

    async def _sleep(self, seconds: float, stop: asyncio.Event) -> None:
        await wait_set(stop, seconds)

    async def _acquire(self, stop: asyncio.Event) -> bool:
        """Retry until we hold the Lease (True) or ``stop`` is set (False)."""
        logged_holder = None
        while not stop.is_set():
            if await self._attempt(self.retry_period * JITTER):
                return True
            if self.leader and self.leader != logged_holder:
                logged_holder = self.leader
                log.info("lease %s/%s is held by %s; %s waiting", self.namespace, self.name,
                         self.leader, self.identity)
            await self._sleep(self.retry_period * random.uniform(1.0, JITTER), stop)
        return False

    async def _renew(self, stop: asyncio.Event) -> None:
        """Renew every retry_period; return when ``stop`` is set or leadership is lost."""
        last_renewed = time.monotonic()
        while True:
            await self._sleep(self.retry_period, stop)
            if stop.is_set():
                return
            left = self.renew_deadline - (time.monotonic() - last_renewed)
            if await self._attempt(left):
                last_renewed = time.monotonic()
                continue
            if self._held_by_other():
                log.warning("lease %s/%s: taken over by %s; %s steps down", self.namespace, self.name,
                            self.leader, self.identity)
                return
            if time.monotonic() - last_renewed >= self.renew_deadline:
                log.warning("lease %s/%s: not renewed within %ss; %s steps down", self.namespace,
                            self.name, self.renew_deadline, self.identity)
                return

    async def run(self, on_started_leading: Callback | None = None,
                  on_stopped_leading: Callback | None = None,
                  stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        while not stop.is_set():
            if not await self._acquire(stop):
                return
            self._leading = True
            log.info("lease %s/%s acquired by %s", self.namespace, self.name, self.identity)
            try:
                await _call(on_started_leading)
                await self._renew(stop)
            finally:
                self._leading = False
                await _call(on_stopped_leading)
            if stop.is_set() and self.release_on_stop:
                try:
                    await asyncio.wait_for(self.release(), RELEASE_TIMEOUT)
                except (asyncio.TimeoutError, ApiError, aiohttp.ClientError, OSError) as e:
                    log.warning("lease %s/%s: release failed: %s", self.namespace, self.name, e)


__all__ = ["LeaderElector", "LEASES", "default_identity"]
