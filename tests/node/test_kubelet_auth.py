"""Kubelet API authentication and authorization in webhook mode (client certificates,
bearer tokens via TokenReview, SubjectAccessReview on nodes/<subresource>), and the API
server's TokenReview / SubjectAccessReview / SelfSubjectAccessReview that back it."""
from __future__ import annotations

import json

import pytest

from skube.node.kubelet_auth import subresources
from tests.node.conftest import kubelet_client, start_node

NODE = "vn-auth"


@pytest.fixture(scope="module")
def node(cluster, tmp_path_factory):
    n = start_node(cluster, NODE, tmp_path_factory.mktemp("node"))
    yield n
    assert n.stop() == 0, n.log.read_text()


def create(cluster, obj: dict, check: bool = True, client_validation: bool = True):
    # kubectl validates create-only kinds (reviews: no PATCH) against /openapi/v2 in protobuf;
    # without that, invalid bodies reach the server, whose own validation is then checked
    res = cluster.kubectl("create", *(() if client_validation else ("--validate=false",)), "-f", "-",
                          "-o", "json", input=json.dumps(obj), check=check)
    return json.loads(res.stdout) if res.returncode == 0 else res


def sa_token(cluster, name: str) -> str:
    cluster.kubectl("create", "serviceaccount", name)
    return cluster.kubectl("create", "token", name).stdout.strip()


def test_subresource_mapping():
    assert subresources("/stats/summary") == ["stats"]
    assert subresources("/metrics/resource") == ["metrics"]
    assert subresources("/logs/kubelet.log") == ["log"]
    assert subresources("/pods") == ["pods", "proxy"]
    assert subresources("/healthz") == ["healthz", "proxy"]
    assert subresources("/containerLogs/default/p/c") == ["proxy"]
    assert subresources("/exec/default/p/c") == ["proxy"]


def test_token_review(cluster):
    token = sa_token(cluster, "reviewed")
    tr = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    out = create(cluster, tr)
    assert out["status"]["authenticated"] is True
    user = out["status"]["user"]
    assert user["username"] == "system:serviceaccount:default:reviewed"
    assert {"system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"} <= set(user["groups"])
    bad = create(cluster, {**tr, "spec": {"token": token[:-4] + "AAAA"}})
    assert not bad["status"].get("authenticated") and bad["status"]["error"]
    wrong_aud = create(cluster, {**tr, "spec": {"token": token, "audiences": ["other"]}})
    assert not wrong_aud["status"].get("authenticated")
    res = create(cluster, {**tr, "spec": {}}, check=False)          # kubectl's own schema check
    assert res.returncode != 0 and 'missing required field "token"' in res.stderr, res.stderr
    res = create(cluster, {**tr, "spec": {}}, check=False, client_validation=False)
    assert res.returncode != 0 and "spec.token: Required value" in res.stderr


def test_subject_access_review(cluster):
    def sar(user, groups, **attrs):
        return create(cluster, {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                                "spec": {"user": user, "groups": groups, "resourceAttributes": attrs}})
    assert sar("x", ["system:masters"], verb="get", resource="nodes", subresource="proxy", name="n")["status"]["allowed"]
    denied = sar("nobody", [], verb="get", resource="nodes", subresource="proxy", name="n")["status"]
    assert denied["allowed"] is False
    assert sar("nobody", ["system:authenticated"], verb="get", resource="pods")["status"]["allowed"] is False
    res = create(cluster, {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                           "spec": {"user": "u"}}, check=False)
    assert res.returncode != 0 and "exactly one of nonResourceAttributes or resourceAttributes" in res.stderr
    # kubectl auth can-i: SelfSubjectAccessReview of the caller (admin)
    assert cluster.kubectl("auth", "can-i", "get", "nodes/proxy").stdout.strip() == "yes"


def test_kubelet_authn_authz(cluster, node):
    base = f"https://127.0.0.1:{node.kubelet_port}"
    with kubelet_client(cluster) as admin:                  # cluster CA cert, O=system:masters
        assert admin.get(f"{base}/pods").status_code == 200
        assert admin.get(f"{base}/healthz").status_code == 200
        assert admin.get(f"{base}/stats/summary").status_code == 200
    with kubelet_client(cluster, cert=False) as anon:
        r = anon.get(f"{base}/pods")
        assert r.status_code == 401 and "Unauthorized" in r.text
        assert anon.get(f"{base}/pods", headers={"Authorization": "Bearer not-a-token"}).status_code == 401

        token = sa_token(cluster, "scraper")
        auth = {"Authorization": f"Bearer {token}"}
        r = anon.get(f"{base}/metrics/resource", headers=auth)
        assert r.status_code == 403, r.text
        assert "user=system:serviceaccount:default:scraper" in r.text and "subresource(s)=[metrics]" in r.text
        cluster.kubectl("create", "clusterrole", "kubelet-metrics-reader", "--verb=get",
                        "--resource=nodes/metrics,nodes/stats")
        cluster.kubectl("create", "clusterrolebinding", "scraper-metrics", "--clusterrole=kubelet-metrics-reader",
                        "--serviceaccount=default:scraper")
        # the denial above was for nodes/metrics (cached 30 s); stats was never asked: allowed at once
        r = anon.get(f"{base}/stats/summary", headers=auth)
        assert r.status_code == 200, r.text
        assert anon.get(f"{base}/pods", headers=auth).status_code == 403          # pods, then proxy: no
        r = anon.get(f"{base}/containerLogs/default/x/c", headers=auth)
        assert r.status_code == 403 and "subresource(s)=[proxy]" in r.text
