"""Durability: acknowledged writes survive a clean restart and kill -9; revisions only grow."""
from __future__ import annotations

import signal

from tests.conftest import start_apiserver


def test_restart_and_kill9_keep_acknowledged_writes(tmp_path):
    c = start_apiserver(tmp_path / "d")
    c.kubectl("create", "configmap", "before-restart", "--from-literal=a=1")
    rv1 = int(c.kubectl_json("get", "configmap", "before-restart")["metadata"]["resourceVersion"])
    assert c.stop() == 0
    c = start_apiserver(tmp_path / "d", c.port)
    assert c.kubectl_json("get", "configmap", "before-restart")["data"] == {"a": "1"}
    names = []
    for i in range(20):
        c.kubectl("create", "configmap", f"acked-{i}")
        names.append(f"acked-{i}")
    c.stop(signal.SIGKILL)
    c = start_apiserver(tmp_path / "d", c.port)
    got = {i["metadata"]["name"] for i in c.kubectl_json("get", "configmaps")["items"]}
    assert set(names) <= got
    c.kubectl("create", "configmap", "after")
    rv2 = int(c.kubectl_json("get", "configmap", "after")["metadata"]["resourceVersion"])
    assert rv2 > rv1 + 20
    # the same certificates and kubeconfig are reused
    assert c.stop() == 0


def test_builtin_controllers_cascade_and_namespace_deletion(tmp_path):
    """`skube apiserver` runs the garbage collector and namespace controller by default."""
    c = start_apiserver(tmp_path / "ctl")
    try:
        c.kubectl("create", "namespace", "doomed")
        c.kubectl("-n", "doomed", "create", "configmap", "inside")
        owner = c.kubectl_json("-n", "doomed", "get", "configmap", "inside")
        dep = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "dependent", "namespace": "default",
                            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                                                 "uid": "0"}]}}
        c.kubectl("create", "configmap", "owner")
        dep["metadata"]["ownerReferences"][0]["uid"] = c.kubectl_json("get", "cm", "owner")["metadata"]["uid"]
        import json
        c.kubectl("create", "-f", "-", input=json.dumps(dep))
        c.kubectl("delete", "configmap", "owner", "--cascade=foreground", "--wait=true", "--timeout=60s")
        assert c.kubectl("get", "configmap", "dependent", check=False).returncode != 0
        out = c.kubectl("delete", "namespace", "doomed", "--wait=true", "--timeout=60s").stdout
        assert 'namespace "doomed" deleted' in out
        assert owner["metadata"]["namespace"] == "doomed"
        assert c.kubectl("get", "namespace", "doomed", check=False).returncode != 0
    finally:
        assert c.stop() == 0
