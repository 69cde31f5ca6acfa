"""Small asyncio idioms shared across components."""
from __future__ import annotations

import asyncio
from typing import Awaitable


async def race(*aws: Awaitable) -> None:
    """Run ``aws`` until the first of them ends, then cancel the others and wait for them
    to go (e.g. the two directions of a stream proxy, or output against a hang-up)."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def wait_set(event: asyncio.Event, seconds: float | None) -> bool:
    """Wait until ``event`` is set or ``seconds`` pass; True when it is set (a pause that a
    stop, a wake-up or a kick cuts short)."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except asyncio.TimeoutError:
        pass
    return event.is_set()


async def unless_set(aw: Awaitable, event: asyncio.Event):
    """Await ``aw`` unless ``event`` is set first: its result, or None (and ``aw`` cancelled)
    when the event came first (e.g. the next queue item, or the stop of a loop)."""
    task, waiter = asyncio.ensure_future(aw), asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return None if task.cancelled() else task.result()


__all__ = ["race", "unless_set", "wait_set"]
