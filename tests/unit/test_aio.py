"""The small asyncio idioms of skube.aio."""
from __future__ import annotations

import asyncio

import pytest

from skube.aio import race, unless_set, wait_set


def test_wait_set_returns_at_once_when_set_and_false_on_timeout():
    async def main():
        ev = asyncio.Event()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await wait_set(ev, 0.05) is False
        assert loop.time() - t0 >= 0.04
        loop.call_later(0.01, ev.set)
        assert await wait_set(ev, 30) is True
        assert loop.time() - t0 < 5
    asyncio.run(main())


def test_unless_set_gives_the_result_or_cancels_when_the_event_comes_first():
    async def main():
        stop = asyncio.Event()
        q: asyncio.Queue[str] = asyncio.Queue()
        q.put_nowait("a")
        assert await unless_set(q.get(), stop) == "a"
        cancelled = asyncio.Event()

        async def forever():
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise
        asyncio.get_running_loop().call_later(0.01, stop.set)
        assert await unless_set(forever(), stop) is None
        assert cancelled.is_set()                       # cancelled and awaited before returning

        async def boom():
            raise ValueError("x")
        with pytest.raises(ValueError):
            await unless_set(boom(), asyncio.Event())
    asyncio.run(main())


def test_race_cancels_the_slower():
    async def main():
        slow_cancelled = asyncio.Event()

        async def slow():
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                slow_cancelled.set()
                raise
        await race(asyncio.sleep(0), slow())
        assert slow_cancelled.is_set()
    asyncio.run(main())
