"""pods/exec, pods/attach and pods/portforward over WebSocket: authenticate,
authorize, then relay frames between the client and the kubelet API of the pod's
node unchanged (the subprotocol, e.g. v5.channel.k8s.io or
SPDY/3.1+portforward.k8s.io, is negotiated end to end)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import parse_qs, quote, urlencode

import aiohttp
import orjson

from ..aio import race
from ..api import errors
from . import proxy
from .authz import Attributes

log = logging.getLogger("skube.apiserver.streaming")

_KUBELET_PARAMS = {"stdin": "input", "stdout": "output", "stderr": "error", "tty": "tty"}


async def _deny(send, err: errors.APIError) -> None:
    """Refuse the upgrade with a Status body (what kubectl prints)."""
    body = orjson.dumps(err.status())
    await send({"type": "websocket.http.response.start", "status": err.code,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "websocket.http.response.body", "body": body})


def _target(path: str) -> tuple[str, str, str]:
    parts = [p for p in path.split("/") if p]
    # api v1 namespaces NS pods NAME exec|attach|portforward
    if len(parts) == 7 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "pods" \
            and parts[6] in ("exec", "attach", "portforward"):
        return parts[3], parts[5], parts[6]
    raise errors.APIError(404, "NotFound", "the server could not find the requested resource")


def _ports(query: dict) -> list[str]:
    """PodPortForwardOptions.ports: repeated and/or comma-separated `ports` values."""
    out = []
    for value in query.get("ports", []):
        for p in value.split(","):
            p = p.strip()
            try:
                n = int(p)
            except ValueError:
                raise errors.bad_request(f'unable to parse "{p}" as a port number') from None
            if not 0 < n < 65536:
                raise errors.bad_request(f"port {n} must be in the range 1-65535")
            out.append(str(n))
    return out


async def handle(server, scope, receive, send) -> None:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    try:
        who = server.auth.identify(scope, headers.get("authorization"))
        if who is None:
            raise errors.unauthorized()
        ns, name, what = _target(scope["path"])
        server.authz.check(Attributes(user=who[0], groups=list(who[1]) + ["system:authenticated"],
                                      verb="create", namespace=ns, resource="pods", subresource=what,
                                      name=name))
        rec = server.store.get(f"/core/pods/{ns}/{name}")
        if rec is None:
            raise errors.not_found("pods", name)
        pod = rec.obj
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        node_name = (pod.get("spec") or {}).get("nodeName")
        if what == "portforward":
            ports = _ports(query)
            if not node_name:
                raise errors.bad_request(f"pod {name} does not have a host assigned")
        else:
            container = proxy.log_container(pod, (query.get("container") or [None])[-1])
        if not node_name or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            raise errors.bad_request(f"cannot {what} into a container in a completed or unscheduled pod; "
                                     f"current phase is {(pod.get('status') or {}).get('phase')}")
        node = server.store.get(f"/core/nodes/{node_name}")
        if node is None:
            raise errors.not_found("nodes", node_name)
        host, port = proxy.kubelet_address(node.obj)
    except errors.APIError as e:
        return await _deny(send, e)
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if what == "portforward":
        # as upstream: the pod's ports go to the kubelet as repeated `port` parameters
        url = (f"https://{hostport}/portForward/{quote(ns, safe='')}/{quote(name, safe='')}"
               + (f"?{urlencode([('port', p) for p in ports])}" if ports else ""))
    else:
        params = [("command", c) for c in query.get("command", [])]
        for k, v in _KUBELET_PARAMS.items():
            if query.get(k):
                params.append((v, query[k][-1]))
        url = (f"https://{hostport}/{what}/{quote(ns, safe='')}/{quote(name, safe='')}/"
               f"{quote(container, safe='')}?{urlencode(params)}")
    kc = proxy.kubelet_client(server)
    try:
        upstream = await kc.session().ws_connect(url, protocols=scope.get("subprotocols") or (),
                                                 ssl=kc.verify, autoping=True, heartbeat=None,
                                                 max_msg_size=0)
    except aiohttp.WSServerHandshakeError as e:
        return await _deny(send, errors.APIError(e.status if e.status >= 400 else 500, "InternalError",
                                                 f"error dialing the kubelet: {e.message}"))
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
        return await _deny(send, errors.APIError(500, "InternalError", f"error dialing the kubelet: {e}"))
    msg = await receive()
    if msg["type"] != "websocket.connect":
        await upstream.close()
        return
    await send({"type": "websocket.accept", "subprotocol": upstream.protocol})

    async def client_to_kubelet():
        while True:
            m = await receive()
            if m["type"] == "websocket.disconnect":
                return
            if m.get("bytes") is not None:
                await upstream.send_bytes(m["bytes"])
            elif m.get("text") is not None:
                await upstream.send_str(m["text"])

    async def kubelet_to_client():
        async for m in upstream:
            if m.type == aiohttp.WSMsgType.BINARY:
                await send({"type": "websocket.send", "bytes": m.data})
            elif m.type == aiohttp.WSMsgType.TEXT:
                await send({"type": "websocket.send", "text": m.data})

    try:
        await race(client_to_kubelet(), kubelet_to_client())
    finally:
        await upstream.close()
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": 1000})
