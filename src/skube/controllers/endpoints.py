"""Endpoints and EndpointSlices for Services with a selector.

Both follow the selected pods that have an IP: ports come from the Service's
``targetPort`` (a number, or a name resolved against each pod's container ports —
a pod without that port is left out for it), readiness from the pod's Ready
condition (``publishNotReadyAddresses`` treats every pod as ready).

* Endpoints ``<service>``: ready pods in ``addresses``, the rest in
  ``notReadyAddresses``; terminating and finished pods are left out; subsets are
  grouped by identical port sets (upstream's RepackSubsets).
* EndpointSlices (``kubernetes.io/service-name``, managed-by
  ``endpointslice-controller.k8s.io``, owned by the Service): one slice per port
  set and address type, at most 100 endpoints each; each endpoint has conditions
  ready / serving / terminating (terminating pods stay, not ready).
Services without a selector are left alone (their endpoints are the user's).
"""
from __future__ import annotations

import copy
import ipaddress
import logging

from ..api.selectors import label_selector_from_dict
from ..client import ApiError, Client, object_key
from .controllerutils import (ENDPOINTS, ENDPOINTSLICES, PODS, SERVICES, BaseController, in_namespace,
                              is_ready, is_terminating, phase)

log = logging.getLogger("skube.controllers.endpoints")

SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
MANAGER = "endpointslice-controller.k8s.io"
MAX_PER_SLICE = 100
HEADLESS = "service.kubernetes.io/headless"


def selected_pods(svc: dict, pods: list[dict]) -> list[dict]:
    sel = (svc.get("spec") or {}).get("selector")
    if not sel:
        return []
    s = label_selector_from_dict({"matchLabels": sel})
    return [p for p in pods if s.matches(p["metadata"].get("labels") or {})]


def resolve_port(svc_port: dict, pod: dict) -> int | None:
    tp = svc_port.get("targetPort", svc_port.get("port"))
    if isinstance(tp, int):
        return tp
    if isinstance(tp, str) and tp.isdigit():
        return int(tp)
    proto = svc_port.get("protocol") or "TCP"
    for c in pod["spec"].get("containers") or ():
        for cp in c.get("ports") or ():
            if cp.get("name") == tp and (cp.get("protocol") or "TCP") == proto:
                return int(cp["containerPort"])
    return None


def pod_ip(pod: dict) -> str | None:
    return (pod.get("status") or {}).get("podIP")


def target_ref(pod: dict) -> dict:
    m = pod["metadata"]
    return {"kind": "Pod", "namespace": m["namespace"], "name": m["name"], "uid": m.get("uid")}


def endpoint_ports(svc: dict, pod: dict) -> list[dict]:
    out = []
    for sp in svc["spec"].get("ports") or ():
        n = resolve_port(sp, pod)
        if n is None:
            continue
        port = {"port": n, "protocol": sp.get("protocol") or "TCP"}
        if sp.get("name"):
            port["name"] = sp["name"]
        if sp.get("appProtocol"):
            port["appProtocol"] = sp["appProtocol"]
        out.append(port)
    return out


def _hostname(svc: dict, pod: dict) -> str | None:
    s = pod["spec"]
    if s.get("hostname") and s.get("subdomain") == svc["metadata"]["name"]:
        return s["hostname"]
    return None


class _ServicePodsController(BaseController):
    """Services + pods informers; a pod change queues every service selecting it."""

    def __init__(self, client: Client, *, workers: int = 2):
        super().__init__(client, workers=workers)
        self.services = self.informer(SERVICES)
        self.pods = self.informer(PODS)
        self.services.add_handlers(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n),
                                   on_delete=self.enqueue)
        self.pods.add_handlers(on_add=self._pod, on_update=self._pod_updated, on_delete=self._pod)

    def _pod(self, pod: dict) -> None:
        labels = pod["metadata"].get("labels") or {}
        for svc in in_namespace(self.services, pod["metadata"].get("namespace")):
            sel = (svc.get("spec") or {}).get("selector")
            if sel and all(labels.get(k) == v for k, v in sel.items()):
                self.enqueue(svc)

    def _pod_updated(self, old: dict, new: dict) -> None:
        if old["metadata"].get("labels") != new["metadata"].get("labels"):
            self._pod(old)
        self._pod(new)


class EndpointsController(_ServicePodsController):
    name = "endpoints"

    def __init__(self, client: Client, *, workers: int = 2):
        super().__init__(client, workers=workers)
        self.endpoints = self.informer(ENDPOINTS)

    def component_name(self) -> str:
        return "endpoint-controller"

    async def sync(self, key: str):
        svc = self.services.get(key)
        ns, _, name = key.partition("/")
        if svc is None:
            try:
                await self.client.delete(ENDPOINTS, name, ns)
            except ApiError as e:
                if not e.not_found:
                    raise
            return None
        if not svc["spec"].get("selector"):
            return None
        publish = bool(svc["spec"].get("publishNotReadyAddresses"))
        groups: dict[str, dict] = {}
        for pod in selected_pods(svc, in_namespace(self.pods, ns)):
            ip = pod_ip(pod)
            if not ip or is_terminating(pod) or phase(pod) in ("Succeeded", "Failed"):
                continue
            ports = endpoint_ports(svc, pod)
            if not ports and svc["spec"].get("ports"):
                continue
            addr = {"ip": ip, "targetRef": target_ref(pod)}
            if pod["spec"].get("nodeName"):
                addr["nodeName"] = pod["spec"]["nodeName"]
            h = _hostname(svc, pod)
            if h:
                addr["hostname"] = h
            gkey = repr(sorted((p.get("name", ""), p["port"], p["protocol"]) for p in ports))
            g = groups.setdefault(gkey, {"addresses": [], "notReadyAddresses": [], "ports": ports})
            (g["addresses"] if publish or is_ready(pod) else g["notReadyAddresses"]).append(addr)
        subsets = []
        for gkey in sorted(groups):
            g = groups[gkey]
            sub = {}
            for k in ("addresses", "notReadyAddresses"):
                if g[k]:
                    sub[k] = sorted(g[k], key=lambda a: (a["ip"], a["targetRef"]["name"]))
            if g["ports"]:
                sub["ports"] = sorted(g["ports"], key=lambda p: (p.get("name", ""), p["port"]))
            subsets.append(sub)
        labels = dict(svc["metadata"].get("labels") or {})
        if svc["spec"].get("clusterIP") == "None":
            labels[HEADLESS] = ""
        cur = self.endpoints.get(key)
        if cur is not None and (cur.get("subsets") or []) == subsets and \
                (cur["metadata"].get("labels") or {}) == labels:
            return None
        body = {"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": name, "namespace": ns, "labels": labels}, "subsets": subsets}
        if cur is None:
            try:
                await self.client.create(ENDPOINTS, body)
                return None
            except ApiError as e:
                if not e.already_exists:
                    raise
                cur = await self.client.get(ENDPOINTS, name, ns)
        body["metadata"] = dict(cur["metadata"], labels=labels)
        await self.client.update(ENDPOINTS, body)
        return None


def _address_type(ip: str) -> str:
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return "FQDN"


class EndpointSliceController(_ServicePodsController):
    name = "endpointslice"

    def __init__(self, client: Client, *, workers: int = 2):
        super().__init__(client, workers=workers)
        self.slices = self.informer(ENDPOINTSLICES)
        self.slices.add_handlers(on_delete=self._slice_deleted)

    def component_name(self) -> str:
        return "endpointslice-controller"

    def _slice_deleted(self, sl: dict) -> None:
        svc = (sl["metadata"].get("labels") or {}).get(SERVICE_NAME)
        if svc:
            self.queue.add(f"{sl['metadata']['namespace']}/{svc}")

    def _mine(self, ns: str, name: str) -> list[dict]:
        return [s for s in in_namespace(self.slices, ns)
                if (s["metadata"].get("labels") or {}).get(SERVICE_NAME) == name
                and (s["metadata"].get("labels") or {}).get(MANAGED_BY) == MANAGER]

    async def sync(self, key: str):
        svc = self.services.get(key)
        ns, _, name = key.partition("/")
        existing = self._mine(ns, name)
        if svc is None or not svc["spec"].get("selector"):
            for s in existing:
                await self._delete(s)
            return None
        publish = bool(svc["spec"].get("publishNotReadyAddresses"))
        groups: dict[tuple, dict] = {}
        for pod in selected_pods(svc, in_namespace(self.pods, ns)):
            ip = pod_ip(pod)
            if not ip or phase(pod) in ("Succeeded", "Failed"):
                continue
            ports = endpoint_ports(svc, pod)
            if not ports and svc["spec"].get("ports"):
                continue
            terminating = is_terminating(pod)
            ready = is_ready(pod)
            ep = {"addresses": [ip],
                  "conditions": {"ready": (publish or ready) and not terminating,
                                 "serving": publish or ready, "terminating": terminating},
                  "targetRef": target_ref(pod)}
            if pod["spec"].get("nodeName"):
                ep["nodeName"] = pod["spec"]["nodeName"]
            h = _hostname(svc, pod)
            if h:
                ep["hostname"] = h
            ports = sorted(ports, key=lambda p: (p.get("name", ""), p["port"]))
            gkey = (_address_type(ip), repr(ports))
            groups.setdefault(gkey, {"ports": ports, "endpoints": []})["endpoints"].append(ep)
        wanted: list[tuple[str, list, list]] = []
        for (atype, _), g in sorted(groups.items()):
            eps = sorted(g["endpoints"], key=lambda e: (e["addresses"][0], e["targetRef"]["name"]))
            for i in range(0, len(eps), MAX_PER_SLICE):
                wanted.append((atype, g["ports"], eps[i:i + MAX_PER_SLICE]))
        if not wanted:
            wanted.append(("IPv4", [], []))     # upstream keeps one empty placeholder slice
        labels = {**(svc["metadata"].get("labels") or {}), SERVICE_NAME: name, MANAGED_BY: MANAGER}
        if svc["spec"].get("clusterIP") == "None":
            labels[HEADLESS] = ""
        owner = {"apiVersion": "v1", "kind": "Service", "name": name, "uid": svc["metadata"]["uid"],
                 "controller": True, "blockOwnerDeletion": True}
        free = sorted(existing, key=lambda s: s["metadata"]["name"])
        for atype, ports, eps in wanted:
            # reuse a slice that already holds exactly this, else the first free one
            same = next((s for s in free if s.get("addressType") == atype and (s.get("ports") or []) == ports
                         and (s.get("endpoints") or []) == eps
                         and (s["metadata"].get("labels") or {}) == labels), None)
            if same is not None:
                free.remove(same)
                continue
            target = next((s for s in free if s.get("addressType") == atype), None)
            body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"namespace": ns, "labels": labels, "ownerReferences": [owner]},
                    "addressType": atype, "endpoints": eps, "ports": ports}
            if target is None:
                body["metadata"]["generateName"] = f"{name}-"
                await self.client.create(ENDPOINTSLICES, body)
            else:
                free.remove(target)
                body["metadata"] = dict(copy.deepcopy(target["metadata"]), labels=labels,
                                        ownerReferences=[owner])
                try:
                    await self.client.update(ENDPOINTSLICES, body)
                except ApiError as e:
                    if not (e.conflict or e.not_found):
                        raise
                    self.queue.add_after(key, 0.2)
        for s in free:
            await self._delete(s)
        return None

    async def _delete(self, sl: dict) -> None:
        try:
            await self.client.delete(ENDPOINTSLICES, sl["metadata"]["name"], sl["metadata"]["namespace"])
        except ApiError as e:
            if not e.not_found:
                raise


_ = object_key
__all__ = ["EndpointsController", "EndpointSliceController", "resolve_port"]
