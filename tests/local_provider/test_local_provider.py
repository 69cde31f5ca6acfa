"""The local provider end to end: real containers from a real registry, driven by a real
`skube virtual-node`, observed with kubectl."""
from __future__ import annotations

import json
import signal
import ssl

import httpx
import pytest

from tests.conftest import WatchLines, wait_for
from tests.local_provider.conftest import NODE, leftovers, needs_host

pytestmark = needs_host


def pod(name: str, containers: list[dict], **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 5, "containers": containers,
                     **spec}}


def create(env, body: dict) -> None:
    env.cluster.kubectl("apply", "-f", "-", input=json.dumps(body))


def get(env, name: str) -> dict:
    res = env.cluster.kubectl("get", "pod", name, "-o", "json", check=False)
    return json.loads(res.stdout) if res.returncode == 0 else {}


def running(env, name: str, timeout: float = 30) -> dict:
    def ok():
        p = get(env, name)
        st = p.get("status") or {}
        return p if st.get("phase") == "Running" and st.get("podIP") and all(
            "running" in (c.get("state") or {}) for c in st.get("containerStatuses") or [{}]) else None
    try:
        return wait_for(ok, timeout=timeout, message=f"pod {name} Running")
    except AssertionError:
        raise AssertionError(f"pod {name} not Running: {json.dumps(get(env, name).get('status'))}\n"
                             f"node log:\n{env.node.log.read_text()[-3000:]}") from None


def logs(env, name: str, *args: str) -> str:
    res = env.cluster.kubectl("logs", name, *args, check=False)
    return res.stdout if res.returncode == 0 else ""


def waiting_reason(env, name: str) -> str:
    for c in (get(env, name).get("status") or {}).get("containerStatuses") or []:
        return ((c.get("state") or {}).get("waiting") or {}).get("reason", "")
    return ""


@pytest.fixture(scope="module")
def app_config(env):
    """ConfigMap app-config and Secret app-secret (the tests below refer to them)."""
    env.cluster.kubectl("create", "configmap", "app-config", "--from-literal=color=blue",
                        "--from-literal=size=XL")
    env.cluster.kubectl("create", "secret", "generic", "app-secret", "--from-literal=password=hunter2")


def test_pod_runs_a_real_container_with_env_from_configmap_and_secret(env, app_config):
    create(env, pod("hello", [{
        "name": "main", "image": env.image,
        "command": ["sh", "-c", 'echo "hello from $(hostname)"; echo "color=$COLOR password=$PASSWORD '
                                'pod=$POD_NAME ns=$POD_NS ip=$POD_IP cfg_size=$CFG_size"; sleep 3600'],
        "env": [{"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "color"}}},
                {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "app-secret", "key": "password"}}},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "envFrom": [{"configMapRef": {"name": "app-config"}, "prefix": "CFG_"}]}]))
    p = running(env, "hello")
    ip = p["status"]["podIP"]
    assert ip.startswith("10.")
    cs = p["status"]["containerStatuses"][0]
    assert cs["containerID"].startswith("runc://") and cs["ready"] is True
    assert cs["imageID"].startswith(env.registry + "/library/busybox@sha256:")
    out = wait_for(lambda: "color=" in (o := logs(env, "hello")) and o, message="log output")
    assert "hello from hello" in out
    assert f"color=blue password=hunter2 pod=hello ns=default ip={ip} cfg_size=XL" in out
    # the kubelet API's /stats/summary reports the pod's cgroup usage
    pki = env.cluster.data_dir / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    with httpx.Client(verify=ctx, timeout=10) as c:
        summary = c.get(f"https://127.0.0.1:{env.node.kubelet_port}/stats/summary").json()
    mine = [s for s in summary["pods"] if s["podRef"]["name"] == "hello"]
    assert mine and mine[0]["memory"]["workingSetBytes"] > 0
    node = env.cluster.kubectl_json("get", "node", NODE)
    assert int(node["status"]["capacity"]["cpu"]) >= 1


def test_missing_configmap_key_is_a_create_container_config_error(env, app_config):
    create(env, pod("badref", [{
        "name": "main", "image": env.image, "command": ["sleep", "3600"],
        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "nope"}}},
                {"name": "Y", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": True}}}]}]))
    wait_for(lambda: waiting_reason(env, "badref") == "CreateContainerConfigError", timeout=20,
             message="CreateContainerConfigError")
    cs = get(env, "badref")["status"]["containerStatuses"][0]
    assert cs["state"]["waiting"]["message"] == "couldn't find key nope in ConfigMap default/app-config"
    assert "is waiting to start: CreateContainerConfigError" in \
        env.cluster.kubectl("logs", "badref", check=False).stderr


def test_configmap_volume_follows_updates_and_empty_dir_is_shared(env):
    env.cluster.kubectl("create", "configmap", "live", "--from-literal=greeting=v1")
    watch = ('last=; while true; do v=$(cat /cfg/greeting); '
             'if [ "$v" != "$last" ]; then echo "greeting=$v"; last=$v; fi; sleep 0.1; done')
    create(env, pod("volumes", [
        {"name": "writer", "image": env.image,
         "command": ["sh", "-c", "echo shared-by-writer > /shared/msg; echo in-memory > /mem/m; "
                                 "mount | grep ' /mem ' ; exec sh -c '" + watch.replace("'", "") + "'"],
         "volumeMounts": [{"name": "shared", "mountPath": "/shared"}, {"name": "mem", "mountPath": "/mem"},
                          {"name": "cfg", "mountPath": "/cfg"}]},
        {"name": "reader", "image": env.image,
         "command": ["sh", "-c", "until [ -f /data/msg ] && [ -f /m2/m ]; do sleep 0.05; done; "
                                 "echo \"got $(cat /data/msg) $(cat /m2/m)\"; "
                                 "echo sub=$(cat /one/greeting); sleep 3600"],
         "volumeMounts": [{"name": "shared", "mountPath": "/data"}, {"name": "mem", "mountPath": "/m2"},
                          {"name": "cfg", "mountPath": "/one/greeting", "subPath": "greeting"}]}],
        volumes=[{"name": "shared", "emptyDir": {}},
                 {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                 {"name": "cfg", "configMap": {"name": "live"}}]))
    running(env, "volumes")
    out = wait_for(lambda: "got" in (o := logs(env, "volumes", "-c", "reader")) and o, message="reader output")
    assert "got shared-by-writer in-memory" in out
    assert "sub=v1" in out
    w = wait_for(lambda: "greeting=v1" in (o := logs(env, "volumes", "-c", "writer")) and o,
                 message="writer sees v1")
    assert "tmpfs" in w and "size=16384k" in w
    env.cluster.kubectl("patch", "configmap", "live", "-p", '{"data":{"greeting":"v2"}}')
    wait_for(lambda: "greeting=v2" in logs(env, "volumes", "-c", "writer"), timeout=20,
             message="the updated ConfigMap inside the running container")


def test_missing_image_tag_backs_off_then_runs_once_pushed(env):
    image = f"{env.registry}/library/busybox:later"
    create(env, pod("pull", [{"name": "main", "image": image, "command": ["sh", "-c", "echo pulled; sleep 3600"]}]))
    seen = []

    def progress():
        r = waiting_reason(env, "pull")
        if r and (not seen or seen[-1] != r):
            seen.append(r)
        return "ImagePullBackOff" in seen
    wait_for(progress, timeout=20, interval=0.05, message="ImagePullBackOff")
    assert seen[seen.index("ImagePullBackOff") - 1] == "ErrImagePull", seen
    msg = get(env, "pull")["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    assert msg == f'Back-off pulling image "{image}"'
    assert "image can't be pulled" in env.cluster.kubectl("logs", "pull", check=False).stderr
    env.push("later")          # the retry (10 s after the failure) finds it
    running(env, "pull", timeout=30)
    assert "pulled" in wait_for(lambda: logs(env, "pull"), message="log")
    # the kubelet's Events of the pod, in kubectl's view

    def events():
        out = env.cluster.kubectl("get", "events", "--field-selector", "involvedObject.name=pull",
                                  "-o", "json").stdout
        got = {(e["type"], e["reason"], e["message"]) for e in json.loads(out)["items"]}
        return got if ("Normal", "Started", "Started container main") in got else None
    got = wait_for(events, timeout=15, message="events")
    assert ("Normal", "Pulling", f'Pulling image "{image}"') in got
    assert ("Warning", "Failed", "Error: ErrImagePull") in got
    assert any(t == "Warning" and r == "Failed" and m.startswith(f'Failed to pull image "{image}": ')
               for t, r, m in got)
    assert any(t == "Normal" and r == "Pulled" and m.startswith(f'Successfully pulled image "{image}" in ')
               and m.endswith(" bytes.") for t, r, m in got)
    assert ("Normal", "Created", "Created container main") in got


def test_delete_with_grace_removes_everything(env):
    trap = "trap 'echo got TERM; exit {}' TERM; echo started; while true; do sleep 0.1; done"
    create(env, pod("graceful", [{"name": "main", "image": env.image, "command": ["sh", "-c", trap.format(0)]},
                                 {"name": "side", "image": env.image, "command": ["sh", "-c", trap.format(3)]}],
                    volumes=[{"name": "mem", "emptyDir": {"medium": "Memory"}}]))
    p = running(env, "graceful")
    uid = p["metadata"]["uid"]
    wait_for(lambda: "started" in logs(env, "graceful", "-c", "main") and "started" in logs(env, "graceful", "-c",
                                                                                           "side"), message="started")
    assert leftovers(env.node_dir, uid)       # it exists somewhere, so the check below means something
    with WatchLines(env.cluster, "pod", "graceful", "{.object.status.phase} "
                    "{.object.status.containerStatuses[*].state.terminated.exitCode}") as watch:
        env.cluster.kubectl("delete", "pod", "graceful", "--grace-period=10", "--wait=true", "--timeout=30s")
        seen = watch.until_deleted()
    assert leftovers(env.node_dir, uid) == {}
    # the containers' real exit codes, written in a terminal phase before the pod went:
    # one exited 3 on SIGTERM, so the pod Failed
    assert seen[-1] == "DELETED Failed 0 3", seen


def test_node_killed_and_restarted_readopts_the_running_container(env):
    create(env, pod("survivor", [{"name": "main", "image": env.image,
                                  "command": ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); "
                                                          "sleep 0.2; done"]}]))
    before = running(env, "survivor")["status"]["containerStatuses"][0]
    wait_for(lambda: "tick 1" in logs(env, "survivor"), message="ticks")
    env.node.stop(signal.SIGKILL)
    env.start_node()
    after = running(env, "survivor")["status"]["containerStatuses"][0]
    assert after["containerID"] == before["containerID"]
    assert after["restartCount"] == 0
    assert after["state"]["running"]["startedAt"] == before["state"]["running"]["startedAt"]
    # the re-adopted container is still followed: new output keeps arriving, then it stops cleanly
    n = len(logs(env, "survivor").splitlines())
    wait_for(lambda: len(logs(env, "survivor").splitlines()) > n + 2, message="more ticks")
    uid = get(env, "survivor")["metadata"]["uid"]
    env.cluster.kubectl("delete", "pod", "survivor", "--grace-period=2", "--wait=true", "--timeout=30s")
    assert leftovers(env.node_dir, uid) == {}


def test_kubectl_exec_streams_through_the_api_server(env):
    """kubectl exec (WebSocket v5) and the Python client (v4) reach the real container."""
    create(env, pod("shell", [{"name": "main", "image": env.image, "command": ["sh", "-c", "sleep 3600"]}]))
    running(env, "shell")
    k = env.cluster.kubectl
    assert k("exec", "shell", "--", "cat", "/etc/hostname").stdout.strip() == "shell"
    res = k("exec", "shell", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert res.returncode == 3 and res.stdout.strip() == "out" and "err" in res.stderr
    assert k("exec", "-i", "shell", "--", "sh", "-c", "tr a-z A-Z", input="piped input\n").stdout == "PIPED INPUT\n"
    from kubernetes import client as kclient
    from kubernetes.stream import stream
    core = kclient.CoreV1Api(env.cluster.client())
    out = stream(core.connect_get_namespaced_pod_exec, "shell", "default",
                 command=["sh", "-c", "echo $((6*7))"], stderr=True, stdin=False, stdout=True, tty=False)
    assert out.strip() == "42"


def test_exec_with_a_tty_carries_input_output_and_resizes(env):
    """The Python client's TTY session (text frames on v4): input, echo, window size."""
    create(env, pod("tty", [{"name": "main", "image": env.image, "command": ["sh", "-c", "sleep 3600"]}]))
    running(env, "tty")
    from kubernetes import client as kclient
    from kubernetes.stream import stream
    core = kclient.CoreV1Api(env.cluster.client())
    ws = stream(core.connect_get_namespaced_pod_exec, "tty", "default",
                command=["sh", "-c", 'read line; for i in $(seq 20); do s=$(stty size); '
                         '[ "$s" = "30 100" ] && break; sleep 0.1; done; echo "size $s got $line"'],
                stderr=True, stdin=True, stdout=True, tty=True, _preload_content=False)
    ws.write_channel(4, json.dumps({"Width": 100, "Height": 30}))
    ws.write_stdin("typed\n")
    buf: list[str] = []

    def ended():
        ws.update(timeout=1)
        if ws.peek_stdout():
            buf.append(ws.read_stdout())
        return not ws.is_open()
    try:
        wait_for(ended, timeout=20, message="the tty session to end")
    finally:
        ws.close()
    text = "".join(buf)
    assert "typed\r\n" in text and "size 30 100 got typed\r\n" in text, text


def test_fs_group_owns_volumes_and_secrets_live_on_tmpfs(env):
    """securityContext.fsGroup: volumes get its group and setgid (new files inherit it),
    the process has it and supplementalGroups; secret volumes are on a tmpfs."""
    env.cluster.kubectl("create", "secret", "generic", "fsg-secret", "--from-literal=password=s3cret")
    create(env, pod("fsg", [{
        "name": "main", "image": env.image, "command": ["sleep", "3600"],
        "volumeMounts": [{"name": "data", "mountPath": "/data"},
                         {"name": "sec", "mountPath": "/sec"}]}],
        securityContext={"runAsUser": 1000, "fsGroup": 2000, "supplementalGroups": [3000],
                         "fsGroupChangePolicy": "OnRootMismatch"},
        volumes=[{"name": "data", "emptyDir": {}},
                 {"name": "sec", "secret": {"secretName": "fsg-secret", "defaultMode": 0o400}}]))
    running(env, "fsg")

    def sh(script: str) -> str:
        return env.cluster.kubectl("exec", "fsg", "--", "sh", "-c", script).stdout
    assert set(sh("id -G").split()) >= {"2000", "3000"}
    assert sh("stat -c '%g %a' /data").split() == ["2000", "2777"]
    assert sh("touch /data/new && stat -c %g /data/new").strip() == "2000"   # setgid: inherited
    assert sh("cat /sec/password") == "s3cret"                 # 0400 + group read for uid 1000
    assert sh("stat -L -c '%g %a' /sec/password").split() == ["2000", "440"]
    assert sh("awk '$2 == \"/sec\" {print $3}' /proc/mounts").strip() == "tmpfs"
    assert sh("awk '$2 == \"/data\" {print $3}' /proc/mounts").strip() != "tmpfs"
    uid = get(env, "fsg")["metadata"]["uid"]
    env.cluster.kubectl("delete", "pod", "fsg", "--grace-period=0", "--wait=true", "--timeout=30s")
    assert leftovers(env.node_dir, uid) == {}              # the secret's tmpfs is unmounted too
