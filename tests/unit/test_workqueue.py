"""WorkQueue, rate limiters and run_workers: client-go's workqueue semantics."""
from __future__ import annotations

import asyncio

import pytest

from skube.client.workqueue import (BucketRateLimiter, ExponentialFailureRateLimiter, MaxOfRateLimiter,
                                    WorkQueue, default_controller_rate_limiter, run_workers)


def run(coro, timeout: float = 10):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_a_key_added_while_queued_is_coalesced():
    async def main():
        q = WorkQueue()
        for k in ("a", "b", "a", "a", "c", "b"):
            q.add(k)
        assert len(q) == 3
        assert [await q.get() for _ in range(3)] == ["a", "b", "c"]
    run(main())


def test_a_key_being_processed_is_requeued_only_after_done():
    async def main():
        q = WorkQueue()
        q.add("a")
        assert await q.get() == "a"
        q.add("a")                      # changed while a worker holds it
        q.add("a")
        assert len(q) == 0 and "a" in q and q.processing == {"a"}
        getter = asyncio.create_task(q.get())
        await asyncio.sleep(0)          # a second worker must not get it yet
        assert not getter.done()
        q.done("a")
        assert await getter == "a"      # handed out again, once
        q.done("a")
        assert len(q) == 0 and "a" not in q
    run(main())


def test_getters_wait_for_work_and_shutdown_drains_then_returns_none():
    async def main():
        q = WorkQueue()
        getter = asyncio.create_task(q.get())
        await asyncio.sleep(0)
        q.add("x")
        assert await getter == "x"
        q.add("y")
        q.shut_down()
        q.add("z")                      # ignored after shut down
        assert await q.get() == "y"
        assert await q.get() is None
        assert await q.get() is None
    run(main())


def test_cancelled_getter_loses_no_item():
    async def main():
        q = WorkQueue()
        g1 = asyncio.create_task(q.get())
        g2 = asyncio.create_task(q.get())
        await asyncio.sleep(0)
        g1.cancel()
        q.add("k")
        with pytest.raises(asyncio.CancelledError):
            await g1
        assert await g2 == "k"
    run(main())


def test_add_after_delays_and_the_earlier_time_wins():
    async def main():
        q = WorkQueue()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        q.add_after("late", 0.2)
        q.add_after("soon", 0.5)
        q.add_after("soon", 0.05)       # earlier: replaces the 0.5 s timer
        q.add_after("late", 5)          # later: ignored
        assert len(q) == 0
        assert await q.get() == "soon"
        assert await q.get() == "late"
        elapsed = loop.time() - t0
        assert 0.2 <= elapsed < 1.0
        q.add_after("now", 0)
        assert len(q) == 1
    run(main())


def test_exponential_failure_rate_limiter():
    rl = ExponentialFailureRateLimiter(0.005, 1000)
    delays = [rl.when("k") for _ in range(5)]
    assert delays == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08])
    assert rl.num_requeues("k") == 5 and rl.when("other") == pytest.approx(0.005)
    for _ in range(40):
        last = rl.when("k")
    assert last == 1000
    rl.forget("k")
    assert rl.num_requeues("k") == 0 and rl.when("k") == pytest.approx(0.005)
    for _ in range(200):                 # no overflow however often it fails
        assert rl.when("many") <= 1000


def test_bucket_rate_limiter_allows_a_burst_then_spaces_requests():
    now = [0.0]
    rl = BucketRateLimiter(qps=10, burst=3, clock=lambda: now[0])
    assert [rl.when(i) for i in range(3)] == [0, 0, 0]
    assert rl.when("x") == pytest.approx(0.1)
    assert rl.when("y") == pytest.approx(0.2)     # reservations stack up
    now[0] = 10.0                                 # the bucket refills up to the burst
    assert [rl.when(i) for i in range(3)] == [0, 0, 0]


def test_default_controller_rate_limiter_is_the_max_of_both():
    rl = default_controller_rate_limiter()
    assert isinstance(rl, MaxOfRateLimiter)
    assert rl.when("k") == pytest.approx(0.005)
    assert rl.when("k") == pytest.approx(0.01)
    assert rl.num_requeues("k") == 2
    rl.forget("k")
    assert rl.num_requeues("k") == 0


def test_add_rate_limited_backs_off_per_key_and_forget_resets():
    async def main():
        q = WorkQueue(ExponentialFailureRateLimiter(0.01, 1))
        q.add_rate_limited("k")
        assert len(q) == 0
        assert await q.get() == "k"
        q.done("k")
        assert q.num_requeues("k") == 1
        q.add_rate_limited("k")
        assert q.num_requeues("k") == 2
        assert await q.get() == "k"
        q.done("k")
        q.forget("k")
        assert q.num_requeues("k") == 0
    run(main())


def test_run_workers_retries_failures_forgets_successes_and_never_runs_a_key_twice_at_once():
    async def main():
        q = WorkQueue(ExponentialFailureRateLimiter(0.001, 0.01), name="test")
        attempts: dict[str, int] = {}
        running: set[str] = set()
        overlaps = []
        done = asyncio.Event()
        finished: set[str] = set()

        async def handler(key):
            if key in running:
                overlaps.append(key)
            running.add(key)
            try:
                attempts[key] = attempts.get(key, 0) + 1
                await asyncio.sleep(0.005)
                if key.startswith("flaky") and attempts[key] < 3:
                    raise RuntimeError("transient")
                finished.add(key)
                if len(finished) == 6:
                    done.set()
            finally:
                running.discard(key)

        workers = asyncio.create_task(run_workers(q, handler, 4))
        for key in ("a", "b", "c", "flaky1", "flaky2", "d"):
            q.add(key)
        for _ in range(20):              # re-adds while processing: coalesced, never parallel
            q.add("a")
            await asyncio.sleep(0.001)
        await asyncio.wait_for(done.wait(), 5)
        assert not overlaps
        assert attempts["flaky1"] == 3 and attempts["flaky2"] == 3
        assert q.num_requeues("flaky1") == 0           # forgotten after the success
        q.shut_down()
        await asyncio.wait_for(workers, 5)
    run(main())


def test_run_workers_sync_handler_and_requeue_after_returned_delay():
    async def main():
        q = WorkQueue()
        seen = []

        def handler(key):
            seen.append(key)
            return 0.05 if len(seen) == 1 else None

        workers = asyncio.create_task(run_workers(q, handler, 1))
        q.add("ns")
        while len(seen) < 2:
            await asyncio.sleep(0.01)
        assert seen == ["ns", "ns"]
        q.shut_down()
        await workers
    run(main())


def test_a_key_that_ran_long_is_paced_and_its_events_coalesce():
    async def main():
        loop = asyncio.get_running_loop()
        q = WorkQueue(pace=2.0)
        q.add("hot")
        q.add("cold")
        assert await q.get() == "hot"
        for _ in range(5):
            q.add("hot")                          # events while its long sync runs
        q.done("hot", busy=0.1)                   # ran 100 ms: not again for 200 ms
        t0 = loop.time()
        assert await q.get() == "cold"            # others go first
        q.done("cold", busy=0.001)
        q.add("cold")                             # a quick key is not paced
        assert await q.get() == "cold"
        q.done("cold")
        q.add("hot")
        assert await q.get() == "hot"             # once, after the pause
        assert loop.time() - t0 >= 0.19
        q.done("hot", busy=0.0)
        q.add("hot")                              # after a quick run: no pause
        assert len(q) == 1
    run(main())


def test_pacing_is_capped():
    async def main():
        loop = asyncio.get_running_loop()
        q = WorkQueue(pace=2.0)
        q.add("k")
        await q.get()
        q.add("k")
        q.done("k", busy=30.0)                    # mostly network waits: the pause stays short
        t0 = loop.time()
        assert await q.get() == "k"
        assert loop.time() - t0 <= WorkQueue.PACE_MAX + 0.2
    run(main())
