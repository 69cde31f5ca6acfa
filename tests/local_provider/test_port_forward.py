"""Port-forward end to end through the skube API server to a local-provider pod:
kubectl (SPDY/3.1 tunnelled over WebSocket) and the Python client (channel protocol)."""
from __future__ import annotations

import os
import selectors
import socket
import subprocess
import time

from tests.conftest import KUBECTL
from tests.local_provider.conftest import needs_host
from tests.local_provider.test_local_provider import create, pod, running

pytestmark = needs_host

INDEX = "hello from skube port-forward"
BIG = 3 * 1024 * 1024 + 17      # many SPDY DATA frames and WebSocket messages


def web_pod(env, name: str) -> None:
    create(env, pod(name, [{"name": "web", "image": env.image, "command": [
        "sh", "-c", f"mkdir -p /www && echo '{INDEX}' > /www/index.html && "
                    f"head -c {BIG} /dev/zero | tr '\\0' x > /www/big && exec httpd -f -p 8080 -h /www"]}]))
    running(env, name)


def http_get(sock: socket.socket, deadline: float, path: str = "/index.html") -> bytes:
    """GET ``path`` over ``sock`` (HTTP/1.0: the server closes when done); the whole reply."""
    sock.settimeout(max(0.1, deadline - time.monotonic()))
    sock.sendall(f"GET {path} HTTP/1.0\r\nHost: pod\r\n\r\n".encode())
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def read_line(proc: subprocess.Popen, deadline: float) -> str:
    """The next stdout line of ``proc`` (unbuffered fd reads, bounded by ``deadline``)."""
    buf = b""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise AssertionError(f"no output from kubectl port-forward (so far {buf!r})")
            b = os.read(proc.stdout.fileno(), 1)
            if not b:
                raise AssertionError(f"kubectl port-forward exited: {buf!r} "
                                     f"{proc.stderr.read().decode(errors='replace')}")
            buf += b
    finally:
        sel.close()
    return buf.decode()


def test_kubectl_port_forward_serves_several_connections(env):
    web_pod(env, "web")
    proc = subprocess.Popen([KUBECTL, "--kubeconfig", str(env.cluster.kubeconfig), "port-forward",
                             "pod/web", ":8080"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        line = read_line(proc, deadline)
        while "Forwarding from 127.0.0.1:" not in line:
            line = read_line(proc, deadline)
        local = int(line.split("127.0.0.1:", 1)[1].split()[0])
        assert line.strip().endswith("-> 8080"), line
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", local), timeout=10) as s:
                reply = http_get(s, time.monotonic() + 15)
            assert reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0], reply
            assert reply.rstrip().endswith(INDEX.encode()), reply
        with socket.create_connection(("127.0.0.1", local), timeout=10) as s:
            reply = http_get(s, time.monotonic() + 20, "/big")
        assert reply.split(b"\r\n\r\n", 1)[1] == b"x" * BIG, len(reply)
        assert proc.poll() is None, proc.stderr.read()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_kubectl_port_forward_reports_a_closed_port(env):
    """Nothing listens on 9999: kubectl prints the kubelet's error for the connection."""
    web_pod(env, "web-closed")
    proc = subprocess.Popen([KUBECTL, "--kubeconfig", str(env.cluster.kubeconfig), "port-forward",
                             "pod/web-closed", ":9999"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        line = read_line(proc, deadline)
        while "Forwarding from 127.0.0.1:" not in line:
            line = read_line(proc, deadline)
        local = int(line.split("127.0.0.1:", 1)[1].split()[0])
        with socket.create_connection(("127.0.0.1", local), timeout=10) as s:
            s.settimeout(15)
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            try:
                assert s.recv(100) == b""
            except ConnectionResetError:
                pass
        # kubectl >= 1.32 ends the whole session on a forwarding error
        proc.wait(20)
        err = proc.stderr.read().decode()
        assert "error forwarding port 9999" in err and "connection refused" in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_python_client_port_forward(env):
    web_pod(env, "web-py")
    from kubernetes import client as kclient
    from kubernetes.stream import portforward
    core = kclient.CoreV1Api(env.cluster.client())
    pf = portforward(core.connect_get_namespaced_pod_portforward, "web-py", "default", ports="8080")
    try:
        s = pf.socket(8080)
        reply = http_get(s, time.monotonic() + 15)
        s.close()
        assert reply.startswith(b"HTTP/1.") and reply.rstrip().endswith(INDEX.encode()), reply
        assert pf.error(8080) is None
    finally:
        pf.close()
    pf = portforward(core.connect_get_namespaced_pod_portforward, "web-py", "default", ports="8080")
    try:
        reply = http_get(pf.socket(8080), time.monotonic() + 20, "/big")
        assert reply.split(b"\r\n\r\n", 1)[1] == b"x" * BIG, len(reply)
    finally:
        pf.close()
    # a closed port: the error channel says why
    pf = portforward(core.connect_get_namespaced_pod_portforward, "web-py", "default", ports="9999")
    try:
        s = pf.socket(9999)
        s.settimeout(15)
        try:                        # the client closes its end of the pair as the error comes,
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")    # maybe before our request is in it:
            assert s.recv(100) == b""   # then a broken pipe; after: EOF or a reset; never data
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert "connection refused" in (pf.error(9999) or ""), pf.error(9999)
    finally:
        pf.close()
