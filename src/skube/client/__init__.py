"""The one way skube components talk to an API server (any conformant one):
kubeconfig loading, an async REST/watch client, informers and work queues.

    from skube.client import Client, Informer, WorkQueue, resource

    async with Client.from_kubeconfig(path, component="my-controller") as c:
        cms = Informer(c, resource("v1", "configmaps", kind="ConfigMap"))
        cms.on_add(lambda obj: queue.add(object_key(obj)))
        cms.start()
        await cms.wait_synced()
"""
from .api import PATCH_TYPES, ApiError, Client, Resource, WatchStream, resource
from .config import (ClientConfig, ConfigError, ExecCredential, ExecProvider, load_incluster_config,
                     load_kubeconfig)
from .informer import (Informer, InformerView, SharedInformer, index_by_namespace, index_by_node_name,
                       index_by_owner_uid, object_key, shared_informer, split_key)
from .workqueue import (BucketRateLimiter, ExponentialFailureRateLimiter, MaxOfRateLimiter, WorkQueue,
                        default_controller_rate_limiter, run_workers)

__all__ = [
    "ApiError", "Client", "Resource", "WatchStream", "resource", "PATCH_TYPES",
    "ClientConfig", "ConfigError", "ExecCredential", "ExecProvider", "load_kubeconfig",
    "load_incluster_config",
    "Informer", "InformerView", "SharedInformer", "shared_informer", "object_key", "split_key", "index_by_namespace", "index_by_node_name",
    "index_by_owner_uid",
    "WorkQueue", "run_workers", "ExponentialFailureRateLimiter", "BucketRateLimiter",
    "MaxOfRateLimiter", "default_controller_rate_limiter",
]
