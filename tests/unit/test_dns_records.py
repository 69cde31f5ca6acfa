"""Cluster DNS records (skube.network.dns_records): Services and EndpointSlices in, answers
out, as the Kubernetes DNS-Based Service Discovery specification and CoreDNS give them."""
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype as T
import dns.reversename

from skube.network.dns import DNSServer, _render, kube_dns_objects
from skube.network.config import ClusterNetwork
from skube.network.dns_records import ClusterZone, dashed, undashed


def svc(name, ns="default", cluster_ip="10.43.0.20", ports=(("http", "TCP", 80),), **spec):
    s = {"metadata": {"name": name, "namespace": ns},
         "spec": {"clusterIP": cluster_ip, "ports": [{"name": n, "protocol": p, "port": port}
                                                     for n, p, port in ports], **spec}}
    if cluster_ip and cluster_ip != "None":
        s["spec"]["clusterIPs"] = [cluster_ip]
    return s


def slice_(service, endpoints, ns="default", name=None, ports=(("http", "TCP", 8080),), family="IPv4"):
    return {"metadata": {"name": name or f"{service}-abc", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": family,
            "ports": [{"name": n, "protocol": p, "port": port} for n, p, port in ports],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready},
                           **({"hostname": host} if host else {})} for ip, ready, host in endpoints]}


def zone_with(*objs) -> ClusterZone:
    z = ClusterZone("cluster.local", dns_ip="10.43.0.10")
    for o in objs:
        (z.set_slice if "addressType" in o else z.set_service)(o)
    return z


def ask(z, name, qtype=T.A):
    return z.resolve(dns.name.from_text(name), qtype)


def values(ans, rtype=None):
    return sorted(rd.to_text() for rr in ans.answer if rtype in (None, rr.rdtype) for rd in rr)


def test_clusterip_service_a_record_and_case_insensitive():
    z = zone_with(svc("web"))
    a = ask(z, "web.default.svc.cluster.local.")
    assert a.rcode == dns.rcode.NOERROR and values(a) == ["10.43.0.20"]
    assert a.answer[0].ttl == 5
    assert values(ask(z, "WEB.Default.SVC.cluster.local.")) == ["10.43.0.20"]
    # AAAA for an IPv4-only service: the name exists, no data, SOA in authority
    aaaa = ask(z, "web.default.svc.cluster.local.", T.AAAA)
    assert aaaa.rcode == dns.rcode.NOERROR and not aaaa.answer and aaaa.authority[0].rdtype == T.SOA


def test_unknown_names_are_nxdomain_with_soa():
    z = zone_with(svc("web"))
    for name in ("nope.default.svc.cluster.local.", "web.other.svc.cluster.local.",
                 "x.y.web.default.svc.cluster.local.", "foo.cluster.local.", "a.b.c.pod.cluster.local."):
        a = ask(z, name)
        assert a.rcode == dns.rcode.NXDOMAIN, name
        assert a.authority[0].rdtype == T.SOA and a.authority[0].name.to_text() == "cluster.local."
    # namespaces with services exist as names (no data); the others do not
    assert ask(z, "default.svc.cluster.local.").rcode == dns.rcode.NOERROR
    assert ask(z, "other.svc.cluster.local.").rcode == dns.rcode.NXDOMAIN


def test_headless_service_returns_ready_endpoints_and_hostnames():
    z = zone_with(svc("db", cluster_ip="None"),
                  slice_("db", [("10.42.0.5", True, "db-0"), ("10.42.0.6", True, "db-1"),
                                ("10.42.0.7", False, "db-2")]))
    assert values(ask(z, "db.default.svc.cluster.local.")) == ["10.42.0.5", "10.42.0.6"]
    assert values(ask(z, "db-1.db.default.svc.cluster.local.")) == ["10.42.0.6"]
    assert ask(z, "db-2.db.default.svc.cluster.local.").rcode == dns.rcode.NXDOMAIN   # not ready
    # publishNotReadyAddresses: every endpoint is published
    z.set_service(svc("db", cluster_ip="None", publishNotReadyAddresses=True))
    assert values(ask(z, "db.default.svc.cluster.local.")) == ["10.42.0.5", "10.42.0.6", "10.42.0.7"]


def test_headless_without_ready_endpoints_is_nxdomain_and_slices_follow_updates():
    z = zone_with(svc("db", cluster_ip="None"))
    assert ask(z, "db.default.svc.cluster.local.").rcode == dns.rcode.NXDOMAIN
    es = slice_("db", [("10.42.0.5", True, None)])
    z.set_slice(es)
    assert values(ask(z, "db.default.svc.cluster.local.")) == ["10.42.0.5"]
    # an endpoint without hostname is named by its dashed IP
    assert values(ask(z, "10-42-0-5.db.default.svc.cluster.local.")) == ["10.42.0.5"]
    z.delete_slice(es)
    assert ask(z, "db.default.svc.cluster.local.").rcode == dns.rcode.NXDOMAIN


def test_srv_for_named_ports():
    z = zone_with(svc("web", ports=(("http", "TCP", 80), ("", "TCP", 81), ("dns", "UDP", 53))),
                  svc("db", cluster_ip="None"),
                  slice_("db", [("10.42.0.5", True, "db-0"), ("10.42.0.6", True, None)],
                         ports=(("pg", "TCP", 5432),)))
    a = ask(z, "_http._tcp.web.default.svc.cluster.local.", T.SRV)
    assert values(a) == ["0 100 80 web.default.svc.cluster.local."]
    assert [rr.to_text() for rr in a.additional] == ["web.default.svc.cluster.local. 5 IN A 10.43.0.20"]
    assert values(ask(z, "_dns._udp.web.default.svc.cluster.local.", T.SRV)) == \
        ["0 100 53 web.default.svc.cluster.local."]
    assert ask(z, "_dns._tcp.web.default.svc.cluster.local.", T.SRV).rcode == dns.rcode.NXDOMAIN
    assert ask(z, "_nope._tcp.web.default.svc.cluster.local.", T.SRV).rcode == dns.rcode.NXDOMAIN
    # headless: one per ready endpoint, with the endpoint's port and hostname
    h = ask(z, "_pg._tcp.db.default.svc.cluster.local.", T.SRV)
    assert values(h) == ["0 50 5432 10-42-0-6.db.default.svc.cluster.local.",
                         "0 50 5432 db-0.db.default.svc.cluster.local."]
    assert sorted(rr.to_text() for rr in h.additional) == [
        "10-42-0-6.db.default.svc.cluster.local. 5 IN A 10.42.0.6",
        "db-0.db.default.svc.cluster.local. 5 IN A 10.42.0.5"]
    # the SRV name exists for other types (no data)
    assert ask(z, "_http._tcp.web.default.svc.cluster.local.", T.A).rcode == dns.rcode.NOERROR


def test_external_name_is_a_cname():
    z = zone_with(svc("ext", cluster_ip=None, type="ExternalName", externalName="db.example.com"))
    a = ask(z, "ext.default.svc.cluster.local.")
    assert [rr.rdtype for rr in a.answer] == [T.CNAME] and values(a) == ["db.example.com."]


def test_ptr_for_service_ips_and_headless_endpoints():
    z = zone_with(svc("web"), svc("db", cluster_ip="None"),
                  slice_("db", [("10.42.0.5", True, "db-0")]),
                  svc("api", cluster_ip="10.43.0.30"), slice_("api", [("10.42.0.9", True, None)]))
    rev = lambda ip: dns.reversename.from_address(ip).to_text()  # noqa: E731
    assert values(ask(z, rev("10.43.0.20"), T.PTR)) == ["web.default.svc.cluster.local."]
    assert values(ask(z, rev("10.42.0.5"), T.PTR)) == ["db-0.db.default.svc.cluster.local."]
    assert ask(z, rev("10.42.0.9"), T.PTR).forward      # a ClusterIP service's endpoint: not ours
    assert ask(z, rev("192.0.2.1"), T.PTR).forward


def test_pod_records_from_the_name():
    z = zone_with()
    assert values(ask(z, "10-42-0-7.any.pod.cluster.local.")) == ["10.42.0.7"]
    assert ask(z, "10-42-0-7.any.pod.cluster.local.", T.AAAA).answer == []
    assert ask(z, "10-42-0-300.any.pod.cluster.local.").rcode == dns.rcode.NXDOMAIN
    assert undashed("fd00--1") == "fd00::1" and dashed("10.0.0.1") == "10-0-0-1"


def test_zone_apex_version_and_outside_names():
    z = zone_with()
    assert values(ask(z, "dns-version.cluster.local.", T.TXT)) == ['"1.1.0"']
    assert ask(z, "cluster.local.", T.SOA).answer[0].rdtype == T.SOA
    assert values(ask(z, "ns.dns.cluster.local.")) == ["10.43.0.10"]
    assert ask(z, "example.com.").forward


def test_server_refuses_outside_names_without_upstream_and_answers_in_zone():
    server = DNSServer(zone_with(svc("web")))
    q = dns.message.make_query("example.com.", "A")
    r = dns.message.from_wire(server.respond_now(q.to_wire(), tcp=False)[0])
    assert r.rcode() == dns.rcode.REFUSED and r.id == q.id
    q = dns.message.make_query("web.default.svc.cluster.local.", "A")
    r = dns.message.from_wire(server.respond_now(q.to_wire(), tcp=False)[0])
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    assert r.answer[0].to_text() == "web.default.svc.cluster.local. 5 IN A 10.43.0.20"
    # garbage gets FORMERR with the same id
    bad = server.respond_now(q.to_wire()[:14] + b"\xff" * 3, tcp=False)[0]
    assert bad[:2] == q.to_wire()[:2] and bad[3] & 0x0F == dns.rcode.FORMERR


def test_udp_answers_too_big_are_truncated():
    z = zone_with(svc("many", cluster_ip="None"),
                  slice_("many", [(f"10.42.{i // 250}.{i % 250 + 1}", True, None) for i in range(200)]))
    q = dns.message.make_query("many.default.svc.cluster.local.", "A")
    resp = DNSServer(z).answer_local(q)
    udp = dns.message.from_wire(_render(q, resp, tcp=False))
    assert udp.flags & dns.flags.TC and not udp.answer
    tcp = dns.message.from_wire(_render(q, resp, tcp=True))
    assert len(tcp.answer[0]) == 200


def test_kube_dns_service_points_at_the_gateway():
    net = ClusterNetwork(pod_cidr="10.60.0.0/24", service_cidr="10.60.1.0/24")
    s, es = kube_dns_objects(net)
    assert s["spec"]["clusterIP"] == "10.60.1.10" and "selector" not in s["spec"]
    assert s["metadata"]["labels"]["k8s-app"] == "kube-dns"
    assert [(p["name"], p["protocol"], p["port"]) for p in s["spec"]["ports"]] == \
        [("dns", "UDP", 53), ("dns-tcp", "TCP", 53)]
    assert es["endpoints"][0]["addresses"] == ["10.60.0.1"]
    assert es["metadata"]["labels"]["kubernetes.io/service-name"] == "kube-dns"


def test_server_cache_follows_zone_changes():
    z = zone_with(svc("web"))
    server = DNSServer(z)
    q = dns.message.make_query("web.default.svc.cluster.local.", "A")
    first = dns.message.from_wire(server.respond_now(q.to_wire(), tcp=False)[0])
    q.id = (q.id + 1) % 65536
    again = dns.message.from_wire(server.respond_now(q.to_wire(), tcp=False)[0])   # from the cache
    assert again.id == q.id and again.answer == first.answer
    z.set_service(svc("web", cluster_ip="10.43.0.99"))
    changed = dns.message.from_wire(server.respond_now(q.to_wire(), tcp=False)[0])
    assert changed.answer[0].to_text() == "web.default.svc.cluster.local. 5 IN A 10.43.0.99"
    z.delete_service(svc("web"))
    gone = dns.message.from_wire(server.respond_now(q.to_wire(), tcp=False)[0])
    assert gone.rcode() == dns.rcode.NXDOMAIN


def test_forwarding_to_an_upstream_over_udp_and_tcp():
    """Real sockets on 127.0.0.1: a second server plays the upstream resolver."""
    import asyncio
    from skube.network.dns import Listener

    async def main():
        upstream_zone = ClusterZone("upstream.test")
        upstream_zone.set_service(svc("www", cluster_ip="192.0.2.7"))
        up = await Listener(DNSServer(upstream_zone), "127.0.0.1", 0).start()
        cluster = zone_with(svc("ext", cluster_ip=None, type="ExternalName",
                                externalName="www.default.svc.upstream.test"))
        server = DNSServer(cluster, [f"127.0.0.1:{up.port}"])
        try:
            q = dns.message.make_query("www.default.svc.upstream.test.", "A")
            for tcp in (False, True):
                r = dns.message.from_wire(await server.respond(q.to_wire(), tcp=tcp))
                assert r.id == q.id and r.rcode() == dns.rcode.NOERROR
                assert [rr.to_text() for rr in r.answer] == ["www.default.svc.upstream.test. 5 IN A 192.0.2.7"]
            # an ExternalName is followed to the upstream's addresses
            q = dns.message.make_query("ext.default.svc.cluster.local.", "A")
            r = dns.message.from_wire(await server.respond(q.to_wire(), tcp=False))
            assert [rr.rdtype for rr in r.answer] == [T.CNAME, T.A] and r.flags & dns.flags.RA
            # inside the cluster domain nothing is forwarded
            q = dns.message.make_query("nope.default.svc.cluster.local.", "A")
            assert dns.message.from_wire(await server.respond(q.to_wire(), tcp=False)).rcode() == dns.rcode.NXDOMAIN
            # an upstream that does not answer: SERVFAIL
            await up.close()
            dead = DNSServer(cluster, [f"127.0.0.1:{up.port}"])
            q = dns.message.make_query("www.default.svc.upstream.test.", "A")
            r = dns.message.from_wire(await dead.respond(q.to_wire(), tcp=True))
            assert r.rcode() == dns.rcode.SERVFAIL
        finally:
            await up.close()

    asyncio.run(main())


def test_pod_resolv_conf_per_dns_policy_as_kubelet():
    from skube.runtime.sandbox import NetworkConfig, resolv_conf
    net = NetworkConfig(cluster_dns=["10.43.0.10"])
    host = "nameserver 192.0.2.53\nsearch corp.example. cluster.local .\noptions rotate\n"
    pod = {"metadata": {"name": "p", "namespace": "shop"}, "spec": {}}
    assert resolv_conf(pod, net, host).splitlines() == [
        "nameserver 10.43.0.10",
        "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example",
        "options ndots:5"]
    # ClusterFirst on the host network falls back to the host's settings; ...WithHostNet does not
    pod["spec"] = {"hostNetwork": True}
    assert resolv_conf(pod, net, host).splitlines()[0] == "nameserver 192.0.2.53"
    pod["spec"]["dnsPolicy"] = "ClusterFirstWithHostNet"
    assert resolv_conf(pod, net, host).splitlines()[0] == "nameserver 10.43.0.10"
    pod["spec"] = {"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["a.b"],
                                                      "options": [{"name": "ndots", "value": "2"}]}}
    assert resolv_conf(pod, net, host).splitlines() == ["nameserver 1.1.1.1", "search a.b", "options ndots:2"]


def test_server_drops_responses_and_short_packets():
    server = DNSServer(zone_with(svc("web")))
    q = dns.message.make_query("web.default.svc.cluster.local.", "A")
    resp = dns.message.make_response(q)
    assert server.respond_now(resp.to_wire(), tcp=False) == (None, None)
    assert server.respond_now(b"\x01\x02\x03", tcp=False) == (None, None)
