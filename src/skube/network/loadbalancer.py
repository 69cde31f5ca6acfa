"""The host's stand-in for a cloud's service controller: every LoadBalancer Service (without
a ``loadBalancerClass``) gets ``status.loadBalancer.ingress: [{ip: 127.0.0.1, ipMode: VIP}]``,
since its node ports answer there; a Service that stops being a LoadBalancer loses it.

Also keeps the `kubernetes` Service's Endpoints and EndpointSlice pointing at the bridge
address when the API server listens on loopback only (the proxy translates that endpoint
to 127.0.0.1), so pods reach the API at the Service's ClusterIP.
"""
from __future__ import annotations

import asyncio
import logging

from ..aio import unless_set, wait_set
from ..client import ApiError, Client, Informer, object_key, resource

log = logging.getLogger("skube.network.loadbalancer")

SERVICES = resource("v1", "services", kind="Service")
ENDPOINTS = resource("v1", "endpoints", kind="Endpoints")
ENDPOINTSLICES = resource("discovery.k8s.io/v1", "endpointslices", kind="EndpointSlice")
INGRESS = [{"ip": "127.0.0.1", "ipMode": "VIP"}]
RECHECK_SECONDS = 30.0


def wanted_ingress(svc: dict) -> list | None:
    """The ingress list ``svc`` should show; None when this controller leaves it alone."""
    spec = svc.get("spec") or {}
    if spec.get("type") == "LoadBalancer":
        return None if spec.get("loadBalancerClass") else INGRESS
    return [] if ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") == INGRESS else None


async def _set_ingress(client: Client, svc: dict, ingress: list) -> None:
    m = svc["metadata"]
    await client.patch(SERVICES, m["name"], {"status": {"loadBalancer": {"ingress": ingress or None}}},
                       m["namespace"], subresource="status", field_manager="skube-loadbalancer")


async def run(client: Client, stop: asyncio.Event) -> None:
    """Write LoadBalancer ingress status until ``stop``."""
    services = Informer(client, SERVICES, name="services (loadbalancer)")
    pending: asyncio.Queue[str] = asyncio.Queue()
    services.add_handlers(on_add=lambda o: pending.put_nowait(object_key(o)),
                          on_update=lambda _, o: pending.put_nowait(object_key(o)))
    services.start()
    try:
        while not stop.is_set():
            key = await unless_set(pending.get(), stop)
            if key is None:
                break
            svc = services.get(key)
            want = wanted_ingress(svc) if svc else None
            have = ((svc or {}).get("status") or {}).get("loadBalancer", {}).get("ingress") or []
            if want is None or want == have:
                continue
            try:
                await _set_ingress(client, svc, want)
            except ApiError as e:
                if not e.not_found:
                    log.warning("load balancer status of %s: %s", object_key(svc), e)
    finally:
        services.stop()


def api_endpoints(ip: str, port: int) -> tuple[dict, dict]:
    """The `kubernetes` Endpoints and EndpointSlice for an API server at ``ip:port``."""
    ep = {"apiVersion": "v1", "kind": "Endpoints",
          "metadata": {"name": "kubernetes", "namespace": "default",
                       "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
          "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]}
    es = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
          "metadata": {"name": "kubernetes", "namespace": "default",
                       "labels": {"kubernetes.io/service-name": "kubernetes"}},
          "addressType": "IPv4",
          "endpoints": [{"addresses": [ip], "conditions": {"ready": True, "serving": True, "terminating": False}}],
          "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
    return ep, es


async def _ensure(client: Client, res, want: dict, same) -> None:
    try:
        have = await client.get(res, "kubernetes", "default")
    except ApiError as e:
        if not e.not_found:
            raise
        await client.create(res, want, "default")
        return
    if not same(have, want):
        await client.update(res, {**want, "metadata": {**want["metadata"],
                                                       "resourceVersion": have["metadata"]["resourceVersion"]}},
                            "default")


async def keep_api_endpoints(client: Client, ip: str, port: int, stop: asyncio.Event) -> None:
    """Keep default/kubernetes's Endpoints and EndpointSlice at ``ip:port`` until ``stop``."""
    ep, es = api_endpoints(ip, port)
    while not stop.is_set():
        try:
            await _ensure(client, ENDPOINTS, ep, lambda h, w: h.get("subsets") == w["subsets"])
            await _ensure(client, ENDPOINTSLICES, es,
                          lambda h, w: h.get("endpoints") == w["endpoints"] and h.get("ports") == w["ports"])
        except ApiError as e:
            log.warning("the kubernetes Service's endpoints: %s", e)
        await wait_set(stop, RECHECK_SECONDS)
