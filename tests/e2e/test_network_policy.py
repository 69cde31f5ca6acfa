"""NetworkPolicy on `skube up` with real containers: a busybox httpd server and client pods
in three namespaces; default deny, allow by pod label and port, by namespace, by ipBlock,
by named port, egress deny and allow; through a ClusterIP as well once Services answer.
And the egress option: ``defaultRoute: true`` gives pods a default route and masquerade."""
from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import wait_for
from tests.e2e.test_up import IMAGE, no_pods_left, remove_bridge, start_up

NET = 6            # this module's pod network slots (see start_up): 6, and 9 for the route test
ROUTE_NET = 9


def pod_manifest(name: str, ns: str, labels: dict, command: str, ports: list | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                "name": "main", "image": IMAGE, "command": ["sh", "-c", command], "ports": ports or []}]}}


def netpol(name: str, ns: str, spec: dict) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def apply(c, *objs: dict) -> None:
    c.kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in objs))


def reach(c, ns: str, pod: str, ip: str, port: int) -> bool:
    """Does an HTTP request from ``pod`` to ip:port get an answer?"""
    res = c.kubectl("-n", ns, "exec", pod, "--", "sh", "-c",
                    f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} {port}", check=False, timeout=30)
    return "HTTP/1." in res.stdout


def resolves(c, ns: str, pod: str, name: str) -> bool:
    """Does cluster DNS answer ``name`` for ``pod`` (busybox nslookup, one short try)?"""
    res = c.kubectl("-n", ns, "exec", pod, "--", "timeout", "3", "nslookup", name, check=False, timeout=30)
    return res.returncode == 0 and "Address" in res.stdout.split("Name:", 1)[-1]


def host_reaches(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=2) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.")
    except OSError:
        return False


def sandboxes_gone(c) -> bool:
    """Every pod of the cluster deleted and its network namespace removed from the host."""
    uids = [p["metadata"]["uid"] for p in c.kubectl_json("get", "pods", "-A")["items"]]
    c.kubectl("delete", "pods", "--all", "-A", "--wait=false", check=False)
    wait_for(lambda: no_pods_left(c), timeout=90, message="every pod gone")
    wait_for(lambda: not any(Path(f"/run/netns/skube-{u}").exists() for u in uids), timeout=30,
             message="pod network namespaces removed")
    return True


def pod_ips(c) -> dict[str, str]:
    return {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p["status"].get("podIP", "")
            for p in c.kubectl_json("get", "pods", "-A")["items"] if p["status"].get("phase") == "Running"}


def test_network_policy_with_real_pods(tmp_path):
    c = start_up(tmp_path / "cluster", net=NET)
    cluster_ip_checked = False
    try:
        c.kubectl("create", "namespace", "friends")
        c.kubectl("label", "namespace", "friends", "team=friend")
        c.kubectl("create", "namespace", "foes")
        server = "httpd -p 9090 -h /www; exec httpd -f -p 8080 -h /www"
        idle = "exec sleep 3600"
        apply(c,
              pod_manifest("server", "default", {"app": "web"}, server,
                           [{"name": "http", "containerPort": 8080}, {"name": "admin", "containerPort": 9090}]),
              pod_manifest("client", "default", {"role": "client"}, idle),
              pod_manifest("stranger", "default", {}, idle),
              pod_manifest("friend", "friends", {}, idle),
              pod_manifest("foe", "foes", {}, idle),
              {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
               "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}})
        wait_for(lambda: len(pod_ips(c)) == 5, timeout=120, message="five pods Running")
        ips = pod_ips(c)
        srv = ips["default/server"]
        cluster_ip = c.kubectl_json("get", "service", "web")["spec"]["clusterIP"]

        # no policy: everyone gets in
        for ns, name in (("default", "client"), ("default", "stranger"), ("friends", "friend"), ("foes", "foe")):
            wait_for(lambda: reach(c, ns, name, srv, 8080), timeout=30, message=f"{name} reaches server")
        via_service = reach(c, "default", "client", cluster_ip, 80)   # the service proxy may not exist yet
        dns_answers = resolves(c, "friends", "friend", "web.default.svc.cluster.local")
        print(f"ClusterIP {cluster_ip} answers before any policy: {via_service}; cluster DNS: {dns_answers}")

        # bad policies are refused with upstream's messages
        bad = c.kubectl("apply", "-f", "-", check=False, input=json.dumps(netpol("bad", "default", {
            "podSelector": {}, "ingress": [{"from": [{}], "ports": [{"port": 70000}]}]})))
        assert bad.returncode != 0
        assert "spec.ingress[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive" \
            in bad.stderr, bad.stderr
        assert "spec.ingress[0].from[0]: Required value: must specify a peer" in bad.stderr

        # default deny ingress for every pod of default
        apply(c, netpol("deny-ingress", "default", {"podSelector": {}, "policyTypes": ["Ingress"]}))
        wait_for(lambda: not reach(c, "default", "client", srv, 8080), timeout=30, message="client blocked")
        assert not reach(c, "default", "stranger", srv, 9090)
        assert not reach(c, "foes", "foe", srv, 8080)
        assert host_reaches(srv, 8080), "the node (kubelet probes) is always allowed in"
        assert reach(c, "default", "server", srv, 8080), "a pod cannot block itself"
        if via_service:
            assert not reach(c, "default", "client", cluster_ip, 80), "the ClusterIP must not bypass the policy"
            cluster_ip_checked = True

        # allow pods labelled role=client, on port 8080 only
        apply(c, netpol("allow-client", "default", {
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
                         "ports": [{"port": 8080}]}]}))
        wait_for(lambda: reach(c, "default", "client", srv, 8080), timeout=30, message="client allowed again")
        listed = c.kubectl("get", "networkpolicy").stdout
        assert "POD-SELECTOR" in listed and "app=web" in listed, listed
        assert not reach(c, "default", "client", srv, 9090), "another port stays closed"
        assert not reach(c, "default", "stranger", srv, 8080), "a pod without the label stays blocked"
        if via_service:
            assert reach(c, "default", "client", cluster_ip, 80)
        # the label is what counts: give the stranger the label, then take it away
        c.kubectl("label", "pod", "stranger", "role=client")
        wait_for(lambda: reach(c, "default", "stranger", srv, 8080), timeout=30, message="labelled stranger allowed")
        c.kubectl("label", "pod", "stranger", "role-")
        wait_for(lambda: not reach(c, "default", "stranger", srv, 8080), timeout=30, message="unlabelled blocked")

        # namespaceSelector: the namespace labelled team=friend, not foes
        apply(c, netpol("allow-friends", "default", {
            "podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "friend"}}}]}]}))
        wait_for(lambda: reach(c, "friends", "friend", srv, 9090), timeout=30, message="friend allowed")
        assert not reach(c, "foes", "foe", srv, 8080)
        c.kubectl("label", "namespace", "foes", "team=friend")
        wait_for(lambda: reach(c, "foes", "foe", srv, 8080), timeout=30, message="relabelled namespace allowed")
        c.kubectl("label", "namespace", "foes", "team-")
        wait_for(lambda: not reach(c, "foes", "foe", srv, 8080), timeout=30, message="namespace label removed")

        # ipBlock with except: the pod network but the stranger
        cidr = str(ipaddress.ip_network(srv + "/24", strict=False))
        apply(c, netpol("allow-block", "default", {"podSelector": {}, "ingress": [{"from": [
            {"ipBlock": {"cidr": cidr, "except": [ips["default/stranger"] + "/32"]}}]}]}))
        wait_for(lambda: reach(c, "foes", "foe", srv, 8080), timeout=30, message="foe allowed by ipBlock")
        assert not reach(c, "default", "stranger", srv, 8080), "the excepted address stays blocked"
        c.kubectl("delete", "networkpolicy", "allow-block")

        # a named port, from anywhere: port "admin" is 9090 in the server pod
        apply(c, netpol("allow-admin", "default", {"podSelector": {"matchLabels": {"app": "web"}},
                                                   "ingress": [{"ports": [{"port": "admin"}]}]}))
        wait_for(lambda: reach(c, "default", "stranger", srv, 9090), timeout=30, message="named port open")
        assert not reach(c, "default", "stranger", srv, 8080)
        c.kubectl("delete", "networkpolicy", "allow-admin")
        wait_for(lambda: not reach(c, "default", "stranger", srv, 9090), timeout=30, message="named port closed")

        # egress: deny everything out of friends, then allow the web pods on their "http" port
        assert reach(c, "friends", "friend", srv, 8080)
        apply(c, netpol("deny-egress", "friends", {"podSelector": {}, "policyTypes": ["Egress"]}))
        wait_for(lambda: not reach(c, "friends", "friend", srv, 8080), timeout=30, message="egress denied")
        if via_service:
            assert not reach(c, "friends", "friend", cluster_ip, 80)
        if dns_answers:     # no implicit DNS: it needs a rule, here to kube-dns's endpoint (the node)
            assert not resolves(c, "friends", "friend", "web.default.svc.cluster.local")
            gateway = str(ipaddress.ip_network(cidr)[1])
            apply(c, netpol("allow-dns", "friends", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [
                {"to": [{"ipBlock": {"cidr": gateway + "/32"}}],
                 "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]}))
            wait_for(lambda: resolves(c, "friends", "friend", "web.default.svc.cluster.local"), timeout=30,
                     message="DNS allowed by an egress rule")
        apply(c, netpol("allow-web", "friends", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [
            {"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "web"}}}],
             "ports": [{"port": "http", "protocol": "TCP"}]}]}))
        wait_for(lambda: reach(c, "friends", "friend", srv, 8080), timeout=30, message="egress allowed to server")
        assert not reach(c, "friends", "friend", srv, 9090), "egress to another port stays denied"
        if via_service:     # the Service's backend is allowed, so its ClusterIP is
            assert reach(c, "friends", "friend", cluster_ip, 80)
        # egress by ipBlock instead
        apply(c, netpol("allow-web", "friends", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [
            {"to": [{"ipBlock": {"cidr": srv + "/32"}}], "ports": [{"port": 9090}]}]}))
        wait_for(lambda: reach(c, "friends", "friend", srv, 9090), timeout=30, message="egress by ipBlock")
        assert not reach(c, "friends", "friend", srv, 8080)

        # deleting the policies opens everything again
        c.kubectl("delete", "networkpolicy", "--all", "-n", "default")
        c.kubectl("delete", "networkpolicy", "--all", "-n", "friends")
        wait_for(lambda: reach(c, "default", "stranger", srv, 9090), timeout=30, message="policies gone")
        assert reach(c, "friends", "friend", srv, 9090)

        # the ClusterIP part, when the service proxy came up only during the test
        if not cluster_ip_checked:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not reach(c, "default", "client", cluster_ip, 80):
                time.sleep(1)
            if reach(c, "default", "client", cluster_ip, 80):
                apply(c, netpol("deny-ingress", "default", {"podSelector": {}, "policyTypes": ["Ingress"]}))
                wait_for(lambda: not reach(c, "default", "client", srv, 8080), timeout=30, message="blocked")
                assert not reach(c, "default", "client", cluster_ip, 80), "the ClusterIP must not bypass the policy"
                print("network policy checked through the ClusterIP as well")
            else:
                print("ClusterIP Services do not answer yet: the policy was checked by pod IP only")
    finally:
        if c.proc.poll() is None:
            c.kubectl("delete", "networkpolicy", "--all", "-A", check=False)
            c.kubectl("delete", "service", "web", check=False)
            sandboxes_gone(c)
            c.kubectl("delete", "namespace", "friends", "foes", "--wait=false", check=False)
        assert c.stop() == 0, c.log.read_text()
        remove_bridge(c)


def test_default_route_option_gives_pods_a_route_out_and_masquerade(tmp_path):
    """Only inspected, never used: no traffic leaves the host."""
    c = start_up(tmp_path / "cluster", net=ROUTE_NET, network_extra="  defaultRoute: true\n")
    try:
        apply(c, pod_manifest("out", "default", {}, "exec sleep 3600"))
        wait_for(lambda: "default/out" in pod_ips(c), timeout=120, message="pod Running")
        ip = pod_ips(c)["default/out"]
        gateway = str(ipaddress.ip_network(ip + "/24", strict=False)[1])
        routes = c.kubectl("exec", "out", "--", "ip", "route").stdout
        assert f"default via {gateway}" in routes, routes
        nat = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True, check=True).stdout
        chains = [line.split()[-1] for line in nat.splitlines()
                  if line.startswith("-A POSTROUTING") and f"-s {ip}/32" in line]
        assert chains, nat
        assert any(line.startswith(f"-A {chains[0]} ") and "MASQUERADE" in line for line in nat.splitlines()), nat
    finally:
        if c.proc.poll() is None:
            sandboxes_gone(c)
        assert c.stop() == 0, c.log.read_text()
        remove_bridge(c)
    nat = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True, check=True).stdout
    assert f"-s {ip}/32" not in nat, "the masquerade rule goes with the pod"


def test_enforcer_restores_only_the_pods_whose_rules_change(cluster, tmp_path):
    """PolicyEnforcer against a real API server, on real network namespaces named like pod
    sandboxes: one iptables-restore per pod whose table changed, none for other updates."""
    from skube.client import Client, resource
    from skube.network.config import ClusterNetwork
    from skube.network.policy import EMPTY_TABLE, PolicyEnforcer
    from tests.e2e.test_client_informer import run, until

    pods_r = resource("v1", "pods", kind="Pod")
    netpols = resource("networking.k8s.io/v1", "networkpolicies", kind="NetworkPolicy")
    ns = "np-enforcer"
    made: list[str] = []

    def iptables_save(uid: str) -> str:
        return subprocess.run(["ip", "netns", "exec", f"skube-{uid}", "iptables-save", "-t", "filter"],
                              capture_output=True, text=True, check=True).stdout

    async def main():
        async with Client.from_kubeconfig(str(cluster.kubeconfig), component="np-test") as client:
            await client.create(resource("v1", "namespaces", namespaced=False, kind="Namespace"),
                                {"metadata": {"name": ns}})
            uids = {}
            for i, name in enumerate(("a", "b", "elsewhere")):
                pod = await client.create(pods_r, pod_manifest(name, ns, {"app": name}, "true"), ns)
                pod["status"] = {"phase": "Running", "podIP": f"10.250.0.{i + 2}",
                                 "podIPs": [{"ip": f"10.250.0.{i + 2}"}]}
                await client.update_status(pods_r, pod, ns)
                uids[name] = pod["metadata"]["uid"]
            for name in ("a", "b"):      # "elsewhere" has no network namespace on this host
                subprocess.run(["ip", "netns", "add", f"skube-{uids[name]}"], check=True)
                made.append(f"skube-{uids[name]}")
            enforcer = PolicyEnforcer(client, ClusterNetwork(pod_cidr="10.250.0.0/24"))
            stop = asyncio.Event()
            task = asyncio.create_task(enforcer.run(stop))
            try:
                # first sync: every local pod gets its (empty) table once
                await until(lambda: enforcer.restores == 2, message="first sync")
                assert set(enforcer.applied) == {uids["a"], uids["b"]}
                # a policy isolating a: only a's table changes
                await client.create(netpols, netpol("clients-into-a", ns, {
                    "podSelector": {"matchLabels": {"app": "a"}},
                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]}), ns)
                await until(lambda: enforcer.restores == 3, message="a isolated")
                assert enforcer.applied[uids["b"]] == EMPTY_TABLE
                saved = iptables_save(uids["a"])
                assert "-A INPUT -j SKUBE-INGRESS" in saved and "REJECT" in saved
                assert "10.250.0.3" not in saved
                # an update the rules do not depend on restores nothing; then b becomes a
                # client: a's table changes (one restore), b's does not
                b = await client.get(pods_r, "b", ns)
                b["metadata"].setdefault("annotations", {})["note"] = "irrelevant"
                await client.update(pods_r, b, ns)
                b = await client.get(pods_r, "b", ns)
                b["metadata"]["labels"]["role"] = "client"
                await client.update(pods_r, b, ns)
                await until(lambda: "10.250.0.3/32" in enforcer.applied[uids["a"]], message="b allowed into a")
                assert enforcer.restores == 4
                assert "-A SKUBE-INGRESS -s 10.250.0.3/32" in iptables_save(uids["a"])
                # deleting the policy opens a again
                await client.delete(netpols, "clients-into-a", ns)
                await until(lambda: enforcer.applied[uids["a"]] == EMPTY_TABLE, message="a open")
                assert "SKUBE" not in iptables_save(uids["a"])
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)
                await client.delete(resource("v1", "namespaces", namespaced=False, kind="Namespace"), ns)

    try:
        run(main(), 90)
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)
