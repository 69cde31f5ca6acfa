"""The Provider interface: what a virtual node needs from whatever runs its pods.

Modelled on virtual-kubelet's PodLifecycleHandler (+ PodNotifier and the
optional HTTP-side handlers). Pods and statuses are plain dicts shaped like the
Kubernetes API. Every provider must survive a restart of the node: instances
keep running and ``list_pods`` reports them again, so the node can re-adopt them.

Lifecycle calls are idempotent: ``create_pod`` of a pod that already runs (same
uid) and ``delete_pod`` of an unknown pod succeed without doing anything.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable

# callback(pod) -> None: the provider's current view of one pod (metadata + status)
PodCallback = Callable[[dict], None]


class ProviderError(Exception):
    """A provider operation failed (the node retries it with back-off)."""


class NotSupported(ProviderError):
    """The provider does not implement an optional feature (exec, attach, port-forward…)."""


class PodNotFound(ProviderError):
    """The provider does not run that pod (or that container)."""


class BadRequest(ProviderError):
    """The request cannot be served as asked (e.g. the container has not started yet)."""


@dataclass
class ProviderContext:
    """What a provider learns about its node when it starts."""
    node_name: str
    data_dir: Path                 # the provider may keep state here (survives restarts)
    internal_ip: str = "127.0.0.1"
    config: dict = field(default_factory=dict)   # the parsed --provider-config document
    client: Any = None             # a skube.client.Client for the node's API server (or None)


@dataclass
class LogOptions:
    """Query of ``/containerLogs`` (the kubelet's PodLogOptions)."""
    follow: bool = False
    tail_lines: int | None = None
    since_seconds: int | None = None
    since_time: str | None = None      # RFC 3339
    timestamps: bool = False
    previous: bool = False
    limit_bytes: int | None = None


class Provider:
    """Base class of providers. Required: the pod lifecycle methods; the rest have
    defaults (optional features raise :class:`NotSupported`)."""

    name = "base"

    # ---- lifecycle of the provider ------------------------------------------------------

    async def start(self, ctx: ProviderContext) -> None:
        """Open state, re-adopt instances that survived a restart."""
        self.ctx = ctx

    async def close(self) -> None:
        """Stop watching instances; the instances themselves keep running."""

    # ---- pods ---------------------------------------------------------------------------

    async def create_pod(self, pod: dict) -> None:
        """Start an instance for ``pod`` (returns once it is accepted, not started)."""
        raise NotImplementedError

    async def update_pod(self, pod: dict) -> None:
        """The pod's spec or metadata changed (e.g. an image or activeDeadlineSeconds)."""

    async def delete_pod(self, pod: dict, grace_period: int | None = None) -> dict | None:
        """Stop the instance, giving its containers ``grace_period`` seconds, and remove it
        (no longer listed). Returns the pod's status once its containers stopped (how each
        ended: the node writes it, in a terminal phase, before it deletes the pod), or None
        when the provider cannot tell."""
        raise NotImplementedError

    async def get_pod_status(self, namespace: str, name: str) -> dict | None:
        """The pod's status as the kubelet would report it (phase, containerStatuses,
        podIP, startTime…), or None if the provider does not run it."""
        raise NotImplementedError

    async def get_pod(self, namespace: str, name: str) -> dict | None:
        """The pod as the provider knows it: ``{"metadata": {namespace, name, uid},
        "spec": …, "status": …}`` or None."""
        for pod in await self.list_pods():
            m = pod["metadata"]
            if m.get("namespace") == namespace and m.get("name") == name:
                return pod
        return None

    async def list_pods(self) -> list[dict]:
        """Every pod the provider runs (same shape as :meth:`get_pod`)."""
        raise NotImplementedError

    def notify_pods(self, callback: PodCallback) -> None:
        """Register ``callback(pod)`` to be called (in the event loop) whenever a
        pod's status changes. Providers without push notification leave it; the
        node then polls ``get_pod_status``."""
        self._notify = callback

    # ---- node ---------------------------------------------------------------------------

    def capacity(self) -> dict[str, str] | None:
        """Node capacity (cpu, memory, pods, …) or None for the node's configured one."""
        return None

    def node_conditions(self) -> list[dict]:
        """Extra or overriding node conditions (e.g. ``Ready`` False when the backend is
        unreachable); each ``{"type", "status", "reason", "message"}``."""
        return []

    async def ping(self) -> None:
        """Raise if the backend is unhealthy (the node then reports NotReady)."""

    async def stats(self) -> dict:
        """``/stats/summary`` pieces: ``{"node": {...}, "pods": [...]}`` in kubelet shape."""
        return {"node": {}, "pods": []}

    # ---- streams (optional) -------------------------------------------------------------

    def logs(self, namespace: str, name: str, container: str, opts: LogOptions) -> AsyncIterator[bytes]:
        """The container's log as chunks of bytes (kept open with ``follow``).
        Raises PodNotFound / BadRequest / NotSupported before the first chunk."""
        raise NotSupported(f"the {self.name} provider does not serve container logs")

    async def exec(self, namespace: str, name: str, container: str, command: list[str], *,
                   stdin: bool, stdout: bool, stderr: bool, tty: bool, streams: Any) -> int:
        """Run ``command`` in the container over ``streams``; returns the exit code."""
        raise NotSupported(f"the {self.name} provider does not support exec")

    async def attach(self, namespace: str, name: str, container: str, *, stdin: bool,
                     stdout: bool, stderr: bool, tty: bool, streams: Any) -> None:
        """Connect ``streams`` (skube.node.streams.ExecStreams) to the running container's
        main process: its output from now on, the client's stdin if the container was
        started with ``stdin``, terminal resizes with ``tty``. Returns when the container
        exits or the client goes away (the container keeps running); with ``stdinOnce``
        the container's stdin is closed once that first client's input ends."""
        raise NotSupported(f"the {self.name} provider does not support attach")

    async def port_forward(self, namespace: str, name: str, port: int, stream: Any) -> None:
        """Carry one forwarded connection to ``port`` of the pod.

        ``stream`` (skube.node.portforward.PortForwardStream) is the client's side:
        ``await stream.read()`` gives the client's bytes (``b""`` once it has finished
        sending: half-close the pod connection then), ``await stream.write(data)``
        sends to the client, ``await stream.close()`` ends that direction. Return when
        the pod side has closed (the kubelet then finishes both directions); raise
        PodNotFound / BadRequest / NotSupported / OSError when the connection cannot be
        made — the message is reported to the client on the connection's error stream."""
        raise NotSupported(f"the {self.name} provider does not support port-forward")


__all__ = ["Provider", "ProviderContext", "ProviderError", "NotSupported", "PodNotFound",
           "BadRequest", "LogOptions", "PodCallback"]
