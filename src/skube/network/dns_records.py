"""The cluster DNS zone as pure functions: Services and EndpointSlices in, DNS answers out.

Follows the Kubernetes DNS-Based Service Discovery specification (kubernetes/dns
docs/specification.md) with CoreDNS's kubernetes-plugin choices where it leaves room:
TTL 5 s, SRV priority 0 and weight 100/n, an endpoint without ``hostname`` named by its
dashed IP, ``pods insecure`` pod records, NXDOMAIN/NODATA with the zone's SOA.
No I/O: :class:`ClusterZone` holds the objects, :meth:`ClusterZone.resolve` answers.
"""
from __future__ import annotations

import functools
import ipaddress
import time
from dataclasses import dataclass, field

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rcode
import dns.rrset
import dns.reversename

SCHEMA_VERSION = "1.1.0"        # the spec's version CoreDNS reports in dns-version.<zone>
DEFAULT_TTL = 5                 # CoreDNS kubernetes plugin default
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
_REVERSE = (dns.name.from_text("in-addr.arpa."), dns.name.from_text("ip6.arpa."))
A, AAAA, SRV, PTR, CNAME, TXT, SOA, NS, ANY = (
    dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.SRV, dns.rdatatype.PTR, dns.rdatatype.CNAME,
    dns.rdatatype.TXT, dns.rdatatype.SOA, dns.rdatatype.NS, dns.rdatatype.ANY)


@dataclass
class Answer:
    """What to send back; ``forward`` means the name is not ours (ask upstream or refuse)."""
    rcode: int = dns.rcode.NOERROR
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)
    forward: bool = False


@dataclass
class Endpoint:
    ip: str
    hostname: str               # spec.hostname, else the dashed IP (a unique identifier)
    ports: list[tuple[str, str, int]]   # (name, protocol, port) of the slice


def dashed(ip: str) -> str:
    """``10.0.0.7`` → ``10-0-0-7`` (and ``fd00::1`` → ``fd00--1``), as CoreDNS names endpoints."""
    return ip.replace(".", "-").replace(":", "-")


def undashed(label: str) -> str | None:
    """The IP a pod record's first label spells (``10-0-0-7`` → ``10.0.0.7``), or None."""
    for text in (label.replace("-", "."), label.replace("-", ":")):
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            continue
    return None


@functools.lru_cache(maxsize=4096)
def _rdata(rtype: int, text: str) -> dns.rdata.Rdata:
    """Parsed record data (immutable, so shared between answers)."""
    return dns.rdata.from_text(dns.rdataclass.IN, rtype, text)


def _family(ip: str) -> int:
    return A if ipaddress.ip_address(ip).version == 4 else AAAA


def _is_ready(ep: dict, publish_not_ready: bool) -> bool:
    """EndpointSlice semantics: a nil ``ready`` condition means ready."""
    return publish_not_ready or (ep.get("conditions") or {}).get("ready") is not False


class ClusterZone:
    """The records of one cluster domain, kept current by :meth:`set_service`,
    :meth:`set_slice` and their deletes (informer handlers)."""

    def __init__(self, domain: str = "cluster.local", *, dns_ip: str | None = None,
                 ttl: int = DEFAULT_TTL):
        self.origin = dns.name.from_text(domain.strip(".") + ".")
        self.domain = domain.strip(".").lower()
        self.dns_ip = dns_ip
        self.ttl = ttl
        self.serial = int(time.time())
        self.services: dict[tuple[str, str], dict] = {}
        self.slices: dict[tuple[str, str], dict[str, dict]] = {}   # (ns, service) → {slice: obj}
        self._slice_owner: dict[tuple[str, str], tuple[str, str]] = {}   # (ns, slice) → service key
        self._ns_count: dict[str, int] = {}
        self._ptr: dict[str, list[str]] | None = None

    # ---- keeping current -------------------------------------------------------------
    def _changed(self) -> None:
        self.serial = max(self.serial + 1, int(time.time()))
        self._ptr = None

    def set_service(self, svc: dict) -> None:
        m = svc["metadata"]
        key = (m["namespace"].lower(), m["name"].lower())
        if key not in self.services:
            self._ns_count[key[0]] = self._ns_count.get(key[0], 0) + 1
        self.services[key] = svc
        self._changed()

    def delete_service(self, svc: dict) -> None:
        m = svc["metadata"]
        key = (m["namespace"].lower(), m["name"].lower())
        if self.services.pop(key, None) is not None:
            self._ns_count[key[0]] -= 1
            if not self._ns_count[key[0]]:
                del self._ns_count[key[0]]
        self._changed()

    def set_slice(self, es: dict) -> None:
        m = es["metadata"]
        owner = (m.get("labels") or {}).get(SERVICE_NAME_LABEL)
        self._drop_slice(m["namespace"], m["name"])
        if owner:
            key = (m["namespace"].lower(), owner.lower())
            self.slices.setdefault(key, {})[m["name"]] = es
            self._slice_owner[(m["namespace"], m["name"])] = key
        self._changed()

    def delete_slice(self, es: dict) -> None:
        self._drop_slice(es["metadata"]["namespace"], es["metadata"]["name"])
        self._changed()

    def _drop_slice(self, namespace: str, name: str) -> None:
        key = self._slice_owner.pop((namespace, name), None)
        by_name = self.slices.get(key) if key else None
        if by_name is not None:
            by_name.pop(name, None)
            if not by_name:
                del self.slices[key]

    # ---- the objects as DNS sees them -------------------------------------------------
    def endpoints(self, ns: str, name: str) -> list[Endpoint]:
        """The service's ready endpoints (every one with publishNotReadyAddresses), one per IP."""
        svc = self.services.get((ns, name))
        publish = bool(svc and (svc.get("spec") or {}).get("publishNotReadyAddresses"))
        seen: dict[str, Endpoint] = {}
        for es in (self.slices.get((ns, name)) or {}).values():
            if es.get("addressType") not in ("IPv4", "IPv6"):
                continue
            ports = [(p.get("name") or "", p.get("protocol") or "TCP", p["port"])
                     for p in es.get("ports") or [] if p.get("port") is not None]
            for ep in es.get("endpoints") or []:
                if not _is_ready(ep, publish):
                    continue
                for ip in ep.get("addresses") or []:
                    if ip not in seen:
                        seen[ip] = Endpoint(ip, (ep.get("hostname") or dashed(ip)).lower(), ports)
        return sorted(seen.values(), key=lambda e: ipaddress.ip_address(e.ip))

    @staticmethod
    def cluster_ips(svc: dict) -> list[str]:
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            return []
        ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
        return [ip for ip in ips if ip and ip != "None"]

    def fqdn(self, *labels: str) -> dns.name.Name:
        return dns.name.Name([lb.encode() for lb in labels]).concatenate(self.origin)

    def _ptr_index(self) -> dict[str, list[str]]:
        """IP → names: ClusterIPs to ``svc.ns.svc.zone``, headless endpoints to ``host.svc.ns.svc.zone``."""
        if self._ptr is None:
            idx: dict[str, list[str]] = {}
            for (ns, name), svc in self.services.items():
                ips = self.cluster_ips(svc)
                for ip in ips:
                    idx.setdefault(str(ipaddress.ip_address(ip)), []).append(f"{name}.{ns}.svc")
                if not ips and (svc.get("spec") or {}).get("type") != "ExternalName":
                    for ep in self.endpoints(ns, name):
                        idx.setdefault(str(ipaddress.ip_address(ep.ip)), []).append(
                            f"{ep.hostname}.{name}.{ns}.svc")
            self._ptr = idx
        return self._ptr

    # ---- answering --------------------------------------------------------------------
    def resolve(self, qname: dns.name.Name, qtype: int) -> Answer:
        """The answer for one question (class IN)."""
        if any(qname.is_subdomain(r) for r in _REVERSE):
            return self._reverse(qname, qtype)
        if not qname.is_subdomain(self.origin):
            return Answer(forward=True)
        labels = [lb.decode(errors="replace").lower() for lb in qname.relativize(self.origin).labels]
        if not labels:
            return self._apex(qname, qtype)
        if labels == ["dns-version"]:
            return self._rr(qname, qtype, TXT, [f'"{SCHEMA_VERSION}"'])
        if labels == ["ns", "dns"] and self.dns_ip:
            return self._rr(qname, qtype, _family(self.dns_ip), [self.dns_ip])
        if labels in (["dns"], ["svc"], ["pod"]):
            return self._nodata()
        kind = labels[-1]
        if kind == "pod" and len(labels) == 3:
            ip = undashed(labels[0])
            return self._rr(qname, qtype, _family(ip), [ip]) if ip else self._nxdomain()
        if kind == "pod" and len(labels) == 2:
            return self._nodata()
        if kind != "svc":
            return self._nxdomain()
        if len(labels) == 2:
            return self._nodata() if labels[0] in self._ns_count else self._nxdomain()
        ns, name = labels[-2], labels[-3]
        svc = self.services.get((ns, name))
        if svc is None:
            return self._nxdomain()
        rest = labels[:-3]
        if not rest:
            return self._service(qname, qtype, svc, ns, name)
        if len(rest) == 1:
            return self._endpoint(qname, qtype, svc, ns, name, rest[0])
        if len(rest) == 2 and rest[0].startswith("_") and rest[1].startswith("_"):
            return self._srv(qname, qtype, svc, ns, name, rest[0][1:], rest[1][1:])
        return self._nxdomain()

    def _service(self, qname, qtype, svc, ns, name) -> Answer:
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            target = dns.name.from_text(spec.get("externalName") or "invalid.")
            return Answer(answer=[self._rrset(qname, CNAME, [target.to_text()])])
        ips = self.cluster_ips(svc)
        if not ips:                                     # headless: its ready endpoints
            ips = [ep.ip for ep in self.endpoints(ns, name)]
            if not ips:
                return self._nxdomain()                 # spec 2.4.1
        return self._addresses(qname, qtype, ips)

    def _endpoint(self, qname, qtype, svc, ns, name, host) -> Answer:
        if self.cluster_ips(svc) or (svc.get("spec") or {}).get("type") == "ExternalName":
            return self._nxdomain()
        ips = [ep.ip for ep in self.endpoints(ns, name) if ep.hostname == host or dashed(ep.ip) == host]
        return self._addresses(qname, qtype, ips) if ips else self._nxdomain()

    def _srv(self, qname, qtype, svc, ns, name, port_name, proto) -> Answer:
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            return self._nxdomain()
        records: list[tuple[int, dns.name.Name, str | None]] = []    # (port, target, target IP)
        if self.cluster_ips(svc):
            for p in spec.get("ports") or []:
                if (p.get("name") or "").lower() == port_name and (p.get("protocol") or "TCP").lower() == proto:
                    records.append((p["port"], self.fqdn(name, ns, "svc"), None))
            extra = [(self.fqdn(name, ns, "svc"), self.cluster_ips(svc))]
        else:
            extra = []
            for ep in self.endpoints(ns, name):
                for pname, pproto, pnum in ep.ports:
                    if pname and pname.lower() == port_name and pproto.lower() == proto:
                        target = self.fqdn(ep.hostname, name, ns, "svc")
                        records.append((pnum, target, ep.ip))
                        extra.append((target, [ep.ip]))
        if not records:
            return self._nxdomain()
        if qtype not in (SRV, ANY):
            return self._nodata()
        weight = max(1, 100 // len(records))
        rrset = self._rrset(qname, SRV, [f"0 {weight} {port} {target}" for port, target, _ in records])
        additional = []
        for target, ips in extra:
            for rtype in (A, AAAA):
                fam = [ip for ip in ips if _family(ip) == rtype]
                if fam:
                    additional.append(self._rrset(target, rtype, fam))
        return Answer(answer=[rrset], additional=additional)

    def _reverse(self, qname, qtype) -> Answer:
        try:
            ip = str(dns.reversename.to_address(qname))
        except Exception:  # noqa: BLE001 - a partial reverse name (a zone cut), not an address
            return Answer(forward=True)
        names = self._ptr_index().get(ip)
        if not names:
            return Answer(forward=True)                 # CoreDNS: fallthrough in-addr.arpa ip6.arpa
        if qtype not in (PTR, ANY):
            return self._nodata()
        return Answer(answer=[self._rrset(qname, PTR, [f"{n}.{self.domain}." for n in names])])

    def _apex(self, qname, qtype) -> Answer:
        if qtype == SOA:
            return Answer(answer=[self._soa()])
        if qtype == NS:
            return Answer(answer=[self._rrset(qname, NS, [f"ns.dns.{self.domain}."])],
                          additional=[self._rrset(self.fqdn("ns", "dns"), _family(self.dns_ip),
                                                  [self.dns_ip])] if self.dns_ip else [])
        return self._nodata()

    # ---- building blocks --------------------------------------------------------------
    def _addresses(self, qname, qtype, ips: list[str]) -> Answer:
        want = (A, AAAA) if qtype == ANY else (qtype,)
        out = []
        for rtype in want:
            fam = [ip for ip in ips if rtype in (A, AAAA) and _family(ip) == rtype]
            if fam:
                out.append(self._rrset(qname, rtype, fam))
        return Answer(answer=out) if out else self._nodata()

    def _rr(self, qname, qtype, rtype, values: list[str]) -> Answer:
        if qtype in (rtype, ANY):
            return Answer(answer=[self._rrset(qname, rtype, values)])
        return self._nodata()

    def _rrset(self, owner: dns.name.Name, rtype: int, values: list[str]) -> dns.rrset.RRset:
        return dns.rrset.from_rdata_list(owner, self.ttl, [_rdata(rtype, v) for v in values])

    def _soa(self) -> dns.rrset.RRset:
        return self._rrset(self.origin, SOA, [
            f"ns.dns.{self.domain}. hostmaster.{self.domain}. {self.serial} 7200 1800 86400 {self.ttl}"])

    def _nxdomain(self) -> Answer:
        return Answer(rcode=dns.rcode.NXDOMAIN, authority=[self._soa()])

    def _nodata(self) -> Answer:
        return Answer(authority=[self._soa()])
