"""Elastic scheduling policies in admission (config, rules, per-pod overrides) and the
ReplicaSet's scale-down victim order (pod-deletion-cost and the rest of upstream's)."""
from __future__ import annotations

import json
import random

import pytest

from skube.api.errors import APIError
from skube.apiserver.admission import TOLERATION, ServerlessAdmission
from skube.controllers.controllerutils import deletion_order
from skube.scheduler.policies import (MAX_WAIT_ANNOTATION, POLICY_ANNOTATION, RESOURCE_POLICY_ANNOTATION,
                                      policy_of)


def pod(name="p", ns="default", labels=None, annotations=None) -> dict:
    meta = {"name": name, "namespace": ns, "labels": labels or {}}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": {"containers": [{"name": "c", "image": "x"}]}}


def admit(adm: ServerlessAdmission, p: dict) -> dict:
    adm.admit_pod(p)
    return p


def tolerates(p: dict) -> bool:
    return TOLERATION in (p["spec"].get("tolerations") or [])


# ---- configs and rules ------------------------------------------------------------------


def test_existing_config_keeps_working():
    adm = ServerlessAdmission.from_config(
        {"default": True, "rules": [{"namespace": "pinned", "enabled": False},
                                    {"selector": "tier=db", "enabled": False}]})
    p = admit(adm, pod())
    assert tolerates(p) and "annotations" not in p["metadata"]      # fair: nothing recorded
    assert not tolerates(admit(adm, pod(ns="pinned")))
    assert not tolerates(admit(adm, pod(labels={"tier": "db"})))
    assert adm.enabled_for("default", {}) and not adm.enabled_for("pinned", {})
    off = ServerlessAdmission.from_config(None)
    assert not tolerates(admit(off, pod()))
    assert tolerates(admit(ServerlessAdmission.from_config(None, default=True), pod()))


def test_default_policy_rules_first_match_wins_and_flag_overrides():
    cfg = {"policy": "normalNodePrefer", "maxWaitSeconds": 45,
           "rules": [{"namespace": "batch", "policy": "virtualNodeOnly"},
                     {"namespace": "batch", "policy": "normalNodeOnly"},
                     {"namespace": "legacy", "enabled": True},
                     {"namespace": "db", "enabled": False}]}
    adm = ServerlessAdmission.from_config(cfg)
    p = admit(adm, pod())
    assert tolerates(p)
    assert p["metadata"]["annotations"] == {POLICY_ANNOTATION: "normalNodePrefer", MAX_WAIT_ANNOTATION: "45"}
    b = admit(adm, pod(ns="batch"))
    assert b["spec"]["nodeSelector"] == {"type": "virtual-kubelet"} and tolerates(b)
    assert b["metadata"]["annotations"][POLICY_ANNOTATION] == "virtualNodeOnly"
    # enabled: true follows the cluster's default policy
    assert policy_of(admit(adm, pod(ns="legacy"))).name == "normalNodePrefer"
    assert not tolerates(admit(adm, pod(ns="db")))
    # skube up --policy replaces the default, not the rules
    flag = ServerlessAdmission.from_config(cfg, policy="virtualNodeOnly")
    assert policy_of(admit(flag, pod())).name == "virtualNodeOnly"
    assert policy_of(admit(flag, pod(ns="db"))).name == "fair" and not tolerates(admit(flag, pod(ns="db")))


def test_resource_policy_rule_records_units_and_selector():
    adm = ServerlessAdmission.from_config({"rules": [{
        "namespace": "web", "selector": "app in (a,b)", "policy": "resourcePolicy",
        "units": [{"nodeSelector": {"skube.io/node-pool": "general"}, "max": 10}, {"resource": "eci"}]}]})
    p = admit(adm, pod(ns="web", labels={"app": "a"}))
    ann = p["metadata"]["annotations"]
    assert ann[POLICY_ANNOTATION] == "resourcePolicy"
    assert json.loads(ann[RESOURCE_POLICY_ANNOTATION]) == {
        "units": [{"nodeSelector": {"skube.io/node-pool": "general"}, "max": 10}, {"virtualNode": True}],
        "selector": "app in (a,b)"}
    assert tolerates(p)
    # an ordinary-only resource policy does not tolerate the virtual node
    only = ServerlessAdmission.from_config({"policy": "resourcePolicy", "units": [{"max": 3}]})
    assert not tolerates(admit(only, pod()))


@pytest.mark.parametrize("cfg, flag, message", [
    ({"policy": "cheapest"}, None, "serverless.policy: unknown policy 'cheapest'"),
    ({"policy": "resourcePolicy"}, None, "serverless.units: the resourcePolicy policy needs its units"),
    ({}, "resourcePolicy", "serverless.units: the resourcePolicy policy needs its units"),
    ({"policy": "normalNodePrefer", "units": [{}]}, None, "only the resourcePolicy policy takes units"),
    ({"policy": "normalNodePrefer", "maxWaitSeconds": -1}, None, "maxWaitSeconds: must be a non-negative"),
    ({"rules": [{"policy": "resourcePolicy", "units": [{"max": "ten"}]}]}, None,
     r"serverless.rules\[0\].units\[0\].max: must be a non-negative integer"),
])
def test_bad_configs_say_what_to_fix(cfg, flag, message):
    with pytest.raises(ValueError, match=message):
        ServerlessAdmission.from_config(cfg, policy=flag)


def test_skube_up_checks_the_config_before_starting(tmp_path):
    from skube.apiserver.admission import check_cluster_config
    check_cluster_config(tmp_path / "config.yaml", "normalNodePrefer")          # no config: fine
    (tmp_path / "config.yaml").write_text("serverless:\n  rules:\n  - policy: cheapest\n")
    with pytest.raises(ValueError, match=r"config.yaml: serverless.rules\[0\].policy: unknown policy 'cheapest'"):
        check_cluster_config(tmp_path / "config.yaml")


# ---- per-pod opt-in / opt-out -----------------------------------------------------------


@pytest.mark.parametrize("annotations, labels, want", [
    ({"alibabacloud.com/burst-resource": "eci"}, {}, "normalNodePrefer"),
    ({"alibabacloud.com/burst-resource": "eci_only"}, {}, "virtualNodeOnly"),
    ({"alibabacloud.com/burst-resource": ""}, {}, "normalNodeOnly"),
    ({}, {"alibabacloud.com/eci": "true"}, "virtualNodeOnly"),
    ({}, {"alibabacloud.com/eci": "false"}, "normalNodeOnly"),
    ({POLICY_ANNOTATION: "fair"}, {"alibabacloud.com/eci": "true"}, "fair"),
    ({"alibabacloud.com/burst-resource": "eci"}, {"alibabacloud.com/eci": "true"}, "normalNodePrefer"),
])
def test_pod_annotations_and_labels_override_the_rules(annotations, labels, want):
    adm = ServerlessAdmission.from_config({"default": True, "rules": [{"namespace": "default", "enabled": False}]})
    p = pod(labels=labels, annotations=dict(annotations))
    assert adm.resolve(p).name == want
    admit(adm, p)
    assert tolerates(p) == (want != "normalNodeOnly")
    assert (p["spec"].get("nodeSelector") == {"type": "virtual-kubelet"}) == (want == "virtualNodeOnly")


def test_opt_in_keeps_the_namespace_settings_of_the_same_policy():
    adm = ServerlessAdmission.from_config({"rules": [{"namespace": "web", "policy": "normalNodePrefer",
                                                      "maxWaitSeconds": 20}]})
    p = admit(adm, pod(ns="web", annotations={"alibabacloud.com/burst-resource": "eci"}))
    assert policy_of(p).max_wait_seconds == 20
    q = admit(adm, pod(annotations={POLICY_ANNOTATION: "normalNodePrefer", MAX_WAIT_ANNOTATION: "7.5"}))
    assert policy_of(q).max_wait_seconds == 7.5
    r = admit(adm, pod(annotations={POLICY_ANNOTATION: "resourcePolicy",
                                    RESOURCE_POLICY_ANNOTATION: '{"units": [{"max": 2}, {"virtualNode": true}]}'}))
    assert [u.max for u in policy_of(r).units] == [2, None] and tolerates(r)


@pytest.mark.parametrize("annotations, message", [
    ({"alibabacloud.com/burst-resource": "ecs"},
     'Pod "p" is invalid: metadata.annotations[alibabacloud.com/burst-resource]: Invalid value: "ecs": '
     'must be "eci", "eci_only" or empty'),
    ({POLICY_ANNOTATION: "cheap"}, "must be one of fair, normalNodeOnly, virtualNodeOnly"),
    ({POLICY_ANNOTATION: "normalNodePrefer", MAX_WAIT_ANNOTATION: "soon"}, "must be a non-negative number"),
    ({POLICY_ANNOTATION: "resourcePolicy"}, "the resourcePolicy policy needs its units here"),
    ({POLICY_ANNOTATION: "resourcePolicy", RESOURCE_POLICY_ANNOTATION: "[1]"}, "expected a JSON object"),
])
def test_bad_pod_values_are_422(annotations, message):
    adm = ServerlessAdmission.from_config({"default": True})
    with pytest.raises(APIError) as e:
        adm.admit_pod(pod(annotations=annotations))
    assert e.value.code == 422 and message in e.value.message


# ---- the ReplicaSet's victims -----------------------------------------------------------

T0 = 1_700_000_000.0


def ts(t: float) -> str:
    import datetime as dt
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rpod(name, *, node="n1", phase="Running", ready=True, cost=None, created=T0, ready_at=T0,
         restarts=(0,)) -> dict:
    ann = {"controller.kubernetes.io/pod-deletion-cost": cost} if cost is not None else {}
    conds = [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": ts(ready_at)}]
    return {"metadata": {"name": name, "uid": f"uid-{name}", "annotations": ann, "creationTimestamp": ts(created)},
            "spec": {"nodeName": node} if node else {},
            "status": {"phase": phase, "conditions": conds,
                       "containerStatuses": [{"name": f"c{i}", "restartCount": r} for i, r in enumerate(restarts)]}}


def names(pods, ranks=None, now=T0 + 10_000):
    return [p["metadata"]["name"] for p in deletion_order(pods, ranks, now=now)]


def test_victim_order_follows_upstream_rule_by_rule():
    now = T0 + 10_000
    cases = [  # (deleted first, kept) differing in one rule, earlier rules equal
        (rpod("unassigned", node=None, phase="Pending", ready=False), rpod("assigned", phase="Pending", ready=False)),
        (rpod("pending", phase="Pending", ready=False), rpod("running", ready=False)),
        (rpod("unknown", phase="Unknown", ready=False), rpod("running2", ready=False)),
        (rpod("notready", ready=False), rpod("ready")),
        (rpod("cheap", cost="-5"), rpod("dear", cost="5")),
        (rpod("young-ready", ready_at=now - 10), rpod("old-ready", ready_at=now - 5000)),
        (rpod("restarts", restarts=(0, 4)), rpod("fewer", restarts=(3, 3))),     # max, not sum
        (rpod("newer", created=now - 10), rpod("older", created=now - 5000)),
    ]
    for first, kept in cases:
        for pair in ([first, kept], [kept, first]):
            assert names(pair) == [first["metadata"]["name"], kept["metadata"]["name"]]
    # doubled-up pods (more related pods on their node) go first
    a, b = rpod("crowded", node="n1"), rpod("alone", node="n2")
    assert names([b, a], {"uid-crowded": 3, "uid-alone": 1}) == ["crowded", "alone"]


def test_deletion_cost_beats_doubling_up_readiness_age_restarts_and_age():
    now = T0 + 10_000
    virtual = [rpod(f"vn{i}", node="vn", cost="-1", created=now - 100 * i, ready_at=now - 5000) for i in range(3)]
    ordinary = [rpod(f"n{i}", node="n1", created=now - 1, ready_at=now - 1, restarts=(9,)) for i in range(3)]
    pods = ordinary + virtual
    random.Random(3).shuffle(pods)
    order = names(pods, {f"uid-n{i}": 3 for i in range(3)}, now)
    assert set(order[:3]) == {"vn0", "vn1", "vn2"}


@pytest.mark.parametrize("value, expected_first", [
    ("-1", "annotated"), ("+1", "other"), ("007", "other"), ("1_0", "other"), ("2147483648", "other"),
    ("-2147483648", "annotated"), ("5", "other"), ("0", None),
])
def test_deletion_cost_values_as_upstream_parses_them(value, expected_first):
    # created within the same logarithmic bucket: the uid decides ties, "other" first
    a, b = rpod("annotated", cost=value, created=T0 + 1), rpod("other", cost="0")
    a["metadata"]["uid"], b["metadata"]["uid"] = "uid-b", "uid-a"
    first = names([a, b])[0]
    assert first == (expected_first or "other")
    if value in ("+1", "007", "1_0", "2147483648"):       # invalid: read as 0, so only the tie-break
        assert names([a, b]) == ["other", "annotated"]
