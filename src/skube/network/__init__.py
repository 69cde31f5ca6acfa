"""The standalone cluster's network, run on the host by `skube up`: the pod network's
settings (:mod:`.config`), a service proxy programming iptables as kube-proxy does
(:mod:`.proxy`), the cluster DNS server (:mod:`.dns`) and NetworkPolicy enforcement
(:mod:`.policy`). Each is an ordinary API client (skube.client) started by
:func:`skube.network.agent.run_network_agent`."""
