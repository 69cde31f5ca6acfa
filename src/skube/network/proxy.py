"""The service proxy: follows Services and EndpointSlices and programs iptables NAT as
kube-proxy's iptables mode does, in this cluster's own chains (``net.chain_prefix``).

* :func:`service_ports` turns Services + EndpointSlices into :class:`ServicePort` s (which
  endpoints take traffic: ready ones, else serving-and-terminating ones, as upstream);
* :func:`render` turns those into one ``iptables-restore`` text (filter + nat, every chain
  rebuilt whole, stale ones deleted) — pure, unit-tested;
* :func:`run` keeps the host's tables in step (one restore per sync, syncs at least
  ``MIN_SYNC_PERIOD`` apart, a full resync every ``SYNC_PERIOD``) and removes everything on
  a clean stop. A restart after ``kill -9`` rebuilds in full and drops what is stale.

NodePorts answer on 127.0.0.0/8 (OUTPUT) and on the bridge address (from pods); a
LoadBalancer's ingress is 127.0.0.1 (:mod:`.loadbalancer`).
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from . import iptables
from .config import ClusterNetwork

log = logging.getLogger("skube.network.proxy")

MIN_SYNC_PERIOD = 0.1      # seconds between two syncs (kube-proxy's minSyncPeriod)
SYNC_PERIOD = 30.0         # full resync even without changes
MASQ_MARK = "0x40000"      # packets to masquerade on the way out (a bit kube-proxy does not use)
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
BR_NF_CALL_IPTABLES = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
PROTOCOLS = {"TCP": "tcp", "UDP": "udp"}


@dataclass
class ServicePort:
    """One port of one Service, with the endpoints (ip, port) that take its traffic."""
    namespace: str
    name: str
    port_name: str
    protocol: str                   # tcp | udp
    cluster_ip: str
    port: int
    node_port: int = 0
    affinity_seconds: int = 0       # sessionAffinity ClientIP timeout; 0: no affinity
    endpoints: list[tuple[str, int]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port_name}/{self.protocol}"


def _ready(ep: dict, publish_not_ready: bool) -> tuple[bool, bool, bool]:
    """(ready, serving, terminating) with upstream's defaults for missing conditions."""
    c = ep.get("conditions") or {}
    ready = c.get("ready") is not False
    serving = c.get("serving") if c.get("serving") is not None else ready
    terminating = c.get("terminating") is True
    if publish_not_ready:
        return True, True, terminating
    return ready, serving, terminating


def service_ports(services: list[dict], slices: list[dict]) -> list[ServicePort]:
    """Every TCP/UDP port of every Service with a ClusterIP, with its usable endpoints:
    the ready ones, or when none is ready the serving-and-terminating ones."""
    by_service: dict[tuple[str, str], list[dict]] = {}
    for s in slices:
        m = s.get("metadata") or {}
        name = (m.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if name and s.get("addressType", "IPv4") == "IPv4":
            by_service.setdefault((m.get("namespace", ""), name), []).append(s)
    out = []
    for svc in services:
        m, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        cip = spec.get("clusterIP") or ""
        if spec.get("type") == "ExternalName" or not cip or cip == "None":
            continue
        aff = 0
        if spec.get("sessionAffinity") == "ClientIP":
            aff = int(((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
                      .get("timeoutSeconds") or 10800)
        pnr = bool(spec.get("publishNotReadyAddresses"))
        for p in spec.get("ports") or []:
            proto = PROTOCOLS.get(p.get("protocol") or "TCP")
            if proto is None:
                continue
            sp = ServicePort(m.get("namespace", ""), m.get("name", ""), p.get("name") or "", proto, cip,
                             int(p["port"]), int(p.get("nodePort") or 0), aff)
            ready, fallback = [], []
            for sl in by_service.get((sp.namespace, sp.name), []):
                target = next((q.get("port") for q in sl.get("ports") or []
                               if (q.get("name") or "") == sp.port_name
                               and PROTOCOLS.get(q.get("protocol") or "TCP") == proto), None)
                if not target:
                    continue
                for ep in sl.get("endpoints") or []:
                    addrs = ep.get("addresses") or []
                    if not addrs:
                        continue
                    r, serving, term = _ready(ep, pnr)
                    if r:
                        ready.append((addrs[0], int(target)))
                    elif serving and term:
                        fallback.append((addrs[0], int(target)))
            sp.endpoints = sorted(set(ready or fallback))
            out.append(sp)
    return out


def _hash(text: str, n: int) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:n]


def chain_names(prefix: str) -> dict[str, str]:
    """The fixed chains of a cluster (nat: SERVICES, OUTPUT, NODEPORTS, POSTROUTING,
    MARK-MASQ; filter: FILTER)."""
    return {k: f"{prefix}-{k}" for k in ("SERVICES", "OUTPUT", "NODEPORTS", "POSTROUTING", "MARK-MASQ",
                                         "FILTER")}


def _chain(prefix: str, kind: str, key: str) -> str:
    # iptables chain names hold at most 28 characters
    return f"{prefix}-{kind}-{_hash(key, 28 - len(prefix) - len(kind) - 2)}"


def _comment(text: str) -> list[str]:
    return ["-m", "comment", "--comment", '"' + text.replace('"', "") + '"']


def render(net: ClusterNetwork, ports: list[ServicePort], *, masquerade_all: bool = False,
           loopback_endpoints: frozenset = frozenset(), existing: frozenset = frozenset()) -> str:
    """The complete iptables-restore text for ``ports``.

    ``masquerade_all``: masquerade pod→service traffic too (when bridged replies skip
    iptables). ``loopback_endpoints``: (ip, port) endpoints that are the host itself,
    translated to 127.0.0.1 (the API server binds there). ``existing``: chains of this
    cluster now in the kernel; those no longer wanted are deleted."""
    p = net.chain_prefix
    fixed = chain_names(p)
    gw = net.gateway_ip
    nat: list[list[str]] = []
    flt: list[list[str]] = []
    nat_chains = [fixed[k] for k in ("SERVICES", "OUTPUT", "NODEPORTS", "POSTROUTING", "MARK-MASQ")]
    masq, svcs, nps = fixed["MARK-MASQ"], fixed["SERVICES"], fixed["NODEPORTS"]
    nat.append(["-A", fixed["OUTPUT"], "-j", svcs])
    nat.append(["-A", fixed["OUTPUT"], "-d", "127.0.0.0/8", "-j", nps])
    nat.append(["-A", fixed["POSTROUTING"], "-m", "mark", "!", "--mark", f"{MASQ_MARK}/{MASQ_MARK}", "-j", "RETURN"])
    nat.append(["-A", fixed["POSTROUTING"], "-j", "MARK", "--xor-mark", MASQ_MARK])
    nat.append(["-A", fixed["POSTROUTING"], "-j", "MASQUERADE", "--random-fully"])
    nat.append(["-A", masq, "-j", "MARK", "--or-mark", MASQ_MARK])
    for sp in ports:
        match = ["-p", sp.protocol, "-m", sp.protocol]
        if not sp.endpoints:
            why = _comment(f"{sp.id} has no endpoints")
            flt.append(["-A", fixed["FILTER"], "-d", f"{sp.cluster_ip}/32", *match, "--dport", str(sp.port),
                        *why, "-j", "REJECT", "--reject-with", "icmp-port-unreachable"])
            if sp.node_port:
                for dst in ("127.0.0.0/8", f"{gw}/32"):
                    flt.append(["-A", fixed["FILTER"], "-d", dst, *match, "--dport", str(sp.node_port),
                                *why, "-j", "REJECT", "--reject-with", "icmp-port-unreachable"])
            continue
        svc_chain = _chain(p, "SVC", sp.id)
        nat_chains.append(svc_chain)
        nat.append(["-A", svcs, "-d", f"{sp.cluster_ip}/32", *match, "--dport", str(sp.port),
                    *_comment(f"{sp.id} cluster IP"), "-j", svc_chain])
        if sp.node_port:
            ext = _chain(p, "EXT", sp.id)
            nat_chains.append(ext)
            nat.append(["-A", nps, *match, "--dport", str(sp.node_port), *_comment(sp.id), "-j", ext])
            nat.append(["-A", ext, "-j", masq])
            nat.append(["-A", ext, "-j", svc_chain])
        if masquerade_all:
            nat.append(["-A", svc_chain, "-j", masq])
        else:
            nat.append(["-A", svc_chain, "!", "-s", net.pod_cidr, "-j", masq])
        eps = [(ip, port, _chain(p, "SEP", f"{sp.id}>{ip}:{port}")) for ip, port in sp.endpoints]
        if sp.affinity_seconds:
            for _, _, sep in eps:
                nat.append(["-A", svc_chain, "-m", "recent", "--name", sep, "--rcheck", "--seconds",
                            str(sp.affinity_seconds), "--reap", "-j", sep])
        n = len(eps)
        for i, (ip, port, sep) in enumerate(eps):
            nat_chains.append(sep)
            if i < n - 1:
                nat.append(["-A", svc_chain, "-m", "statistic", "--mode", "random", "--probability",
                            f"{1.0 / (n - i):.10f}", "-j", sep])
            else:
                nat.append(["-A", svc_chain, "-j", sep])
            to = f"127.0.0.1:{port}" if (ip, port) in loopback_endpoints else f"{ip}:{port}"
            if (ip, port) not in loopback_endpoints:
                nat.append(["-A", sep, "-s", f"{ip}/32", "-j", masq])      # hairpin
            aff = ["-m", "recent", "--name", sep, "--set"] if sp.affinity_seconds else []
            nat.append(["-A", sep, *match, *aff, "-j", "DNAT", "--to-destination", to])
    nat.append(["-A", svcs, "-d", f"{gw}/32", "-j", nps])
    # what is still addressed to the service CIDR matched no service port: refuse it at once
    flt.append(["-A", fixed["FILTER"], "-d", net.service_cidr, *_comment("no such service port"),
                "-j", "REJECT", "--reject-with", "icmp-port-unreachable"])
    stale_nat = sorted(c for c in existing if c.startswith(p + "-") and c not in nat_chains
                       and c != fixed["FILTER"])
    lines = ["*filter", f":{fixed['FILTER']} - [0:0]"] + [" ".join(r) for r in flt] + ["COMMIT", "*nat"]
    lines += [f":{c} - [0:0]" for c in nat_chains + stale_nat]
    lines += [" ".join(r) for r in nat]
    lines += [f"-X {c}" for c in stale_nat]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


# ---- the host side --------------------------------------------------------------------------

def _jumps(net: ClusterNetwork) -> list[tuple[str, str, list[str]]]:
    """(table, built-in chain, rule) jumping into this cluster's chains."""
    f = chain_names(net.chain_prefix)
    new = ["-m", "conntrack", "--ctstate", "NEW"]
    return [("nat", "PREROUTING", ["-j", f["SERVICES"]]), ("nat", "OUTPUT", ["-j", f["OUTPUT"]]),
            ("nat", "POSTROUTING", ["-j", f["POSTROUTING"]]),
            ("filter", "INPUT", [*new, "-j", f["FILTER"]]), ("filter", "FORWARD", [*new, "-j", f["FILTER"]]),
            ("filter", "OUTPUT", [*new, "-j", f["FILTER"]])]


def bridged_traffic_seen() -> bool:
    """Whether bridged frames pass iptables (br_netfilter): without it, replies between pods
    on the bridge skip conntrack, so pod→service traffic must be masqueraded."""
    try:
        return BR_NF_CALL_IPTABLES.read_text().strip() == "1"
    except OSError:
        return False


def ensure_route_localnet(bridge: str) -> bool:
    """net.ipv4.conf.<bridge>.route_localnet=1 (needed to DNAT to and from 127.0.0.1 across
    the bridge); False while the bridge does not exist yet."""
    path = Path(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet")
    try:
        if path.read_text().strip() != "1":
            path.write_text("1")
        return True
    except OSError:
        return False


async def remove_rules(net: ClusterNetwork) -> None:
    """Remove this cluster's jumps and chains from the host (nothing there is fine)."""
    for table in ("nat", "filter"):
        await iptables.remove_chains(table, net.chain_prefix + "-")


class Proxy:
    """Keeps the host's iptables in step with the cluster's Services and EndpointSlices."""

    def __init__(self, client, net: ClusterNetwork):
        from ..client import Informer, resource
        self.client = client
        self.net = net
        self.services = Informer(client, resource("v1", "services", kind="Service"), name="services (proxy)")
        self.slices = Informer(client, resource("discovery.k8s.io/v1", "endpointslices", kind="EndpointSlice"),
                               name="endpointslices (proxy)")
        self.changed = asyncio.Event()
        for inf in (self.services, self.slices):
            inf.add_handlers(on_add=lambda *_: self.changed.set(), on_update=lambda *_: self.changed.set(),
                             on_delete=lambda *_: self.changed.set())
        self.masquerade_all = not bridged_traffic_seen()
        self.loopback: frozenset = frozenset()
        self.written: frozenset = frozenset()
        self.syncs = 0

    async def start(self) -> None:
        if self.masquerade_all:
            log.info("bridge-nf-call-iptables is off: masquerading pod-to-service traffic")
        self.written = frozenset(await iptables.chains("nat", self.net.chain_prefix + "-"))
        for inf in (self.services, self.slices):
            inf.start()
        for inf in (self.services, self.slices):
            await inf.wait_synced()

    async def sync(self) -> None:
        """One iptables-restore with the whole current state, then the jumps (once)."""
        ensure_route_localnet(self.net.bridge)
        ports = service_ports(self.services.list(), self.slices.list())
        text = render(self.net, ports, masquerade_all=self.masquerade_all,
                      loopback_endpoints=self.loopback, existing=self.written)
        await iptables.restore(text)
        lines = text.splitlines()
        self.written = frozenset(ln[1:].split()[0] for ln in lines if ln.startswith(":")) \
            - frozenset(ln[3:] for ln in lines if ln.startswith("-X "))
        if self.syncs == 0:
            for table, chain, rule in _jumps(self.net):
                await iptables.ensure_rule(table, chain, *rule)
        self.syncs += 1

    async def run(self, stop: asyncio.Event) -> None:
        """Sync at each change (at most every MIN_SYNC_PERIOD) and every SYNC_PERIOD."""
        last = 0.0
        while not stop.is_set():
            wait = MIN_SYNC_PERIOD - (time.monotonic() - last)
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                self.changed.clear()
                await self.sync()
            except Exception:  # noqa: BLE001 — retried at the next change or resync
                log.exception("service proxy sync failed")
            last = time.monotonic()
            waiters = [asyncio.ensure_future(e.wait()) for e in (self.changed, stop)]
            await asyncio.wait(waiters, timeout=SYNC_PERIOD, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()

    def stop(self) -> None:
        for inf in (self.services, self.slices):
            inf.stop()


async def run(kubeconfig: str, net: ClusterNetwork, stop: asyncio.Event) -> None:
    """Run the proxy, the `kubernetes` endpoints and the LoadBalancer status writer until
    ``stop``; then remove this cluster's iptables rules."""
    from ..client import Client
    from . import loadbalancer
    async with Client.from_kubeconfig(kubeconfig, component="skube-proxy") as client:
        proxy = Proxy(client, net)
        api = urlparse(client.config.server)
        if api.hostname in ("127.0.0.1", "localhost", "::1"):
            proxy.loopback = frozenset({(net.gateway_ip, api.port or 443)})
        try:
            await proxy.start()            # what a killed run left is rebuilt in full, stale chains dropped
            tasks = [asyncio.create_task(proxy.run(stop), name="proxy-sync"),
                     asyncio.create_task(loadbalancer.run(client, stop), name="proxy-loadbalancer")]
            if proxy.loopback:
                tasks.append(asyncio.create_task(
                    loadbalancer.keep_api_endpoints(client, net.gateway_ip, api.port or 443, stop),
                    name="proxy-api-endpoints"))
            await asyncio.gather(*tasks)
        finally:
            proxy.stop()
            try:
                await remove_rules(net)
            except Exception:  # noqa: BLE001 — shutting down regardless
                log.exception("removing the service proxy's iptables rules failed")
