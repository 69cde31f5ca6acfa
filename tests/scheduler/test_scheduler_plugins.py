"""Filter and score plugins, with cases after upstream's plugin tests."""
from __future__ import annotations

import pytest

from skube.scheduler.cache import PodInfo, pod_nonzero_requests, pod_requests
from skube.scheduler.plugins import tolerates

from helpers import Harness, node, pod, term

GI = 1024 ** 3


# ---- requests ---------------------------------------------------------------------------


def test_requests_sum_containers_max_init_and_overhead():
    p = pod("p")
    p["spec"]["containers"] = [
        {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "1Gi"}}},
        {"name": "b", "resources": {"requests": {"cpu": "200m"}}}]
    p["spec"]["initContainers"] = [
        {"name": "i1", "resources": {"requests": {"cpu": "1", "memory": "512Mi"}}},
        {"name": "i2", "resources": {"requests": {"memory": "3Gi"}}}]
    p["spec"]["overhead"] = {"cpu": "50m", "memory": "10Mi"}
    r = pod_requests(p)
    assert r["cpu"] == 1000 + 50
    assert r["memory"] == 3 * GI + 10 * 1024 ** 2


def test_requests_sidecars_add_to_containers_and_following_init_steps():
    p = pod("p")
    p["spec"]["containers"] = [{"name": "a", "resources": {"requests": {"cpu": "500m"}}}]
    p["spec"]["initContainers"] = [
        {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "200m"}}},
        {"name": "init", "resources": {"requests": {"cpu": "1"}}}]
    # init step: 1 + 0.2 sidecar = 1.2 > containers 0.5 + 0.2
    assert pod_requests(p)["cpu"] == 1200


def test_nonzero_defaults_for_scoring():
    assert pod_nonzero_requests(pod("p")) == (100, 200 * 1024 ** 2)
    assert pod_nonzero_requests(pod("p", cpu="1")) == (1000, 200 * 1024 ** 2)


# ---- NodeResourcesFit -------------------------------------------------------------------


def test_resources_fit_counts_existing_pods():
    h = Harness([node("n1", cpu="2", memory="4Gi")],
                [pod("a", cpu="1500m", memory="1Gi", node_name="n1")])
    assert h.feasible(pod("p", cpu="500m", memory="3Gi")) == {"n1"}
    assert h.reasons(pod("p", cpu="600m", memory="1Gi")) == {"n1": ("Insufficient cpu",)}
    assert h.reasons(pod("p", cpu="600m", memory="4Gi")) == {
        "n1": ("Insufficient cpu", "Insufficient memory")}


def test_too_many_pods_and_extended_resources():
    h = Harness([node("n1", pods="1")], [pod("a", node_name="n1")])
    assert h.reasons(pod("p")) == {"n1": ("Too many pods",)}
    h = Harness([node("n1", extra={"example.com/gpu": "1"}), node("n2")])
    p = pod("p")
    p["spec"]["containers"][0]["resources"] = {"requests": {"example.com/gpu": "1"}}
    assert h.feasible(p) == {"n1"}
    assert h.reasons({**p, "spec": {**p["spec"], "containers": [
        {"name": "c", "resources": {"requests": {"example.com/gpu": "2"}}}]}}) == {
        "n1": ("Insufficient example.com/gpu",), "n2": ("Insufficient example.com/gpu",)}


def test_assumed_pods_take_resources():
    h = Harness([node("n1", cpu="1")])
    assert h.place(pod("a", cpu="600m")) == "n1"
    assert h.reasons(pod("b", cpu="600m")) == {"n1": ("Insufficient cpu",)}
    h.cache.forget_pod("default/a")          # not assumed (added as bound): stays
    assert h.cache.pods.get("default/a") is not None
    h.cache.remove_pod("default/a")
    assert h.schedule(pod("b", cpu="600m")) == "n1"


def test_least_allocated_and_balanced_scores():
    # upstream example: node1 4000m/10000, node2 6000m/10000; pod 3000m/5000 with existing use
    h = Harness([node("n1", cpu="4", memory="10000"), node("n2", cpu="6", memory="10000")])
    p = pod("p", cpu="3", memory="5000")
    least = h.scores(p, "NodeResourcesFit")
    # n1: cpu (4000-3000)*100/4000=25, mem 50 -> 37; n2: cpu 50, mem 50 -> 50
    assert least == {"n1": 37, "n2": 50}
    balanced = h.scores(p, "NodeResourcesBalancedAllocation")
    # n1: fractions .75 .5 -> std .125 -> 87; n2: .5 .5 -> 100
    assert balanced == {"n1": 87, "n2": 100}
    assert h.schedule(p) == "n2"


# ---- NodeName / NodeUnschedulable / NodePorts --------------------------------------------


def test_node_unschedulable_unless_tolerated():
    h = Harness([node("n1", unschedulable=True), node("n2")])
    assert h.feasible(pod("p")) == {"n2"}
    assert h.reasons(pod("p", nodeSelector={"kubernetes.io/hostname": "n1"}))["n1"] == \
        ("node(s) were unschedulable",)
    tol = pod("p", tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                                 "effect": "NoSchedule"}])
    assert h.feasible(tol) == {"n1", "n2"}


def test_node_name_filter():
    from skube.scheduler.plugins import NodeName
    h = Harness([node("n1"), node("n2")])
    info = PodInfo(pod("p", node_name="n2"))
    pl = NodeName()
    assert pl.pre_filter({}, info, h.cache)
    n1, n2 = h.cache.nodes["n1"], h.cache.nodes["n2"]
    assert pl.filter({}, info, n1).reasons == ("node(s) didn't match the requested node name",)
    assert pl.filter({}, info, n2) is None


def test_host_ports_conflict():
    h = Harness([node("n1"), node("n2")])
    a = pod("a", node_name="n1")
    a["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    h.cache.add_pod(a)
    p = pod("p")
    p["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    assert h.feasible(p) == {"n2"}
    p["spec"]["containers"][0]["ports"][0]["protocol"] = "UDP"
    assert h.feasible(p) == {"n1", "n2"}


# ---- TaintToleration --------------------------------------------------------------------


@pytest.mark.parametrize("tol,taint,ok", [
    ({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"},
     {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
    ({"key": "k", "value": "v"}, {"key": "k", "value": "v", "effect": "NoExecute"}, True),
    ({"key": "k", "value": "x", "effect": "NoSchedule"}, {"key": "k", "value": "v", "effect": "NoSchedule"},
     False),
    ({"key": "k", "operator": "Exists"}, {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
    ({"operator": "Exists"}, {"key": "any", "value": "v", "effect": "NoExecute"}, True),
    ({"operator": "Exists", "effect": "NoExecute"}, {"key": "a", "effect": "NoSchedule"}, False),
    ({"key": "k", "operator": "Exists", "effect": "NoSchedule"}, {"key": "other", "effect": "NoSchedule"},
     False),
])
def test_toleration_matching(tol, taint, ok):
    assert tolerates(tol, taint) is ok


def test_taints_filter_and_message():
    h = Harness([node("n1", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
                 node("n2", taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
                 node("n3", cpu="1")])
    e = h.error(pod("p", cpu="2"))
    assert e.statuses["n1"].reasons == ("node(s) had untolerated taint {dedicated: gpu}",)
    assert e.message == (
        "0/3 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint "
        "{dedicated: gpu}, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. "
        "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, "
        "2 Preemption is not helpful for scheduling.")
    ok = pod("p", tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu",
                                "effect": "NoSchedule"}])
    assert h.feasible(ok) == {"n1", "n3"}


def test_prefer_no_schedule_only_scores():
    h = Harness([node("n1", taints=[{"key": "a", "effect": "PreferNoSchedule"},
                                    {"key": "b", "effect": "PreferNoSchedule"}]),
                 node("n2", taints=[{"key": "a", "effect": "PreferNoSchedule"}]),
                 node("n3")])
    p = pod("p")
    assert h.feasible(p) == {"n1", "n2", "n3"}
    assert h.scores(p, "TaintToleration") == {"n1": 0, "n2": 50, "n3": 100}
    tol = pod("p", tolerations=[{"key": "a", "operator": "Exists", "effect": "PreferNoSchedule"}])
    assert h.scores(tol, "TaintToleration") == {"n1": 0, "n2": 100, "n3": 100}


# ---- NodeAffinity -----------------------------------------------------------------------


def _req(*terms):
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}}


def test_node_selector_and_message():
    h = Harness([node("n1", labels={"disk": "ssd"}), node("n2")])
    assert h.feasible(pod("p", nodeSelector={"disk": "ssd"})) == {"n1"}
    e = h.error(pod("p", nodeSelector={"disk": "nvme"}))
    assert e.message.startswith("0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.")
    assert e.message.endswith("preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.")


@pytest.mark.parametrize("expr,expected", [
    ({"key": "zone", "operator": "In", "values": ["a", "b"]}, {"n1", "n2"}),
    ({"key": "zone", "operator": "NotIn", "values": ["a"]}, {"n2", "n3"}),
    ({"key": "zone", "operator": "Exists"}, {"n1", "n2"}),
    ({"key": "zone", "operator": "DoesNotExist"}, {"n3"}),
    ({"key": "gen", "operator": "Gt", "values": ["3"]}, {"n2"}),
    ({"key": "gen", "operator": "Lt", "values": ["3"]}, {"n1"}),
    ({"key": "gen", "operator": "Gt", "values": ["x"]}, set()),
])
def test_required_node_affinity_operators(expr, expected):
    h = Harness([node("n1", labels={"zone": "a", "gen": "2"}), node("n2", labels={"zone": "b", "gen": "4"}),
                 node("n3", labels={"gen": "abc"})])
    assert h.feasible(pod("p", affinity=_req({"matchExpressions": [expr]}))) == expected


def test_node_affinity_terms_are_ored_and_match_fields():
    h = Harness([node("n1", labels={"zone": "a"}), node("n2"), node("n3")])
    aff = _req({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
               {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n3"]}]})
    assert h.feasible(pod("p", affinity=aff)) == {"n1", "n3"}
    # an empty term matches nothing; nodeSelector and affinity both apply
    assert h.feasible(pod("p", affinity=_req({}))) == set()
    assert h.feasible(pod("p", affinity=aff, nodeSelector={"zone": "a"})) == {"n1"}


def test_preferred_node_affinity_scores():
    h = Harness([node("n1", labels={"zone": "a"}), node("n2", labels={"zone": "b", "ssd": "1"}), node("n3")])
    aff = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 2, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
        {"weight": 8, "preference": {"matchExpressions": [{"key": "ssd", "operator": "Exists"}]}}]}}
    p = pod("p", affinity=aff)
    assert h.scores(p, "NodeAffinity") == {"n1": 25, "n2": 100, "n3": 0}
    assert h.schedule(p) == "n2"


# ---- PodTopologySpread ------------------------------------------------------------------


def _spread(max_skew=1, key="zone", when="DoNotSchedule", labels=None, **extra):
    return {"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": labels or {"app": "web"}}, **extra}


def _zones():
    return [node("a1", labels={"zone": "a"}), node("a2", labels={"zone": "a"}),
            node("b1", labels={"zone": "b"}), node("c1", labels={"zone": "c"})]


def test_spread_filter_skew():
    web = {"app": "web"}
    h = Harness(_zones(), [pod("w1", labels=web, node_name="a1"), pod("w2", labels=web, node_name="b1")])
    p = pod("p", labels=web, topologySpreadConstraints=[_spread()])
    assert h.feasible(p) == {"c1"}
    assert h.reasons(pod("q", labels=web, nodeSelector={"zone": "b"},
                         topologySpreadConstraints=[_spread(nodeAffinityPolicy="Ignore")])) == {
        "a1": ("node(s) didn't match Pod's node affinity/selector",),
        "a2": ("node(s) didn't match Pod's node affinity/selector",),
        "b1": ("node(s) didn't match pod topology spread constraints",),
        "c1": ("node(s) didn't match Pod's node affinity/selector",)}
    # maxSkew 2 allows zone a and b as well
    assert h.feasible(pod("p", labels=web, topologySpreadConstraints=[_spread(2)])) == {"a1", "a2", "b1", "c1"}


def test_spread_missing_label_and_other_namespaces_and_terminating():
    web = {"app": "web"}
    other = pod("o", ns="other", labels=web, node_name="c1")
    gone = pod("g", labels=web, node_name="c1")
    gone["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    nodes = _zones() + [node("x1")]
    h = Harness(nodes, [pod("w1", labels=web, node_name="a1"), pod("w2", labels=web, node_name="b1"), other, gone])
    r = h.reasons(pod("p", labels=web, nodeSelector={"kubernetes.io/hostname": "x1"},
                      topologySpreadConstraints=[_spread()]))
    assert r["x1"] == ("node(s) didn't match pod topology spread constraints (missing required label)",)
    # the pod in another namespace and the terminating one do not count: c1 is the only 0 domain
    assert h.feasible(pod("p", labels=web, topologySpreadConstraints=[_spread()])) == {"c1"}


def test_spread_min_domains_and_node_affinity_policy():
    web = {"app": "web"}
    nodes = [node("a1", labels={"zone": "a"}), node("b1", labels={"zone": "b"})]
    h = Harness(nodes, [pod("w1", labels=web, node_name="a1")])
    # 2 domains < minDomains 3: global min is 0, so zone a (1+1-0 > 1) is out
    p = pod("p", labels=web, topologySpreadConstraints=[_spread(minDomains=3)])
    assert h.feasible(p) == {"b1"}
    h = Harness(nodes, [pod("w1", labels=web, node_name="a1"), pod("w2", labels=web, node_name="b1"),
                        pod("w3", labels=web, node_name="b1")])
    # Honor (default): zone b is ignored when the pod may only go to zone a -> min is 1, a fits
    aff = _req({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]})
    assert h.feasible(pod("p", labels=web, affinity=aff, topologySpreadConstraints=[_spread()])) == {"a1"}
    ignore = _spread(nodeAffinityPolicy="Ignore")
    assert h.feasible(pod("p", labels=web, affinity=aff, topologySpreadConstraints=[ignore])) == {"a1"}
    assert h.feasible(pod("p", labels=web, topologySpreadConstraints=[ignore])) == {"a1"}


def test_spread_node_taints_policy():
    web = {"app": "web"}
    nodes = [node("a1", labels={"zone": "a"}),
             node("b1", labels={"zone": "b"}, taints=[{"key": "t", "effect": "NoSchedule"}])]
    h = Harness(nodes, [pod("w1", labels=web, node_name="a1")])
    # Ignore (default): the tainted zone b counts with 0 pods -> a is skewed
    assert h.reasons(pod("p", labels=web, topologySpreadConstraints=[_spread()]))["a1"] == (
        "node(s) didn't match pod topology spread constraints",)
    honor = _spread(nodeTaintsPolicy="Honor")
    assert h.feasible(pod("p", labels=web, topologySpreadConstraints=[honor])) == {"a1"}


def test_spread_sequence_balances_zones():
    h = Harness(_zones())
    web = {"app": "web"}
    zones = {"a1": "a", "a2": "a", "b1": "b", "c1": "c"}
    placed = [zones[h.place(pod(f"p{i}", labels=web, topologySpreadConstraints=[_spread()]))]
              for i in range(9)]
    assert sorted(placed).count("a") == 3 and placed.count("b") == 3 and placed.count("c") == 3


def test_spread_schedule_anyway_scores_emptier_domain():
    web = {"app": "web"}
    h = Harness(_zones(), [pod("w1", labels=web, node_name="a1"), pod("w2", labels=web, node_name="a2"),
                           pod("w3", labels=web, node_name="b1")])
    p = pod("p", labels=web, topologySpreadConstraints=[_spread(when="ScheduleAnyway")])
    s = h.scores(p, "PodTopologySpread")
    assert s["c1"] == 100 and s["c1"] > s["b1"] > s["a1"] == s["a2"]
    assert h.feasible(p) == {"a1", "a2", "b1", "c1"}


# ---- InterPodAffinity -------------------------------------------------------------------


def _anti(labels, key="kubernetes.io/hostname", **extra):
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term(labels, key, **extra)]}}


def _aff(labels, key="kubernetes.io/hostname", **extra):
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term(labels, key, **extra)]}}


def test_required_anti_affinity_of_the_pod():
    db = {"app": "db"}
    h = Harness(_zones(), [pod("d1", labels=db, node_name="a1")])
    assert h.feasible(pod("p", affinity=_anti(db))) == {"a2", "b1", "c1"}
    assert h.feasible(pod("p", affinity=_anti(db, "zone"))) == {"b1", "c1"}
    r = h.reasons(pod("p", affinity=_anti(db, "zone"), nodeSelector={"zone": "a"}))
    assert r["a1"] == ("node(s) didn't match pod anti-affinity rules",)


def test_existing_pods_anti_affinity_is_symmetric():
    h = Harness(_zones(), [pod("d1", labels={"app": "db"}, node_name="a1", affinity=_anti({"app": "web"}, "zone"))])
    r = h.reasons(pod("p", labels={"app": "web"}, nodeSelector={"zone": "a"}))
    assert r == {"a1": ("node(s) didn't satisfy existing pods anti-affinity rules",),
                 "a2": ("node(s) didn't satisfy existing pods anti-affinity rules",),
                 "b1": ("node(s) didn't match Pod's node affinity/selector",),
                 "c1": ("node(s) didn't match Pod's node affinity/selector",)}
    # other namespaces are not selected by the term (its namespace defaults to the owner's)
    assert h.feasible(pod("p", ns="other", labels={"app": "web"})) == {"a1", "a2", "b1", "c1"}


def test_required_affinity_and_first_pod_of_a_group():
    web = {"app": "web"}
    h = Harness(_zones(), [pod("c", labels={"app": "cache"}, node_name="b1")])
    assert h.feasible(pod("p", affinity=_aff({"app": "cache"}, "zone"))) == {"b1"}
    e = h.error(pod("p", affinity=_aff({"app": "nothing"}, "zone")))
    assert "4 node(s) didn't match pod affinity rules" in e.message
    # no pod matches anywhere, but the pod matches its own term: allowed
    assert h.feasible(pod("p", labels=web, affinity=_aff(web, "zone"))) == {"a1", "a2", "b1", "c1"}


def test_affinity_namespaces_and_namespace_selector():
    h = Harness(_zones(), [pod("c", ns="team-a", labels={"app": "cache"}, node_name="b1")],
                namespaces={"team-a": {"team": "a"}, "default": {}})
    assert h.error(pod("p", affinity=_aff({"app": "cache"}, "zone")))
    assert h.feasible(pod("p", affinity=_aff({"app": "cache"}, "zone", namespaces=["team-a"]))) == {"b1"}
    sel = _aff({"app": "cache"}, "zone", namespaceSelector={"matchLabels": {"team": "a"}})
    assert h.feasible(pod("p", affinity=sel)) == {"b1"}
    every = _anti({"app": "cache"}, "zone", namespaceSelector={})
    assert h.feasible(pod("p", affinity=every)) == {"a1", "a2", "c1"}


def test_anti_affinity_sequence_spreads_one_per_node():
    h = Harness(_zones())
    web = {"app": "web"}
    names = {h.place(pod(f"w{i}", labels=web, affinity=_anti(web))) for i in range(4)}
    assert names == {"a1", "a2", "b1", "c1"}
    e = h.error(pod("w5", labels=web, affinity=_anti(web)))
    assert e.message.startswith("0/4 nodes are available: 4 node(s) didn't match pod anti-affinity rules.")
    assert "4 No preemption victims found for incoming pod." in e.message


def test_preferred_pod_affinity_and_anti_affinity_scores():
    h = Harness(_zones(), [pod("c", labels={"app": "cache"}, node_name="b1"),
                           pod("x", labels={"app": "noisy"}, node_name="c1")])
    p = pod("p", affinity={
        "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "podAffinityTerm": term({"app": "cache"}, "zone")}]},
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "podAffinityTerm": term({"app": "noisy"}, "zone")}]}})
    s = h.scores(p, "InterPodAffinity")
    assert s == {"b1": 100, "a1": 50, "a2": 50, "c1": 0}
    assert h.schedule(p) == "b1"


def test_existing_pods_preferred_terms_score_symmetrically():
    pref = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 5, "podAffinityTerm": term({"app": "web"}, "zone")}]}}
    h = Harness(_zones(), [pod("c", labels={"app": "cache"}, node_name="c1", affinity=pref)])
    s = h.scores(pod("p", labels={"app": "web"}), "InterPodAffinity")
    assert s == {"c1": 100, "a1": 0, "a2": 0, "b1": 0}


# ---- the framework ----------------------------------------------------------------------


def test_no_nodes_and_random_tie_break():
    assert Harness([]).error(pod("p")).message == "no nodes available to schedule pods"
    names = {Harness([node("n1"), node("n2"), node("n3")], seed=s).schedule(pod("p")) for s in range(20)}
    assert names == {"n1", "n2", "n3"}


def test_percentage_of_nodes_to_score():
    h = Harness([node(f"n{i}") for i in range(300)])
    assert h.sched.num_feasible_nodes_to_find(300) == 144      # 50 - 300/125 = 48 %
    assert h.sched.num_feasible_nodes_to_find(99) == 99
    assert h.sched.num_feasible_nodes_to_find(5000) == 500     # 10 %
    assert h.sched.num_feasible_nodes_to_find(20000) == 1000   # at least 5 %
    # filtering stops once enough feasible nodes were found, and the next cycle goes on from there
    h.schedule(pod("p"))
    assert h.sched.next_start_node_index == 144
    h.sched.percentage_of_nodes_to_score = 100
    assert h.sched.num_feasible_nodes_to_find(5000) == 5000
    h.sched.percentage_of_nodes_to_score = 10
    assert h.sched.num_feasible_nodes_to_find(300) == 100


def test_preemption_policy_never_message():
    h = Harness([node("n1", cpu="1")])
    e = h.error(pod("p", cpu="2", preemptionPolicy="Never"))
    assert e.message == ("0/1 nodes are available: 1 Insufficient cpu. "
                         "preemption: not eligible due to preemptionPolicy=Never.")
