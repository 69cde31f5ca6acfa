"""The NetworkPolicy rule generator: policies + pods + namespaces → one pod's
iptables-restore text, with upstream's selection, peer and port semantics."""
from __future__ import annotations

import subprocess
import uuid

import pytest

from skube.network.policy import EMPTY_TABLE, ClusterView, policy_types, ruleset

HOST = "10.99.0.1"


def pod(name, ip, labels=None, ns="default", ports=(), phase="Running"):
    return {"metadata": {"name": name, "namespace": ns, "uid": f"uid-{ns}-{name}", "labels": labels or {}},
            "spec": {"containers": [{"name": "c", "ports": [
                {"name": pn, "containerPort": num, "protocol": proto} for pn, num, proto in ports]}]},
            "status": {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}] if ip else []}}


def netpol(name, spec, ns="default"):
    return {"metadata": {"name": name, "namespace": ns, "uid": f"np-{ns}-{name}"}, "spec": spec}


NAMESPACES = {"default": {"kubernetes.io/metadata.name": "default"},
              "team-a": {"kubernetes.io/metadata.name": "team-a", "team": "a"},
              "team-b": {"kubernetes.io/metadata.name": "team-b", "team": "b"}}

SERVER = pod("server", "10.99.0.10", {"app": "web"}, ports=[("http", 8080, "TCP"), ("dns", 53, "UDP")])
CLIENT = pod("client", "10.99.0.11", {"role": "client"})
OTHER = pod("other", "10.99.0.12", {"role": "other"})
A_CLIENT = pod("client", "10.99.0.21", {"role": "client"}, ns="team-a")
B_CLIENT = pod("client", "10.99.0.22", {"role": "client"}, ns="team-b")
PODS = [SERVER, CLIENT, OTHER, A_CLIENT, B_CLIENT]

DENY_INGRESS = netpol("deny", {"podSelector": {}, "policyTypes": ["Ingress"]})


def rules(target, *policies, pods=PODS):
    return ruleset(target, ClusterView(list(policies), list(pods), NAMESPACES, HOST))


def lines(text):
    return text.strip().splitlines()


def jumps_from(text, ip, main="SKUBE-INGRESS"):
    return [x for x in lines(text) if x.startswith(f"-A {main} ") and f" {ip}" in x]


def test_pods_no_policy_selects_are_not_isolated():
    assert rules(SERVER) == EMPTY_TABLE
    # a policy in another namespace, or selecting other labels, does not isolate
    assert rules(SERVER, netpol("x", {"podSelector": {}}, ns="team-a")) == EMPTY_TABLE
    assert rules(SERVER, netpol("x", {"podSelector": {"matchLabels": {"app": "db"}}})) == EMPTY_TABLE
    # a pod without an IP gets nothing either
    assert rules(pod("new", ""), DENY_INGRESS) == EMPTY_TABLE


def test_default_deny_ingress_rejects_all_but_replies_self_and_node():
    text = rules(SERVER, DENY_INGRESS)
    ls = lines(text)
    assert ls[0] == "*filter" and ls[-1] == "COMMIT"
    assert "-A INPUT -j SKUBE-INGRESS" in ls and "-A OUTPUT -j SKUBE-EGRESS" not in ls
    assert ls.index("-A SKUBE-INGRESS -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT") < \
        ls.index("-A SKUBE-INGRESS -p tcp -j REJECT --reject-with tcp-reset")
    assert "-A SKUBE-INGRESS -i lo -j ACCEPT" in ls
    assert f"-A SKUBE-INGRESS -s {HOST}/32 -j ACCEPT" in ls            # the node: probes
    assert "-A SKUBE-INGRESS -s 10.99.0.10/32 -j ACCEPT" in ls          # itself
    assert ls[-2] == "-A SKUBE-INGRESS -j REJECT --reject-with icmp-port-unreachable"
    assert not jumps_from(text, "10.99.0.11")


def test_allow_from_labelled_pods_on_a_port_is_added_to_the_deny():
    allow = netpol("allow-client", {
        "podSelector": {"matchLabels": {"app": "web"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
                     "ports": [{"port": 8080, "protocol": "TCP"}]}]})
    text = rules(SERVER, DENY_INGRESS, allow)
    ls = lines(text)
    # only the client of the policy's own namespace, into a chain that checks the port
    assert jumps_from(text, "10.99.0.11") == [
        '-A SKUBE-INGRESS -s 10.99.0.11/32 -m comment --comment "default/allow-client ingress[0]" -j SKUBE-I0']
    assert "-A SKUBE-I0 -p tcp -m tcp --dport 8080 -j ACCEPT" in ls
    assert not jumps_from(text, "10.99.0.12") and not jumps_from(text, "10.99.0.21")
    # the client pod itself is not selected by the web policy, nor by anything isolating it
    assert rules(CLIENT, allow) == EMPTY_TABLE


def test_namespace_selector_alone_and_and_combined_with_pod_selector():
    by_ns = netpol("ns", {"podSelector": {}, "ingress": [{"from": [
        {"namespaceSelector": {"matchLabels": {"team": "a"}}}]}]})
    text = rules(SERVER, by_ns)
    assert jumps_from(text, "10.99.0.21") and not jumps_from(text, "10.99.0.22")
    assert not jumps_from(text, "10.99.0.11")      # its own namespace does not carry team=a
    both = netpol("both", {"podSelector": {}, "ingress": [{"from": [
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"role": "client"}}}]}]})
    text = rules(SERVER, both)
    assert {x.split()[3] for x in lines(text) if x.startswith("-A SKUBE-INGRESS -s") and "-j SKUBE-I0" in x} == \
        {"10.99.0.11/32", "10.99.0.21/32", "10.99.0.22/32"}
    # two peers are an OR: team-b namespace, or role=other in the policy's namespace
    either = netpol("either", {"podSelector": {}, "ingress": [{"from": [
        {"namespaceSelector": {"matchLabels": {"team": "b"}}},
        {"podSelector": {"matchLabels": {"role": "other"}}}]}]})
    text = rules(SERVER, either)
    assert jumps_from(text, "10.99.0.22") and jumps_from(text, "10.99.0.12")
    assert not jumps_from(text, "10.99.0.11") and not jumps_from(text, "10.99.0.21")


def test_ip_block_with_except_uses_a_return_chain():
    blk = netpol("blk", {"podSelector": {}, "ingress": [{"from": [
        {"ipBlock": {"cidr": "10.99.0.0/24", "except": ["10.99.0.12/32"]}},
        {"ipBlock": {"cidr": "192.168.7.0/24"}}]}]})
    ls = lines(rules(SERVER, blk))
    assert '-A SKUBE-INGRESS -s 10.99.0.0/24 -m comment --comment "default/blk ingress[0]" -j SKUBE-I0-B0' in ls
    assert ls.index("-A SKUBE-I0-B0 -s 10.99.0.12/32 -j RETURN") < ls.index("-A SKUBE-I0-B0 -j SKUBE-I0")
    assert '-A SKUBE-INGRESS -s 192.168.7.0/24 -m comment --comment "default/blk ingress[0]" -j SKUBE-I0' in ls
    assert "-A SKUBE-I0 -j ACCEPT" in ls       # no ports: every port


def test_ports_ranges_protocols_and_named_ports():
    ports = netpol("ports", {"podSelector": {}, "ingress": [{"ports": [
        {"port": 9000, "endPort": 9010, "protocol": "TCP"},
        {"port": 5000, "protocol": "UDP"},
        {"protocol": "SCTP"},
        {"port": "http", "protocol": "TCP"},
        {"port": "dns", "protocol": "UDP"},
        {"port": "dns", "protocol": "TCP"}]}]})     # no TCP port named dns: matches nothing
    ls = lines(rules(SERVER, ports))
    chain = sorted(x for x in ls if x.startswith("-A SKUBE-I0 "))
    assert chain == sorted(["-A SKUBE-I0 -p tcp -m tcp --dport 9000:9010 -j ACCEPT",
                            "-A SKUBE-I0 -p udp -m udp --dport 5000 -j ACCEPT",
                            "-A SKUBE-I0 -p sctp -j ACCEPT",
                            "-A SKUBE-I0 -p tcp -m tcp --dport 8080 -j ACCEPT",
                            "-A SKUBE-I0 -p udp -m udp --dport 53 -j ACCEPT"])
    assert "-A SKUBE-INGRESS -m comment --comment \"default/ports ingress[0]\" -j SKUBE-I0" in ls


def test_a_rule_whose_named_ports_resolve_to_nothing_allows_nothing():
    named = netpol("named", {"podSelector": {}, "ingress": [{"ports": [{"port": "metrics", "protocol": "TCP"}]}]})
    ls = lines(rules(SERVER, named))
    assert not [x for x in ls if "SKUBE-I0" in x]
    assert ls[-2] == "-A SKUBE-INGRESS -j REJECT --reject-with icmp-port-unreachable"


def test_egress_rules_match_destinations_and_named_ports_of_the_destination_pods():
    eg = netpol("eg", {"podSelector": {"matchLabels": {"role": "client"}}, "egress": [
        {"to": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"port": "http", "protocol": "TCP"}]}]})
    assert policy_types(eg) == {"Ingress", "Egress"}     # defaulted: egress rules present
    text = rules(CLIENT, eg)
    ls = lines(text)
    assert "-A OUTPUT -j SKUBE-EGRESS" in ls and "-A INPUT -j SKUBE-INGRESS" in ls
    assert jumps_from(text, "10.99.0.10", "SKUBE-EGRESS") == [
        '-A SKUBE-EGRESS -d 10.99.0.10/32 -m comment --comment "default/eg egress[0]" -j SKUBE-E0']
    assert "-A SKUBE-E0 -d 10.99.0.10/32 -p tcp -m tcp --dport 8080 -j ACCEPT" in ls
    assert f"-A SKUBE-EGRESS -d {HOST}/32 -j ACCEPT" in ls
    assert "-A SKUBE-EGRESS -o lo -j ACCEPT" in ls
    # ingress isolated by the defaulted type, with no ingress rule: everything rejected
    assert not [x for x in ls if "SKUBE-I0" in x]
    assert len([x for x in ls if x.startswith("-A SKUBE-INGRESS ")]) == 6   # always-allowed + 2 REJECTs


def test_egress_only_policy_leaves_ingress_open_and_policies_add_up():
    deny_eg = netpol("deny-eg", {"podSelector": {}, "policyTypes": ["Egress"]})
    ls = lines(rules(CLIENT, deny_eg))
    assert "-A INPUT -j SKUBE-INGRESS" not in ls and "-A OUTPUT -j SKUBE-EGRESS" in ls
    dns = netpol("dns", {"podSelector": {}, "policyTypes": ["Egress"],
                         "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]})
    web = netpol("web", {"podSelector": {}, "policyTypes": ["Egress"],
                         "egress": [{"to": [{"ipBlock": {"cidr": "10.99.0.10/32"}}]}]})
    ls = lines(rules(CLIENT, deny_eg, dns, web))
    assert "-A SKUBE-E0 -p udp -m udp --dport 53 -j ACCEPT" in ls
    assert '-A SKUBE-EGRESS -m comment --comment "default/dns egress[0]" -j SKUBE-E0' in ls
    assert '-A SKUBE-EGRESS -d 10.99.0.10/32 -m comment --comment "default/web egress[0]" -j SKUBE-E1' in ls


def test_finished_and_unaddressed_pods_are_not_peers():
    done = pod("done", "10.99.0.30", {"role": "client"}, phase="Succeeded")
    pending = pod("pending", "", {"role": "client"})
    allow = netpol("a", {"podSelector": {}, "ingress": [
        {"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]})
    text = rules(SERVER, allow, pods=PODS + [done, pending])
    assert not jumps_from(text, "10.99.0.30")
    assert jumps_from(text, "10.99.0.11")


def test_empty_ingress_rule_allows_everything_from_everywhere():
    allow_all = netpol("all", {"podSelector": {}, "ingress": [{}]})
    ls = lines(rules(SERVER, DENY_INGRESS, allow_all))
    assert '-A SKUBE-INGRESS -m comment --comment "default/all ingress[0]" -j SKUBE-I0' in ls
    assert "-A SKUBE-I0 -j ACCEPT" in ls


@pytest.fixture
def scratch_netns():
    name = f"skube-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    yield name
    subprocess.run(["ip", "netns", "delete", name], check=True)


def test_generated_text_is_accepted_by_real_iptables_restore(scratch_netns):
    every = netpol("every", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [
        {"from": [{"ipBlock": {"cidr": "10.99.0.0/24", "except": ["10.99.0.12/32"]}},
                  {"podSelector": {}}],
         "ports": [{"port": 9000, "endPort": 9010, "protocol": "TCP"}, {"protocol": "SCTP"},
                   {"port": 5000, "protocol": "SCTP"}, {"port": "dns", "protocol": "UDP"}]}],
        "egress": [{"to": [{"namespaceSelector": {}}], "ports": [{"port": "http", "protocol": "TCP"}]}]})
    text = rules(SERVER, every)
    res = subprocess.run(["ip", "netns", "exec", scratch_netns, "iptables-restore"], input=text,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr + text
    saved = subprocess.run(["ip", "netns", "exec", scratch_netns, "iptables-save", "-t", "filter"],
                           capture_output=True, text=True, check=True).stdout
    assert "-A SKUBE-I0-B0 -s 10.99.0.12/32 -j RETURN" in saved
    assert "--dport 9000:9010" in saved and "-p sctp -m sctp --dport 5000" in saved
    # the empty table removes it all again
    subprocess.run(["ip", "netns", "exec", scratch_netns, "iptables-restore"], input=EMPTY_TABLE,
                   text=True, check=True)
    saved = subprocess.run(["ip", "netns", "exec", scratch_netns, "iptables-save", "-t", "filter"],
                           capture_output=True, text=True, check=True).stdout
    assert "SKUBE" not in saved


def test_egress_to_a_cluster_ip_is_allowed_when_a_backend_is():
    """The pod sends to the ClusterIP (the host translates it later), so an egress rule
    allowing a Service's backend on its target port allows the ClusterIP and service port."""
    svc = {"metadata": {"name": "web", "namespace": "default"},
           "spec": {"clusterIP": "10.99.1.20", "clusterIPs": ["10.99.1.20"],
                    "ports": [{"name": "web", "port": 80, "protocol": "TCP", "targetPort": "http"},
                              {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53}]}}
    headless = {"metadata": {"name": "direct", "namespace": "default"},
                "spec": {"clusterIP": "None", "ports": [{"name": "web", "port": 80, "protocol": "TCP"}]}}
    slice_ = {"metadata": {"name": "web-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
              "addressType": "IPv4", "ports": [{"name": "web", "port": 8080, "protocol": "TCP"},
                                                {"name": "dns", "port": 53, "protocol": "UDP"}],
              "endpoints": [{"addresses": ["10.99.0.10"]}]}
    to_web = netpol("to-web", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [
        {"to": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"port": "http", "protocol": "TCP"}]}]})
    view = ClusterView([to_web], PODS, NAMESPACES, HOST, [svc, headless], [slice_])
    ls = lines(ruleset(CLIENT, view))
    assert '-A SKUBE-EGRESS -d 10.99.1.20/32 -p tcp -m tcp --dport 80 -m comment --comment ' \
           '"default/to-web egress[0]" -j ACCEPT' in ls
    assert not [x for x in ls if "--dport 53" in x]           # the rule does not allow the UDP port
    # a rule for other pods does not open the Service
    to_other = netpol("to-other", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [
        {"to": [{"podSelector": {"matchLabels": {"role": "other"}}}]}]})
    view = ClusterView([to_other], PODS, NAMESPACES, HOST, [svc], [slice_])
    assert not [x for x in lines(ruleset(CLIENT, view)) if "10.99.1.20" in x]
