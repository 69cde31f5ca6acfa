"""Garbage collector and namespace controller against a real `skube apiserver`,
driven with kubectl and the official client (the controllers run in this process)."""
from __future__ import annotations

import asyncio
import subprocess
import textwrap
import threading

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from skube.client import Client
from skube.controllers import ControllerManager
from tests.conftest import KUBECTL, wait_for


@pytest.fixture(scope="module")
def controllers(cluster):
    """The garbage collector and namespace controller, in a thread with its own loop."""
    started = threading.Event()
    state: dict = {}

    async def main():
        state["loop"] = asyncio.get_running_loop()
        state["stop"] = asyncio.Event()
        c = Client.from_kubeconfig(str(cluster.kubeconfig), component="controller-manager")
        mgr = ControllerManager(c, ["garbagecollector", "namespace"],
                                garbagecollector={"discovery_interval": 5.0})
        state["mgr"] = mgr
        await mgr.start()
        state["ready"] = await mgr.wait_ready(60)
        started.set()
        await state["stop"].wait()
        await mgr.stop()
        await c.close()

    def target():
        try:
            asyncio.run(main())
        except BaseException as e:  # surfaced through state
            state["error"] = e
            started.set()

    t = threading.Thread(target=target, name="controller-manager", daemon=True)
    t.start()
    assert started.wait(90) and state.get("ready"), f"controllers did not start: {state.get('error')}"
    yield state["mgr"]
    state["loop"].call_soon_threadsafe(state["stop"].set)
    t.join(30)
    assert not t.is_alive(), "controller manager did not stop"
    assert "error" not in state, state.get("error")


@pytest.fixture(scope="module")
def core(cluster):
    return k8s.CoreV1Api(cluster.client())


@pytest.fixture(scope="module")
def custom(cluster):
    return k8s.CustomObjectsApi(cluster.client())


def exists(fn, *args) -> bool:
    try:
        fn(*args)
        return True
    except ApiException as e:
        if e.status == 404:
            return False
        raise


def make_family(core, ns: str, owner: str, dependents: list[str], *, block: bool = False,
                finalizers: dict[str, list[str]] | None = None):
    """A ConfigMap owner and ConfigMap dependents that reference it."""
    o = core.create_namespaced_config_map(ns, {"metadata": {"name": owner}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": o.metadata.uid}
    if block:
        ref["blockOwnerDeletion"] = True
    for d in dependents:
        meta = {"name": d, "ownerReferences": [ref]}
        if finalizers and d in finalizers:
            meta["finalizers"] = finalizers[d]
        core.create_namespaced_config_map(ns, {"metadata": meta})
    return o


def gone(core, ns, *names) -> bool:
    return not any(exists(core.read_namespaced_config_map, n, ns) for n in names)


# ---- cascading deletion -----------------------------------------------------------------


def test_background_cascade_deletes_dependents(cluster, controllers, core):
    make_family(core, "default", "bg-owner", ["bg-a", "bg-b"])
    cluster.kubectl("delete", "configmap", "bg-owner", "--cascade=background")
    wait_for(lambda: gone(core, "default", "bg-a", "bg-b"), message="dependents collected")


def test_foreground_cascade_removes_owner_after_its_blocking_dependents(cluster, controllers, core):
    make_family(core, "default", "fg-owner", ["fg-a", "fg-held"], block=True,
                finalizers={"fg-held": ["example.com/hold"]})
    proc = subprocess.Popen([KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "delete", "configmap",
                             "fg-owner", "--cascade=foreground", "--wait", "--timeout=60s"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: not exists(core.read_namespaced_config_map, "fg-a", "default"),
                 message="the free dependent deleted")
        held = wait_for(lambda: core.read_namespaced_config_map("fg-held", "default").metadata.deletion_timestamp
                        and core.read_namespaced_config_map("fg-held", "default"),
                        message="the held dependent marked for deletion")
        assert held.metadata.finalizers == ["example.com/hold"]
        # the owner waits, in foreground deletion, while a blocking dependent exists
        owner = core.read_namespaced_config_map("fg-owner", "default")
        assert owner.metadata.deletion_timestamp and "foregroundDeletion" in owner.metadata.finalizers
        assert proc.poll() is None, "kubectl --wait returned while a blocking dependent remained"
        core.patch_namespaced_config_map("fg-held", "default", {"metadata": {"finalizers": None}})
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert gone(core, "default", "fg-owner", "fg-a", "fg-held")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_orphan_cascade_keeps_dependents_and_strips_owner_references(cluster, controllers, core):
    make_family(core, "default", "or-owner", ["or-a", "or-b"], block=True)
    cluster.kubectl("delete", "configmap", "or-owner", "--cascade=orphan", "--wait", "--timeout=60s")
    assert not exists(core.read_namespaced_config_map, "or-owner", "default")
    for d in ("or-a", "or-b"):
        obj = core.read_namespaced_config_map(d, "default")
        assert not obj.metadata.owner_references and not obj.metadata.deletion_timestamp


def test_a_dependent_with_a_surviving_owner_only_loses_the_dead_reference(cluster, controllers, core):
    a = core.create_namespaced_config_map("default", {"metadata": {"name": "two-a"}})
    b = core.create_namespaced_config_map("default", {"metadata": {"name": "two-b"}})
    refs = [{"apiVersion": "v1", "kind": "ConfigMap", "name": o.metadata.name, "uid": o.metadata.uid}
            for o in (a, b)]
    core.create_namespaced_config_map("default", {"metadata": {"name": "two-dep", "ownerReferences": refs}})
    core.delete_namespaced_config_map("two-a", "default")
    wait_for(lambda: [r.name for r in core.read_namespaced_config_map("two-dep", "default")
                      .metadata.owner_references or []] == ["two-b"],
             message="the reference to the deleted owner removed")
    core.delete_namespaced_config_map("two-b", "default", propagation_policy="Background")
    wait_for(lambda: gone(core, "default", "two-dep"), message="the dependent collected")


def test_dependent_of_an_owner_that_never_existed_is_collected(cluster, controllers, core):
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "phantom",
           "uid": "00000000-0000-4000-8000-000000000001"}
    core.create_namespaced_config_map("default", {"metadata": {"name": "orphaned", "ownerReferences": [ref]}})
    wait_for(lambda: gone(core, "default", "orphaned"), message="a dependent of a missing owner collected")


def test_a_cascade_reaches_custom_resources_and_crosses_kinds(cluster, controllers, core, custom):
    crd = textwrap.dedent("""\
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {name: sprockets.gc.example.com}
        spec:
          group: gc.example.com
          scope: Namespaced
          names: {plural: sprockets, singular: sprocket, kind: Sprocket}
          versions:
          - name: v1
            served: true
            storage: true
            schema:
              openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
    """)
    cluster.kubectl("apply", "-f", "-", input=crd)
    cluster.kubectl("wait", "--for=condition=Established", "crd/sprockets.gc.example.com", "--timeout=20s")
    owner = core.create_namespaced_config_map("default", {"metadata": {"name": "cr-owner"}})
    # the CR owns a ConfigMap, the ConfigMap owns the CR: a chain across kinds
    body = {"apiVersion": "gc.example.com/v1", "kind": "Sprocket",
            "metadata": {"name": "s1", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
                                                            "name": "cr-owner",
                                                            "uid": owner.metadata.uid}]}}
    s1 = custom.create_namespaced_custom_object("gc.example.com", "v1", "default", "sprockets", body)
    core.create_namespaced_config_map("default", {"metadata": {
        "name": "cr-grandchild", "ownerReferences": [{"apiVersion": "gc.example.com/v1", "kind": "Sprocket",
                                                      "name": "s1", "uid": s1["metadata"]["uid"]}]}})
    # the collector must see the new resource before the owner goes
    gc = controllers["garbagecollector"]
    wait_for(lambda: ("gc.example.com", "sprockets") in gc.informers and
             gc.informers[("gc.example.com", "sprockets")].has_synced and s1["metadata"]["uid"] in gc.nodes,
             message="the collector to watch sprockets")
    cluster.kubectl("delete", "configmap", "cr-owner", "--cascade=foreground", "--wait", "--timeout=60s")
    wait_for(lambda: not exists(custom.get_namespaced_custom_object, "gc.example.com", "v1", "default",
                                "sprockets", "s1") and gone(core, "default", "cr-grandchild"),
             message="the custom resource and its dependent collected")


# ---- namespaces -------------------------------------------------------------------------


def test_deleting_a_namespace_removes_its_content_then_the_namespace(cluster, controllers, core):
    cluster.kubectl("create", "namespace", "doomed")
    for i in range(3):
        cluster.kubectl("-n", "doomed", "create", "configmap", f"cm{i}", f"--from-literal=i={i}")
    cluster.kubectl("-n", "doomed", "create", "secret", "generic", "s", "--from-literal=a=b")
    cluster.kubectl("-n", "doomed", "create", "serviceaccount", "robot")
    make_family(core, "doomed", "fam-owner", ["fam-dep"])
    res = cluster.kubectl("delete", "namespace", "doomed", "--wait", "--timeout=60s")
    assert 'namespace "doomed" deleted' in res.stdout
    assert not exists(core.read_namespace, "doomed")
    assert core.list_namespaced_config_map("doomed").items == []
    assert core.list_namespaced_secret("doomed").items == []


def test_namespace_waits_for_finalizers_and_reports_conditions(cluster, controllers, core, custom):
    core.create_namespace({"metadata": {"name": "held"}})
    core.create_namespaced_config_map("held", {"metadata": {"name": "plain"}})
    core.create_namespaced_config_map("held", {"metadata": {"name": "sticky",
                                                            "finalizers": ["example.com/keep"]}})
    cluster.kubectl("delete", "namespace", "held", "--wait=false")

    def conditions():
        ns = core.read_namespace("held")
        conds = {c.type: c for c in ns.status.conditions or []}
        return ns.status.phase == "Terminating" and "NamespaceFinalizersRemaining" in conds and conds

    conds = wait_for(conditions, message="namespace conditions")
    assert conds["NamespaceFinalizersRemaining"].status == "True"
    assert conds["NamespaceFinalizersRemaining"].reason == "SomeFinalizersRemain"
    assert conds["NamespaceFinalizersRemaining"].message == \
        "Some content in the namespace has finalizers remaining: example.com/keep in 1 resource instances"
    assert conds["NamespaceContentRemaining"].message == \
        "Some resources are remaining: configmaps. has 1 resource instances"
    assert conds["NamespaceDeletionDiscoveryFailure"].status == "False"
    assert conds["NamespaceDeletionContentFailure"].reason == "ContentDeleted"
    assert not exists(core.read_namespaced_config_map, "plain", "held")
    sticky = core.read_namespaced_config_map("sticky", "held")
    assert sticky.metadata.deletion_timestamp
    with pytest.raises(ApiException) as e:      # no new content in a terminating namespace
        core.create_namespaced_config_map("held", {"metadata": {"name": "late"}})
    assert e.value.status == 403
    core.patch_namespaced_config_map("sticky", "held", {"metadata": {"finalizers": None}})
    wait_for(lambda: not exists(core.read_namespace, "held"), message="the namespace removed")


def test_namespace_deletion_removes_custom_resources(cluster, controllers, core, custom):
    crd = textwrap.dedent("""\
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {name: flanges.ns.example.com}
        spec:
          group: ns.example.com
          scope: Namespaced
          names: {plural: flanges, singular: flange, kind: Flange}
          versions:
          - name: v1
            served: true
            storage: true
            schema:
              openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
    """)
    cluster.kubectl("apply", "-f", "-", input=crd)
    cluster.kubectl("wait", "--for=condition=Established", "crd/flanges.ns.example.com", "--timeout=20s")
    cluster.kubectl("create", "namespace", "crs")
    for i in range(2):
        custom.create_namespaced_custom_object("ns.example.com", "v1", "crs", "flanges",
                                               {"apiVersion": "ns.example.com/v1", "kind": "Flange",
                                                "metadata": {"name": f"f{i}"}})
    cluster.kubectl("delete", "namespace", "crs", "--wait", "--timeout=60s")
    assert not exists(core.read_namespace, "crs")
    assert custom.list_namespaced_custom_object("ns.example.com", "v1", "crs", "flanges")["items"] == []
