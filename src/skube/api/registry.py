"""The resource registry: every kind the API server serves, built-in or from a CRD.

A ResourceInfo is the single description of a REST resource; discovery, routing,
storage keys, OpenAPI and table printing all read it. Pure data, no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceInfo:
    group: str            # "" for the core group
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # subresource name -> kind it accepts/returns ("status" -> the kind itself)
    subresources: tuple[str, ...] = ()
    # True for resources defined by a CustomResourceDefinition
    custom: bool = False
    # for custom resources: the CRD version's openAPIV3Schema, printer columns, scale paths
    schema: dict | None = field(default=None, compare=False, hash=False)
    printer_columns: tuple = field(default=(), compare=False, hash=False)
    scale: dict | None = field(default=None, compare=False, hash=False)
    # another resource whose objects this one serves in a different shape
    # (events.k8s.io events are stored as core events): "group/plural"
    stored_as: str | None = None

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def group_resource(self) -> str:
        """`pods` or `deployments.apps`: how upstream names a resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def storage_prefix(self) -> str:
        """Key prefix of this resource's objects, independent of version."""
        if self.stored_as:
            return f"/{self.stored_as}/"
        return f"/{self.group or 'core'}/{self.plural}/"

    def key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"{self.storage_prefix()}{namespace}/{name}"
        return f"{self.storage_prefix()}{name}"

    def list_prefix(self, namespace: str | None) -> str:
        if self.namespaced and namespace:
            return f"{self.storage_prefix()}{namespace}/"
        return self.storage_prefix()


def _r(group, version, kind, plural, namespaced=True, short=(), cats=(), sub=(), verbs=ALL_VERBS, singular=None):
    return ResourceInfo(group, version, kind, plural, singular or kind.lower(), namespaced,
                        tuple(short), tuple(cats), tuple(verbs), tuple(sub))


_ALL = ("all",)

BUILTIN: tuple[ResourceInfo, ...] = (
    # core/v1
    _r("", "v1", "Namespace", "namespaces", False, ("ns",), sub=("status", "finalize"),
       verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    _r("", "v1", "Pod", "pods", True, ("po",), _ALL,
       ("status", "binding", "eviction", "log", "exec", "attach", "portforward", "proxy", "ephemeralcontainers", "resize")),
    _r("", "v1", "Binding", "bindings", True, verbs=("create",)),
    _r("", "v1", "Node", "nodes", False, ("no",), sub=("status", "proxy")),
    _r("", "v1", "Service", "services", True, ("svc",), _ALL, ("status", "proxy"),
       verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")),
    _r("", "v1", "Endpoints", "endpoints", True, ("ep",), singular="endpoints"),
    _r("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    _r("", "v1", "Secret", "secrets", True),
    _r("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",), sub=("token",)),
    _r("", "v1", "Event", "events", True, ("ev",)),
    _r("", "v1", "ResourceQuota", "resourcequotas", True, ("quota",), sub=("status",)),
    _r("", "v1", "LimitRange", "limitranges", True, ("limits",)),
    _r("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",), sub=("status",)),
    # apps/v1
    _r("apps", "v1", "Deployment", "deployments", True, ("deploy",), _ALL, ("status", "scale")),
    _r("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), _ALL, ("status", "scale")),
    _r("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), _ALL, ("status", "scale")),
    _r("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), _ALL, ("status",)),
    _r("apps", "v1", "ControllerRevision", "controllerrevisions", True),
    # batch/v1
    _r("batch", "v1", "Job", "jobs", True, (), _ALL, ("status",)),
    _r("batch", "v1", "CronJob", "cronjobs", True, ("cj",), _ALL, ("status",)),
    # others
    _r("coordination.k8s.io", "v1", "Lease", "leases", True),
    _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    ResourceInfo("events.k8s.io", "v1", "Event", "events", "event", True, ("ev",), stored_as="core/events"),
    _r("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    _r("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _r("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ("netpol",)),
    _r("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True, ("pdb",), sub=("status",)),
    _r("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False,
       ("crd", "crds"), sub=("status",)),
    # answered, never stored (apiserver/reviews.py, apiserver/metrics.py)
    _r("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", False, verbs=("create",)),
    _r("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", False, verbs=("create",)),
    _r("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False,
       verbs=("create",)),
    _r("metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", False, verbs=("get", "list")),
    _r("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", True, verbs=("get", "list")),
)

# Group preference order as upstream lists them in /apis.
GROUP_ORDER = ("apps", "events.k8s.io", "batch", "networking.k8s.io", "coordination.k8s.io",
               "discovery.k8s.io", "rbac.authorization.k8s.io", "policy", "apiextensions.k8s.io",
               "authentication.k8s.io", "authorization.k8s.io", "metrics.k8s.io")


class Registry:
    """Lookup of resources by (group, version, plural) and by (group, kind)."""

    def __init__(self, resources: Iterable[ResourceInfo] = BUILTIN):
        self._by_path: dict[tuple[str, str, str], ResourceInfo] = {}
        self._by_kind: dict[tuple[str, str, str], ResourceInfo] = {}
        for r in resources:
            self.add(r)

    def add(self, r: ResourceInfo) -> None:
        self._by_path[(r.group, r.version, r.plural)] = r
        self._by_kind[(r.group, r.version, r.kind)] = r

    def remove_group_resource(self, group: str, plural: str) -> None:
        for key in [k for k in self._by_path if k[0] == group and k[2] == plural]:
            r = self._by_path.pop(key)
            self._by_kind.pop((r.group, r.version, r.kind), None)

    def get(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> ResourceInfo | None:
        return self._by_kind.get((group, version, kind))

    def resources(self) -> list[ResourceInfo]:
        return list(self._by_path.values())

    def groups(self) -> dict[str, list[str]]:
        """group -> versions (preferred first), core group excluded."""
        out: dict[str, list[str]] = {}
        for (g, v, _) in self._by_path:
            if g and v not in out.setdefault(g, []):
                out[g].append(v)
        order = {g: i for i, g in enumerate(GROUP_ORDER)}
        return dict(sorted(out.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))

    def in_group_version(self, group: str, version: str) -> list[ResourceInfo]:
        return [r for (g, v, _), r in self._by_path.items() if g == group and v == version]
