"""Unused images are collected once the store passes its disk threshold; used ones never are."""
import re

import pytest
from conftest import run

from skube.runtime.images import ImageNotFoundError, ImageService


def test_gc_collects_least_recently_used_unused_images(registries, tmp_path):
    host = registries.anon.host
    busybox, layered = f"{host}/library/busybox:latest", f"{host}/test/layered:v1"

    async def go():
        svc = ImageService(tmp_path / "data", gc_threshold_bytes=1)  # always over: collect what is unused
        try:
            rec = await svc.pull(busybox)
            root = await svc.prepare_rootfs(rec, tmp_path / "c")
            await svc.pull(layered)
            assert {r.name for r in svc.list()} == {busybox, layered}  # busybox in use, layered just pulled
            await svc.release_rootfs(tmp_path / "c")
            await svc.pull(f"{host}/library/busybox:arm64")
            names = {r.name for r in svc.list()}
            assert names == {f"{host}/library/busybox:arm64"}
            # content of collected images is gone, shared content stays
            keep = {b for r in svc.list() for b in r.blobs}
            on_disk = {"sha256:" + p.name for p in (svc.store.root / "blobs/sha256").iterdir()}
            assert on_disk == keep
            snaps = {p.name for p in (svc.store.root / "snapshots").iterdir()}
            assert snaps == {c[7:] for c in svc.list()[0].layers}
            assert not root.exists()
        finally:
            await svc.close()
    run(go())


def test_no_gc_below_threshold_and_remove(registries, tmp_path):
    host = registries.anon.host

    async def go():
        svc = ImageService(tmp_path / "data", gc_threshold_bytes=1 << 30)
        try:
            a = await svc.pull(f"{host}/library/busybox")
            await svc.pull(f"{host}/test/layered:v1")
            assert len(svc.list()) == 2 and await svc.gc() == []
            root = await svc.prepare_rootfs(a, tmp_path / "c")
            await svc.remove(f"{host}/library/busybox")  # untagged; its mounted layers stay
            assert (root / "bin/busybox").exists() and svc.store.has_snapshot(a.layers[0])
            await svc.remove(f"{host}/test/layered:v1")
            assert svc.store.has_snapshot(a.layers[0])  # still mounted by the container
            await svc.release_rootfs(tmp_path / "c")
            async with svc.store.lock("gc.lock"):
                svc.store.prune()
            assert not svc.store.has_snapshot(a.layers[0]) and svc.store.disk_usage() == 0
            with pytest.raises(ImageNotFoundError):
                await svc.remove("nothing:here")
        finally:
            await svc.close()
    run(go())


def test_disk_pressure_of_the_image_filesystem_collects_unused_images(registries, tmp_path):
    """highThresholdPercent/lowThresholdPercent of the image dir's filesystem, as the
    kubelet's imageGC*ThresholdPercent: over the high mark unused images go; 100 is off."""
    from skube.runtime.images.gc import fs_usage
    host = registries.anon.host
    busybox, layered = f"{host}/library/busybox:latest", f"{host}/test/layered:v1"

    async def go():
        (tmp_path / "data").mkdir()
        used, total = fs_usage(tmp_path / "data")
        above = min(100.0, used * 100 / total + 5)      # a high mark the disk is below
        svc = ImageService(tmp_path / "data", gc_high_percent=above, gc_low_percent=0)
        try:
            rec = await svc.pull(busybox)
            await svc.pull(layered)
            assert await svc.gc() == [] and len(svc.list()) == 2
            svc.gc_high_percent = 100                  # 100 disables it
            assert await svc.gc() == [] and len(svc.list()) == 2
            root = await svc.prepare_rootfs(rec, tmp_path / "c")
            svc.gc_high_percent = 0                    # the filesystem is "full": collect
            assert await svc.gc() == [layered]         # busybox is in use: kept
            assert {r.name for r in svc.list()} == {busybox}
            await svc.release_rootfs(tmp_path / "c")
            assert not root.exists()
            assert await svc.gc() == [busybox] and svc.list() == []
        finally:
            await svc.close()
    run(go())


def test_image_gc_config_defaults_and_errors():
    from skube.providers.local import image_gc_config
    assert image_gc_config({}) == {"highThresholdPercent": 85, "lowThresholdPercent": 80,
                                   "thresholdBytes": None, "period": 300.0}
    assert image_gc_config({"thresholdBytes": 1, "period": 2})["period"] == 2.0
    for bad, words in (({"lowThresholdPercent": 90}, "must not exceed"),
                       ({"highThresholdPercent": 101}, "within [0, 100]"),
                       ({"period": 0}, "period"), ({"high": 1}, "unknown keys")):
        with pytest.raises(ValueError, match=re.escape(words)):
            image_gc_config(bad)


def test_local_provider_collects_periodically_without_a_pull(registries, tmp_path):
    """The provider's GC loop collects on its period, not only after pulls."""
    import asyncio

    from skube.providers.local import LocalProvider
    host = registries.anon.host

    async def go():
        prov = LocalProvider({})
        prov.images = ImageService(tmp_path / "data")             # no threshold yet: pulls keep all
        try:
            await prov.images.pull(f"{host}/library/busybox:latest")
            await prov.images.pull(f"{host}/test/layered:v1")
            assert len(prov.images.list()) == 2
            prov.images.gc_threshold_bytes = 1                    # a tiny threshold, no pull follows
            loop = asyncio.create_task(prov._image_gc_loop(0.05))
            deadline = asyncio.get_running_loop().time() + 10
            while prov.images.list() and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
            loop.cancel()
            assert prov.images.list() == [] and prov.images.store.disk_usage() == 0
        finally:
            await prov.images.close()
    run(go())
