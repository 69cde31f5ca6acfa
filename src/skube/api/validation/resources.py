"""Resource names and quantities (core validation's ResourceRequirements rules)."""
from __future__ import annotations

from fractions import Fraction
from typing import Any

from ..quantity import canonical_quantity, parse_quantity
from . import names as n
from ._field import (Errs, Stringer, duplicate, forbidden, invalid, not_found, not_supported,
                     required, type_invalid, NEGATIVE)

STANDARD_CONTAINER_RESOURCES = frozenset(("cpu", "memory", "ephemeral-storage"))
STANDARD_RESOURCES = frozenset((
    "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory",
    "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage",
    "pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
    "persistentvolumeclaims", "storage", "requests.storage", "services.nodeports",
    "services.loadbalancers"))
STANDARD_QUOTA_RESOURCES = frozenset((
    "pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
    "persistentvolumeclaims", "services.nodeports", "services.loadbalancers", "cpu", "memory",
    "ephemeral-storage", "requests.cpu", "requests.memory", "requests.ephemeral-storage",
    "requests.storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage"))
INTEGER_RESOURCES = frozenset((
    "pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
    "persistentvolumeclaims", "services.nodeports", "services.loadbalancers"))
HUGEPAGES_PREFIX = "hugepages-"


def is_native(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def is_hugepages(name: str) -> bool:
    return name.startswith(HUGEPAGES_PREFIX)


def is_extended(name: str) -> bool:
    if is_native(name) or name.startswith("requests."):
        return False
    return not n.is_qualified_name("requests." + name)


def overcommit_allowed(name: str) -> bool:
    return is_native(name) and not is_hugepages(name)


def is_integer_resource(name: str) -> bool:
    return name in INTEGER_RESOURCES or is_extended(name)


def resource_name(errs: Errs, name: str, path: str) -> bool:
    """validateResourceName; False when it already failed."""
    msgs = n.is_qualified_name(name)
    for m in msgs:
        invalid(errs, path, name, m)
    if msgs:
        return False
    if "/" not in name and name not in STANDARD_RESOURCES and not is_hugepages(name) \
            and not name.startswith("requests.hugepages-"):
        invalid(errs, path, name, "must be a standard resource type or fully qualified")
        return False
    return True


def container_resource_name(errs: Errs, name: str, path: str) -> None:
    resource_name(errs, name, path)
    if "/" not in name:
        if name not in STANDARD_CONTAINER_RESOURCES and not is_hugepages(name):
            invalid(errs, path, name, "must be a standard resource for containers")
    elif not is_native(name) and not is_extended(name):
        invalid(errs, path, name, "doesn't follow extended resource name standard")


def quota_resource_name(errs: Errs, name: str, path: str) -> None:
    resource_name(errs, name, path)
    if "/" not in name and name not in STANDARD_QUOTA_RESOURCES and not name.startswith(
            "requests.hugepages-") and not name.startswith("count/"):
        invalid(errs, path, name, "must be a standard resource for quota")


def quantity(errs: Errs, v: Any, path: str) -> Fraction | None:
    """Parse a quantity field; reports a parse failure (upstream rejects it while decoding)."""
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        type_invalid(errs, path, v, "quantity")
        return None
    try:
        return parse_quantity(v)
    except ValueError as e:
        invalid(errs, path, v if isinstance(v, str) else str(v), str(e))
        return None


def qstr(v: Any) -> str:
    """Quantity.String() of a (valid) quantity value."""
    try:
        return canonical_quantity(v)
    except ValueError:
        return str(v)


def quantity_value(errs: Errs, name: str, raw: Any, value: Fraction, path: str) -> None:
    """ValidateResourceQuantityValue: non-negative, and whole for integer resources."""
    if value < 0:
        invalid(errs, path, qstr(raw), NEGATIVE)
    if is_integer_resource(name):
        m = value * 1000
        milli = -((-m.numerator) // m.denominator)
        if milli % 1000:
            invalid(errs, path, Stringer(qstr(raw)), "must be an integer")


def _hugepage_divisible(name: str, value: Fraction) -> bool:
    size = name[len(HUGEPAGES_PREFIX):]
    try:
        unit = parse_quantity(size)
    except ValueError:
        return False
    if unit <= 0:
        return False
    return (value / unit).denominator == 1


def requirements(errs: Errs, res: Any, path: str, *, claim_names: set | None = None,
                 pod_level: bool = False) -> None:
    """validateResourceRequirements for a container (or the pod-level ``resources``)."""
    if res is None:
        return
    if not isinstance(res, dict):
        type_invalid(errs, path, res, "object")
        return
    lim_path = path + ".limits"
    req_path = path + ".requests"
    limits = res.get("limits") or {}
    requests = res.get("requests") or {}
    if not isinstance(limits, dict):
        type_invalid(errs, lim_path, limits, "object")
        limits = {}
    if not isinstance(requests, dict):
        type_invalid(errs, req_path, requests, "object")
        requests = {}
    lim_cpu_mem = req_cpu_mem = lim_huge = req_huge = False
    parsed_limits: dict[str, Fraction] = {}
    for name, raw in limits.items():
        p = f"{lim_path}[{name}]"
        if pod_level:
            if resource_name(errs, name, p) and name not in ("cpu", "memory") and not is_hugepages(name):
                not_supported(errs, p, name, ["cpu", "hugepages-", "memory"])
        else:
            container_resource_name(errs, name, p)
        v = quantity(errs, raw, p)
        if v is None:
            continue
        parsed_limits[name] = v
        quantity_value(errs, name, raw, v, p)
        if is_hugepages(name):
            lim_huge = True
            if not _hugepage_divisible(name, v):
                invalid(errs, p, qstr(raw), f"{qstr(raw)} is not positive integer multiple of {name}")
        if name in ("cpu", "memory"):
            lim_cpu_mem = True
    for name, raw in requests.items():
        p = f"{req_path}[{name}]"
        if pod_level:
            if resource_name(errs, name, p) and name not in ("cpu", "memory") and not is_hugepages(name):
                not_supported(errs, p, name, ["cpu", "hugepages-", "memory"])
        else:
            container_resource_name(errs, name, p)
        v = quantity(errs, raw, p)
        if v is None:
            continue
        quantity_value(errs, name, raw, v, p)
        lim = parsed_limits.get(name)
        if lim is not None:
            if v != lim and not overcommit_allowed(name):
                invalid(errs, req_path, qstr(raw),
                        f"must be equal to {name} limit of {qstr(limits[name])}")
            elif v > lim:
                invalid(errs, req_path, qstr(raw),
                        f"must be less than or equal to {name} limit of {qstr(limits[name])}")
        elif name not in limits and not overcommit_allowed(name):
            required(errs, lim_path, "Limit must be set for non overcommitable resources")
        if is_hugepages(name):
            req_huge = True
            if not _hugepage_divisible(name, v):
                invalid(errs, p, qstr(raw), f"{qstr(raw)} is not positive integer multiple of {name}")
        if name in ("cpu", "memory"):
            req_cpu_mem = True
    if not lim_cpu_mem and not req_cpu_mem and (req_huge or lim_huge):
        forbidden(errs, path, "HugePages require cpu or memory")
    claims = res.get("claims")
    if isinstance(claims, list) and claims:
        if pod_level:
            forbidden(errs, path + ".claims", "claims cannot be set for Resources at pod-level")
            return
        seen: set[str] = set()
        for i, c in enumerate(claims):
            cp = f"{path}.claims[{i}]"
            name = c.get("name") if isinstance(c, dict) else None
            if not name:
                required(errs, cp)
                continue
            req = c.get("request") or ""
            key = name + ("/" + req if req else "")
            if req:
                for m in n.is_dns1123_label(req):
                    invalid(errs, cp + ".request", req, m)
            if name in seen or key in seen:
                duplicate(errs, cp, key if key in seen else name)
            seen.add(key)
            if claim_names is not None and name not in claim_names:
                detail = "must be one of the names in pod.spec.resourceClaims"
                detail += " which is empty" if not claim_names else ": " + ", ".join(sorted(claim_names))
                not_found(errs, cp, name, detail)


def resource_list(errs: Errs, rl: Any, path: str, name_fn=resource_name) -> dict[str, Fraction]:
    """Names and non-negative values of a generic ResourceList (quota, limit range, PVC)."""
    out: dict[str, Fraction] = {}
    if rl is None:
        return out
    if not isinstance(rl, dict):
        type_invalid(errs, path, rl, "object")
        return out
    for name, raw in rl.items():
        p = f"{path}[{name}]"
        name_fn(errs, name, p)
        v = quantity(errs, raw, p)
        if v is None:
            continue
        quantity_value(errs, name, raw, v, p)
        out[name] = v
    return out
