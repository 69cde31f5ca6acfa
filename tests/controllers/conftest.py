"""Fixtures for controller tests: a real `skube apiserver`, a `skube virtual-node`
(mock provider), and the controllers plus the scheduler running in-process (a
background thread with its own event loop) so tests can pass constructor options
(a CronJob clock, the Job pod back-off)."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import BIN, Cluster, start_apiserver, wait_for

ROOT = Path(__file__).resolve().parent.parent.parent
TOLERATION = {"key": "virtual-kubelet.io/provider", "operator": "Exists"}
CONTROLLER_NAMES = ("garbagecollector", "namespace", "replicaset", "deployment", "statefulset", "daemonset",
                    "job", "cronjob", "endpoints", "endpointslice", "serviceaccount", "podgc", "disruption", "scheduler")


class InProcessControllers:
    """A ControllerManager in a thread of its own."""

    def __init__(self, kubeconfig: str, names=CONTROLLER_NAMES, options: dict | None = None):
        self.kubeconfig = kubeconfig
        self.names = names
        self.options = options or {}
        self.loop = asyncio.new_event_loop()
        self.started = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name="controllers")
        self.manager = None

    def start(self, timeout: float = 30) -> "InProcessControllers":
        self.thread.start()
        if not self.started.wait(timeout) or self.error:
            raise AssertionError(f"controllers did not start: {self.error!r}")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as e:  # noqa: BLE001
            self.error = e
            self.started.set()

    async def _main(self) -> None:
        from skube.client import Client
        from skube.controllers import ControllerManager
        self._stop = asyncio.Event()
        client = Client.from_kubeconfig(self.kubeconfig, component="controller-manager")
        self.manager = ControllerManager(client, list(self.names), **self.options)
        await self.manager.start()
        ok = await self.manager.wait_ready(30)
        if not ok:
            raise RuntimeError("controllers not ready")
        self.started.set()
        try:
            await self._stop.wait()
        finally:
            await self.manager.stop()
            await client.close()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
            self.thread.join(30)


class VirtualNode:
    def __init__(self, cluster: Cluster, name: str, data_dir: Path, config: str | None = None):
        data_dir.mkdir(parents=True, exist_ok=True)
        args = [str(BIN / "skube"), "virtual-node", "--kubeconfig", str(cluster.kubeconfig), "--name", name,
                "--provider", "mock", "--kubelet-port", "0", "--data-dir", str(data_dir)]
        if config:
            (data_dir / "mock.yaml").write_text(config)
            args += ["--provider-config", str(data_dir / "mock.yaml")]
        self.log = data_dir / "node.log"
        self.proc = subprocess.Popen(args, stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=ROOT)
        wait_for(lambda: self.proc.poll() is not None or "ready" in self.log.read_text(), 60,
                 message="virtual node ready")
        if self.proc.poll() is not None:
            raise AssertionError(f"virtual node exited:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Env:
    def __init__(self, cluster: Cluster, controllers: InProcessControllers, node: VirtualNode):
        self.cluster = cluster
        self.controllers = controllers
        self.node = node

    def kubectl(self, *args, **kw):
        return self.cluster.kubectl(*args, **kw)

    def apply(self, obj: dict | str, ns: str | None = None):
        text = obj if isinstance(obj, str) else json.dumps(obj)
        extra = ("-n", ns) if ns else ()
        return self.cluster.kubectl("apply", *extra, "-f", "-", input=text)

    def get(self, *args) -> dict:
        return self.cluster.kubectl_json("get", *args)

    def try_get(self, *args) -> dict | None:
        res = self.cluster.kubectl("get", *args, "-o", "json", check=False)
        return json.loads(res.stdout) if res.returncode == 0 else None

    def pods(self, ns: str, selector: str) -> list[dict]:
        return self.get("pods", "-n", ns, "-l", selector)["items"]


def make_env(tmp_path_factory, options: dict | None = None):
    base = tmp_path_factory.mktemp("ctrl")
    cluster = start_apiserver(base / "server", None, "--controllers=")
    node = controllers = None
    try:
        node = VirtualNode(cluster, "vn", base / "node")
        controllers = InProcessControllers(str(cluster.kubeconfig), options=options).start()
        return Env(cluster, controllers, node)
    except BaseException:
        if controllers:
            controllers.stop()
        if node:
            node.stop()
        cluster.stop()
        raise


def close_env(env: Env) -> None:
    env.controllers.stop()
    env.node.stop()
    code = env.cluster.stop()
    assert code == 0, f"apiserver exit code {code}"


@pytest.fixture(scope="module")
def env(tmp_path_factory, request):
    options = getattr(request.module, "CONTROLLER_OPTIONS", None)
    e = make_env(tmp_path_factory, options)
    yield e
    close_env(e)


def pod_template(labels: dict, image: str = "nginx:1.27", annotations: dict | None = None,
                 restart_policy: str | None = None, **spec) -> dict:
    s = {"containers": [{"name": "c", "image": image}], "tolerations": [dict(TOLERATION)],
         "terminationGracePeriodSeconds": 0, **spec}
    if restart_policy:
        s["restartPolicy"] = restart_policy
    meta: dict = {"labels": labels}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": s}


class PodWatch:
    """Watch pods of a selector in a thread; ``on_event(type, pod)`` sees each event."""

    def __init__(self, env: Env, ns: str, selector: str, on_event):
        from kubernetes import client, watch
        self.api = client.CoreV1Api(env.cluster.client())
        self.w = watch.Watch()
        self.ns, self.selector, self.on_event = ns, selector, on_event
        self.synced = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.synced.wait(20)

    def _run(self):
        try:
            rv = self.api.list_namespaced_pod(self.ns, label_selector=self.selector).metadata.resource_version
            self.synced.set()
            for ev in self.w.stream(self.api.list_namespaced_pod, self.ns, label_selector=self.selector,
                                    resource_version=rv, timeout_seconds=300, _preload_content=True):
                self.on_event(ev["type"], ev["raw_object"])
        except BaseException as e:  # noqa: BLE001
            self.error = e
            self.synced.set()

    def stop(self):
        self.w.stop()


def is_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


_ = (sys, time)
