"""Scheduling and pod-level settings: tolerations, affinity, topology spread, DNS config
and the pod security context."""
from __future__ import annotations

import re
from typing import Any

from . import names as n
from ._field import (Errs, GoRaw, duplicate, forbidden, go_string_slice, invalid, not_supported, required)
from ._util import as_dict, as_list, is_int
from .meta import validate_label_selector
from .podcommon import apparmor_profile, id_range, seccomp_profile

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def validate_tolerations(errs: Errs, tolerations: Any, path: str) -> None:
    for i, t in enumerate(as_list(errs, tolerations, path)):
        ip = f"{path}[{i}]"
        t = as_dict(errs, t, ip)
        key = t.get("key") or ""
        op = t.get("operator") or ""
        effect = t.get("effect") or ""
        if key:
            for m in n.is_qualified_name(key):
                invalid(errs, ip + ".key", key, m)
        if not key and op != "Exists":
            invalid(errs, ip + ".operator", op,
                    "operator must be Exists when `key` is empty, which means \"match all values and all keys\"")
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            invalid(errs, ip + ".effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set")
        value = t.get("value") or ""
        if op in ("Equal", ""):
            msgs = n.is_label_value(value) if isinstance(value, str) else ["must be a string"]
            if msgs:
                invalid(errs, ip + ".operator", value, ";".join(msgs))
        elif op == "Exists":
            if value:
                invalid(errs, ip + ".operator", value, "value must be empty when `operator` is 'Exists'")
        else:
            not_supported(errs, ip + ".operator", op, ("Equal", "Exists"))
        if effect and effect not in TAINT_EFFECTS:
            not_supported(errs, ip + ".effect", effect, TAINT_EFFECTS)


def _node_selector_requirement(errs: Errs, rq: dict, path: str, check_values: bool) -> None:
    op = rq.get("operator")
    values = rq.get("values") or []
    if op in ("In", "NotIn"):
        if not values:
            required(errs, path + ".values", "must be specified when `operator` is 'In' or 'NotIn'")
    elif op in ("Exists", "DoesNotExist"):
        if values:
            forbidden(errs, path + ".values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
    elif op in ("Gt", "Lt"):
        if len(values) != 1:
            required(errs, path + ".values", "must be specified single value when `operator` is 'Lt' or 'Gt'")
    else:
        invalid(errs, path + ".operator", op or "", "not a valid selector operator")
    key = rq.get("key") or ""
    for m in n.is_qualified_name(key):
        invalid(errs, path + ".key", key, m)
    if check_values and isinstance(values, list):
        for j, v in enumerate(values):
            if isinstance(v, str):
                for m in n.is_label_value(v):
                    invalid(errs, f"{path}.values[{j}]", v, m)


def _node_selector_term(errs: Errs, term: dict, path: str, check_values: bool) -> None:
    for j, rq in enumerate(as_list(errs, term.get("matchExpressions"), path + ".matchExpressions")):
        _node_selector_requirement(errs, as_dict(errs, rq, path), f"{path}.matchExpressions[{j}]", check_values)
    for j, rq in enumerate(as_list(errs, term.get("matchFields"), path + ".matchFields")):
        rp = f"{path}.matchFields[{j}]"
        rq = as_dict(errs, rq, rp)
        values = rq.get("values") or []
        if rq.get("operator") in ("In", "NotIn"):
            if len(values) != 1:
                required(errs, rp + ".values",
                         "must be only one value when `operator` is 'In' or 'NotIn' for node field selector")
        else:
            invalid(errs, rp + ".operator", rq.get("operator") or "", "not a valid selector operator")
        if rq.get("key") != "metadata.name":
            invalid(errs, rp + ".key", rq.get("key") or "", "not a valid field selector key")
        else:
            for k, v in enumerate(values):
                for m in n.name_is_dns_subdomain(v if isinstance(v, str) else ""):
                    invalid(errs, f"{rp}.values[{k}]", v, m)


def _pod_affinity_term(errs: Errs, term: dict, path: str) -> None:
    validate_label_selector(errs, term.get("labelSelector"), path + ".labelSelector")
    validate_label_selector(errs, term.get("namespaceSelector"), path + ".namespaceSelector")
    for ns in as_list(errs, term.get("namespaces"), path + ".namespaces"):
        for m in n.name_is_dns_label(ns if isinstance(ns, str) else ""):
            invalid(errs, path + ".namespace", ns, m)
    sel = term.get("labelSelector")
    for fld in ("matchLabelKeys", "mismatchLabelKeys"):
        keys = term.get(fld)
        if keys:
            if sel is None:
                forbidden(errs, f"{path}.{fld}", "must not be specified when labelSelector is not set")
            else:
                for k, key in enumerate(keys):
                    for m in n.is_qualified_name(key if isinstance(key, str) else ""):
                        invalid(errs, f"{path}.{fld}[{k}]", key, m)
    mismatch = set(term.get("mismatchLabelKeys") or [])
    for k, key in enumerate(term.get("matchLabelKeys") or []):
        if key in mismatch:
            invalid(errs, f"{path}.matchLabelKeys[{k}]", key, "exists in both matchLabelKeys and mismatchLabelKeys")
    tk = term.get("topologyKey") or ""
    if not tk:
        required(errs, path + ".topologyKey", "can not be empty")
    for m in n.is_qualified_name(tk):
        invalid(errs, path + ".topologyKey", tk, m)


def _weight(errs: Errs, w: Any, path: str) -> None:
    if not is_int(w) or w <= 0 or w > 100:
        invalid(errs, path, w if w is not None else 0, "must be in the range 1-100")


def validate_affinity(errs: Errs, aff: Any, path: str) -> None:
    if aff is None:
        return
    aff = as_dict(errs, aff, path)
    na = aff.get("nodeAffinity")
    if na is not None:
        np = path + ".nodeAffinity"
        na = as_dict(errs, na, np)
        req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
        if req is not None:
            rp = np + ".requiredDuringSchedulingIgnoredDuringExecution"
            terms = as_list(errs, as_dict(errs, req, rp).get("nodeSelectorTerms"), rp + ".nodeSelectorTerms")
            if not terms:
                required(errs, rp + ".nodeSelectorTerms", "must have at least one node selector term")
            for i, t in enumerate(terms):
                _node_selector_term(errs, as_dict(errs, t, rp), f"{rp}.nodeSelectorTerms[{i}]", True)
        pp = np + ".preferredDuringSchedulingIgnoredDuringExecution"
        for i, t in enumerate(as_list(errs, na.get("preferredDuringSchedulingIgnoredDuringExecution"), pp)):
            t = as_dict(errs, t, pp)
            _weight(errs, t.get("weight"), f"{pp}[{i}].weight")
            _node_selector_term(errs, as_dict(errs, t.get("preference"), pp), f"{pp}[{i}].preference", False)
    for kind in ("podAffinity", "podAntiAffinity"):
        pa = aff.get(kind)
        if pa is None:
            continue
        kp = f"{path}.{kind}"
        pa = as_dict(errs, pa, kp)
        rp = kp + ".requiredDuringSchedulingIgnoredDuringExecution"
        for i, t in enumerate(as_list(errs, pa.get("requiredDuringSchedulingIgnoredDuringExecution"), rp)):
            _pod_affinity_term(errs, as_dict(errs, t, rp), f"{rp}[{i}]")
        pp = kp + ".preferredDuringSchedulingIgnoredDuringExecution"
        for i, t in enumerate(as_list(errs, pa.get("preferredDuringSchedulingIgnoredDuringExecution"), pp)):
            t = as_dict(errs, t, pp)
            _weight(errs, t.get("weight"), f"{pp}[{i}].weight")
            _pod_affinity_term(errs, as_dict(errs, t.get("podAffinityTerm"), pp), f"{pp}[{i}].podAffinityTerm")


def validate_topology_spread(errs: Errs, constraints: Any, path: str) -> None:
    items = as_list(errs, constraints, path)
    for i, c in enumerate(items):
        ip = f"{path}[{i}]"
        c = as_dict(errs, c, ip)
        skew = c.get("maxSkew")
        if not is_int(skew) or skew <= 0:
            invalid(errs, ip + ".maxSkew", skew if skew is not None else 0, "must be greater than zero")
        if not c.get("topologyKey"):
            required(errs, ip + ".topologyKey", "can not be empty")
        wu = c.get("whenUnsatisfiable") or ""
        if wu not in ("DoNotSchedule", "ScheduleAnyway"):
            not_supported(errs, ip + ".whenUnsatisfiable", wu, ("DoNotSchedule", "ScheduleAnyway"))
        for other in items[i + 1:]:
            if isinstance(other, dict) and other.get("topologyKey") == c.get("topologyKey") and \
                    other.get("whenUnsatisfiable") == wu:
                duplicate(errs, ip + ".{topologyKey, whenUnsatisfiable}", f"{{{c.get('topologyKey')}, {wu}}}")
                break
        md = c.get("minDomains")
        if md is not None:
            if not is_int(md) or md <= 0:
                invalid(errs, ip + ".minDomains", md, "must be greater than zero")
            if wu != "DoNotSchedule":
                invalid(errs, ip + ".minDomains", md,
                        f"can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {wu}")
        for pol in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
            v = c.get(pol)
            if v is not None and v not in ("Honor", "Ignore"):
                not_supported(errs, f"{ip}.{pol}", v, ("Honor", "Ignore"))
        keys = c.get("matchLabelKeys")
        sel = c.get("labelSelector")
        if keys:
            sel_keys = set()
            if sel is None:
                forbidden(errs, ip + ".matchLabelKeys", "must not be specified when labelSelector is not set")
            elif isinstance(sel, dict):
                sel_keys = set((sel.get("matchLabels") or {}).keys()) | {
                    e.get("key") for e in sel.get("matchExpressions") or [] if isinstance(e, dict)}
            for k, key in enumerate(keys):
                for m in n.is_qualified_name(key if isinstance(key, str) else ""):
                    invalid(errs, f"{ip}.matchLabelKeys[{k}]", key, m)
                if key in sel_keys:
                    invalid(errs, f"{ip}.matchLabelKeys[{k}]", key, "exists in both matchLabelKeys and labelSelector")
        validate_label_selector(errs, sel, ip + ".labelSelector")


def validate_dns_config(errs: Errs, cfg: Any, dns_policy: Any, path: str) -> None:
    if dns_policy == "None":
        if cfg is None:
            required(errs, path, "must provide `dnsConfig` when `dnsPolicy` is None")
            return
        if not (cfg.get("nameservers") if isinstance(cfg, dict) else None):
            required(errs, path + ".nameservers", "must provide at least one DNS nameserver when `dnsPolicy` is None")
            return
    if cfg is None:
        return
    cfg = as_dict(errs, cfg, path)
    ns = as_list(errs, cfg.get("nameservers"), path + ".nameservers")
    if len(ns) > 3:
        invalid(errs, path + ".nameservers", GoRaw(go_string_slice(ns)), "must not have more than 3 nameservers")
    for i, ip in enumerate(ns):
        for m in n.is_valid_ip(ip if isinstance(ip, str) else ""):
            invalid(errs, f"{path}.nameservers[{i}]", ip, m)
    searches = as_list(errs, cfg.get("searches"), path + ".searches")
    if len(searches) > 32:
        invalid(errs, path + ".searches", GoRaw(go_string_slice(searches)), "must not have more than 32 search paths")
    if len(" ".join(str(s) for s in searches)) > 2048:
        invalid(errs, path + ".searches", GoRaw(go_string_slice(searches)),
                "must not have more than 2048 characters (including spaces) in the search list")
    for i, s in enumerate(searches):
        if s == ".":
            continue
        s = s[:-1] if isinstance(s, str) and s.endswith(".") else s
        for m in n.is_dns1123_subdomain_with_underscore(s if isinstance(s, str) else ""):
            invalid(errs, f"{path}.searches[{i}]", s, m)
    for i, opt in enumerate(as_list(errs, cfg.get("options"), path + ".options")):
        if not (opt.get("name") if isinstance(opt, dict) else None):
            required(errs, f"{path}.options[{i}]", "must not be empty")


def validate_pod_security_context(errs: Errs, sc: Any, spec: dict, path: str) -> None:
    if sc is None:
        return
    sc = as_dict(errs, sc, path)
    id_range(errs, sc.get("fsGroup"), path + ".fsGroup")
    id_range(errs, sc.get("runAsUser"), path + ".runAsUser")
    id_range(errs, sc.get("runAsGroup"), path + ".runAsGroup")
    for i, g in enumerate(as_list(errs, sc.get("supplementalGroups"), path + ".supplementalGroups")):
        id_range(errs, g, f"{path}.supplementalGroups[{i}]")
    if sc.get("shareProcessNamespace") is True or spec.get("shareProcessNamespace") is True:
        if spec.get("hostPID") is True and spec.get("shareProcessNamespace") is True:
            invalid(errs, path + ".shareProcessNamespace", True, "ShareProcessNamespace and HostPID cannot both be enabled")
    seen: set[str] = set()
    for i, s in enumerate(as_list(errs, sc.get("sysctls"), path + ".sysctls")):
        sp = f"{path}.sysctls[{i}].name"
        name = s.get("name") if isinstance(s, dict) else None
        if not name:
            required(errs, sp)
        elif not _sysctl_ok(name):
            invalid(errs, sp, name, "must have at most 253 characters and match regex "
                    "^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$")
        elif name in seen:
            duplicate(errs, sp, name)
        if isinstance(name, str):
            if spec.get("hostNetwork") is True and name.startswith("net."):
                invalid(errs, sp, name, "may not be specified when 'hostNetwork' is true")
            elif spec.get("hostIPC") is True and (name.startswith("kernel.shm") or name.startswith("kernel.msg")
                                                  or name.startswith("kernel.sem") or name.startswith("fs.mqueue.")):
                invalid(errs, sp, name, "may not be specified when 'hostIPC' is true")
            seen.add(name)
    fcp = sc.get("fsGroupChangePolicy")
    if fcp is not None and fcp not in ("OnRootMismatch", "Always"):
        not_supported(errs, path + ".fsGroupChangePolicy", fcp, ("Always", "OnRootMismatch"))
    seccomp_profile(errs, sc.get("seccompProfile"), path + ".seccompProfile")
    apparmor_profile(errs, sc.get("appArmorProfile"), path + ".appArmorProfile")
    sgp = sc.get("supplementalGroupsPolicy")
    if sgp is not None and sgp not in ("Merge", "Strict"):
        not_supported(errs, path + ".supplementalGroupsPolicy", sgp, ("Merge", "Strict"))
    slp = sc.get("seLinuxChangePolicy")
    if slp is not None and slp not in ("MountOption", "Recursive"):
        not_supported(errs, path + ".seLinuxChangePolicy", slp, ("MountOption", "Recursive"))


_SYSCTL_SEGMENT = "[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
_SYSCTL = re.compile(f"({_SYSCTL_SEGMENT}[\\./])*{_SYSCTL_SEGMENT}")


def _sysctl_ok(name: str) -> bool:
    return len(name) <= 253 and bool(_SYSCTL.fullmatch(name))


__all__ = ["validate_tolerations", "validate_affinity", "validate_topology_spread", "validate_dns_config", "validate_pod_security_context"]
