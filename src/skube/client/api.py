"""An async client for any Kubernetes API server: REST verbs on plain dicts,
watch streams, discovery. One aiohttp session with keep-alive per Client.

Resources are addressed by :class:`Resource` (group, version, plural, scope) or
by a raw path such as ``"/api/v1/namespaces"``. Failures raise :class:`ApiError`
carrying the server's metav1.Status.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from .config import ClientConfig, load_kubeconfig

log = logging.getLogger("skube.client")

JSON = "application/json"
PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}
AGGREGATED_DISCOVERY = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
                        "application/json")
PARTIAL_METADATA_LIST = ("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
                         "application/json")
PARTIAL_METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
MAX_RETRY_AFTER = 10          # how often a 429/503 with Retry-After is retried
DISCOVERY_MISS_REFRESH = 5.0  # a resource_for() miss re-reads discovery at most this often (s)


# ---- errors -----------------------------------------------------------------------------


class ApiError(Exception):
    """A failed request, mirroring metav1.Status: HTTP ``status``, ``reason``
    (NotFound, AlreadyExists, Conflict, Expired, Invalid…), ``message`` and the
    decoded ``body`` (the Status dict, or the raw text when it was not JSON)."""

    def __init__(self, status: int, reason: str, message: str, body: Any = None):
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body

    @property
    def details(self) -> dict:
        return (self.body or {}).get("details") or {} if isinstance(self.body, dict) else {}

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409 and self.reason == "Conflict"

    @property
    def already_exists(self) -> bool:
        return self.status == 409 and self.reason == "AlreadyExists"

    @property
    def gone(self) -> bool:
        """410 Expired/Gone: a resourceVersion or continue token is too old."""
        return self.status == 410

    @classmethod
    def from_status(cls, status: dict, http_status: int | None = None) -> "ApiError":
        code = status.get("code") or http_status or 500
        return cls(int(code), status.get("reason") or _REASONS.get(int(code), "Unknown"),
                   status.get("message") or "", status)


_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
            405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict", 410: "Expired",
            413: "RequestEntityTooLarge", 415: "UnsupportedMediaType", 422: "Invalid",
            429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
            504: "Timeout"}


# ---- resources --------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """One API resource: where it lives and what it supports (from discovery, or
    built by hand with :func:`resource`)."""
    group: str
    version: str
    plural: str
    namespaced: bool = True
    kind: str = ""
    verbs: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    singular: str = ""
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``plural.group`` (``pods`` for the core group)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def supports(self, *verbs: str) -> bool:
        return all(v in self.verbs for v in verbs)

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
            if subresource:
                base += f"/{subresource}"
        return base


def resource(api_version: str, plural: str, namespaced: bool = True, kind: str = "") -> Resource:
    """A Resource by hand: ``resource("v1", "configmaps")``, ``resource("apps/v1", "deployments")``."""
    group, _, version = api_version.rpartition("/")
    return Resource(group, version, plural, namespaced, kind)


def _split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = (api_version or "").rpartition("/")
    return group, version


# ---- watch ------------------------------------------------------------------------------


class WatchStream:
    """An open watch: ``async for type, obj in stream``. ERROR events raise
    :class:`ApiError` (410 for an expired resourceVersion); the iteration ends when
    the server closes the stream (e.g. after ``timeoutSeconds``). Close it with
    :meth:`close` or use it as an async context manager."""

    def __init__(self, client: "Client", path: str, params: dict, accept: str, read_timeout: float | None):
        self._client = client
        self._path = path
        self._params = params
        self._accept = accept
        self._read_timeout = read_timeout
        self._resp: aiohttp.ClientResponse | None = None
        self._buf = b""
        self._lines: deque[bytes] = deque()
        self._closed = False

    async def __aenter__(self) -> "WatchStream":
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()

    def __aiter__(self) -> "WatchStream":
        return self

    async def _open(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=self._read_timeout)
        self._resp = await self._client._send("GET", self._path, params=self._params,
                                              accept=self._accept, timeout=timeout, stream=True)

    async def __anext__(self) -> tuple[str, dict]:
        if self._closed:
            raise StopAsyncIteration
        if self._resp is None:
            await self._open()
        while not self._lines:
            chunk = await self._resp.content.readany()
            if not chunk:
                tail, self._buf = self._buf.strip(), b""
                if tail:
                    self._lines.append(tail)
                    break
                self.close()
                raise StopAsyncIteration
            parts = (self._buf + chunk).split(b"\n")
            self._buf = parts.pop()
            self._lines.extend(p for p in parts if p.strip())
        line = self._lines.popleft()
        try:
            ev = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            self.close()
            raise ApiError(500, "InternalError", f"invalid watch event: {e}", line) from None
        etype, obj = ev.get("type"), ev.get("object") or {}
        if etype == "ERROR":
            self.close()
            raise ApiError.from_status(obj if isinstance(obj, dict) else {})
        return etype, obj

    def close(self) -> None:
        self._closed = True
        if self._resp is not None:
            self._resp.close()
            self._resp = None


# ---- the client -------------------------------------------------------------------------


class Client:
    """Async Kubernetes API client on one aiohttp session (keep-alive, any number of
    concurrent requests and watches). Use ``async with Client(...)`` or ``await close()``."""

    def __init__(self, config: ClientConfig, component: str = "client", *,
                 timeout: float = 60.0):
        self.config = config
        self.component = component
        self.user_agent = f"skube/{component}"
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._discovery: list[Resource] | None = None
        self._discovery_all: list[Resource] | None = None
        self._discovery_at = 0.0
        self._discovery_lock: asyncio.Lock | None = None
        self.shared_informers: dict = {}    # one list+watch per query (informer.shared_informer)

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None,
                        component: str = "client", **kw) -> "Client":
        return cls(load_kubeconfig(path, context), component, **kw)

    @property
    def namespace(self) -> str:
        """The kubeconfig context's namespace (``default`` if unset)."""
        return self.config.namespace

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # one watch holds one HTTP/1.1 connection, so no global connection cap
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": self.user_agent},
                json_serialize=lambda o: orjson.dumps(o).decode(),
                read_bufsize=1 << 20)
        return self._session

    # ---- raw requests ---------------------------------------------------------------------

    async def _send(self, method: str, path: str, *, params=None, body: bytes | None = None,
                    content_type: str | None = None, accept: str = JSON,
                    timeout: aiohttp.ClientTimeout | None = None, stream: bool = False,
                    headers: dict | None = None) -> aiohttp.ClientResponse:
        """Send one request (retrying a 401 once after refreshing credentials, and
        429/503 answers that carry Retry-After); raise ApiError on failure."""
        session = self._get_session()
        url = self.config.server + path
        timeout = timeout or aiohttp.ClientTimeout(total=self.timeout)
        query = _query(params)
        unauthorized_retry = True
        for attempt in range(MAX_RETRY_AFTER + 1):
            cred = await self.config.exec_credential()
            hdrs = {"Accept": accept, **(await self.config.auth_headers())}
            if content_type:
                hdrs["Content-Type"] = content_type
            if headers:
                hdrs.update(headers)
            kw: dict = {}
            ctx = self.config.ssl_context(cred)
            if ctx is not None:
                kw["ssl"] = ctx
                if self.config.tls_server_name:
                    kw["server_hostname"] = self.config.tls_server_name
            resp = await session.request(method, url, params=query, data=body, headers=hdrs,
                                          timeout=timeout, **kw)
            if resp.status < 400:
                if not stream:
                    await resp.read()
                return resp
            data = await resp.read()
            resp.release()
            if resp.status == 401 and unauthorized_retry and self.config.on_unauthorized():
                unauthorized_retry = False
                continue
            retry_after = resp.headers.get("Retry-After")
            if resp.status in (429, 503) and retry_after and attempt < MAX_RETRY_AFTER:
                try:
                    delay = min(float(retry_after), 30.0)
                except ValueError:
                    delay = 1.0
                await asyncio.sleep(delay)
                continue
            raise _error(resp.status, data)
        raise AssertionError("unreachable")

    async def request(self, method: str, path: str, *, params: dict | None = None,
                      body: Any = None, content_type: str | None = None, accept: str = JSON,
                      raw: bool = False, timeout: float | None = None) -> Any:
        """Any request: ``body`` as bytes/str (sent as is) or JSON-encodable; returns the
        decoded JSON answer (or bytes with ``raw=True``)."""
        data = _encode(body)
        if data is not None and content_type is None:
            content_type = JSON
        t = aiohttp.ClientTimeout(total=timeout) if timeout is not None else None
        resp = await self._send(method.upper(), path, params=params, body=data,
                                content_type=content_type, accept=accept, timeout=t)
        payload = await resp.read()
        if raw:
            return payload
        return orjson.loads(payload) if payload.strip() else None

    # ---- verbs ----------------------------------------------------------------------------

    def _path(self, res: Resource | str, namespace: str | None, name: str | None = None,
              subresource: str | None = None) -> str:
        if isinstance(res, str):
            path = res.rstrip("/")
            if name is not None:
                path += "/" + quote(name, safe="")
                if subresource:
                    path += "/" + subresource
            return path
        return res.path(namespace, name, subresource)

    def _ns(self, res: Resource | str, namespace: str | None, body: dict | None = None) -> str | None:
        """Namespace of a single-object request: explicit, else the body's, else the context's."""
        if isinstance(res, str) or not res.namespaced:
            return None
        if namespace:
            return namespace
        if body is not None:
            ns = (body.get("metadata") or {}).get("namespace")
            if ns:
                return ns
        return self.namespace

    async def get(self, res: Resource | str, name: str | None = None, namespace: str | None = None,
                  *, subresource: str | None = None, params: dict | None = None,
                  metadata_only: bool = False) -> dict:
        """GET one object (or, with a path and no name, whatever the path answers)."""
        ns = self._ns(res, namespace) if name is not None else namespace
        return await self.request("GET", self._path(res, ns, name, subresource), params=params,
                                  accept=PARTIAL_METADATA if metadata_only else JSON)

    async def list(self, res: Resource | str, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None,
                   resource_version: str | None = None, resource_version_match: str | None = None,
                   metadata_only: bool = False, timeout: float | None = None) -> dict:
        """One LIST page (``namespace=None``: all namespaces). ``metadata.continue``
        is set when more pages follow."""
        params = {"labelSelector": label_selector, "fieldSelector": field_selector, "limit": limit,
                  "continue": continue_, "resourceVersion": resource_version,
                  "resourceVersionMatch": resource_version_match}
        return await self.request("GET", self._path(res, namespace), params=params,
                                  accept=PARTIAL_METADATA_LIST if metadata_only else JSON,
                                  timeout=timeout)

    async def list_all(self, res: Resource | str, namespace: str | None = None, *,
                       page_size: int = 500, **kw) -> dict:
        """LIST every page; returns one List dict whose ``items`` hold them all and whose
        resourceVersion is the consistent snapshot the pages were read at."""
        out: dict | None = None
        token = None
        while True:
            page = await self.list(res, namespace, limit=page_size, continue_=token, **kw)
            kw.pop("resource_version", None)
            kw.pop("resource_version_match", None)
            if out is None:
                out = page
                out["items"] = list(page.get("items") or [])
            else:
                out["items"].extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                out.setdefault("metadata", {}).pop("continue", None)
                out["metadata"].pop("remainingItemCount", None)
                return out

    async def create(self, res: Resource | str, body: dict, namespace: str | None = None, *,
                     field_manager: str | None = None, dry_run: bool = False,
                     field_validation: str | None = None) -> dict:
        ns = self._ns(res, namespace, body)
        return await self.request("POST", self._path(res, ns), body=body,
                                  params=_write_params(field_manager, dry_run, field_validation))

    async def update(self, res: Resource | str, body: dict, namespace: str | None = None, *,
                     subresource: str | None = None, field_manager: str | None = None,
                     dry_run: bool = False, field_validation: str | None = None) -> dict:
        """PUT the whole object (its metadata.resourceVersion, if set, is a precondition)."""
        name = (body.get("metadata") or {}).get("name")
        if not name:
            raise ValueError("update needs body.metadata.name")
        ns = self._ns(res, namespace, body)
        return await self.request("PUT", self._path(res, ns, name, subresource), body=body,
                                  params=_write_params(field_manager, dry_run, field_validation))

    async def update_status(self, res: Resource | str, body: dict, namespace: str | None = None,
                            **kw) -> dict:
        return await self.update(res, body, namespace, subresource="status", **kw)

    async def patch(self, res: Resource | str, name: str, patch: Any, namespace: str | None = None,
                    *, patch_type: str = "merge", field_manager: str | None = None,
                    force: bool | None = None, subresource: str | None = None,
                    dry_run: bool = False, field_validation: str | None = None) -> dict:
        """PATCH with ``patch_type`` merge | strategic | json | apply (server-side apply
        needs ``field_manager``; ``force`` takes over conflicting fields)."""
        try:
            ctype = PATCH_TYPES[patch_type]
        except KeyError:
            raise ValueError(f"patch_type must be one of {', '.join(PATCH_TYPES)}") from None
        if patch_type == "apply" and not field_manager:
            raise ValueError("server-side apply needs a field_manager")
        params = _write_params(field_manager, dry_run, field_validation)
        if force is not None:
            params["force"] = "true" if force else "false"
        ns = self._ns(res, namespace, patch if isinstance(patch, dict) else None)
        return await self.request("PATCH", self._path(res, ns, name, subresource), body=patch,
                                  content_type=ctype, params=params)

    async def delete(self, res: Resource | str, name: str, namespace: str | None = None, *,
                     grace_period_seconds: int | None = None, propagation_policy: str | None = None,
                     preconditions: dict | None = None, dry_run: bool = False) -> dict:
        """DELETE with DeleteOptions; returns the object (still there while finalizers or a
        grace period hold it) or a Success Status. ``preconditions``: {uid, resourceVersion}."""
        opts = _delete_options(grace_period_seconds, propagation_policy, preconditions, dry_run)
        ns = self._ns(res, namespace)
        return await self.request("DELETE", self._path(res, ns, name), body=opts)

    async def delete_collection(self, res: Resource | str, namespace: str | None = None, *,
                                label_selector: str | None = None, field_selector: str | None = None,
                                grace_period_seconds: int | None = None,
                                propagation_policy: str | None = None, dry_run: bool = False) -> dict:
        opts = _delete_options(grace_period_seconds, propagation_policy, None, dry_run)
        params = {"labelSelector": label_selector, "fieldSelector": field_selector}
        return await self.request("DELETE", self._path(res, namespace), body=opts, params=params)

    def watch(self, res: Resource | str, namespace: str | None = None, *,
              resource_version: str | None = None, label_selector: str | None = None,
              field_selector: str | None = None, allow_bookmarks: bool = True,
              timeout_seconds: int | None = None, send_initial_events: bool | None = None,
              metadata_only: bool = False) -> WatchStream:
        """Open a watch; iterate it for ``(type, object)`` with type ADDED, MODIFIED,
        DELETED or BOOKMARK. Nothing is sent until the first iteration."""
        params: dict = {"watch": "true", "resourceVersion": resource_version,
                        "labelSelector": label_selector, "fieldSelector": field_selector,
                        "timeoutSeconds": timeout_seconds}
        if allow_bookmarks:
            params["allowWatchBookmarks"] = "true"
        if send_initial_events is not None:
            params["sendInitialEvents"] = "true" if send_initial_events else "false"
            params["resourceVersionMatch"] = "NotOlderThan"
        read_timeout = timeout_seconds + 60 if timeout_seconds else None
        accept = PARTIAL_METADATA if metadata_only else JSON
        return WatchStream(self, self._path(res, namespace), params, accept, read_timeout)

    # ---- discovery ------------------------------------------------------------------------

    async def version(self) -> dict:
        return await self.request("GET", "/version")

    async def server_resources(self, refresh: bool = False, *, preferred: bool = True,
                               verbs: tuple[str, ...] = ()) -> list[Resource]:
        """Every top-level resource the server serves (built-in and custom), with scope,
        verbs and subresources; cached until ``refresh``. ``preferred``: only each
        group's preferred version; ``verbs``: only resources supporting all of them
        (e.g. ``("list", "watch")``)."""
        if self._discovery_lock is None:
            self._discovery_lock = asyncio.Lock()
        async with self._discovery_lock:
            if refresh or self._discovery is None:
                self._discovery, self._discovery_all = await self._discover()
                self._discovery_at = time.monotonic()
        found = self._discovery if preferred else self._discovery_all
        return [r for r in found if r.supports(*verbs)] if verbs else list(found)

    async def _discover(self) -> tuple[list[Resource], list[Resource]]:
        core = await self._send("GET", "/api", accept=AGGREGATED_DISCOVERY)
        groups = await self._send("GET", "/apis", accept=AGGREGATED_DISCOVERY)
        if _is_aggregated(core) and _is_aggregated(groups):
            items = orjson.loads(await core.read()).get("items", []) + \
                orjson.loads(await groups.read()).get("items", [])
            return _from_aggregated(items)
        return await self._discover_legacy(orjson.loads(await core.read()),
                                           orjson.loads(await groups.read()))

    async def _discover_legacy(self, core: dict, groups: dict) -> tuple[list[Resource], list[Resource]]:
        gvs: list[tuple[str, str, bool]] = []
        for i, v in enumerate(core.get("versions") or []):
            gvs.append(("", v, i == 0))
        for g in groups.get("groups") or []:
            preferred = (g.get("preferredVersion") or {}).get("version")
            for v in g.get("versions") or []:
                gvs.append((g["name"], v["version"], v["version"] == preferred))

        async def one(group, version):
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            try:
                return await self.request("GET", path)
            except ApiError as e:
                log.warning("discovery of %s failed: %s", path, e)
                return {}

        docs = await asyncio.gather(*(one(g, v) for g, v, _ in gvs))
        preferred_list, all_list = [], []
        for (group, version, pref), doc in zip(gvs, docs):
            entries = doc.get("resources") or []
            subs: dict[str, list[str]] = {}
            for e in entries:
                if "/" in e.get("name", ""):
                    parent, sub = e["name"].split("/", 1)
                    subs.setdefault(parent, []).append(sub)
            for e in entries:
                if "/" in e.get("name", ""):
                    continue
                r = Resource(group, version, e["name"], bool(e.get("namespaced")), e.get("kind", ""),
                             tuple(e.get("verbs") or ()), tuple(subs.get(e["name"], ())),
                             e.get("singularName") or "", tuple(e.get("shortNames") or ()))
                all_list.append(r)
                if pref:
                    preferred_list.append(r)
        return preferred_list, all_list

    async def resource_for(self, api_version: str, kind: str) -> Resource | None:
        """The resource serving ``kind`` in ``api_version`` (or, if that version is not
        served, the same group's preferred one): discovery as a REST mapper."""
        group, version = _split_api_version(api_version)
        for attempt in range(2):
            resources = await self.server_resources(preferred=False)
            exact = [r for r in resources if r.group == group and r.version == version and r.kind == kind]
            if exact:
                return exact[0]
            preferred = [r for r in await self.server_resources()
                         if r.group == group and r.kind == kind]
            if preferred:
                return preferred[0]
            if attempt == 0 and time.monotonic() - self._discovery_at > DISCOVERY_MISS_REFRESH:
                await self.server_resources(refresh=True)
            else:
                break
        return None

    async def find_resource(self, name: str) -> Resource | None:
        """Resolve a name as kubectl does: plural, singular, short name or kind,
        optionally qualified as ``name.group``."""
        name = name.lower()
        base, _, group = name.partition(".")
        for refresh in (False, True):
            for r in await self.server_resources(refresh=refresh):
                if group and r.group != group:
                    continue
                if base in (r.plural, r.singular, r.kind.lower()) or base in r.short_names:
                    return r
        return None


# ---- helpers ----------------------------------------------------------------------------


def _query(params: dict | None) -> list[tuple[str, str]] | None:
    if not params:
        return None
    out = []
    for k, v in params.items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = "true" if v else "false"
        if isinstance(v, (list, tuple)):
            out.extend((k, str(x)) for x in v)
        else:
            out.append((k, str(v)))
    return out


def _encode(body: Any) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return orjson.dumps(body)


def _write_params(field_manager, dry_run, field_validation) -> dict:
    return {"fieldManager": field_manager, "dryRun": "All" if dry_run else None,
            "fieldValidation": field_validation}


def _delete_options(grace, policy, preconditions, dry_run) -> dict:
    opts: dict = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if grace is not None:
        opts["gracePeriodSeconds"] = grace
    if policy is not None:
        if policy not in ("Background", "Foreground", "Orphan"):
            raise ValueError("propagation_policy must be Background, Foreground or Orphan")
        opts["propagationPolicy"] = policy
    if preconditions:
        opts["preconditions"] = dict(preconditions)
    if dry_run:
        opts["dryRun"] = ["All"]
    return opts


def _error(status: int, data: bytes) -> ApiError:
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status":
        err = ApiError.from_status(body, status)
        err.status = status
        return err
    text = data.decode(errors="replace").strip()
    return ApiError(status, _REASONS.get(status, "Unknown"), text or f"HTTP {status}",
                    body if body is not None else text)


def _is_aggregated(resp: aiohttp.ClientResponse) -> bool:
    ct = resp.headers.get("Content-Type", "")
    return "as=APIGroupDiscoveryList" in ct.replace(" ", "")


def _from_aggregated(items: list[dict]) -> tuple[list[Resource], list[Resource]]:
    preferred, every = [], []
    for item in items:
        group = (item.get("metadata") or {}).get("name") or ""
        for i, ver in enumerate(item.get("versions") or []):
            for r in ver.get("resources") or []:
                kind = (r.get("responseKind") or {}).get("kind", "")
                res = Resource(group, ver["version"], r["resource"], r.get("scope") == "Namespaced",
                               kind, tuple(r.get("verbs") or ()),
                               tuple(s["subresource"] for s in r.get("subresources") or []),
                               r.get("singularResource") or "", tuple(r.get("shortNames") or ()))
                every.append(res)
                if i == 0:
                    preferred.append(res)
    return preferred, every


__all__ = ["Client", "ApiError", "Resource", "resource", "WatchStream", "PATCH_TYPES"]
