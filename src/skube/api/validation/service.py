"""Service rules (ValidateService and ValidateServiceUpdate)."""
from __future__ import annotations

from typing import Any

from . import names as n
from ._field import (Errs, GoRaw, duplicate, forbidden, go_string_slice, go_value, invalid, not_supported,
                     required, type_invalid)
from ._util import as_dict, as_int, as_list, as_str, is_int
from .meta import validate_labels

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
PROTOCOLS = ("SCTP", "TCP", "UDP")


def _cluster_ips(spec: dict) -> list:
    ips = spec.get("clusterIPs")
    if isinstance(ips, list):
        return ips
    return []


def _is_headless(spec: dict) -> bool:
    ips = _cluster_ips(spec)
    return len(ips) == 1 and ips[0] == "None"


def _externally_accessible(spec: dict) -> bool:
    t = spec.get("type")
    return t in ("LoadBalancer", "NodePort") or (t == "ClusterIP" and bool(spec.get("externalIPs")))


def _go_service_port(protocol: Any, port: Any) -> GoRaw:
    return GoRaw('core.ServicePort{Name:"", Protocol:%s, AppProtocol:(*string)(nil), Port:%s, '
                 'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'
                 % (go_value(protocol or ""), port if is_int(port) else 0))


def non_special_ip(errs: Errs, value: str, path: str) -> None:
    ip = n.parse_ip_sloppy(value)
    if ip is None:
        invalid(errs, path, value, "must be a valid IP address")
        return
    if ip.is_unspecified:
        invalid(errs, path, value, f"may not be unspecified ({value})")
    if ip.is_loopback:
        invalid(errs, path, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)")
    if ip.is_link_local:
        invalid(errs, path, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)")
    if ip.is_multicast and (str(ip).startswith("224.0.0.") or str(ip).lower().startswith("ff02:")):
        invalid(errs, path, value, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")


def validate_service(errs: Errs, svc: dict) -> None:
    spec = as_dict(errs, svc.get("spec"), "spec")
    meta = svc.get("metadata") if isinstance(svc.get("metadata"), dict) else {}
    ann = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
    hints = ann.get("service.kubernetes.io/topology-aware-hints")
    mode = ann.get("service.kubernetes.io/topology-mode")
    if hints is not None and mode is not None and hints != mode:
        invalid(errs, "metadata.annotations[service.kubernetes.io/topology-mode]", mode,
                "must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified")
    stype = spec.get("type") or ""
    ports = as_list(errs, spec.get("ports"), "spec.ports")
    headless = _is_headless(spec)
    if not ports and not headless and stype != "ExternalName":
        required(errs, "spec.ports")
    ips = _cluster_ips(spec)
    if stype == "LoadBalancer" and headless:
        invalid(errs, "spec.clusterIPs[0]", ips[0], "may not be set to 'None' for LoadBalancer services")
    elif stype == "NodePort" and headless:
        invalid(errs, "spec.clusterIPs[0]", ips[0], "may not be set to 'None' for NodePort services")
    elif stype == "ExternalName":
        if ips:
            forbidden(errs, "spec.clusterIPs", "may not be set for ExternalName services")
        if spec.get("ipFamilies"):
            forbidden(errs, "spec.ipFamilies", "may not be set for ExternalName services")
        if spec.get("ipFamilyPolicy") is not None:
            forbidden(errs, "spec.ipFamilyPolicy", "may not be set for ExternalName services")
        cname = as_str(errs, spec.get("externalName"), "spec.externalName")
        cname = cname[:-1] if cname.endswith(".") else cname
        if cname:
            for m in n.is_dns1123_subdomain(cname):
                invalid(errs, "spec.externalName", cname, m)
        else:
            required(errs, "spec.externalName")
    names: set[str] = set()
    for i, p in enumerate(ports):
        pp = f"spec.ports[{i}]"
        p = as_dict(errs, p, pp)
        name = p.get("name") or ""
        if len(ports) > 1 and not name:
            required(errs, pp + ".name")
        elif name:
            for m in n.is_dns1123_label(name):
                invalid(errs, pp + ".name", name, m)
            if name in names:
                duplicate(errs, pp + ".name", name)
            else:
                names.add(name)
        port = as_int(errs, p.get("port"), pp + ".port")
        for m in n.is_valid_port_num(port or 0):
            invalid(errs, pp + ".port", port or 0, m)
        proto = p.get("protocol")
        if not proto:
            required(errs, pp + ".protocol")
        elif proto not in PROTOCOLS:
            not_supported(errs, pp + ".protocol", proto, PROTOCOLS)
        tp = p.get("targetPort")
        if is_int(tp):
            for m in n.is_valid_port_num(tp):
                invalid(errs, pp + ".targetPort", tp, m)
        elif isinstance(tp, str):
            for m in n.is_valid_port_name(tp):
                invalid(errs, pp + ".targetPort", tp, m)
        elif tp is None:
            for m in n.is_valid_port_num(0):
                invalid(errs, pp + ".targetPort", 0, m)
        else:
            type_invalid(errs, pp + ".targetPort", tp, "integer or string")
        ap = p.get("appProtocol")
        if ap is not None:
            for m in n.is_qualified_name(ap if isinstance(ap, str) else ""):
                invalid(errs, pp + ".appProtocol", ap, m)
    if spec.get("selector") is not None:
        validate_labels(errs, spec["selector"], "spec.selector")
    aff = spec.get("sessionAffinity") or ""
    if not aff:
        required(errs, "spec.sessionAffinity")
    elif aff not in ("ClientIP", "None"):
        not_supported(errs, "spec.sessionAffinity", aff, ("ClientIP", "None"))
    cfg = spec.get("sessionAffinityConfig")
    if aff == "ClientIP":
        detail = "when session affinity type is ClientIP"
        cip = cfg.get("clientIP") if isinstance(cfg, dict) else None
        if cfg is None:
            required(errs, "spec.sessionAffinityConfig", detail)
        elif cip is None:
            required(errs, "spec.sessionAffinityConfig.clientIP", detail)
        elif not isinstance(cip, dict) or cip.get("timeoutSeconds") is None:
            required(errs, "spec.sessionAffinityConfig.clientIP.timeoutSeconds", detail)
        else:
            t = cip["timeoutSeconds"]
            if not is_int(t) or t <= 0 or t > 86400:
                invalid(errs, "spec.sessionAffinityConfig.clientIP.timeoutSeconds", t,
                        "must be greater than 0 and less than 86400")
    elif aff == "None" and cfg is not None:
        forbidden(errs, "spec.sessionAffinityConfig", "must not be set when session affinity is None")
    _cluster_ip_fields(errs, spec, stype)
    for i, ip in enumerate(as_list(errs, spec.get("externalIPs"), "spec.externalIPs")):
        ip = ip if isinstance(ip, str) else ""
        msgs = n.is_valid_ip(ip)
        for m in msgs:
            invalid(errs, f"spec.externalIPs[{i}]", ip, m)
        if not msgs:
            non_special_ip(errs, ip, f"spec.externalIPs[{i}]")
    if not stype:
        required(errs, "spec.type")
    elif stype not in SERVICE_TYPES:
        not_supported(errs, "spec.type", stype, SERVICE_TYPES)
    if stype == "ClusterIP":
        for i, p in enumerate(ports):
            if isinstance(p, dict) and p.get("nodePort"):
                forbidden(errs, f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'")
    seen_np: set = set()
    seen: set = set()
    for i, p in enumerate(ports):
        if not isinstance(p, dict):
            continue
        np_ = p.get("nodePort")
        if np_:
            key = (p.get("protocol"), np_)
            if key in seen_np:
                duplicate(errs, f"spec.ports[{i}].nodePort", np_)
            seen_np.add(key)
        key = (p.get("protocol"), p.get("port"))
        if key in seen:
            duplicate(errs, f"spec.ports[{i}]", _go_service_port(*key))
        seen.add(key)
    ranges = spec.get("loadBalancerSourceRanges")
    if ranges:
        if stype != "LoadBalancer":
            forbidden(errs, "spec.LoadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'")
        for i, v in enumerate(as_list(errs, ranges, "spec.LoadBalancerSourceRanges")):
            v = v.strip() if isinstance(v, str) else ""
            for m in n.is_valid_cidr(v):
                invalid(errs, f"spec.LoadBalancerSourceRanges[{i}]", v, m)
    if spec.get("allocateLoadBalancerNodePorts") is not None and stype != "LoadBalancer":
        forbidden(errs, "spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'")
    if stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        required(errs, "allocateLoadBalancerNodePorts")
    lbc = spec.get("loadBalancerClass")
    if lbc is not None:
        if stype == "LoadBalancer":
            for m in n.is_qualified_name(lbc if isinstance(lbc, str) else ""):
                invalid(errs, "spec.loadBalancerClass", lbc, m)
        else:
            forbidden(errs, "spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'")
    etp = spec.get("externalTrafficPolicy") or ""
    if not _externally_accessible(spec):
        if etp:
            invalid(errs, "spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services")
    elif not etp:
        required(errs, "spec.externalTrafficPolicy")
    elif etp not in ("Cluster", "Local"):
        not_supported(errs, "spec.externalTrafficPolicy", etp, ("Cluster", "Local"))
    hc = spec.get("healthCheckNodePort") or 0
    if not (stype == "LoadBalancer" and etp == "Local"):
        if hc:
            invalid(errs, "spec.healthCheckNodePort", hc,
                    "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'")
    elif not hc:
        required(errs, "spec.healthCheckNodePort")
    elif is_int(hc):
        for m in n.is_valid_port_num(hc):
            invalid(errs, "spec.healthCheckNodePort", hc, m)
    itp = spec.get("internalTrafficPolicy")
    if itp is None:
        if stype in ("NodePort", "LoadBalancer", "ClusterIP"):
            required(errs, "spec.internalTrafficPolicy")
    elif itp not in ("Cluster", "Local"):
        not_supported(errs, "spec.internalTrafficPolicy", itp, ("Cluster", "Local"))
    td = spec.get("trafficDistribution")
    if td is not None and td not in ("PreferClose", "PreferSameZone", "PreferSameNode"):
        not_supported(errs, "spec.trafficDistribution", td, ("PreferClose", "PreferSameNode", "PreferSameZone"))


def _cluster_ip_fields(errs: Errs, spec: dict, stype: str) -> None:
    if stype == "ExternalName":
        return
    ips = _cluster_ips(spec)
    cip = spec.get("clusterIP") or ""
    if cip:
        if not ips:
            required(errs, "spec.clusterIPs")
        elif ips[0] != cip:
            invalid(errs, "spec.clusterIPs", GoRaw(go_string_slice(ips)), "first value must match `clusterIP`")
    elif ips:
        invalid(errs, "spec.clusterIPs", GoRaw(go_string_slice(ips)), "must be empty when `clusterIP` is not specified")
    fams = as_list(errs, spec.get("ipFamilies"), "spec.ipFamilies")
    seen: set = set()
    for i, f in enumerate(fams):
        if f not in ("IPv4", "IPv6"):
            not_supported(errs, f"spec.ipFamilies[{i}]", f, ("IPv4", "IPv6"))
        if f in seen:
            duplicate(errs, f"spec.ipFamilies[{i}]", f)
        seen.add(f)
    pol = spec.get("ipFamilyPolicy")
    valid_pol = ("PreferDualStack", "RequireDualStack", "SingleStack")
    if pol is not None and pol not in valid_pol:
        not_supported(errs, "spec.ipFamilyPolicy", pol, valid_pol)
    bad = False
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                bad = True
                invalid(errs, "spec.clusterIPs", GoRaw(go_string_slice(ips)), "'None' must be the first and only value")
            continue
        msgs = n.is_valid_ip(ip if isinstance(ip, str) else "")
        for m in msgs:
            invalid(errs, f"spec.clusterIPs[{i}]", ip, m)
        bad = bad or bool(msgs)
    if len(ips) > 2:
        invalid(errs, "spec.clusterIPs", GoRaw(go_string_slice(ips)), "may only hold up to 2 values")
    if bad:
        return
    if len(ips) > 1:
        versions = [n.parse_ip_sloppy(ip).version for ip in ips]
        if len(set(versions)) != len(versions):
            invalid(errs, "spec.clusterIPs", GoRaw(go_string_slice(ips)),
                    "may specify no more than one IP for each IP family")
    if not _is_headless(spec):
        for i, ip in enumerate(ips):
            if i >= len(fams):
                break
            v = n.parse_ip_sloppy(ip).version
            if fams[i] == "IPv4" and v == 6:
                invalid(errs, f"spec.clusterIPs[{i}]", ip, f"expected an IPv4 value as indicated by `ipFamilies[{i}]`")
            if fams[i] == "IPv6" and v != 6:
                invalid(errs, f"spec.clusterIPs[{i}]", ip, f"expected an IPv6 value as indicated by `ipFamilies[{i}]`")


def validate_service_update(errs: Errs, new: dict, old: dict) -> None:
    ns = new.get("spec") if isinstance(new.get("spec"), dict) else {}
    os_ = old.get("spec") if isinstance(old.get("spec"), dict) else {}
    if ns.get("type") != "ExternalName" and os_.get("type") != "ExternalName" \
            and not (_is_headless(ns) and _is_headless(os_)):
        nips, oips = _cluster_ips(ns), _cluster_ips(os_)
        raw = GoRaw(go_string_slice(nips))
        if len(oips) == len(nips):
            for i, ip in enumerate(oips):
                if ip != nips[i]:
                    invalid(errs, f"spec.clusterIPs[{i}]", raw, "may not change once set")
        elif len(oips) > len(nips):
            if not nips:
                invalid(errs, "spec.clusterIPs[0]", raw, "primary clusterIP can not be unset")
            elif oips and nips[0] != oips[0]:
                invalid(errs, "spec.clusterIPs[0]", raw, "may not change once set")
            if len(nips) == 1 and ns.get("ipFamilyPolicy") != "SingleStack":
                invalid(errs, "spec.ipFamilyPolicy", ns.get("ipFamilyPolicy"),
                        "must be set to 'SingleStack' when releasing the secondary clusterIP")
        elif oips and nips[0] != oips[0]:
            invalid(errs, "spec.clusterIPs[0]", raw, "may not change once set")
    if ns.get("type") == "LoadBalancer" and os_.get("type") == "LoadBalancer" \
            and ns.get("loadBalancerClass") != os_.get("loadBalancerClass"):
        invalid(errs, "spec.loadBalancerClass", ns.get("loadBalancerClass"), "may not change once set")
    both_hc = all(s.get("type") == "LoadBalancer" and s.get("externalTrafficPolicy") == "Local" for s in (ns, os_))
    if both_hc and ns.get("healthCheckNodePort") != os_.get("healthCheckNodePort"):
        forbidden(errs, "spec.healthCheckNodePort", "field is immutable")


__all__ = ["validate_service", "validate_service_update", "non_special_ip", "PROTOCOLS"]
