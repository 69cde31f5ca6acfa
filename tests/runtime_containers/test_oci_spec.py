"""Pure parts: OCI spec building, back-off values, CRI log parsing/reading/rotation."""
from __future__ import annotations

import asyncio

import pytest

from skube.runtime import logs
from skube.runtime.instance import Backoff
from skube.runtime.oci import (ConfigError, ContainerContext, Mount, Unsupported, build_spec,
                               command_line, expand)
from skube.runtime.sandbox import NetworkConfig, hosts_file, resolv_conf

IMG = {"Entrypoint": ["/entry"], "Cmd": ["--default"], "Env": ["PATH=/bin", "A=img"],
       "WorkingDir": "/w", "User": "1000:1000"}


def pod(containers, **spec):
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"containers": containers, **spec}}


def ctx(**kw):
    return ContainerContext(rootfs="/r", cgroups_path="/skube/podu1/c", netns_path="/run/netns/x",
                            ipc_ns_path="/proc/1/ns/ipc", uts_ns_path="/proc/1/ns/uts", **kw)


def test_command_and_args_merge_like_upstream():
    assert command_line({}, IMG, []) == ["/entry", "--default"]
    assert command_line({"args": ["x"]}, IMG, []) == ["/entry", "x"]
    assert command_line({"command": ["/bin/sh"]}, IMG, []) == ["/bin/sh"]
    assert command_line({"command": ["a"], "args": ["b"]}, IMG, []) == ["a", "b"]
    with pytest.raises(ConfigError):
        command_line({}, {}, [])


def test_var_expansion():
    env = {"A": "1", "B": "two"}
    assert expand("$(A)-$(B)", env) == "1-two"
    assert expand("$$(A)", env) == "$(A)"
    assert expand("$(MISSING) $(A", env) == "$(MISSING) $(A"
    c = {"name": "c", "command": ["echo", "$(X)"], "env": [
        {"name": "X", "value": "x"}, {"name": "Y", "value": "$(X)y"},
        {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}
    spec = build_spec(pod([c]), c, IMG, ctx(resolved_env={"S": "secret"}))
    env = spec["process"]["env"]
    assert "X=x" in env and "Y=xy" in env and "S=secret" in env and "A=img" in env
    assert spec["process"]["args"] == ["echo", "x"]


def test_security_user_caps_and_resources():
    c = {"name": "c", "securityContext": {"runAsUser": 5, "allowPrivilegeEscalation": False,
                                          "readOnlyRootFilesystem": True,
                                          "capabilities": {"add": ["NET_ADMIN"], "drop": ["KILL"]}},
         "resources": {"requests": {"cpu": "250m", "memory": "64Mi"},
                       "limits": {"cpu": "500m", "memory": "128Mi"}}}
    spec = build_spec(pod([c], securityContext={"runAsGroup": 7, "supplementalGroups": [9]}),
                      c, IMG, ctx(mounts=[Mount("/h/v", "/data", read_only=True)]))
    p = spec["process"]
    assert p["user"] == {"uid": 5, "gid": 7, "additionalGids": [9]}
    assert p["noNewPrivileges"] is True and spec["root"]["readonly"] is True
    caps = p["capabilities"]["bounding"]
    assert "CAP_NET_ADMIN" in caps and "CAP_KILL" not in caps and "CAP_CHOWN" in caps
    assert p["cwd"] == "/w"
    r = spec["linux"]["resources"]
    assert r["cpu"] == {"shares": 256, "quota": 50000, "period": 100000}
    assert r["memory"] == {"limit": 128 * 1024 * 1024}
    ns = {n["type"]: n.get("path") for n in spec["linux"]["namespaces"]}
    assert ns["network"] == "/run/netns/x" and ns["ipc"] == "/proc/1/ns/ipc"
    assert ns["pid"] is None and ns["mount"] is None
    assert spec["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ALLOW"
    data = [m for m in spec["mounts"] if m["destination"] == "/data"][0]
    assert data["source"] == "/h/v" and "ro" in data["options"]
    # image user when nothing is set; BestEffort shares
    c2 = {"name": "c"}
    spec = build_spec(pod([c2]), c2, IMG, ctx())
    assert spec["process"]["user"] == {"uid": 1000, "gid": 1000}
    assert spec["linux"]["resources"]["cpu"] == {"shares": 2}
    assert spec["process"]["oomScoreAdj"] == 1000


@pytest.mark.parametrize("spec,container", [
    ({"hostNetwork": True}, {}),
    ({"hostPID": True}, {}),
    ({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}, {}),
    ({}, {"securityContext": {"privileged": True}}),
])
def test_refused_features(spec, container):
    c = {"name": "c", **container}
    with pytest.raises(Unsupported) as e:
        build_spec(pod([c], **spec), c, IMG, ctx())
    assert e.value.reason == "Unsupported" and e.value.message


def test_run_as_non_root():
    c = {"name": "c", "securityContext": {"runAsNonRoot": True}}
    with pytest.raises(ConfigError) as e:
        build_spec(pod([c]), c, {"Cmd": ["x"]}, ctx())
    assert e.value.reason == "CreateContainerConfigError"


def test_backoff_values_like_kubelet():
    b = Backoff()
    t = 1000.0
    # first crash: restart at once; the next one waits 10 s, then 20, 40 … capped at 300
    assert b.in_backoff("k", t, t) == 0
    delays = []
    for i in range(8):
        delays.append(b.next("k", t))
        t += delays[-1]
    assert delays == [10, 20, 40, 80, 160, 300, 300, 300]
    assert b.in_backoff("k", t, t + 100) == 200
    # quiet for more than 10 minutes: start over at 10 s
    assert b.next("k", t + 601) == 10


def test_hosts_and_resolv():
    p = pod([{"name": "c"}], hostname="h", subdomain="s",
            hostAliases=[{"ip": "1.2.3.4", "hostnames": ["a", "b"]}],
            dnsConfig={"nameservers": ["9.9.9.9"], "options": [{"name": "ndots", "value": "2"}]})
    hosts = hosts_file(p, "10.0.0.5", "cluster.local")
    assert "10.0.0.5\th.s.ns.svc.cluster.local\th" in hosts and "1.2.3.4\ta\tb" in hosts
    net = NetworkConfig(cluster_dns=["10.43.0.10"])
    rc = resolv_conf(p, net, "nameserver 8.8.8.8\nsearch example.com\n")
    assert rc.splitlines() == ["nameserver 10.43.0.10", "nameserver 9.9.9.9",
                               "search ns.svc.cluster.local svc.cluster.local cluster.local example.com",
                               "options ndots:2"]
    p["spec"]["dnsPolicy"] = "Default"
    assert resolv_conf(p, net, "nameserver 8.8.8.8\n").startswith("nameserver 8.8.8.8\n")


def test_cri_log_reading_and_rotation(tmp_path):
    f = tmp_path / "0.log"
    base = logs.parse_time("2026-01-01T00:00:00.000000000Z")
    assert logs.parse_time("2026-01-01T01:00:00.5+01:00") == base + 500_000_000
    lines = [logs.format_line(base + i * 10**9, "stdout" if i % 2 else "stderr", b"l%d" % i)
             for i in range(5)]
    lines.insert(2, logs.format_line(base + 15 * 10**8, "stdout", b"part-", partial=True))
    f.write_bytes(b"".join(lines))
    run = lambda **kw: asyncio.run(logs.read_all(f, logs.ReadOptions(**kw)))
    assert run() == b"l0\nl1\npart-l2\nl3\nl4\n"
    assert run(tail_lines=3) == b"part-l2\nl3\nl4\n"
    assert run(since_ns=base + 3 * 10**9) == b"l3\nl4\n"
    assert run(limit_bytes=5) == b"l0\nl1"
    assert run(tail_lines=1, timestamps=True) == b"2026-01-01T00:00:04.000000000Z l4\n"
    assert not logs.rotate(f, 10_000, 3)
    for _ in range(4):
        assert logs.rotate(f, 10, 3)
        f.write_bytes(b"".join(lines))
    assert len(logs.rotated(f)) == 2
