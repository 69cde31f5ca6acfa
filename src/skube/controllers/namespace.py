"""The namespace controller: empties a Terminating namespace, then finalizes it.

For a namespace with deletionTimestamp whose ``spec.finalizers`` still holds
``kubernetes``: mark it Terminating, delete every namespaced resource in it
(discovery-driven, custom resources included; deletecollection where served,
else list and delete one by one, both with Background propagation), record the
upstream status conditions, and once nothing is left PUT ``…/finalize`` without
the ``kubernetes`` finalizer — the API server then removes the namespace.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging

from ..client import ApiError, Client, Informer, Resource, WorkQueue, resource, run_workers

log = logging.getLogger("skube.controllers.namespace")

NAMESPACES = resource("v1", "namespaces", namespaced=False, kind="Namespace")
FINALIZER = "kubernetes"
REMAINING_RETRY = 2.0       # seconds before looking again at content that is still going
CONFLICT_RETRIES = 5

# (type, reason when False, message when False), in upstream's order
CONDITIONS = (
    ("NamespaceDeletionDiscoveryFailure", "ResourcesDiscovered", "All resources successfully discovered"),
    ("NamespaceDeletionGroupVersionParsingFailure", "ParsedGroupVersions",
     "All legacy kube types successfully parsed"),
    ("NamespaceDeletionContentFailure", "ContentDeleted",
     "All content successfully deleted, may be waiting on finalization"),
    ("NamespaceContentRemaining", "ContentRemoved", "All content successfully removed"),
    ("NamespaceFinalizersRemaining", "ContentHasNoFinalizers", "All content-preserving finalizers finished"),
)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Content:
    """What one deletion pass found: failures, and what remains."""

    def __init__(self):
        self.discovery_errors: list[str] = []
        self.errors: list[str] = []
        self.remaining: dict[str, int] = {}          # "plural.group" -> count
        self.finalizers: dict[str, int] = {}         # finalizer -> objects holding it
        self.estimate = 0.0                          # seconds until the rest should be gone

    def conditions(self) -> dict[str, tuple[str, str, str]]:
        """type -> (status, reason, message)."""
        out = {t: ("False", reason, msg) for t, reason, msg in CONDITIONS}
        if self.discovery_errors:
            out["NamespaceDeletionDiscoveryFailure"] = (
                "True", "DiscoveryFailed", f"Discovery failed for some groups, "
                f"{len(self.discovery_errors)} failing: {'; '.join(self.discovery_errors)}")
        if self.errors:
            out["NamespaceDeletionContentFailure"] = (
                "True", "ContentDeletionFailed", f"Failed to delete all resource types, "
                f"{len(self.errors)} remaining: {'; '.join(self.errors)}")
        if self.remaining:
            parts = [f"{gr} has {n} resource instances" for gr, n in sorted(self.remaining.items())]
            out["NamespaceContentRemaining"] = ("True", "SomeResourcesRemain",
                                                "Some resources are remaining: " + ", ".join(parts))
        if self.finalizers:
            parts = [f"{f} in {n} resource instances" for f, n in sorted(self.finalizers.items())]
            out["NamespaceFinalizersRemaining"] = (
                "True", "SomeFinalizersRemain",
                "Some content in the namespace has finalizers remaining: " + ", ".join(parts))
        return out


class NamespaceController:
    """Run with ``await controller.run(stop_event)``."""

    name = "namespace"

    def __init__(self, client: Client, *, workers: int = 4):
        self.client = client
        self.workers = workers
        self.queue = WorkQueue(name="namespace")
        self.informer = Informer(client, NAMESPACES, name="namespace controller namespaces")
        self.informer.add_handlers(on_add=self._changed, on_update=lambda old, new: self._changed(new))
        self.ready = asyncio.Event()

    def _changed(self, ns: dict) -> None:
        if ns["metadata"].get("deletionTimestamp"):
            self.queue.add(ns["metadata"]["name"])

    async def run(self, stop: asyncio.Event) -> None:
        self.informer.start()
        workers = None
        try:
            await self.informer.wait_synced()
            self.ready.set()
            workers = asyncio.create_task(run_workers(self.queue, self.sync, self.workers))
            await stop.wait()
        finally:
            self.queue.shut_down()
            self.informer.stop()
            if workers is not None:
                workers.cancel()
                await asyncio.gather(workers, return_exceptions=True)

    # ---- one namespace --------------------------------------------------------------------

    async def sync(self, name: str) -> float | None:
        """One pass over a deleting namespace; returns seconds until the next look
        while content remains."""
        ns = await self._get(name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return None
        if (ns.get("status") or {}).get("phase") != "Terminating":
            ns = await self._set_status(name, lambda st: st.__setitem__("phase", "Terminating"))
            if ns is None:
                return None
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or ()):
            return None
        content = await self._delete_all_content(name)
        await self._set_conditions(name, content.conditions())
        if content.discovery_errors or content.errors:
            raise RuntimeError(f"namespace {name}: content deletion incomplete: "
                               + "; ".join(content.discovery_errors + content.errors))
        if content.remaining:
            log.info("namespace %s: waiting for %s", name, content.remaining)
            return max(content.estimate, REMAINING_RETRY)
        await self._finalize(name)
        return None

    async def _get(self, name: str) -> dict | None:
        try:
            return await self.client.get(NAMESPACES, name)
        except ApiError as e:
            if e.not_found:
                return None
            raise

    async def _set_status(self, name: str, change) -> dict | None:
        """Apply ``change(status)`` to the latest namespace through /status."""
        for _ in range(CONFLICT_RETRIES):
            ns = await self._get(name)
            if ns is None:
                return None
            status = dict(ns.get("status") or {})
            before = dict(status)
            change(status)
            if status == before:
                return ns
            ns["status"] = status
            try:
                return await self.client.update_status(NAMESPACES, ns)
            except ApiError as e:
                if e.not_found:
                    return None
                if not e.conflict:
                    raise
        raise RuntimeError(f"namespace {name}: status kept changing")

    async def _set_conditions(self, name: str, wanted: dict[str, tuple[str, str, str]]) -> None:
        def change(status: dict) -> None:
            old = {c.get("type"): c for c in status.get("conditions") or []}
            out = [c for c in status.get("conditions") or [] if c.get("type") not in wanted]
            changed = False
            for ctype, _, _ in CONDITIONS:
                st, reason, msg = wanted[ctype]
                prev = old.get(ctype)
                if prev and (prev.get("status"), prev.get("reason"), prev.get("message")) == (st, reason, msg):
                    out.append(prev)
                    continue
                changed = True
                ltt = prev.get("lastTransitionTime") if prev and prev.get("status") == st else _now()
                out.append({"type": ctype, "status": st, "lastTransitionTime": ltt,
                            "reason": reason, "message": msg})
            if changed:
                status["conditions"] = out
        await self._set_status(name, change)

    async def _finalize(self, name: str) -> None:
        for _ in range(CONFLICT_RETRIES):
            ns = await self._get(name)
            if ns is None:
                return
            fins = (ns.get("spec") or {}).get("finalizers") or []
            if FINALIZER not in fins:
                return
            ns.setdefault("spec", {})["finalizers"] = [f for f in fins if f != FINALIZER]
            try:
                await self.client.request("PUT", NAMESPACES.path(None, name, "finalize"), body=ns)
                log.info("namespace %s: empty, finalized", name)
                return
            except ApiError as e:
                if e.not_found:
                    return
                if not e.conflict:
                    raise
        raise RuntimeError(f"namespace {name}: finalize kept conflicting")

    # ---- content --------------------------------------------------------------------------

    async def _delete_all_content(self, ns: str) -> _Content:
        content = _Content()
        try:
            resources = await self.client.server_resources(refresh=True)
        except Exception as e:  # noqa: BLE001 - reported in the namespace's conditions
            content.discovery_errors.append(str(e))
            return content
        targets = [r for r in resources if r.namespaced and r.supports("delete", "list")]
        await asyncio.gather(*(self._delete_resource(r, ns, content) for r in targets))
        return content

    async def _delete_resource(self, res: Resource, ns: str, content: _Content) -> None:
        try:
            if res.supports("deletecollection"):
                try:
                    await self.client.delete_collection(res, ns, propagation_policy="Background")
                except ApiError as e:
                    if e.status not in (404, 405):
                        raise
                    await self._delete_each(res, ns)
            else:
                await self._delete_each(res, ns)
            left = (await self.client.list_all(res, ns, metadata_only=True)).get("items") or []
        except ApiError as e:
            if e.not_found:     # the resource went away (e.g. its CRD was deleted)
                return
            content.errors.append(f"{res.group_resource}: {e.message or e.reason}")
            return
        if not left:
            return
        content.remaining[f"{res.plural}.{res.group}"] = len(left)
        for obj in left:
            m = obj.get("metadata") or {}
            for f in m.get("finalizers") or ():
                content.finalizers[f] = content.finalizers.get(f, 0) + 1
            grace = m.get("deletionGracePeriodSeconds")
            if grace:
                content.estimate = max(content.estimate, float(grace))

    async def _delete_each(self, res: Resource, ns: str) -> None:
        items = (await self.client.list_all(res, ns, metadata_only=True)).get("items") or []
        for obj in items:
            m = obj.get("metadata") or {}
            if m.get("deletionTimestamp"):
                continue
            try:
                await self.client.delete(res, m["name"], ns, propagation_policy="Background",
                                         preconditions={"uid": m.get("uid")} if m.get("uid") else None)
            except ApiError as e:
                if e.status not in (404, 409):
                    raise


__all__ = ["NamespaceController", "NAMESPACES", "CONDITIONS"]
