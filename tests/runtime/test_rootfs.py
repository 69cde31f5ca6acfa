"""Layers unpack into snapshots with whiteouts honoured; containers get private writable roots
(overlayfs, and the copy fallback); a real process runs in the result."""
import os
import stat
import subprocess
import tarfile

import pytest
from conftest import _add, make_tar, run

from skube.runtime.images import ImageService
from skube.runtime.images.rootfs import overlay_supported
from skube.runtime.images.unpack import LayerError, unpack_layer


@pytest.fixture(params=["overlay", "copy"])
def mode(request, tmp_path):
    if request.param == "overlay" and not overlay_supported(tmp_path / "probe"):
        pytest.skip("overlayfs not available here")
    return request.param


def test_layered_rootfs(registries, tmp_path, mode):
    ref = f"{registries.anon.host}/test/layered:v1"

    async def go():
        svc = ImageService(tmp_path / "data", rootfs_mode=mode)
        try:
            rec = await svc.pull(ref)
            a = await svc.prepare_rootfs(rec, tmp_path / "c-a")
            b = await svc.prepare_rootfs(rec, tmp_path / "c-b")
            assert os.path.ismount(a) == (mode == "overlay")
            # whiteouts and opaque directory of the top layer
            assert not (a / "etc/a.txt").exists()
            assert sorted(os.listdir(a / "data")) == ["new"]
            assert (a / "etc/c.txt").read_text() == "c\n" and (a / "etc/passwd").exists()
            # metadata survives: owner, mode, setuid, hardlink, fifo, device, symlink applets
            st = os.stat(a / "etc/b.txt")
            assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1000, 0o640)
            assert os.stat(a / "etc/b-link").st_ino == st.st_ino
            assert stat.S_IMODE(os.stat(a / "usr/bin/setuid-thing").st_mode) == 0o4755
            assert stat.S_ISFIFO(os.lstat(a / "run/fifo").st_mode)
            dev = os.lstat(a / "dev/null2")
            assert stat.S_ISCHR(dev.st_mode) and os.major(dev.st_rdev) == 1 and os.minor(dev.st_rdev) == 3
            assert os.readlink(a / "bin/sh") == "busybox"
            assert stat.S_IMODE(os.stat(a / "tmp").st_mode) == 0o1777
            # a real process in the rootfs
            out = subprocess.run(["chroot", str(a), "/bin/sh", "-c", "echo hi > /tmp/x; cat /etc/c.txt; ls /data"],
                                 capture_output=True, text=True, timeout=10)
            assert out.returncode == 0 and out.stdout == "c\nnew\n", out
            # writable layers are private: b and the snapshots do not see a's writes
            (a / "etc/passwd").write_text("changed\n")
            os.unlink(a / "etc/c.txt")
            assert (b / "etc/passwd").read_text().startswith("root:") and (b / "etc/c.txt").exists()
            assert not (b / "tmp/x").exists()
            for chain in rec.layers:
                assert not (svc.store.snapshot_fs(chain) / "tmp/x").exists()
            assert svc.store.images_in_use() == {rec.name}
            # prepare is idempotent (re-adoption after a restart)
            assert await svc.prepare_rootfs(rec, tmp_path / "c-a") == a and (a / "tmp/x").exists()
            await svc.release_rootfs(tmp_path / "c-a")
            await svc.release_rootfs(tmp_path / "c-b")
            await svc.release_rootfs(tmp_path / "c-b")  # idempotent
            assert not a.exists() and not (tmp_path / "c-a/upper").exists()
            assert svc.store.images_in_use() == set()
        finally:
            await svc.close()
    run(go())


def _unpack(tmp_path, build, **kw):
    blob = tmp_path / "layer.tar"
    blob.write_bytes(make_tar(build))
    return unpack_layer(blob, tmp_path / "out", **kw)


@pytest.mark.parametrize("build", [
    lambda tf: _add(tf, "../evil", data=b"x"),
    lambda tf: (_add(tf, "link", kind=tarfile.SYMTYPE, link="/etc"), _add(tf, "link/evil", data=b"x")),
    lambda tf: _add(tf, "hl", kind=tarfile.LNKTYPE, link="../../etc/passwd"),
], ids=["dotdot", "symlinked-parent", "hardlink-out"])
def test_unsafe_layers_are_refused(tmp_path, build):
    with pytest.raises(LayerError):
        _unpack(tmp_path, build)
    assert not (tmp_path / "evil").exists() and not os.path.exists("/etc/evil")


def test_diff_id_is_checked(tmp_path):
    with pytest.raises(LayerError, match="diff ID"):
        _unpack(tmp_path, lambda tf: _add(tf, "f", data=b"x"), diff_id="sha256:" + "0" * 64)


def test_absolute_names_stay_inside(tmp_path):
    _unpack(tmp_path, lambda tf: _add(tf, "/abs/file", data=b"x"))
    assert (tmp_path / "out/abs/file").read_bytes() == b"x"
