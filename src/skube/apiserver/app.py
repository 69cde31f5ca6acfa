"""The API server as one ASGI application: authentication, routing, discovery,
OpenAPI, health, and the REST verbs of every registered resource."""
from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import platform

import orjson

from .. import __version__
from ..api import defaults, errors, openapi, openapi_v2_proto
from ..api.registry import Registry, ResourceInfo
from . import crds, quota, serviceaccount_admission, subresources
from .admission import ServerlessAdmission
from .auth import Authenticator
from .ipalloc import ServiceAllocator
from .authz import (BOOTSTRAP_BINDINGS, BOOTSTRAP_CLUSTER_ROLES, Attributes, RBACAuthorizer,
                    request_verb)
from .objects import parse_time
from .tokens import TokenSigner
from .discovery import (aggregated, api_group, api_group_list, api_resource_list, api_versions,
                        wants_aggregated)
from .http import JSON, Request, send_bytes, send_error, send_json, send_stream
from .rest import Resources

log = logging.getLogger("skube.apiserver")

PUBLIC_PATHS = {"/healthz", "/livez", "/readyz", "/version", "/healthz/", "/livez/", "/readyz/"}
BOOTSTRAP_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def _deleted_a_minute_ago(obj: dict) -> bool:
    """Deleted (awaiting removal) for longer than the JWT leeway: its tokens are invalid."""
    ts = obj["metadata"].get("deletionTimestamp")
    return bool(ts) and (dt.datetime.now(dt.timezone.utc) - parse_time(ts)).total_seconds() > 60


class APIServer:
    """ASGI app. ``store`` is a skube.store.Store; ``authenticator`` checks identities."""

    def __init__(self, store, authenticator: Authenticator, *, external_url: str = "",
                 signer: TokenSigner | None = None, serverless: ServerlessAdmission | None = None,
                 data_dir=None, service_cidr: str = "10.43.0.0/16",
                 node_port_range: tuple[int, int] = (30000, 32767),
                 disabled_admission_plugins: tuple[str, ...] = ()):
        self.store = store
        self.disabled_admission_plugins = frozenset(disabled_admission_plugins)
        self.service_alloc = ServiceAllocator(service_cidr, node_port_range)
        self.registry = Registry()
        self.auth = authenticator
        self.signer = signer
        if signer is not None:
            authenticator.verifier = self.service_account_identity
        self.authz = RBACAuthorizer(store)
        self.serverless = serverless or ServerlessAdmission()
        self.quota_reservations = quota.Reservations()
        self.quota_usage = quota.UsageMemo()
        self.data_dir = data_dir      # for the kubelet-client certificate of the log proxy
        self.external_url = external_url
        self.resources = Resources(self)
        self.subresources = subresources.Subresources(self)
        self.crds = crds.CRDManager(self)
        self.validators: dict = {"CustomResourceDefinition": self.crds.validate}
        # resources answered, never stored: (group, plural) -> handler
        self.virtual_resources = virtual_resources()
        self._streams: set[asyncio.Task] = set()
        self.ready = False

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Bootstrap: namespaces that always exist, CRDs already stored."""
        ns_info = self.registry.get("", "v1", "namespaces")
        for name in BOOTSTRAP_NAMESPACES:
            if self.store.get(ns_info.key(None, name)) is None:
                obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
                await self.resources.create_object(ns_info, obj, manager="skube-apiserver")
        await self._bootstrap_rbac()
        self.service_alloc.rebuild(r.obj for r in self.store.list("/core/services/")[0])
        await self._bootstrap_kubernetes_service()
        self.crds.load()
        self.ready = True

    async def _bootstrap_rbac(self) -> None:
        roles = self.registry.get("rbac.authorization.k8s.io", "v1", "clusterroles")
        bindings = self.registry.get("rbac.authorization.k8s.io", "v1", "clusterrolebindings")
        labels = {"kubernetes.io/bootstrapping": "rbac-defaults"}
        for name, rules in BOOTSTRAP_CLUSTER_ROLES.items():
            if self.store.get(roles.key(None, name)) is None:
                await self.resources.create_object(roles, {
                    "apiVersion": roles.api_version, "kind": roles.kind,
                    "metadata": {"name": name, "labels": labels}, "rules": rules}, manager="skube-apiserver")
        for name, (role, subjects) in BOOTSTRAP_BINDINGS.items():
            if self.store.get(bindings.key(None, name)) is None:
                await self.resources.create_object(bindings, {
                    "apiVersion": bindings.api_version, "kind": bindings.kind,
                    "metadata": {"name": name, "labels": labels},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                    "subjects": subjects}, manager="skube-apiserver")

    async def _bootstrap_kubernetes_service(self) -> None:
        """The `kubernetes` Service in `default`, first address of the service CIDR,
        with Endpoints and an EndpointSlice pointing at this server, as upstream keeps them."""
        from urllib.parse import urlparse
        svc_info = self.registry.get("", "v1", "services")
        if self.store.get(svc_info.key("default", "kubernetes")) is not None or not self.external_url:
            return
        url = urlparse(self.external_url)
        host, port = url.hostname or "127.0.0.1", url.port or 443
        labels = {"component": "apiserver", "provider": "kubernetes"}
        await self.resources.create_object(svc_info, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": labels},
            "spec": {"type": "ClusterIP", "sessionAffinity": "None",
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]},
        }, manager="skube-apiserver")
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if loopback:
            return   # endpoints may not be loopback addresses; the pod network adds them
        ep_info = self.registry.get("", "v1", "endpoints")
        await self.resources.create_object(ep_info, {
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": host}],
                         "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
        }, manager="skube-apiserver")
        es_info = self.registry.get("discovery.k8s.io", "v1", "endpointslices")
        await self.resources.create_object(es_info, {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [host], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }, manager="skube-apiserver")

    def service_account_identity(self, token: str):
        """(user, groups) of a valid service-account token whose account (and bound
        object) still exist with the same uid; None otherwise."""
        claims = self.signer.verify(token) if self.signer else None
        if not claims:
            return None
        k = claims.get("kubernetes.io") or {}
        ns, sa = k.get("namespace"), (k.get("serviceaccount") or {})
        rec = self.store.get(f"/core/serviceaccounts/{ns}/{sa.get('name')}")
        if rec is None or rec.obj["metadata"].get("uid") != sa.get("uid") or _deleted_a_minute_ago(rec.obj):
            return None
        pod = k.get("pod")
        if pod:
            prec = self.store.get(f"/core/pods/{ns}/{pod.get('name')}")
            if prec is None or prec.obj["metadata"].get("uid") != pod.get("uid") or _deleted_a_minute_ago(prec.obj):
                return None
        return (f"system:serviceaccount:{ns}:{sa.get('name')}",
                ["system:serviceaccounts", f"system:serviceaccounts:{ns}"])

    def selectable_fields(self, info: ResourceInfo) -> dict:
        return self.crds.selectable_fields(info) if info.custom else {}

    async def admit(self, info: ResourceInfo, obj: dict, old: dict | None) -> None:
        """Mutating admission that needs cluster state (e.g. ClusterIP allocation)."""
        if info.kind == "CustomResourceDefinition":
            self.crds.default(obj)
        elif info.kind == "Job" and info.group == "batch" and old is None:
            defaults.job_prepare_for_create(obj)
        elif info.kind == "Pod" and not info.group and old is None:
            # upstream's default admission: DefaultTolerationSeconds, ServiceAccount name
            defaults.default_toleration_seconds(obj)
            await serviceaccount_admission.admit_pod(
                self.store, obj, enabled=serviceaccount_admission.PLUGIN_NAME not in self.disabled_admission_plugins)
            spec = obj["spec"]
            spec.setdefault("serviceAccount", spec["serviceAccountName"])
            self.serverless.admit_pod(obj)
            ranges = [r.obj for r in self.store.list(f"/core/limitranges/{obj['metadata']['namespace']}/")[0]]
            if ranges:
                quota.apply_limit_ranges(info, obj, ranges)
        if old is None and info.namespaced:
            quotas = self._quotas(obj["metadata"].get("namespace"))
            if quotas:
                quota.check_quotas(info, obj, [r.obj for r in quotas], self.store, self.registry,
                                   self.quota_reservations, self.quota_usage)
        await self.subresources.admit(info, obj, old)

    def create_finished(self, info: ResourceInfo, obj: dict) -> None:
        """A create admitted by ``admit`` was stored or refused: drop its quota reservation."""
        if info.namespaced:
            m = obj.get("metadata") or {}
            self.quota_reservations.release(m.get("namespace"), m.get("uid"))

    def _quotas(self, namespace: str | None) -> list:
        return self.store.list(f"/core/resourcequotas/{namespace}/")[0] if namespace else []

    async def _refresh_quotas(self, info: ResourceInfo, obj: dict) -> None:
        """Keep every quota's status (hard, used) of the object's namespace current."""
        if not info.namespaced:
            return
        for rec in self._quotas(obj["metadata"].get("namespace")):
            status = quota.quota_status(rec.obj, self.store, self.registry, self.quota_usage)
            if rec.obj.get("status") != status:
                new = {**rec.obj, "status": status}
                try:
                    await self.store.update(rec.key, new, rec.mod_revision)
                except Exception:  # noqa: BLE001 — a concurrent write refreshes it again
                    log.debug("quota status refresh raced", exc_info=True)

    async def after_write(self, info: ResourceInfo, obj: dict, old: dict | None) -> None:
        if info.kind == "Service" and not info.group:
            self.service_alloc.committed(obj)
        if info.kind == "CustomResourceDefinition":
            await self.crds.on_write(obj)
        elif old is None or info.kind in ("Pod", "ResourceQuota"):
            await self._refresh_quotas(info, obj)

    async def after_delete(self, info: ResourceInfo, obj: dict) -> None:
        if info.kind == "Service" and not info.group:
            self.service_alloc.released(obj)
        if info.kind == "CustomResourceDefinition":
            await self.crds.on_delete(obj)
        else:
            await self._refresh_quotas(info, obj)

    async def stream_until_disconnect(self, req: Request, send, chunks, on_close, content_type=JSON):
        """Send a chunked stream; stop when the client goes away (uvicorn keeps
        accepting writes to a closed connection, so watch for the disconnect)."""
        async def pump():
            await send_stream(send, 200, chunks, content_type)

        async def disconnected():
            while True:
                msg = await req.receive()
                if msg["type"] == "http.disconnect":
                    return

        t1 = asyncio.ensure_future(pump())
        t2 = asyncio.ensure_future(disconnected())
        self._streams.update((t1, t2))
        try:
            await asyncio.wait((t1, t2), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (t1, t2):
                if not t.done():
                    t.cancel()
            on_close()
            self._streams.difference_update((t1, t2))
            await asyncio.gather(t1, t2, return_exceptions=True)

    async def close(self) -> None:
        from . import proxy
        for t in list(self._streams):
            t.cancel()
        await proxy.close(self)

    # ---- ASGI ----------------------------------------------------------------------------

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await self.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "websocket":
            from . import streaming
            return await streaming.handle(self, scope, receive, send)
        req = Request(scope, receive)
        try:
            if req.path not in PUBLIC_PATHS:
                self.auth.authenticate(req)
            await self.route(req, send)
        except errors.APIError as e:
            await send_error(send, e)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 — every failure must still answer a Status
            log.exception("internal error on %s %s", req.method, req.path)
            await send_error(send, errors.internal(str(e)))

    # ---- routing -------------------------------------------------------------------------

    async def route(self, req: Request, send) -> None:
        path = req.path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        if not parts:
            return await send_json(send, 200, {"paths": sorted(self._root_paths())})
        head = parts[0]
        if head not in ("api", "apis") or len(parts) <= 3 - (head == "api"):
            if req.path not in PUBLIC_PATHS:
                self.authz.check(Attributes(user=req.user, groups=req.groups,
                                            verb=request_verb(req.method, True, False), path=path))
        if head == "api":
            if len(parts) == 1:
                if (ct := wants_aggregated(req.accepts())):
                    return await send_bytes(send, 200, orjson.dumps(aggregated(self.registry, True)), ct)
                return await send_json(send, 200, api_versions(self.external_url.split("://")[-1]))
            if len(parts) == 2:
                doc = api_resource_list(self.registry, "", parts[1])
                if doc is None:
                    raise errors.not_found("", parts[1])
                return await send_json(send, 200, doc)
            return await self.resource_route(req, send, "", parts[1], parts[2:])
        if head == "apis":
            if len(parts) == 1:
                if (ct := wants_aggregated(req.accepts())):
                    return await send_bytes(send, 200, orjson.dumps(aggregated(self.registry, False)), ct)
                return await send_json(send, 200, api_group_list(self.registry))
            if len(parts) == 2:
                doc = api_group(self.registry, parts[1])
                if doc is None:
                    raise self._path_not_found(req)
                return await send_json(send, 200, doc)
            if len(parts) == 3:
                doc = api_resource_list(self.registry, parts[1], parts[2])
                if doc is None:
                    raise self._path_not_found(req)
                return await send_json(send, 200, doc)
            return await self.resource_route(req, send, parts[1], parts[2], parts[3:])
        if head in ("healthz", "livez", "readyz"):
            if head == "readyz" and not self.ready:
                return await send_bytes(send, 500, b"[-]skube-bootstrap failed: not finished\nreadyz check failed",
                                        b"text/plain; charset=utf-8")
            return await send_bytes(send, 200, b"ok", b"text/plain; charset=utf-8")
        if head == "version":
            return await send_json(send, 200, self.version_info())
        if head == "openapi":
            return await self.openapi_route(req, send, parts[1:])
        raise self._path_not_found(req)

    def _path_not_found(self, req: Request) -> errors.APIError:
        return errors.APIError(404, "NotFound", "the server could not find the requested resource",
                               {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})

    def _root_paths(self) -> list[str]:
        paths = ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version",
                 "/openapi/v2", "/openapi/v3"]
        for g, versions in self.registry.groups().items():
            paths.append(f"/apis/{g}")
            paths.extend(f"/apis/{g}/{v}" for v in versions)
        return paths

    def version_info(self) -> dict:
        from ..api.schema import KUBERNETES_VERSION
        major, minor, _ = KUBERNETES_VERSION.split(".")
        return {"major": major, "minor": minor, "gitVersion": f"v{KUBERNETES_VERSION}+skube-{__version__}",
                "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": f"python{platform.python_version()}", "compiler": "cpython",
                "platform": f"linux/{_arch()}"}

    async def openapi_route(self, req: Request, send, parts: list[str]) -> None:
        if parts == ["v2"]:
            fmt = openapi_v2_proto.negotiate(req.accepts())
            if fmt is None:
                raise errors.not_acceptable("/openapi/v2 is served as application/json and "
                                            f"{openapi_v2_proto.CONTENT_TYPE}")
            doc = openapi_v2_proto.encoded(self.registry, openapi.v2_document(self.registry))
            status, body, ctype, headers = openapi_v2_proto.response(
                doc, fmt, req.headers.get("if-none-match", ""), req.headers.get("accept-encoding", ""))
            return await send_bytes(send, status, body, ctype, headers)
        if parts == ["v3"]:
            return await send_json(send, 200, openapi.v3_index(self.registry))
        if len(parts) >= 2 and parts[0] == "v3":
            path = "/".join(parts[1:])
            body = openapi.v3_document_for_path(self.registry, path)
            if body is None:
                raise self._path_not_found(req)
            current = openapi.v3_hash(self.registry, path)
            asked = req.arg("hash")
            if asked and asked != current:
                location = f"/openapi/v3/{path}?hash={current}"
                return await send_bytes(send, 301, b"", b"text/plain",
                                        [(b"location", location.encode())])
            cache = b"public, immutable" if asked else b"no-cache, private"
            return await send_bytes(send, 200, body, b"application/json",
                                    [(b"etag", f'"{current}"'.encode()), (b"cache-control", cache)])
        raise self._path_not_found(req)

    async def resource_route(self, req: Request, send, group: str, version: str, rest: list[str]) -> None:
        """/api/v1/... or /apis/G/V/...: resolve namespace, resource, name, subresource."""
        watch_prefix = False
        if rest and rest[0] == "watch":
            watch_prefix, rest = True, rest[1:]
        ns = None
        if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) >= 3:
            info = self.registry.get(group, version, rest[2])
            if info is not None and info.namespaced:
                ns, rest = rest[1], rest[2:]
        if not rest:
            raise self._path_not_found(req)
        info = self.registry.get(group, version, rest[0])
        if info is None:
            raise self._path_not_found(req)
        if info.namespaced and ns is None and len(rest) > 1:
            raise self._path_not_found(req)
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else ""
        extra = rest[3:]
        if sub and sub not in info.subresources:
            raise self._path_not_found(req)
        if extra and sub not in ("proxy",):
            raise self._path_not_found(req)
        m = req.method
        r = self.resources
        self.authz.check(Attributes(
            user=req.user, groups=req.groups,
            verb=request_verb(m, name is not None, watch_prefix or req.flag("watch")),
            namespace=ns, api_group=group, resource=info.plural, subresource=sub, name=name or ""))
        if (virtual := self.virtual_resources.get((group, info.plural))) is not None:
            return await virtual(self, req, send, info, ns, name, sub, watch_prefix)
        if watch_prefix:
            if m != "GET" or sub:
                raise errors.method_not_allowed("the server does not allow this method on the requested resource")
            return await r.watch(req, send, info, ns, name)
        if sub:
            return await self.subresources.handle(req, send, info, ns, name, sub, extra)
        if name is None:
            if m == "GET":
                self._require_verb(info, "list")
                return await r.list(req, send, info, ns)
            if m == "POST":
                self._require_verb(info, "create")
                if info.kind == "Binding" and not info.group:
                    return await self.subresources.binding(req, send, self.registry.get("", "v1", "pods"),
                                                           ns, None)
                return await r.create(req, send, info, ns)
            if m == "DELETE":
                self._require_verb(info, "deletecollection")
                return await r.delete_collection(req, send, info, ns)
        else:
            if m == "GET":
                if req.flag("watch"):
                    return await r.watch(req, send, info, ns, name)
                return await r.get(req, send, info, ns, name)
            if m == "PUT":
                return await r.update(req, send, info, ns, name)
            if m == "PATCH":
                return await r.patch(req, send, info, ns, name)
            if m == "DELETE":
                return await r.delete(req, send, info, ns, name)
        raise errors.method_not_allowed("the server does not allow this method on the requested resource")

    def _require_verb(self, info: ResourceInfo, verb: str) -> None:
        if verb not in info.verbs:
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")


def virtual_resources() -> dict:
    """Handlers of the resources that are answered, never stored (reviews, metrics)."""
    from . import metrics, reviews

    async def review(server, req, send, info, ns, name, sub, watch):
        if sub or watch:
            raise server._path_not_found(req)
        return await reviews.handle(server, req, send, info, ns, name)
    out = {k: review for k in reviews.RESOURCES}
    out.update({k: metrics.handle for k in metrics.RESOURCES})
    return out


def _arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)
