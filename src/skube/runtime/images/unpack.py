"""Apply one image layer (tar, tar+gzip, tar+zstd) to an empty directory as an overlayfs diff.

Whiteouts become overlayfs whiteouts: `.wh.NAME` -> character device 0:0 named NAME, and
`.wh..wh..opq` -> the `trusted.overlay.opaque=y` xattr on its directory. The layer is read as a
stream (never whole in memory), its uncompressed digest (the diff ID) is computed on the way, and
no entry can write outside the directory (absolute paths, `..`, symlinked parents, hardlinks
out are refused). Device nodes are created when permitted and skipped otherwise.
"""
from __future__ import annotations

import errno
import gzip
import hashlib
import logging
import os
import shutil
import stat
import tarfile
from pathlib import Path

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
CHUNK = 1 << 20
IS_ROOT = os.geteuid() == 0


class LayerError(Exception):
    """The layer is malformed, unsafe, or does not match its diff ID."""


class _HashingReader:
    """File-like wrapper hashing every byte read (the uncompressed stream -> diff ID)."""

    def __init__(self, raw):
        self.raw = raw
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.hash.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def open_decompressed(path: Path, media_type: str = ""):
    """Open a layer blob as a stream of tar bytes, detecting the compression from magic bytes."""
    f = open(path, "rb")
    magic = f.read(4)
    f.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb")
    if magic == b"\x28\xb5\x2f\xfd":
        try:
            import zstandard
        except ImportError:  # pragma: no cover
            f.close()
            raise LayerError(f"layer {path.name} is zstd-compressed and zstandard is not installed")
        return zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True, closefd=True)
    return f


def _clean_name(name: str) -> str | None:
    parts = []
    for p in name.replace("\\", "/").split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            raise LayerError(f"unsafe path in layer: {name!r}")
        parts.append(p)
    return "/".join(parts) or None


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


class _Extractor:
    def __init__(self, root: Path):
        self.root = str(root)
        self.safe_dirs: set[str] = {""}
        self.dirs: list[tuple[str, tarfile.TarInfo]] = []
        self.size = 0

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    def ensure_parent(self, rel: str) -> None:
        """Create missing parent dirs; refuse parents that are symlinks (they could point outside)."""
        parent = rel.rpartition("/")[0]
        if parent in self.safe_dirs:
            return
        cur = ""
        for comp in parent.split("/"):
            cur = f"{cur}/{comp}" if cur else comp
            if cur in self.safe_dirs:
                continue
            p = self.path(cur)
            try:
                st = os.lstat(p)
                if not stat.S_ISDIR(st.st_mode):
                    if stat.S_ISLNK(st.st_mode):
                        raise LayerError(f"layer entry {rel!r} is below a symlink")
                    os.unlink(p)
                    os.mkdir(p, 0o755)
            except FileNotFoundError:
                os.mkdir(p, 0o755)
            self.safe_dirs.add(cur)

    def apply(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        rel = _clean_name(m.name)
        if rel is None:  # the root directory itself
            self.dirs.append(("", m))
            return
        base = rel.rpartition("/")[2]
        if base.startswith(WHITEOUT_PREFIX):
            self.ensure_parent(rel)
            parent = rel.rpartition("/")[0]
            if base == OPAQUE:
                os.setxattr(self.path(parent) if parent else self.root, OPAQUE_XATTR, b"y")
                return
            target = self.path(f"{parent}/{base[4:]}" if parent else base[4:])
            _remove(target)
            os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(0, 0))
            return
        self.ensure_parent(rel)
        target = self.path(rel)
        try:
            st = os.lstat(target)
            if not (m.isdir() and stat.S_ISDIR(st.st_mode)):
                _remove(target)
                self.safe_dirs.discard(rel)
        except FileNotFoundError:
            pass
        if m.isdir():
            if not os.path.isdir(target):
                os.mkdir(target, 0o755)
            self.safe_dirs.add(rel)
            self.dirs.append((rel, m))
            return
        if m.isreg():
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                src = tf.extractfile(m)
                if src is not None:
                    shutil.copyfileobj(src, out, CHUNK)
            self.size += m.size
        elif m.issym():
            os.symlink(m.linkname, target)
        elif m.islnk():
            src_rel = _clean_name(m.linkname)
            if src_rel is None:
                raise LayerError(f"bad hardlink {m.name!r} -> {m.linkname!r}")
            src = self.path(src_rel)
            if os.path.islink(os.path.dirname(src)) or not os.path.lexists(src):
                raise LayerError(f"hardlink {m.name!r} -> {m.linkname!r} points to a missing entry")
            os.link(src, target, follow_symlinks=False)
            return  # metadata is the link target's
        elif m.ischr() or m.isblk():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            try:
                os.mknod(target, kind | (m.mode & 0o7777), os.makedev(m.devmajor, m.devminor))
            except PermissionError:
                log.debug("skipping device node %s (not permitted)", rel)
                return
        elif m.isfifo():
            os.mkfifo(target, m.mode & 0o7777)
        else:
            log.debug("skipping unsupported tar entry %s (type %r)", rel, m.type)
            return
        self.metadata(target, m)

    def metadata(self, target: str, m: tarfile.TarInfo) -> None:
        if IS_ROOT:
            try:
                os.chown(target, m.uid, m.gid, follow_symlinks=False)
            except OSError as e:  # e.g. ids not mapped in a user namespace
                if e.errno not in (errno.EINVAL, errno.EPERM):
                    raise
        for key, value in m.pax_headers.items():
            if key.startswith("SCHILY.xattr.") and not key.startswith("SCHILY.xattr.trusted.overlay."):
                try:
                    os.setxattr(target, key[13:], value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
                except OSError:
                    pass
        if not m.issym():
            os.chmod(target, m.mode & 0o7777)
        try:
            os.utime(target, (m.mtime, m.mtime), follow_symlinks=False)
        except OSError:
            pass

    def finish(self) -> None:
        for rel, m in reversed(self.dirs):
            self.metadata(self.path(rel) if rel else self.root, m)


def unpack_layer(blob: Path, dest: Path, *, media_type: str = "", diff_id: str | None = None) -> tuple[str, int]:
    """Unpack `blob` into the empty directory `dest`; returns (diff ID, unpacked bytes).

    Raises LayerError if the uncompressed digest differs from `diff_id`.
    """
    dest.mkdir(parents=True, exist_ok=True)
    ex = _Extractor(dest)
    with open_decompressed(blob, media_type) as raw:
        reader = _HashingReader(raw)
        try:
            with tarfile.open(fileobj=reader, mode="r|", errorlevel=1) as tf:
                for m in tf:
                    ex.apply(tf, m)
            reader.drain()
        except (tarfile.TarError, EOFError, OSError, ValueError) as e:
            if isinstance(e, LayerError):
                raise
            raise LayerError(f"cannot unpack layer {blob.name}: {e}") from e
    ex.finish()
    got = "sha256:" + reader.hash.hexdigest()
    if diff_id and got != diff_id:
        raise LayerError(f"layer diff ID mismatch: config says {diff_id}, content is {got}")
    return got, ex.size


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI chain IDs: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out
