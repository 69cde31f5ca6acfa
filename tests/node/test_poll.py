"""A provider without status-change notification is polled (virtual-kubelet: every 5 s):
its status changes reach the API server although it never calls back."""
from __future__ import annotations

import asyncio
import time

from skube.client import Client, resource
from skube.node.pods import PodController, provider_notifies
from skube.providers.base import Provider
from skube.providers.mock import MockProvider
from tests.node.conftest import pod_body, run

NODE = "vn-poll"
PODS = resource("v1", "pods", kind="Pod")


class SilentProvider(Provider):
    """Keeps pods in memory; their status only changes when the test says so, and the
    node is never told (no ``notify_pods``)."""

    name = "silent"

    def __init__(self):
        self.pods: dict[tuple[str, str], dict] = {}

    async def create_pod(self, pod: dict) -> None:
        m = pod["metadata"]
        self.pods[(m["namespace"], m["name"])] = {
            "metadata": {k: m[k] for k in ("namespace", "name", "uid")}, "spec": pod["spec"],
            "status": {"phase": "Pending", "containerStatuses": [
                {"name": "c", "image": "busybox", "imageID": "", "ready": False, "restartCount": 0,
                 "started": False, "state": {"waiting": {"reason": "ContainerCreating"}}}]}}

    async def delete_pod(self, pod: dict, grace_period: int | None = None) -> None:
        m = pod["metadata"]
        self.pods.pop((m["namespace"], m["name"]), None)

    async def get_pod_status(self, namespace: str, name: str) -> dict | None:
        p = self.pods.get((namespace, name))
        return p and p["status"]

    async def list_pods(self) -> list[dict]:
        return list(self.pods.values())

    def start_running(self, namespace: str, name: str) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.pods[(namespace, name)]["status"] = {
            "phase": "Running", "startTime": now, "podIP": "10.99.0.7",
            "containerStatuses": [{"name": "c", "image": "busybox", "imageID": "", "ready": True,
                                   "restartCount": 0, "started": True,
                                   "state": {"running": {"startedAt": now}}}]}


async def _wait(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"not reached within {timeout}s")


def test_notification_is_detected():
    assert not provider_notifies(SilentProvider())
    assert provider_notifies(MockProvider())


def test_silent_provider_is_polled(cluster):
    async def main():
        provider = SilentProvider()
        async with Client.from_kubeconfig(str(cluster.kubeconfig), component="test") as client:
            pods = PodController(client, provider, NODE, poll_interval=0.5)
            await pods.start()
            try:
                await client.create("/api/v1/namespaces/default/pods", pod_body("polled", NODE))

                async def phase():
                    pod = await client.get(PODS, "polled", "default")
                    return (pod.get("status") or {}).get("phase")
                async def created():
                    return ("default", "polled") in provider.pods
                await _wait(created, 10)
                assert await _wait(lambda: _is(phase, "Pending"), 10)
                provider.start_running("default", "polled")       # no callback: only a poll sees it
                await _wait(lambda: _is(phase, "Running"), 5)    # far below the 60 s resync
                pod = await client.get(PODS, "polled", "default")
                assert pod["status"]["podIP"] == "10.99.0.7"
                assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"] == "True"
            finally:
                await pods.stop()
                await client.delete(PODS, "polled", "default", grace_period_seconds=0)
    run(main())


async def _is(get, want) -> bool:
    return await get() == want
