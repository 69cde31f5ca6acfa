"""Informers: a local, always-current copy of one resource's objects.

Consumers in one process share one list+watch per query through
:func:`shared_informer` (client-go's shared informer factory): each gets an
:class:`InformerView` with the Informer's read and handler interface, of every
object or of the objects with one value of an index (e.g. the pods bound to one
node), so twelve controllers and a hundred in-process nodes cost one watch.

An :class:`Informer` lists (page by page), then watches from the list's
resourceVersion with bookmarks. A watch that ends (server timeout) resumes from
the last resourceVersion seen; a 410 Expired relists and turns the difference
into add/update/delete events; other failures back off exponentially (0.8 s
doubling to 30 s, jittered, as client-go's reflector). Objects are kept by key
``namespace/name`` (``name`` when cluster-scoped) with optional indexes, and
handlers run in event order (sync or async callables; exceptions are logged).
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from typing import Any, Callable, Iterable

import aiohttp

from ..aio import wait_set
from .api import ApiError, Client, Resource

log = logging.getLogger("skube.client.informer")

IndexFunc = Callable[[dict], Iterable[str]]

MIN_WATCH_TIMEOUT = 300         # seconds; each watch asks for a random 1-2x this (client-go)
BACKOFF_INITIAL = 0.8
BACKOFF_MAX = 30.0
BACKOFF_RESET_AFTER = 120.0     # a watch that lasted this long resets the back-off
PAGE_SIZE = 500


def object_key(obj: dict) -> str:
    """``namespace/name``, or ``name`` for cluster-scoped objects (client-go's MetaNamespaceKeyFunc)."""
    m = obj.get("metadata") or {}
    ns = m.get("namespace")
    return f"{ns}/{m.get('name')}" if ns else str(m.get("name"))


def split_key(key: str) -> tuple[str | None, str]:
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else (None, ns)


# handy index functions
def index_by_namespace(obj: dict) -> list[str]:
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


def index_by_owner_uid(obj: dict) -> list[str]:
    return [r["uid"] for r in (obj.get("metadata") or {}).get("ownerReferences") or [] if r.get("uid")]


def index_by_node_name(obj: dict) -> list[str]:
    node = (obj.get("spec") or {}).get("nodeName")
    return [node] if node else []


class _Backoff:
    def __init__(self):
        self.delay = 0.0

    def next(self) -> float:
        self.delay = BACKOFF_INITIAL if not self.delay else min(self.delay * 2, BACKOFF_MAX)
        return self.delay * (1 + random.random())   # jitter factor 1.0

    def reset(self) -> None:
        self.delay = 0.0


async def _call(fn: Callable, *args) -> None:
    try:
        result = fn(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:  # noqa: BLE001 - one bad handler must not stop the informer
        log.exception("informer handler %r failed", fn)


class Informer:
    """List+watch cache of one resource (optionally one namespace and selectors).

    Register handlers and indexers before :meth:`start`. ``metadata_only`` keeps
    only ``apiVersion``, ``kind`` and ``metadata`` of each object (and asks the
    server for PartialObjectMetadata lists)."""

    def __init__(self, client: Client, resource: Resource, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None, *,
                 metadata_only: bool = False, indexers: dict[str, IndexFunc] | None = None,
                 page_size: int = PAGE_SIZE, name: str | None = None):
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.metadata_only = metadata_only
        self.page_size = page_size
        self.name = name or resource.group_resource + (f" in {namespace}" if namespace else "")
        self._items: dict[str, dict] = {}
        self._indexers: dict[str, IndexFunc] = {}
        self._indexes: dict[str, dict[str, set[str]]] = {}
        self._on_add: list[Callable] = []
        self._on_update: list[Callable] = []
        self._on_delete: list[Callable] = []
        self._synced = asyncio.Event()
        self._stopped = False
        self._task: asyncio.Task | None = None
        self._watch = None
        self.resource_version: str | None = None
        self.relists = 0           # lists done, including the first
        self.watches = 0           # watches opened
        for name_, fn in (indexers or {}).items():
            self.add_indexer(name_, fn)

    # ---- registration -------------------------------------------------------------------

    def on_add(self, fn: Callable[[dict], Any]) -> Callable:
        """``fn(obj)`` for each new object (usable as a decorator)."""
        self._on_add.append(fn)
        return fn

    def on_update(self, fn: Callable[[dict, dict], Any]) -> Callable:
        """``fn(old, new)`` when an object changes (its resourceVersion moved)."""
        self._on_update.append(fn)
        return fn

    def on_delete(self, fn: Callable[[dict], Any]) -> Callable:
        """``fn(obj)`` with the final state (or the last one seen, after a relist)."""
        self._on_delete.append(fn)
        return fn

    def add_handlers(self, on_add=None, on_update=None, on_delete=None) -> None:
        if on_add:
            self.on_add(on_add)
        if on_update:
            self.on_update(on_update)
        if on_delete:
            self.on_delete(on_delete)

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        have = self._indexers.get(name)
        if have is fn:
            return
        if have is not None:
            raise ValueError(f"{self.name}: index {name!r} already has another function")
        self._indexers[name] = fn
        index: dict[str, set[str]] = {}
        for key, obj in self._items.items():
            for value in fn(obj) or ():
                index.setdefault(value, set()).add(key)
        self._indexes[name] = index

    # ---- the store ----------------------------------------------------------------------

    def get(self, key: str) -> dict | None:
        return self._items.get(key)

    def get_by_name(self, name: str, namespace: str | None = None) -> dict | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def list(self) -> list[dict]:
        return list(self._items.values())

    def keys(self) -> list[str]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def by_index(self, name: str, value: str) -> list[dict]:
        keys = self._indexes[name].get(value) or ()
        return [self._items[k] for k in keys]

    def index_keys(self, name: str, value: str) -> list[str]:
        return list(self._indexes[name].get(value) or ())

    def _index_remove(self, key: str, obj: dict) -> None:
        for name, fn in self._indexers.items():
            index = self._indexes[name]
            for value in fn(obj) or ():
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]

    def _index_add(self, key: str, obj: dict) -> None:
        for name, fn in self._indexers.items():
            index = self._indexes[name]
            for value in fn(obj) or ():
                index.setdefault(value, set()).add(key)

    def _normalize(self, obj: dict) -> dict:
        if self.metadata_only:
            return {"apiVersion": self.resource.api_version,
                    "kind": self.resource.kind or obj.get("kind"),
                    "metadata": obj.get("metadata") or {}}
        if "kind" not in obj and self.resource.kind:
            obj["kind"] = self.resource.kind
            obj["apiVersion"] = self.resource.api_version
        return obj

    async def _upsert(self, obj: dict) -> None:
        obj = self._normalize(obj)
        key = object_key(obj)
        old = self._items.get(key)
        if old is not None:
            self._index_remove(key, old)
        self._items[key] = obj
        self._index_add(key, obj)
        if old is None:
            for fn in self._on_add:
                await _call(fn, obj)
        elif (old.get("metadata") or {}).get("resourceVersion") != obj["metadata"].get("resourceVersion"):
            for fn in self._on_update:
                await _call(fn, old, obj)

    async def _remove(self, obj: dict) -> None:
        obj = self._normalize(obj)
        key = object_key(obj)
        old = self._items.pop(key, None)
        if old is None:
            return
        self._index_remove(key, old)
        for fn in self._on_delete:
            await _call(fn, obj)

    # ---- running ------------------------------------------------------------------------

    @property
    def has_synced(self) -> bool:
        """True once the first list has been stored (and its events handled)."""
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> bool:
        """Wait for the first list; False on timeout."""
        return await wait_set(self._synced, timeout)

    def start(self) -> asyncio.Task:
        """Run in the background (in the current event loop)."""
        if self._task is None or self._task.done() or self._stopped:
            self._stopped = False
            self._task = asyncio.get_running_loop().create_task(self.run(), name=f"informer {self.name}")
        return self._task

    def stop(self) -> None:
        self._stopped = True
        if self._watch is not None:
            self._watch.close()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def run(self) -> None:
        """List and watch until stopped. Started again after :meth:`stop`, an informer
        that has synced resumes watching from its last resourceVersion (and relists
        if that is too old by now)."""
        backoff = _Backoff()
        need_list = not self.has_synced or self.resource_version is None
        while not self._stopped:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                    backoff.reset()
                started = time.monotonic()
                await self._watch_once()
                if time.monotonic() - started > BACKOFF_RESET_AFTER:
                    backoff.reset()
            except asyncio.CancelledError:
                raise
            except ApiError as e:
                if e.gone:
                    log.info("%s: %s; relisting", self.name, e.message)
                    need_list = True
                    continue
                delay = backoff.next()
                log.warning("%s: %s; retrying in %.1fs", self.name, e, delay)
                if e.status in (404, 403, 401):
                    need_list = True   # the resource may be gone or forbidden: list again later
                await asyncio.sleep(delay)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                delay = backoff.next()
                log.info("%s: connection problem (%s); retrying in %.1fs", self.name,
                         e or type(e).__name__, delay)
                await asyncio.sleep(delay)

    async def _list(self) -> None:
        listed = await self.client.list_all(self.resource, self.namespace, page_size=self.page_size,
                                            label_selector=self.label_selector,
                                            field_selector=self.field_selector,
                                            metadata_only=self.metadata_only)
        self.relists += 1
        rv = (listed.get("metadata") or {}).get("resourceVersion")
        items = listed.get("items") or []
        seen = set()
        for obj in items:
            seen.add(object_key(obj))
            await self._upsert(obj)
        for key in [k for k in self._items if k not in seen]:
            await self._remove(self._items[key])
        self.resource_version = rv
        self._synced.set()

    async def _watch_once(self) -> None:
        timeout = int(MIN_WATCH_TIMEOUT * (1 + random.random()))
        self.watches += 1
        self._watch = self.client.watch(self.resource, self.namespace,
                                        resource_version=self.resource_version,
                                        label_selector=self.label_selector,
                                        field_selector=self.field_selector, allow_bookmarks=True,
                                        timeout_seconds=timeout, metadata_only=self.metadata_only)
        try:
            async with self._watch as stream:
                async for etype, obj in stream:
                    rv = (obj.get("metadata") or {}).get("resourceVersion")
                    if etype in ("ADDED", "MODIFIED"):
                        await self._upsert(obj)
                    elif etype == "DELETED":
                        await self._remove(obj)
                    elif etype != "BOOKMARK":
                        log.debug("%s: ignoring watch event %s", self.name, etype)
                    if rv:
                        self.resource_version = rv
        finally:
            self._watch = None


class SharedInformer:
    """One :class:`Informer` fanned out to views (see :func:`shared_informer`). The
    informer runs while any view is started."""

    def __init__(self, informer: Informer):
        self.informer = informer
        self._groups: dict[str | None, dict[str | None, set[InformerView]]] = {}
        self._started = 0
        informer.add_handlers(self._add, self._update, self._delete)

    def view(self, index: tuple[str, IndexFunc] | None = None, value: str | None = None,
             name: str | None = None) -> InformerView:
        """All objects, or (``index=(name, fn)``) those whose index values include ``value``."""
        if index is not None:
            self.informer.add_indexer(*index)
        return InformerView(self, index[0] if index else None, value,
                            name or self.informer.name + (f" ({value})" if index else ""))

    def _attach(self, view: InformerView) -> None:
        self._groups.setdefault(view.index, {}).setdefault(view.value, set()).add(view)
        self._started += 1
        self.informer.start()

    def _detach(self, view: InformerView) -> None:
        views = self._groups.get(view.index, {}).get(view.value)
        if views is None or view not in views:
            return
        views.discard(view)
        if not views:
            del self._groups[view.index][view.value]
        self._started -= 1
        if not self._started:
            self.informer.stop()

    def _values(self, index: str | None, obj: dict) -> Iterable:
        return self.informer._indexers[index](obj) or () if index is not None else (None,)

    async def _add(self, obj: dict) -> None:
        for index, by_value in list(self._groups.items()):
            for value in self._values(index, obj):
                for view in list(by_value.get(value) or ()):
                    await view._add(obj)

    async def _update(self, old: dict, new: dict) -> None:
        for index, by_value in list(self._groups.items()):
            new_values = set(self._values(index, new))
            for value in set(self._values(index, old)) - new_values:   # it left these views
                for view in list(by_value.get(value) or ()):
                    await view._delete(new)
            for value in new_values:
                for view in list(by_value.get(value) or ()):
                    await view._update(old, new)

    async def _delete(self, obj: dict) -> None:
        for index, by_value in list(self._groups.items()):
            for value in self._values(index, obj):
                for view in list(by_value.get(value) or ()):
                    await view._delete(obj)


class InformerView:
    """A consumer's part of a :class:`SharedInformer`: the Informer's interface
    (handlers, reads, ``start``/``stop``/``wait_synced``). A view started after the
    informer has synced gets an add for each object already there, as a new
    informer's list would; ``stop`` detaches it (the informer stops with its last view)."""

    def __init__(self, shared: SharedInformer, index: str | None, value: str | None, name: str):
        self.shared, self.index, self.value, self.name = shared, index, value, name
        self.informer = shared.informer
        self.resource = self.informer.resource
        self._on_add: list[Callable] = []
        self._on_update: list[Callable] = []
        self._on_delete: list[Callable] = []
        self._known: set[str] = set()        # keys this view's handlers have been told of
        self._synced = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._attached = False

    on_add = Informer.on_add
    on_update = Informer.on_update
    on_delete = Informer.on_delete
    add_handlers = Informer.add_handlers

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        self.informer.add_indexer(name, fn)       # indexes are the shared informer's

    # ---- reads ---------------------------------------------------------------------------

    def _mine(self, obj: dict | None) -> dict | None:
        if obj is None or self.index is None:
            return obj
        return obj if self.value in (self.informer._indexers[self.index](obj) or ()) else None

    def get(self, key: str) -> dict | None:
        return self._mine(self.informer.get(key))

    def get_by_name(self, name: str, namespace: str | None = None) -> dict | None:
        return self._mine(self.informer.get_by_name(name, namespace))

    def keys(self) -> list[str]:
        if self.index is None:
            return self.informer.keys()
        return self.informer.index_keys(self.index, self.value)

    def list(self) -> list[dict]:
        if self.index is None:
            return self.informer.list()
        return self.informer.by_index(self.index, self.value)

    def __len__(self) -> int:
        return len(self.informer) if self.index is None else len(self.keys())

    def by_index(self, name: str, value: str) -> list[dict]:
        return [o for o in self.informer.by_index(name, value) if self._mine(o) is not None]

    def index_keys(self, name: str, value: str) -> list[str]:
        if self.index is None:
            return self.informer.index_keys(name, value)
        return [k for k in self.informer.index_keys(name, value) if self.get(k) is not None]

    @property
    def resource_version(self) -> str | None:
        return self.informer.resource_version

    # ---- events from the shared informer --------------------------------------------------

    async def _add(self, obj: dict) -> None:
        self._known.add(object_key(obj))
        for fn in self._on_add:
            await _call(fn, obj)

    async def _update(self, old: dict, new: dict) -> None:
        key = object_key(new)
        if key not in self._known:
            await self._add(new)
            return
        for fn in self._on_update:
            await _call(fn, old, new)

    async def _delete(self, obj: dict) -> None:
        key = object_key(obj)
        if key not in self._known:
            return
        self._known.discard(key)
        for fn in self._on_delete:
            await _call(fn, obj)

    # ---- running -------------------------------------------------------------------------

    has_synced = Informer.has_synced           # once caught up with the shared informer
    wait_synced = Informer.wait_synced

    def start(self) -> asyncio.Task:
        if not self._attached:
            self._attached = True
            self.shared._attach(self)
            self._task = asyncio.get_running_loop().create_task(self._catch_up(),
                                                                name=f"informer view {self.name}")
        return self._task

    async def _catch_up(self) -> None:
        """Tell the handlers of what the informer held before this view was attached."""
        await self.informer.wait_synced()
        for key in self.keys():
            obj = self.get(key)
            if obj is not None and key not in self._known and self._attached:
                await self._add(obj)
        self._synced.set()

    def stop(self) -> None:
        if not self._attached:
            return
        self._attached = False
        self.shared._detach(self)
        self._known.clear()
        self._synced.clear()
        if self._task is not None and not self._task.done():
            self._task.cancel()


def shared_informer(client: Client, resource: Resource, namespace: str | None = None, *,
                    label_selector: str | None = None, field_selector: str | None = None,
                    metadata_only: bool = False) -> SharedInformer:
    """The client's one :class:`SharedInformer` for this query (created on first use)."""
    key = (resource.group_resource, namespace, label_selector, field_selector, metadata_only)
    table = getattr(client, "shared_informers", None)    # None: a stand-in client (tests)
    shared = table.get(key) if table is not None else None
    if shared is None:
        shared = SharedInformer(Informer(
            client, resource, namespace, label_selector, field_selector, metadata_only=metadata_only,
            name=f"shared {resource.group_resource}" + (f" in {namespace}" if namespace else "")))
        if table is not None:
            table[key] = shared
    return shared


__all__ = ["Informer", "SharedInformer", "InformerView", "shared_informer", "object_key", "split_key", "index_by_namespace", "index_by_owner_uid",
           "index_by_node_name"]
