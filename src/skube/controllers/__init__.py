"""Controllers (kube-controller-manager's loops), speaking to the API server only
through :mod:`skube.client`."""
from .garbagecollector import GarbageCollector
from .manager import CONTROLLERS, ControllerManager, run_controllers
from .namespace import NamespaceController

__all__ = ["ControllerManager", "run_controllers", "CONTROLLERS", "GarbageCollector",
           "NamespaceController"]
