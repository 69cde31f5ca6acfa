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


__all__ = ["race"]
