"""networking.k8s.io/v1 NetworkPolicy, with upstream's rules and messages
(pkg/apis/networking/validation: ports, peers, ipBlock, policyTypes)."""
from __future__ import annotations

import ipaddress
from typing import Any

from . import names as n
from ._field import Errs, forbidden, invalid, not_supported, required
from ._util import as_dict, as_list, is_int
from .meta import validate_label_selector

PROTOCOLS = ("TCP", "UDP", "SCTP")
POLICY_TYPES = ("Ingress", "Egress")


def _port(errs: Errs, port: Any, path: str) -> None:
    port = as_dict(errs, port, path)
    proto = port.get("protocol")
    if proto is not None and proto not in PROTOCOLS:
        not_supported(errs, path + ".protocol", proto, PROTOCOLS)
    p, end = port.get("port"), port.get("endPort")
    if p is None:
        if end is not None:
            invalid(errs, path + ".endPort", end, "may not be specified when `port` is not specified")
    elif is_int(p):
        for m in n.is_valid_port_num(p):
            invalid(errs, path + ".port", p, m)
        if is_int(end):
            if end < p:
                invalid(errs, path + ".endPort", p, "must be greater than or equal to `port`")
            for m in n.is_valid_port_num(end):
                invalid(errs, path + ".endPort", end, m)
    else:
        if end is not None:
            invalid(errs, path + ".endPort", end, "may not be specified when `port` is non-numeric")
        for m in n.is_valid_port_name(str(p)):
            invalid(errs, path + ".port", p, m)


def _cidr(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if n.is_valid_cidr(value):
        return None
    return ipaddress.ip_network(value, strict=False)


def _ip_block(errs: Errs, block: Any, path: str) -> None:
    block = as_dict(errs, block, path)
    cidr = block.get("cidr") or ""
    if not cidr:
        required(errs, path + ".cidr", "")
        return
    net = _cidr(cidr)
    if net is None:
        invalid(errs, path + ".cidr", cidr, n.CIDR_MSG)
        return
    for i, ex in enumerate(as_list(errs, block.get("except"), path + ".except")):
        ep = f"{path}.except[{i}]"
        exnet = _cidr(ex) if isinstance(ex, str) else None
        if exnet is None:
            invalid(errs, ep, ex, n.CIDR_MSG)
            continue
        if exnet.version != net.version or not net.supernet_of(exnet) or exnet.prefixlen <= net.prefixlen:
            invalid(errs, ep, ex, "must be a strict subset of `cidr`")


def _peer(errs: Errs, peer: Any, path: str) -> None:
    peer = as_dict(errs, peer, path)
    count = 0
    for key in ("podSelector", "namespaceSelector"):
        if peer.get(key) is not None:
            count += 1
            validate_label_selector(errs, peer[key], f"{path}.{key}")
    if peer.get("ipBlock") is not None:
        count += 1
        _ip_block(errs, peer["ipBlock"], path + ".ipBlock")
    if count == 0:
        required(errs, path, "must specify a peer")
    elif count > 1 and peer.get("ipBlock") is not None:
        forbidden(errs, path, "may not specify both ipBlock and another peer")


def validate_network_policy(errs: Errs, obj: dict) -> None:
    spec = as_dict(errs, obj.get("spec"), "spec")
    validate_label_selector(errs, spec.get("podSelector"), "spec.podSelector")
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(as_list(errs, spec.get(direction), f"spec.{direction}")):
            rp = f"spec.{direction}[{i}]"
            rule = as_dict(errs, rule, rp)
            for j, port in enumerate(as_list(errs, rule.get("ports"), rp + ".ports")):
                _port(errs, port, f"{rp}.ports[{j}]")
            for j, peer in enumerate(as_list(errs, rule.get(peers), f"{rp}.{peers}")):
                _peer(errs, peer, f"{rp}.{peers}[{j}]")
    types = as_list(errs, spec.get("policyTypes"), "spec.policyTypes")
    if len(types) > len(POLICY_TYPES):
        invalid(errs, "spec.policyTypes", types, "may not specify more than two policyTypes")
        return
    for i, t in enumerate(types):
        if t not in POLICY_TYPES:
            not_supported(errs, f"spec.policyTypes[{i}]", t, POLICY_TYPES)
