"""Volume ownership for a pod's ``securityContext.fsGroup``, as the kubelet's
SetVolumeOwnership: every file and directory gets group ``fsGroup``; files gain group
read (+write unless read-only), directories also group execute and the setgid bit so new
files inherit the group. ``fsGroupChangePolicy: OnRootMismatch`` skips the walk when the
volume's root already has the right group and permissions."""
from __future__ import annotations

import os
import stat
from pathlib import Path

RW, RO, EXEC = 0o660, 0o440, 0o110


def _mask(is_dir: bool, read_only: bool) -> int:
    m = RO if read_only else RW
    return m | stat.S_ISGID | EXEC if is_dir else m


def root_matches(path: Path | str, gid: int, read_only: bool = False) -> bool:
    """The volume's root already has group ``gid`` and the permission bits it needs."""
    st = os.stat(path)
    want = _mask(True, read_only)
    return st.st_gid == gid and st.st_mode & want == want


def set_volume_ownership(path: Path | str, gid: int | None, *, read_only: bool = False,
                         policy: str | None = None) -> bool:
    """Apply ``gid`` to the tree at ``path``; False when nothing was to do (no fsGroup, or
    OnRootMismatch with a matching root). Symlinks get the group, never a mode change."""
    if gid is None:
        return False
    if policy == "OnRootMismatch" and root_matches(path, gid, read_only):
        return False
    for root, dirs, files in os.walk(path):
        for name in [None, *dirs, *files]:
            p = root if name is None else os.path.join(root, name)
            st = os.lstat(p)
            if st.st_gid != gid:
                os.lchown(p, -1, gid)
            if stat.S_ISLNK(st.st_mode):
                continue
            mode = stat.S_IMODE(st.st_mode) | _mask(stat.S_ISDIR(st.st_mode), read_only)
            if stat.S_ISDIR(st.st_mode) or mode != stat.S_IMODE(st.st_mode):
                os.chmod(p, mode)
    return True


__all__ = ["set_volume_ownership", "root_matches"]
