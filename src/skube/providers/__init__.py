"""Providers: what runs a virtual node's pods (see :mod:`skube.providers.base`).

``create_provider(name, config)`` builds one by name; ``local`` runs real container
instances on this host, ``mock`` simulates them.
"""
from __future__ import annotations

import importlib

from .base import (BadRequest, LogOptions, NotSupported, PodNotFound, Provider, ProviderContext,
                   ProviderError)

# name -> "module:class" (imported on demand, so optional providers cost nothing)
PROVIDERS = {
    "mock": "skube.providers.mock:MockProvider",
    "local": "skube.providers.local:LocalProvider",
}


def create_provider(name: str, config: dict | None = None) -> Provider:
    """An instance of the provider ``name`` with its parsed config document."""
    try:
        target = PROVIDERS[name]
    except KeyError:
        raise ValueError(f"unknown provider {name!r}; known: {', '.join(sorted(PROVIDERS))}") from None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)(config or {})


__all__ = ["Provider", "ProviderContext", "ProviderError", "NotSupported", "PodNotFound",
           "BadRequest", "LogOptions", "PROVIDERS", "create_provider"]
