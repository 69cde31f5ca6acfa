"""Each node's slice of the one pod CIDR every node on this host shares (one CNI bridge):
the virtual node takes the lower half, node-pool nodes numbered blocks of the upper half
(256 addresses each, smaller when the CIDR is small), so that no node's host-local IPAM
ever hands out, or releases, another node's addresses."""
from __future__ import annotations

import ipaddress

MAX_BLOCK = 256
MIN_BLOCK = 16


def _layout(cidr: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int, int]:
    net = ipaddress.ip_network(cidr)
    half = net.num_addresses // 2
    block = min(MAX_BLOCK, max(MIN_BLOCK, half // 16))
    return net, half, block


def slot_count(cidr: str) -> int:
    """How many node-pool nodes the CIDR has room for."""
    _, half, block = _layout(cidr)
    return half // block if half >= block else 0


def virtual_range(cidr: str) -> tuple[str, str]:
    """(rangeStart, rangeEnd) of the virtual node: the lower half, gateway excluded."""
    net, half, _ = _layout(cidr)
    return str(net[2]), str(net[half - 1])


def pool_range(cidr: str, slot: int) -> tuple[str, str]:
    """(rangeStart, rangeEnd) of the node in ``slot`` (1-based)."""
    net, half, block = _layout(cidr)
    if not 1 <= slot <= slot_count(cidr):
        raise ValueError(f"pod CIDR {cidr} has room for {slot_count(cidr)} node-pool nodes, "
                         f"not a node in slot {slot}; use a larger network.cidr")
    start = half + (slot - 1) * block
    end = min(start + block - 1, net.num_addresses - 2)   # never the broadcast address
    return str(net[start]), str(net[end])


__all__ = ["slot_count", "virtual_range", "pool_range"]
