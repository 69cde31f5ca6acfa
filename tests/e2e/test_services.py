"""Services on `skube up` with real containers: ClusterIP / NodePort allocation through
kubectl, the iptables service proxy (load spreading, scaling, readiness, session affinity,
UDP, NodePort and LoadBalancer on 127.0.0.1), the `kubernetes` Service from a pod,
service environment variables, `kubectl port-forward svc/…`, and clean removal of the
cluster's chains when it stops."""
from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import BIN, free_port, wait_for
from tests.e2e.test_up import IMAGE, no_pods_left, remove_bridge, start_up

NET = 5        # start_up's network slot for this file (bridge, CIDRs and node ports of its own)

UDP_SERVER = ("import socket,sys\n"
              "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('0.0.0.0',5353))\n"
              "print('listening',flush=True)\n"
              "while True:\n"
              "    d,a=s.recvfrom(512); s.sendto(b'udp from '+sys.argv[1].encode()+b': '+d,a)\n")


def web(replicas: int) -> str:
    """busybox httpd answering with its pod's hostname on the named port `http`."""
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "httpd", "image": IMAGE,
                                     "command": ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && "
                                                             "exec httpd -f -p 8080 -h /www"],
                                     "ports": [{"name": "http", "containerPort": 8080}],
                                     "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}}})


def pod(name: str, labels: dict, command: str, ready_cmd: list | None = None) -> str:
    c = {"name": "c", "image": IMAGE, "command": ["sh", "-c", command],
         "ports": [{"name": "http", "containerPort": 8080}]}
    if ready_cmd:
        c["readinessProbe"] = {"exec": {"command": ready_cmd}, "periodSeconds": 1}
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
                       "spec": {"terminationGracePeriodSeconds": 1, "containers": [c]}})


def http_from_pod(c, ip: str, port: int) -> str:
    """The body's last line of GET / from the `client` pod (busybox nc; '' when refused)."""
    res = c.kubectl("exec", "client", "--", "sh", "-c",
                    f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} {port}", check=False)
    lines = res.stdout.strip().splitlines()
    return lines[-1].strip() if res.returncode == 0 and lines else ""


def http_from_host(url: str) -> str:
    with urllib.request.urlopen(url, timeout=3) as r:
        return r.read().decode().strip()


def answers(c, ip: str, port: int, n: int) -> list[str]:
    return [http_from_pod(c, ip, port) for _ in range(n)]


def backends(c) -> set[str]:
    return {p["metadata"]["name"] for p in c.kubectl_json("get", "pods", "-l", "app=web")["items"]
            if not p["metadata"].get("deletionTimestamp")}


def netns(c, name: str) -> str:
    return "skube-" + c.kubectl_json("get", "pod", name)["metadata"]["uid"]


def udp_ask(ns: str, ip: str, port: int) -> str:
    """One UDP request from inside network namespace ``ns`` ('' when nothing answers)."""
    code = ("import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(1)\n"
            f"s.sendto(b'ping',('{ip}',{port}))\n"
            "try: print(s.recv(512).decode())\nexcept OSError: pass\n")
    res = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code],
                         capture_output=True, text=True, timeout=10)
    return res.stdout.strip()


def rules(prefix: str) -> str:
    """This cluster's lines of the host's nat and filter tables."""
    out = "".join(subprocess.run(["iptables", "-w", "-t", t, "-S"], capture_output=True, text=True).stdout
                  for t in ("nat", "filter"))
    return "\n".join(line for line in out.splitlines() if prefix + "-" in line)


def test_services_end_to_end(tmp_path):
    data = tmp_path / "cluster"
    c = start_up(data, net=NET)
    k = int(c.bridge[4:])
    svc_net = ipaddress.ip_network(f"10.{160 + k}.1.0/24")
    lo_port = 30000 + 100 * k
    prefix = "SKUBE-" + c.bridge.upper()
    udp_server = None
    try:
        # ---- allocation through kubectl ----------------------------------------------------
        kube = c.kubectl_json("get", "service", "kubernetes")
        assert kube["spec"]["clusterIP"] == str(svc_net[1])
        fixed = str(svc_net[12])        # in the static band: dynamic allocation stays above .16
        c.kubectl("create", "service", "clusterip", "fixed", "--tcp=80:8080", f"--clusterip={fixed}")
        assert c.kubectl_json("get", "service", "fixed")["spec"]["clusterIPs"] == [fixed]
        dup = c.kubectl("create", "service", "clusterip", "dup", "--tcp=80:8080", f"--clusterip={fixed}",
                        check=False)
        assert dup.returncode != 0 and "provided IP is already allocated" in dup.stderr, dup.stderr
        out = c.kubectl("create", "service", "clusterip", "far", "--tcp=80:8080", "--clusterip=192.168.7.7",
                        check=False)
        assert "is not in the valid range" in out.stderr and str(svc_net) in out.stderr, out.stderr
        c.kubectl("create", "service", "nodeport", "np", "--tcp=80:8080", f"--node-port={lo_port + 7}")
        dup = c.kubectl("create", "service", "nodeport", "np2", "--tcp=80:8080", f"--node-port={lo_port + 7}",
                        check=False)
        assert "provided port is already allocated" in dup.stderr, dup.stderr
        # ClusterIP -> NodePort allocates a port in range; back to ClusterIP releases it
        c.kubectl("patch", "service", "fixed", "-p", '{"spec":{"type":"NodePort"}}')
        got = c.kubectl_json("get", "service", "fixed")["spec"]
        assert got["clusterIP"] == fixed and lo_port <= got["ports"][0]["nodePort"] <= lo_port + 99
        c.kubectl("patch", "service", "fixed", "-p", '{"spec":{"type":"ClusterIP"}}')
        assert "nodePort" not in c.kubectl_json("get", "service", "fixed")["spec"]["ports"][0]
        bad = c.kubectl("patch", "service", "fixed", "-p", json.dumps({"spec": {"clusterIP": str(svc_net[13]),
                                                                                "clusterIPs": [str(svc_net[13])]}}),
                        check=False)
        assert "may not change once set" in bad.stderr, bad.stderr
        c.kubectl("delete", "service", "fixed", "np")
        c.kubectl("create", "service", "clusterip", "again", "--tcp=80:8080", f"--clusterip={fixed}")
        with ThreadPoolExecutor(8) as pool:          # concurrent creates never share an address
            list(pool.map(lambda i: c.kubectl("create", "service", "nodeport", f"par{i}", "--tcp=80:8080"),
                          range(8)))
        made = [c.kubectl_json("get", "service", f"par{i}")["spec"] for i in range(8)]
        assert len({m["clusterIP"] for m in made}) == 8 and len({m["ports"][0]["nodePort"] for m in made}) == 8
        c.kubectl("delete", "service", *[f"par{i}" for i in range(8)])

        # ---- a 3-replica backend behind a Service (named targetPort), a client pod ----------
        c.kubectl("apply", "-f", "-", input=web(3))
        c.kubectl("expose", "deployment", "web", "--port=80", "--target-port=http")
        c.kubectl("apply", "-f", "-", input=pod("client", {"role": "client"}, "sleep 3600"))
        c.kubectl("rollout", "status", "deployment/web", "--timeout=120s")
        c.kubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=90s")
        ip = c.kubectl_json("get", "service", "web")["spec"]["clusterIP"]
        assert ipaddress.ip_address(ip) in svc_net
        three = backends(c)
        seen: set[str] = set()
        wait_for(lambda: seen.update(answers(c, ip, 80, 3)) or seen >= three, timeout=60,
                 message="every replica answering through the ClusterIP")
        assert seen - {""} <= three | {""} and three <= seen
        assert http_from_host(f"http://{ip}/") in three                     # the host, by ClusterIP
        # service environment variables, and the `kubernetes` Service from a pod (TLS, verified)
        env = c.kubectl("exec", "client", "--", "env").stdout
        assert f"KUBERNETES_SERVICE_HOST={svc_net[1]}" in env and "KUBERNETES_SERVICE_PORT=443" in env
        assert "KUBERNETES_PORT_443_TCP_PROTO=tcp" in env
        c.kubectl("apply", "-f", "-", input=pod("late", {}, "sleep 3600"))
        c.kubectl("wait", "--for=condition=Ready", "pod/late", "--timeout=90s")
        env = c.kubectl("exec", "late", "--", "env").stdout
        assert f"WEB_SERVICE_HOST={ip}" in env and "WEB_SERVICE_PORT=80" in env
        assert f"WEB_PORT_80_TCP=tcp://{ip}:80" in env and f"WEB_PORT_80_TCP_ADDR={ip}" in env
        # the pod's own mounted service-account token and CA bundle
        c.kubectl("create", "role", "svc-reader", "--verb=get", "--resource=services")
        c.kubectl("create", "rolebinding", "svc-reader", "--role=svc-reader", "--serviceaccount=default:default")
        sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount"
        token = c.kubectl("exec", "client", "--", "cat", f"{sa_dir}/token").stdout.strip()
        (tmp_path / "pod-ca.crt").write_text(c.kubectl("exec", "client", "--", "cat", f"{sa_dir}/ca.crt").stdout)
        api = subprocess.run(["ip", "netns", "exec", netns(c, "client"), "curl", "-sS", "-m", "5",
                              "--cacert", str(tmp_path / "pod-ca.crt"), "-H", f"Authorization: Bearer {token}",
                              f"https://{svc_net[1]}/api/v1/namespaces/default/services/web"],
                             capture_output=True, text=True)
        assert json.loads(api.stdout)["spec"]["clusterIP"] == ip, api.stdout + api.stderr

        # ---- scaling changes who answers ---------------------------------------------------
        c.kubectl("scale", "deployment/web", "--replicas=1")
        wait_for(lambda: len(backends(c)) == 1, timeout=60, message="one replica left")
        (only,) = backends(c)
        wait_for(lambda: set(answers(c, ip, 80, 6)) == {only}, timeout=60, message="only the last replica answers")
        c.kubectl("scale", "deployment/web", "--replicas=2")
        c.kubectl("rollout", "status", "deployment/web", "--timeout=90s")
        two = backends(c)
        seen = set()
        wait_for(lambda: seen.update(answers(c, ip, 80, 3)) or seen >= two, timeout=60,
                 message="the new replica answering")

        # ---- a pod failing readiness gets no traffic -----------------------------------------
        c.kubectl("apply", "-f", "-", input=pod(
            "unready", {"app": "web"}, "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www",
            ready_cmd=["false"]))
        wait_for(lambda: phase_running(c, "unready"), timeout=60, message="unready pod running")
        wait_for(lambda: any(e.get("targetRef", {}).get("name") == "unready"
                             and e["conditions"].get("ready") is False
                             for s in c.kubectl_json("get", "endpointslices", "-l",
                                                     "kubernetes.io/service-name=web")["items"]
                             for e in s.get("endpoints") or []), timeout=30,
                 message="the unready pod listed as not ready")
        unready_ip = c.kubectl_json("get", "pod", "unready")["status"]["podIP"]
        assert http_from_pod(c, unready_ip, 8080) == "unready"          # it does serve, directly
        got = answers(c, ip, 80, 12)
        assert "unready" not in got and set(got) <= two, got

        # ---- sessionAffinity: ClientIP sticks --------------------------------------------------
        c.kubectl("patch", "service", "web", "-p", '{"spec":{"sessionAffinity":"ClientIP"}}')
        assert c.kubectl_json("get", "service", "web")["spec"]["sessionAffinityConfig"] == \
            {"clientIP": {"timeoutSeconds": 10800}}
        wait_for(lambda: "--rcheck --seconds 10800" in rules(prefix), timeout=10, message="affinity rules")
        got = answers(c, ip, 80, 10)
        assert len(set(got)) == 1 and got[0] in two, got

        # ---- UDP ---------------------------------------------------------------------------
        c.kubectl("apply", "-f", "-", input=pod("udp", {"app": "udp"}, "sleep 3600"))
        c.kubectl("wait", "--for=condition=Ready", "pod/udp", "--timeout=90s")
        c.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo"},
            "spec": {"selector": {"app": "udp"}, "ports": [{"name": "dns", "port": 53, "targetPort": 5353,
                                                             "protocol": "UDP"}]}}))
        udp_server = subprocess.Popen(["ip", "netns", "exec", netns(c, "udp"), sys.executable, "-c", UDP_SERVER,
                                       "udp"], stdout=subprocess.PIPE, text=True)
        assert udp_server.stdout.readline().strip() == "listening"
        echo_ip = c.kubectl_json("get", "service", "echo")["spec"]["clusterIP"]
        client_ns = netns(c, "client")
        assert wait_for(lambda: udp_ask(client_ns, echo_ip, 53), timeout=30,
                        message="a UDP answer through the ClusterIP") == "udp from udp: ping"

        # ---- NodePort and LoadBalancer on 127.0.0.1 ----------------------------------------
        c.kubectl("patch", "service", "web", "-p", '{"spec":{"type":"NodePort","sessionAffinity":"None"}}')
        node_port = c.kubectl_json("get", "service", "web")["spec"]["ports"][0]["nodePort"]
        assert lo_port <= node_port <= lo_port + 99
        assert wait_for(lambda: try_host(f"http://127.0.0.1:{node_port}/"), timeout=30,
                        message="the NodePort answering on 127.0.0.1") in two
        c.kubectl("expose", "deployment", "web", "--name=web-lb", "--type=LoadBalancer", "--port=8081",
                  "--target-port=http")
        lb = wait_for(lambda: (c.kubectl_json("get", "service", "web-lb").get("status") or {})
                      .get("loadBalancer", {}).get("ingress"), timeout=30, message="LoadBalancer ingress")
        assert lb == [{"ip": "127.0.0.1", "ipMode": "VIP"}]
        lb_port = c.kubectl_json("get", "service", "web-lb")["spec"]["ports"][0]["nodePort"]
        assert wait_for(lambda: try_host(f"http://127.0.0.1:{lb_port}/"), timeout=30,
                        message="the LoadBalancer's node port answering") in two
        assert "127.0.0.1" in c.kubectl("get", "service", "web-lb").stdout         # EXTERNAL-IP column

        # ---- a Service without endpoints refuses at once -------------------------------------
        c.kubectl("create", "service", "clusterip", "empty", "--tcp=80:8080")
        empty_ip = c.kubectl_json("get", "service", "empty")["spec"]["clusterIP"]
        wait_for(lambda: refused(empty_ip, 80), timeout=30, message="connection refused by an empty service")

        # ---- kubectl port-forward svc/web ---------------------------------------------------
        local = free_port()
        pf = subprocess.Popen([str(BIN / "kubectl"), "--kubeconfig", str(c.kubeconfig), "port-forward",
                               "svc/web", f"{local}:80"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert wait_for(lambda: try_host(f"http://127.0.0.1:{local}/"), timeout=30,
                            message="port-forward to svc/web") in two
        finally:
            pf.terminate()
            pf.wait(10)

        # ---- a restart after kill -9 rebuilds the rules in full; a clean stop removes them --------
        c.proc.kill()
        c.proc.wait()
        stale = f"{prefix}-SVC-STALE"       # as if a service had gone while nothing watched
        subprocess.run(["iptables", "-w", "-t", "nat", "-N", stale], check=True)
        c = start_up(data, c.port, net=NET)
        wait_for(lambda: stale not in rules(prefix), timeout=30, message="the stale chain dropped")
        assert rules(prefix).count(f"-A PREROUTING -j {prefix}-SERVICES") == 1
        assert wait_for(lambda: try_host(f"http://{ip}/"), timeout=30, message="ClusterIP after restart") in two
        dup = c.kubectl("create", "service", "clusterip", "dup", "--tcp=80:8080", f"--clusterip={fixed}",
                        check=False)                 # allocations are rebuilt from the stored Services
        assert "provided IP is already allocated" in dup.stderr, dup.stderr
    finally:
        if udp_server is not None:
            udp_server.kill()
            udp_server.wait()
        if c.proc.poll() is None:
            c.kubectl("delete", "deployment/web", "--wait=true", "--timeout=60s", "--ignore-not-found", check=False)
            c.kubectl("delete", "pods", "--all", "--wait=true", "--timeout=60s", check=False)
            wait_for(lambda: no_pods_left(c), timeout=90, message="every pod gone")
        code = c.stop()
        left = rules(prefix)
        remove_bridge(c)
    assert code == 0, c.log.read_text()
    assert left == "", left


def phase_running(c, name: str) -> bool:
    return c.kubectl_json("get", "pod", name).get("status", {}).get("phase") == "Running"


def try_host(url: str) -> str:
    try:
        return http_from_host(url)
    except OSError:
        return ""


def refused(ip: str, port: int) -> bool:
    try:
        socket.create_connection((ip, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False
