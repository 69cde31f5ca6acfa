"""Cluster DNS for the standalone cluster: a DNS server on the pod network's gateway
(UDP and TCP port 53), answering for the cluster domain from Service and EndpointSlice
informers (records in :mod:`.dns_records`) and forwarding other names only to the
configured upstream resolvers (REFUSED without one).

Pods reach it at the ``kube-system/kube-dns`` ClusterIP (``net.dns_service_ip``): that
Service has no selector and one EndpointSlice, managed here, pointing at the gateway,
so the service proxy DNATs the cluster DNS IP to this server.
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import struct

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rdataclass
import dns.rdatatype
import dns.rcode

from ..aio import unless_set, wait_set
from ..client import ApiError, Client, Informer, resource
from .config import ClusterNetwork
from .dns_records import CNAME, ClusterZone

log = logging.getLogger("skube.network.dns")

SERVICES = resource("v1", "services", kind="Service")
ENDPOINTSLICES = resource("discovery.k8s.io/v1", "endpointslices", kind="EndpointSlice")
DNS_PORT = 53
MANAGED_BY = "skube-cluster-dns"       # our EndpointSlice's managed-by (not the slice controller's)
UPSTREAM_TIMEOUT = 2.0
TCP_IDLE_TIMEOUT = 10.0
MAX_CNAME_CHAIN = 8
CACHE_SIZE = 10000              # rendered answers kept until the zone changes


class DNSServer:
    """Answers DNS messages: the cluster zone itself, everything else via ``upstreams``."""

    def __init__(self, zone: ClusterZone, upstreams: list[str] | None = None):
        self.zone = zone
        self.upstreams = [_host_port(u) for u in upstreams or []]
        # answers of the zone as it is now, by the query's bytes after its id (and transport)
        self._cache: dict[tuple[bytes, bool], bytes] = {}
        self._cache_serial = zone.serial

    def answer_local(self, query: dns.message.Message) -> dns.message.Message | None:
        """The response when the cluster zone (or an error) answers it; None to forward."""
        if query.opcode() != dns.opcode.QUERY:
            return self._error(query, dns.rcode.NOTIMP)
        if len(query.question) != 1:
            return self._error(query, dns.rcode.FORMERR)
        q = query.question[0]
        if q.rdclass != dns.rdataclass.IN:
            return None if self.upstreams else self._error(query, dns.rcode.REFUSED)
        ans = self.zone.resolve(q.name, q.rdtype)
        if ans.forward:
            return None if self.upstreams else self._error(query, dns.rcode.REFUSED)
        resp = dns.message.make_response(query)
        resp.flags |= dns.flags.AA | (dns.flags.RA if self.upstreams else 0)
        resp.set_rcode(ans.rcode)
        resp.answer, resp.authority, resp.additional = ans.answer, ans.authority, ans.additional
        return resp

    def respond_now(self, wire: bytes, *, tcp: bool) -> tuple[bytes | None, dns.message.Message | None]:
        """Answer without waiting when the cluster zone can: (response bytes, None); a query
        that needs an upstream comes back as (None, query); (None, None) drops the packet."""
        if self._cache_serial != self.zone.serial:
            self._cache.clear()
            self._cache_serial = self.zone.serial
        cached = self._cache.get((wire[2:], tcp))
        if cached is not None:
            return wire[:2] + cached, None
        try:
            query = dns.message.from_wire(wire)
        except dns.message.ShortHeader:
            return None, None
        except Exception:  # noqa: BLE001 - any undecodable message gets FORMERR
            return _formerr(wire), None
        if query.flags & dns.flags.QR:          # a response, not a question: never answer it
            return None, None
        resp = self.answer_local(query)
        if resp is None or (self.upstreams and resp.answer and resp.answer[-1].rdtype == CNAME):
            return None, query
        out = _render(query, resp, tcp)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[(wire[2:], tcp)] = out[2:]
        return out, None

    async def respond(self, wire: bytes, *, tcp: bool) -> bytes | None:
        """The wire response to one wire query (None: not a DNS message, drop it)."""
        out, query = self.respond_now(wire, tcp=tcp)
        if query is None:
            return out
        resp = self.answer_local(query)
        resp = await self._forward(query, tcp) if resp is None else await self._chase_cname(query, resp, tcp)
        return _render(query, resp, tcp)

    async def _forward(self, query: dns.message.Message, tcp: bool) -> dns.message.Message:
        for host, port in self.upstreams:
            try:
                if not tcp:
                    resp = await dns.asyncquery.udp(query, host, timeout=UPSTREAM_TIMEOUT, port=port)
                    if not resp.flags & dns.flags.TC:
                        return resp
                return await dns.asyncquery.tcp(query, host, timeout=UPSTREAM_TIMEOUT, port=port)
            except (OSError, dns.exception.DNSException) as e:
                log.debug("upstream %s:%s failed: %s", host, port, e)
        return self._error(query, dns.rcode.SERVFAIL)

    async def _chase_cname(self, query, resp, tcp) -> dns.message.Message:
        """An ExternalName's CNAME followed to addresses, as a recursive server would."""
        qtype = query.question[0].rdtype
        for _ in range(MAX_CNAME_CHAIN):
            if not resp.answer or resp.answer[-1].rdtype != CNAME or qtype in (CNAME, dns.rdatatype.ANY):
                return resp
            target = resp.answer[-1][0].target
            sub = dns.message.make_query(target, qtype)
            nxt = self.answer_local(sub) or await self._forward(sub, tcp)
            resp.answer.extend(nxt.answer)
            resp.set_rcode(nxt.rcode())
        return resp

    @staticmethod
    def _error(query: dns.message.Message, rcode: int) -> dns.message.Message:
        resp = dns.message.make_response(query)
        resp.set_rcode(rcode)
        return resp


def _render(query: dns.message.Message, resp: dns.message.Message, tcp: bool) -> bytes:
    """Wire bytes within the client's size (512, its EDNS payload, or 64 KiB over TCP);
    a UDP answer that does not fit goes out empty with TC set, so the client retries on TCP."""
    limit = 65535 if tcp else max(512, query.payload if query.edns >= 0 else 512)
    resp.id = query.id
    try:
        return resp.to_wire(max_size=limit)
    except dns.exception.TooBig:
        short = dns.message.make_response(query)
        short.flags |= dns.flags.TC | (resp.flags & (dns.flags.AA | dns.flags.RA))
        short.set_rcode(resp.rcode())
        return short.to_wire(max_size=limit)


def _formerr(wire: bytes) -> bytes | None:
    """A bare FORMERR header echoing the query's id (RFC 1035 4.1.1)."""
    if len(wire) < 12:
        return None
    (qid,) = struct.unpack("!H", wire[:2])
    return struct.pack("!HHHHHH", qid, 0x8000 | dns.rcode.FORMERR, 0, 0, 0, 0)


def _host_port(text: str) -> tuple[str, int]:
    """``10.0.0.2``, ``10.0.0.2:5353``, ``[fd00::2]:53`` or ``fd00::2`` → (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, port = text[1:].partition("]")
        return host, int(port.lstrip(":") or DNS_PORT)
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, DNS_PORT


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer):
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: set[asyncio.Task] = set()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            out, query = self.server.respond_now(data, tcp=False)
        except Exception:  # noqa: BLE001 - one bad query must not stop the server
            log.exception("DNS query from %s failed", addr)
            return
        if query is None:
            if out is not None and self.transport is not None:
                self.transport.sendto(out, addr)
            return
        task = asyncio.ensure_future(self._reply(data, addr))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _reply(self, data: bytes, addr) -> None:
        try:
            out = await self.server.respond(data, tcp=False)
        except Exception:  # noqa: BLE001 - one bad query must not stop the server
            log.exception("DNS query from %s failed", addr)
            return
        if out is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(out, addr)


async def _serve_tcp_client(server: DNSServer, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
    """RFC 7766: length-prefixed messages, several per connection, closed when idle."""
    try:
        while True:
            head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_TIMEOUT)
            wire = await asyncio.wait_for(reader.readexactly(struct.unpack("!H", head)[0]), TCP_IDLE_TIMEOUT)
            out = await server.respond(wire, tcp=True)
            if out is None:
                break
            writer.write(struct.pack("!H", len(out)) + out)
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


class Listener:
    """The UDP and TCP sockets of one DNS server on one address."""

    def __init__(self, server: DNSServer, host: str, port: int = DNS_PORT):
        self.server, self.host, self.port = server, host, port
        self.udp: asyncio.DatagramTransport | None = None
        self.tcp: asyncio.base_events.Server | None = None

    async def start(self) -> "Listener":
        loop = asyncio.get_running_loop()
        self.udp, _ = await loop.create_datagram_endpoint(lambda: _UDPProtocol(self.server),
                                                          local_addr=(self.host, self.port))
        self.port = self.udp.get_extra_info("sockname")[1]      # port 0: TCP takes the same one
        try:
            self.tcp = await asyncio.start_server(lambda r, w: _serve_tcp_client(self.server, r, w),
                                                  self.host, self.port, reuse_address=True)
        except BaseException:
            self.udp.close()
            raise
        return self

    async def close(self) -> None:
        if self.udp is not None:
            self.udp.close()
        if self.tcp is not None:
            self.tcp.close()
            await self.tcp.wait_closed()


async def _ip(*argv: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec("ip", *argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace").strip()


async def ensure_bridge(net: ClusterNetwork) -> None:
    """The pod network's bridge, up, with the gateway address (as the CNI bridge plugin
    with isGateway leaves it, and accepts when it exists), so the server can bind there.
    Safe to race with the CNI plugin creating the same bridge."""
    prefix = ipaddress.ip_network(net.pod_cidr).prefixlen
    rc, _, err = await _ip("link", "add", net.bridge, "type", "bridge")
    if rc != 0 and "exists" not in err:
        raise RuntimeError(f"cluster DNS: cannot create bridge {net.bridge}: {err}")
    rc, out, err = await _ip("-j", "addr", "show", "dev", net.bridge)
    have = {a.get("local") for link in (json.loads(out) if rc == 0 and out.strip() else [])
            for a in link.get("addr_info") or []}
    if net.gateway_ip not in have:
        rc, _, err = await _ip("addr", "add", f"{net.gateway_ip}/{prefix}", "dev", net.bridge)
        if rc != 0 and "exists" not in err and "already assigned" not in err:
            raise RuntimeError(f"cluster DNS: cannot add {net.gateway_ip}/{prefix} to {net.bridge}: {err}")
    rc, _, err = await _ip("link", "set", net.bridge, "up")
    if rc != 0:
        raise RuntimeError(f"cluster DNS: cannot bring {net.bridge} up: {err}")


def kube_dns_objects(net: ClusterNetwork) -> tuple[dict, dict]:
    """kube-system/kube-dns (no selector, ClusterIP = the cluster DNS IP) and its
    EndpointSlice pointing at this server on the gateway."""
    labels = {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "skube-dns"}
    ports = [("dns", "UDP"), ("dns-tcp", "TCP")]
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
           "spec": {"type": "ClusterIP", "clusterIP": net.dns_service_ip, "clusterIPs": [net.dns_service_ip],
                    "ports": [{"name": n, "protocol": p, "port": DNS_PORT, "targetPort": DNS_PORT}
                              for n, p in ports]}}
    family = "IPv4" if ipaddress.ip_address(net.gateway_ip).version == 4 else "IPv6"
    es = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
          "metadata": {"name": "kube-dns-skube", "namespace": "kube-system",
                       "labels": {"kubernetes.io/service-name": "kube-dns",
                                  "endpointslice.kubernetes.io/managed-by": MANAGED_BY}},
          "addressType": family,
          "endpoints": [{"addresses": [net.gateway_ip],
                         "conditions": {"ready": True, "serving": True, "terminating": False}}],
          "ports": [{"name": n, "protocol": p, "port": DNS_PORT} for n, p in ports]}
    return svc, es


async def _ensure(client: Client, res, want: dict, same) -> None:
    """Create ``want``, or replace the existing object when ``same(existing)`` is false."""
    ns, name = want["metadata"]["namespace"], want["metadata"]["name"]
    try:
        await client.create(res, want, ns)
        return
    except ApiError as e:
        if not e.already_exists:
            raise
    cur = await client.get(res, name, ns)
    if same(cur):
        return
    if res is SERVICES and (cur.get("spec") or {}).get("clusterIP") != want["spec"]["clusterIP"]:
        await client.delete(res, name, ns)      # a ClusterIP cannot change in place
        await client.create(res, want, ns)
        return
    body = {**want, "metadata": {**want["metadata"], "resourceVersion": cur["metadata"]["resourceVersion"]}}
    await client.update(res, body, ns)


async def register_kube_dns(client: Client, net: ClusterNetwork) -> None:
    svc, es = kube_dns_objects(net)
    await _ensure(client, SERVICES, svc, lambda cur: cur["spec"].get("clusterIP") == net.dns_service_ip
                  and [(p.get("name"), p.get("protocol"), p.get("port"), p.get("targetPort"))
                       for p in cur["spec"].get("ports") or []]
                  == [(p["name"], p["protocol"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]])
    await _ensure(client, ENDPOINTSLICES, es,
                  lambda cur: [e.get("addresses") for e in cur.get("endpoints") or []] == [[net.gateway_ip]])


def watch_zone(client: Client, zone: ClusterZone) -> list[Informer]:
    """Informers keeping ``zone`` current with every Service and EndpointSlice."""
    services = Informer(client, SERVICES, name="cluster-dns services")
    services.add_handlers(zone.set_service, lambda _old, new: zone.set_service(new), zone.delete_service)
    slices = Informer(client, ENDPOINTSLICES, name="cluster-dns endpointslices")
    slices.add_handlers(zone.set_slice, lambda _old, new: zone.set_slice(new), zone.delete_slice)
    return [services, slices]


async def run(kubeconfig: str, net: ClusterNetwork, stop: asyncio.Event) -> None:
    """Serve cluster DNS on the gateway until ``stop``; the bridge stays (pods use it)."""
    zone = ClusterZone(net.cluster_domain, dns_ip=net.dns_service_ip)
    server = DNSServer(zone, net.upstream_dns)
    async with Client.from_kubeconfig(kubeconfig, component="skube-cluster-dns") as client:
        informers = watch_zone(client, zone)
        for inf in informers:
            inf.start()
        listener = None
        try:
            if await unless_set(asyncio.gather(*(inf.wait_synced() for inf in informers)), stop) is None:
                return
            await ensure_bridge(net)
            listener = await Listener(server, net.gateway_ip).start()
            log.info("cluster DNS for %s on %s:%d (service %s)", net.cluster_domain, net.gateway_ip,
                     listener.port, net.dns_service_ip)
            await _register_until_done(client, net, stop)
            await stop.wait()
        finally:
            for inf in informers:
                inf.stop()
            if listener is not None:
                await listener.close()


async def _register_until_done(client: Client, net: ClusterNetwork, stop: asyncio.Event) -> None:
    delay = 0.5
    while not stop.is_set():
        try:
            await register_kube_dns(client, net)
            return
        except ApiError as e:
            log.warning("cluster DNS: cannot register kube-system/kube-dns (%s), retrying", e)
        if not await wait_set(stop, delay):
            delay = min(delay * 2, 10.0)
