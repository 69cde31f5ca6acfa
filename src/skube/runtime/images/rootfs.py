"""Container root filesystems from read-only layer snapshots.

`overlay`: an overlayfs mount of the snapshot diffs (lowerdir) with a per-container upper/work
directory. `copy`: where overlayfs is unavailable, the diffs are copied bottom-up into a private
directory, interpreting overlayfs whiteouts and opaque directories as overlayfs would.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path

from .unpack import OPAQUE_XATTR

log = logging.getLogger(__name__)

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
MNT_DETACH = 2
MAX_MOUNT_DATA = 4000  # the kernel copies at most one page of mount options


def mount_overlay(lowers_top_first: list[Path], upper: Path, work: Path, target: Path) -> None:
    data = "lowerdir=" + ":".join(str(p) for p in lowers_top_first) + f",upperdir={upper},workdir={work}"
    if len(data) > MAX_MOUNT_DATA:
        raise OSError(errno.E2BIG, "overlay mount options exceed one page")
    if _libc.mount(b"overlay", str(target).encode(), b"overlay", 0, data.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount overlay on {target}: {os.strerror(err)}")


def unmount(target: Path) -> None:
    if _libc.umount2(str(target).encode(), 0) != 0:
        err = ctypes.get_errno()
        if err == errno.EBUSY:
            if _libc.umount2(str(target).encode(), MNT_DETACH) == 0:
                return
            err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):  # EINVAL: not a mount point
            raise OSError(err, f"umount {target}: {os.strerror(err)}")


def overlay_supported(scratch: Path) -> bool:
    """Whether an overlay mount with an upper dir works on the filesystem holding `scratch`."""
    scratch.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix="ovl-probe-", dir=scratch))
    try:
        for sub in ("l", "u", "w", "m"):
            (d / sub).mkdir()
        mount_overlay([d / "l"], d / "u", d / "w", d / "m")
        unmount(d / "m")
        return True
    except OSError as e:
        log.info("overlayfs unavailable (%s); container rootfs will be copied", e)
        return False
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- copy fallback

def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _copy_meta(src: str, dst: str, st: os.stat_result) -> None:
    if os.geteuid() == 0:
        os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    try:
        for name in os.listxattr(src, follow_symlinks=False):
            if not name.startswith("trusted.overlay."):
                os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False)
    except OSError:
        pass
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def apply_diff(src: Path | str, dst: Path | str) -> None:
    """Merge one overlay-format diff directory onto `dst` (whiteouts delete, opaque dirs replace)."""
    links: dict[tuple[int, int], str] = {}
    dirs: list[tuple[str, str, os.stat_result]] = []

    def merge(s_dir: str, d_dir: str) -> None:
        with os.scandir(s_dir) as it:
            entries = list(it)
        for e in entries:
            s, d = e.path, os.path.join(d_dir, e.name)
            st = e.stat(follow_symlinks=False)
            mode = st.st_mode
            if _is_whiteout(st):
                _remove(d)
                continue
            if stat.S_ISDIR(mode):
                try:
                    dst_st = os.lstat(d)
                    if not stat.S_ISDIR(dst_st.st_mode):
                        os.unlink(d)
                        os.mkdir(d, 0o700)
                    elif _is_opaque(s):
                        shutil.rmtree(d)
                        os.mkdir(d, 0o700)
                except FileNotFoundError:
                    os.mkdir(d, 0o700)
                merge(s, d)
                dirs.append((s, d, st))
                continue
            _remove(d)
            if stat.S_ISREG(mode) and st.st_nlink > 1 and (st.st_dev, st.st_ino) in links:
                os.link(links[(st.st_dev, st.st_ino)], d)
                continue
            if stat.S_ISLNK(mode):
                os.symlink(os.readlink(s), d)
            elif stat.S_ISREG(mode):
                shutil.copyfile(s, d, follow_symlinks=False)
                if st.st_nlink > 1:
                    links[(st.st_dev, st.st_ino)] = d
            elif stat.S_ISFIFO(mode):
                os.mkfifo(d)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                try:
                    os.mknod(d, mode, st.st_rdev)
                except PermissionError:
                    continue
            else:
                continue
            _copy_meta(s, d, st)

    merge(str(src), str(dst))
    for s, d, st in reversed(dirs):
        _copy_meta(s, d, st)


def copy_layers(lowers_bottom_first: list[Path], target: Path) -> None:
    """Build a private rootfs by applying every diff in order."""
    target.mkdir(parents=True, exist_ok=True)
    for layer in lowers_bottom_first:
        apply_diff(layer, target)
        st = os.lstat(layer)
        _copy_meta(str(layer), str(target), st)
