"""Core v1 kinds other than Pod and Service: ConfigMap, Secret, Namespace, Endpoints,
ResourceQuota, LimitRange, PersistentVolumeClaim, Event, Node."""
from __future__ import annotations

import base64
import binascii
import json
from fractions import Fraction
from typing import Any

from . import names as n
from . import resources as r
from ._field import (Errs, GoRaw, Stringer, duplicate, forbidden, go_string_slice, go_value, immutable, invalid,
                     not_supported, required, too_long, type_invalid, IMMUTABLE)
from ._util import as_dict, as_list, is_int
from .meta import validate_label_selector
from .service import PROTOCOLS, non_special_ip

MAX_SECRET_SIZE = 1024 * 1024


# ---- ConfigMap / Secret ----------------------------------------------------------------------------

def _b64_len(v: Any) -> int:
    if not isinstance(v, str):
        return 0
    s = v.rstrip("=")
    return len(s) * 3 // 4


def validate_config_map(errs: Errs, cm: dict) -> None:
    data = as_dict(errs, cm.get("data"), "data")
    binary = as_dict(errs, cm.get("binaryData"), "binaryData")
    total = 0
    for k, v in data.items():
        for m in n.is_config_map_key(k):
            invalid(errs, f"data[{k}]", k, m)
        if k in binary:
            invalid(errs, f"data[{k}]", k, "duplicate of key present in binaryData")
        if isinstance(v, str):
            total += len(v) if v.isascii() else len(v.encode())
        else:
            type_invalid(errs, f"data[{k}]", v, "string")
    for k, v in binary.items():
        for m in n.is_config_map_key(k):
            invalid(errs, f"binaryData[{k}]", k, m)
        total += _b64_len(v)
    if total > MAX_SECRET_SIZE:
        too_long(errs, "", MAX_SECRET_SIZE)


def validate_config_map_update(errs: Errs, new: dict, old: dict) -> None:
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            forbidden(errs, "immutable", "field is immutable when `immutable` is set")
        if (new.get("data") or {}) != (old.get("data") or {}):
            forbidden(errs, "data", "field is immutable when `immutable` is set")
        if (new.get("binaryData") or {}) != (old.get("binaryData") or {}):
            forbidden(errs, "binaryData", "field is immutable when `immutable` is set")


_LITERALS = {"t": "true", "f": "false", "n": "null"}


def _go_json_error(raw: bytes) -> str | None:
    """The error Go's json.Unmarshal into map[string]interface{} gives, or None (common cases)."""
    text = raw.decode("utf-8", "replace")
    if not text.strip():
        return "unexpected end of JSON input"
    try:
        val = json.loads(text)
    except json.JSONDecodeError as e:
        pos = e.pos
        if pos >= len(text.rstrip()):
            return "unexpected end of JSON input"
        ch = text[pos]
        lit = _LITERALS.get(ch)
        if lit is not None and e.msg == "Expecting value":
            for i, want in enumerate(lit):
                got = text[pos + i] if pos + i < len(text) else ""
                if not got:
                    return "unexpected end of JSON input"
                if got != want:
                    return f"invalid character '{got}' in literal {lit} (expecting '{want}')"
        if e.msg.startswith("Expecting property name"):
            return f"invalid character '{ch}' looking for beginning of object key string"
        if e.msg == "Expecting ':' delimiter":
            return f"invalid character '{ch}' after object key"
        if e.msg == "Expecting ',' delimiter":
            inside = "object key:value pair" if text.lstrip().startswith("{") else "array element"
            return f"invalid character '{ch}' after {inside}"
        if e.msg == "Extra data":
            return f"invalid character '{ch}' after top-level value"
        return f"invalid character '{ch}' looking for beginning of value"
    if not isinstance(val, dict):
        kind = {list: "array", str: "string", bool: "bool", type(None): None}.get(type(val), "number")
        if kind is None:
            return None
        return f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
    return None


def validate_secret(errs: Errs, sec: dict) -> None:
    data = as_dict(errs, sec.get("data"), "data")
    total = 0
    for k, v in data.items():
        for m in n.is_config_map_key(k):
            invalid(errs, f"data[{k}]", k, m)
        total += _b64_len(v)
    if total > MAX_SECRET_SIZE:
        too_long(errs, "data", MAX_SECRET_SIZE)
    stype = sec.get("type") or ""
    meta = sec.get("metadata") if isinstance(sec.get("metadata"), dict) else {}
    if stype == "kubernetes.io/service-account-token":
        ann = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
        if not ann.get("kubernetes.io/service-account.name"):
            required(errs, "metadata.annotations[kubernetes.io/service-account.name]")
    elif stype in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        key = ".dockercfg" if stype == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        if key not in data:
            required(errs, f"data[{key}]")
        else:
            try:
                raw = base64.b64decode(data[key] or "", validate=False)
            except (binascii.Error, ValueError, TypeError):
                raw = b""
            msg = _go_json_error(raw)
            if msg:
                invalid(errs, f"data[{key}]", "<secret contents redacted>", msg)
    elif stype == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            required(errs, "data[username]")
            required(errs, "data[password]")
    elif stype == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            required(errs, "data[ssh-privatekey]")
    elif stype == "kubernetes.io/tls":
        if "tls.crt" not in data:
            required(errs, "data[tls.crt]")
        if "tls.key" not in data:
            required(errs, "data[tls.key]")


def validate_secret_update(errs: Errs, new: dict, old: dict) -> None:
    if (new.get("type") or "") != (old.get("type") or ""):
        immutable(errs, "type", new.get("type") or "")
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            forbidden(errs, "immutable", "field is immutable when `immutable` is set")
        if (new.get("data") or {}) != (old.get("data") or {}):
            forbidden(errs, "data", "field is immutable when `immutable` is set")


# ---- Namespace -------------------------------------------------------------------------------------

def validate_namespace(errs: Errs, ns: dict) -> None:
    spec = as_dict(errs, ns.get("spec"), "spec")
    fins = as_list(errs, spec.get("finalizers"), "spec.finalizers")
    for f in fins:
        if not isinstance(f, str):
            type_invalid(errs, "spec.finalizers", f, "string")
            continue
        for m in n.is_qualified_name(f):
            invalid(errs, "spec.finalizers", f, m)
        if "/" not in f and f not in ("kubernetes", "orphan", "foregroundDeletion"):
            invalid(errs, "spec.finalizers", f, "name is neither a standard finalizer name nor is it fully qualified")


# ---- Endpoints -------------------------------------------------------------------------------------

def validate_endpoints(errs: Errs, ep: dict) -> None:
    for i, ss in enumerate(as_list(errs, ep.get("subsets"), "subsets")):
        sp = f"subsets[{i}]"
        ss = as_dict(errs, ss, sp)
        if not ss.get("addresses") and not ss.get("notReadyAddresses"):
            required(errs, sp, "must specify `addresses` or `notReadyAddresses`")
        for key in ("addresses", "notReadyAddresses"):
            for j, a in enumerate(as_list(errs, ss.get(key), f"{sp}.{key}")):
                ap = f"{sp}.{key}[{j}]"
                a = as_dict(errs, a, ap)
                ip = a.get("ip") if isinstance(a.get("ip"), str) else ""
                for m in n.is_valid_ip(ip):
                    invalid(errs, ap + ".ip", ip, m)
                hn = a.get("hostname")
                if hn:
                    for m in n.is_dns1123_label(hn if isinstance(hn, str) else ""):
                        invalid(errs, ap + ".hostname", hn, m)
                node = a.get("nodeName")
                if node is not None:
                    for m in n.name_is_dns_subdomain(node if isinstance(node, str) else ""):
                        invalid(errs, ap + ".nodeName", node, m)
                non_special_ip(errs, ip, ap + ".ip")
        ports = as_list(errs, ss.get("ports"), sp + ".ports")
        for j, p in enumerate(ports):
            pp = f"{sp}.ports[{j}]"
            p = as_dict(errs, p, pp)
            name = p.get("name") or ""
            if len(ports) > 1 and not name:
                required(errs, pp + ".name")
            elif name:
                for m in n.is_dns1123_label(name):
                    invalid(errs, pp + ".name", name, m)
            port = p.get("port") if is_int(p.get("port")) else 0
            for m in n.is_valid_port_num(port):
                invalid(errs, pp + ".port", port, m)
            proto = p.get("protocol")
            if not proto:
                required(errs, pp + ".protocol")
            elif proto not in PROTOCOLS:
                not_supported(errs, pp + ".protocol", proto, PROTOCOLS)
            ap = p.get("appProtocol")
            if ap is not None:
                for m in n.is_qualified_name(ap if isinstance(ap, str) else ""):
                    invalid(errs, pp + ".appProtocol", ap, m)


# ---- ResourceQuota / LimitRange -----------------------------------------------------------------

QUOTA_SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass",
                "CrossNamespacePodAffinity", "VolumeAttributesClass")


def validate_resource_quota(errs: Errs, rq: dict) -> None:
    spec = as_dict(errs, rq.get("spec"), "spec")
    r.resource_list(errs, spec.get("hard"), "spec.hard", r.quota_resource_name)
    scopes = as_list(errs, spec.get("scopes"), "spec.scopes")
    for s in scopes:
        if s not in QUOTA_SCOPES:
            invalid(errs, "spec.scopes", GoRaw("[]core.ResourceQuotaScope{" + ", ".join(
                go_value(x) for x in scopes) + "}"), "unsupported scope")
    ss = set(scopes)
    if {"BestEffort", "NotBestEffort"} <= ss or {"Terminating", "NotTerminating"} <= ss:
        invalid(errs, "spec.scopes", GoRaw("[]core.ResourceQuotaScope{" + ", ".join(
            go_value(x) for x in scopes) + "}"), "conflicting scopes")
    sel = spec.get("scopeSelector")
    if isinstance(sel, dict):
        for i, e in enumerate(as_list(errs, sel.get("matchExpressions"), "spec.scopeSelector.matchExpressions")):
            ep = "spec.scopeSelector.matchExpressions"
            e = as_dict(errs, e, ep)
            name, op, vals = e.get("scopeName"), e.get("operator"), e.get("values") or []
            if name not in QUOTA_SCOPES:
                invalid(errs, ep + ".scopeName", name or "", "unsupported scope")
            if name in ("BestEffort", "NotBestEffort", "Terminating", "NotTerminating",
                        "CrossNamespacePodAffinity") and op != "Exists":
                invalid(errs, ep + ".operator", op or "",
                        "must be 'Exists' when scope is any of ResourceQuotaScopeTerminating, "
                        "ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, "
                        "ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity")
            if op in ("In", "NotIn"):
                if not vals:
                    required(errs, ep + ".values",
                             "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector")
            elif op in ("Exists", "DoesNotExist"):
                if vals:
                    invalid(errs, ep + ".values", GoRaw(go_string_slice(vals)),
                            "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector")
            else:
                invalid(errs, ep + ".operator", op or "", "not a valid selector operator")
    status = rq.get("status")
    if isinstance(status, dict):
        r.resource_list(errs, status.get("hard"), "status.hard", r.quota_resource_name)
        r.resource_list(errs, status.get("used"), "status.used", r.quota_resource_name)


def validate_resource_quota_update(errs: Errs, new: dict, old: dict) -> None:
    ns = set((new.get("spec") or {}).get("scopes") or [])
    os_ = set((old.get("spec") or {}).get("scopes") or [])
    if ns != os_:
        scopes = (new.get("spec") or {}).get("scopes") or []
        invalid(errs, "spec.scopes", GoRaw("[]core.ResourceQuotaScope{" + ", ".join(
            go_value(x) for x in scopes) + "}"), IMMUTABLE)


def validate_limit_range(errs: Errs, lr: dict) -> None:
    spec = as_dict(errs, lr.get("spec"), "spec")
    types: set = set()
    for i, lim in enumerate(as_list(errs, spec.get("limits"), "spec.limits")):
        ip = f"spec.limits[{i}]"
        lim = as_dict(errs, lim, ip)
        t = lim.get("type") or ""
        msgs = n.is_qualified_name(t)
        for m in msgs:
            invalid(errs, ip + ".type", t, m)
        if not msgs and "/" not in t and t not in ("Pod", "Container", "PersistentVolumeClaim"):
            invalid(errs, ip + ".type", t, "must be a standard limit type or fully qualified")
        if t in types:
            duplicate(errs, ip + ".type", t)
        types.add(t)
        name_fn = r.container_resource_name if t in ("Pod", "Container") else r.resource_name
        mx = r.resource_list(errs, lim.get("max"), ip + ".max", name_fn)
        mn = r.resource_list(errs, lim.get("min"), ip + ".min", name_fn)
        dflt: dict[str, Fraction] = {}
        dreq: dict[str, Fraction] = {}
        if t == "Pod":
            if lim.get("default"):
                forbidden(errs, ip + ".default", "may not be specified when `type` is 'Pod'")
            if lim.get("defaultRequest"):
                forbidden(errs, ip + ".defaultRequest", "may not be specified when `type` is 'Pod'")
        else:
            dflt = r.resource_list(errs, lim.get("default"), ip + ".default", name_fn)
            dreq = r.resource_list(errs, lim.get("defaultRequest"), ip + ".defaultRequest", name_fn)
        if t == "PersistentVolumeClaim" and "storage" not in mn and "storage" not in mx:
            required(errs, ip + ".limits", "either minimum or maximum storage value is required, but neither was provided")
        ratio = r.resource_list(errs, lim.get("maxLimitRequestRatio"), ip + ".maxLimitRequestRatio", name_fn)
        q = r.qstr
        for k in sorted(set(mx) | set(mn) | set(dflt) | set(dreq) | set(ratio)):
            def s(field):
                return Stringer(q((lim.get(field) or {}).get(k)))
            if k in mn and k in mx and mn[k] > mx[k]:
                invalid(errs, f"{ip}.min[{k}]", s("min"), f"min value {s('min')} is greater than max value {s('max')}")
            if k in dreq and k in mn and mn[k] > dreq[k]:
                invalid(errs, f"{ip}.defaultRequest[{k}]", s("defaultRequest"),
                        f"min value {s('min')} is greater than default request value {s('defaultRequest')}")
            if k in dreq and k in mx and dreq[k] > mx[k]:
                invalid(errs, f"{ip}.defaultRequest[{k}]", s("defaultRequest"),
                        f"default request value {s('defaultRequest')} is greater than max value {s('max')}")
            if k in dreq and k in dflt and dreq[k] > dflt[k]:
                invalid(errs, f"{ip}.defaultRequest[{k}]", s("defaultRequest"),
                        f"default request value {s('defaultRequest')} is greater than default limit value {s('default')}")
            if k in dflt and k in mn and mn[k] > dflt[k]:
                invalid(errs, f"{ip}.default[{k}]", s("min"), f"min value {s('min')} is greater than default value {s('default')}")
            if k in dflt and k in mx and dflt[k] > mx[k]:
                invalid(errs, f"{ip}.default[{k}]", s("max"), f"default value {s('default')} is greater than max value {s('max')}")
            if k in ratio and ratio[k] < 1:
                invalid(errs, f"{ip}.maxLimitRequestRatio[{k}]", s("maxLimitRequestRatio"),
                        f"ratio {s('maxLimitRequestRatio')} is less than 1")
            if k in ratio and k in mn and k in mx and mn[k] > 0:
                limit = mx[k] / mn[k]
                if ratio[k] > limit:
                    invalid(errs, f"{ip}.maxLimitRequestRatio[{k}]", s("maxLimitRequestRatio"),
                            f"ratio {s('maxLimitRequestRatio')} is greater than max/min = {float(limit):f}")
            if not r.overcommit_allowed(k) and k in dflt and k in dreq and dflt[k] != dreq[k]:
                invalid(errs, f"{ip}.defaultRequest[{k}]", s("defaultRequest"),
                        f"default value {s('default')} must equal to defaultRequest value {s('defaultRequest')} in {k}")


# ---- PersistentVolumeClaim -------------------------------------------------------------------------

ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")


def validate_pvc_spec(errs: Errs, spec: dict, path: str) -> None:
    modes = as_list(errs, spec.get("accessModes"), path + ".accessModes")
    if not modes:
        required(errs, path + ".accessModes", "at least 1 access mode is required")
    if spec.get("selector") is not None:
        validate_label_selector(errs, spec["selector"], path + ".selector")
    rwop = other = False
    for m in modes:
        if m not in ACCESS_MODES:
            not_supported(errs, path + ".accessModes", m, ACCESS_MODES)
        if m == "ReadWriteOncePod":
            rwop = True
        elif m in ACCESS_MODES:
            other = True
    if rwop and other:
        forbidden(errs, path + ".accessModes", "may not use ReadWriteOncePod with other access modes")
    res = as_dict(errs, spec.get("resources"), path + ".resources")
    reqs = res.get("requests") if isinstance(res.get("requests"), dict) else {}
    sp = path + ".resources[storage]"
    if "storage" not in reqs:
        required(errs, sp)
    else:
        v = r.quantity(errs, reqs["storage"], sp)
        if v is not None and v <= 0:
            invalid(errs, sp, r.qstr(reqs["storage"]), "must be greater than zero")
    scn = spec.get("storageClassName")
    if scn:
        for m in n.name_is_dns_subdomain(scn if isinstance(scn, str) else ""):
            invalid(errs, path + ".storageClassName", scn, m)
    vm = spec.get("volumeMode")
    if vm is not None and vm not in ("Block", "Filesystem"):
        not_supported(errs, path + ".volumeMode", vm, ("Block", "Filesystem"))
    for key in ("dataSource", "dataSourceRef"):
        ds = spec.get(key)
        if ds is None:
            continue
        dp = f"{path}.{key}"
        ds = as_dict(errs, ds, dp)
        if not ds.get("name"):
            required(errs, dp + ".name")
        if not ds.get("kind"):
            required(errs, dp + ".kind")
        group = ds.get("apiGroup") or ""
        if not group and ds.get("kind") != "PersistentVolumeClaim":
            invalid(errs, dp, ds.get("kind") or "", "must be 'PersistentVolumeClaim' when referencing the default apiGroup")
        if group:
            for m in n.is_dns1123_subdomain(group):
                invalid(errs, dp + ".apiGroup", group, m)
    vac = spec.get("volumeAttributesClassName")
    if vac:
        for m in n.name_is_dns_subdomain(vac if isinstance(vac, str) else ""):
            invalid(errs, path + ".volumeAttributesClassName", vac, m)


def validate_pvc(errs: Errs, pvc: dict) -> None:
    validate_pvc_spec(errs, as_dict(errs, pvc.get("spec"), "spec"), "spec")


def validate_pvc_update(errs: Errs, new: dict, old: dict) -> None:
    import copy
    ns = copy.deepcopy(new.get("spec") or {})
    os_ = copy.deepcopy(old.get("spec") or {})
    if not os_.get("volumeName"):
        if "volumeName" in ns:
            os_["volumeName"] = ns["volumeName"]
        else:
            os_.pop("volumeName", None)
    bound = ((new.get("status") or {}).get("phase") == "Bound")
    if bound:
        nreq = (ns.get("resources") or {}).get("requests")
        if isinstance(nreq, dict):
            oreq = (os_.get("resources") or {}).get("requests") or {}
            if "storage" in oreq:
                nreq["storage"] = oreq["storage"]
            else:
                nreq.pop("storage", None)
        if ns.get("volumeAttributesClassName") is not None:
            if "volumeAttributesClassName" in os_:
                ns["volumeAttributesClassName"] = os_["volumeAttributesClassName"]
            else:
                ns.pop("volumeAttributesClassName")
    if ns != os_:
        from .pod import spec_diff
        forbidden(errs, "spec", "spec is immutable after creation except resources.requests and "
                  "volumeAttributesClassName for bound claims\n" + spec_diff(os_, ns, "core.PersistentVolumeClaimSpec"))
    try:
        old_size = r.parse_quantity((((old.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage", 0))
        new_size = r.parse_quantity((((new.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage", 0))
        status_size = r.parse_quantity(((old.get("status") or {}).get("capacity") or {}).get("storage", 0))
    except ValueError:
        return
    if new_size < old_size and new_size <= status_size:
        forbidden(errs, "spec.resources.requests.storage", "field can not be less than status.capacity")
    if (new.get("spec") or {}).get("volumeMode") != (old.get("spec") or {}).get("volumeMode"):
        immutable(errs, "volumeMode", (new.get("spec") or {}).get("volumeMode"))


# ---- Event (core/v1) ---------------------------------------------------------------------------------

def validate_event(errs: Errs, ev: dict, *, strict: bool = False) -> None:
    """legacyValidateEvent; with ``strict`` also the events.k8s.io/v1 creation rules."""
    meta = ev.get("metadata") if isinstance(ev.get("metadata"), dict) else {}
    ns = meta.get("namespace") or ""
    involved = ev.get("involvedObject") if "involvedObject" in ev else ev.get("regarding")
    involved = involved if isinstance(involved, dict) else {}
    ins = involved.get("namespace") or ""
    event_time = ev.get("eventTime")
    controller_field = "reportingComponent" if not strict else "reportingController"
    controller = ev.get("reportingComponent", ev.get("reportingController")) or ""
    message = ev.get("message", ev.get("note")) or ""
    if not event_time:
        if not ins:
            if ns not in ("", "default"):
                invalid(errs, "involvedObject.namespace", ins, "does not match event.namespace")
        elif ns != ins:
            invalid(errs, "involvedObject.namespace", ins, "does not match event.namespace")
    else:
        if not ins and ns not in ("default", "kube-system"):
            invalid(errs, "involvedObject.namespace", ins, "does not match event.namespace")
        if not controller:
            required(errs, controller_field)
        for m in n.is_qualified_name(controller):
            invalid(errs, controller_field, controller, m)
        inst = ev.get("reportingInstance") or ""
        if not inst:
            required(errs, "reportingInstance")
        if len(inst) > 128:
            invalid(errs, "reportingInstance", "", "can have at most 128 characters")
        action = ev.get("action") or ""
        if not action:
            required(errs, "action")
        if len(action) > 128:
            invalid(errs, "action", "", "can have at most 128 characters")
        reason = ev.get("reason") or ""
        if not reason:
            required(errs, "reason")
        if len(reason) > 128:
            invalid(errs, "reason", "", "can have at most 128 characters")
        if len(message) > 1024:
            invalid(errs, "message", "", "can have at most 1024 characters")
    for m in n.is_dns1123_subdomain(ns):
        invalid(errs, "namespace", ns, m)
    if strict:
        if not event_time:
            required(errs, "eventTime")
        t = ev.get("type") or ""
        if t not in ("Normal", "Warning"):
            invalid(errs, "type", "", f"has invalid value: {t}")
        for src, dst in (("deprecatedFirstTimestamp", "firstTimestamp"), ("deprecatedLastTimestamp", "lastTimestamp"),
                         ("deprecatedCount", "count"), ("deprecatedSource", "source")):
            if ev.get(src):
                invalid(errs, dst, "", "needs to be unset")
        series = ev.get("series")
        if isinstance(series, dict):
            if not is_int(series.get("count")) or series["count"] < 2:
                invalid(errs, "series.count", "", "should be at least 2")
            if not series.get("lastObservedTime"):
                required(errs, "series.lastObservedTime")


# ---- Node ------------------------------------------------------------------------------------------

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def validate_node(errs: Errs, node: dict) -> None:
    spec = as_dict(errs, node.get("spec"), "spec")
    seen: set = set()
    for i, t in enumerate(as_list(errs, spec.get("taints"), "metadata.taints")):
        tp = f"metadata.taints[{i}]"
        t = as_dict(errs, t, tp)
        key = t.get("key") or ""
        for m in n.is_qualified_name(key):
            invalid(errs, tp + ".key", key, m)
        val = t.get("value") or ""
        msgs = n.is_label_value(val) if isinstance(val, str) else ["must be a string"]
        if msgs:
            invalid(errs, tp + ".value", val, ";".join(msgs))
        eff = t.get("effect") or ""
        if not eff:
            required(errs, tp + ".effect")
        elif eff not in TAINT_EFFECTS:
            not_supported(errs, tp + ".effect", eff, TAINT_EFFECTS)
        if (eff, key) in seen:
            errs.append({"reason": "FieldValueDuplicate", "field": tp, "message":
                         f'Duplicate value: core.Taint{{Key:"{key}", Value:"{val}", Effect:"{eff}", '
                         f'TimeAdded:<nil>}}: taints must be unique by key and effect pair'})
        seen.add((eff, key))
    cidrs = as_list(errs, spec.get("podCIDRs"), "spec.podCIDRs")
    for i, c in enumerate(cidrs):
        for m in n.is_valid_cidr(c if isinstance(c, str) else ""):
            invalid(errs, f"spec.podCIDRs[{i}]", c, m)
    status = node.get("status")
    if isinstance(status, dict):
        for key in ("capacity", "allocatable"):
            rl = status.get(key)
            if isinstance(rl, dict):
                for name, raw in rl.items():
                    v = r.quantity(errs, raw, f"status.{key}.{name}")
                    if v is not None:
                        r.quantity_value(errs, name, raw, v, f"status.{key}.{name}")


def validate_node_update(errs: Errs, new: dict, old: dict) -> None:
    ns = new.get("spec") if isinstance(new.get("spec"), dict) else {}
    os_ = old.get("spec") if isinstance(old.get("spec"), dict) else {}
    oc = os_.get("podCIDRs") or []
    if oc and (ns.get("podCIDRs") or []) != oc:
        forbidden(errs, "spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid')
    if os_.get("providerID") and os_.get("providerID") != ns.get("providerID"):
        forbidden(errs, "spec.providerID", 'node updates may not change providerID except from "" to valid')
    if ns.get("externalID") != os_.get("externalID"):
        forbidden(errs, "spec.externalID", "may not be updated")


__all__ = ["validate_config_map", "validate_config_map_update",
           "validate_secret", "validate_secret_update", "validate_namespace", "validate_endpoints",
           "validate_resource_quota", "validate_resource_quota_update", "validate_limit_range",
           "validate_pvc", "validate_pvc_spec", "validate_pvc_update", "validate_event", "validate_node",
           "validate_node_update"]
