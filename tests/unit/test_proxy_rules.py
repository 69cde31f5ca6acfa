"""The service proxy's rule generator: Services + EndpointSlices -> iptables-restore text
(skube.network.proxy.service_ports and render); the text is checked by the real
iptables-restore (--test: parsed and validated, nothing committed)."""
from __future__ import annotations

import re
import subprocess

from skube.network.config import ClusterNetwork
from skube.network.proxy import render, service_ports

NET = ClusterNetwork.from_doc({"cidr": "10.210.0.0/24", "serviceCIDR": "10.210.1.0/24", "name": "unit",
                               "bridge": "skunit"})
P = NET.chain_prefix


def svc(name, ip="10.210.1.5", ports=None, **spec):
    return {"metadata": {"name": name, "namespace": "ns"},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                     "ports": ports or [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}],
                     **spec}}


def ep(ip, ready=True, serving=None, terminating=None):
    cond = {"ready": ready}
    if serving is not None:
        cond["serving"] = serving
    if terminating is not None:
        cond["terminating"] = terminating
    return {"addresses": [ip], "conditions": cond}


def eslice(service, endpoints, ports=None, name=None):
    return {"metadata": {"name": name or service + "-x", "namespace": "ns",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "endpoints": endpoints,
            "ports": ports or [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def check_with_iptables(text: str) -> None:
    res = subprocess.run(["iptables-restore", "--test", "--noflush"], input=text, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr + text


def test_ready_endpoints_then_serving_terminating_fallback_and_publish_not_ready():
    services = [svc("a"), svc("b", "10.210.1.6"), svc("c", "10.210.1.7", publishNotReadyAddresses=True)]
    slices = [eslice("a", [ep("10.210.0.2"), ep("10.210.0.3", ready=False), ep("10.210.0.4", ready=False,
                                                                               serving=True, terminating=True)]),
              eslice("a", [ep("10.210.0.2")], name="a-dup"),
              eslice("b", [ep("10.210.0.5", ready=False, serving=True, terminating=True),
                           ep("10.210.0.6", ready=False, serving=False, terminating=True)]),
              eslice("c", [ep("10.210.0.7", ready=False)])]
    by = {p.name: p.endpoints for p in service_ports(services, slices)}
    assert by == {"a": [("10.210.0.2", 8080)],                  # ready only, deduplicated
                  "b": [("10.210.0.5", 8080)],                  # none ready: serving and terminating
                  "c": [("10.210.0.7", 8080)]}                  # publishNotReadyAddresses


def test_ports_matched_by_name_and_protocol_and_no_address_services_skipped():
    services = [svc("dns", ports=[{"name": "dns", "port": 53, "protocol": "UDP"},
                                  {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                                  {"name": "sctp", "port": 9, "protocol": "SCTP"}]),
                svc("headless", "None"),
                {"metadata": {"name": "ext", "namespace": "ns"},
                 "spec": {"type": "ExternalName", "externalName": "example.com"}}]
    slices = [eslice("dns", [ep("10.210.0.9")], ports=[{"name": "dns", "port": 5353, "protocol": "UDP"},
                                                       {"name": "dns-tcp", "port": 5354, "protocol": "TCP"}])]
    got = [(p.port_name, p.protocol, p.endpoints) for p in service_ports(services, slices)]
    assert got == [("dns", "udp", [("10.210.0.9", 5353)]), ("dns-tcp", "tcp", [("10.210.0.9", 5354)])]


def test_rules_spread_load_translate_and_masquerade_like_kube_proxy():
    services = [svc("web", type="NodePort", ports=[{"name": "http", "port": 80, "protocol": "TCP",
                                                    "nodePort": 30080}])]
    slices = [eslice("web", [ep(f"10.210.0.{i}") for i in (2, 3, 4)])]
    text = render(NET, service_ports(services, slices))
    check_with_iptables(text)
    svc_chain = re.search(rf"-d 10.210.1.5/32 -p tcp -m tcp --dport 80 .* -j ({P}-SVC-\w+)", text).group(1)
    rules = [ln for ln in text.splitlines() if ln.startswith(f"-A {svc_chain} ")]
    assert rules[0] == f"-A {svc_chain} ! -s 10.210.0.0/24 -j {P}-MARK-MASQ"    # host -> service
    probs = [re.search(r"--probability (\S+)", r).group(1) for r in rules if "statistic" in r]
    assert probs == ["0.3333333333", "0.5000000000"] and "statistic" not in rules[-1]
    for i in (2, 3, 4):     # each endpoint: hairpin masquerade, then DNAT
        assert re.search(rf"-A ({P}-SEP-\w+) -s 10.210.0.{i}/32 -j {P}-MARK-MASQ\n-A \1 -p tcp -m tcp -j DNAT "
                         rf"--to-destination 10.210.0.{i}:8080\n", text)
    ext = re.search(rf"-A {P}-NODEPORTS -p tcp -m tcp --dport 30080 .* -j ({P}-EXT-\w+)", text).group(1)
    assert f"-A {ext} -j {P}-MARK-MASQ\n-A {ext} -j {svc_chain}\n" in text
    assert f"-A {P}-OUTPUT -d 127.0.0.0/8 -j {P}-NODEPORTS" in text          # 127.0.0.1:nodePort
    assert f"-A {P}-SERVICES -d {NET.gateway_ip}/32 -j {P}-NODEPORTS" in text  # bridge address, from pods
    assert f"-A {P}-POSTROUTING -j MASQUERADE --random-fully" in text
    assert all(len(c) <= 28 for c in re.findall(r"^:(\S+)", text, re.M))
    # without br_netfilter every pod->service connection is masqueraded
    assert f"-A {svc_chain} -j {P}-MARK-MASQ" in render(NET, service_ports(services, slices), masquerade_all=True)


def test_session_affinity_uses_recent_with_the_timeout():
    services = [svc("s", sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})]
    text = render(NET, service_ports(services, [eslice("s", [ep("10.210.0.2"), ep("10.210.0.3")])]))
    check_with_iptables(text)
    seps = re.findall(rf"-m recent --name ({P}-SEP-\w+) --rcheck --seconds 60 --reap -j \1", text)
    assert len(seps) == 2
    for sep in seps:
        assert re.search(rf"-A {sep} -p tcp -m tcp -m recent --name {sep} --set -j DNAT", text)


def test_no_endpoints_rejects_and_loopback_endpoints_go_to_127_0_0_1():
    services = [svc("empty", type="NodePort", ports=[{"name": "u", "port": 53, "protocol": "UDP", "nodePort": 30053}]),
                svc("kubernetes", "10.210.1.1", ports=[{"name": "https", "port": 443, "protocol": "TCP"}])]
    slices = [eslice("kubernetes", [ep(NET.gateway_ip)], ports=[{"name": "https", "port": 6443, "protocol": "TCP"}])]
    text = render(NET, service_ports(services, slices), loopback_endpoints=frozenset({(NET.gateway_ip, 6443)}))
    check_with_iptables(text)
    filt = text.split("*nat")[0]
    assert f"-A {P}-FILTER -d 10.210.1.5/32 -p udp -m udp --dport 53 " in filt and "REJECT" in filt
    assert f"-A {P}-FILTER -d 127.0.0.0/8 -p udp -m udp --dport 30053 " in filt
    assert filt.rstrip().splitlines()[-2].startswith(f"-A {P}-FILTER -d 10.210.1.0/24 ")  # unknown ports last
    assert "--dport 53" not in text.split("*nat")[1]
    assert "-j DNAT --to-destination 127.0.0.1:6443" in text and f"-s {NET.gateway_ip}/32" not in text


def test_stale_chains_are_flushed_and_deleted():
    stale = f"{P}-SVC-GONE"
    text = render(NET, [], existing=frozenset({stale, f"{P}-SERVICES", "OTHER-CHAIN"}))
    assert f":{stale} - [0:0]" in text and f"-X {stale}" in text
    assert "OTHER-CHAIN" not in text and f"-X {P}-SERVICES" not in text
