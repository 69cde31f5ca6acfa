"""kubectl attach and the Python client's attach, through the API server and the virtual
node's kubelet API to real containers' main processes."""
from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import termios
import threading
import time

from tests.conftest import KUBECTL, wait_for
from tests.local_provider.conftest import leftovers, needs_host
from tests.local_provider.test_local_provider import create, get, logs, pod, running

pytestmark = needs_host


def sh(name: str, script: str, **kw) -> dict:
    return {"name": name, "image": "", "command": ["sh", "-c", script], **kw}


def start(env, name: str, container: dict, **spec) -> str:
    container["image"] = env.image
    create(env, pod(name, [container], **spec))
    running(env, name)
    return get(env, name)["metadata"]["uid"]


def kubectl_cmd(env, *args: str) -> list[str]:
    return [KUBECTL, "--kubeconfig", str(env.cluster.kubeconfig), *args]


class Reader(threading.Thread):
    """Collects what a file descriptor delivers, in the background."""

    def __init__(self, fd: int):
        super().__init__(daemon=True)
        self.fd, self.data = fd, b""
        self.start()

    def run(self):
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.data += chunk


def delete(env, name: str, uid: str) -> None:
    env.cluster.kubectl("delete", "pod", name, "--grace-period=1", "--wait=true", "--timeout=30s")
    # a completed pod's object may go before the node has removed its sandbox
    wait_for(lambda: leftovers(env.node_dir, uid) == {}, timeout=30,
             message=f"pod {name} cleaned up: {leftovers(env.node_dir, uid)}")


def test_kubectl_attach_sees_the_running_main_process_output(env):
    uid = start(env, "ticker", sh("main", "i=0; while true; do echo tick $i; echo tock $i >&2; "
                                          "i=$((i+1)); sleep 0.2; done"))
    proc = subprocess.Popen(kubectl_cmd(env, "attach", "ticker", "-c", "main"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = Reader(proc.stdout.fileno()), Reader(proc.stderr.fileno())
    try:
        wait_for(lambda: out.data.count(b"tick") >= 3 and b"tock" in err.data, timeout=20,
                 message="attached output")
    finally:
        proc.terminate()
        proc.wait(10)
    # stdout and stderr are kept apart, and the log still gets every line
    assert b"tock" not in out.data and b"tick" not in err.data
    first = int(out.data.split(b"tick ")[1].split()[0])
    wait_for(lambda: f"tick {first + 2}" in logs(env, "ticker"), message="ticks in the log")
    # the container outlived the client
    assert "running" in get(env, "ticker")["status"]["containerStatuses"][0]["state"]
    delete(env, "ticker", uid)


def test_kubectl_attach_i_feeds_stdin_of_a_stdin_container(env):
    uid = start(env, "reader", sh("main", "read x; echo got $x", stdin=True), restartPolicy="Never")
    res = subprocess.run(kubectl_cmd(env, "attach", "-i", "reader"), input=b"hello\n",
                         capture_output=True, timeout=60)
    assert res.returncode == 0, res
    assert res.stdout == b"got hello\n", res
    wait_for(lambda: get(env, "reader")["status"]["phase"] == "Succeeded", message="Succeeded")
    assert logs(env, "reader") == "got hello\n"
    res = subprocess.run(kubectl_cmd(env, "attach", "-i", "reader"), input=b"again\n",
                         capture_output=True, timeout=60)
    assert res.returncode != 0 and b"completed pod" in res.stderr, res
    delete(env, "reader", uid)


def test_kubectl_attach_i_stdin_once_ends_input_for_the_container(env):
    uid = start(env, "once", sh("main", "cat; echo eof-seen", stdin=True, stdinOnce=True),
                restartPolicy="Never")
    res = subprocess.run(kubectl_cmd(env, "attach", "-i", "once"), input=b"line one\nline two\n",
                         capture_output=True, timeout=60)
    assert res.returncode == 0, res
    assert res.stdout == b"line one\nline two\neof-seen\n", res
    wait_for(lambda: get(env, "once")["status"]["phase"] == "Succeeded", message="Succeeded")
    delete(env, "once", uid)


def test_kubectl_attach_it_to_a_tty_container_with_its_window_size(env):
    uid = start(env, "term", sh("main", 'read x; for i in $(seq 50); do s=$(stty size); '
                                        '[ "$s" = "30 100" ] && break; sleep 0.1; done; '
                                        'echo "size $s got $x"', stdin=True, tty=True),
                restartPolicy="Never")
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    try:
        proc = subprocess.Popen(kubectl_cmd(env, "attach", "-it", "term"), stdin=slave, stdout=slave,
                                stderr=subprocess.PIPE, start_new_session=True)
        os.close(slave)
        slave = -1
        os.write(master, b"typed\r")
        buf = b""
        deadline = time.monotonic() + 30
        while b"got typed" not in buf and time.monotonic() < deadline:
            if select.select([master], [], [], 0.5)[0]:
                try:
                    buf += os.read(master, 65536)
                except OSError:
                    break
        assert b"size 30 100 got typed" in buf, (buf, proc.poll())
        assert proc.wait(30) == 0
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    wait_for(lambda: get(env, "term")["status"]["phase"] == "Succeeded", message="Succeeded")
    assert "size 30 100 got typed" in logs(env, "term")
    delete(env, "term", uid)


def test_python_client_attach_stream(env):
    uid = start(env, "echoer", sh("main", "while read x; do echo got $x; echo warn $x >&2; done",
                                  stdin=True))
    from kubernetes import client as kclient
    from kubernetes.stream import stream
    core = kclient.CoreV1Api(env.cluster.client())
    ws = stream(core.connect_get_namespaced_pod_attach, "echoer", "default", container="main",
                stdin=True, stdout=True, stderr=True, tty=False, _preload_content=False)
    out, err = [], []
    try:
        ws.write_stdin("from python\n")

        def seen():
            ws.update(timeout=1)
            if ws.peek_stdout():
                out.append(ws.read_stdout())
            if ws.peek_stderr():
                err.append(ws.read_stderr())
            return "got from python" in "".join(out) and "warn from python" in "".join(err)
        wait_for(seen, timeout=20, message="echo over the attach stream")
    finally:
        ws.close()
    assert "".join(out) == "got from python\n"
    # the client left; stdin stays open (no stdinOnce): a second session is served too
    ws = stream(core.connect_get_namespaced_pod_attach, "echoer", "default", container="main",
                stdin=True, stdout=True, stderr=False, tty=False, _preload_content=False)
    out = []
    try:
        ws.write_stdin("second\n")

        def again():
            ws.update(timeout=1)
            if ws.peek_stdout():
                out.append(ws.read_stdout())
            return "got second" in "".join(out)
        wait_for(again, timeout=20, message="second attach session")
    finally:
        ws.close()
    delete(env, "echoer", uid)


def test_kubectl_run_i_rm_attaches_to_a_stdin_once_pod(env):
    """`kubectl run -i --rm` creates a pod with stdin and stdinOnce, attaches, deletes it."""
    from tests.local_provider.conftest import NODE
    res = subprocess.run(kubectl_cmd(env, "run", "-i", "--rm", "--restart=Never", "runner",
                                     f"--image={env.image}",
                                     f'--overrides={{"spec":{{"nodeName":"{NODE}"}}}}',
                                     "--", "sh", "-c", "read x; echo got $x"),
                         input=b"via run\n", capture_output=True, timeout=120)
    assert res.returncode == 0, res
    assert b"got via run" in res.stdout, res
    assert b'pod "runner" deleted' in res.stdout + res.stderr, res
