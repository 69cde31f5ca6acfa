"""RBAC authorization (rbac.authorization.k8s.io/v1) evaluated from stored
Roles, ClusterRoles and their bindings, plus the bootstrap policy the server
creates on first start. Members of ``system:masters`` are always allowed."""
from __future__ import annotations

from dataclasses import dataclass

from ..api import errors

_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]

# The bootstrap roles every cluster has (a subset of upstream's, same names and intent).
BOOTSTRAP_CLUSTER_ROLES = {
    "cluster-admin": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                      {"nonResourceURLs": ["*"], "verbs": ["*"]}],
    "admin": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
    "edit": [{"apiGroups": ["", "apps", "batch", "policy", "autoscaling", "discovery.k8s.io",
                            "coordination.k8s.io", "events.k8s.io", "networking.k8s.io"],
              "resources": ["*"], "verbs": _READ + _WRITE}],
    "view": [{"apiGroups": ["", "apps", "batch", "policy", "autoscaling", "discovery.k8s.io",
                            "coordination.k8s.io", "events.k8s.io", "networking.k8s.io"],
              "resources": ["*"], "verbs": _READ}],
    "system:discovery": [{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                                              "/openapi", "/openapi/*", "/readyz", "/version", "/version/"],
                          "verbs": ["get"]}],
    "system:public-info-viewer": [{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version",
                                                       "/version/"], "verbs": ["get"]}],
}
BOOTSTRAP_BINDINGS = {
    "cluster-admin": ("cluster-admin", [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",
                                         "name": "system:masters"}]),
    "system:discovery": ("system:discovery", [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",
                                               "name": "system:authenticated"}]),
    "system:public-info-viewer": ("system:public-info-viewer", [
        {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:authenticated"},
        {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:unauthenticated"}]),
}


@dataclass
class Attributes:
    user: str
    groups: list[str]
    verb: str
    namespace: str | None = None
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""          # for non-resource requests

    @property
    def is_resource(self) -> bool:
        return bool(self.resource)


def _match(values, value: str) -> bool:
    return "*" in values or value in values


def _rule_allows(rule: dict, a: Attributes) -> bool:
    if not _match(rule.get("verbs") or [], a.verb):
        return False
    if not a.is_resource:
        for url in rule.get("nonResourceURLs") or []:
            if url == a.path or url == "*" or (url.endswith("*") and a.path.startswith(url[:-1])):
                return True
        return False
    if not _match(rule.get("apiGroups") or [], a.api_group):
        return False
    res = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    resources = rule.get("resources") or []
    if not ("*" in resources or res in resources or (a.subresource and f"*/{a.subresource}" in resources)
            or (not a.subresource and a.resource in resources)):
        return False
    names = rule.get("resourceNames")
    return not names or a.name in names


def _subject_matches(s: dict, a: Attributes, binding_ns: str | None) -> bool:
    kind = s.get("kind")
    if kind == "User":
        return s.get("name") == a.user
    if kind == "Group":
        return s.get("name") in a.groups
    if kind == "ServiceAccount":
        ns = s.get("namespace") or binding_ns
        return a.user == f"system:serviceaccount:{ns}:{s.get('name')}"
    return False


class RBACAuthorizer:
    def __init__(self, store):
        self.store = store

    def _rules(self, ref: dict, ns: str | None) -> list[dict]:
        kind, name = ref.get("kind"), ref.get("name")
        if kind == "ClusterRole":
            rec = self.store.get(f"/rbac.authorization.k8s.io/clusterroles/{name}")
        elif kind == "Role" and ns:
            rec = self.store.get(f"/rbac.authorization.k8s.io/roles/{ns}/{name}")
        else:
            return []
        return (rec.obj.get("rules") or []) if rec else []

    def allowed(self, a: Attributes) -> bool:
        if "system:masters" in a.groups:
            return True
        for rec in self.store.list("/rbac.authorization.k8s.io/clusterrolebindings/")[0]:
            b = rec.obj
            if any(_subject_matches(s, a, None) for s in b.get("subjects") or []):
                if any(_rule_allows(r, a) for r in self._rules(b.get("roleRef") or {}, None)):
                    return True
        if a.namespace and a.is_resource:
            for rec in self.store.list(f"/rbac.authorization.k8s.io/rolebindings/{a.namespace}/")[0]:
                b = rec.obj
                if any(_subject_matches(s, a, a.namespace) for s in b.get("subjects") or []):
                    if any(_rule_allows(r, a) for r in self._rules(b.get("roleRef") or {}, a.namespace)):
                        return True
        return False

    def check(self, a: Attributes) -> None:
        if self.allowed(a):
            return
        if not a.is_resource:
            raise errors.APIError(403, "Forbidden",
                                  f'forbidden: User "{a.user}" cannot {a.verb} path "{a.path}"', {})
        res = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
        qual = f"{a.resource}.{a.api_group}" if a.api_group else a.resource
        target = f'{qual} "{a.name}"' if a.name else qual
        where = f' in the namespace "{a.namespace}"' if a.namespace else " at the cluster scope"
        raise errors.APIError(
            403, "Forbidden",
            f'{target} is forbidden: User "{a.user}" cannot {a.verb} resource "{res}" in API group '
            f'"{a.api_group}"{where}',
            {k: v for k, v in (("name", a.name), ("group", a.api_group), ("kind", a.resource)) if v})


def request_verb(method: str, has_name: bool, watch: bool) -> str:
    """The RBAC verb of an HTTP request, as upstream's RequestInfo derives it."""
    if watch:
        return "watch"
    return {"GET": "get" if has_name else "list", "HEAD": "get" if has_name else "list",
            "POST": "create", "PUT": "update", "PATCH": "patch",
            "DELETE": "delete" if has_name else "deletecollection"}.get(method, method.lower())
