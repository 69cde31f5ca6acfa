"""Time as skube's workload logic sees it: the real clock, or an accelerated simulation
clock shared by every process of a simulated cluster.

Workload-level timing reads this clock — instance run times of the mock provider, node
boot delays and idle times, how long a pod may wait before it bursts to the virtual node,
billing timestamps — so the cost simulator can replay a day in minutes. Infrastructure
timing (leases, heartbeats, HTTP timeouts, retries) stays on real time.

``SKUBE_CLOCK=SCALE:EPOCH:REAL_T0`` (inherited by child processes) makes simulated time
``EPOCH + (time.time() - REAL_T0) * SCALE``; unset means real time.
"""
from __future__ import annotations

import asyncio
import os
import time

ENV = "SKUBE_CLOCK"


class Clock:
    """Simulated time running ``scale`` times faster than real time from ``epoch``."""

    def __init__(self, scale: float = 1.0, epoch: float | None = None, real_t0: float | None = None):
        if scale <= 0:
            raise ValueError(f"clock scale must be positive, not {scale}")
        self.scale = float(scale)
        self.real_t0 = time.time() if real_t0 is None else float(real_t0)
        self.epoch = self.real_t0 if epoch is None else float(epoch)

    @property
    def accelerated(self) -> bool:
        return self.scale != 1.0 or self.epoch != self.real_t0

    def time(self) -> float:
        """Seconds since the Unix epoch, as the simulation sees them."""
        return self.epoch + (time.time() - self.real_t0) * self.scale

    def monotonic(self) -> float:
        """A monotonic reading in simulated seconds (only differences mean anything)."""
        return time.monotonic() * self.scale

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of simulated time."""
        await asyncio.sleep(max(0.0, seconds) / self.scale)

    def real_seconds(self, simulated: float) -> float:
        return simulated / self.scale

    def env_value(self) -> str:
        return f"{self.scale!r}:{self.epoch!r}:{self.real_t0!r}"

    @classmethod
    def from_env(cls, value: str | None) -> "Clock":
        if not value:
            return REAL
        try:
            scale, epoch, t0 = (float(x) for x in value.split(":"))
        except ValueError:
            raise ValueError(f"{ENV}={value!r}: expected SCALE:EPOCH:REAL_T0") from None
        return cls(scale, epoch, t0)


class _RealClock(Clock):
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


REAL: Clock = _RealClock()
_current: Clock | None = None


def clock() -> Clock:
    """The process's clock (from ``SKUBE_CLOCK`` on first use)."""
    global _current
    if _current is None:
        _current = Clock.from_env(os.environ.get(ENV))
    return _current


def set_clock(c: Clock) -> None:
    """Use ``c`` in this process and in the child processes it starts from now on."""
    global _current
    _current = c
    if c is REAL:
        os.environ.pop(ENV, None)
    else:
        os.environ[ENV] = c.env_value()
