"""The kubelet HTTPS API of a virtual node (the paths a kube-apiserver proxies to).

``/healthz``, ``/pods``, ``/containerLogs/{ns}/{pod}/{container}``,
``/stats/summary``, ``/metrics/resource``; ``/exec``, ``/attach``, ``/portForward``
answer 501 when the provider does not implement them. Every request is
authenticated (a client certificate signed by the cluster CA, or a bearer token
checked by TokenReview) and authorized by SubjectAccessReview (``kubelet_auth``).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import ssl

import orjson
from aiohttp import web

from ..providers.base import BadRequest, LogOptions, NotSupported, PodNotFound
from .kubelet_auth import AuthError, KubeletAuth
from .node import now_rfc3339
from .resource_metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE, ResourceMetrics

log = logging.getLogger("skube.node.kubelet")


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n", content_type="text/plain")


def _int_arg(q, name: str) -> int | None:
    v = q.get(name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise web.HTTPBadRequest(text=f"invalid {name}: {v!r} is not an integer\n") from None


def _bool_arg(q, name: str) -> bool:
    v = q.get(name)
    return v is not None and v.lower() in ("true", "1", "")


class KubeletServer:
    """aiohttp app around one node's provider and pod informer."""

    def __init__(self, provider, pods, node_name: str, *, host: str = "0.0.0.0", port: int = 10250,
                 ssl_context: ssl.SSLContext | None = None, require_client_cert: bool = True):
        self.provider = provider
        self.pods = pods                  # PodController (its informer holds the pods)
        self.node_name = node_name
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.require_client_cert = require_client_cert and ssl_context is not None
        self.auth = KubeletAuth(pods.client, node_name)      # TokenReview / SubjectAccessReview
        self.resource_metrics = ResourceMetrics()
        self.app = web.Application(middlewares=[self._auth])
        r = self.app.router
        r.add_get("/healthz", self.healthz)
        r.add_get("/pods", self.list_pods)
        r.add_get("/pods/", self.list_pods)
        r.add_get("/containerLogs/{namespace}/{pod}/{container}", self.container_logs)
        r.add_get("/stats/summary", self.stats_summary)
        r.add_get("/stats/summary/", self.stats_summary)
        r.add_get("/metrics/resource", self.metrics_resource)
        for prefix in ("exec", "attach"):
            r.add_route("*", f"/{prefix}/{{namespace}}/{{pod}}/{{container}}", self.stream)
            r.add_route("*", f"/{prefix}/{{namespace}}/{{pod}}/{{uid}}/{{container}}", self.stream)
        r.add_route("*", "/portForward/{namespace}/{pod}", self.port_forward)
        r.add_route("*", "/portForward/{namespace}/{pod}/{uid}", self.port_forward)
        self._runner: web.AppRunner | None = None

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        """Webhook-mode authn/authz of every request (see kubelet_auth)."""
        if self.require_client_cert:
            peer = request.transport.get_extra_info("peercert") if request.transport else None
            try:
                await self.auth.check(request.method, request.path, peer,
                                      request.headers.get("Authorization"))
            except AuthError as e:
                return _text(e.status, str(e))
        return await handler(request)

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context,
                           backlog=1024)
        await site.start()
        if self.port == 0:
            self.port = site._server.sockets[0].getsockname()[1]   # noqa: SLF001

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- handlers -----------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok", content_type="text/plain")

    async def list_pods(self, request: web.Request) -> web.Response:
        items = []
        for pod in self.pods.informer.list():
            m = pod["metadata"]
            status = await self.provider.get_pod_status(m["namespace"], m["name"])
            if status is None:
                continue
            items.append({**pod, "status": self.pods.build_status(pod, status)})
        body = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def stats_summary(self, request: web.Request) -> web.Response:
        s = await self.provider.stats()
        node = dict(s.get("node") or {})
        node.setdefault("nodeName", self.node_name)
        node.setdefault("startTime", self._started)
        node["nodeName"] = self.node_name
        body = {"node": node, "pods": s.get("pods") or []}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    _started = now_rfc3339()

    async def metrics_resource(self, request: web.Request) -> web.Response:
        """Prometheus text of the provider's stats (upstream names; resource_scrape_error 1 on failure)."""
        try:
            text = self.resource_metrics.render(await self.provider.stats())
        except Exception:  # noqa: BLE001 - the scrape still answers, flagged as failed
            log.exception("stats for /metrics/resource failed")
            text = self.resource_metrics.render(None, error=True)
        return web.Response(body=text.encode(), headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def unsupported(self, request: web.Request) -> web.Response:
        what = request.path.strip("/").split("/", 1)[0]
        ns, pod = request.match_info.get("namespace"), request.match_info.get("pod")
        feature = {"exec": "exec", "attach": "attach", "portForward": "port-forward"}[what]
        method = {"exec": "exec", "attach": "attach", "portForward": "port_forward"}[what]
        from ..providers.base import Provider
        if getattr(type(self.provider), method) is getattr(Provider, method):
            return _text(501, f"{feature} is not supported by the {self.provider.name} provider of "
                              f"virtual node {self.node_name} (pod {ns}/{pod})")
        return _text(501, f"{feature} streams are not served by virtual node {self.node_name} yet "
                          f"(pod {ns}/{pod})")

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """exec and attach over WebSocket (v5/v4.channel.k8s.io)."""
        from ..providers.base import Provider
        from .streams import PROTOCOLS, ExecStreams
        what = request.path.strip("/").split("/", 1)[0]
        if getattr(type(self.provider), what) is getattr(Provider, what) or \
                request.headers.get("Upgrade", "").lower() != "websocket":
            return await self.unsupported(request)
        ns, pod, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        q = request.query

        def flag(name: str) -> bool:
            return q.get(name, "").lower() in ("1", "true")
        command = q.getall("command", []) if what == "exec" else []
        if what == "exec" and not command:
            return _text(400, "you must specify at least one command for the container")
        ws = web.WebSocketResponse(protocols=PROTOCOLS, heartbeat=None, max_msg_size=0)
        await ws.prepare(request)
        streams = ExecStreams(ws, stdin=flag("input") or flag("stdin"), stdout=flag("output") or flag("stdout"),
                              stderr=flag("error") or flag("stderr"), tty=flag("tty"))
        try:
            if what == "exec":
                code = await self.provider.exec(ns, pod, container, command, stdin=streams.stdin,
                                                stdout=streams.stdout, stderr=streams.stderr,
                                                tty=streams.tty, streams=streams)
            else:
                await self.provider.attach(ns, pod, container, stdin=streams.stdin, stdout=streams.stdout,
                                           stderr=streams.stderr, tty=streams.tty, streams=streams)
                code = 0
            await streams.finish(code)
        except (NotSupported, PodNotFound, BadRequest) as e:
            await streams.finish(None, str(e))
        except Exception as e:  # noqa: BLE001 — the client must still learn why
            await streams.finish(None, f"error executing {command}: {e}" if what == "exec"
                                 else f"error attaching to container {container}: {e}")
        return ws

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        """port-forward over WebSocket: SPDY/3.1 tunnelled (kubectl) or the channel protocol."""
        from ..providers.base import Provider
        from . import portforward
        if getattr(type(self.provider), "port_forward") is getattr(Provider, "port_forward") or \
                request.headers.get("Upgrade", "").lower() != "websocket":
            return await self.unsupported(request)
        return await portforward.handle(self, request)

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        ns, name, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        opts = LogOptions(follow=_bool_arg(q, "follow"), tail_lines=_int_arg(q, "tailLines"),
                          since_seconds=_int_arg(q, "sinceSeconds"), since_time=q.get("sinceTime") or None,
                          timestamps=_bool_arg(q, "timestamps"), previous=_bool_arg(q, "previous"),
                          limit_bytes=_int_arg(q, "limitBytes"))
        if opts.since_time:
            try:
                dt.datetime.fromisoformat(opts.since_time.replace("Z", "+00:00"))
            except ValueError:
                return _text(400, f"invalid sinceTime: {opts.since_time!r} is not RFC 3339")
        if opts.since_seconds is not None and opts.since_time:
            return _text(400, "at most one of sinceTime or sinceSeconds may be specified")
        for field in ("tail_lines", "limit_bytes", "since_seconds"):
            v = getattr(opts, field)
            if v is not None and (v < 0 or (field != "tail_lines" and v == 0)):
                return _text(400, f"{field}: must be greater than {'or equal to ' if field == 'tail_lines' else ''}0")
        if self.pods.informer.get(f"{ns}/{name}") is None:
            return _text(404, f'pod "{name}" in namespace "{ns}" not found on node {self.node_name}')
        try:
            chunks = await self.provider.logs(ns, name, container, opts)
        except PodNotFound as e:
            return _text(404, str(e))
        except BadRequest as e:
            return _text(400, str(e))
        except NotSupported as e:
            return _text(501, str(e))
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain",
                                                        "Cache-Control": "no-cache, private"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            async for chunk in chunks:
                await resp.write(chunk)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:  # noqa: BLE001
                    pass
        await resp.write_eof()
        return resp


__all__ = ["KubeletServer"]
