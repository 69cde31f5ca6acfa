"""Unit tests: spec tables and rounding (the documented examples), prices, ledger, meter, report."""
from __future__ import annotations

import pytest

from skube.billing.ledger import Ledger
from skube.billing.meter import Meter, instance_start, instance_stop, workload_of
from skube.billing.prices import ECI_PRICE, FARGATE_PRICE, Price, PriceTable
from skube.billing.report import build_report, parse_since, render_csv, render_json, render_table
from skube.billing.specs import ECI, FARGATE, Spec, SpecTable, pod_resources, spec_table

GIB = 1024 ** 3
MIB = 1024 ** 2


def pod(*containers, init=(), annotations=None, uid="u1", name="p", ns="default", **meta):
    def c(i, r, prefix="c"):
        res = {}
        if isinstance(r, tuple):
            res = {"requests": r[0], "limits": r[1]}
        elif r is not None:
            res = {"requests": r}
        out = {"name": f"{prefix}{i}", "image": "x", "resources": res}
        return out
    spec = {"containers": [c(i, r) for i, r in enumerate(containers)]}
    if init:
        spec["initContainers"] = [c(i, r, "i") if not isinstance(r, dict) or "sidecar" not in r
                                  else {**c(i, r["r"], "s"), "restartPolicy": "Always"}
                                  for i, r in enumerate(init)]
    return {"metadata": {"uid": uid, "name": name, "namespace": ns, "annotations": annotations or {}, **meta},
            "spec": spec}


# ---- ECI ---------------------------------------------------------------------------------------

def test_eci_documented_example_7_vcpu_13_gib_is_8_vcpu_14_gib():
    assert ECI.round_up(7000, 13 * GIB) == Spec(8000, 14 * 1024)
    assert str(ECI.spec_for_pod(pod({"cpu": "7", "memory": "13Gi"}))) == "8 vCPU / 14 GiB"


@pytest.mark.parametrize("cpu,mem,want", [
    ("250m", "512Mi", "0.25 vCPU / 0.5 GiB"),      # the smallest size
    ("100m", "100Mi", "0.25 vCPU / 0.5 GiB"),
    ("250m", "600Mi", "0.25 vCPU / 1 GiB"),
    ("300m", "1Gi", "0.5 vCPU / 1 GiB"),
    ("1", "3Gi", "1 vCPU / 4 GiB"),
    ("1", "9Gi", "2 vCPU / 16 GiB"),                 # 1 vCPU stops at 8 GiB
    ("3", "1Gi", "4 vCPU / 2 GiB"),
    ("64", "512Gi", "64 vCPU / 512 GiB"),            # the largest size
])
def test_eci_rounding(cpu, mem, want):
    assert str(ECI.spec_for_pod(pod({"cpu": cpu, "memory": mem}))) == want


def test_eci_default_when_nothing_asked_is_2_vcpu_4_gib():
    assert ECI.spec_for_pod(pod(None)) == Spec(2000, 4096)


def test_eci_only_cpu_gets_the_smallest_memory_of_that_step():
    assert str(ECI.spec_for_pod(pod({"cpu": "1"}))) == "1 vCPU / 2 GiB"


def test_eci_limits_win_over_requests():
    p = pod(({"cpu": "250m", "memory": "512Mi"}, {"cpu": "2", "memory": "4Gi"}))
    assert str(ECI.spec_for_pod(p)) == "2 vCPU / 4 GiB"
    # requests where a container has no limit (per resource)
    p = pod(({"cpu": "250m", "memory": "512Mi"}, {"memory": "2Gi"}))
    assert str(ECI.spec_for_pod(p)) == "0.5 vCPU / 2 GiB"


def test_larger_than_every_size_is_billed_as_asked():
    s = ECI.spec_for_pod(pod({"cpu": "100", "memory": "10Gi"}))
    assert (s.cpu_m, s.memory_mib, s.rounded) == (100000, 10240, False)


# ---- Fargate ----------------------------------------------------------------------------------

def test_fargate_adds_256_mib_and_rounds_1_vcpu_8_gb_to_2_vcpu_9_gb():
    # the documented example: 1 vCPU + 8 GB requested -> no 1 vCPU/9 GB size -> 2 vCPU / 9 GB
    assert str(FARGATE.spec_for_pod(pod({"cpu": "1", "memory": "8Gi"}))) == "2 vCPU / 9 GiB"


@pytest.mark.parametrize("cpu,mem,want", [
    (None, None, "0.25 vCPU / 0.5 GiB"),             # nothing asked: the smallest size
    ("250m", "256Mi", "0.25 vCPU / 0.5 GiB"),        # 256 + 256 MiB = 0.5 GiB exactly
    ("250m", "257Mi", "0.25 vCPU / 1 GiB"),
    ("500m", "2Gi", "0.5 vCPU / 3 GiB"),
    ("2", "15Gi", "2 vCPU / 16 GiB"),
    ("4", "17Gi", "4 vCPU / 18 GiB"),                # 1 GB steps from 8 to 30
    ("8", "17Gi", "8 vCPU / 20 GiB"),                # 4 GB steps from 16 to 60
    ("16", "33Gi", "16 vCPU / 40 GiB"),              # 8 GB steps from 32 to 120
])
def test_fargate_rounding(cpu, mem, want):
    req = {k: v for k, v in (("cpu", cpu), ("memory", mem)) if v}
    assert str(FARGATE.spec_for_pod(pod(req or None))) == want


def test_fargate_pod_size_is_max_of_largest_init_and_sum_of_apps():
    p = pod({"cpu": "250m", "memory": "1Gi"}, {"cpu": "250m", "memory": "1Gi"},
            init=[{"cpu": "1", "memory": "512Mi"}, {"cpu": "250m", "memory": "3Gi"}])
    r = pod_resources(p, "requests")
    assert (r.cpu_m, r.memory_bytes) == (1000, 3 * GIB)
    assert str(FARGATE.spec_for_pod(p)) == "1 vCPU / 4 GiB"        # 3 GiB + 256 MiB -> 4


def test_fargate_uses_requests_not_limits():
    p = pod(({"cpu": "250m", "memory": "256Mi"}, {"cpu": "4", "memory": "8Gi"}))
    assert str(FARGATE.spec_for_pod(p)) == "0.25 vCPU / 0.5 GiB"


def test_sidecar_init_containers_add_to_the_apps():
    p = pod({"cpu": "500m", "memory": "1Gi"}, init=[{"sidecar": 1, "r": {"cpu": "500m", "memory": "1Gi"}}])
    r = pod_resources(p, "requests")
    assert (r.cpu_m, r.memory_bytes) == (1000, 2 * GIB)


def test_pod_level_resources_win():
    p = pod({"cpu": "100m"})
    p["spec"]["resources"] = {"limits": {"cpu": "2", "memory": "8Gi"}}
    assert str(ECI.spec_for_pod(p)) == "2 vCPU / 8 GiB"


def test_custom_table_from_yaml_shape_roundtrips():
    t = SpecTable.from_dict({"name": "tiny", "basis": "requests", "overheadMiB": 128,
                             "sizes": [{"vcpu": 1, "memoryGiB": {"min": 1, "max": 3, "step": 0.5}}]})
    assert [s.memory_mib for s in t.sizes] == [1024, 1536, 2048, 2560, 3072]
    assert str(t.spec_for_pod(pod({"cpu": "1", "memory": "1Gi"}))) == "1 vCPU / 1.5 GiB"
    assert SpecTable.from_dict(t.to_dict()).sizes == t.sizes
    assert spec_table("fargate") is FARGATE
    with pytest.raises(ValueError):
        spec_table("nope")


# ---- prices -----------------------------------------------------------------------------------

def test_default_prices():
    assert ECI_PRICE.per_second(1, 1) == pytest.approx(0.0000077 + 0.00000096)
    assert FARGATE_PRICE.per_second(1, 1) == pytest.approx((0.04048 + 0.004445) / 3600)
    # Fargate: one-minute minimum for a whole run
    assert FARGATE_PRICE.cost(1, 2, 10) == pytest.approx(60 * FARGATE_PRICE.per_second(1, 2))
    assert FARGATE_PRICE.cost(1, 2, 10, whole_run=False) == pytest.approx(10 * FARGATE_PRICE.per_second(1, 2))


def test_price_file_overrides(tmp_path):
    f = tmp_path / "prices.yaml"
    f.write_text("currency: CNY\ntables:\n  eci: {vcpuPerHour: 36, memoryGiBPerSecond: 0.001}\n")
    t = PriceTable.load(f)
    assert t.currency == "CNY"
    assert t.price("eci") == Price(0.01, 0.001)
    assert t.price("fargate") == FARGATE_PRICE


# ---- meter + ledger + report ------------------------------------------------------------------

def status(phase, start="2025-01-01T00:00:00Z", finished=None):
    cs = {"name": "c0", "state": {"running": {"startedAt": start}}}
    if finished:
        cs["state"] = {"terminated": {"exitCode": 0, "startedAt": start, "finishedAt": finished}}
    return {"phase": phase, "startTime": start, "containerStatuses": [cs]}


T0 = 1735689600.0   # 2025-01-01T00:00:00Z


def test_status_times():
    assert instance_start(status("Running")) == T0
    assert instance_stop(status("Succeeded", finished="2025-01-01T00:00:30Z")) == T0 + 30
    assert instance_start({"containerStatuses": [{"state": {"running": {"startedAt": "2025-01-01T00:00:05Z"}}}]}) \
        == T0 + 5
    assert instance_start({"phase": "Pending"}) is None


def test_workload_of():
    p = {"metadata": {"labels": {"pod-template-hash": "abc12"},
                      "ownerReferences": [{"kind": "ReplicaSet", "name": "web-abc12", "controller": True}]}}
    assert workload_of(p) == ("Deployment", "web")
    p = {"metadata": {"ownerReferences": [{"kind": "Job", "name": "j", "controller": True}]}}
    assert workload_of(p) == ("Job", "j")
    assert workload_of({"metadata": {}}) == (None, None)


def test_meter_records_one_run_and_replays_are_idempotent(tmp_path):
    now = [T0 + 100]
    m = Meter(Ledger.for_data_dir(tmp_path), "vn", ECI, clock=lambda: now[0])
    p = pod({"cpu": "1", "memory": "2Gi"})
    m.observe(p, {"phase": "Pending"})
    assert m.ledger.runs() == []
    m.observe(p, status("Running"))
    m.observe(p, status("Running"))
    [r] = m.ledger.runs()
    assert (r.start, r.stop, r.cpu_m, r.memory_mib, r.spec_table) == (T0, None, 1000, 2048, "eci")
    m.observe(p, status("Succeeded", finished="2025-01-01T00:00:42Z"))
    m.close()
    # a restarted node replays the same statuses: nothing changes
    m = Meter(Ledger.for_data_dir(tmp_path), "vn", ECI, clock=lambda: now[0])
    m.observe(p, status("Running"))
    m.observe(p, status("Succeeded", finished="2025-01-01T00:00:42Z"))
    m.stopped(p)
    [r] = m.ledger.runs()
    assert (r.start, r.stop) == (T0, T0 + 42)
    rep = build_report(m.ledger.runs(), PriceTable.defaults(), now=T0 + 1000)
    assert rep.pods[0].seconds == 42
    assert rep.total == pytest.approx(42 * (1 * 0.0000077 + 2 * 0.00000096))


def test_meter_stop_on_delete_and_new_instance_and_reconcile(tmp_path):
    now = [T0 + 10]
    m = Meter(Ledger.for_data_dir(tmp_path), "vn", ECI, clock=lambda: now[0])
    a, b = pod({"cpu": "1", "memory": "2Gi"}, uid="a"), pod(None, uid="b", name="q")
    m.observe(a, status("Running"))
    m.observe(b, status("Running"))
    m.stopped(a)                                     # deleted at T0+10
    now[0] = T0 + 20
    m.observe(b, status("Running", start="2025-01-01T00:00:15Z"))   # b's instance was replaced
    now[0] = T0 + 30
    m.reconcile(["a"])                               # b's instance vanished: stops now
    runs = {(r.pod_uid, r.start): r.stop for r in m.ledger.runs()}
    assert runs == {("a", T0): T0 + 10, ("b", T0): T0 + 15, ("b", T0 + 15): T0 + 30}
    rep = build_report(m.ledger.runs(), PriceTable.defaults(), now=T0 + 40)
    q = [p for p in rep.pods if p.name == "q"][0]
    assert (q.runs, q.seconds, q.running) == (2, 30, False)


def test_report_running_accrues_and_since_clips(tmp_path):
    m = Meter(Ledger.for_data_dir(tmp_path), "vn", FARGATE, clock=lambda: T0)
    p = pod({"cpu": "1", "memory": "1Gi"}, ownerReferences=[{"kind": "Job", "name": "j", "controller": True}])
    m.observe(p, status("Running"))
    runs = m.ledger.runs()
    per_s = FARGATE_PRICE.per_second(1, 2)
    r1 = build_report(runs, PriceTable.defaults(), now=T0 + 100)
    r2 = build_report(runs, PriceTable.defaults(), now=T0 + 200)
    assert r1.pods[0].running and r1.pods[0].seconds == 100 and r2.pods[0].seconds == 200
    assert r2.total == pytest.approx(200 * per_s)
    r3 = build_report(runs, PriceTable.defaults(), since=T0 + 150, now=T0 + 200)
    assert r3.pods[0].seconds == 50 and r3.total == pytest.approx(50 * per_s)
    assert r3.workloads[0].key == "default/Job/j"
    assert r3.namespaces[0].key == "default"
    # renderers
    assert render_csv(r3).splitlines()[0].startswith("namespace,name,uid,node,workload,spec")
    assert '"total"' in render_json(r3)
    assert "TOTAL" in render_table(r3)


def test_parse_since():
    assert parse_since("1h", now=T0) == T0 - 3600
    assert parse_since("2h30m", now=T0) == T0 - 9000
    assert parse_since("2025-01-01T00:00:00Z") == T0
    with pytest.raises(ValueError):
        parse_since("yesterday")


# ---- eci-use-specs and spot ----------------------------------------------------------------------

from skube.billing.specs import (SPOT_STRATEGY_ANNOTATION, USE_SPECS_ANNOTATION,  # noqa: E402
                                 SpecUnsatisfiable, is_spot, parse_use_specs)


def test_use_specs_first_listed_spec_that_fits_wins():
    # 1 vCPU / 3 GiB does not fit 1-2Gi; 2-4Gi is the first that does (not the cheaper rounding 1/4)
    p = pod({"cpu": "1", "memory": "3Gi"}, annotations={USE_SPECS_ANNOTATION: "1-2Gi,2-4Gi,1-4Gi"})
    assert ECI.spec_for_pod(p) == Spec(2000, 4096)
    # nothing requested: the first listed spec, not the 2/4 default
    assert ECI.spec_for_pod(pod(None, annotations={USE_SPECS_ANNOTATION: "0.5-1Gi, 4-8Gi"})) == Spec(500, 1024)


def test_use_specs_skips_ecs_types_and_unsold_sizes():
    p = pod({"cpu": "500m"}, annotations={USE_SPECS_ANNOTATION: "ecs.c6.xlarge,3-5Gi,1-2Gi"})
    assert ECI.spec_for_pod(p) == Spec(1000, 2048)


def test_use_specs_none_fits_raises_with_every_reason_and_meter_rounds_instead():
    p = pod({"cpu": "4", "memory": "8Gi"}, annotations={USE_SPECS_ANNOTATION: "2-4Gi,ecs.g6.large,3-5Gi"})
    with pytest.raises(SpecUnsatisfiable) as e:
        ECI.spec_for_pod(p)
    msg = str(e.value)
    assert "2-4Gi: smaller than the pod's 4 vCPU / 8 GiB" in msg
    assert "ecs.g6.large: ECS instance types are not sold" in msg and "3-5Gi: not a size" in msg
    assert ECI.spec_for_pod(p, strict=False) == Spec(4000, 8192)


def test_use_specs_fargate_overhead_counts():
    # 1 vCPU / 2 GiB + 256 MiB does not fit 1-2Gi on Fargate
    p = pod({"cpu": "1", "memory": "2Gi"}, annotations={USE_SPECS_ANNOTATION: "1-2Gi,1-3Gi"})
    assert FARGATE.spec_for_pod(p) == Spec(1000, 3072)


@pytest.mark.parametrize("value,err", [("", "is empty"), ("2-4G", "neither"), ("2c4g", "neither"),
                                       ("1-2Gi,2-4Gi,4-8Gi,8-16Gi,16-32Gi,32-64Gi", "at most 5")])
def test_use_specs_bad_values(value, err):
    with pytest.raises(SpecUnsatisfiable, match=err):
        parse_use_specs(value)


def test_spot_annotation_and_spot_prices(tmp_path):
    assert is_spot(pod(None, annotations={SPOT_STRATEGY_ANNOTATION: "SpotAsPriceGo"}))
    assert is_spot(pod(None, annotations={SPOT_STRATEGY_ANNOTATION: "SpotWithPriceLimit"}))
    assert not is_spot(pod(None, annotations={SPOT_STRATEGY_ANNOTATION: "NoSpot"}))
    assert not is_spot(pod(None))
    assert ECI_PRICE.for_run(True).per_second(1, 2) == pytest.approx(0.3 * ECI_PRICE.per_second(1, 2))
    assert ECI_PRICE.for_run(False) is ECI_PRICE
    t = PriceTable.from_dict({"tables": {
        "a": {"vcpuPerSecond": 1, "memoryGiBPerSecond": 1, "minimumSeconds": 60,
              "spot": {"vcpuPerSecond": 0.25, "memoryGiBPerSecond": 0.5}},
        "b": {"vcpuPerSecond": 1, "memoryGiBPerSecond": 1, "spotFraction": 0.5}}})
    assert t.price("a").for_run(True) == Price(0.25, 0.5, 60)
    assert t.price("b").for_run(True).per_second(2, 2) == pytest.approx(2)
    with pytest.raises(ValueError, match="spotFraction"):
        PriceTable.from_dict({"tables": {"c": {"vcpuPerSecond": 1, "memoryGiBPerSecond": 1, "spotFraction": 2}}})


def test_meter_and_report_bill_spot_runs_at_the_spot_price(tmp_path):
    meter = Meter(Ledger(tmp_path / "l.db"), "vn", ECI, clock=lambda: 1000.0)
    started = {"phase": "Running", "startTime": "1970-01-01T00:00:00Z"}
    done = {"phase": "Succeeded", "startTime": "1970-01-01T00:00:00Z", "containerStatuses": [
        {"state": {"terminated": {"finishedAt": "1970-01-01T00:01:40Z"}}}]}
    spot = pod({"cpu": "1", "memory": "2Gi"}, uid="s", name="spot",
               annotations={SPOT_STRATEGY_ANNOTATION: "SpotAsPriceGo", USE_SPECS_ANNOTATION: "2-4Gi"})
    plain = pod({"cpu": "1", "memory": "2Gi"}, uid="o", name="plain")
    for p in (spot, plain):
        meter.observe(p, started)
        meter.observe(p, done)
    runs = {r.name: r for r in meter.ledger.runs()}
    assert runs["spot"].spot == 1 and runs["plain"].spot == 0
    assert (runs["spot"].cpu_m, runs["spot"].memory_mib) == (2000, 4096)   # the listed spec
    report = {p.name: p for p in build_report(list(runs.values()), PriceTable.defaults(), now=2000.0).pods}
    assert report["spot"].cost == pytest.approx(100 * 0.3 * ECI_PRICE.per_second(2, 4))
    assert report["plain"].cost == pytest.approx(100 * ECI_PRICE.per_second(1, 2))
    meter.close()
