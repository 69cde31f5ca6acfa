"""Service ClusterIP / NodePort allocation (skube.apiserver.ipalloc)."""
from __future__ import annotations

import ipaddress

import pytest

from skube.api import errors
from skube.apiserver.ipalloc import RESERVE_SECONDS, ServiceAllocator


def svc(name, ns="default", **spec):
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("ports", [{"port": 80, "protocol": "TCP"}])
    if spec.get("clusterIP") and "clusterIPs" not in spec:
        spec["clusterIPs"] = [spec["clusterIP"]]
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}


class Clock:
    t = 0.0

    def __call__(self):
        return self.t


def create(a: ServiceAllocator, s: dict) -> dict:
    a.admit(s, None)
    a.committed(s)
    return s


def causes(e: errors.APIError) -> list[tuple[str, str]]:
    return [(c["field"], c["message"]) for c in e.details["causes"]]


def test_kubernetes_takes_first_dns_keeps_tenth_and_dynamic_ips_avoid_both():
    a = ServiceAllocator("10.0.0.0/28", (30000, 30001))
    assert create(a, svc("kubernetes"))["spec"]["clusterIP"] == "10.0.0.1"
    got = {create(a, svc(f"s{i}"))["spec"]["clusterIP"] for i in range(12)}
    assert len(got) == 12 and not got & {"10.0.0.0", "10.0.0.1", "10.0.0.10", "10.0.0.15"}
    with pytest.raises(errors.APIError) as e:
        create(a, svc("full"))
    assert e.value.code == 500 and "range is full" in e.value.message
    dns = create(a, svc("kube-dns", "kube-system", clusterIP="10.0.0.10"))
    assert dns["spec"]["clusterIPs"] == ["10.0.0.10"]


def test_explicit_ip_taken_or_out_of_range_is_422_naming_the_field():
    a = ServiceAllocator("10.96.0.0/24", (30000, 30010))
    create(a, svc("a", clusterIP="10.96.0.20"))
    with pytest.raises(errors.APIError) as e:
        a.admit(svc("b", "other", clusterIP="10.96.0.20"), None)
    assert e.value.code == 422
    assert causes(e.value) == [("spec.clusterIPs", 'Invalid value: []string{"10.96.0.20"}: failed to allocate '
                                                   'IP 10.96.0.20: provided IP is already allocated')]
    with pytest.raises(errors.APIError) as e:
        a.admit(svc("c", clusterIP="10.97.0.5"), None)
    assert "the provided IP (10.97.0.5) is not in the valid range. The range of valid IPs is 10.96.0.0/24" \
        in e.value.message
    with pytest.raises(errors.APIError) as e:
        a.admit(svc("d", clusterIP="10.96.0.10"), None)       # kept for kube-system/kube-dns
    assert "provided IP is already allocated" in e.value.message


def test_headless_and_external_name_get_no_address():
    a = ServiceAllocator("10.96.0.0/24", (30000, 30010))
    h = create(a, svc("h", clusterIP="None"))
    assert h["spec"]["clusterIPs"] == ["None"]
    x = create(a, {"metadata": {"name": "x", "namespace": "d"},
                   "spec": {"type": "ExternalName", "externalName": "example.com"}})
    assert "clusterIP" not in x["spec"]
    assert not a.ips.committed


def test_node_ports_allocated_checked_and_released_on_type_change():
    a = ServiceAllocator("10.96.0.0/24", (30000, 30002))
    np1 = create(a, svc("np1", type="NodePort", ports=[{"name": "a", "port": 80, "protocol": "TCP"},
                                                        {"name": "b", "port": 81, "protocol": "TCP"}]))
    ports = {p["nodePort"] for p in np1["spec"]["ports"]}
    assert len(ports) == 2 and ports <= {30000, 30001, 30002}
    taken = min(ports)
    with pytest.raises(errors.APIError) as e:
        a.admit(svc("np2", type="NodePort", ports=[{"port": 80, "protocol": "TCP", "nodePort": taken},
                                                   {"name": "x", "port": 1, "protocol": "TCP",
                                                    "nodePort": 80}]), None)
    assert causes(e.value) == [
        ("spec.ports[0].nodePort", f"Invalid value: {taken}: provided port is already allocated"),
        ("spec.ports[1].nodePort", "Invalid value: 80: provided port is not in the valid range. "
                                   "The range of valid ports is 30000-30002")]
    # an update that leaves nodePort out keeps it; switching to ClusterIP releases it
    upd = svc("np1", type="NodePort", clusterIP=np1["spec"]["clusterIP"],
              ports=[{"name": "a", "port": 80, "protocol": "TCP"}, {"name": "b", "port": 81, "protocol": "TCP"}])
    a.admit(upd, np1)
    assert [p["nodePort"] for p in upd["spec"]["ports"]] == [p["nodePort"] for p in np1["spec"]["ports"]]
    a.committed(upd)
    back = svc("np1", clusterIP=np1["spec"]["clusterIP"],
               ports=[dict(p) for p in upd["spec"]["ports"]])
    a.admit(back, upd)
    assert all("nodePort" not in p for p in back["spec"]["ports"])
    a.committed(back)
    assert not a.ports.committed
    # ClusterIP -> LoadBalancer allocates
    lb = svc("np1", type="LoadBalancer", clusterIP=np1["spec"]["clusterIP"], allocateLoadBalancerNodePorts=True)
    a.admit(lb, back)
    assert lb["spec"]["ports"][0]["nodePort"] in (30000, 30001, 30002)


def test_update_keeps_cluster_ip_and_external_name_drops_it():
    a = ServiceAllocator("10.96.0.0/24", (30000, 30010))
    s = create(a, svc("s"))
    ip = s["spec"]["clusterIP"]
    upd = svc("s")
    a.admit(upd, s)
    assert upd["spec"]["clusterIPs"] == [ip]
    ext = {"metadata": {"name": "s", "namespace": "default"},
           "spec": {**s["spec"], "type": "ExternalName", "externalName": "example.com"}}
    a.admit(ext, s)
    assert "clusterIP" not in ext["spec"] and "clusterIPs" not in ext["spec"]
    a.committed(ext)
    assert ip not in a.ips.committed


def test_update_changing_the_address_is_left_to_validation_even_when_the_new_one_is_taken():
    # upstream allocates on update only when the type newly needs an address; a changed
    # address must surface as validation's "may not change once set", never as "already allocated"
    a = ServiceAllocator("10.96.0.0/24", (30000, 30010))
    s = create(a, svc("s", clusterIP="10.96.0.50"))
    create(a, svc("t", clusterIP="10.96.0.51"))
    upd = svc("s", clusterIP="10.96.0.51")
    a.admit(upd, s)
    assert upd["spec"]["clusterIPs"] == ["10.96.0.51"]
    assert a.ips.committed.get("10.96.0.50") == "default/s" and a.ips.committed.get("10.96.0.51") == "default/t"
    back = {"metadata": {"name": "s", "namespace": "default"}, "spec": {"type": "ExternalName", "externalName": "x"}}
    a.admit(back, s)
    a.committed(back)
    again = svc("s", clusterIP="10.96.0.51")       # ExternalName -> ClusterIP allocates afresh
    with pytest.raises(errors.APIError) as e:
        a.admit(again, back)
    assert "provided IP is already allocated" in e.value.message


def test_dynamic_values_stay_above_the_static_band_until_it_is_all_that_is_left():
    a = ServiceAllocator("10.96.0.0/24", (30000, 30099))      # bands: 16 addresses, 16 ports
    got = [create(a, svc(f"s{i}", type="NodePort")) for i in range(84)]
    ips = {int(ipaddress.ip_address(s["spec"]["clusterIP"])) & 0xff for s in got}
    ports = {s["spec"]["ports"][0]["nodePort"] for s in got}
    assert min(ips) >= 17 and min(ports) >= 30016
    assert ports == set(range(30016, 30100))                  # the upper ports are all used now
    more = create(a, svc("more", type="NodePort"))
    assert 30000 <= more["spec"]["ports"][0]["nodePort"] < 30016
    for i in range(84, 237):                                   # .17-.254 less the 2 used above
        create(a, svc(f"c{i}"))
    low = create(a, svc("low"))["spec"]["clusterIP"]
    assert 1 < int(ipaddress.ip_address(low)) & 0xff <= 16 and low != "10.96.0.10"


def test_concurrent_admits_never_share_and_failed_writes_lapse():
    clock = Clock()
    a = ServiceAllocator("10.96.0.0/29", (30000, 30000), clock=clock)   # .2-.6 free (.1 kept)
    pending = [svc(f"s{i}") for i in range(5)]
    for s in pending:
        a.admit(s, None)          # none committed yet: reservations keep them apart
    assert len({s["spec"]["clusterIP"] for s in pending}) == 5
    with pytest.raises(errors.APIError):
        a.admit(svc("late"), None)
    clock.t += RESERVE_SECONDS + 1          # those writes never committed
    assert a.admit(svc("late"), None) is None
    n1 = svc("n1", type="NodePort")
    a.admit(n1, None)
    with pytest.raises(errors.APIError):
        a.admit(svc("n2", type="NodePort"), None)


def test_rebuild_from_stored_services_and_release_on_delete():
    a = ServiceAllocator("10.96.0.0/24", (30000, 30010))
    stored = [create(a, svc(f"s{i}", type="NodePort")) for i in range(3)]
    b = ServiceAllocator("10.96.0.0/24", (30000, 30010))
    b.rebuild(stored)
    with pytest.raises(errors.APIError):
        b.admit(svc("dup", clusterIP=stored[0]["spec"]["clusterIP"]), None)
    b.released(stored[0])
    again = svc("dup", clusterIP=stored[0]["spec"]["clusterIP"])
    b.admit(again, None)
    assert ipaddress.ip_address(again["spec"]["clusterIP"]) in ipaddress.ip_network("10.96.0.0/24")
