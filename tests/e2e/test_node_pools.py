"""Node pools on `skube up`: ordinary nodes (one agent process each) running real
containers beside the virtual node, billed per node-second, resumed after a restart; and
the cluster autoscaler adding a node after its boot delay and draining idle ones while
honouring a PodDisruptionBudget (mock provider: containers add nothing there)."""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import signal
import subprocess

import yaml

from tests.conftest import BIN, wait_for
from tests.e2e.test_up import IMAGE, no_pods_left, phase, remove_bridge, start_up

NET = 11        # start_up's network slot for this file (bridge, CIDRs and node ports of its own)


def ready_nodes(c) -> list[str]:
    return sorted(n["metadata"]["name"] for n in c.kubectl_json("get", "nodes")["items"]
                  if any(x["type"] == "Ready" and x["status"] == "True"
                         for x in (n.get("status") or {}).get("conditions") or []))


def bill(c) -> dict:
    out = subprocess.run([str(BIN / "skube"), "bill", "--data-dir", str(c.data_dir), "-o", "json"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return json.loads(out)


def ts(s: str) -> float:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def events(c, reason: str, kind: str = "") -> list[dict]:
    items = c.kubectl_json("get", "events", "--field-selector", f"reason={reason}")["items"]
    return [e for e in items if not kind or e["involvedObject"]["kind"] == kind]


def test_pool_nodes_run_real_pods_are_billed_and_resume(tmp_path):
    data = tmp_path / "cluster"
    c = start_up(data, net=NET, args=("--node-pool", "general=2x2c4g"))
    try:
        wait_for(lambda: ready_nodes(c) == ["general-1", "general-2", "skube-virtual-node"], timeout=60,
                 message="two pool nodes and the virtual node Ready")
        node = c.kubectl_json("get", "node", "general-1")
        labels = node["metadata"]["labels"]
        assert labels["skube.io/node-pool"] == "general"
        assert labels["node.kubernetes.io/instance-type"] == "2c4g"
        assert labels["kubernetes.io/hostname"] == "general-1" and "type" not in labels
        assert not node["spec"].get("taints")
        assert node["status"]["allocatable"]["cpu"] == "2" and node["status"]["allocatable"]["pods"] == "110"
        assert node["status"]["allocatable"]["memory"] == "4096Mi"
        leases = {x["metadata"]["name"] for x in c.kubectl_json("-n", "kube-node-lease", "get", "leases")["items"]}
        assert {"general-1", "general-2"} <= leases
        # a real container on a pool node; logs and exec go through that node's kubelet
        c.kubectl("run", "onpool", f"--image={IMAGE}",
                  '--overrides={"spec":{"nodeSelector":{"skube.io/node-pool":"general"}}}',
                  "--", "sh", "-c", "echo hi from $(hostname); sleep 3600")
        wait_for(lambda: phase(c, "onpool") == "Running", timeout=60, message="pod Running on the pool")
        pod = c.kubectl_json("get", "pod", "onpool")
        assert pod["spec"]["nodeName"] in ("general-1", "general-2")
        wait_for(lambda: "hi from onpool" in c.kubectl("logs", "onpool").stdout, message="container output")
        assert c.kubectl("exec", "onpool", "--", "cat", "/etc/hostname").stdout.strip() == "onpool"
        # its address comes from the upper half of the pod CIDR (the node's own slice)
        net = ipaddress.ip_network(yaml.safe_load((data / "provider.yaml").read_text())["network"]["cidr"])
        ip = ipaddress.ip_address(pod["status"]["podIP"])
        assert ip in net and int(ip) - int(net.network_address) >= net.num_addresses // 2
        # a pod on the virtual node is billed per pod; the nodes per node-second
        first = bill(c)
        nodes = {n["node"]: n for n in first["nodes"]}
        assert set(nodes) == {"general-1", "general-2"}
        assert all(n["instance_type"] == "2c4g" and n["running"] and n["cost"] > 0 for n in nodes.values())
        assert [t["instance_type"] for t in first["node_types"]] == ["2c4g"]
        assert not [p for p in first["pods"] if p["name"] == "onpool"]
        started = pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
        assert c.stop(signal.SIGINT, timeout=60) == 0
        # `skube up` again: the nodes come back with their pods, billing continues, once
        c = start_up(data, c.port, net=NET, args=("--node-pool", "general=2x2c4g"))
        wait_for(lambda: ready_nodes(c) == ["general-1", "general-2", "skube-virtual-node"], timeout=60,
                 message="pool nodes Ready again")
        wait_for(lambda: phase(c, "onpool") == "Running", timeout=30, message="pod re-adopted")
        again = c.kubectl_json("get", "pod", "onpool")["status"]["containerStatuses"][0]
        assert again["state"]["running"]["startedAt"] == started and again["restartCount"] == 0
        second = {n["node"]: n for n in bill(c)["nodes"]}
        assert set(second) == set(nodes)
        assert all(second[n]["start"] == nodes[n]["start"] and second[n]["seconds"] > nodes[n]["seconds"]
                   for n in nodes)
    finally:
        if c.proc.poll() is None:
            c.kubectl("delete", "pods", "--all", "--wait=true", "--timeout=60s", check=False)
            wait_for(lambda: no_pods_left(c), timeout=90, message="every pod gone")
        assert c.stop(timeout=60) == 0, c.log.read_text()[-3000:]
        remove_bridge(c)


POOL_CONFIG = """nodePools:
- name: auto
  size: 2c4g
  count: 1
  min: 1
  max: 3
  bootDelaySeconds: 3
  scaleDownIdleSeconds: 2
  evictionTimeoutSeconds: 3
"""


def deployment(name: str, replicas: int, cpu: str, extra_spec: dict | None = None) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"nodeSelector": {"skube.io/node-pool": "auto"},
                                       "containers": [{"name": "c", "image": "busybox",
                                                       "command": ["sleep", "3600"],
                                                       "resources": {"requests": {"cpu": cpu}}}],
                                       **(extra_spec or {})}}}})


def pods_of(c, app: str) -> list[dict]:
    return c.kubectl_json("get", "pods", "-l", f"app={app}")["items"]


def test_autoscaler_adds_nodes_after_boot_delay_and_drains_idle_ones(tmp_path):
    data = tmp_path / "cluster"
    data.mkdir()
    (data / "config.yaml").write_text(POOL_CONFIG)
    c = start_up(data, net=NET, args=("--provider", "mock"))
    try:
        wait_for(lambda: ready_nodes(c) == ["auto-1", "skube-virtual-node"], timeout=60,
                 message="the pool's one node")
        # a node agent that dies is restarted
        state = data / "nodepools.json"
        pid = {n["name"]: n["pid"] for n in json.loads(state.read_text())["nodes"]}["auto-1"]
        os.kill(pid, signal.SIGKILL)
        new = wait_for(lambda: {n["name"]: n["pid"] for n in json.loads(state.read_text())["nodes"]}["auto-1"]
                       not in (pid, 0) and json.loads(state.read_text())["nodes"][0]["pid"],
                       timeout=20, message="agent restarted")
        assert b"auto-1" in open(f"/proc/{new}/cmdline", "rb").read()
        # 4 pods of 1.5 CPU on 2-CPU nodes: one per node; max 3 nodes → one stays Pending
        c.kubectl("apply", "-f", "-", input=deployment("big", 4, "1500m"))
        wait_for(lambda: ready_nodes(c) == ["auto-1", "auto-2", "auto-3", "skube-virtual-node"], timeout=60,
                 message="two more nodes")
        wait_for(lambda: sorted(p["status"].get("phase") for p in pods_of(c, "big")) ==
                 ["Pending", "Running", "Running", "Running"], timeout=30, message="3 big pods Running")
        assert "auto 1->3 (max: 3)" in events(c, "TriggeredScaleUp", "Pod")[0]["message"]
        wait_for(lambda: events(c, "NotTriggerScaleUp", "Pod"), timeout=20, message="NotTriggerScaleUp")
        assert "max node group size reached" in events(c, "NotTriggerScaleUp", "Pod")[0]["message"]
        # billed from the request; the node joined only after the boot delay
        billed = {n["node"]: n for n in bill(c)["nodes"]}
        created = ts(c.kubectl_json("get", "node", "auto-2")["metadata"]["creationTimestamp"])
        assert created - ts(billed["auto-2"]["start"]) >= 2      # 3 s boot delay, 1 s resolution
        # two small pods, spread by preference, guarded by a PDB that allows no disruption
        anti = {"affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                                "labelSelector": {"matchLabels": {"app": "web"}}}}]}}}
        c.kubectl("apply", "-f", "-", input=deployment("web", 2, "100m", anti))
        c.kubectl("create", "pdb", "web", "--selector=app=web", "--min-available=2")
        wait_for(lambda: [p["status"].get("phase") for p in pods_of(c, "web")] == ["Running"] * 2,
                 timeout=30, message="web Running")
        web_nodes = {p["spec"]["nodeName"] for p in pods_of(c, "web")}
        assert len(web_nodes) == 2
        c.kubectl("scale", "deployment/big", "--replicas=0")
        # the empty node goes; a web node is drained but the PDB refuses: it is given back
        wait_for(lambda: sorted(ready_nodes(c)) == sorted([*web_nodes, "skube-virtual-node"]), timeout=60,
                 message="the empty node removed")
        wait_for(lambda: events(c, "ScaleDownFailed", "Node"), timeout=60, message="drain refused by the PDB")
        assert "disruption budget" in events(c, "ScaleDownFailed", "Node")[0]["message"]
        refused = events(c, "ScaleDownFailed", "Node")[0]["involvedObject"]["name"]
        wait_for(lambda: not c.kubectl_json("get", "node", refused)["spec"].get("unschedulable"),
                 timeout=20, message="the refused node uncordoned")
        assert sorted(ready_nodes(c)) == sorted([*web_nodes, "skube-virtual-node"])
        # once the PDB allows one disruption the node is drained and removed; min 1 stays
        c.kubectl("patch", "pdb", "web", "--type=merge", "-p", '{"spec":{"minAvailable":1}}')
        wait_for(lambda: len(ready_nodes(c)) == 2, timeout=60, message="down to the pool's min")
        wait_for(lambda: [p["status"].get("phase") for p in pods_of(c, "web")] == ["Running"] * 2,
                 timeout=30, message="web rescheduled")
        left = ready_nodes(c)[0]
        assert left.startswith("auto-") and {p["spec"]["nodeName"] for p in pods_of(c, "web")} == {left}
        assert any(e["message"] == "node removed by cluster autoscaler" for e in events(c, "ScaleDown", "Node"))
        # the bill: released nodes stopped, the remaining one still running
        nodes = {n["node"]: n for n in bill(c)["nodes"]}
        assert set(nodes) == {"auto-1", "auto-2", "auto-3"}
        assert [n for n, v in nodes.items() if v["running"]] == [left]
        assert all(v["cost"] > 0 and v["instance_type"] == "2c4g" for v in nodes.values())
    finally:
        assert c.stop(timeout=60) == 0, c.log.read_text()[-3000:]


def test_bad_pool_declarations_are_refused_before_anything_starts(tmp_path):
    def up(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "skube"), "up", "--data-dir", str(tmp_path), "--port", "1", *args],
                              capture_output=True, text=True, timeout=60)
    res = up("--node-pool", "general=2x4c")
    assert res.returncode == 2 and "expected <vCPU>c<GiB>g, e.g. 4c8g" in res.stderr
    res = up("--node-pool", "general=5x1c1g:1-3")
    assert res.returncode == 2 and "count 5 must lie within min-max 1-3" in res.stderr
    res = up("--node-pool", "general=1x1c1g:1-200")
    assert res.returncode == 2 and "has room for 128; lower their max or widen network.cidr" in res.stderr
    (tmp_path / "config.yaml").write_text("nodePools:\n- {name: batch, size: 2c4g, maxx: 3}\n")
    res = up()
    assert res.returncode == 2 and "node pool 'batch': unknown keys ['maxx']" in res.stderr
    assert not (tmp_path / "kubeconfig").exists()


def test_pool_agents_can_run_inside_skube_up_for_mock_scale_runs(tmp_path):
    data = tmp_path / "cluster"
    data.mkdir()
    (data / "config.yaml").write_text("nodePoolAgents: inProcess\n")
    c = start_up(data, net=NET, args=("--provider", "mock", "--node-pool", "general=2x2c4g"))
    try:
        wait_for(lambda: ready_nodes(c) == ["general-1", "general-2", "skube-virtual-node"], timeout=60,
                 message="two in-process pool nodes Ready")
        agents = subprocess.run(["pgrep", "-f", "--", f"--cluster-data-dir {data}"], capture_output=True, text=True)
        assert agents.returncode == 1, agents          # pgrep: no agent process matched
        c.kubectl("apply", "-f", "-", input=deployment("web", 2, "1500m").replace('"auto"', '"general"'))
        wait_for(lambda: sorted(p["spec"].get("nodeName", "") for p in pods_of(c, "web")
                                if p["status"].get("phase") == "Running") == ["general-1", "general-2"],
                 timeout=30, message="one pod Running on each pool node")
    finally:
        assert c.stop(timeout=60) == 0, c.log.read_text()[-3000:]
