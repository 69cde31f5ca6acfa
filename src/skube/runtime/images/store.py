"""Content-addressed image store under DATA_DIR/images, shared by the cluster and the CLI.

    blobs/sha256/<hex>        verified blobs (manifests, configs, compressed layers)
    snapshots/<hex>/fs        one layer's unpacked diff, named by its chain ID (read-only)
    ingest/                   partial downloads and unpacks, renamed into place when verified
    locks/                    flock files: per-blob/per-snapshot single flight across processes,
                              and `gc.lock` (shared while content is being added or mounted,
                              exclusive while pruning)
    index.db                  SQLite (WAL): images, blobs, snapshots, mounts

Every write of content goes ingest -> verify -> rename, so a crash leaves no half blob in place.
"""
from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import shutil
import sqlite3
import time
import uuid
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import orjson

SCHEMA = """
CREATE TABLE IF NOT EXISTS images(
  name TEXT PRIMARY KEY, digest TEXT NOT NULL, manifest_digest TEXT NOT NULL, config_digest TEXT NOT NULL,
  config BLOB NOT NULL, size INTEGER NOT NULL, layers TEXT NOT NULL, blobs TEXT NOT NULL,
  created REAL NOT NULL, last_used REAL NOT NULL);
CREATE TABLE IF NOT EXISTS blobs(digest TEXT PRIMARY KEY, size INTEGER NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots(chain_id TEXT PRIMARY KEY, diff_id TEXT NOT NULL, size INTEGER NOT NULL,
  created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS mounts(container_dir TEXT PRIMARY KEY, image TEXT NOT NULL, layers TEXT NOT NULL,
  mode TEXT NOT NULL, created REAL NOT NULL);
"""


@dataclass
class ImageRecord:
    """A named image present in the store; `layers` is its snapshot chain (chain IDs, bottom first)."""
    name: str
    digest: str                     # what the name resolved to (index digest for multi-platform images)
    config: dict[str, Any]          # the OCI image config's `config` (Entrypoint, Cmd, Env, WorkingDir, User...)
    size: int                       # bytes of content (compressed layers + config)
    layers: list[str]
    last_used: float
    manifest_digest: str = ""
    config_digest: str = ""         # the image ID
    blobs: list[str] = field(default_factory=list)
    created: float = 0.0

    @property
    def id(self) -> str:
        return self.config_digest

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "ImageRecord":
        return cls(name=row["name"], digest=row["digest"], config=orjson.loads(row["config"]), size=row["size"],
                   layers=orjson.loads(row["layers"]), last_used=row["last_used"],
                   manifest_digest=row["manifest_digest"], config_digest=row["config_digest"],
                   blobs=orjson.loads(row["blobs"]), created=row["created"])


def _hex(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise ValueError(f"unsupported digest {digest!r}")
    return hexpart


class DigestMismatch(Exception):
    pass


class ContentStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        for sub in ("blobs/sha256", "snapshots", "ingest", "locks"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.root / "index.db", isolation_level=None, check_same_thread=False,
                                  timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self._records: dict[str, ImageRecord] = {}
        self._version = -1
        self._flights: dict[str, asyncio.Future] = {}

    def close(self) -> None:
        self.db.close()

    # -- image records (cached; reloaded when another process commits) ------------------------
    def _refresh(self) -> None:
        v = self.db.execute("PRAGMA data_version").fetchone()[0]
        if v != self._version:
            self._records = {r["name"]: ImageRecord.from_row(r) for r in self.db.execute("SELECT * FROM images")}
            self._version = v

    def get(self, name: str) -> ImageRecord | None:
        self._refresh()
        return self._records.get(name)

    def records(self) -> list[ImageRecord]:
        self._refresh()
        return sorted(self._records.values(), key=lambda r: r.name)

    def put_image(self, rec: ImageRecord) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO images VALUES (?,?,?,?,?,?,?,?,?,?)",
            (rec.name, rec.digest, rec.manifest_digest, rec.config_digest, orjson.dumps(rec.config), rec.size,
             orjson.dumps(rec.layers).decode(), orjson.dumps(rec.blobs).decode(), rec.created, rec.last_used))
        self._refresh()
        self._records[rec.name] = rec

    def delete_image(self, name: str) -> bool:
        n = self.db.execute("DELETE FROM images WHERE name=?", (name,)).rowcount
        self._refresh()
        self._records.pop(name, None)
        return n > 0

    def touch(self, name: str, when: float | None = None) -> None:
        when = when or time.time()
        self.db.execute("UPDATE images SET last_used=? WHERE name=?", (when, name))
        self._refresh()
        if name in self._records:
            self._records[name].last_used = when

    # -- locks -----------------------------------------------------------
    @asynccontextmanager
    async def lock(self, name: str, kind: int = fcntl.LOCK_EX) -> AsyncIterator[None]:
        """A flock on locks/<name> (taken in a thread: it may wait for another process)."""
        fd = os.open(self.root / "locks" / name, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, kind | fcntl.LOCK_NB)
            except BlockingIOError:
                await asyncio.to_thread(fcntl.flock, fd, kind)
            yield
        finally:
            os.close(fd)

    def content_lock(self):
        """Held (shared) while adding or mounting content, so pruning never races a pull."""
        return self.lock("gc.lock", fcntl.LOCK_SH)

    @contextmanager
    def try_exclusive(self, name: str = "gc.lock"):
        fd = os.open(self.root / "locks" / name, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                yield True
            except BlockingIOError:
                yield False
        finally:
            os.close(fd)

    async def single_flight(self, key: str, make: Callable[[], Any]) -> Any:
        """Run `make()` once per key in this process and once across processes (flock)."""
        fut = self._flights.get(key)
        if fut is not None:
            return await asyncio.shield(fut)

        async def run():
            async with self.lock(key.replace(":", "-") + ".lock"):
                return await make()

        task = asyncio.ensure_future(run())
        self._flights[key] = task
        task.add_done_callback(lambda _: self._flights.pop(key, None))
        return await asyncio.shield(task)

    # -- blobs -----------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / _hex(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def read_blob(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    def ingest_path(self, tag: str = "") -> Path:
        return self.root / "ingest" / f"{uuid.uuid4().hex}{tag}"

    def commit_blob(self, tmp: Path, digest: str, size: int) -> Path:
        dst = self.blob_path(digest)
        os.replace(tmp, dst)
        self.db.execute("INSERT OR IGNORE INTO blobs VALUES (?,?,?)", (digest, size, time.time()))
        return dst

    def put_blob_bytes(self, data: bytes, digest: str | None = None) -> str:
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if digest and digest != got:
            raise DigestMismatch(f"digest mismatch: expected {digest}, got {got}")
        if not self.has_blob(got):
            tmp = self.ingest_path()
            tmp.write_bytes(data)
            self.commit_blob(tmp, got, len(data))
        return got

    # -- snapshots -------------------------------------------------------
    def snapshot_dir(self, chain_id: str) -> Path:
        return self.root / "snapshots" / _hex(chain_id)

    def snapshot_fs(self, chain_id: str) -> Path:
        return self.snapshot_dir(chain_id) / "fs"

    def has_snapshot(self, chain_id: str) -> bool:
        return self.snapshot_fs(chain_id).is_dir()

    def commit_snapshot(self, tmp_dir: Path, chain_id: str, diff_id: str, size: int) -> None:
        os.replace(tmp_dir, self.snapshot_dir(chain_id))
        self.db.execute("INSERT OR REPLACE INTO snapshots VALUES (?,?,?,?)", (chain_id, diff_id, size, time.time()))

    # -- mounts (rootfs in use) -----------------------------------------
    def add_mount(self, container_dir: Path, image: str, layers: list[str], mode: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO mounts VALUES (?,?,?,?,?)",
                        (str(container_dir), image, orjson.dumps(layers).decode(), mode, time.time()))

    def remove_mount(self, container_dir: Path) -> None:
        self.db.execute("DELETE FROM mounts WHERE container_dir=?", (str(container_dir),))

    def images_in_use(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT DISTINCT image FROM mounts")}

    # -- usage and pruning -------------------------------------------------
    def disk_usage(self) -> int:
        b = self.db.execute("SELECT COALESCE(SUM(size),0) FROM blobs").fetchone()[0]
        s = self.db.execute("SELECT COALESCE(SUM(size),0) FROM snapshots").fetchone()[0]
        return b + s

    def prune(self) -> int:
        """Delete blobs and snapshots no image or mount refers to. Caller holds gc.lock exclusively."""
        keep_blobs: set[str] = set()
        keep_snaps: set[str] = set()
        for row in self.db.execute("SELECT blobs, layers FROM images"):
            keep_blobs.update(orjson.loads(row[0]))
            keep_snaps.update(orjson.loads(row[1]))
        for row in self.db.execute("SELECT layers FROM mounts"):
            keep_snaps.update(orjson.loads(row[0]))
        freed = 0
        for digest, size in self.db.execute("SELECT digest, size FROM blobs").fetchall():
            if digest not in keep_blobs:
                self.blob_path(digest).unlink(missing_ok=True)
                self.db.execute("DELETE FROM blobs WHERE digest=?", (digest,))
                freed += size
        for chain, size in self.db.execute("SELECT chain_id, size FROM snapshots").fetchall():
            if chain not in keep_snaps:
                shutil.rmtree(self.snapshot_dir(chain), ignore_errors=True)
                self.db.execute("DELETE FROM snapshots WHERE chain_id=?", (chain,))
                freed += size
        # leftovers of interrupted downloads/unpacks (nothing writes there while we hold the lock)
        for p in (self.root / "ingest").iterdir():
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        return freed
