"""The official Python client against `skube apiserver`: CRUD, watch, concurrency."""
from __future__ import annotations

import threading

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException


@pytest.fixture(scope="module")
def core(cluster):
    return client.CoreV1Api(cluster.client())


def cm(name: str, **data) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def test_create_get_list_with_selectors_and_pages(core):
    for i in range(7):
        body = cm(f"page-{i}", i=str(i))
        body["metadata"]["labels"] = {"set": "pages", "parity": "even" if i % 2 == 0 else "odd"}
        core.create_namespaced_config_map("default", body)
    got = core.read_namespaced_config_map("page-3", "default")
    assert got.data == {"i": "3"} and got.metadata.uid and got.metadata.creation_timestamp
    evens = core.list_namespaced_config_map("default", label_selector="set=pages,parity in (even)")
    assert sorted(i.metadata.name for i in evens.items) == ["page-0", "page-2", "page-4", "page-6"]
    by_name = core.list_namespaced_config_map("default", field_selector="metadata.name=page-5")
    assert [i.metadata.name for i in by_name.items] == ["page-5"]
    names, token, rvs = [], None, set()
    while True:
        page = core.list_namespaced_config_map("default", label_selector="set=pages", limit=3,
                                               _continue=token)
        names += [i.metadata.name for i in page.items]
        rvs.add(page.metadata.resource_version)
        token = page.metadata._continue
        if not token:
            break
    assert names == [f"page-{i}" for i in range(7)]
    assert len(rvs) == 1   # one consistent snapshot across pages


def test_generate_name(core):
    body = cm("")
    body["metadata"] = {"generateName": "gen-"}
    obj = core.create_namespaced_config_map("default", body)
    assert obj.metadata.name.startswith("gen-") and len(obj.metadata.name) == 9


def test_optimistic_concurrency(core):
    obj = core.create_namespaced_config_map("default", cm("occ", v="1"))
    stale = obj.metadata.resource_version
    obj.data = {"v": "2"}
    core.replace_namespaced_config_map("occ", "default", obj)
    obj.data = {"v": "3"}
    obj.metadata.resource_version = stale
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("occ", "default", obj)
    assert e.value.status == 409 and "the object has been modified" in e.value.body
    assert core.read_namespaced_config_map("occ", "default").data == {"v": "2"}


def all_at_once(write, n: int) -> list:
    """Run ``write(i)`` for i < n in n threads at once: "ok" or the HTTP status of each."""
    results = []

    def one(i):
        try:
            write(i)
            results.append("ok")
        except ApiException as e:
            results.append(e.status)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_updates_one_winner(core):
    obj = core.create_namespaced_config_map("default", cm("race", v="0"))

    def writer(i):
        body = cm("race", v=str(i))
        body["metadata"]["resourceVersion"] = obj.metadata.resource_version
        core.replace_namespaced_config_map("race", "default", body)
    results = all_at_once(writer, 8)
    assert results.count("ok") == 1 and results.count(409) == 7


def test_concurrent_patches_without_a_resource_version_all_land(core):
    core.create_namespaced_config_map("default", cm("patched"))
    results = all_at_once(lambda i: core.patch_namespaced_config_map("patched", "default",
                                                                     {"data": {f"k{i}": str(i)}}), 24)
    assert results == ["ok"] * 24            # a patch names no version: the server retries it
    assert core.read_namespaced_config_map("patched", "default").data == {f"k{i}": str(i) for i in range(24)}
    stale = {"metadata": {"resourceVersion": "1"}, "data": {"late": "x"}}   # one that does is a precondition
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_config_map("patched", "default", stale)
    assert e.value.status == 409


def test_watch_from_resource_version_sees_changes_in_order(core):
    core.create_namespace({"metadata": {"name": "watched"}})
    lst = core.list_namespaced_config_map("watched")
    rv = lst.metadata.resource_version
    core.create_namespaced_config_map("watched", cm("a", x="1"))
    core.patch_namespaced_config_map("a", "watched", {"data": {"x": "2"}})
    core.delete_namespaced_config_map("a", "watched")
    w = watch.Watch()
    seen = []
    for ev in w.stream(core.list_namespaced_config_map, "watched", resource_version=rv, timeout_seconds=5):
        seen.append((ev["type"], ev["object"].data))
        if len(seen) == 3:
            w.stop()
    assert seen == [("ADDED", {"x": "1"}), ("MODIFIED", {"x": "2"}), ("DELETED", {"x": "2"})]


def test_watch_without_rv_starts_with_current_state_and_filters_labels(core):
    core.create_namespace({"metadata": {"name": "wl"}})
    body = cm("old")
    body["metadata"]["labels"] = {"w": "yes"}
    core.create_namespaced_config_map("wl", body)
    w = watch.Watch()
    seen = []

    def later():
        b = cm("new")
        b["metadata"]["labels"] = {"w": "yes"}
        core.create_namespaced_config_map("wl", cm("ignored"))
        core.create_namespaced_config_map("wl", b)
        # leaving the selector looks like a deletion to the watcher
        core.patch_namespaced_config_map("new", "wl", {"metadata": {"labels": {"w": "no"}}})
    t = None
    for ev in w.stream(core.list_namespaced_config_map, "wl", label_selector="w=yes", timeout_seconds=10):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 1:
            t = threading.Thread(target=later)
            t.start()
        if len(seen) == 3:
            w.stop()
    t.join()
    assert seen == [("ADDED", "old"), ("ADDED", "new"), ("DELETED", "new")]


def test_watch_bookmarks_and_watch_list(cluster, core):
    import json as _json
    import ssl

    import httpx
    core.create_namespaced_config_map("default", cm("wlist"))
    ctx = ssl.create_default_context(cafile=str(cluster.data_dir / "pki" / "ca.crt"))
    ctx.load_cert_chain(str(cluster.data_dir / "pki" / "admin.crt"), str(cluster.data_dir / "pki" / "admin.key"))
    params = {"watch": "true", "sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan",
              "allowWatchBookmarks": "true", "timeoutSeconds": "5"}
    events = []
    with httpx.stream("GET", cluster.url + "/api/v1/namespaces/default/configmaps", params=params,
                      verify=ctx, timeout=10) as resp:
        assert resp.status_code == 200
        for line in resp.iter_lines():
            if line.strip():
                events.append(_json.loads(line))
            if events and events[-1]["type"] == "BOOKMARK":
                break
    names = [e["object"]["metadata"]["name"] for e in events if e["type"] == "ADDED"]
    assert "wlist" in names
    bm = events[-1]
    assert bm["type"] == "BOOKMARK"
    assert bm["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"] == "true"
    assert bm["object"]["kind"] == "ConfigMap" and int(bm["object"]["metadata"]["resourceVersion"]) > 0
    # without the NotOlderThan match the request is rejected, not silently ignored
    bad = httpx.get(cluster.url + "/api/v1/namespaces/default/configmaps",
                    params={"watch": "true", "sendInitialEvents": "true"}, verify=ctx)
    assert bad.status_code == 422


def test_status_subresource_separation(cluster):
    apps = client.AppsV1Api(cluster.client())
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "stat"},
           "spec": {"selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}},
                                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    created = apps.create_namespaced_deployment("default", dep)
    assert created.metadata.generation == 1
    # a spec write ignores status
    dep2 = apps.read_namespaced_deployment("stat", "default").to_dict()
    apps.patch_namespaced_deployment("stat", "default", {"status": {"replicas": 9}})
    assert (apps.read_namespaced_deployment("stat", "default").status.replicas or 0) == 0
    # a status write ignores spec and does not move generation
    apps.patch_namespaced_deployment_status("stat", "default",
                                            {"status": {"replicas": 7}, "spec": {"replicas": 5}})
    d = apps.read_namespaced_deployment("stat", "default")
    assert d.status.replicas == 7 and d.spec.replicas == dep2["spec"]["replicas"]
    assert d.metadata.generation == 1
    apps.patch_namespaced_deployment("stat", "default", {"spec": {"replicas": 2}})
    assert apps.read_namespaced_deployment("stat", "default").metadata.generation == 2


def test_pod_graceful_delete_and_binding(cluster, core):
    core.create_node({"metadata": {"name": "n1"}})
    pod = {"metadata": {"name": "gp"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    core.create_namespaced_pod("default", pod)
    core.create_namespaced_binding("default", {"metadata": {"name": "gp"},
                                               "target": {"kind": "Node", "name": "n1"}},
                                   _preload_content=False)
    p = core.read_namespaced_pod("gp", "default")
    assert p.spec.node_name == "n1"
    assert any(c.type == "PodScheduled" and c.status == "True" for c in p.status.conditions)
    with pytest.raises(ApiException) as e:
        core.create_namespaced_binding("default", {"metadata": {"name": "gp"},
                                                   "target": {"kind": "Node", "name": "n2"}})
    assert e.value.status == 409
    core.delete_namespaced_pod("gp", "default")
    p = core.read_namespaced_pod("gp", "default")   # still there: the node must confirm
    assert p.metadata.deletion_timestamp is not None and p.metadata.deletion_grace_period_seconds == 30
    core.delete_namespaced_pod("gp", "default", grace_period_seconds=0)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod("gp", "default")
    assert e.value.status == 404
    # an unscheduled pod goes at once
    core.create_namespaced_pod("default", {**pod, "metadata": {"name": "gp2"}})
    core.delete_namespaced_pod("gp2", "default")
    with pytest.raises(ApiException):
        core.read_namespaced_pod("gp2", "default")


def test_finalizers_hold_deletion(core):
    body = cm("fin")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    core.create_namespaced_config_map("default", body)
    core.delete_namespaced_config_map("fin", "default")
    obj = core.read_namespaced_config_map("fin", "default")
    assert obj.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("fin", "default", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("fin", "default")
    assert e.value.status == 404


def test_dry_run_stores_nothing(core):
    core.create_namespaced_config_map("default", cm("dry"), dry_run="All")
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("dry", "default")
    assert e.value.status == 404


def test_events_are_one_set_of_objects_in_two_shapes(cluster, core):
    events_v1 = client.EventsV1Api(cluster.client())
    core.create_namespaced_event("default", {
        "metadata": {"name": "ev-core"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Started", "message": "hello", "type": "Normal", "count": 2,
        "source": {"component": "kubelet"}, "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingComponent": "kubelet", "reportingInstance": "n1", "action": "Start"})
    ev = events_v1.read_namespaced_event("ev-core", "default")
    assert ev.regarding.name == "p" and ev.note == "hello" and ev.deprecated_count == 2
    assert ev.deprecated_source.component == "kubelet"
    events_v1.create_namespaced_event("default", {
        "metadata": {"name": "ev-new"}, "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "skube/scheduler", "reportingInstance": "s1", "action": "Binding",
        "regarding": {"kind": "Pod", "name": "q", "namespace": "default"}, "reason": "Scheduled",
        "note": "assigned", "type": "Normal"})
    old = core.read_namespaced_event("ev-new", "default")
    assert old.involved_object.name == "q" and old.message == "assigned"
    assert old.reporting_component == "skube/scheduler"
    names = {e.metadata.name for e in events_v1.list_namespaced_event("default").items}
    assert {"ev-core", "ev-new"} <= names
    by_field = core.list_namespaced_event("default", field_selector="involvedObject.name=q")
    assert [e.metadata.name for e in by_field.items] == ["ev-new"]


def test_pages_keep_their_snapshot_across_writes(core):
    core.create_namespace({"metadata": {"name": "snap"}})
    for i in range(6):
        core.create_namespaced_config_map("snap", cm(f"s{i}"))
    first = core.list_namespaced_config_map("snap", limit=2)
    assert first.metadata.remaining_item_count == 4
    core.create_namespaced_config_map("snap", cm("s9-late"))
    core.delete_namespaced_config_map("s5", "snap")
    names = [i.metadata.name for i in first.items]
    token = first.metadata._continue
    while token:
        page = core.list_namespaced_config_map("snap", limit=2, _continue=token)
        assert page.metadata.resource_version == first.metadata.resource_version
        names += [i.metadata.name for i in page.items]
        token = page.metadata._continue
    assert names == [f"s{i}" for i in range(6)]     # the list as it was, not as it is
    now = [i.metadata.name for i in core.list_namespaced_config_map("snap").items]
    assert "s9-late" in now and "s5" not in now
