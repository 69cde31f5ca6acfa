"""The ServiceAccount controller: every active namespace has a ``default``
ServiceAccount (re-created if deleted; never in a Terminating namespace)."""
from __future__ import annotations

import logging

from ..client import ApiError, Client
from .controllerutils import NAMESPACES, SERVICEACCOUNTS, BaseController

log = logging.getLogger("skube.controllers.serviceaccount")

DEFAULT_ACCOUNTS = ("default",)


class ServiceAccountController(BaseController):
    name = "serviceaccount"

    def __init__(self, client: Client, *, workers: int = 2, accounts: tuple[str, ...] = DEFAULT_ACCOUNTS):
        super().__init__(client, workers=workers)
        self.accounts = accounts
        self.namespaces = self.informer(NAMESPACES)
        self.sas = self.informer(SERVICEACCOUNTS)
        self.namespaces.add_handlers(on_add=self.enqueue, on_update=lambda o, n: self.enqueue(n))
        self.sas.add_handlers(on_delete=lambda sa: self.queue.add(sa["metadata"]["namespace"]))

    def component_name(self) -> str:
        return "service-account-controller"

    async def sync(self, ns: str):
        obj = self.namespaces.get(ns)
        if obj is None or obj["metadata"].get("deletionTimestamp") or \
                (obj.get("status") or {}).get("phase") == "Terminating":
            return None
        for name in self.accounts:
            if self.sas.get_by_name(name, ns) is not None:
                continue
            body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}}
            try:
                await self.client.create(SERVICEACCOUNTS, body, ns)
            except ApiError as e:
                # already there, or the namespace started terminating meanwhile
                if not (e.already_exists or e.not_found or e.status == 403):
                    raise
        return None


__all__ = ["ServiceAccountController"]
