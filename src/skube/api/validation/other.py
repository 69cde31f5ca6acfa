"""RBAC, coordination (Lease), policy (PodDisruptionBudget), discovery (EndpointSlice)
and apiextensions (CustomResourceDefinition, the basic rules)."""
from __future__ import annotations

from typing import Any

from . import names as n
from ._field import (Errs, GoRaw, duplicate, forbidden, go_value, immutable, invalid, not_supported, required,
                     too_many, type_invalid)
from ._util import as_dict, as_list, is_int
from .meta import validate_label_selector, validate_labels
from .workloads import not_more_than_100_percent, positive_int_or_percent

RBAC_GROUP = "rbac.authorization.k8s.io"


# ---- RBAC ----------------------------------------------------------------------------------------------

def _policy_rule(errs: Errs, rule: Any, namespaced: bool, path: str) -> None:
    rule = as_dict(errs, rule, path)
    if not rule.get("verbs"):
        required(errs, path + ".verbs", "verbs must contain at least one value")
    urls = rule.get("nonResourceURLs") or []
    if urls:
        if namespaced:
            invalid(errs, path + ".nonResourceURLs", urls, "namespaced rules cannot apply to non-resource URLs")
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            invalid(errs, path + ".nonResourceURLs", urls,
                    "rules cannot apply to both regular resources and non-resource URLs")
        return
    if not rule.get("apiGroups"):
        required(errs, path + ".apiGroups", "resource rules must supply at least one api group")
    if not rule.get("resources"):
        required(errs, path + ".resources", "resource rules must supply at least one resource")
    if rule.get("resourceNames") and len(rule.get("resources") or []) > 1:
        required(errs, path + ".resourceNames", "resource names cannot apply to multiple resources")


def validate_role(errs: Errs, obj: dict, namespaced: bool) -> None:
    for i, rule in enumerate(as_list(errs, obj.get("rules"), "rules")):
        _policy_rule(errs, rule, namespaced, f"rules[{i}]")
    agg = obj.get("aggregationRule")
    if isinstance(agg, dict):
        for i, sel in enumerate(as_list(errs, agg.get("clusterRoleSelectors"), "aggregationRule.clusterRoleSelectors")):
            validate_label_selector(errs, sel, f"aggregationRule.clusterRoleSelectors[{i}]")


def _go_role_ref(ref: dict) -> GoRaw:
    return GoRaw('rbac.RoleRef{APIGroup:%s, Kind:%s, Name:%s}' % (
        go_value(ref.get("apiGroup") or ""), go_value(ref.get("kind") or ""), go_value(ref.get("name") or "")))


def validate_role_binding(errs: Errs, obj: dict, namespaced: bool) -> None:
    ref = as_dict(errs, obj.get("roleRef"), "roleRef")
    if ref.get("apiGroup") != RBAC_GROUP:
        not_supported(errs, "roleRef.apiGroup", ref.get("apiGroup") or "", (RBAC_GROUP,))
    kinds = ("Role", "ClusterRole") if namespaced else ("ClusterRole",)
    if ref.get("kind") not in kinds:
        not_supported(errs, "roleRef.kind", ref.get("kind") or "", kinds)
    name = ref.get("name") or ""
    if not name:
        required(errs, "roleRef.name")
    else:
        for m in n.is_path_segment_name(name):
            invalid(errs, "roleRef.name", name, m)
    for i, s in enumerate(as_list(errs, obj.get("subjects"), "subjects")):
        sp = f"subjects[{i}]"
        s = as_dict(errs, s, sp)
        sname = s.get("name") or ""
        if not sname:
            required(errs, sp + ".name")
        kind = s.get("kind")
        group = s.get("apiGroup") or ""
        if kind == "ServiceAccount":
            if sname:
                for m in n.name_is_dns_subdomain(sname):
                    invalid(errs, sp + ".name", sname, m)
            if group:
                not_supported(errs, sp + ".apiGroup", group, ("",))
            if not namespaced and not s.get("namespace"):
                required(errs, sp + ".namespace")
        elif kind in ("User", "Group"):
            if not sname:
                invalid(errs, sp + ".name", sname, f"{kind.lower()} name cannot be empty")
            if group != RBAC_GROUP:
                not_supported(errs, sp + ".apiGroup", group, (RBAC_GROUP,))
        else:
            not_supported(errs, sp + ".kind", kind or "", ("ServiceAccount", "User", "Group"))


def validate_role_binding_update(errs: Errs, new: dict, old: dict) -> None:
    nr = new.get("roleRef") if isinstance(new.get("roleRef"), dict) else {}
    orf = old.get("roleRef") if isinstance(old.get("roleRef"), dict) else {}
    key = ("apiGroup", "kind", "name")
    if tuple(nr.get(k) or "" for k in key) != tuple(orf.get(k) or "" for k in key):
        invalid(errs, "roleRef", _go_role_ref(nr), "cannot change roleRef")


# ---- Lease ---------------------------------------------------------------------------------------------------

def validate_lease(errs: Errs, obj: dict) -> None:
    spec = as_dict(errs, obj.get("spec"), "spec")
    d = spec.get("leaseDurationSeconds")
    if d is not None and (not is_int(d) or d <= 0):
        invalid(errs, "spec.leaseDurationSeconds", d, "must be greater than 0")
    t = spec.get("leaseTransitions")
    if t is not None and (not is_int(t) or t < 0):
        invalid(errs, "spec.leaseTransitions", t, "must be greater than or equal to 0")
    strategy = spec.get("strategy")
    if strategy is not None:
        s = strategy if isinstance(strategy, str) else ""
        if "/" not in s:
            if s != "OldestEmulationVersion":
                not_supported(errs, "spec.strategy.strategy", s, ("OldestEmulationVersion",))
        else:
            for m in n.is_qualified_name(s):
                invalid(errs, "spec.strategy.strategy", s, m)
    if spec.get("preferredHolder") and not strategy:
        forbidden(errs, "spec.preferredHolder", "may only be specified if `strategy` is defined")


# ---- PodDisruptionBudget ---------------------------------------------------------------------------------

def validate_pdb(errs: Errs, obj: dict) -> None:
    spec = as_dict(errs, obj.get("spec"), "spec")
    mn, mx = spec.get("minAvailable"), spec.get("maxUnavailable")
    if mn is not None and mx is not None:
        invalid(errs, "spec", GoRaw("policy.PodDisruptionBudgetSpec{...}"), "minAvailable and maxUnavailable cannot be both set")
    for key, v in (("minAvailable", mn), ("maxUnavailable", mx)):
        if v is not None:
            positive_int_or_percent(errs, v, f"spec.{key}")
            not_more_than_100_percent(errs, v, f"spec.{key}")
    validate_label_selector(errs, spec.get("selector"), "spec.selector")
    uhp = spec.get("unhealthyPodEvictionPolicy")
    if uhp is not None and uhp not in ("IfHealthyBudget", "AlwaysAllow"):
        not_supported(errs, "spec.unhealthyPodEvictionPolicy", uhp, ("AlwaysAllow", "IfHealthyBudget"))


# ---- EndpointSlice ---------------------------------------------------------------------------------------

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")


def validate_endpoint_slice(errs: Errs, obj: dict) -> None:
    at = obj.get("addressType") or ""
    if not at:
        required(errs, "addressType")
    elif at not in ADDRESS_TYPES:
        not_supported(errs, "addressType", at, ADDRESS_TYPES)
    eps = as_list(errs, obj.get("endpoints"), "endpoints")
    if len(eps) > 1000:
        too_many(errs, "endpoints", len(eps), 1000)
    for i, ep in enumerate(eps):
        p = f"endpoints[{i}]"
        ep = as_dict(errs, ep, p)
        addrs = as_list(errs, ep.get("addresses"), p + ".addresses")
        if not addrs:
            required(errs, p + ".addresses", "must contain at least 1 address")
        elif len(addrs) > 100:
            too_many(errs, p + ".addresses", len(addrs), 100)
        for j, a in enumerate(addrs):
            ap = f"{p}.addresses[{j}]"
            a = a if isinstance(a, str) else ""
            ip = n.parse_ip_sloppy(a)
            if at == "IPv4" and (ip is None or ip.version != 4):
                invalid(errs, ap, a, "must be a valid IPv4 address")
            elif at == "IPv6" and (ip is None or ip.version != 6):
                invalid(errs, ap, a, "must be a valid IPv6 address")
            elif at == "FQDN":
                name = a[:-1] if a.endswith(".") else a
                msgs = n.is_dns1123_subdomain(name)
                if msgs:
                    invalid(errs, ap, name, ",".join(msgs))
                elif len(name.split(".")) < 2:
                    invalid(errs, ap, name, "should be a domain with at least two segments separated by dots")
        hn = ep.get("hostname")
        if hn is not None:
            for m in n.is_dns1123_label(hn if isinstance(hn, str) else ""):
                invalid(errs, p + ".hostname", hn, m)
        node = ep.get("nodeName")
        if node is not None:
            for m in n.name_is_dns_subdomain(node if isinstance(node, str) else ""):
                invalid(errs, p + ".nodeName", node, m)
        validate_labels(errs, ep.get("deprecatedTopology"), p + ".deprecatedTopology")
    ports = as_list(errs, obj.get("ports"), "ports")
    if len(ports) > 20000:
        too_many(errs, "ports", len(ports), 20000)
    names: set = set()
    for i, port in enumerate(ports):
        p = f"ports[{i}]"
        port = as_dict(errs, port, p)
        name = port.get("name")
        if name:
            for m in n.is_dns1123_label(name if isinstance(name, str) else ""):
                invalid(errs, p + ".name", name, m)
        if (name or "") in names:
            duplicate(errs, p + ".name", name or "")
        names.add(name or "")
        proto = port.get("protocol")
        if proto is None:
            required(errs, p + ".protocol")
        elif proto not in ("SCTP", "TCP", "UDP"):
            not_supported(errs, p + ".protocol", proto, ("SCTP", "TCP", "UDP"))
        num = port.get("port")
        if num is not None:
            if not is_int(num):
                type_invalid(errs, p + ".port", num, "integer")
            else:
                for m in n.is_valid_port_num(num):
                    invalid(errs, p + ".port", num, m)
        ap = port.get("appProtocol")
        if ap is not None:
            for m in n.is_qualified_name(ap if isinstance(ap, str) else ""):
                invalid(errs, p + ".appProtocol", ap, m)


def validate_endpoint_slice_update(errs: Errs, new: dict, old: dict) -> None:
    if old.get("addressType") in ADDRESS_TYPES and new.get("addressType") != old.get("addressType"):
        immutable(errs, "addressType", new.get("addressType") or "")


# ---- CustomResourceDefinition (basic shape; the schema rules live with the CRD machinery) ------------

def validate_crd(errs: Errs, obj: dict) -> None:
    spec = as_dict(errs, obj.get("spec"), "spec")
    names = as_dict(errs, spec.get("names"), "spec.names")
    group = spec.get("group") or ""
    plural = names.get("plural") or ""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = meta.get("name") or ""
    if name and name != f"{plural}.{group}":
        invalid(errs, "metadata.name", name, 'must be spec.names.plural+"."+spec.group')
    if not group:
        required(errs, "spec.group")
    else:
        msgs = n.is_dns1123_subdomain(group)
        for m in msgs:
            invalid(errs, "spec.group", group, m)
        if not msgs and len(group.split(".")) < 2:
            invalid(errs, "spec.group", group, "should be a domain with at least one dot")
    scope = spec.get("scope") or ""
    if not scope:
        required(errs, "spec.scope")
    elif scope not in ("Cluster", "Namespaced"):
        not_supported(errs, "spec.scope", scope, ("Cluster", "Namespaced"))
    for key in ("plural", "singular", "kind", "listKind"):
        v = names.get(key)
        if key in ("plural", "kind", "listKind") and not v:
            required(errs, f"spec.names.{key}")
        elif v and key in ("plural", "singular"):
            for m in n.is_dns1123_label(v if isinstance(v, str) else ""):
                invalid(errs, f"spec.names.{key}", v, m)
    versions = as_list(errs, spec.get("versions"), "spec.versions")
    storage = sum(1 for v in versions if isinstance(v, dict) and v.get("storage") is True)
    if not versions:
        invalid(errs, "spec.versions", GoRaw("[]apiextensions.CustomResourceDefinitionVersion(nil)"),
                "must have exactly one version marked as storage version")
    elif storage != 1:
        invalid(errs, "spec.versions", GoRaw("[]apiextensions.CustomResourceDefinitionVersion{...}"),
                "must have exactly one version marked as storage version")
    seen: set = set()
    for i, v in enumerate(versions):
        vp = f"spec.versions[{i}]"
        v = as_dict(errs, v, vp)
        vn = v.get("name") or ""
        for m in n.is_dns1035_label(vn):
            invalid(errs, vp + ".name", vn, m)
        if vn in seen:
            invalid(errs, "spec.versions", GoRaw("[]apiextensions.CustomResourceDefinitionVersion{...}"),
                    "must contain unique version names")
        seen.add(vn)


def validate_crd_update(errs: Errs, new: dict, old: dict) -> None:
    ns = new.get("spec") if isinstance(new.get("spec"), dict) else {}
    os_ = old.get("spec") if isinstance(old.get("spec"), dict) else {}
    if ns.get("group") != os_.get("group"):
        immutable(errs, "spec.group", ns.get("group") or "")
    if (ns.get("names") or {}).get("plural") != (os_.get("names") or {}).get("plural"):
        immutable(errs, "spec.names.plural", (ns.get("names") or {}).get("plural") or "")
