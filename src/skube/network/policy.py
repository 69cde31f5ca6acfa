"""NetworkPolicy enforcement (networking.k8s.io/v1) for the pods of this host.

Each pod's own network namespace (``/run/netns/skube-<uid>``) gets an iptables filter
table: ingress rules in INPUT, egress rules in OUTPUT, keyed by pod IPs (and, for egress,
the ClusterIPs of Services with a backend a rule allows, since the pod sends to those).
Enforcing inside the pod works whatever ``br_netfilter`` says, and iptables-nft tables are
per namespace, so one ``iptables-restore`` replaces exactly one pod's rules.

Semantics are upstream's: a pod is isolated for a direction only when a policy of its
namespace selects it with that policyType; it then accepts what any rule of any selecting
policy allows. Always allowed, as upstream documents and most CNIs do: replies of allowed
connections (conntrack), traffic between the pod and itself, and traffic between the pod
and the node (the bridge address; kubelet probes). Nothing is implicit for DNS.

:func:`ruleset` (pure: a pod and a :class:`ClusterView` → iptables-restore text) is the
whole rule generator; :class:`PolicyEnforcer` keeps informers and applies what changed.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from skube.aio import unless_set
from skube.api.errors import APIError
from skube.api.selectors import LabelSelector, label_selector_from_dict

from .config import ClusterNetwork

log = logging.getLogger("skube.network.policy")

NETNS_DIR = Path("/run/netns")
INGRESS_CHAIN = "SKUBE-INGRESS"
EGRESS_CHAIN = "SKUBE-EGRESS"
PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}
DEBOUNCE = 0.1          # seconds of quiet gathered into one rebuild
RETRY_AFTER = 2.0       # seconds before a failed iptables-restore is tried again
CONCURRENCY = 4         # iptables-restore processes at a time

EMPTY_TABLE = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"


# ---- reading the objects -------------------------------------------------------------------

def pod_ip(pod: dict) -> str:
    """The pod's IPv4 address on the pod network ('' when it has none: not started yet,
    finished, or on the host network)."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    if spec.get("hostNetwork") or status.get("phase") in ("Succeeded", "Failed"):
        return ""
    ips = [status.get("podIP")] + [p.get("ip") for p in status.get("podIPs") or []]
    for ip in ips:
        if ip and ":" not in ip:
            return ip
    return ""


def _labels(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("labels") or {}


def _selector(sel: Any) -> LabelSelector:
    """A metav1.LabelSelector; an invalid one selects nothing (validation keeps them out)."""
    try:
        return label_selector_from_dict(sel)
    except APIError:
        return LabelSelector.nothing()


def policy_types(policy: dict) -> set[str]:
    """spec.policyTypes, defaulted as the API server does when absent."""
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes")
    if not types:
        types = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    return set(types)


def named_ports(pod: dict) -> dict[tuple[str, str], int]:
    """(port name, protocol) → containerPort for the pod's containers (and sidecars)."""
    spec = pod.get("spec") or {}
    out: dict[tuple[str, str], int] = {}
    for c in list(spec.get("initContainers") or []) + list(spec.get("containers") or []):
        for p in c.get("ports") or []:
            if p.get("name") and p.get("containerPort"):
                out.setdefault((p["name"], p.get("protocol") or "TCP"), int(p["containerPort"]))
    return out


# ---- the cluster as the generator sees it --------------------------------------------------

@dataclass(frozen=True)
class IPBlock:
    cidr: str
    excepts: tuple[str, ...] = ()


@dataclass
class ClusterView:
    """Policies, pods, namespace labels, Services and EndpointSlices at one moment, plus
    the node's address on the pod network (always allowed both ways)."""
    policies: list[dict]
    pods: list[dict]
    namespaces: Mapping[str, Mapping[str, str]]
    host_ip: str
    services: list[dict] = field(default_factory=list)
    endpoint_slices: list[dict] = field(default_factory=list)
    _peer_cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.addressed = [p for p in self.pods if pod_ip(p)]
        self.by_namespace: dict[str, list[dict]] = {}
        for p in self.addressed:
            self.by_namespace.setdefault(p["metadata"].get("namespace", "default"), []).append(p)
        self.pod_by_ip = {pod_ip(p): p for p in self.addressed}
        self.service_ports = _service_ports(self.services, self.endpoint_slices)
        self.policies_by_namespace: dict[str, list[dict]] = {}
        for pol in sorted(self.policies, key=lambda x: x["metadata"].get("name", "")):
            self.policies_by_namespace.setdefault(pol["metadata"].get("namespace", "default"), []).append(pol)

    def selecting(self, pod: dict) -> list[dict]:
        """The policies of the pod's namespace whose podSelector matches it."""
        ns = pod["metadata"].get("namespace", "default")
        return [pol for pol in self.policies_by_namespace.get(ns, ())
                if _selector((pol.get("spec") or {}).get("podSelector") or {}).matches(_labels(pod))]

    def peers(self, policy: dict, peer: dict) -> tuple[list[str], list[IPBlock]]:
        """Pod IPs and IP blocks one NetworkPolicyPeer stands for."""
        key = (policy["metadata"].get("uid") or id(policy), id(peer))
        hit = self._peer_cache.get(key)
        if hit is not None:
            return hit
        ips: list[str] = []
        blocks: list[IPBlock] = []
        if peer.get("ipBlock") is not None:
            b = peer["ipBlock"]
            try:        # IPv4 only; validation keeps bad CIDRs out (a foreign server might not)
                if b.get("cidr") and ":" not in b["cidr"]:
                    blocks.append(IPBlock(str(ipaddress.ip_network(b["cidr"], strict=False)),
                                          tuple(str(ipaddress.ip_network(e, strict=False))
                                                for e in b.get("except") or [] if ":" not in e)))
            except ValueError:
                pass
        elif peer.get("podSelector") is not None or peer.get("namespaceSelector") is not None:
            pod_sel = _selector(peer.get("podSelector") or {})
            if peer.get("namespaceSelector") is not None:
                ns_sel = _selector(peer["namespaceSelector"])
                spaces = [ns for ns, labels in self.namespaces.items() if ns_sel.matches(labels)]
            else:
                spaces = [policy["metadata"].get("namespace", "default")]
            for ns in spaces:
                ips.extend(pod_ip(p) for p in self.by_namespace.get(ns, ()) if pod_sel.matches(_labels(p)))
        self._peer_cache[key] = (ips, blocks)
        return ips, blocks


@dataclass(frozen=True)
class ServicePort:
    """One port of a ClusterIP Service and the backends (IP, target port) behind it."""
    cluster_ips: tuple[str, ...]
    protocol: str
    port: int
    backends: tuple[tuple[str, int], ...]


def _service_ports(services: Iterable[dict], slices: Iterable[dict]) -> list[ServicePort]:
    """Every port of every Service with a ClusterIP, with the EndpointSlice addresses and
    target port (matched by port name and protocol) behind it; ports without backends are left out."""
    by_service: dict[tuple[str, str], list[dict]] = {}
    for sl in slices:
        m = sl.get("metadata") or {}
        name = (m.get("labels") or {}).get("kubernetes.io/service-name")
        if name and sl.get("addressType") == "IPv4":
            by_service.setdefault((m.get("namespace", "default"), name), []).append(sl)
    out = []
    for svc in services:
        spec, m = svc.get("spec") or {}, svc.get("metadata") or {}
        ips = tuple(ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")])
                    if ip and ip != "None" and ":" not in ip)
        if not ips:
            continue
        for sp in spec.get("ports") or []:
            backends = set()
            for sl in by_service.get((m.get("namespace", "default"), m.get("name")), ()):
                target = next((p.get("port") for p in sl.get("ports") or []
                               if (p.get("name") or "") == (sp.get("name") or "")
                               and (p.get("protocol") or "TCP") == (sp.get("protocol") or "TCP")), None)
                if target:
                    backends.update((a, int(target)) for ep in sl.get("endpoints") or []
                                    for a in ep.get("addresses") or [])
            if backends and sp.get("port"):
                out.append(ServicePort(ips, sp.get("protocol") or "TCP", int(sp["port"]), tuple(sorted(backends))))
    return out


def _peers_contain(view: ClusterView, policy: dict, peers: list, ip: str) -> bool:
    """Is ``ip`` one of a rule's peers (no peers: everyone)?"""
    if not peers:
        return True
    addr = ipaddress.ip_address(ip)
    for peer in peers:
        ips, blocks = view.peers(policy, peer)
        if ip in ips:
            return True
        for b in blocks:
            if addr in ipaddress.ip_network(b.cidr) and not any(addr in ipaddress.ip_network(e) for e in b.excepts):
                return True
    return False


def _ports_allow(rule: dict, protocol: str, port: int, dest_pod: dict | None) -> bool:
    """Do a rule's ports allow protocol/port on ``dest_pod`` (named ports need the pod)?"""
    ports = rule.get("ports")
    if not ports:
        return True
    for p in ports:
        if (p.get("protocol") or "TCP") != protocol:
            continue
        want, end = p.get("port"), p.get("endPort")
        if want is None:
            return True
        if isinstance(want, int) or str(want).isdigit():
            if int(want) <= port <= max(int(want), int(end or want)):
                return True
        elif dest_pod is not None and named_ports(dest_pod).get((str(want), protocol)) == port:
            return True
    return False


def _services_allowed(view: ClusterView, policy: dict, rule: dict) -> list[str]:
    """``-d <ClusterIP>/32`` matches for the Service ports an egress rule allows: those with
    a backend the rule allows (the pod sees the ClusterIP; the host translates it later)."""
    out = []
    peers = rule.get("to") or []
    for sp in view.service_ports:
        if any(_peers_contain(view, policy, peers, ip) and _ports_allow(rule, sp.protocol, port, view.pod_by_ip.get(ip))
               for ip, port in sp.backends):
            ipt = PROTOCOLS.get(sp.protocol)
            if ipt:
                out.extend(f"-d {cip}/32 -p {ipt} -m {ipt} --dport {sp.port}" for cip in sp.cluster_ips)
    return out


# ---- the generator -------------------------------------------------------------------------

def _port_matches(rule: dict, dest_pod: dict | None, view: ClusterView) -> list[str] | None:
    """iptables match strings for a rule's ports ([""] = every port); None when ``ports``
    is given but none of them can match (a named port no destination has).

    ``dest_pod`` resolves named ports for ingress; for egress (None) a named port becomes
    one match per pod that has it, with that pod as destination."""
    ports = rule.get("ports")
    if not ports:
        return [""]
    out: list[str] = []
    for p in ports:
        proto = p.get("protocol") or "TCP"
        ipt = PROTOCOLS.get(proto)
        if ipt is None:
            continue
        port, end = p.get("port"), p.get("endPort")
        base = f"-p {ipt} -m {ipt}"
        if port is None:
            out.append(f"-p {ipt}")
        elif isinstance(port, int) or str(port).isdigit():
            rng = f"{int(port)}:{int(end)}" if end is not None and int(end) > int(port) else str(int(port))
            out.append(f"{base} --dport {rng}")
        elif dest_pod is not None:
            num = named_ports(dest_pod).get((str(port), proto))
            if num is not None:
                out.append(f"{base} --dport {num}")
        else:
            for other in view.addressed:
                num = named_ports(other).get((str(port), proto))
                if num is not None:
                    out.append(f"-d {pod_ip(other)}/32 {base} --dport {num}")
    return sorted(set(out)) or None


def _direction(pod: dict, view: ClusterView, policies: list[dict], *, ingress: bool) -> list[str]:
    """Chain declarations and rules for one direction of an isolated pod."""
    main = INGRESS_CHAIN if ingress else EGRESS_CHAIN
    me = "-s" if ingress else "-d"       # the remote end of the connection
    own = pod_ip(pod)
    tag = "I" if ingress else "E"
    decls = [f":{main} - [0:0]"]
    rules = [f"-A {main} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
             f"-A {main} {'-i' if ingress else '-o'} lo -j ACCEPT",
             f"-A {main} {me} {own}/32 -j ACCEPT",
             f"-A {main} {me} {view.host_ip}/32 -j ACCEPT"]
    k = 0
    for pol in policies:
        spec = pol.get("spec") or {}
        name = f"{pol['metadata'].get('namespace', 'default')}/{pol['metadata'].get('name', '')}"
        for i, rule in enumerate(spec.get("ingress" if ingress else "egress") or []):
            rule = rule or {}
            matches = _port_matches(rule, pod if ingress else None, view)
            if matches is None:
                continue
            chain = f"SKUBE-{tag}{k}"
            k += 1
            comment = f'-m comment --comment "{name} {"ingress" if ingress else "egress"}[{i}]"'
            decls.append(f":{chain} - [0:0]")
            rules.extend(f"-A {chain} {m} -j ACCEPT".replace("  ", " ") for m in matches)
            if not ingress and (rule.get("to") or rule.get("ports")):
                rules.extend(f"-A {main} {m} {comment} -j ACCEPT" for m in _services_allowed(view, pol, rule))
            peers = rule.get("from" if ingress else "to") or []
            if not peers:
                rules.append(f"-A {main} {comment} -j {chain}")
                continue
            ips: set[str] = set()
            blocks: list[IPBlock] = []
            for peer in peers:
                p_ips, p_blocks = view.peers(pol, peer)
                ips.update(p_ips)
                blocks.extend(b for b in p_blocks if b not in blocks)
            for ip in sorted(ips, key=ipaddress.ip_address):
                rules.append(f"-A {main} {me} {ip}/32 {comment} -j {chain}")
            for j, b in enumerate(blocks):
                if not b.excepts:
                    rules.append(f"-A {main} {me} {b.cidr} {comment} -j {chain}")
                    continue
                sub = f"{chain}-B{j}"
                decls.append(f":{sub} - [0:0]")
                rules.extend(f"-A {sub} {me} {e} -j RETURN" for e in b.excepts)
                rules.append(f"-A {sub} -j {chain}")
                rules.append(f"-A {main} {me} {b.cidr} {comment} -j {sub}")
    rules.append(f"-A {main} -p tcp -j REJECT --reject-with tcp-reset")
    rules.append(f"-A {main} -j REJECT --reject-with icmp-port-unreachable")
    return decls + rules


def ruleset(pod: dict, view: ClusterView) -> str:
    """The whole iptables-restore input (filter table) for one pod's network namespace."""
    if not pod_ip(pod):
        return EMPTY_TABLE
    selecting = view.selecting(pod)
    ingress = [p for p in selecting if "Ingress" in policy_types(p)]
    egress = [p for p in selecting if "Egress" in policy_types(p)]
    if not ingress and not egress:
        return EMPTY_TABLE
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    body: list[str] = []
    if ingress:
        body += _direction(pod, view, ingress, ingress=True)
    if egress:
        body += _direction(pod, view, egress, ingress=False)
    lines += [x for x in body if x.startswith(":")]
    if ingress:
        lines.append(f"-A INPUT -j {INGRESS_CHAIN}")
    if egress:
        lines.append(f"-A OUTPUT -j {EGRESS_CHAIN}")
    lines += [x for x in body if not x.startswith(":")]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


# ---- applying ------------------------------------------------------------------------------

def _pod_fingerprint(pod: dict) -> tuple:
    """What of a pod the rules depend on (other updates do not trigger a rebuild)."""
    m = pod.get("metadata") or {}
    return (m.get("uid"), m.get("namespace"), pod_ip(pod), tuple(sorted(_labels(pod).items())),
            tuple(sorted(named_ports(pod).items())))


class PolicyEnforcer:
    """Informers on NetworkPolicies, Pods, Namespaces, Services and EndpointSlices; on any
    relevant change (gathered for :data:`DEBOUNCE`) recomputes every local pod's rules and
    runs one iptables-restore per pod whose rules changed. Pods without a network namespace
    under ``netns_dir`` (not on this host) are skipped."""

    def __init__(self, client, net: ClusterNetwork, *, netns_dir: Path = NETNS_DIR,
                 debounce: float = DEBOUNCE):
        from skube.client import Informer, resource
        self.net = net
        self.netns_dir = Path(netns_dir)
        self.debounce = debounce
        self.policies = Informer(client, resource("networking.k8s.io/v1", "networkpolicies",
                                                  kind="NetworkPolicy"), name="network policies")
        self.pods = Informer(client, resource("v1", "pods", kind="Pod"), name="pods (network policy)")
        self.namespaces = Informer(client, resource("v1", "namespaces", namespaced=False, kind="Namespace"),
                                   name="namespaces (network policy)")
        self.services = Informer(client, resource("v1", "services", kind="Service"), name="services (network policy)")
        self.slices = Informer(client, resource("discovery.k8s.io/v1", "endpointslices", kind="EndpointSlice"),
                               name="endpointslices (network policy)")
        self.applied: dict[str, str] = {}       # pod uid → the text last restored
        self.restores = 0                       # iptables-restore runs (for tests and stats)
        self._changed = asyncio.Event()
        for inf in (self.policies, self.namespaces, self.services, self.slices):
            inf.add_handlers(self._touch, lambda old, new: self._touch(new), self._touch)
        self.pods.add_handlers(self._touch, self._pod_update, self._touch)

    def _touch(self, _obj: Any = None) -> None:
        self._changed.set()

    def _pod_update(self, old: dict, new: dict) -> None:
        if _pod_fingerprint(old) != _pod_fingerprint(new):
            self._changed.set()

    def view(self) -> ClusterView:
        return ClusterView(self.policies.list(), self.pods.list(),
                           {n["metadata"]["name"]: _labels(n) for n in self.namespaces.list()},
                           self.net.gateway_ip, self.services.list(), self.slices.list())

    def _local(self, pod: dict) -> bool:
        return (self.netns_dir / f"skube-{pod['metadata'].get('uid')}").exists()

    async def sync(self) -> bool:
        """Bring every local pod's rules up to date; False when some restore failed."""
        view = self.view()
        wanted = {p["metadata"]["uid"]: ruleset(p, view) for p in view.addressed if self._local(p)}
        for uid in [u for u in self.applied if u not in wanted]:
            del self.applied[uid]
        todo = [(uid, text) for uid, text in wanted.items() if self.applied.get(uid) != text]
        slots = asyncio.Semaphore(CONCURRENCY)

        async def one(uid: str, text: str) -> bool:
            async with slots:
                return await self._restore(uid, text)
        results = await asyncio.gather(*(one(u, t) for u, t in todo))
        return all(results)

    async def _restore(self, uid: str, text: str) -> bool:
        proc = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", f"skube-{uid}", "iptables-restore", "-w", "5",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate(text.encode())
        self.restores += 1
        if proc.returncode != 0:
            if (self.netns_dir / f"skube-{uid}").exists():
                log.warning("network policy for pod %s not applied: %s", uid,
                            (err or out).decode(errors="replace").strip())
            self.applied.pop(uid, None)
            return False
        self.applied[uid] = text
        return True

    async def run(self, stop: asyncio.Event) -> None:
        informers = (self.policies, self.pods, self.namespaces, self.services, self.slices)
        for inf in informers:
            inf.start()
        try:
            for inf in informers:
                await inf.wait_synced()
            self._changed.set()
            while not stop.is_set():
                if await unless_set(self._changed.wait(), stop) is None:
                    break
                await asyncio.sleep(self.debounce)
                self._changed.clear()
                try:
                    ok = await self.sync()
                except Exception:  # noqa: BLE001 — one bad round must not end enforcement
                    log.exception("network policy sync failed")
                    ok = False
                if not ok:
                    asyncio.get_running_loop().call_later(RETRY_AFTER, self._changed.set)
        finally:
            for inf in informers:
                inf.stop()


async def run(kubeconfig: str, net: ClusterNetwork, stop: asyncio.Event) -> None:
    """Enforce NetworkPolicies for this host's pods until ``stop`` is set."""
    from skube.client import Client
    async with Client.from_kubeconfig(kubeconfig, component="skube-network-policy") as client:
        await PolicyEnforcer(client, net).run(stop)


__all__ = ["ClusterView", "IPBlock", "PolicyEnforcer", "ruleset", "pod_ip", "policy_types", "named_ports",
           "EMPTY_TABLE", "run"]
