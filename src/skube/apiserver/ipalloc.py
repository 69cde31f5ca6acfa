"""Service ClusterIP and NodePort allocation, as the upstream Service REST strategy does it.

State is derived from stored Services: :meth:`ServiceAllocator.rebuild` at start, then
:meth:`~ServiceAllocator.committed` / :meth:`~ServiceAllocator.released` after every write
and delete. :meth:`~ServiceAllocator.admit` runs in the (single-threaded) create/update path
and reserves what it hands out until the write commits, so concurrent creates never get
the same address or port; a reservation whose write failed lapses after ``RESERVE_SECONDS``.

Two addresses are kept for their conventional owners: the first of the CIDR for
``default/kubernetes`` and the tenth for ``kube-system/kube-dns`` (cluster DNS).
"""
from __future__ import annotations

import ipaddress
import random
import time
from typing import Callable, Iterable

from ..api import errors
from ..api.validation._field import go_string_slice

RESERVE_SECONDS = 60.0
API_SERVICE = "default/kubernetes"
DNS_SERVICE = "kube-system/kube-dns"


def service_key(svc: dict) -> str:
    m = svc.get("metadata") or {}
    return f"{m.get('namespace', '')}/{m.get('name', '')}"


def needs_cluster_ip(spec: dict) -> bool:
    return (spec.get("type") or "ClusterIP") != "ExternalName"


def static_band(size: int, step: int, most: int) -> int:
    """How many values at the bottom of a range dynamic allocation avoids while it can, so
    that values users ask for rarely collide (KEP-3070 for ClusterIPs: step 16, at most 256;
    KEP-3668 for NodePorts: step 32, at most 128): min(max(16, size/step), most), none for
    ranges of 16 or fewer."""
    return 0 if size <= 16 else min(max(16, size // step), most)


def _pick(lo: int, hi: int, band: int, free) -> int | None:
    """A random free value of lo..hi, above the static band while one is free there."""
    for start, end in ((lo + band, hi), (lo, lo + band - 1)):
        size = end - start + 1
        first = random.randrange(size) if size > 0 else 0
        for i in range(size):
            if free(v := start + (first + i) % size):
                return v
    return None


def needs_node_ports(spec: dict) -> bool:
    t = spec.get("type") or "ClusterIP"
    return t == "NodePort" or (t == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False)


def allocated_ips(svc: dict) -> set[str]:
    """The ClusterIPs a stored Service holds (none for headless and ExternalName)."""
    spec = svc.get("spec") or {}
    if not needs_cluster_ip(spec):
        return set()
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return {ip for ip in ips if isinstance(ip, str) and ip != "None"}


def allocated_ports(svc: dict) -> set[int]:
    """The node ports a stored Service holds."""
    ports = (svc.get("spec") or {}).get("ports") or []
    return {p["nodePort"] for p in ports if isinstance(p, dict) and isinstance(p.get("nodePort"), int)
            and p["nodePort"] > 0}


class _Owners:
    """value -> owning Service key, committed or reserved (with a deadline)."""

    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self.committed: dict = {}
        self.reserved: dict = {}          # value -> (key, deadline)

    def owner(self, value) -> str | None:
        if value in self.committed:
            return self.committed[value]
        r = self.reserved.get(value)
        if r is not None and r[1] > self.clock():
            return r[0]
        return None

    def taken(self, value, key: str) -> bool:
        return self.owner(value) not in (None, key)

    def reserve(self, value, key: str) -> None:
        self.reserved[value] = (key, self.clock() + RESERVE_SECONDS)

    def set(self, key: str, values: set) -> None:
        for v in [v for v, k in self.committed.items() if k == key and v not in values]:
            del self.committed[v]
        for v in values:
            self.committed[v] = key
        # reservations now committed end; others of this key (a write still in flight) lapse
        for v in [v for v in self.reserved if v in values]:
            del self.reserved[v]

    def expire(self) -> None:
        now = self.clock()
        for v in [v for v, (_, d) in self.reserved.items() if d <= now]:
            del self.reserved[v]


class ServiceAllocator:
    """Hands out ClusterIPs from ``service_cidr`` and node ports from ``node_port_range``."""

    def __init__(self, service_cidr: str, node_port_range: tuple[int, int],
                 clock: Callable[[], float] = time.monotonic):
        self.net = ipaddress.ip_network(service_cidr)
        self.ports_lo, self.ports_hi = node_port_range
        self.ips = _Owners(clock)
        self.ports = _Owners(clock)
        self.reserved_for = {str(self.net[1]): API_SERVICE}
        if self.net.num_addresses > 11:
            self.reserved_for[str(self.net[10])] = DNS_SERVICE

    # ---- state ---------------------------------------------------------------------------

    def rebuild(self, services: Iterable[dict]) -> None:
        """Forget everything and take the allocations of ``services`` (the stored ones)."""
        self.ips = _Owners(self.ips.clock)
        self.ports = _Owners(self.ports.clock)
        for svc in services:
            self.committed(svc)

    def committed(self, svc: dict) -> None:
        """``svc`` was stored: it holds exactly the IPs and ports it names."""
        key = service_key(svc)
        self.ips.set(key, allocated_ips(svc))
        self.ports.set(key, allocated_ports(svc))

    def released(self, svc: dict) -> None:
        """``svc`` was removed from storage: its IPs and ports are free again."""
        key = service_key(svc)
        self.ips.set(key, set())
        self.ports.set(key, set())

    # ---- admission -----------------------------------------------------------------------

    def admit(self, svc: dict, old: dict | None) -> None:
        """Fill in (or check) spec.clusterIP(s) and nodePorts of a Service being created or
        updated; raises 422 naming the field when an asked-for value is taken or out of range."""
        spec = svc.setdefault("spec", {})
        if not isinstance(spec, dict):
            return
        if old is not None:
            _keep_allocated_values(spec, old.get("spec") or {})
        self.ips.expire()
        self.ports.expire()
        key = service_key(svc)
        name = (svc.get("metadata") or {}).get("name", "")
        causes: list[dict] = []
        ospec = (old or {}).get("spec") or {}
        # upstream allocates on update only for a type that newly needs an address; a changed
        # address of a service that had one is validation's "may not change once set"
        if needs_cluster_ip(spec) and not (old is not None and needs_cluster_ip(ospec) and ospec.get("clusterIP")):
            self._admit_cluster_ip(spec, key, causes)
        if needs_node_ports(spec):
            self._admit_node_ports(spec, key, causes)
        if causes:
            raise errors.invalid("Service", name, causes)

    def _admit_cluster_ip(self, spec: dict, key: str, causes: list) -> None:
        cip = spec.get("clusterIP") or ""
        if not cip:
            ip = self._free_ip(key)
            spec["clusterIP"], spec["clusterIPs"] = ip, [ip]
            self.ips.reserve(ip, key)
            return
        if cip == "None":
            spec.setdefault("clusterIPs", ["None"])
            return
        ips = spec.get("clusterIPs") if isinstance(spec.get("clusterIPs"), list) else [cip]
        for ip in ips:
            try:
                addr = ipaddress.ip_address(ip)
            except (TypeError, ValueError):
                continue                       # validation reports malformed addresses
            shown = f"Invalid value: {go_string_slice(ips)}: failed to allocate IP {ip}: "
            if addr.version != self.net.version:
                continue                       # a second family: validation reports it
            if addr not in self.net or addr in (self.net.network_address, self.net.broadcast_address):
                causes.append(errors.cause("spec.clusterIPs", shown + (
                    f"the provided IP ({ip}) is not in the valid range. "
                    f"The range of valid IPs is {self.net}")))
            elif self.ips.taken(ip, key) or self.reserved_for.get(ip, key) != key:
                causes.append(errors.cause("spec.clusterIPs", shown + "provided IP is already allocated"))
            else:
                self.ips.reserve(ip, key)

    def _admit_node_ports(self, spec: dict, key: str, causes: list) -> None:
        ports = spec.get("ports") if isinstance(spec.get("ports"), list) else []
        for i, p in enumerate(ports):
            if not isinstance(p, dict):
                continue
            np_ = p.get("nodePort")
            if not np_:
                continue
            if not isinstance(np_, int) or isinstance(np_, bool):
                continue                       # validation reports the type
            field = f"spec.ports[{i}].nodePort"
            if not self.ports_lo <= np_ <= self.ports_hi:
                causes.append(errors.cause(field, f"Invalid value: {np_}: provided port is not in the valid "
                                                  f"range. The range of valid ports is "
                                                  f"{self.ports_lo}-{self.ports_hi}"))
            elif self.ports.taken(np_, key):
                causes.append(errors.cause(field, f"Invalid value: {np_}: provided port is already allocated"))
            else:
                self.ports.reserve(np_, key)
        if causes:
            return
        here = {p.get("nodePort") for p in ports if isinstance(p, dict)}
        for p in ports:
            if isinstance(p, dict) and not p.get("nodePort"):
                p["nodePort"] = self._free_port(key, here)
                here.add(p["nodePort"])
                self.ports.reserve(p["nodePort"], key)

    def _free_ip(self, key: str) -> str:
        reserved = {ip for ip, owner in self.reserved_for.items() if owner != key}
        mine = [ip for ip, owner in self.reserved_for.items() if owner == key]
        if mine and not self.ips.taken(mine[0], key):
            return mine[0]
        first, last = int(self.net.network_address) + 1, int(self.net.broadcast_address) - 1
        got = _pick(first, last, static_band(self.net.num_addresses, 16, 256),
                    lambda n: (ip := str(ipaddress.ip_address(n))) not in reserved and not self.ips.taken(ip, key))
        if got is not None:
            return str(ipaddress.ip_address(got))
        raise errors.internal("failed to allocate a serviceIP: range is full")

    def _free_port(self, key: str, here: set) -> int:
        got = _pick(self.ports_lo, self.ports_hi, static_band(self.ports_hi - self.ports_lo + 1, 32, 128),
                    lambda port: port not in here and not self.ports.taken(port, key))
        if got is not None:
            return got
        raise errors.internal("failed to allocate a nodePort: range is full")


def _external(spec: dict) -> bool:
    t = spec.get("type") or "ClusterIP"
    return t in ("NodePort", "LoadBalancer") or (t == "ClusterIP" and bool(spec.get("externalIPs")))


def _keep_allocated_values(spec: dict, ospec: dict) -> None:
    """Upstream's update strategy: values the user left out keep their allocation, and a type
    change drops what the new type cannot have (when the user left it unchanged)."""
    if needs_cluster_ip(ospec) and needs_cluster_ip(spec) and not spec.get("clusterIP") \
            and not spec.get("clusterIPs") and ospec.get("clusterIP"):
        spec["clusterIP"] = ospec["clusterIP"]
        spec["clusterIPs"] = list(ospec.get("clusterIPs") or [ospec["clusterIP"]])
    if needs_cluster_ip(ospec) and not needs_cluster_ip(spec):
        if spec.get("clusterIP") == ospec.get("clusterIP"):
            spec.pop("clusterIP", None)
        if spec.get("clusterIPs") == ospec.get("clusterIPs"):
            spec.pop("clusterIPs", None)
        if spec.get("ipFamilies") == ospec.get("ipFamilies"):
            spec.pop("ipFamilies", None)
        if spec.get("ipFamilyPolicy") == ospec.get("ipFamilyPolicy"):
            spec.pop("ipFamilyPolicy", None)
    if _external(ospec) and not _external(spec) and spec.get("externalTrafficPolicy") == \
            ospec.get("externalTrafficPolicy"):
        spec.pop("externalTrafficPolicy", None)
    if ospec.get("type") == "LoadBalancer" and spec.get("type") != "LoadBalancer":
        for f in ("allocateLoadBalancerNodePorts", "loadBalancerClass", "healthCheckNodePort"):
            if f in spec and spec.get(f) == ospec.get(f):
                spec.pop(f)
    oports = [p for p in ospec.get("ports") or [] if isinstance(p, dict)]
    nports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
    if needs_node_ports(ospec) and needs_node_ports(spec):
        used = {p.get("nodePort") for p in nports if p.get("nodePort")}
        by_name = {p.get("name") or "": p.get("nodePort") for p in oports}
        for p in nports:
            old = by_name.get(p.get("name") or "")
            if not p.get("nodePort") and old and old not in used:
                p["nodePort"] = old
                used.add(old)
    elif needs_node_ports(ospec):
        old = {p.get("nodePort") for p in oports}
        for p in nports:
            if p.get("nodePort") in old:
                p.pop("nodePort")
