"""ResourceQuota and LimitRange admission."""
from __future__ import annotations

import textwrap

from tests.conftest import wait_for


def test_limit_range_defaults_and_bounds(cluster):
    cluster.kubectl("create", "namespace", "limited")
    cluster.kubectl("-n", "limited", "apply", "-f", "-", input=textwrap.dedent("""
        apiVersion: v1
        kind: LimitRange
        metadata: {name: lr}
        spec:
          limits:
          - type: Container
            default: {cpu: 500m, memory: 128Mi}
            defaultRequest: {cpu: 100m, memory: 64Mi}
            max: {cpu: "1"}
            min: {cpu: 50m}
        """))
    cluster.kubectl("-n", "limited", "run", "defaulted", "--image=busybox:1.36")
    res = cluster.kubectl_json("-n", "limited", "get", "pod", "defaulted")["spec"]["containers"][0]["resources"]
    assert res == {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m", "memory": "64Mi"}}
    bad = cluster.kubectl("-n", "limited", "run", "greedy", "--image=busybox:1.36",
                          "--overrides", '{"spec":{"containers":[{"name":"greedy","image":"busybox:1.36",'
                          '"resources":{"limits":{"cpu":"2"}}}]}}', check=False)
    assert bad.returncode != 0
    assert 'pods "greedy" is forbidden: maximum cpu usage per Container is 1, but limit is 2' in bad.stderr


def test_resource_quota_counts_and_refuses(cluster):
    cluster.kubectl("create", "namespace", "quoted")
    cluster.kubectl("-n", "quoted", "create", "quota", "q", "--hard=pods=2,requests.cpu=1,count/configmaps=3")
    pod = ('{"spec":{"containers":[{"name":"c","image":"busybox:1.36",'
           '"resources":{"requests":{"cpu":"400m"}}}]}}')
    cluster.kubectl("-n", "quoted", "run", "a", "--image=busybox:1.36", "--overrides", pod)
    cluster.kubectl("-n", "quoted", "run", "b", "--image=busybox:1.36", "--overrides", pod)
    third = cluster.kubectl("-n", "quoted", "run", "c", "--image=busybox:1.36", "--overrides", pod, check=False)
    assert third.returncode != 0 and "exceeded quota: q" in third.stderr
    assert "requested: pods=1,requests.cpu=400m, used: pods=2,requests.cpu=800m, limited: pods=2,requests.cpu=1" \
        in third.stderr
    no_req = cluster.kubectl("-n", "quoted", "run", "d", "--image=busybox:1.36", check=False)
    assert no_req.returncode != 0 and "must specify requests.cpu" in no_req.stderr
    used = wait_for(lambda: (u := (cluster.kubectl_json("-n", "quoted", "get", "quota", "q").get("status") or {})
                             .get("used")) and u.get("pods") == "2" and u,
                    message="quota status")
    assert used["requests.cpu"] == "800m"
    cluster.kubectl("-n", "quoted", "delete", "pod", "a", "--wait=true")
    wait_for(lambda: cluster.kubectl_json("-n", "quoted", "get", "quota", "q")["status"]["used"]["pods"] == "1",
             message="usage to drop")
    cluster.kubectl("-n", "quoted", "run", "c", "--image=busybox:1.36", "--overrides", pod)


def test_concurrent_creates_cannot_exceed_quota(cluster):
    """Pods created at once against `pods: 5` and against `requests.cpu: 1` (300m each):
    the check is atomic with the write, so exactly 5 and exactly 3 are admitted."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from kubernetes import client
    from kubernetes.client.rest import ApiException

    api = client.CoreV1Api(cluster.client())
    api.api_client.rest_client.pool_manager.connection_pool_kw["maxsize"] = 20

    def race(ns: str, hard: str, cpu: str | None, n: int) -> list[tuple[int, str]]:
        cluster.kubectl("create", "namespace", ns)
        cluster.kubectl("-n", ns, "create", "quota", "q", f"--hard={hard}")
        barrier = threading.Barrier(n)

        def create(i: int):
            c = {"name": "c", "image": "busybox:1.36"}
            if cpu:
                c["resources"] = {"requests": {"cpu": cpu}}
            body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}"}, "spec": {"containers": [c]}}
            barrier.wait(10)
            try:
                api.create_namespaced_pod(ns, body)
                return 201, ""
            except ApiException as e:
                return e.status, e.body

        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(create, range(n)))

    for ns, hard, cpu, n, admitted, used in (("racing", "pods=5", None, 20, 5, {"pods": "5"}),
                                             ("racing-cpu", "requests.cpu=1", "300m", 10, 3,
                                              {"requests.cpu": "900m"})):
        results = race(ns, hard, cpu, n)
        codes = sorted(code for code, _ in results)
        assert codes == [201] * admitted + [403] * (n - admitted), (ns, codes)
        assert all("exceeded quota: q" in body for code, body in results if code == 403)
        assert len(cluster.kubectl_json("-n", ns, "get", "pods")["items"]) == admitted
        got = wait_for(lambda: (u := (cluster.kubectl_json("-n", ns, "get", "quota", "q").get("status") or {})
                                .get("used")) and u == used and u, message=f"{ns} quota status")
        assert got == used
