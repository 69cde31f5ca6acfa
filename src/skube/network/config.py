"""The standalone cluster's network settings, shared by the API server (Service IP and
node-port allocation), the node providers (pod CIDR, bridge, resolv.conf) and the host
network agent (proxy, DNS, policy).

Read from the ``network:`` block of the provider config (``skube up --provider-config``)::

    network:
      cidr: 10.42.0.0/16          # pod CIDR (one CNI bridge for every node on this host)
      bridge: skube0
      name: skube                 # CNI network name; also names this cluster's iptables chains
      serviceCIDR: 10.43.0.0/16   # ClusterIPs; the API server takes .1, cluster DNS .10
      nodePortRange: 30000-32767
      clusterDomain: cluster.local
      clusterDNS: [10.43.0.10]    # nameservers written into pods' resolv.conf
      upstreamDNS: []             # where cluster DNS forwards other names (none: refused)
      defaultRoute: false         # egress: pods get a default route and masquerade
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field


@dataclass
class ClusterNetwork:
    pod_cidr: str = "10.42.0.0/16"
    bridge: str = "skube0"
    name: str = "skube"
    service_cidr: str = "10.43.0.0/16"
    node_port_range: tuple[int, int] = (30000, 32767)
    cluster_domain: str = "cluster.local"
    cluster_dns: list[str] = field(default_factory=list)
    upstream_dns: list[str] = field(default_factory=list)
    egress: bool = False

    def __post_init__(self) -> None:
        if not self.cluster_dns:
            self.cluster_dns = [self.dns_service_ip]

    @classmethod
    def from_doc(cls, doc: dict | None) -> "ClusterNetwork":
        """Settings from a provider config's ``network:`` block (every key optional);
        ValueError names the key that is wrong."""
        d = doc or {}
        try:
            pod = str(ipaddress.ip_network(d.get("cidr") or "10.42.0.0/16"))
            svc = str(ipaddress.ip_network(d.get("serviceCIDR") or "10.43.0.0/16"))
        except ValueError as e:
            raise ValueError(f"network: {e}") from None
        lo, hi = _port_range(d.get("nodePortRange") or "30000-32767")
        return cls(pod_cidr=pod, bridge=d.get("bridge", "skube0"), name=d.get("name", "skube"),
                   service_cidr=svc, node_port_range=(lo, hi),
                   cluster_domain=d.get("clusterDomain", "cluster.local"),
                   cluster_dns=list(d.get("clusterDNS") or []),
                   upstream_dns=list(d.get("upstreamDNS") or []),
                   egress=bool(d.get("defaultRoute", False)))

    @property
    def api_service_ip(self) -> str:
        """The `kubernetes` Service's ClusterIP: the first address of the service CIDR."""
        return str(ipaddress.ip_network(self.service_cidr)[1])

    @property
    def dns_service_ip(self) -> str:
        """kube-system/kube-dns's ClusterIP: the tenth address, as kubeadm and k3s use."""
        return str(ipaddress.ip_network(self.service_cidr)[10])

    @property
    def gateway_ip(self) -> str:
        """The bridge's address on the pod network (the host as pods see it)."""
        return str(ipaddress.ip_network(self.pod_cidr)[1])

    @property
    def chain_prefix(self) -> str:
        """Prefix of this cluster's iptables chains (several clusters may share a host)."""
        return "SKUBE-" + "".join(c for c in self.name.upper() if c.isalnum())[:10]

    def provider_network(self) -> dict:
        """The ``network:`` block a local provider on this cluster gets."""
        return {"cidr": self.pod_cidr, "bridge": self.bridge, "name": self.name,
                "serviceCIDR": self.service_cidr, "clusterDNS": list(self.cluster_dns),
                "clusterDomain": self.cluster_domain, "defaultRoute": self.egress}


def _port_range(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in str(text).split("-", 1))
    except ValueError:
        raise ValueError(f"network.nodePortRange: {text!r} is not a range like 30000-32767") from None
    if not 1 <= lo <= hi <= 65535:
        raise ValueError(f"network.nodePortRange: {text!r} is not within 1-65535")
    return lo, hi
