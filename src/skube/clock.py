"""Time as skube's workload logic sees it: the real clock, or a simulation clock shared
by every process of a simulated cluster, running faster than real time.

Workload-level timing reads this clock — instance run times of the mock provider, node
boot delays and idle times, how long a pod may wait before it bursts to the virtual node,
billing timestamps — so the cost simulator can replay a day in minutes. Infrastructure
timing (leases, heartbeats, HTTP timeouts, retries) stays on real time.

Simulated time is ``epoch + (time.time() - real_t0) * scale``. The three numbers live
either in the ``SKUBE_CLOCK`` value ``SCALE:EPOCH:REAL_T0`` (fixed speed) or, with
``SKUBE_CLOCK=file:PATH``, in a small shared file that the simulator rewrites to change
speed while the cluster runs (slower while the cluster is busy, so control-plane latency
stays small in simulated seconds). Readers map the file and read it lock-free (a
sequence counter guards torn reads). Child processes inherit ``SKUBE_CLOCK``.

Because the speed can change, :meth:`Clock.sleep` sleeps in bounded real-time slices and
re-checks, and timer users should re-check ``time()`` when they fire (:meth:`Clock.due_in`).
"""
from __future__ import annotations

import asyncio
import mmap
import os
import struct
import time
from pathlib import Path

ENV = "SKUBE_CLOCK"
_LAYOUT = struct.Struct("<Qddd")        # sequence, scale, epoch, real_t0
MAX_REAL_SLICE = 0.5                    # a sleeping reader notices a speed change within this


class Clock:
    """Simulated time; ``scale`` simulated seconds pass per real second."""

    def __init__(self, scale: float = 1.0, epoch: float | None = None, real_t0: float | None = None,
                 path: str | Path | None = None):
        if scale <= 0:
            raise ValueError(f"clock scale must be positive, not {scale}")
        t0 = time.time() if real_t0 is None else float(real_t0)
        self._fixed = (float(scale), t0 if epoch is None else float(epoch), t0)
        self.path = Path(path) if path else None
        self._mm: mmap.mmap | None = None
        if self.path is not None:
            if not self.path.exists() or self.path.stat().st_size < _LAYOUT.size:
                self.path.write_bytes(_LAYOUT.pack(0, *self._fixed))
            with open(self.path, "r+b") as f:
                self._mm = mmap.mmap(f.fileno(), _LAYOUT.size)

    # ---- the three numbers ------------------------------------------------------------

    def params(self) -> tuple[float, float, float]:
        """(scale, epoch, real_t0) now."""
        mm = self._mm
        if mm is None:
            return self._fixed
        while True:
            seq, scale, epoch, t0 = _LAYOUT.unpack_from(mm, 0)
            if seq % 2 == 0 and _LAYOUT.unpack_from(mm, 0)[0] == seq:
                return scale, epoch, t0

    @property
    def scale(self) -> float:
        return self.params()[0]

    @property
    def accelerated(self) -> bool:
        scale, epoch, t0 = self.params()
        return scale != 1.0 or epoch != t0

    def set_speed(self, scale: float) -> None:
        """Change the speed from now on (shared-file clocks only); simulated time is
        continuous across the change."""
        if self._mm is None:
            raise RuntimeError("only a file-backed clock can change speed")
        if scale <= 0:
            raise ValueError(f"clock scale must be positive, not {scale}")
        now_real = time.time()
        old_scale, epoch, t0 = self.params()
        sim = epoch + (now_real - t0) * old_scale
        seq = _LAYOUT.unpack_from(self._mm, 0)[0]
        struct.pack_into("<Q", self._mm, 0, seq + 1)                 # odd: writing
        struct.pack_into("<ddd", self._mm, 8, float(scale), sim, now_real)
        struct.pack_into("<Q", self._mm, 0, seq + 2)

    # ---- reading time -----------------------------------------------------------------

    def time(self) -> float:
        """Seconds since the Unix epoch, as the simulation sees them."""
        scale, epoch, t0 = self.params()
        return epoch + (time.time() - t0) * scale

    def monotonic(self) -> float:
        """A non-decreasing reading in simulated seconds (only differences mean anything)."""
        return self.time()

    def due_in(self, due: float) -> float:
        """Real seconds until simulated time ``due`` at the current speed (<= 0: past).
        Timers set with it should re-check when they fire: the speed may change."""
        scale, epoch, t0 = self.params()
        return (due - (epoch + (time.time() - t0) * scale)) / scale

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of simulated time, following speed changes."""
        due = self.time() + max(0.0, seconds)
        while (left := self.due_in(due)) > 0:
            await asyncio.sleep(min(left, MAX_REAL_SLICE) if self._mm is not None else left)

    def real_seconds(self, simulated: float) -> float:
        return simulated / self.scale

    def env_value(self) -> str:
        if self.path is not None:
            return f"file:{self.path}"
        scale, epoch, t0 = self._fixed
        return f"{scale!r}:{epoch!r}:{t0!r}"

    @classmethod
    def from_env(cls, value: str | None) -> "Clock":
        if not value:
            return REAL
        if value.startswith("file:"):
            path = Path(value[5:])
            if not path.exists():
                raise ValueError(f"{ENV}={value!r}: no such clock file")
            return cls(path=path)
        try:
            scale, epoch, t0 = (float(x) for x in value.split(":"))
        except ValueError:
            raise ValueError(f"{ENV}={value!r}: expected SCALE:EPOCH:REAL_T0 or file:PATH") from None
        return cls(scale, epoch, t0)


class _RealClock(Clock):
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def due_in(self, due: float) -> float:
        return due - time.time()

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
