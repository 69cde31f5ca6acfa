"""The host network agent of a standalone cluster: service proxy, cluster DNS and
NetworkPolicy enforcement, each an API client with its own informers, run side by side
until ``stop`` is set. One agent per host serves every node on it (all share one bridge)."""
from __future__ import annotations

import asyncio
import logging

from .config import ClusterNetwork

log = logging.getLogger("skube.network")


async def run_network_agent(kubeconfig: str, net: ClusterNetwork, stop: asyncio.Event) -> None:
    from . import dns, policy, proxy
    tasks = [asyncio.create_task(mod.run(kubeconfig, net, stop), name=f"network-{mod.__name__}")
             for mod in (proxy, dns, policy)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            if t.exception() is not None:
                raise t.exception()
    finally:
        stop.set()
        for t in tasks:
            if not t.done():
                try:
                    await asyncio.wait_for(t, 15)
                except Exception:  # noqa: BLE001 — shutting down regardless
                    log.exception("%s did not stop cleanly", t.get_name())
