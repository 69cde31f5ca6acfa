"""The garbage collector: cascading deletion through ownerReferences, with
kube-controller-manager's semantics.

Metadata informers on every resource that supports list, watch and delete
(discovery, re-read every 30 s and whenever a CRD changes) build the
owner -> dependents graph, keyed by uid. Two work queues act on it:

* attempt-to-delete (key: an object's uid):
  - an object whose owners are all gone is deleted, with propagation taken from
    its own finalizers (Background unless it carries ``orphan`` or
    ``foregroundDeletion``), after every owner was checked with a live GET —
    the cache alone never justifies a deletion;
  - an object whose remaining owners are being deleted in the foreground is
    deleted in the foreground too (Background if it has no dependents);
  - an object with live owners loses only its references to absent owners and to
    owners that wait for it;
  - an owner in foreground deletion (``foregroundDeletion`` finalizer) gets its
    dependents deleted and the finalizer removed once no dependent with
    ``blockOwnerDeletion: true`` remains.
* attempt-to-orphan (key: an owner's uid): an owner deleted with the
  ``orphan`` finalizer has its references removed from all dependents, then the
  finalizer.
"""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field

from ..client import ApiError, Client, Informer, Resource, WorkQueue, run_workers

log = logging.getLogger("skube.controllers.garbagecollector")

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
# upstream ignores events by default: they are many, short-lived and never owners
IGNORED_RESOURCES = frozenset({("", "events"), ("events.k8s.io", "events")})
DISCOVERY_INTERVAL = 30.0
SYNC_TIMEOUT = 30.0
ABSENT_CACHE_SIZE = 1000
CONFLICT_RETRIES = 5


@dataclass
class Node:
    """One observed object: identity, owners and the deletion state GC cares about."""
    uid: str
    resource: Resource
    namespace: str | None
    name: str
    owners: list[dict] = field(default_factory=list)
    finalizers: tuple[str, ...] = ()
    deleting: bool = False

    @property
    def deleting_dependents(self) -> bool:
        return self.deleting and FOREGROUND in self.finalizers

    @property
    def orphaning(self) -> bool:
        return self.deleting and ORPHAN in self.finalizers

    def owner_uids(self) -> set[str]:
        return {r.get("uid") for r in self.owners if r.get("uid")}

    def blocks(self, owner_uid: str) -> bool:
        return any(r.get("uid") == owner_uid and r.get("blockOwnerDeletion") for r in self.owners)

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.resource.group_resource} {where}{self.name} ({self.uid})"


class _LRU:
    def __init__(self, size: int):
        self.size = size
        self._d: OrderedDict = OrderedDict()

    def add(self, key) -> None:
        self._d[key] = True
        self._d.move_to_end(key)
        while len(self._d) > self.size:
            self._d.popitem(last=False)

    def __contains__(self, key) -> bool:
        if key in self._d:
            self._d.move_to_end(key)
            return True
        return False


class GarbageCollector:
    """Run with ``await gc.run(stop_event)``; ``ready`` is set once the graph is built."""

    name = "garbagecollector"

    def __init__(self, client: Client, *, workers: int = 4, orphan_workers: int = 2,
                 discovery_interval: float = DISCOVERY_INTERVAL,
                 ignored: frozenset = IGNORED_RESOURCES):
        self.client = client
        self.workers = workers
        self.orphan_workers = orphan_workers
        self.discovery_interval = discovery_interval
        self.ignored = ignored
        self.nodes: dict[str, Node] = {}
        self.dependents: dict[str, set[str]] = {}          # owner uid -> dependent uids
        self.informers: dict[tuple[str, str], Informer] = {}
        self.attempt_to_delete = WorkQueue(name="garbage collector attempt to delete")
        self.attempt_to_orphan = WorkQueue(name="garbage collector attempt to orphan")
        self.absent_owners = _LRU(ABSENT_CACHE_SIZE)
        self.ready = asyncio.Event()
        self._resync = asyncio.Event()
        self._graph_synced = False
        self._pending: set[str] = set()      # uids to check once the graph is complete

    # ---- running --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        tasks: list[asyncio.Task] = []
        try:
            await self._sync_informers()
            await asyncio.gather(*(i.wait_synced(SYNC_TIMEOUT) for i in self.informers.values()))
            self._graph_synced = True
            for uid in self._pending:
                node = self.nodes.get(uid)
                if node is not None and any(o not in self.nodes for o in node.owner_uids()):
                    self.attempt_to_delete.add(uid)
            self._pending.clear()
            log.info("garbage collector: graph built from %d resources, %d objects",
                     len(self.informers), len(self.nodes))
            self.ready.set()
            tasks = [
                asyncio.create_task(run_workers(self.attempt_to_delete, self._attempt_to_delete,
                                                self.workers)),
                asyncio.create_task(run_workers(self.attempt_to_orphan, self._attempt_to_orphan,
                                                self.orphan_workers)),
                asyncio.create_task(self._discovery_loop(stop)),
            ]
            await stop.wait()
        finally:
            self.attempt_to_delete.shut_down()
            self.attempt_to_orphan.shut_down()
            for t in tasks:
                t.cancel()
            for inf in self.informers.values():
                inf.stop()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _discovery_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(self._resync.wait(), self.discovery_interval)
                await asyncio.sleep(0.5)       # let a burst of CRD changes settle
            except asyncio.TimeoutError:
                pass
            self._resync.clear()
            try:
                await self._sync_informers()
            except Exception as e:  # noqa: BLE001 - keep collecting with what we have
                log.warning("garbage collector: discovery failed: %s", e)

    def _deletable(self, resources: list[Resource]) -> dict[tuple[str, str], Resource]:
        return {(r.group, r.plural): r for r in resources if (r.group, r.plural) not in self.ignored}

    async def _sync_informers(self) -> None:
        """Start informers for newly served resources, stop those no longer served."""
        wanted = self._deletable(await self.client.server_resources(refresh=True,
                                                                     verbs=("list", "watch", "delete")))
        for key, inf in list(self.informers.items()):
            if key not in wanted or wanted[key].version != inf.resource.version:
                inf.stop()
                del self.informers[key]
                for obj in inf.list():
                    self._on_delete(inf.resource, obj)
        for key, res in wanted.items():
            if key in self.informers:
                continue
            inf = Informer(self.client, res, metadata_only=True, name=f"gc {res.group_resource}")
            inf.add_handlers(on_add=lambda o, r=res: self._on_upsert(r, o),
                             on_update=lambda old, new, r=res: self._on_upsert(r, new, old),
                             on_delete=lambda o, r=res: self._on_delete(r, o))
            if key == ("apiextensions.k8s.io", "customresourcedefinitions"):
                inf.add_handlers(on_add=self._crd_changed, on_update=lambda o, n: self._crd_changed(n),
                                 on_delete=self._crd_changed)
            self.informers[key] = inf
            inf.start()

    def _crd_changed(self, _obj) -> None:
        if self.ready.is_set():
            self._resync.set()

    # ---- the graph ------------------------------------------------------------------------

    def _on_upsert(self, res: Resource, obj: dict, old: dict | None = None) -> None:
        m = obj["metadata"]
        uid = m.get("uid")
        if not uid:
            return
        prev = self.nodes.get(uid)
        node = Node(uid, res, m.get("namespace"), m["name"], list(m.get("ownerReferences") or []),
                    tuple(m.get("finalizers") or ()), bool(m.get("deletionTimestamp")))
        self.nodes[uid] = node
        prev_owners = prev.owner_uids() if prev else set()
        new_owners = node.owner_uids()
        for o in prev_owners - new_owners:
            self._unlink(o, uid)
        for o in new_owners:
            self.dependents.setdefault(o, set()).add(uid)

        # owners that wait for their dependents may be unblocked by a removed or
        # unblocked reference
        for o in prev_owners:
            owner = self.nodes.get(o)
            if owner is not None and owner.deleting_dependents and \
                    (o not in new_owners or (prev.blocks(o) and not node.blocks(o))):
                self.attempt_to_delete.add(o)

        if node.orphaning:
            self.attempt_to_orphan.add(uid)
        if node.deleting_dependents and not (prev and prev.deleting_dependents):
            self.attempt_to_delete.add(uid)
            for d in self.dependents.get(uid, ()):
                self.attempt_to_delete.add(d)
        elif node.deleting_dependents:
            self.attempt_to_delete.add(uid)

        if not new_owners:
            return
        if not self._graph_synced:
            self._pending.add(uid)
            return
        for o in new_owners:
            owner = self.nodes.get(o)
            if owner is None or owner.deleting_dependents or not self._consistent(node, owner):
                self.attempt_to_delete.add(uid)
                break

    def _consistent(self, dependent: Node, owner: Node) -> bool:
        """The observed owner is the one the reference can name (same namespace for a
        namespaced owner of a namespaced dependent)."""
        if owner.resource.namespaced:
            return dependent.namespace is not None and owner.namespace == dependent.namespace
        return True

    def _on_delete(self, res: Resource, obj: dict) -> None:
        m = obj["metadata"]
        uid = m.get("uid")
        node = self.nodes.pop(uid, None)
        if node is None:
            return
        for o in node.owner_uids():
            self._unlink(o, uid)
            owner = self.nodes.get(o)
            if owner is not None and owner.deleting_dependents:
                self.attempt_to_delete.add(o)
        for d in self.dependents.get(uid, ()):
            self.attempt_to_delete.add(d)

    def _unlink(self, owner_uid: str, dependent_uid: str) -> None:
        deps = self.dependents.get(owner_uid)
        if deps is not None:
            deps.discard(dependent_uid)
            if not deps and owner_uid not in self.nodes:
                del self.dependents[owner_uid]

    # ---- attempt to delete ----------------------------------------------------------------

    async def _attempt_to_delete(self, uid: str) -> None:
        node = self.nodes.get(uid)
        if node is None:
            return
        if node.deleting and not node.deleting_dependents:
            return
        if node.deleting_dependents:
            return await self._process_deleting_dependents(node)
        latest = await self._get(node.resource, node.namespace, node.name)
        if latest is None or latest["metadata"].get("uid") != uid:
            return        # gone or replaced; the informer will tell the graph
        lm = latest["metadata"]
        if lm.get("deletionTimestamp") and FOREGROUND not in (lm.get("finalizers") or ()):
            return
        refs = lm.get("ownerReferences") or []
        if not refs:
            return
        solid, dangling, waiting = await self._classify(node, refs)
        if solid:
            drop = {r["uid"] for r in dangling + waiting}
            if drop:
                log.info("garbage collector: removing references to %s from %s",
                         sorted(drop), node)
                await self._patch_owner_refs(node, lambda rs: [r for r in rs if r.get("uid") not in drop])
            return
        if waiting and self.dependents.get(uid):
            for d in self.dependents[uid]:
                dep = self.nodes.get(d)
                if dep is not None and dep.deleting_dependents:
                    # a cycle through foreground deletions: stop blocking our owners
                    wait_uids = {r["uid"] for r in waiting}
                    await self._patch_owner_refs(node, lambda rs: [
                        dict(r, blockOwnerDeletion=False) if r.get("uid") in wait_uids else r
                        for r in rs])
                    break
            policy = "Foreground"
        else:
            finalizers = lm.get("finalizers") or ()
            policy = "Orphan" if ORPHAN in finalizers else \
                "Foreground" if FOREGROUND in finalizers else "Background"
        log.info("garbage collector: deleting %s (owners gone or deleting), propagation %s",
                 node, policy)
        try:
            await self.client.delete(node.resource, node.name, node.namespace,
                                     propagation_policy=policy, preconditions={"uid": uid})
        except ApiError as e:
            if e.status not in (404, 409):
                raise

    async def _classify(self, node: Node, refs: list[dict]) -> tuple[list, list, list]:
        """Owner references -> (solid: owner exists and is not waiting for dependents,
        dangling: owner absent, waiting: owner in foreground deletion)."""
        solid, dangling, waiting = [], [], []
        for ref in refs:
            state = await self._owner_state(node, ref)
            (solid if state == "solid" else dangling if state == "dangling" else waiting).append(ref)
        return solid, dangling, waiting

    async def _owner_state(self, node: Node, ref: dict) -> str:
        res = await self.client.resource_for(ref.get("apiVersion", ""), ref.get("kind", ""))
        if res is None:
            raise LookupError(f"{node}: owner kind {ref.get('kind')} in {ref.get('apiVersion')} "
                              "is not served")
        if res.namespaced and node.namespace is None:
            # a cluster-scoped dependent cannot have a namespaced owner: the
            # reference is unresolvable and the dependent is never collected
            log.warning("garbage collector: %s has a namespaced owner %s %s; ignoring it",
                        node, ref.get("kind"), ref.get("name"))
            return "solid"
        ns = node.namespace if res.namespaced else None
        cache_key = (ref.get("uid"), ns)
        if cache_key in self.absent_owners:
            return "dangling"
        owner = await self._get(res, ns, ref.get("name", ""))
        if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
            self.absent_owners.add(cache_key)
            return "dangling"
        om = owner["metadata"]
        if om.get("deletionTimestamp") and FOREGROUND in (om.get("finalizers") or ()):
            return "waiting"
        return "solid"

    async def _process_deleting_dependents(self, owner: Node) -> None:
        blocking = [self.nodes[d] for d in self.dependents.get(owner.uid, ()) if d in self.nodes
                    and self.nodes[d].blocks(owner.uid)]
        if not blocking:
            log.info("garbage collector: %s has no blocking dependents left; removing %s",
                     owner, FOREGROUND)
            await self._remove_finalizer(owner, FOREGROUND)
            return
        for dep in blocking:
            if not dep.deleting:
                self.attempt_to_delete.add(dep.uid)

    # ---- attempt to orphan ----------------------------------------------------------------

    async def _attempt_to_orphan(self, uid: str) -> None:
        owner = self.nodes.get(uid)
        if owner is None or not owner.orphaning:
            return
        for d in list(self.dependents.get(uid, ())):
            dep = self.nodes.get(d)
            if dep is None:
                continue
            log.info("garbage collector: orphaning %s from %s", dep, owner)
            await self._patch_owner_refs(dep, lambda rs: [r for r in rs if r.get("uid") != uid])
        await self._remove_finalizer(owner, ORPHAN)

    # ---- writes ---------------------------------------------------------------------------

    async def _get(self, res: Resource, namespace: str | None, name: str) -> dict | None:
        try:
            return await self.client.get(res, name, namespace, metadata_only=True)
        except ApiError as e:
            if e.not_found:
                return None
            raise

    async def _patch_owner_refs(self, node: Node, change) -> None:
        """Rewrite ``node``'s ownerReferences with ``change(refs)`` (merge patch with a
        resourceVersion precondition, retried on conflict)."""
        for _ in range(CONFLICT_RETRIES):
            latest = await self._get(node.resource, node.namespace, node.name)
            if latest is None or latest["metadata"].get("uid") != node.uid:
                return
            m = latest["metadata"]
            refs = m.get("ownerReferences") or []
            new = change(list(refs))
            if new == refs:
                return
            patch = {"metadata": {"ownerReferences": new or None,
                                  "resourceVersion": m["resourceVersion"]}}
            try:
                await self.client.patch(node.resource, node.name, patch, node.namespace)
                return
            except ApiError as e:
                if e.not_found:
                    return
                if not e.conflict:
                    raise
        raise RuntimeError(f"{node}: ownerReferences kept changing")

    async def _remove_finalizer(self, node: Node, finalizer: str) -> None:
        for _ in range(CONFLICT_RETRIES):
            latest = await self._get(node.resource, node.namespace, node.name)
            if latest is None or latest["metadata"].get("uid") != node.uid:
                return
            m = latest["metadata"]
            fins = m.get("finalizers") or []
            if finalizer not in fins:
                return
            patch = {"metadata": {"finalizers": [f for f in fins if f != finalizer] or None,
                                  "resourceVersion": m["resourceVersion"]}}
            try:
                await self.client.patch(node.resource, node.name, patch, node.namespace)
                return
            except ApiError as e:
                if e.not_found:
                    return
                if not e.conflict:
                    raise
        raise RuntimeError(f"{node}: finalizers kept changing")


__all__ = ["GarbageCollector", "Node", "FOREGROUND", "ORPHAN"]
