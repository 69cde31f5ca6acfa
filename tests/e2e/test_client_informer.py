"""skube.client against a real `skube apiserver`: verbs, errors, watch, discovery,
informers (handlers, indexes, re-watch on timeout, relist after 410)."""
from __future__ import annotations

import asyncio

import pytest

from skube.client import ApiError, Client, Informer, index_by_owner_uid, resource, shared_informer
from skube.client import informer as informer_mod
from tests.conftest import start_apiserver

CM = resource("v1", "configmaps", kind="ConfigMap")
NS = resource("v1", "namespaces", namespaced=False, kind="Namespace")
DEPLOY = resource("apps/v1", "deployments", kind="Deployment")


def run(coro, timeout: float = 60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(predicate, timeout: float = 20, interval: float = 0.02, message: str = "condition"):
    """Poll an (async or sync) predicate until truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        await asyncio.sleep(interval)


def client_for(cluster) -> Client:
    return Client.from_kubeconfig(str(cluster.kubeconfig), component="e2e-test")


async def ensure_ns(c: Client, name: str) -> None:
    try:
        await c.create(NS, {"metadata": {"name": name}})
    except ApiError as e:
        if not e.already_exists:
            raise


def cm(name: str, **data) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


# ---- verbs ------------------------------------------------------------------------------


def test_verbs_patch_types_and_errors(cluster):
    async def main():
        async with client_for(cluster) as c:
            await ensure_ns(c, "verbs")
            made = await c.create(CM, cm("one", a="1"), "verbs")
            assert made["metadata"]["uid"] and made["metadata"]["namespace"] == "verbs"
            got = await c.get(CM, "one", "verbs")
            assert got["data"] == {"a": "1"}
            got["data"]["b"] = "2"
            updated = await c.update(CM, got)
            assert updated["data"] == {"a": "1", "b": "2"}
            merged = await c.patch(CM, "one", {"data": {"a": None, "c": "3"}}, "verbs")
            assert merged["data"] == {"b": "2", "c": "3"}
            strategic = await c.patch(CM, "one", {"metadata": {"labels": {"x": "y"}}}, "verbs",
                                      patch_type="strategic")
            assert strategic["metadata"]["labels"] == {"x": "y"}
            jp = await c.patch(CM, "one", [{"op": "replace", "path": "/data/b", "value": "20"}], "verbs",
                               patch_type="json")
            assert jp["data"]["b"] == "20"
            applied = await c.patch(CM, "one", cm("one", owned="yes"), "verbs", patch_type="apply",
                                    field_manager="e2e", force=True)
            assert applied["data"]["owned"] == "yes"
            assert any(f["manager"] == "e2e" and f["operation"] == "Apply"
                       for f in applied["metadata"]["managedFields"])
            # stale resourceVersion -> 409 Conflict mirroring metav1.Status
            got["data"] = {"stale": "1"}
            with pytest.raises(ApiError) as e:
                await c.update(CM, got)
            assert e.value.status == 409 and e.value.conflict and "has been modified" in e.value.message
            assert e.value.body["kind"] == "Status"
            with pytest.raises(ApiError) as e:
                await c.get(CM, "missing", "verbs")
            assert e.value.not_found and e.value.reason == "NotFound"
            assert e.value.message == 'configmaps "missing" not found'
            assert e.value.details["name"] == "missing"
            with pytest.raises(ApiError) as e:
                await c.create(CM, cm("one"), "verbs")
            assert e.value.already_exists
            # delete preconditions
            with pytest.raises(ApiError) as e:
                await c.delete(CM, "one", "verbs", preconditions={"uid": "not-the-uid"})
            assert e.value.status == 409 and "Precondition failed" in e.value.message
            await c.delete(CM, "one", "verbs", preconditions={"uid": made["metadata"]["uid"]},
                           propagation_policy="Background")
            # pages
            for i in range(5):
                await c.create(CM, cm(f"page-{i}"), "verbs")
            page = await c.list(CM, "verbs", limit=2)
            assert len(page["items"]) == 2 and page["metadata"]["continue"]
            everything = await c.list_all(CM, "verbs", page_size=2)
            assert sorted(o["metadata"]["name"] for o in everything["items"]) == \
                [f"page-{i}" for i in range(5)]
            meta = await c.list(CM, "verbs", metadata_only=True)
            assert meta["kind"] == "PartialObjectMetadataList" and "data" not in meta["items"][0]
            removed = await c.delete_collection(CM, "verbs", label_selector="")
            assert len(removed["items"]) == 5
            # raw requests
            assert (await c.request("GET", "/version"))["major"] == "1"
            # status subresource
            dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                   "spec": {"selector": {"matchLabels": {"a": "b"}},
                            "template": {"metadata": {"labels": {"a": "b"}},
                                         "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
            dep = await c.create(DEPLOY, dep, "verbs")
            dep["status"] = {"observedGeneration": 1, "replicas": 0}
            dep = await c.update_status(DEPLOY, dep)
            assert dep["status"]["observedGeneration"] == 1
    run(main())


def test_watch_stream_events(cluster):
    async def main():
        async with client_for(cluster) as c:
            await ensure_ns(c, "watching")
            rv = (await c.list(CM, "watching"))["metadata"]["resourceVersion"]
            events = []
            async with c.watch(CM, "watching", resource_version=rv, timeout_seconds=30) as stream:
                await c.create(CM, cm("w1"), "watching")
                await c.patch(CM, "w1", {"data": {"k": "v"}}, "watching")
                await c.delete(CM, "w1", "watching")
                async for etype, obj in stream:
                    events.append((etype, obj["metadata"]["name"]))
                    if etype == "DELETED":
                        break
            assert events == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]
            # a field selector limits a watch to one object
            w = c.watch(CM, "watching", field_selector="metadata.name=w2", timeout_seconds=30)
            async with w:
                await c.create(CM, cm("other"), "watching")
                await c.create(CM, cm("w2"), "watching")
                etype, obj = await w.__anext__()
                assert (etype, obj["metadata"]["name"]) == ("ADDED", "w2")
    run(main())


def test_discovery_lists_builtin_and_custom_resources(cluster):
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.client.example.com"},
        "spec": {"group": "client.example.com", "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget",
                           "shortNames": ["gdg"]},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}]},
    }

    async def main():
        async with client_for(cluster) as c:
            resources = await c.server_resources()
            by_name = {r.group_resource: r for r in resources}
            assert by_name["configmaps"].namespaced and by_name["configmaps"].supports("list", "watch", "delete")
            assert not by_name["namespaces"].namespaced and "finalize" in by_name["namespaces"].subresources
            assert by_name["deployments.apps"].kind == "Deployment"
            listable = await c.server_resources(verbs=("list", "watch"))
            assert "bindings" not in {r.group_resource for r in listable} and "bindings" in by_name
            crds = await c.find_resource("crd")
            await c.create(crds, crd)

            async def served():
                return any(r.group_resource == "gadgets.client.example.com"
                           for r in await c.server_resources(refresh=True))
            await until(served, message="the CRD to be served")
            gadget = await c.resource_for("client.example.com/v1", "Gadget")
            assert gadget.plural == "gadgets" and gadget.namespaced
            assert await c.find_resource("gdg") == gadget
            assert (await c.resource_for("apps/v1", "Deployment")).plural == "deployments"
            assert await c.resource_for("nothing.example.com/v1", "Nope") is None
            obj = await c.create(gadget, {"apiVersion": "client.example.com/v1", "kind": "Gadget",
                                          "metadata": {"name": "g1"}, "spec": {"x": 1}}, "default")
            assert obj["spec"] == {"x": 1}
            await c.delete(crds, "gadgets.client.example.com")
    run(main())


# ---- informers --------------------------------------------------------------------------


def test_informer_handlers_store_and_indexes(cluster):
    async def main():
        async with client_for(cluster) as c:
            await ensure_ns(c, "inf")
            owner = await c.create(CM, cm("owner"), "inf")
            ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
            pre = cm("pre")
            pre["metadata"]["ownerReferences"] = [ref]
            await c.create(CM, pre, "inf")
            events = []

            async def on_update(old, new):        # async handlers are awaited
                events.append(("update", new["metadata"]["name"], old["data"], new["data"]))

            inf = Informer(c, CM, "inf", indexers={"owner": index_by_owner_uid})
            inf.on_add(lambda o: events.append(("add", o["metadata"]["name"])))
            inf.on_update(on_update)
            inf.on_delete(lambda o: events.append(("delete", o["metadata"]["name"])))
            assert not inf.has_synced
            inf.start()
            assert await inf.wait_synced(10) and inf.has_synced
            assert sorted(inf.keys()) == ["inf/owner", "inf/pre"]
            assert [o["metadata"]["name"] for o in inf.by_index("owner", ref["uid"])] == ["pre"]

            post = cm("post", v="1")
            post["metadata"]["ownerReferences"] = [ref]
            await c.create(CM, post, "inf")
            await c.patch(CM, "post", {"data": {"v": "2"}}, "inf")
            await c.delete(CM, "pre", "inf")
            await until(lambda: ("delete", "pre") in events, message="the delete event")
            assert [e[:2] for e in events] == [("add", "owner"), ("add", "pre"), ("add", "post"),
                                               ("update", "post"), ("delete", "pre")]
            assert ("update", "post", {"v": "1"}, {"v": "2"}) in events
            assert inf.get("inf/post")["data"] == {"v": "2"} and inf.get("inf/pre") is None
            assert [o["metadata"]["name"] for o in inf.by_index("owner", ref["uid"])] == ["post"]
            inf.stop()
    run(main())


def by_team(obj: dict) -> list[str]:
    team = ((obj.get("metadata") or {}).get("labels") or {}).get("team")
    return [team] if team else []


def test_shared_informer_views_share_one_watch(cluster):
    """Views of one shared informer: each gets the events of its part (all objects, or one
    index value), a late view catches up with adds, an object whose index value changes
    leaves one view (delete) and joins another (add); the watch stops with the last view."""
    async def main():
        async with client_for(cluster) as c:
            await ensure_ns(c, "shared")
            a1 = cm("a1")
            a1["metadata"]["labels"] = {"team": "a"}
            await c.create(CM, a1, "shared")
            shared = shared_informer(c, CM, "shared")
            assert shared_informer(c, CM, "shared") is shared          # one per query and client
            assert shared_informer(c, CM, "other") is not shared
            events: dict[str, list] = {"all": [], "a": [], "b": []}

            def record(name, view):
                view.add_handlers(lambda o: events[name].append(("add", o["metadata"]["name"])),
                                  lambda old, new: events[name].append(("update", new["metadata"]["name"])),
                                  lambda o: events[name].append(("delete", o["metadata"]["name"])))
                return view
            every = record("all", shared.view())
            team_a = record("a", shared.view(("team", by_team), "a"))
            every.start()
            team_a.start()
            assert await every.wait_synced(10) and await team_a.wait_synced(10)
            assert events["all"] == [("add", "a1")] and events["a"] == [("add", "a1")]

            b1 = cm("b1")
            b1["metadata"]["labels"] = {"team": "b"}
            await c.create(CM, b1, "shared")
            await until(lambda: ("add", "b1") in events["all"], message="b1 in the full view")
            assert events["a"] == [("add", "a1")]                # not team a's
            assert team_a.get("shared/b1") is None and every.get("shared/b1") is not None
            assert [o["metadata"]["name"] for o in team_a.list()] == ["a1"]

            team_b = record("b", shared.view(("team", by_team), "b"))   # late: catches up
            team_b.start()
            assert await team_b.wait_synced(10)
            assert events["b"] == [("add", "b1")]

            await c.patch(CM, "a1", {"metadata": {"labels": {"team": "b"}}}, "shared")   # a → b
            await until(lambda: ("add", "a1") in events["b"], message="a1 joining team b")
            assert events["a"] == [("add", "a1"), ("delete", "a1")]
            assert events["all"][-1] == ("update", "a1")
            assert sorted(o["metadata"]["name"] for o in team_b.list()) == ["a1", "b1"]
            assert team_a.list() == [] and len(team_a) == 0

            await c.delete(CM, "b1", "shared")
            await until(lambda: ("delete", "b1") in events["b"], message="b1's delete")
            assert ("delete", "b1") in events["all"] and ("delete", "b1") not in events["a"]
            assert shared.informer.watches == 1 and shared.informer.relists == 1

            team_b.stop()
            every.stop()
            assert shared.informer._task is not None and not shared.informer._stopped
            team_a.stop()                                        # the last view
            assert shared.informer._stopped
    run(main())


def test_informer_rewatches_after_server_timeout_without_relisting(cluster, monkeypatch):
    monkeypatch.setattr(informer_mod, "MIN_WATCH_TIMEOUT", 1)   # watches of 1 s

    async def main():
        async with client_for(cluster) as c:
            await ensure_ns(c, "rewatch")
            inf = Informer(c, CM, "rewatch", metadata_only=True)
            inf.start()
            await inf.wait_synced(10)
            for i in range(3):
                watches = inf.watches
                await c.create(CM, cm(f"r{i}"), "rewatch")
                await until(lambda: inf.watches > watches + 1, message="a new watch")
            await until(lambda: len(inf) == 3, message="all objects")
            assert inf.relists == 1
            obj = inf.get("rewatch/r0")
            assert obj["kind"] == "ConfigMap" and set(obj) == {"apiVersion", "kind", "metadata"}
            inf.stop()
    run(main())


@pytest.fixture(scope="module")
def compacting(tmp_path_factory):
    c = start_apiserver(tmp_path_factory.mktemp("compacting"), None,
                        "--compact-interval", "0.2", "--keep-revisions", "1", "--controllers=")
    yield c
    assert c.stop() == 0


def test_informer_relists_after_410_and_reports_the_difference(compacting):
    async def main():
        async with client_for(compacting) as c:
            await ensure_ns(c, "relist")
            await ensure_ns(c, "churn")
            for name in ("gone", "changed", "same"):
                await c.create(CM, cm(name, v="1"), "relist")
            events = []
            inf = Informer(c, CM, "relist")
            inf.add_handlers(on_add=lambda o: events.append(("add", o["metadata"]["name"])),
                             on_update=lambda old, new: events.append(("update", new["metadata"]["name"])),
                             on_delete=lambda o: events.append(("delete", o["metadata"]["name"])))
            inf.start()
            await inf.wait_synced(10)
            old_rv = inf.resource_version
            inf.stop()
            events.clear()
            # changes the informer does not see, then history compacted past its resourceVersion
            await c.delete(CM, "gone", "relist")
            await c.patch(CM, "changed", {"data": {"v": "2"}}, "relist")
            await c.create(CM, cm("new"), "relist")
            await c.create(CM, cm("tick"), "churn")

            async def compacted():
                await c.patch(CM, "tick", {"data": {"n": str(asyncio.get_running_loop().time())}}, "churn")
                try:
                    async with c.watch(CM, "relist", resource_version=old_rv, timeout_seconds=1) as w:
                        async for _ in w:
                            return False
                except ApiError as e:
                    return e.gone and e.status == 410
                return False
            await until(compacted, interval=0.1, message="compaction past the informer's revision")

            inf.start()                 # resumes from old_rv: 410 Expired -> relist
            await until(lambda: inf.relists == 2 and len(events) >= 3, message="the relist")
            assert sorted(events) == [("add", "new"), ("delete", "gone"), ("update", "changed")]
            assert sorted(inf.keys()) == ["relist/changed", "relist/new", "relist/same"]
            assert inf.get("relist/changed")["data"] == {"v": "2"}
            # and it keeps watching after the relist
            await c.create(CM, cm("after"), "relist")
            await until(lambda: inf.get("relist/after"), message="watch after relist")
            inf.stop()
    run(main())
