"""LimitRange and ResourceQuota admission, as upstream's admission plugins do them.

LimitRange: container defaults (default → limits, defaultRequest → requests) and
min / max / maxLimitRequestRatio checks for Containers and Pods. ResourceQuota:
a create that would take a namespace's usage past a quota's `hard` is refused
(403); usage is counted from the stored objects, and each quota's status
(`hard`, `used`) is kept current after writes in its namespace."""
from __future__ import annotations

from fractions import Fraction

from ..api import errors
from ..api.quantity import format_quantity, parse_quantity
from ..api.registry import ResourceInfo

_COMPUTE = ("cpu", "memory", "ephemeral-storage")
# object-count quota names of the classic form
_COUNT_NAMES = {("", "pods"): "pods", ("", "services"): "services", ("", "configmaps"): "configmaps",
                ("", "secrets"): "secrets", ("", "persistentvolumeclaims"): "persistentvolumeclaims",
                ("", "replicationcontrollers"): "replicationcontrollers",
                ("", "resourcequotas"): "resourcequotas"}


def _q(v) -> Fraction:
    return parse_quantity(v)


def _fmt(name: str, v: Fraction) -> str:
    return format_quantity(v, binary=name.endswith("memory") or name.endswith("storage"))


def _forbidden(info: ResourceInfo, name: str, message: str) -> errors.APIError:
    qual = f"{info.plural}.{info.group}" if info.group else info.plural
    return errors.APIError(403, "Forbidden", f'{qual} "{name}" is forbidden: {message}',
                           {"name": name, "kind": info.plural, **({"group": info.group} if info.group else {})})


def _containers(pod: dict) -> list[dict]:
    spec = pod.get("spec") or {}
    return list(spec.get("containers") or []) + list(spec.get("initContainers") or [])


# ---- LimitRange --------------------------------------------------------------------------

def apply_limit_ranges(info: ResourceInfo, pod: dict, ranges: list[dict]) -> None:
    """Default then check the pod's containers against every LimitRange of its namespace."""
    name = pod["metadata"].get("name") or pod["metadata"].get("generateName", "")
    for lr in ranges:
        for item in (lr.get("spec") or {}).get("limits") or []:
            if item.get("type") != "Container":
                continue
            for c in _containers(pod):
                res = c.setdefault("resources", {})
                for k, v in (item.get("default") or {}).items():
                    res.setdefault("limits", {}).setdefault(k, v)
                for k, v in (item.get("defaultRequest") or item.get("default") or {}).items():
                    res.setdefault("requests", {}).setdefault(k, v)
    for lr in ranges:
        for item in (lr.get("spec") or {}).get("limits") or []:
            kind = item.get("type")
            if kind == "Container":
                for c in _containers(pod):
                    _check(info, name, "Container", item, (c.get("resources") or {}).get("requests") or {},
                           (c.get("resources") or {}).get("limits") or {})
            elif kind == "Pod":
                req: dict[str, Fraction] = {}
                lim: dict[str, Fraction] = {}
                for c in (pod.get("spec") or {}).get("containers") or []:
                    for k, v in ((c.get("resources") or {}).get("requests") or {}).items():
                        req[k] = req.get(k, Fraction(0)) + _q(v)
                    for k, v in ((c.get("resources") or {}).get("limits") or {}).items():
                        lim[k] = lim.get(k, Fraction(0)) + _q(v)
                _check(info, name, "Pod", item, req, lim)


def _check(info, name, scope, item, requests, limits) -> None:
    for k, v in (item.get("min") or {}).items():
        r = requests.get(k)
        if r is None:
            raise _forbidden(info, name, f"minimum {k} usage per {scope} is {v}.  No request is specified")
        if _q(r) < _q(v):
            raise _forbidden(info, name, f"minimum {k} usage per {scope} is {v}, but request is {r}")
    for k, v in (item.get("max") or {}).items():
        lm = limits.get(k)
        if lm is None:
            raise _forbidden(info, name, f"maximum {k} usage per {scope} is {v}.  No limit is specified")
        if _q(lm) > _q(v):
            raise _forbidden(info, name, f"maximum {k} usage per {scope} is {v}, but limit is {lm}")
    for k, v in (item.get("maxLimitRequestRatio") or {}).items():
        r, lm = requests.get(k), limits.get(k)
        if r is not None and lm is not None and _q(r) > 0 and _q(lm) / _q(r) > _q(v):
            raise _forbidden(info, name, f"{k} max limit to request ratio per {scope} is {v}, but provided "
                                         f"ratio is {float(_q(lm) / _q(r)):.6f}")


# ---- ResourceQuota -----------------------------------------------------------------------

def usage_of(info: ResourceInfo, obj: dict) -> dict[str, Fraction]:
    """What one object counts against quotas."""
    out: dict[str, Fraction] = {}
    count_name = f"count/{info.plural}" + (f".{info.group}" if info.group else "")
    out[count_name] = Fraction(1)
    classic = _COUNT_NAMES.get((info.group, info.plural))
    if classic:
        out[classic] = Fraction(1)
    if info.kind == "Pod" and not info.group:
        if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return {}
        for c in (obj.get("spec") or {}).get("containers") or []:
            res = c.get("resources") or {}
            for k, v in (res.get("requests") or {}).items():
                for name in (f"requests.{k}",) + ((k,) if k in _COMPUTE else ()):
                    out[name] = out.get(name, Fraction(0)) + _q(v)
            for k, v in (res.get("limits") or {}).items():
                out[f"limits.{k}"] = out.get(f"limits.{k}", Fraction(0)) + _q(v)
    if info.kind == "Service" and not info.group:
        stype = (obj.get("spec") or {}).get("type", "ClusterIP")
        if stype in ("NodePort", "LoadBalancer"):
            out["services.nodeports"] = Fraction(1)
        if stype == "LoadBalancer":
            out["services.loadbalancers"] = Fraction(1)
    return out


def namespace_usage(store, registry, namespace: str, names: set[str]) -> dict[str, Fraction]:
    """Current usage of the quota resources ``names`` in ``namespace``, from the stored objects."""
    used = {n: Fraction(0) for n in names}
    for info in registry.resources():
        if not info.namespaced or info.stored_as or "list" not in info.verbs:
            continue
        count_name = f"count/{info.plural}" + (f".{info.group}" if info.group else "")
        relevant = count_name in names or _COUNT_NAMES.get((info.group, info.plural)) in names or (
            info.kind == "Pod" and not info.group) or (info.kind == "Service" and not info.group)
        if not relevant:
            continue
        for rec in store.list(info.list_prefix(namespace))[0]:
            for k, v in usage_of(info, rec.obj).items():
                if k in used:
                    used[k] += v
    return used


def check_quotas(info: ResourceInfo, obj: dict, quotas: list[dict], store, registry) -> None:
    """Refuse a create that would exceed any quota of the namespace (403, upstream's message)."""
    delta = usage_of(info, obj)
    if not delta:
        return
    name = obj["metadata"].get("name") or obj["metadata"].get("generateName", "")
    ns = obj["metadata"]["namespace"]
    for q in quotas:
        hard = (q.get("spec") or {}).get("hard") or {}
        tracked = [k for k in hard if k in delta or (info.kind == "Pod" and k.split(".", 1)[-1] in _COMPUTE
                                                     and k.startswith(("requests.", "limits.")))]
        if not tracked:
            continue
        qname = q["metadata"]["name"]
        if info.kind == "Pod" and not info.group:
            missing = [k for k in tracked if k.startswith(("requests.", "limits.")) and k not in delta]
            if missing:
                containers = ",".join(c.get("name", "") for c in (obj.get("spec") or {}).get("containers") or [])
                raise _forbidden(info, name, f"failed quota: {qname}: must specify "
                                             f"{','.join(sorted(missing))} for: {containers}")
        used = namespace_usage(store, registry, ns, set(tracked))
        over = [k for k in tracked if used[k] + delta.get(k, 0) > _q(hard[k])]
        if over:
            over.sort()
            requested = ",".join(f"{k}={_fmt(k, delta.get(k, Fraction(0)))}" for k in over)
            usedtxt = ",".join(f"{k}={_fmt(k, used[k])}" for k in over)
            limited = ",".join(f"{k}={hard[k]}" for k in over)
            raise _forbidden(info, name, f"exceeded quota: {qname}, requested: {requested}, "
                                         f"used: {usedtxt}, limited: {limited}")


def quota_status(q: dict, store, registry) -> dict:
    hard = (q.get("spec") or {}).get("hard") or {}
    used = namespace_usage(store, registry, q["metadata"]["namespace"], set(hard))
    return {"hard": dict(hard), "used": {k: _fmt(k, v) for k, v in used.items()}}
