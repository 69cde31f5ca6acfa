"""Service-account tokens (TokenRequest), bearer authentication and RBAC authorization."""
from __future__ import annotations

import ssl

import httpx
from kubernetes import client


def _token(core, ns: str, name: str, **spec) -> str:
    tr = core.create_namespaced_service_account_token(
        name, ns, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
    assert tr.status.token and tr.status.expiration_timestamp
    return tr.status.token


def test_service_account_token_rbac(cluster):
    api = cluster.client()
    core = client.CoreV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    core.create_namespace({"metadata": {"name": "team"}})
    core.create_namespaced_service_account("team", {"metadata": {"name": "bot"}})
    token = _token(core, "team", "bot")
    ctx = ssl.create_default_context(cafile=str(cluster.data_dir / "pki" / "ca.crt"))
    h = httpx.Client(base_url=cluster.url, verify=ctx, headers={"Authorization": f"Bearer {token}"})
    # authenticated, but not authorized yet
    r = h.get("/api/v1/namespaces/team/pods")
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["reason"] == "Forbidden"
    assert body["message"] == ('pods is forbidden: User "system:serviceaccount:team:bot" cannot list '
                               'resource "pods" in API group "" in the namespace "team"')
    assert h.get("/api").status_code == 200          # discovery is open to authenticated users
    rbac.create_namespaced_role_binding("team", {
        "metadata": {"name": "bot-view"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "team"}]})
    assert h.get("/api/v1/namespaces/team/pods").status_code == 200
    assert h.get("/api/v1/namespaces/default/pods").status_code == 403   # only in its namespace
    r = h.post("/api/v1/namespaces/team/configmaps",
               json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    assert r.status_code == 403                                            # view cannot write
    # a token of a deleted (or re-created) service account no longer authenticates
    core.delete_namespaced_service_account("bot", "team")
    assert h.get("/api/v1/namespaces/team/pods").status_code == 401
    core.create_namespaced_service_account("team", {"metadata": {"name": "bot"}})
    assert h.get("/api/v1/namespaces/team/pods").status_code == 401
    # a tampered token is rejected
    bad = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    r = httpx.get(cluster.url + "/api/v1/namespaces/team/pods", verify=ctx,
                  headers={"Authorization": f"Bearer {bad}"})
    assert r.status_code == 401


def test_token_request_validation(cluster):
    core = client.CoreV1Api(cluster.client())
    core.create_namespaced_service_account("default", {"metadata": {"name": "short"}})
    try:
        _token(core, "default", "short", expirationSeconds=60)
        raise AssertionError("a 60 s token must be refused")
    except client.exceptions.ApiException as e:
        assert e.status == 422
