"""API discovery documents: legacy (APIVersions, APIGroupList, APIResourceList)
and aggregated (apidiscovery.k8s.io/v2 APIGroupDiscoveryList), built from the registry."""
from __future__ import annotations

from ..api.registry import Registry, ResourceInfo

AGGREGATED_V2 = b"application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = b"application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

# subresource -> (kind of its body, group, version, verbs); None kind = the resource's own kind
_SUBRESOURCES = {
    "status": (None, ("get", "patch", "update")),
    "scale": (("autoscaling", "v1", "Scale"), ("get", "patch", "update")),
    "binding": (("", "v1", "Binding"), ("create",)),
    "eviction": (("policy", "v1", "Eviction"), ("create",)),
    "log": (("", "v1", "Pod"), ("get",)),
    "exec": (("", "v1", "PodExecOptions"), ("create", "get")),
    "attach": (("", "v1", "PodAttachOptions"), ("create", "get")),
    "portforward": (("", "v1", "PodPortForwardOptions"), ("create", "get")),
    "proxy": (None, ("create", "delete", "get", "patch", "update")),
    "token": (("authentication.k8s.io", "v1", "TokenRequest"), ("create",)),
    "finalize": (None, ("update",)),
    "ephemeralcontainers": (None, ("get", "patch", "update")),
    "resize": (None, ("get", "patch", "update")),
}


def _sub_kind(r: ResourceInfo, sub: str) -> tuple[str, str, str]:
    kind = _SUBRESOURCES.get(sub, (None, ()))[0]
    return kind or (r.group, r.version, r.kind)


def _sub_verbs(sub: str) -> list[str]:
    return list(_SUBRESOURCES.get(sub, (None, ("get",)))[1])


def api_versions(server_address: str) -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def api_group(registry: Registry, group: str) -> dict | None:
    versions = registry.groups().get(group)
    if not versions:
        return None
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs,
            "preferredVersion": gvs[0]}


def api_group_list(registry: Registry) -> dict:
    groups = [api_group(registry, g) for g in registry.groups()]
    for g in groups:
        g.pop("kind"), g.pop("apiVersion")
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_resource_list(registry: Registry, group: str, version: str) -> dict | None:
    resources = sorted(registry.in_group_version(group, version), key=lambda r: r.plural)
    if not resources:
        return None
    out = []
    for r in resources:
        entry = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                 "kind": r.kind, "verbs": list(r.verbs)}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        out.append(entry)
        for sub in r.subresources:
            g, v, k = _sub_kind(r, sub)
            e = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                 "kind": k, "verbs": _sub_verbs(sub)}
            if (g, v) != (r.group, r.version):
                e["group"], e["version"] = g, v
            out.append(e)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}


def _aggregated_resource(r: ResourceInfo) -> dict:
    entry = {
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        entry["shortNames"] = list(r.short_names)
    if r.categories:
        entry["categories"] = list(r.categories)
    subs = []
    for sub in r.subresources:
        g, v, k = _sub_kind(r, sub)
        subs.append({"subresource": sub, "responseKind": {"group": g, "version": v, "kind": k},
                     "verbs": _sub_verbs(sub)})
    if subs:
        entry["subresources"] = subs
    return entry


def aggregated(registry: Registry, core: bool, api_version: str = "apidiscovery.k8s.io/v2") -> dict:
    """/api (core=True) or /apis as an APIGroupDiscoveryList."""
    items = []
    groups = {"": ["v1"]} if core else registry.groups()
    for group, versions in groups.items():
        vers = []
        for v in versions:
            res = sorted(registry.in_group_version(group, v), key=lambda r: r.plural)
            vers.append({"version": v, "resources": [_aggregated_resource(r) for r in res],
                         "freshness": "Current"})
        meta = {"name": group, "creationTimestamp": None} if group else {"creationTimestamp": None}
        items.append({"metadata": meta, "versions": vers})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": api_version,
            "metadata": {}, "items": items}


def wants_aggregated(accept: list[tuple[str, dict[str, str]]]) -> bytes | None:
    """The aggregated content type to answer with, if the client asked for one first."""
    for media, params in accept:
        if media == "application/json" and params.get("as") == "APIGroupDiscoveryList" \
                and params.get("g") == "apidiscovery.k8s.io":
            if params.get("v") == "v2":
                return AGGREGATED_V2
            if params.get("v") == "v2beta1":
                return AGGREGATED_V2BETA1
        elif media in ("application/json", "*/*") and not params:
            return None
    return None
