"""Node registration, status and heartbeat of one virtual node.

The Node object carries the virtual-kubelet labels and taint, capacity from the
config (or the provider), conditions kept true to ``provider.ping()`` and
``provider.node_conditions()``. Heartbeat as the kubelet with leases: the Lease
in ``kube-node-lease`` is renewed every 10 s; the full status is written at
least every minute and at once when it changes. On shutdown the node reports
NotReady (or is deleted). ``NodeConfig.kind = "pool"`` is the profile of an ordinary
node-pool node (:mod:`skube.autoscaler`): capacity exactly as configured, no
virtual-kubelet labels or taint.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import platform
from dataclasses import dataclass, field

from ..aio import wait_set
from ..client import ApiError, Client, resource

log = logging.getLogger("skube.node")

NODES = resource("v1", "nodes", namespaced=False, kind="Node")
LEASES = resource("coordination.k8s.io/v1", "leases", kind="Lease")
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40
LEASE_RENEW = 10.0
STATUS_REPORT = 60.0
PING_INTERVAL = 10.0
KUBELET_VERSION = "v1.37.0-skube"
TAINT_KEY = "virtual-kubelet.io/provider"
FIELD_MANAGER = "skube-virtual-node"

DEFAULT_CAPACITY = {"cpu": "1000", "memory": "4Ti", "pods": "10000", "ephemeral-storage": "10Ti"}


def now_rfc3339() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def go_arch() -> str:
    m = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
            "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}.get(m, m)


@dataclass
class NodeConfig:
    name: str
    provider_name: str = "mock"
    internal_ip: str = "127.0.0.1"
    kubelet_port: int = 10250
    capacity: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    zone: str | None = None
    region: str | None = None
    remove_on_shutdown: bool = False
    lease_renew: float = LEASE_RENEW
    status_report: float = STATUS_REPORT
    kind: str = "virtual"       # "virtual" (virtual-kubelet labels and taint) | "pool" (ordinary)


class NodeController:
    """Keeps Node NAME and its Lease current."""

    def __init__(self, client: Client, provider, cfg: NodeConfig):
        self.client = client
        self.provider = provider
        self.cfg = cfg
        self.uid: str | None = None
        self.healthy = True
        self.health_message = ""
        self._last_status: dict | None = None
        self._transitions: dict[str, tuple[str, str]] = {}   # type -> (status, lastTransitionTime)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self.lease_renewals = 0

    # ---- the object ---------------------------------------------------------------------

    @property
    def ordinary(self) -> bool:
        """A node-pool node: fixed capacity, no virtual-kubelet labels or taint."""
        return self.cfg.kind == "pool"

    def labels(self) -> dict:
        c = self.cfg
        arch = go_arch()
        if self.ordinary:
            labels = {"kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
                      "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": arch,
                      "kubernetes.io/hostname": c.name}
            for key, value in (("topology.kubernetes.io/zone", c.zone),
                               ("topology.kubernetes.io/region", c.region)):
                if value:
                    labels[key] = value
            return {**labels, **c.labels}
        labels = {
            "type": "virtual-kubelet",
            "kubernetes.io/role": "agent",
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch,
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": arch,
            "kubernetes.io/hostname": c.name,
            "node.kubernetes.io/instance-type": "virtual-node",
            "alpha.service-controller.kubernetes.io/exclude-balancer": "true",
        }
        if c.zone:
            labels["topology.kubernetes.io/zone"] = c.zone
        if c.region:
            labels["topology.kubernetes.io/region"] = c.region
        labels.update(c.labels)
        return labels

    def taints(self) -> list[dict]:
        if self.ordinary:
            return []
        return [{"key": TAINT_KEY, "value": "skube", "effect": "NoSchedule"}]

    def capacity(self) -> dict:
        if self.ordinary:       # exactly its size (the provider's host figures do not apply)
            return {"pods": "110", **{k: str(v) for k, v in (self.cfg.capacity or {}).items()}}
        cap = dict(DEFAULT_CAPACITY)
        cap.update(self.provider.capacity() or {})
        cap.update({k: str(v) for k, v in (self.cfg.capacity or {}).items()})
        return cap

    def conditions(self) -> list[dict]:
        now = now_rfc3339()
        ready = ("True", "KubeletReady", "kubelet is posting ready status") if self.healthy else \
            ("False", "KubeletNotReady", f"provider {self.cfg.provider_name} is unhealthy: "
                                         f"{self.health_message}")
        base = {
            "Ready": ready,
            "MemoryPressure": ("False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            "DiskPressure": ("False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            "PIDPressure": ("False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            "NetworkUnavailable": ("False", "RouteCreated", "the virtual node's network is up"),
        }
        for c in self.provider.node_conditions() or []:
            base[c["type"]] = (c.get("status", "Unknown"), c.get("reason", ""), c.get("message", ""))
        out = []
        for typ, (status, reason, message) in base.items():
            prev = self._transitions.get(typ)
            if prev is None or prev[0] != status:
                self._transitions[typ] = (status, now)
            out.append({"type": typ, "status": status, "reason": reason, "message": message,
                        "lastHeartbeatTime": now,
                        "lastTransitionTime": self._transitions[typ][1]})
        return out

    def status(self) -> dict:
        cap = self.capacity()
        return {
            "capacity": cap,
            "allocatable": dict(cap),
            "conditions": self.conditions(),
            "addresses": [{"type": "InternalIP", "address": self.cfg.internal_ip},
                          {"type": "Hostname", "address": self.cfg.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.cfg.kubelet_port}},
            "nodeInfo": {
                "machineID": "", "systemUUID": "", "bootID": "",
                "kernelVersion": platform.release(),
                "osImage": f"skube {'node' if self.ordinary else 'virtual node'} ({self.cfg.provider_name})",
                "containerRuntimeVersion": f"skube://{self.cfg.provider_name}",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": go_arch(),
            },
        }

    def _comparable(self, status: dict) -> dict:
        """The status without heartbeat times (what counts as a change)."""
        out = dict(status)
        out["conditions"] = [{k: v for k, v in c.items() if k != "lastHeartbeatTime"}
                             for c in status.get("conditions") or []]
        return out

    # ---- registration -------------------------------------------------------------------

    async def register(self) -> dict:
        """Create the Node, or take over the existing one (labels/taints merged in)."""
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.cfg.name, "labels": self.labels()},
                "spec": {"taints": self.taints()}}
        try:
            node = await self.client.create(NODES, body, field_manager=FIELD_MANAGER)
        except ApiError as e:
            if not e.already_exists:
                raise
            cur = await self.client.get(NODES, self.cfg.name)
            taints = [t for t in (cur.get("spec") or {}).get("taints") or [] if t.get("key") != TAINT_KEY]
            taints += self.taints()
            node = await self.client.patch(NODES, self.cfg.name, {
                "metadata": {"labels": self.labels()}, "spec": {"taints": taints}},
                field_manager=FIELD_MANAGER)
        self.uid = node["metadata"]["uid"]
        await self.report_status(force=True)
        await self.renew_lease()
        return node

    async def report_status(self, force: bool = False) -> None:
        status = self.status()
        cmp = self._comparable(status)
        if not force and cmp == self._last_status:
            return
        await self.client.patch(NODES, self.cfg.name, {"status": status}, subresource="status",
                                field_manager=FIELD_MANAGER)
        self._last_status = cmp

    async def renew_lease(self) -> None:
        name = self.cfg.name
        spec = {"holderIdentity": name, "leaseDurationSeconds": LEASE_DURATION, "renewTime": now_micro()}
        try:
            await self.client.patch(LEASES, name, {"spec": spec}, LEASE_NAMESPACE,
                                    field_manager=FIELD_MANAGER)
        except ApiError as e:
            if not e.not_found:
                raise
            owner = [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": self.uid}] if self.uid else []
            try:
                await self.client.create(LEASES, {
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": name, "namespace": LEASE_NAMESPACE, "ownerReferences": owner},
                    "spec": spec}, LEASE_NAMESPACE, field_manager=FIELD_MANAGER)
            except ApiError as e2:
                if not e2.already_exists:
                    raise
        self.lease_renewals += 1

    def status_changed(self) -> None:
        """Ask for a status report now (e.g. the provider's health changed)."""
        self._wake.set()

    # ---- loops --------------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._lease_loop(), name="node lease"),
                       loop.create_task(self._status_loop(), name="node status"),
                       loop.create_task(self._ping_loop(), name="node ping")]

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.lease_renew)
            try:
                await self.renew_lease()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001
                log.warning("lease renewal failed: %s", e)

    async def _status_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last_full = loop.time()
        while True:
            await wait_set(self._wake, min(PING_INTERVAL, self.cfg.status_report))
            self._wake.clear()
            try:
                force = loop.time() - last_full >= self.cfg.status_report
                await self.report_status(force=force)
                if force:
                    last_full = loop.time()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001
                log.warning("node status update failed: %s", e)
                self._last_status = None

    async def _ping_loop(self) -> None:
        while True:
            await asyncio.sleep(PING_INTERVAL)
            try:
                await asyncio.wait_for(self.provider.ping(), timeout=PING_INTERVAL)
                healthy, message = True, ""
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001
                healthy, message = False, str(e) or type(e).__name__
            if healthy != self.healthy:
                self.healthy, self.health_message = healthy, message
                self.status_changed()

    async def stop(self, remove: bool | None = None) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        remove = self.cfg.remove_on_shutdown if remove is None else remove
        try:
            if remove:
                await self.client.delete(NODES, self.cfg.name)
                try:
                    await self.client.delete(LEASES, self.cfg.name, LEASE_NAMESPACE)
                except ApiError:
                    pass
            else:
                self.healthy, self.health_message = False, "the virtual node is shutting down"
                status = self.status()
                for c in status["conditions"]:
                    if c["type"] == "Ready":
                        c.update(status="False", reason="KubeletNotReady",
                                 message="virtual node stopped")
                await self.client.patch(NODES, self.cfg.name, {"status": {"conditions": status["conditions"]}},
                                        subresource="status", field_manager=FIELD_MANAGER)
        except Exception as e:  # noqa: BLE001
            log.warning("could not mark the node stopped: %s", e)


__all__ = ["NodeController", "NodeConfig", "DEFAULT_CAPACITY", "KUBELET_VERSION", "TAINT_KEY",
           "go_arch", "now_rfc3339"]
