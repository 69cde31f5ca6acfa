"""The virtual kubelet: node registration and lease (:mod:`.node`), pod sync
(:mod:`.pods`), the kubelet HTTPS API (:mod:`.kubelet`), wired per node by
:mod:`.agent`. Everything cloud- or runtime-specific sits behind a Provider."""
from .agent import AgentConfig, VirtualNode, run_virtual_node

__all__ = ["AgentConfig", "VirtualNode", "run_virtual_node"]
