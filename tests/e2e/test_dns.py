"""Cluster DNS on `skube up` with real containers: pods resolve Services through their
resolv.conf (cluster DNS IP, search path, ndots 5) as the Kubernetes DNS specification
says: ClusterIP and headless Services, StatefulSet pods by `pod.svc`, SRV, pod records,
PTR, NXDOMAIN for unknown names and REFUSED for names outside the cluster (no upstream).

busybox nslookup runs inside the pods; record types it cannot show exactly (SRV
targets, rcodes) are asked with dnspython from the host inside the pod's netns."""
import ipaddress
import json
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import wait_for
from tests.e2e.test_up import IMAGE, remove_bridge, start_up

NET = 7         # this module's pod network slot (see start_up)

MANIFEST = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: httpd
        image: {IMAGE}
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
        ports: [{{name: http, containerPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: http}}]
---
apiVersion: v1
kind: Service
metadata: {{name: db}}
spec:
  clusterIP: None
  selector: {{app: db}}
  ports: [{{name: pg, port: 5432, protocol: TCP}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db}}
spec:
  serviceName: db
  replicas: 2
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: db
        image: {IMAGE}
        command: ["sleep", "3600"]
        ports: [{{name: pg, containerPort: 5432}}]
---
apiVersion: v1
kind: Service
metadata: {{name: ext}}
spec:
  type: ExternalName
  externalName: db.example.com
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {IMAGE}
    command: ["sleep", "3600"]
"""

# dnspython inside a pod's netns. "ask": one question to SERVER, the whole answer as JSON;
# "resolve": a stub resolver reading the pod's resolv.conf (search path, ndots) as libc does.
ASK = textwrap.dedent("""
    import json, sys
    import dns.flags, dns.message, dns.query, dns.rcode, dns.resolver
    mode, server, name, qtype, proto = sys.argv[1:6]
    if mode == "resolve":
        r = dns.resolver.Resolver(filename=server)
        a = r.resolve(name, qtype, tcp=proto == "tcp", search=True)
        print(json.dumps({"name": a.qname.to_text(), "records": sorted(rd.to_text() for rd in a)}))
        sys.exit(0)
    q = dns.message.make_query(name, qtype)
    r = (dns.query.tcp if proto == "tcp" else dns.query.udp)(q, server, timeout=3)
    print(json.dumps({"rcode": dns.rcode.to_text(r.rcode()), "aa": bool(r.flags & dns.flags.AA),
                      "answer": [rr.to_text() for rr in r.answer],
                      "authority": [rr.to_text() for rr in r.authority]}))
""")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = start_up(tmp_path_factory.mktemp("dns") / "cluster", net=NET)
    try:
        c.kubectl("apply", "-f", "-", input=MANIFEST)
        c.kubectl("rollout", "status", "deployment/web", "--timeout=120s")
        c.kubectl("rollout", "status", "statefulset/db", "--timeout=120s")
        c.kubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=120s")
        yield c
    finally:
        if c.proc.poll() is None:
            c.kubectl("delete", "-f", "-", "--wait=true", "--timeout=60s", input=MANIFEST, check=False)
            c.kubectl("delete", "pods", "--all", "--wait=true", "--timeout=60s", check=False)
            wait_for(lambda: not c.kubectl_json("get", "pods", "-A")["items"], timeout=90,
                     message="every pod gone")
        assert c.stop() == 0, c.log.read_text()
        remove_bridge(c)


def nslookup(c, *args: str, pod: str = "client") -> subprocess.CompletedProcess:
    return c.kubectl("exec", pod, "--", "nslookup", *args, check=False)


def addresses(out: str) -> set[str]:
    """The answer addresses of busybox nslookup (the server's own lines come first)."""
    lines = out.split("\n\n", 1)[1] if "\n\n" in out else ""
    return {ln.split()[-1] for ln in lines.splitlines() if ln.startswith("Address")}


def in_pod_netns(c, pod: str, *argv: str) -> dict:
    uid = c.kubectl_json("get", "pod", pod)["metadata"]["uid"]
    res = subprocess.run(["ip", "netns", "exec", f"skube-{uid}", sys.executable, "-c", ASK, *argv],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def ask(c, name: str, qtype: str = "A", proto: str = "udp", pod: str = "client") -> dict:
    """One question from inside the pod's network namespace to cluster DNS (the nameserver
    of every pod's resolv.conf, checked by the first test)."""
    return in_pod_netns(c, pod, "ask", dns_ip(c), name, qtype, proto)


def resolve(c, tmp_path, name: str, qtype: str = "A", pod: str = "client") -> dict:
    """A stub resolver in the pod's netns with the pod's own /etc/resolv.conf."""
    conf = tmp_path / f"resolv-{pod}.conf"
    conf.write_text(c.kubectl("exec", pod, "--", "cat", "/etc/resolv.conf").stdout)
    return in_pod_netns(c, pod, "resolve", str(conf), name, qtype, "udp")


def dns_ip(c) -> str:
    return c.kubectl_json("-n", "kube-system", "get", "svc", "kube-dns")["spec"]["clusterIP"]


def gateway_ip(c) -> str:
    """The bridge address of this cluster's pod network (``cidr`` of its provider config)."""
    cidr = next(ln.split()[1] for ln in (c.data_dir / "provider.yaml").read_text().splitlines()
                if ln.strip().startswith("cidr:"))
    return str(ipaddress.ip_network(cidr)[1])


def svc_ip(c, name: str) -> str:
    return c.kubectl_json("get", "svc", name)["spec"]["clusterIP"]


def pod_ips(c, selector: str) -> dict[str, str]:
    return {p["metadata"]["name"]: p["status"]["podIP"]
            for p in c.kubectl_json("get", "pods", "-l", selector)["items"]}


def test_pod_resolv_conf_points_at_cluster_dns(cluster):
    c = cluster
    conf = c.kubectl("exec", "client", "--", "cat", "/etc/resolv.conf").stdout
    assert f"nameserver {dns_ip(c)}\n" in conf
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in conf
    assert "options ndots:5" in conf
    es = c.kubectl_json("-n", "kube-system", "get", "endpointslices", "-l",
                        "kubernetes.io/service-name=kube-dns")["items"]
    assert [e["addresses"] for e in es[0]["endpoints"]] == [[gateway_ip(c)]]


def test_service_by_name_and_fqdn(cluster, tmp_path):
    c = cluster
    ip = svc_ip(c, "web")
    for name in ("web", "web.default.svc.cluster.local"):
        res = nslookup(c, name)
        assert addresses(res.stdout) == {ip}, (name, res.stdout, res.stderr)
    for name in ("web", "web.default", "web.default.svc"):    # as libc would, with ndots:5
        assert resolve(c, tmp_path, name) == {"name": "web.default.svc.cluster.local.", "records": [ip]}
    a = ask(c, "web.default.svc.cluster.local.")
    assert a["rcode"] == "NOERROR" and a["aa"]
    assert a["answer"] == [f"web.default.svc.cluster.local. 5 IN A {ip}"]
    assert ask(c, "web.default.svc.cluster.local.", proto="tcp")["answer"] == a["answer"]


def test_headless_service_and_statefulset_pods(cluster, tmp_path):
    c = cluster
    ips = pod_ips(c, "app=db")
    assert set(ips) == {"db-0", "db-1"}
    res = nslookup(c, "db")
    assert addresses(res.stdout) == set(ips.values()), res.stdout
    for pod, ip in ips.items():
        # hostname.subdomain through the search path (busybox nslookup searches only dotless names)
        assert resolve(c, tmp_path, f"{pod}.db") == {"name": f"{pod}.db.default.svc.cluster.local.",
                                                     "records": [ip]}
        res = nslookup(c, f"{pod}.db.default.svc.cluster.local")
        assert addresses(res.stdout) == {ip}, res.stdout
    # a new replica shows up in the headless answer
    c.kubectl("scale", "statefulset/db", "--replicas=3")
    c.kubectl("rollout", "status", "statefulset/db", "--timeout=120s")
    wait_for(lambda: len(pod_ips(c, "app=db")) == 3
             and addresses(nslookup(c, "db").stdout) == set(pod_ips(c, "app=db").values()),
             timeout=30, message="db-2 in the headless answer")


def test_srv_records_return_ports(cluster):
    c = cluster
    res = nslookup(c, "-type=srv", "_http._tcp.web.default.svc.cluster.local")
    assert "80 web.default.svc.cluster.local" in res.stdout, res.stdout
    a = ask(c, "_pg._tcp.db.default.svc.cluster.local.", "SRV")
    targets = sorted(r.split()[-1] for r in a["answer"][0].splitlines())
    ports = {r.split()[-2] for r in a["answer"][0].splitlines()}
    names = sorted(pod_ips(c, "app=db"))
    assert targets == [f"{n}.db.default.svc.cluster.local." for n in names] and ports == {"5432"}
    assert ask(c, "_nope._tcp.web.default.svc.cluster.local.", "SRV")["rcode"] == "NXDOMAIN"


def test_pod_records_and_ptr(cluster):
    c = cluster
    ip = pod_ips(c, "app=web")
    one = next(iter(ip.values()))
    res = nslookup(c, f"{one.replace('.', '-')}.default.pod.cluster.local")
    assert addresses(res.stdout) == {one}, res.stdout
    res = nslookup(c, svc_ip(c, "web"))                 # reverse lookup of the ClusterIP
    assert "web.default.svc.cluster.local" in res.stdout, res.stdout
    db0 = pod_ips(c, "app=db")["db-0"]
    res = nslookup(c, db0)                              # a headless endpoint's pod IP
    assert "db-0.db.default.svc.cluster.local" in res.stdout, res.stdout


def test_external_name_nxdomain_and_refused(cluster):
    c = cluster
    a = ask(c, "ext.default.svc.cluster.local.")
    assert a["answer"] == ["ext.default.svc.cluster.local. 5 IN CNAME db.example.com."]
    res = nslookup(c, "nope.default.svc.cluster.local")
    assert res.returncode != 0 and "NXDOMAIN" in res.stdout + res.stderr
    a = ask(c, "nope.default.svc.cluster.local.")
    assert a["rcode"] == "NXDOMAIN" and "cluster.local. 5 IN SOA" in a["authority"][0]
    # names outside the cluster domain: refused, as no upstream is configured
    assert ask(c, "example.com.")["rcode"] == "REFUSED"
    res = nslookup(c, "example.com.")
    assert res.returncode != 0 and "REFUSED" in res.stdout + res.stderr


def test_records_follow_service_changes(cluster):
    c = cluster
    c.kubectl("create", "service", "clusterip", "late", "--tcp=81:8080")
    ip = svc_ip(c, "late")
    wait_for(lambda: ask(c, "late.default.svc.cluster.local.")["answer"]
             == [f"late.default.svc.cluster.local. 5 IN A {ip}"], timeout=10, message="new service resolves")
    c.kubectl("delete", "service", "late")
    wait_for(lambda: ask(c, "late.default.svc.cluster.local.")["rcode"] == "NXDOMAIN", timeout=10,
             message="deleted service gone from DNS")
