"""The simulation clock: fixed speed from the environment, and a shared file whose speed
the simulator changes while other processes read it."""
import asyncio
import subprocess
import sys
import time

import pytest

from skube.clock import REAL, Clock


def test_fixed_speed_clock_round_trips_through_the_environment():
    c = Clock(60, epoch=1000.0)
    d = Clock.from_env(c.env_value())
    assert abs(d.time() - c.time()) < 0.5 and d.scale == 60 and d.accelerated
    assert not REAL.accelerated and abs(REAL.time() - time.time()) < 0.1
    assert Clock.from_env("") is REAL
    with pytest.raises(ValueError):
        Clock.from_env("fast")
    with pytest.raises(ValueError):
        Clock(0)


def test_shared_file_clock_changes_speed_for_every_reader(tmp_path):
    path = tmp_path / "clock"
    writer = Clock(100, epoch=0.0, path=path)
    reader = Clock.from_env(f"file:{path}")
    t1 = reader.time()
    assert 0 <= t1 < 100
    writer.set_speed(1)
    a = reader.time()
    assert abs(a - writer.time()) < 0.5
    assert reader.scale == 1
    # another process sees the same simulated time
    out = subprocess.run([sys.executable, "-c", "from skube.clock import clock; print(clock().time())"],
                         env={"SKUBE_CLOCK": f"file:{path}", "PATH": "/usr/bin"},
                         capture_output=True, text=True, check=True).stdout
    assert abs(float(out) - reader.time()) < 1.0
    with pytest.raises(RuntimeError):
        Clock(10).set_speed(2)


def test_sleep_follows_a_speed_change(tmp_path):
    c = Clock(1, epoch=0.0, path=tmp_path / "clock")

    async def main():
        sleeper = asyncio.create_task(c.sleep(100))     # 100 s at speed 1
        await asyncio.sleep(0.05)
        c.set_speed(1000)                               # now 0.1 s
        t = time.monotonic()
        await asyncio.wait_for(sleeper, 3)
        return time.monotonic() - t
    assert asyncio.run(main()) < 1.0
    assert c.time() >= 100
