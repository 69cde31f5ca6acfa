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
