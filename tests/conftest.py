"""Shared fixtures: a real `skube apiserver` process, kubectl and the official client."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
KUBECTL = shutil.which("kubectl", path=str(BIN)) or shutil.which("kubectl")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    """A running `skube apiserver`: its process, data dir, URL and kubeconfig."""
    proc: subprocess.Popen
    data_dir: Path
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [KUBECTL, "--kubeconfig", str(self.kubeconfig), *args]
        res = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({res.returncode}):\n"
                                 f"{res.stdout}\n{res.stderr}")
        return res

    def kubectl_json(self, *args: str) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def client(self):
        from kubernetes import config
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("apiserver did not stop within %ss" % timeout)
        return self.proc.returncode


def start_apiserver(data_dir: Path, port: int | None = None, *extra: str, timeout: float = 60) -> Cluster:
    port = port or free_port()
    if not any(a.startswith("--disable-admission-plugins") for a in extra):
        # as upstream's integration framework: no controller manager creates the
        # `default` ServiceAccount here, so its admission is off unless a test asks
        extra = (*extra, "--disable-admission-plugins=ServiceAccount")
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / f"apiserver-{port}-{int(time.time() * 1000)}.log"
    out = open(log, "w")
    proc = subprocess.Popen([str(BIN / "skube"), "apiserver", "--data-dir", str(data_dir),
                             "--port", str(port), *extra],
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"apiserver exited with {proc.returncode}:\n{log.read_text()}")
        if "ready" in log.read_text():
            return Cluster(proc, data_dir, port, log)
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"apiserver not ready in {timeout}s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # tests that need controllers start them themselves (or use a server with its defaults)
    c = start_apiserver(tmp_path_factory.mktemp("skube"), None, "--controllers=")
    yield c
    code = c.stop()
    assert code == 0, f"apiserver exit code {code}:\n{c.log.read_text()}"


def wait_for(predicate, timeout: float = 20, interval: float = 0.05, message: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(interval)


class WatchLines:
    """``kubectl get KIND NAME --watch --output-watch-events -o jsonpath='{.type} FIELDS'``
    in the background: one line per event; :meth:`until_deleted` reads up to the DELETED one."""

    def __init__(self, cluster: Cluster, kind: str, name: str, fields: str, *, timeout: float = 60):
        self.proc = subprocess.Popen(
            [KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "get", kind, name, "--watch",
             "--output-watch-events", "-o", "jsonpath={.type} " + fields + '{"\\n"}'],
            stdout=subprocess.PIPE, text=True)
        self._timer = threading.Timer(timeout, self.proc.kill)   # a missing event ends the watch
        self._timer.start()
        self.seen: list[str] = []

    def next(self) -> str:
        line = self.proc.stdout.readline()
        assert line, f"the watch ended early after {self.seen}"
        self.seen.append(line.strip())
        return self.seen[-1]

    def until_deleted(self) -> list[str]:
        while not self.seen or not self.seen[-1].startswith("DELETED"):
            self.next()
        return self.seen

    def __enter__(self) -> "WatchLines":
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        self.proc.kill()
        self.proc.wait()
