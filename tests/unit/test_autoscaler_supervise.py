"""The autoscaler's own bookkeeping: an agent still starting is not restarted, and
scale-up never asks for more nodes than the pod CIDR has slices for."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from skube.autoscaler import autoscaler as autoscaler_mod
from skube.autoscaler.agents import AgentSettings
from skube.autoscaler.autoscaler import Autoscaler
from skube.autoscaler.decide import ScaleUpPlan
from skube.autoscaler.pools import PoolSpec, parse_size
from skube.autoscaler.slots import slot_count
from skube.autoscaler.state import NodeRecord


def scaler(tmp_path, pod_cidr: str = "10.42.0.0/16") -> Autoscaler:
    pool = PoolSpec("general", parse_size("2c4g"), 0, 0, 100, boot_delay=3600, idle_seconds=600)
    return Autoscaler([pool], AgentSettings(data_dir=tmp_path, kubeconfig=tmp_path / "kubeconfig",
                                            provider="mock", pod_cidr=pod_cidr, in_process=True))


class SlowAgent:
    def __init__(self):
        self.starts, self.alive, self.starting, self.restarts = 0, False, False, 0
        self.exit_status = None

    async def start(self):
        self.starts += 1
        self.starting = True
        await asyncio.sleep(0.2)
        self.starting, self.alive = False, True


def test_an_agent_still_starting_is_not_started_again(tmp_path):
    async def main():
        a = scaler(tmp_path)
        a.state.nodes["general-1"] = NodeRecord("general-1", "general", 1, 0.0, "2c4g", "mock")
        agent = a.agents["general-1"] = SlowAgent()
        boot = asyncio.create_task(agent.start())
        await asyncio.sleep(0.05)
        await a._supervise()                   # mid-start: neither alive nor exited
        await boot
        assert agent.starts == 1 and agent.restarts == 0
        agent.alive = False                    # now it really exited
        await a._supervise()
        assert agent.starts == 2 and agent.restarts == 1
    asyncio.run(main())


def test_scale_up_stops_at_the_pod_cidrs_node_slices(tmp_path, monkeypatch):
    async def main():
        a = scaler(tmp_path, "10.42.0.0/24")          # 8 node-pool slices
        assert slot_count("10.42.0.0/24") == 8
        for i in range(1, 7):
            a.state.nodes[f"general-{i}"] = NodeRecord(f"general-{i}", "general", i, 0.0, "2c4g", "mock")
        a.state.counters["general"] = 6
        monkeypatch.setattr(autoscaler_mod.decide, "plan_scale_up",
                            lambda *args, **kw: ScaleUpPlan(new_nodes={"general": 5}))
        a._views = lambda registered: {"general": SimpleNamespace(nodes=[])}
        a._snapshot = lambda: None
        a._scale_up([], set())
        assert len(a.state.nodes) == 8 and a.cidr_full_warned
        assert sorted(r.slot for r in a.state.nodes.values()) == list(range(1, 9))
        a._scale_up([], set())                         # full: nothing more, no error
        assert len(a.state.nodes) == 8
        for t in a.booting.values():
            t.cancel()
        await asyncio.gather(*a.booting.values(), return_exceptions=True)
    asyncio.run(main())


def test_the_pause_between_scans_ends_at_the_next_idle_deadline(tmp_path):
    """Under a fast clock a real-time pause would be many simulated minutes: the autoscaler
    wakes when an unneeded node's idle time is up (a future deadline), and at the latest
    after SCAN_MAX_GAP simulated seconds; deadlines already past (the scan decided on them)
    do not cut the pause short."""
    from skube import clock as clock_mod

    async def main():
        a = scaler(tmp_path)
        a.state.nodes["general-1"] = NodeRecord("general-1", "general", 1, 0.0, "2c4g", "mock")
        fast = clock_mod.Clock(20.0)                  # 20 simulated seconds per real second
        clock_mod.set_clock(fast)
        assert autoscaler_mod.SCAN_MAX_GAP == 60.0                     # 3 real seconds here
        try:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            a.unneeded_since = {"general-1": fast.time() - 590.0}     # due in 10 sim-s = 0.5 s
            began = loop.time()
            await asyncio.wait_for(a._pause(stop, 30.0), 10)
            assert fast.time() >= a.unneeded_since["general-1"] + 600.0
            assert loop.time() - began < 2.5                           # before the 60 s gap
            a.unneeded_since = {"general-1": fast.time() - 900.0}     # past: no deadline
            began, sim0 = loop.time(), fast.time()
            await asyncio.wait_for(a._pause(stop, 30.0), 10)           # the gap, not 30 s
            assert fast.time() - sim0 >= 60.0 and loop.time() - began < 6.0
            pause = asyncio.create_task(a._pause(stop, 30.0))
            await asyncio.sleep(1.0)
            assert not pause.done()
            stop.set()                                                 # stop ends it at once
            await asyncio.wait_for(pause, 2)
        finally:
            clock_mod.set_clock(clock_mod.REAL)
    asyncio.run(main())


def test_an_in_process_agent_that_stops_slowly_counts_as_stopped(tmp_path):
    """As a process is killed after the stop timeout, an in-process node's stop that takes
    longer finishes in the background: the release goes on (with 150 nodes stopping at
    once, a timeout used to fail the scale-down and give the node back)."""
    from skube.autoscaler.agents import InProcessAgent

    class SlowNode:
        stopped = False

        async def stop(self):
            await asyncio.sleep(0.5)
            SlowNode.stopped = True

    async def main():
        a = scaler(tmp_path)
        rec = NodeRecord("general-1", "general", 1, 0.0, "2c4g", "mock")
        agent = InProcessAgent(rec, a.pools["general"], a.settings)
        agent.node = SlowNode()
        assert agent.alive
        loop = asyncio.get_running_loop()
        began = loop.time()
        await agent.stop(timeout=0.05)                 # no exception
        assert loop.time() - began < 0.4 and not agent.alive and not SlowNode.stopped
        await asyncio.sleep(0.7)
        assert SlowNode.stopped                        # the stop was not cancelled
    asyncio.run(main())
