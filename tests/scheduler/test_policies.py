"""Elastic scheduling policies in the scheduler: ordinary nodes first, the virtual node
on overflow or after a wait, ResourcePolicy units in order (fake nodes, no API server)."""
from __future__ import annotations

import pytest

from skube.apiserver.admission import ServerlessAdmission
from skube.scheduler.cache import PodInfo
from skube.scheduler.scheduler import FitError
from skube.scheduler.policies import (PLUGIN, Policy, Unit, deletion_cost_for, policy_of)

from helpers import Harness, node, pod

VIRTUAL_TAINT = {"key": "virtual-kubelet.io/provider", "value": "skube", "effect": "NoSchedule"}


def virtual_node(name: str = "vn") -> dict:
    return node(name, cpu="1000", memory="4Ti", pods="10000",
                labels={"type": "virtual-kubelet"}, taints=[VIRTUAL_TAINT])


def pool_node(name: str, pool: str = "general", cpu: str = "2") -> dict:
    return node(name, cpu=cpu, memory="8Gi", labels={"skube.io/node-pool": pool})


def admitted(p: dict, config: dict) -> dict:
    """``p`` as serverless admission with ``config`` (the ``serverless`` section) leaves it."""
    ServerlessAdmission.from_config(config).admit_pod(p)
    return p


def prefer(name: str, wait: float = 0, **kw) -> dict:
    return admitted(pod(name, cpu="1", labels={"app": "web"}, **kw),
                    {"policy": "normalNodePrefer", "maxWaitSeconds": wait})


def select(h: Harness, p: dict, waited: float = 0.0) -> tuple[str, int]:
    info = PodInfo(p)
    name, tier = h.sched.select_node(info, waited)
    h.cache.add_pod(info.assigned_to(name))
    return name, tier


def test_normal_node_prefer_fills_ordinary_nodes_then_bursts_at_once():
    h = Harness([pool_node("n1"), pool_node("n2"), virtual_node()])
    placed = [select(h, prefer(f"p{i}")) for i in range(6)]
    assert sorted(n for n, _ in placed[:4]) == ["n1", "n1", "n2", "n2"]
    assert all(t == 0 for _, t in placed[:4])
    assert placed[4:] == [("vn", 1), ("vn", 1)]
    # the overflow pods are the cheap ones to delete
    pol = policy_of(prefer("x"))
    assert deletion_cost_for(pol, 1) == -1 and deletion_cost_for(pol, 0) is None


def test_normal_node_prefer_waits_for_an_ordinary_node_up_to_max_wait():
    h = Harness([pool_node("n1"), virtual_node()])
    for i in range(2):
        assert select(h, prefer(f"p{i}", wait=30)) == ("n1", 0)
    p = prefer("late", wait=30)
    with pytest.raises(FitError) as e:
        h.sched.select_node(PodInfo(p), waited=10.0)
    err = e.value
    assert err.retry_after == pytest.approx(20.0)
    assert err.statuses["vn"].plugin == PLUGIN
    assert "0/2 nodes are available" in err.message
    assert "held back by policy normalNodePrefer until the pod has waited 30s" in err.message
    assert "Insufficient cpu" in err.message
    # once the pod has waited long enough, the virtual node takes it
    assert h.sched.select_node(PodInfo(p), waited=30.0) == ("vn", 1)
    # and a freed ordinary node is preferred again
    h.cache.remove_pod("default/p0")
    assert h.sched.select_node(PodInfo(p), waited=0.0) == ("n1", 0)


def test_without_ordinary_nodes_prefer_bursts_at_once_unless_told_to_wait():
    h = Harness([virtual_node()])
    assert h.sched.select_node(PodInfo(prefer("p")), waited=0.0) == ("vn", 1)
    # maxWaitSeconds: time for a node pool to boot a node (ACK's whenTryNextUnits timeout)
    with pytest.raises(FitError) as e:
        h.sched.select_node(PodInfo(prefer("q", wait=600)), waited=0.0)
    assert e.value.retry_after == pytest.approx(600.0)


def test_virtual_node_only_never_uses_ordinary_nodes():
    h = Harness([pool_node("n1", cpu="64"), virtual_node()])
    p = admitted(pod("v", cpu="1"), {"policy": "virtualNodeOnly"})
    assert p["spec"]["nodeSelector"] == {"type": "virtual-kubelet"}
    for i in range(5):
        p = admitted(pod(f"v{i}", cpu="1"), {"policy": "virtualNodeOnly"})
        assert select(h, p) == ("vn", 0)


def test_normal_node_only_keeps_pods_off_the_virtual_node():
    h = Harness([pool_node("n1", cpu="1"), virtual_node()])
    p = admitted(pod("a", cpu="1"), {"policy": "normalNodeOnly"})
    assert select(h, p) == ("n1", 0)
    q = admitted(pod("b", cpu="1"), {"policy": "normalNodeOnly"})
    reasons = h.reasons(q)
    assert reasons["vn"] == ("node(s) had untolerated taint {virtual-kubelet.io/provider: skube}",)
    assert reasons["n1"] == ("Insufficient cpu",)


RP = {"policy": "resourcePolicy",
      "units": [{"nodeSelector": {"skube.io/node-pool": "general"}, "max": 3}, {"virtualNode": True}]}


def rp_pod(name: str, app: str = "web", config: dict = RP, hash_: str = "h1") -> dict:
    return admitted(pod(name, cpu="100m", labels={"app": app, "pod-template-hash": hash_}), dict(config))


def test_resource_policy_units_in_order_with_max_counted_per_workload():
    h = Harness([pool_node("g1"), pool_node("g2"), pool_node("s1", pool="spare"), virtual_node()])
    placed = [select(h, rp_pod(f"w{i}", hash_=f"h{i % 2}")) for i in range(5)]
    # three in the general pool (room for 40), then the virtual node; never the spare pool
    assert [t for _, t in placed] == [0, 0, 0, 1, 1]
    assert {n for n, _ in placed[:3]} <= {"g1", "g2"} and [n for n, _ in placed[3:]] == ["vn", "vn"]
    # another workload has its own count
    assert select(h, rp_pod("o1", app="other"))[1] == 0
    # when pods of the first unit go, new ones fill it again
    first = next(f"default/w{i}" for i, (n, _) in enumerate(placed) if n != "vn")
    h.cache.remove_pod(first)
    assert select(h, rp_pod("w9"))[1] == 0
    pol = policy_of(rp_pod("x"))
    assert [deletion_cost_for(pol, t) for t in (0, 1)] == [None, -1]


def test_resource_policy_all_units_full_leaves_the_pod_pending():
    cfg = {"policy": "resourcePolicy", "units": [{"nodeSelector": {"skube.io/node-pool": "general"}, "max": 1},
                                                 {"virtualNode": True, "max": 1}]}
    h = Harness([pool_node("g1"), pool_node("s1", pool="spare"), virtual_node()])
    assert select(h, rp_pod("a", config=cfg)) == ("g1", 0)
    assert select(h, rp_pod("b", config=cfg)) == ("vn", 1)
    reasons = h.reasons(rp_pod("c", config=cfg))
    assert reasons == {"g1": ("node(s) in a ResourcePolicy unit that has reached its max",),
                       "vn": ("node(s) in a ResourcePolicy unit that has reached its max",),
                       "s1": ("node(s) didn't match any ResourcePolicy unit",)}


def test_resource_policy_selector_counts_the_pods_it_selects():
    cfg = {**RP, "units": [{"nodeSelector": {"skube.io/node-pool": "general"}, "max": 2}, {"virtualNode": True}]}
    adm = ServerlessAdmission.from_config({"rules": [{"namespace": "default", "selector": "tier=front", **cfg}]})
    h = Harness([pool_node("g1"), virtual_node()])
    out = []
    for i, app in enumerate(["a", "b", "c"]):
        p = pod(f"p{i}", cpu="100m", labels={"tier": "front", "app": app})
        adm.admit_pod(p)
        out.append(select(h, p)[0])
    assert out == ["g1", "g1", "vn"]         # one policy, one count across the apps it selects


def test_pods_without_a_policy_schedule_as_before():
    h = Harness([pool_node("n1"), virtual_node()])
    p = pod("plain", cpu="1")
    assert policy_of(p) == Policy()
    assert h.sched.select_node(PodInfo(p)) == ("n1", 0)     # no toleration: not the virtual node


def test_unit_matching_and_ack_resource_names():
    assert Unit.from_doc({"resource": "eci"}).virtual
    u = Unit.from_doc({"resource": "ecs", "nodeSelector": {"skube.io/node-pool": "general"}, "max": 10})
    assert not u.virtual and u.max == 10 and u.to_doc() == {"nodeSelector": {"skube.io/node-pool": "general"},
                                                            "max": 10}
    with pytest.raises(ValueError, match=r"units\[0\].max: must be a non-negative integer"):
        Unit.from_doc({"max": -1})
    with pytest.raises(ValueError, match="unknown field"):
        Unit.from_doc({"nodeSelektor": {}})


def test_queue_activate_retries_an_unschedulable_pod_now():
    from skube.scheduler.queue import SchedulingQueue
    now = [100.0]
    q = SchedulingQueue(clock=lambda: now[0])
    q.add(PodInfo(prefer("p", wait=30)))
    popped = q.pop_nowait()
    q.add_unschedulable(popped, {PLUGIN})
    assert q.pending()["unschedulable"] == ["default/p"] and q.pop_nowait() is None
    now[0] += 5                         # its 1 s back-off is over
    assert q.activate("default/p") and q.pending()["active"] == ["default/p"]
    assert not q.activate("default/p")  # only unschedulable pods move
    assert q.pop_nowait().key == "default/p"
