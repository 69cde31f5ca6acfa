"""LimitRange and ResourceQuota admission, as upstream's admission plugins do them.

LimitRange: container defaults (default → limits, defaultRequest → requests) and
min / max / maxLimitRequestRatio checks for Containers and Pods. ResourceQuota:
a create that would take a namespace's usage past a quota's `hard` is refused
(403); usage is counted from the stored objects plus the creates admitted but not
yet stored (``Reservations``), so concurrent creates cannot together pass a quota;
each quota's status (`hard`, `used`) is kept current after writes in its namespace."""
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

def _pod_counts(pod: dict) -> bool:
    """Finished pods are not charged to quotas."""
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def usage_of(info: ResourceInfo, obj: dict) -> dict[str, Fraction]:
    """What one object counts against quotas."""
    out: dict[str, Fraction] = {}
    count_name = f"count/{info.plural}" + (f".{info.group}" if info.group else "")
    out[count_name] = Fraction(1)
    classic = _COUNT_NAMES.get((info.group, info.plural))
    if classic:
        out[classic] = Fraction(1)
    if info.kind == "Pod" and not info.group:
        if not _pod_counts(obj):
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


_POD_COMPUTE = ("requests.", "limits.") + _COMPUTE
_SERVICE_NAMES = ("services.nodeports", "services.loadbalancers")


_NANO = 10 ** 9


class UsageMemo:
    """Each object's quota usage, remembered by key and mod_revision, in nano-units
    (integers add far faster than Fractions), so a namespace's usage is re-summed
    without re-parsing the quantities of objects that did not change. Entries of
    objects gone from a listing are dropped at the next scan of that listing."""

    def __init__(self):
        self._by_prefix: dict[str, dict[str, tuple[int, dict[str, int | Fraction]]]] = {}

    def sum(self, info: ResourceInfo, prefix: str, records, used: dict[str, Fraction]) -> None:
        old = self._by_prefix.get(prefix) or {}
        new: dict[str, tuple[int, dict[str, int | Fraction]]] = {}
        totals: dict[str, int] = {}
        for rec in records:
            hit = old.get(rec.key)
            if hit is None or hit[0] != rec.mod_revision:
                hit = (rec.mod_revision, {k: (int(v * _NANO) if (v * _NANO).denominator == 1 else v)
                                          for k, v in usage_of(info, rec.obj).items()})
            new[rec.key] = hit
            for k, v in hit[1].items():
                if k not in used:
                    continue
                if type(v) is int:
                    totals[k] = totals.get(k, 0) + v
                else:
                    used[k] += v
        self._by_prefix[prefix] = new
        for k, v in totals.items():
            used[k] += Fraction(v, _NANO)


_POD_COMPUTE = ("requests.", "limits.") + _COMPUTE
_SERVICE_NAMES = ("services.nodeports", "services.loadbalancers")


def namespace_usage(store, registry, namespace: str, names: set[str],
                    memo: UsageMemo | None = None) -> dict[str, Fraction]:
    """Current usage of the quota resources ``names`` in ``namespace``, from the stored
    objects in memory: only kinds a name refers to are read, object counts are counted
    without looking inside the objects (except pods, whose finished ones do not count),
    and ``memo`` spares re-parsing unchanged objects."""
    used = {n: Fraction(0) for n in names}
    for info in registry.resources():
        if not info.namespaced or info.stored_as or "list" not in info.verbs:
            continue
        count_name = f"count/{info.plural}" + (f".{info.group}" if info.group else "")
        counts = [n for n in (count_name, _COUNT_NAMES.get((info.group, info.plural))) if n in names]
        core = not info.group
        inner = [n for n in names if (core and info.kind == "Pod" and n.startswith(_POD_COMPUTE))
                 or (core and info.kind == "Service" and n in _SERVICE_NAMES)]
        if not counts and not inner:
            continue
        prefix = info.list_prefix(namespace)
        if not inner:
            if core and info.kind == "Pod":
                n = sum(1 for rec in store.list(prefix)[0] if _pod_counts(rec.obj))
            else:
                n = store.count(prefix)
            for k in counts:
                used[k] += n
            continue
        records = store.list(prefix)[0]
        if memo is not None:
            memo.sum(info, prefix, records, used)
            continue
        for rec in records:
            for k, v in usage_of(info, rec.obj).items():
                if k in used:
                    used[k] += v
    return used


class Reservations:
    """Usage of creates admitted against a quota whose write has not landed yet.

    ``check_quotas`` counts them and reserves the new object's usage in the same
    synchronous step, so two creates in flight together cannot exceed a quota (the
    role upstream's quota evaluator plays by charging the quota before the write).
    The caller releases a reservation when its write finished or failed; one whose
    object is already stored is not counted twice meanwhile."""

    def __init__(self):
        self._by_ns: dict[str, dict[str, tuple[str, dict[str, Fraction]]]] = {}

    def reserve(self, ns: str, uid: str, key: str, delta: dict[str, Fraction]) -> None:
        self._by_ns.setdefault(ns, {})[uid] = (key, delta)

    def release(self, ns: str | None, uid: str | None) -> None:
        held = self._by_ns.get(ns or "")
        if held is not None and held.pop(uid, None) is not None and not held:
            del self._by_ns[ns]

    def pending(self, ns: str, store, names: set[str]) -> dict[str, Fraction]:
        out = {n: Fraction(0) for n in names}
        for uid, (key, delta) in (self._by_ns.get(ns) or {}).items():
            rec = store.get(key)
            if rec is not None and rec.obj["metadata"].get("uid") == uid:
                continue        # stored: namespace_usage counts it already
            for k, v in delta.items():
                if k in out:
                    out[k] += v
        return out


def check_quotas(info: ResourceInfo, obj: dict, quotas: list[dict], store, registry,
                 reservations: Reservations | None = None, memo: UsageMemo | None = None) -> None:
    """Refuse a create that would exceed any quota of the namespace (403, upstream's
    message); when it fits, reserve its usage in ``reservations`` (keyed by uid)."""
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
        used = namespace_usage(store, registry, ns, set(tracked), memo)
        if reservations is not None:
            for k, v in reservations.pending(ns, store, set(tracked)).items():
                used[k] += v
        over = [k for k in tracked if used[k] + delta.get(k, 0) > _q(hard[k])]
        if over:
            over.sort()
            requested = ",".join(f"{k}={_fmt(k, delta.get(k, Fraction(0)))}" for k in over)
            usedtxt = ",".join(f"{k}={_fmt(k, used[k])}" for k in over)
            limited = ",".join(f"{k}={hard[k]}" for k in over)
            raise _forbidden(info, name, f"exceeded quota: {qname}, requested: {requested}, "
                                         f"used: {usedtxt}, limited: {limited}")
    if reservations is not None:
        reservations.reserve(ns, obj["metadata"].get("uid"), info.key(ns, obj["metadata"].get("name") or ""), delta)


def quota_status(q: dict, store, registry, memo: UsageMemo | None = None) -> dict:
    hard = (q.get("spec") or {}).get("hard") or {}
    used = namespace_usage(store, registry, q["metadata"]["namespace"], set(hard), memo)
    return {"hard": dict(hard), "used": {k: _fmt(k, v) for k, v in used.items()}}
