"""The API server side of ``pods/log``: validate the PodLogOptions as upstream
does, then proxy to the kubelet API of the pod's node and stream its answer back
chunk by chunk (kept open with ``follow`` until the client goes away).

The kubelet is reached at the node's InternalIP (then Hostname, ExternalIP) and
``status.daemonEndpoints.kubeletEndpoint.Port``, with the API server's
kubelet-client certificate (CN ``kube-apiserver-kubelet-client``, O
``system:masters``, issued on first use under ``DATA_DIR/pki``). The kubelet's
serving certificate is verified against the cluster CA unless the request says
``insecureSkipTLSVerifyBackend=true``.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import weakref
from urllib.parse import quote

import aiohttp

from ..api import errors
from .http import Request

_sessions: "weakref.WeakKeyDictionary[object, _KubeletClient]" = weakref.WeakKeyDictionary()

ADDRESS_PREFERENCE = ("InternalIP", "Hostname", "InternalDNS", "ExternalIP", "ExternalDNS")
CONNECT_TIMEOUT = 10.0


class _KubeletClient:
    """One aiohttp session and the two TLS contexts (verifying or not) per API server."""

    def __init__(self, data_dir):
        from .pki import PKI
        pki = PKI(data_dir)
        pair = pki.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client",
                         orgs=("system:masters",))
        self.verify = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.verify.load_verify_locations(str(pki.ca.cert))
        self.verify.load_cert_chain(str(pair.cert), str(pair.key))
        self.insecure = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.insecure.check_hostname = False
        self.insecure.verify_mode = ssl.CERT_NONE
        self.insecure.load_cert_chain(str(pair.cert), str(pair.key))
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
                headers={"User-Agent": "skube-apiserver/kubelet-proxy"})
        return self._session


def _client(server) -> _KubeletClient:
    c = _sessions.get(server)
    if c is None:
        data_dir = getattr(server, "data_dir", None)
        if data_dir is None:
            raise errors.APIError(503, "ServiceUnavailable",
                                  "pods/log is not available: the API server has no data dir for "
                                  "its kubelet client certificate")
        c = _sessions[server] = _KubeletClient(data_dir)
    return c


kubelet_client = _client


def kubelet_address(node: dict) -> tuple[str, int]:
    """(host, port) of a node's kubelet API."""
    st = node.get("status") or {}
    addrs = {a.get("type"): a.get("address") for a in st.get("addresses") or [] if a.get("address")}
    host = next((addrs[t] for t in ADDRESS_PREFERENCE if t in addrs), None)
    name = (node.get("metadata") or {}).get("name")
    if not host:
        raise errors.APIError(503, "ServiceUnavailable", f'no preferred addresses found for node "{name}"')
    port = ((st.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or 10250
    return host, int(port)


def log_container(pod: dict, container: str | None) -> str:
    """The container whose log is asked for, with upstream's errors."""
    spec = pod.get("spec") or {}
    name = pod["metadata"]["name"]
    containers = [c["name"] for c in spec.get("containers") or []]
    inits = [c["name"] for c in spec.get("initContainers") or []]
    ephemeral = [c["name"] for c in spec.get("ephemeralContainers") or []]
    if not container:
        if len(containers) == 1:
            return containers[0]
        if not containers:
            raise errors.bad_request(f"a container name must be specified for pod {name}")
        msg = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
        if inits:
            msg += f" or one of the init containers: [{' '.join(inits)}]"
        if ephemeral:
            msg += f" or one of the ephemeral containers: [{' '.join(ephemeral)}]"
        raise errors.bad_request(msg)
    if container not in containers + inits + ephemeral:
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    return container


def _log_params(req: Request, pod_name: str) -> dict:
    """The kubelet query from pods/log parameters, validated as ValidatePodLogOptions."""
    causes = []
    tail, limit, since_s = req.int_arg("tailLines"), req.int_arg("limitBytes"), req.int_arg("sinceSeconds")
    since_t = req.arg("sinceTime") or None
    if tail is not None and tail < 0:
        causes.append(errors.cause("tailLines", f"Invalid value: {tail}: must be greater than or equal to 0"))
    if limit is not None and limit < 1:
        causes.append(errors.cause("limitBytes", f"Invalid value: {limit}: must be greater than 0"))
    if since_s is not None and since_t is not None:
        causes.append(errors.cause("", "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be "
                                       "specified", "FieldValueForbidden"))
    elif since_s is not None and since_s < 1:
        causes.append(errors.cause("sinceSeconds", f"Invalid value: {since_s}: must be greater than 0"))
    if since_t is not None:
        try:
            dt.datetime.fromisoformat(since_t.replace("Z", "+00:00"))
        except ValueError:
            raise errors.bad_request(f'parsing time "{since_t}" as "2006-01-02T15:04:05Z07:00": '
                                     f"cannot parse") from None
    if causes:
        raise errors.invalid("PodLogOptions", pod_name, causes)
    params = {}
    for flag in ("follow", "previous", "timestamps"):
        if req.flag(flag):
            params[flag] = "true"
    for k, v in (("tailLines", tail), ("limitBytes", limit), ("sinceSeconds", since_s), ("sinceTime", since_t)):
        if v is not None:
            params[k] = str(v)
    return params


def _kubelet_error(status: int, body: bytes, pod_name: str) -> errors.APIError:
    text = body.decode(errors="replace").strip() or f"the kubelet answered {status}"
    reasons = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
               501: "NotImplemented"}
    return errors.APIError(status if status in reasons else 500, reasons.get(status, "InternalError"),
                           text, {"name": pod_name, "kind": "pods"})


async def proxy_log(server, req: Request, send, pod: dict, node: dict | None) -> None:
    """Answer ``GET …/pods/NAME/log`` for ``pod`` (the stored object) running on ``node``
    (the stored Node, or None if the pod is not bound / the node is gone)."""
    name = pod["metadata"]["name"]
    ns = pod["metadata"]["namespace"]
    container = log_container(pod, req.arg("container"))
    params = _log_params(req, name)
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        # upstream: a pod without a host has an empty log
        return await server.stream_until_disconnect(req, send, _empty(), lambda: None,
                                                    content_type=b"text/plain")
    if node is None:
        raise errors.APIError(404, "NotFound", f'nodes "{node_name}" not found',
                              {"name": node_name, "kind": "nodes"})
    host, port = kubelet_address(node)
    kc = _client(server)
    ctx = kc.insecure if req.flag("insecureSkipTLSVerifyBackend") else kc.verify
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    url = (f"https://{hostport}/containerLogs/{quote(ns, safe='')}/{quote(name, safe='')}/"
           f"{quote(container, safe='')}")
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=None)
    try:
        resp = await kc.session().get(url, params=params, ssl=ctx, timeout=timeout)
    except aiohttp.ClientConnectorCertificateError as e:
        raise errors.APIError(500, "InternalError",
                              f"Get \"{url}\": tls: failed to verify certificate: {e.certificate_error}") from None
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
        raise errors.APIError(500, "InternalError", f'Get "{url}": {e or type(e).__name__}') from None
    if resp.status != 200:
        body = await resp.read()
        resp.release()
        raise _kubelet_error(resp.status, body, name)

    async def chunks():
        try:
            async for chunk in resp.content.iter_any():
                if chunk:
                    yield chunk
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return

    await server.stream_until_disconnect(req, send, chunks(), resp.close, content_type=b"text/plain")


async def _empty():
    return
    yield b""  # noqa: unreachable - makes this an async generator


async def close(server) -> None:
    """Close the kubelet client session of ``server`` (on shutdown)."""
    c = _sessions.pop(server, None)
    if c is not None and c._session is not None:
        await c._session.close()


__all__ = ["proxy_log", "kubelet_address", "kubelet_client", "log_container", "close"]
