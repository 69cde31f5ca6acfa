"""Upstream Kubernetes OpenAPI definitions, taken as data from `kubernetes-validate`.

The package ships the upstream schemas (descriptions, GVKs, patch strategies and
list types) converted to JSON Schema; we read one Kubernetes version's
`_definitions.json` and never hand-write a schema.
"""
from __future__ import annotations

import functools
import importlib.resources

import orjson

KUBERNETES_VERSION = "1.37.0"


@functools.cache
def definitions() -> dict[str, dict]:
    """Definition name (e.g. ``io.k8s.api.core.v1.Pod``) -> JSON-schema dict.

    References inside are ``{"$ref": "#/$defs/<name>"}``; types may be
    ``["string", "null"]`` lists (the JSON-schema form of the package)."""
    root = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"
    path = root / f"v{KUBERNETES_VERSION}-local" / "_definitions.json"
    return orjson.loads(path.read_bytes())["$defs"]


@functools.cache
def gvk_index() -> dict[tuple[str, str, str], str]:
    """(group, version, kind) -> definition name, from x-kubernetes-group-version-kind."""
    out: dict[tuple[str, str, str], str] = {}
    for name, d in definitions().items():
        for gvk in d.get("x-kubernetes-group-version-kind", ()):
            key = (gvk.get("group", ""), gvk["version"], gvk["kind"])
            # meta types (DeleteOptions, WatchEvent…) list many GVKs; real kinds list one
            out.setdefault(key, name)
    return out


def definition_for(group: str, version: str, kind: str) -> dict | None:
    name = gvk_index().get((group, version, kind))
    return definitions()[name] if name else None


def resolve(schema: dict) -> dict:
    """Follow a ``$ref`` (one level) to its definition."""
    ref = schema.get("$ref")
    if ref:
        return definitions()[ref.rsplit("/", 1)[-1]]
    return schema
