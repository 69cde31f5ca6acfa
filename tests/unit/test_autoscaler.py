"""Node pools and the cluster autoscaler's decisions (pure functions): pool declarations,
IP slots, scale-up plans and scale-down candidates on a real scheduler cache with the
scheduler's own filter plugins."""
from __future__ import annotations

import ipaddress

import pytest

from skube.autoscaler import decide
from skube.autoscaler.pools import PoolError, Size, merge, parse_flag, parse_size
from skube.autoscaler.slots import pool_range, slot_count, virtual_range
from skube.billing.nodes import NODE_PRICE, NodeLedger, node_costs
from skube.billing.prices import PriceTable
from skube.scheduler.cache import SchedulerCache

# ---- declarations ---------------------------------------------------------------------------


def test_sizes_parse_and_print():
    assert parse_size("4c8g") == Size(4000, 8192)
    assert parse_size("0.5c1.5g") == Size(500, 1536)
    assert str(Size(4000, 8192)) == "4c8g" and str(Size(500, 1536)) == "0.5c1.5g"
    assert Size(2000, 4096).capacity() == {"cpu": "2", "memory": "4096Mi", "pods": "110",
                                           "ephemeral-storage": "100Gi"}
    assert Size(500, 512).capacity()["cpu"] == "500m"
    for bad in ("4c", "8g", "4x8", "c8g", "0c1g", "4c8G8"):
        with pytest.raises(PoolError, match="expected <vCPU>c<GiB>g|must be positive"):
            parse_size(bad)


def test_flags_parse_with_and_without_limits():
    p = parse_flag("general=2x4c8g")
    assert (p.name, p.count, p.min, p.max, p.size) == ("general", 2, 2, 2, Size(4000, 8192))
    assert not p.autoscaled and p.boot_delay == 60 and p.idle_seconds == 600
    p = parse_flag("burst=1x2c4g:0-5")
    assert (p.count, p.min, p.max, p.autoscaled) == (1, 0, 5, True)
    with pytest.raises(PoolError, match="NAME=COUNTxSIZE"):
        parse_flag("general:2x4c8g")
    with pytest.raises(PoolError, match="count 6 must lie within min-max 1-5"):
        parse_flag("g=6x4c8g:1-5")
    with pytest.raises(PoolError, match="0 <= min <= max"):
        parse_flag("g=1x4c8g:3-1")
    with pytest.raises(PoolError, match="DNS label"):
        parse_flag("Gen_eral=1x4c8g")


def test_config_and_flags_merge():
    config = [{"name": "general", "size": "2c4g", "min": 1, "max": 4, "bootDelaySeconds": 5,
               "scaleDownIdleSeconds": 30},
              {"name": "batch", "size": "8c32g", "count": 0, "max": 10, "provider": "mock"}]
    pools = {p.name: p for p in merge(["general=3x4c8g", "extra=1x1c2g"], config)}
    g = pools["general"]
    # the flag sets size and count; config's limits and timings stay (count within them)
    assert (g.size, g.count, g.min, g.max, g.boot_delay, g.idle_seconds) == \
        (Size(4000, 8192), 3, 1, 4, 5.0, 30.0)
    b = pools["batch"]
    assert (b.count, b.min, b.max, b.provider) == (0, 0, 10, "mock")
    assert list(pools) == ["general", "batch", "extra"]
    assert merge(["general=2x4c8g:0-9"], config)[0].max == 9
    with pytest.raises(PoolError, match="unknown keys \\['sise'\\]"):
        merge([], [{"name": "x", "sise": "2c4g"}])
    with pytest.raises(PoolError, match="size is required"):
        merge([], [{"name": "x"}])
    with pytest.raises(PoolError, match="given twice"):
        merge(["a=1x1c1g", "a=2x1c1g"], None)
    with pytest.raises(PoolError, match="provider 'aws'"):
        merge([], [{"name": "x", "size": "1c1g", "provider": "aws"}])


def test_every_node_gets_its_own_slice_of_the_pod_cidr():
    for cidr in ("10.42.0.0/16", "10.160.0.0/24"):
        net = ipaddress.ip_network(cidr)
        ranges = [virtual_range(cidr)] + [pool_range(cidr, s) for s in range(1, slot_count(cidr) + 1)]
        addrs = [(ipaddress.ip_address(a), ipaddress.ip_address(b)) for a, b in ranges]
        for a, b in addrs:
            assert a in net and b in net and a <= b
            assert a != net[0] and a != net[1] and b != net.broadcast_address
        for (a1, b1), (a2, b2) in zip(addrs, addrs[1:]):
            assert b1 < a2          # disjoint, in order
    assert slot_count("10.42.0.0/16") == 128 and pool_range("10.42.0.0/16", 1) == ("10.42.128.0", "10.42.128.255")
    assert slot_count("10.160.0.0/24") == 8 and pool_range("10.160.0.0/24", 8) == ("10.160.0.240", "10.160.0.254")
    with pytest.raises(ValueError, match="room for 8 node-pool nodes"):
        pool_range("10.160.0.0/24", 9)


# ---- scale up ---------------------------------------------------------------------------------


def pod(name, cpu="1", *, node="", selector=None, owner=True, labels=None, tolerations=None,
        unschedulable=True, annotations=None, volumes=None, ds=False):
    meta = {"name": name, "namespace": "default", "uid": f"uid-{name}", "labels": labels or {},
            "annotations": annotations or {}}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "DaemonSet" if ds else "ReplicaSet",
                                    "name": "rs", "uid": "rs-uid", "controller": True}]
    spec = {"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": cpu, "memory": "100Mi"}}}],
            "nodeSelector": selector or {}, "tolerations": tolerations or [], "volumes": volumes or []}
    status = {"phase": "Pending"}
    if node:
        spec["nodeName"] = node
        status = {"phase": "Running"}
    elif unschedulable:
        status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def pool_node(spec, name, taints=None):
    n = decide.template_node(spec, name)
    n["spec"] = {"taints": taints or []}
    return n


VIRTUAL = {"metadata": {"name": "vk", "labels": {"type": "virtual-kubelet"}},
           "spec": {"taints": [{"key": "virtual-kubelet.io/provider", "value": "skube", "effect": "NoSchedule"}]},
           "status": {"allocatable": {"cpu": "1000", "memory": "4Ti", "pods": "10000"}}}


def cluster(nodes, pods):
    c = SchedulerCache()
    for n in nodes:
        c.add_node(n)
    for p in pods:
        c.add_pod(p)
    return c


def test_pending_pods_scale_the_first_pool_they_fit_packed_and_capped_at_max():
    small, big = parse_flag("small=1x2c4g:1-3"), parse_flag("big=0x8c16g:0-2")
    existing = pool_node(small, "small-1")
    cache = cluster([existing, VIRTUAL], [pod("running", "1500m", node="small-1")])
    pending = [pod(f"p{i}", "1500m") for i in range(4)] + [pod("huge", "6")] + [pod("giant", "12")]
    plan = decide.plan_scale_up(cache, pending, [decide.PoolView(small, ["small-1"]), decide.PoolView(big)])
    # largest first: huge opens a big node (8 CPU) and p0 packs beside it (6 + 1.5); p1 and p2
    # take small to its max of 3; p3 fits nowhere planned and opens a second big node
    assert plan.new_nodes == {"small": 2, "big": 2}
    assert plan.triggered["default/huge"] == "big" and plan.triggered["default/p0"] == "big"
    assert sorted(k for k, v in plan.triggered.items() if v == "small") == ["default/p1", "default/p2"]
    assert plan.triggered["default/p3"] == "big"
    assert "default/giant" in plan.no_scale_up and "wouldn't fit" in plan.no_scale_up["default/giant"]


def test_scale_up_respects_selectors_taints_and_booting_nodes():
    gpu = parse_flag("gpu=0x4c8g:0-2")
    tainted = parse_flag("tainted=0x4c8g:0-2")
    views = [decide.PoolView(gpu, ["gpu-1"], booting=["gpu-1"]), decide.PoolView(tainted)]
    cache = cluster([VIRTUAL], [])
    # tainted pool nodes (through the template of a registered node) are not used here: the
    # templates carry no taints, so a selector is what keeps pods apart
    pending = [pod("a", "3", selector={"skube.io/node-pool": "gpu"}),      # fits the booting gpu-1
               pod("b", "3", selector={"skube.io/node-pool": "gpu"}),      # needs a second gpu node
               pod("c", "3", selector={"skube.io/node-pool": "gpu"}),      # max 2 reached
               pod("d", "1", selector={"disk": "ssd"}),                    # no pool has that label
               pod("e", "1", tolerations=[{"key": "virtual-kubelet.io/provider", "operator": "Exists"}])]
    plan = decide.plan_scale_up(cache, pending, views)
    assert plan.new_nodes == {"gpu": 1}
    assert "default/a" in plan.waiting and plan.triggered["default/b"] == "gpu"
    assert "max node group size reached" in plan.no_scale_up["default/c"]
    assert "wouldn't fit" in plan.no_scale_up["default/d"]
    assert "default/e" not in plan.no_scale_up and "default/e" not in plan.triggered   # fits the virtual node
    assert plan.expected == {"default/e": "vk"}


def test_equivalence_groups_plan_as_pod_by_pod_packing(monkeypatch):
    """Members of one controller with one spec skip the nodes an earlier member did not fit
    (cluster-autoscaler's equivalence groups): the plan is the one pod-by-pod first-fit gives."""
    small = parse_flag("small=3x2c4g:0-20")
    nodes = [pool_node(small, f"small-{i}") for i in (1, 2, 3)]
    running = [pod("r1", "1500m", node="small-1"), pod("r2", "1", node="small-2")]

    def pending():
        out = [pod(f"a{i}", "1") for i in range(9)]                  # one group (owner rs-uid)
        for i in range(3):                                           # another: 500m, other owner
            p = pod(f"b{i}", "500m")
            p["metadata"]["ownerReferences"][0]["uid"] = "rs2-uid"
            out.append(p)
        spread = pod("s0", "1", labels={"app": "s"})
        spread["spec"]["topologySpreadConstraints"] = [{
            "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "s"}}}]
        return out + [spread]

    def plan():
        p = decide.plan_scale_up(cluster(nodes, running), pending(),
                                 [decide.PoolView(small, [n["metadata"]["name"] for n in nodes])])
        return p.new_nodes, p.triggered, p.expected, p.waiting

    grouped = plan()
    monkeypatch.setattr(decide, "_equivalence", lambda pod: None)
    assert grouped == plan()
    new_nodes, triggered, expected, _ = grouped
    # largest first: a0 → small-2 (1 free), a1, a2 → small-3, a3..a8 → 3 new nodes, s0 → a
    # 4th; then b0 → small-1's 0.5 free and b1, b2 beside s0
    assert expected["default/a0"] == "small-2" and expected["default/b0"] == "small-1"
    assert {expected["default/a1"], expected["default/a2"]} == {"small-3"}
    assert new_nodes == {"small": 4} and len(triggered) == 9
    assert decide._equivalence(decide.PodInfo(pending()[-1])) is None      # spread: placed alone


def test_only_pods_marked_unschedulable_count():
    assert decide.is_unschedulable(pod("x"))
    assert not decide.is_unschedulable(pod("x", unschedulable=False))
    assert not decide.is_unschedulable(pod("x", node="n1"))


# ---- scale down -------------------------------------------------------------------------------


def test_scale_down_candidates_follow_utilization_movability_and_min():
    p = parse_flag("p=4x4c8g:1-4")
    nodes = [pool_node(p, f"p-{i}") for i in range(1, 5)]
    pods = [pod("busy", "3", node="p-1"),                      # 0.75: needed
            pod("light", "1", node="p-2"),                     # 0.25 and movable
            pod("bare", "500m", node="p-3", owner=False),      # not run by a controller
            pod("ds", "1", node="p-4", ds=True)]               # DaemonSet pods do not count
    views = {"p": decide.PoolView(p, [n["metadata"]["name"] for n in nodes])}
    cands, why = decide.scale_down_candidates(cluster(nodes + [VIRTUAL], pods), views)
    assert [c.node for c in cands] == ["p-4", "p-2"]          # emptiest first
    assert cands[0].pods == [] and cands[1].pods == ["default/light"]
    assert "not below 0.5" in why["p-1"] and "not run by a controller" in why["p-3"]
    # min 3 → only one of them may go
    views = {"p": decide.PoolView(parse_flag("p=4x4c8g:3-4"), [n["metadata"]["name"] for n in nodes])}
    cands, why = decide.scale_down_candidates(cluster(nodes, pods), views)
    assert [c.node for c in cands] == ["p-4"] and "min size 3" in why["p-2"]
    # a node pending pods are about to land on is not idle
    cands, why = decide.scale_down_candidates(cluster(nodes, pods), views, keep={"p-4"})
    assert [c.node for c in cands] == ["p-2"] and why["p-4"] == "unschedulable pods fit on it"


def test_scale_down_needs_somewhere_for_the_pods_to_go():
    p = parse_flag("p=2x2c4g:0-2")
    nodes = [pool_node(p, "p-1"), pool_node(p, "p-2")]
    sel = {"skube.io/node-pool": "p"}
    pods = [pod("a", "900m", node="p-1", selector=sel), pod("b", "900m", node="p-2", selector=sel),
            pod("local", "50m", node="p-2", volumes=[{"name": "scratch", "emptyDir": {}}])]
    views = {"p": decide.PoolView(p, ["p-1", "p-2"])}
    cands, why = decide.scale_down_candidates(cluster(nodes, pods), views)
    # p-1's pod fits on p-2 (900m + 900m + 50m <= 2), which is then needed
    assert [c.node for c in cands] == ["p-1"] and cands[0].pods == ["default/a"]
    assert "utilization 0.93 is not below 0.5" in why["p-2"]
    cands, why = decide.scale_down_candidates(cluster(nodes, pods), views, exclude={"p-1"})
    assert cands == [] and "has local storage (volume scratch)" in why["p-2"]
    # safe-to-evict: "false" blocks; a node excluded (being drained) is no destination
    pods[0]["metadata"]["annotations"] = {decide.SAFE_TO_EVICT: "false"}
    cands, why = decide.scale_down_candidates(cluster(nodes, pods), views)
    assert cands == [] and "safe-to-evict" in why["p-1"]
    pods[0]["metadata"]["annotations"] = {}
    cands, why = decide.scale_down_candidates(cluster(nodes, pods), views, exclude={"p-2"})
    assert cands == [] and "fits no other node" in why["p-1"]


# ---- node billing -----------------------------------------------------------------------------


def test_node_ledger_bills_each_node_once_from_request_to_release(tmp_path):
    ledger = NodeLedger.for_data_dir(tmp_path)
    kw = dict(pool="g", instance_type="2c4g", cpu_m=2000, memory_mib=4096, provider="mock")
    ledger.start(node="g-1", start=1000.0, **kw)
    ledger.start(node="g-1", start=1500.0, **kw)       # a resumed node: still the one record
    ledger.start(node="g-2", start=1000.0, **kw)
    assert ledger.stop("g-2", 1030.0) == 1 and ledger.stop("g-2", 1090.0) == 0
    runs = ledger.runs()
    assert [(r.node, r.start, r.stop) for r in runs] == [("g-1", 1000.0, None), ("g-2", 1000.0, 1030.0)]
    nodes, types = node_costs(runs, PriceTable.defaults(), since=None, now=4600.0)
    per_second = NODE_PRICE.per_second(2, 4)
    assert nodes[0].seconds == 3600 and nodes[0].cost == pytest.approx(3600 * per_second)
    assert nodes[0].cost == pytest.approx(2 * 0.031611 + 4 * 0.004237)   # list price per hour
    assert nodes[1].cost == pytest.approx(60 * per_second)               # one-minute minimum
    assert [(t.instance_type, t.nodes) for t in types] == [("2c4g", 2)]
    ledger.close()
