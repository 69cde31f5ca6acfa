"""(not built yet)"""
from __future__ import annotations

import asyncio

from .config import ClusterNetwork


async def run(kubeconfig: str, net: ClusterNetwork, stop: asyncio.Event) -> None:
    await stop.wait()
