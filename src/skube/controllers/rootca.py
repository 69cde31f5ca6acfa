"""The root CA publisher (upstream's root-ca-cert-publisher): every namespace holds the
ConfigMap ``kube-root-ca.crt`` whose ``ca.crt`` is the cluster CA, annotated
``kubernetes.io/description``; it is re-created when deleted and restored when changed.

The CA is the certificate-authority data of the controller's own kubeconfig."""
from __future__ import annotations

import logging

from ..client import ApiError, Client
from .controllerutils import NAMESPACES, BaseController, resource

log = logging.getLogger("skube.controllers.rootca")

CONFIGMAPS = resource("v1", "configmaps", kind="ConfigMap")
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
               "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
               "guaranteed across distributions of Kubernetes clusters.")


class RootCACertPublisher(BaseController):
    name = "root-ca-cert-publisher"

    def __init__(self, client: Client, *, workers: int = 1, root_ca: bytes | None = None):
        super().__init__(client, workers=workers)
        ca = root_ca if root_ca is not None else client.config.ca_data
        if not ca:
            log.warning("root-ca-cert-publisher: the kubeconfig has no certificate-authority data; "
                        "no kube-root-ca.crt ConfigMaps are published")
        self.root_ca = (ca.decode() if isinstance(ca, bytes) else ca) or ""
        self.namespaces = self.informer(NAMESPACES)
        self.configmaps = self.informer(CONFIGMAPS, field_selector=f"metadata.name={ROOT_CA_CONFIGMAP}")
        self.namespaces.add_handlers(on_add=self.enqueue, on_update=self._namespace_updated)
        self.configmaps.add_handlers(on_update=lambda o, n: self._configmap_changed(n),
                                     on_delete=self._configmap_changed)

    def component_name(self) -> str:
        return "root-ca-cert-publisher"

    def _namespace_updated(self, old: dict, new: dict) -> None:
        if (new.get("status") or {}).get("phase", "Active") == "Active":
            self.enqueue(new)

    def _configmap_changed(self, cm: dict) -> None:
        m = cm.get("metadata") or {}
        if m.get("name") == ROOT_CA_CONFIGMAP and m.get("namespace"):
            self.queue.add(m["namespace"])

    async def sync(self, ns: str):
        if not self.root_ca:
            return None
        data = {"ca.crt": self.root_ca}
        cm = self.configmaps.get_by_name(ROOT_CA_CONFIGMAP, ns)
        if cm is None:
            body = {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": ns,
                                 "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
                    "data": data}
            try:
                await self.client.create(CONFIGMAPS, body, ns)
            except ApiError as e:
                # the namespace is gone or terminating: nothing to publish (upstream does not retry)
                if not (e.not_found or _namespace_terminating(e)):
                    raise
            return None
        annotations = (cm["metadata"].get("annotations") or {})
        if cm.get("data") == data and annotations.get(DESCRIPTION_ANNOTATION):
            return None
        new = {**cm, "data": data, "metadata": {**cm["metadata"],
                                                 "annotations": {**annotations, DESCRIPTION_ANNOTATION: DESCRIPTION}}}
        await self.client.update(CONFIGMAPS, new, ns)
        return None


def _namespace_terminating(e: ApiError) -> bool:
    return any(c.get("reason") == "NamespaceTerminating" for c in e.details.get("causes") or [])


__all__ = ["RootCACertPublisher", "ROOT_CA_CONFIGMAP", "DESCRIPTION_ANNOTATION", "DESCRIPTION"]
