"""Unused images are collected once the store passes its disk threshold; used ones never are."""
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
