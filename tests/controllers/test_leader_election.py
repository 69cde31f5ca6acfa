"""Leader election for the controller manager, against a real `skube apiserver`.

Candidates are ``run_controllers`` calls (each with its own Client) in one background
event loop; a killed leader is a separate process ended with SIGKILL. Which candidate
runs controllers is recorded by wrapping ControllerManager.start/stop."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from skube.controllers import manager as manager_mod
from skube.controllers.leaderelection import LeaderElector
from tests.conftest import ROOT, start_apiserver, wait_for

NS = "kube-system"
FAST = {"lease_duration": 3, "renew_deadline": 2, "retry_period": 0.3}


class Candidates:
    """run_controllers candidates as tasks of one event loop in a thread."""

    def __init__(self, monkeypatch):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="candidates")
        self.thread.start()
        self.tasks: dict[str, object] = {}
        self.stops: dict[str, asyncio.Event] = {}
        self.electors: dict[str, LeaderElector] = {}
        self.active: set[str] = set()      # candidates whose ControllerManager is running
        self.events: list[tuple[str, str]] = []
        self.overlaps: list[set[str]] = []
        self.closed = False
        self._patch(monkeypatch)

    def _patch(self, monkeypatch):
        cands = self
        orig_start, orig_stop = manager_mod.ControllerManager.start, manager_mod.ControllerManager.stop

        async def start(mgr, *a, **kw):
            who = asyncio.current_task().get_name()
            if cands.active - {who}:
                cands.overlaps.append(cands.active | {who})
            cands.active.add(who)
            cands.events.append((who, "start"))
            return await orig_start(mgr, *a, **kw)

        async def stop(mgr, *a, **kw):
            who = asyncio.current_task().get_name()
            cands.active.discard(who)
            cands.events.append((who, "stop"))
            return await orig_stop(mgr, *a, **kw)

        class Recorded(LeaderElector):
            def __init__(self, *a, **kw):
                super().__init__(*a, **kw)
                cands.electors[self.identity] = self

        monkeypatch.setattr(manager_mod.ControllerManager, "start", start)
        monkeypatch.setattr(manager_mod.ControllerManager, "stop", stop)
        monkeypatch.setattr(manager_mod, "LeaderElector", Recorded)

    def start(self, identity: str, kubeconfig, lease: str, names=("serviceaccount",), **election):
        async def go():
            self.stops[identity] = asyncio.Event()
            self.tasks[identity] = asyncio.create_task(manager_mod.run_controllers(
                str(kubeconfig), list(names), stop=self.stops[identity], lease_name=lease,
                identity=identity, **election), name=identity)
        asyncio.run_coroutine_threadsafe(go(), self.loop).result(5)

    def stop(self, identity: str, timeout: float = 20) -> None:
        async def go():
            self.stops[identity].set()
            await asyncio.wait_for(self.tasks[identity], timeout)
        asyncio.run_coroutine_threadsafe(go(), self.loop).result(timeout + 5)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True

        async def go():
            for ev in self.stops.values():
                ev.set()
            if self.tasks:
                await asyncio.wait(list(self.tasks.values()), timeout=20)
        asyncio.run_coroutine_threadsafe(go(), self.loop).result(30)
        for t in self.tasks.values():
            if t.done() and not t.cancelled() and t.exception():
                raise t.exception()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def candidates(monkeypatch):
    c = Candidates(monkeypatch)
    yield c
    c.close()
    assert not c.overlaps, f"two candidates ran controllers at once: {c.overlaps}"


def get_lease(cluster, name: str) -> dict | None:
    res = cluster.kubectl("get", "lease", "-n", NS, name, "-o", "json", check=False)
    return json.loads(res.stdout) if res.returncode == 0 else None


def holder(cluster, name: str) -> str | None:
    lease = get_lease(cluster, name)
    return (lease.get("spec") or {}).get("holderIdentity") if lease else None


def test_one_leader_and_fast_handover_on_clean_stop(cluster, candidates):
    lease = "lm-handover"
    # the default 15 s lease: a takeover within a few seconds can only come from the release
    timing = {"lease_duration": 15, "renew_deadline": 10, "retry_period": 0.5}
    candidates.start("a", cluster.kubeconfig, lease, **timing)
    wait_for(lambda: holder(cluster, lease) == "a" and candidates.active == {"a"}, 20,
             message="a leads")
    first = get_lease(cluster, lease)["spec"]
    assert first["leaseDurationSeconds"] == 15 and first["leaseTransitions"] == 0
    assert first["acquireTime"] and first["renewTime"]

    candidates.start("b", cluster.kubeconfig, lease, **timing)
    wait_for(lambda: "b" in candidates.electors and candidates.electors["b"].leader == "a", 10,
             message="b sees a as the leader")
    # a keeps renewing, b keeps waiting
    wait_for(lambda: get_lease(cluster, lease)["spec"]["renewTime"] != first["renewTime"], 10,
             message="a renews")
    assert holder(cluster, lease) == "a" and candidates.active == {"a"}
    assert not candidates.electors["b"].is_leader

    # the leader's controllers act: a new namespace gets its default ServiceAccount
    cluster.kubectl("create", "namespace", "le-one")
    wait_for(lambda: cluster.kubectl("get", "sa", "default", "-n", "le-one", check=False).returncode == 0,
             20, message="default SA from a")

    t0 = time.monotonic()
    candidates.stop("a")
    wait_for(lambda: holder(cluster, lease) == "b" and candidates.active == {"b"}, 8,
             message="b takes over after a released")
    assert time.monotonic() - t0 < 8
    spec = get_lease(cluster, lease)["spec"]
    assert spec["leaseTransitions"] == 1          # a -> b (a release is not a transition)
    assert spec["acquireTime"] != first["acquireTime"]
    assert candidates.events[:3] == [("a", "start"), ("a", "stop"), ("b", "start")]

    cluster.kubectl("create", "namespace", "le-two")
    wait_for(lambda: cluster.kubectl("get", "sa", "default", "-n", "le-two", check=False).returncode == 0,
             20, message="default SA from b")

    candidates.stop("b")
    released = get_lease(cluster, lease)["spec"]
    assert not released.get("holderIdentity") and released["leaseDurationSeconds"] == 1
    assert candidates.active == set()


VICTIM = """
import asyncio, sys
from skube.controllers.manager import run_controllers
asyncio.run(run_controllers(sys.argv[1], ["serviceaccount"], stop=asyncio.Event(), lease_name=sys.argv[2],
                            identity="victim", lease_duration=3, renew_deadline=2, retry_period=0.3))
"""


def test_killed_leader_is_replaced_after_the_lease_expires(cluster, candidates):
    lease = "lm-killed"
    victim = subprocess.Popen([sys.executable, "-c", VICTIM, str(cluster.kubeconfig), lease], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: victim.poll() is not None or holder(cluster, lease) == "victim", 20,
                 message="victim leads")
        assert victim.poll() is None
        candidates.start("survivor", cluster.kubeconfig, lease, **FAST)
        wait_for(lambda: "survivor" in candidates.electors and candidates.electors["survivor"].leader == "victim",
                 10, message="survivor sees the victim lead")
        before = get_lease(cluster, lease)["spec"]
        assert candidates.active == set()
        os.kill(victim.pid, signal.SIGKILL)
        killed = time.monotonic()
        victim.wait(10)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    wait_for(lambda: holder(cluster, lease) == "survivor" and candidates.active == {"survivor"}, 10,
             message="survivor takes over")
    waited = time.monotonic() - killed
    # the lease was not released: the survivor had to see it unchanged for lease_duration
    # (3 s; the victim renewed at most retry_period before being killed)
    assert waited >= 3 - FAST["retry_period"] - 0.3, waited
    spec = get_lease(cluster, lease)["spec"]
    assert spec["leaseTransitions"] == before["leaseTransitions"] + 1
    assert spec["leaseDurationSeconds"] == 3
    cluster.kubectl("create", "namespace", "le-three")
    wait_for(lambda: cluster.kubectl("get", "sa", "default", "-n", "le-three", check=False).returncode == 0,
             20, message="default SA from the survivor")


def test_leader_steps_down_when_the_lease_is_taken(cluster, candidates):
    lease = "lm-stolen"
    candidates.start("a", cluster.kubeconfig, lease, **FAST)
    wait_for(lambda: holder(cluster, lease) == "a" and candidates.active == {"a"}, 20, message="a leads")
    cluster.kubectl("patch", "lease", "-n", NS, lease, "--type=merge", "-p",
                    json.dumps({"spec": {"holderIdentity": "intruder", "leaseDurationSeconds": 3}}))
    wait_for(lambda: candidates.active == set(), 5, message="a steps down")
    assert holder(cluster, lease) == "intruder"
    # the intruder never renews: a takes the lease back once it has expired
    wait_for(lambda: holder(cluster, lease) == "a" and candidates.active == {"a"}, 10,
             message="a leads again")
    assert [e for e in candidates.events if e[0] == "a"] == [("a", "start"), ("a", "stop"), ("a", "start")]


def test_leader_steps_down_when_renewal_fails_past_the_deadline(tmp_path, candidates):
    c = start_apiserver(tmp_path / "frozen", None, "--controllers=")
    try:
        lease = "lm-frozen"
        candidates.start("solo", c.kubeconfig, lease, **FAST)
        wait_for(lambda: holder(c, lease) == "solo" and candidates.active == {"solo"}, 20, message="solo leads")
        os.kill(c.proc.pid, signal.SIGSTOP)        # the API server stops answering
        frozen = time.monotonic()
        try:
            wait_for(lambda: candidates.active == set(), 8, message="solo steps down")
            waited = time.monotonic() - frozen
            assert FAST["renew_deadline"] - FAST["retry_period"] - 0.2 <= waited, waited
        finally:
            os.kill(c.proc.pid, signal.SIGCONT)
        # the API server answers again and the Lease still names solo: it leads again
        wait_for(lambda: candidates.active == {"solo"}, 15, message="solo leads again")
        candidates.stop("solo")
        assert not get_lease(c, lease)["spec"].get("holderIdentity")
    finally:
        candidates.close()
        assert c.stop() == 0
