"""The scheduling queue: priority order, back-off, unschedulable pods and moves."""
from __future__ import annotations

import asyncio

from skube.scheduler.cache import PodInfo
from skube.scheduler.queue import SchedulingQueue

from helpers import pod


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def q_with_clock():
    c = Clock()
    return SchedulingQueue(clock=c), c


def test_priority_then_fifo():
    q, c = q_with_clock()
    q.add(PodInfo(pod("low")))
    c.t += 1
    q.add(PodInfo(pod("high", priority=100)))
    c.t += 1
    q.add(PodInfo(pod("low2")))
    assert [q.pop_nowait().info.name for _ in range(3)] == ["high", "low", "low2"]
    assert q.pop_nowait() is None


def test_backoff_doubles_up_to_max():
    q, c = q_with_clock()
    q.add(PodInfo(pod("p")))
    expected = [1, 2, 4, 8, 10, 10]
    for want in expected:
        qp = q.pop_nowait()
        assert qp is not None
        q.requeue_error(qp)                 # errors always back off
        assert q.pending()["backoff"] == ["default/p"]
        c.t += want - 0.01
        assert q.pop_nowait() is None
        c.t += 0.02
    assert q.pop_nowait() is not None


def test_unschedulable_waits_for_interesting_event():
    q, c = q_with_clock()
    q.add(PodInfo(pod("p")))
    qp = q.pop_nowait()
    q.move_request_cycle = -1
    q.add_unschedulable(qp, {"NodeResourcesFit"})
    assert q.pending()["unschedulable"] == ["default/p"]
    c.t += 100
    assert q.pop_nowait() is None
    interested = lambda qp, ev: ev == "NodeAdd" and "NodeResourcesFit" in qp.unschedulable_plugins  # noqa
    assert q.move_all("AssignedPodAdd", interested) == 0
    assert q.move_all("NodeAdd", interested) == 1
    assert q.pop_nowait().info.name == "p"      # back-off (1 s) long over: straight to active


def test_moved_pod_still_backing_off_goes_to_backoff():
    q, c = q_with_clock()
    q.add(PodInfo(pod("p")))
    qp = q.pop_nowait()
    q.add_unschedulable(qp, {"X"})
    q.move_all("NodeAdd")
    assert q.pending()["backoff"] == ["default/p"]
    c.t += 1.01
    assert q.pop_nowait().info.name == "p"


def test_event_during_cycle_sends_failure_to_backoff():
    q, c = q_with_clock()
    q.add(PodInfo(pod("p")))
    qp = q.pop_nowait()
    q.move_all("NodeAdd")                       # happened while p was being scheduled
    q.add_unschedulable(qp, {"NodeResourcesFit"})
    assert q.pending()["backoff"] == ["default/p"]


def test_unschedulable_flushed_after_five_minutes():
    q, c = q_with_clock()
    q.add(PodInfo(pod("p")))
    q.add_unschedulable(q.pop_nowait(), {"X"})
    c.t += 299
    q.flush()
    assert q.pending()["unschedulable"] == ["default/p"]
    c.t += 2
    q.flush()
    assert q.pop_nowait().info.name == "p"


def test_update_with_spec_change_retries_and_delete_drops():
    q, c = q_with_clock()
    p = pod("p")
    q.add(PodInfo(p))
    q.add_unschedulable(q.pop_nowait(), {"TaintToleration"})
    same = {**p, "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled"}]}}
    q.update(PodInfo(same))
    assert q.pending()["unschedulable"] == ["default/p"]
    changed = {**p, "spec": {**p["spec"], "tolerations": [{"operator": "Exists"}]}}
    c.t += 5
    q.update(PodInfo(changed))
    qp = q.pop_nowait()
    assert qp.info.tolerations == [{"operator": "Exists"}]
    q.delete("default/p")
    q.add_unschedulable(qp, {"X"})              # deleted while in flight: dropped
    assert "default/p" not in q and len(q) == 0


def test_async_pop_waits_for_backoff_and_close():
    async def main():
        q = SchedulingQueue(initial_backoff=0.05)
        q.add(PodInfo(pod("p")))
        qp = await q.pop()
        q.requeue_error(qp)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        again = await asyncio.wait_for(q.pop(), 2)
        assert again.info.name == "p" and loop.time() - t0 >= 0.04
        waiter = asyncio.create_task(q.pop())
        q.close()
        assert await asyncio.wait_for(waiter, 2) is None
    asyncio.run(main())
