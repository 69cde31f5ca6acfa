"""The revisioned object store: an append-only SQLite log (after k3s's kine) plus
the current state in memory.

Every write is one INSERT into ``kine`` whose id is the new global revision;
a delete inserts a tombstone row. The store is the only writer, so it assigns
revision = current + 1 itself and checks existence and expected revisions
against its in-memory state (including writes not yet committed), which makes
concurrent updates with the same expected revision conflict instead of both
winning. Writes issued in the same event-loop tick share one transaction
(group commit); callers resume, watchers are fed and reads see the change only
after COMMIT. The database runs in WAL mode with synchronous=NORMAL: a committed
write survives a crash of the process.

Reads of the current state never touch SQLite. Reads of the past (``list_at``
and watch history older than the watch cache) run on one reader thread with its
own connection. Compaction deletes rows superseded at or before the compacted
revision, a chunk of revisions per transaction, and records its progress in the
``meta`` table so the revision never goes backwards across restarts.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import sqlite3
from bisect import bisect_left, bisect_right, insort
from concurrent.futures import ThreadPoolExecutor

import orjson

from .errors import ConflictError, ExpiredError, KeyExistsError, KeyNotFoundError, StoreError
from .records import ADDED, DELETED, MODIFIED, Event, Record
from .watch import WatchCache, WatchHub, Watcher

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kine (
    id              INTEGER PRIMARY KEY,   -- the revision of this change
    name            TEXT    NOT NULL,      -- the key
    created         INTEGER NOT NULL,      -- 1: this row created the key
    deleted         INTEGER NOT NULL,      -- 1: tombstone; value is the last state
    create_revision INTEGER NOT NULL,
    prev_revision   INTEGER NOT NULL,      -- the row this one supersedes (0 for a create)
    value           BLOB    NOT NULL       -- the object as JSON, resourceVersion = id
);
CREATE INDEX IF NOT EXISTS kine_name_id ON kine (name, id);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"""

_INSERT = "INSERT INTO kine (id, name, created, deleted, create_revision, prev_revision, value) VALUES (?,?,?,?,?,?,?)"
_SET_META = "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value"

# At most this many writes go into one transaction; the rest follow in the next loop tick.
MAX_BATCH = 1000
# Compaction deletes the rows superseded by the rows of this many revisions per transaction.
COMPACT_CHUNK = 500
# A WAL checkpoint runs on a background thread after about this many bytes went to the WAL.
CHECKPOINT_BYTES = 16 << 20


def _prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (None: no bound)."""
    chars = list(prefix)
    while chars:
        c = ord(chars[-1])
        if c < 0x10FFFF:
            chars[-1] = chr(c + 1 if c + 1 != 0xD800 else 0xE000)
            return "".join(chars)
        chars.pop()
    return None


def _name_range(column: str, prefix: str, start_key: str | None = None) -> tuple[str, list]:
    """SQL conditions (leading " AND ...") selecting names under prefix and after start_key."""
    sql, args = [], []
    if start_key is not None and start_key >= prefix:
        sql.append(f" AND {column} > ?")
        args.append(start_key)
    elif prefix:
        sql.append(f" AND {column} >= ?")
        args.append(prefix)
    end = _prefix_end(prefix) if prefix else None
    if end is not None:
        sql.append(f" AND {column} < ?")
        args.append(end)
    return "".join(sql), args


def _connect(path: str, *, check_same_thread: bool = True) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=check_same_thread)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


# --- functions run on the reader thread -------------------------------------------

def _history_rows(conn: sqlite3.Connection, prefix: str, after: int, upto: int, limit: int,
                  narrow: bool) -> list:
    # A narrow prefix (a namespace, one object) is found faster through the name index
    # than by walking every revision in (after, upto].
    cond, args = _name_range("k.name", prefix)
    index = "INDEXED BY kine_name_id" if narrow and cond else "NOT INDEXED"
    return conn.execute(
        "SELECT k.id, k.name, k.created, k.deleted, k.value, p.value"
        f" FROM kine AS k {index} LEFT JOIN kine AS p ON p.id = k.prev_revision"
        f" WHERE k.id > ? AND k.id <= ?{cond} ORDER BY k.id LIMIT ?",
        [after, upto, *args, limit]).fetchall()


def _list_rows(conn: sqlite3.Connection, prefix: str, revision: int, start_key: str | None,
               limit: int | None) -> list:
    # Walks kine_name_id in name order (no sort, stops at LIMIT): a row is the state of
    # its key at `revision` when no newer row of the key exists up to `revision`.
    cond, args = _name_range("k.name", prefix, start_key)
    return conn.execute(
        "SELECT k.id, k.name, k.create_revision, k.value FROM kine AS k"
        f" WHERE k.id <= ?{cond} AND k.deleted = 0 AND NOT EXISTS (SELECT 1 FROM kine AS n"
        " WHERE n.name = k.name AND n.id > k.id AND n.id <= ?) ORDER BY k.name LIMIT ?",
        [revision, *args, revision, -1 if limit is None else limit]).fetchall()


class _Write:
    """A write accepted but not yet committed."""

    __slots__ = ("type", "record", "prev", "row", "future")

    def __init__(self, type_: str, record: Record, prev: Record | None, future: asyncio.Future):
        self.type = type_
        self.record = record
        self.prev = prev
        self.future = future
        self.row = (record.mod_revision, record.key, type_ is ADDED, type_ is DELETED,
                    record.create_revision, 0 if prev is None else prev.mod_revision, record.raw)


def _stamp(obj: dict, revision: int) -> bytes:
    """Set metadata.resourceVersion and serialise; restores the old value on failure."""
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    old = meta.get("resourceVersion")
    meta["resourceVersion"] = str(revision)
    try:
        # orjson's bytes keep its growth buffer (8 KB for a 2 KB pod): copy to the exact size
        return memoryview(orjson.dumps(obj)).tobytes()
    except Exception:
        if old is None:
            meta.pop("resourceVersion", None)
        else:
            meta["resourceVersion"] = old
        raise


class Store:
    """Revisioned key/object store. Open with ``await Store.open(path)``; see the module doc."""

    def __init__(self, path: str, conn: sqlite3.Connection, *, compact_interval: float,
                 keep_revisions: int, watch_cache_size: int, max_watcher_queue: int,
                 group_commit: bool):
        self.path = path
        self._conn = conn
        self._loop = asyncio.get_running_loop()
        self._compact_interval = compact_interval
        self._keep_revisions = keep_revisions
        self._group_commit = group_commit
        self._closed = False

        self._state: dict[str, Record] = {}
        self._keys: list[str] = []               # sorted keys of _state
        self._rev = 0                            # newest committed (and visible) revision
        self._next_rev = 0                       # newest assigned revision (>= _rev)
        self._compacted = 0
        self._compact_progress = 0               # rows superseded up to here are deleted
        self._compact_lock = asyncio.Lock()
        self._compact_task: asyncio.Task | None = None

        self._pending: list[_Write] = []
        self._overlay: dict[str, _Write] = {}    # key -> its newest uncommitted write
        self._flush_handle: asyncio.Handle | None = None

        self._reader = ThreadPoolExecutor(1, thread_name_prefix="skube-store-read")
        self._reader_conn: sqlite3.Connection | None = None
        self._checkpointer = ThreadPoolExecutor(1, thread_name_prefix="skube-store-checkpoint")
        self._checkpoint_conn: sqlite3.Connection | None = None
        self._checkpoint_task: asyncio.Task | None = None
        self._wal_bytes = 0                      # estimated WAL growth since the last checkpoint
        self._hold_commits = False               # set while a checkpoint must finish undisturbed

        self._load()
        self._cache = WatchCache(watch_cache_size, self._rev, self._state.get)
        self._hub = WatchHub(cache=self._cache, max_queue=max_watcher_queue,
                             read_history=self._read_history,
                             revision=lambda: self._rev,
                             compacted_revision=lambda: self._compacted)

    @classmethod
    async def open(cls, path: str, *, compact_interval: float = 300.0, keep_revisions: int = 1000,
                   watch_cache_size: int = 10000, max_watcher_queue: int = 100_000,
                   group_commit: bool = True) -> Store:
        """Open (creating if needed) the store at ``path`` and load the current state.

        ``compact_interval`` <= 0 disables background compaction. A watcher with
        more than ``max_watcher_queue`` undelivered events is dropped.
        ``group_commit=False`` commits each write on its own, inline; it exists to
        measure group commit against it (benchmarks/store_micro.py) — a writer
        that then never yields also starves the background checkpoints.
        ``path`` must be a file: the reader and checkpoint threads open it too.
        """
        conn = _connect(path)
        # checkpoints run on a background thread (see _checkpoint_wal), not inside a commit
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute(f"PRAGMA journal_size_limit = {2 * CHECKPOINT_BYTES}")
        conn.executescript(_SCHEMA)
        store = cls(path, conn, compact_interval=compact_interval, keep_revisions=keep_revisions,
                    watch_cache_size=watch_cache_size, max_watcher_queue=max_watcher_queue,
                    group_commit=group_commit)
        if compact_interval > 0:
            store._compact_task = asyncio.create_task(store._compact_loop(), name="skube-store-compact")
        return store

    def _load(self) -> None:
        conn = self._conn
        meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
        newest = conn.execute("SELECT COALESCE(MAX(id), 0) FROM kine").fetchone()[0]
        self._rev = self._next_rev = max(newest, meta.get("revision", 0))
        self._compacted = meta.get("compact_revision", 0)
        self._compact_progress = meta.get("compact_progress", self._compacted)
        state = self._state
        loads = orjson.loads
        # Parsing creates no reference cycles; the cyclic GC would only rescan the
        # growing heap again and again (it triples the load time of 10k pods).
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            for rev, key, create_rev, value in conn.execute(
                    "SELECT k.id, k.name, k.create_revision, k.value FROM kine AS k"
                    " JOIN (SELECT MAX(id) AS id FROM kine GROUP BY name) AS m ON k.id = m.id"
                    " WHERE k.deleted = 0"):
                state[key] = Record(key, loads(value), value, rev, create_rev)
        finally:
            if gc_was_enabled:
                gc.enable()
        self._keys = sorted(state)

    async def close(self) -> None:
        """Commit writes already accepted, end all watchers, stop background work, close sqlite."""
        if self._closed:
            return
        self._closed = True
        if self._compact_task is not None:
            self._compact_task.cancel()
            try:
                await self._compact_task
            except asyncio.CancelledError:
                pass
        async with self._compact_lock:   # an explicit compact() may still be running
            pass
        if self._checkpoint_task is not None:
            await self._checkpoint_task
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self._flush()
        self._hub.close_all()
        loop = self._loop
        await loop.run_in_executor(self._reader, self._close_reader_conn)
        await loop.run_in_executor(self._checkpointer, self._close_checkpoint_conn)
        self._reader.shutdown(wait=True)
        self._checkpointer.shutdown(wait=True)
        self._conn.close()   # the last connection checkpoints and removes the WAL

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("store is closed")

    # --- revisions -------------------------------------------------------------------

    @property
    def revision(self) -> int:
        """The newest committed revision."""
        return self._rev

    @property
    def compacted_revision(self) -> int:
        """Revisions older than this one are no longer available."""
        return self._compacted

    # --- reads of the current state (memory) ----------------------------------------

    def get(self, key: str) -> Record | None:
        return self._state.get(key)

    def _span(self, prefix: str, start_key: str | None) -> tuple[int, int]:
        keys = self._keys
        if start_key is not None and start_key >= prefix:
            lo = bisect_right(keys, start_key)
        else:
            lo = bisect_left(keys, prefix) if prefix else 0
        end = _prefix_end(prefix) if prefix else None
        hi = len(keys) if end is None else bisect_left(keys, end, lo)
        return lo, max(lo, hi)

    def list(self, prefix: str, start_key: str | None = None,
             limit: int | None = None) -> tuple[list[Record], int]:
        """Current records under ``prefix`` sorted by key, keys > start_key, at most limit."""
        lo, hi = self._span(prefix, start_key)
        if limit is not None and limit >= 0:
            hi = min(hi, lo + limit)
        state = self._state
        return [state[k] for k in self._keys[lo:hi]], self._rev

    def count(self, prefix: str, start_key: str | None = None) -> int:
        """How many current keys are under ``prefix`` (and > start_key): remainingItemCount."""
        lo, hi = self._span(prefix, start_key)
        return hi - lo

    async def list_at(self, prefix: str, revision: int, start_key: str | None = None,
                      limit: int | None = None) -> list[Record]:
        """The records under ``prefix`` as they were at ``revision`` (see ``list``)."""
        self._check_open()
        if revision < self._compacted:
            raise ExpiredError(f"revision {revision} is compacted (compacted revision {self._compacted})")
        if revision >= self._rev:
            return self.list(prefix, start_key, limit)[0]
        rows = await self._read(_list_rows, prefix, revision, start_key, limit)
        if revision < self._compacted:   # compaction started meanwhile: rows may be missing
            raise ExpiredError(f"revision {revision} is compacted (compacted revision {self._compacted})")
        state = self._state
        out = []
        for rev, key, create_rev, value in rows:
            cur = state.get(key)
            if cur is not None and cur.mod_revision == rev:
                out.append(cur)
            else:
                out.append(Record(key, orjson.loads(value), value, rev, create_rev))
        return out

    async def _read(self, fn, *args):
        return await self._loop.run_in_executor(self._reader, self._run_reader, fn, args)

    def _run_reader(self, fn, args):
        conn = self._reader_conn
        if conn is None:
            conn = self._reader_conn = _connect(self.path, check_same_thread=False)
            conn.execute("PRAGMA query_only = 1")
        return fn(conn, *args)

    def _close_reader_conn(self) -> None:
        if self._reader_conn is not None:
            self._reader_conn.close()
            self._reader_conn = None

    # --- writes ----------------------------------------------------------------------

    def _staged(self, key: str) -> Record | None:
        """The key's newest record counting uncommitted writes (None: absent or deleted)."""
        w = self._overlay.get(key)
        if w is None:
            return self._state.get(key)
        return None if w.type is DELETED else w.record

    async def create(self, key: str, obj: dict) -> Record:
        """Store a new object; sets obj's metadata.resourceVersion. The store keeps ``obj``."""
        self._check_open()
        if self._staged(key) is not None:
            raise KeyExistsError(key)
        rev = self._next_rev + 1
        raw = _stamp(obj, rev)
        return await self._submit(ADDED, Record(key, obj, raw, rev, rev), None)

    async def update(self, key: str, obj: dict, expected_revision: int | None = None) -> Record:
        """Replace an existing object; sets obj's metadata.resourceVersion. The store keeps ``obj``."""
        self._check_open()
        prev = self._staged(key)
        if prev is None:
            raise KeyNotFoundError(key)
        if expected_revision is not None and expected_revision != prev.mod_revision:
            raise ConflictError(f"{key}: expected revision {expected_revision}, current {prev.mod_revision}")
        rev = self._next_rev + 1
        raw = _stamp(obj, rev)
        return await self._submit(MODIFIED, Record(key, obj, raw, rev, prev.create_revision), prev)

    async def delete(self, key: str, expected_revision: int | None = None) -> Record:
        """Delete an object; returns its last state with resourceVersion = the delete revision."""
        self._check_open()
        prev = self._staged(key)
        if prev is None:
            raise KeyNotFoundError(key)
        if expected_revision is not None and expected_revision != prev.mod_revision:
            raise ConflictError(f"{key}: expected revision {expected_revision}, current {prev.mod_revision}")
        rev = self._next_rev + 1
        obj = dict(prev.obj)
        obj["metadata"] = dict(obj.get("metadata") or {})
        raw = _stamp(obj, rev)
        return await self._submit(DELETED, Record(key, obj, raw, rev, prev.create_revision), prev)

    def _submit(self, type_: str, record: Record, prev: Record | None) -> asyncio.Future:
        w = _Write(type_, record, prev, self._loop.create_future())
        self._next_rev = record.mod_revision
        self._overlay[record.key] = w
        self._pending.append(w)
        if not self._group_commit:
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)
        return w.future

    def _flush(self) -> None:
        """Commit the pending writes (up to MAX_BATCH) in one transaction, then apply and publish them."""
        self._flush_handle = None
        pending = self._pending
        if not pending or self._hold_commits:
            return
        if len(pending) > MAX_BATCH:   # keep each transaction (and loop stall) short
            batch, self._pending = pending[:MAX_BATCH], pending[MAX_BATCH:]
            self._flush_handle = self._loop.call_soon(self._flush)
        else:
            batch, self._pending = pending, []
        conn = self._conn
        try:
            if len(batch) == 1:
                conn.execute(_INSERT, batch[0].row)      # autocommit
            else:
                conn.execute("BEGIN")
                conn.executemany(_INSERT, [w.row for w in batch])
                conn.execute("COMMIT")
        except Exception as exc:
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            # every accepted write after this batch assumed it: fail them all
            batch += self._pending
            self._pending = []
            self._next_rev = self._rev
            self._overlay.clear()
            log.exception("store commit failed")
            for w in batch:
                if not w.future.done():
                    w.future.set_exception(StoreError(f"write of {w.record.key} failed: {exc}"))
            return
        self._apply(batch)

    def _apply(self, batch: list[_Write]) -> None:
        state, keys, overlay, cache = self._state, self._keys, self._overlay, self._cache
        events = []
        written = 0
        for w in batch:
            rec, prev, type_ = w.record, w.prev, w.type
            key = rec.key
            if type_ is DELETED:
                del state[key]
                del keys[bisect_left(keys, key)]
            else:
                if prev is None:
                    insort(keys, key)
                state[key] = rec
            if overlay.get(key) is w:
                del overlay[key]
            cache.append(rec.mod_revision, key, type_, rec.raw, None if prev is None else prev.raw)
            events.append(Event(type_, key, rec.obj, rec.raw, rec.mod_revision,
                                None if prev is None else prev.obj))
            written += len(rec.raw) + len(key)
        self._rev = batch[-1].record.mod_revision
        self._hub.publish(events)
        for w in batch:
            if not w.future.done():
                w.future.set_result(w.record)
        self._wal_bytes += written + written // 4 + 4 * 4096   # + table/index pages rewritten
        if self._wal_bytes > CHECKPOINT_BYTES and self._checkpoint_task is None and not self._closed:
            self._wal_bytes = 0
            self._checkpoint_task = self._loop.create_task(self._checkpoint_wal())

    # --- WAL checkpoints -------------------------------------------------------------

    async def _checkpoint_wal(self) -> None:
        """Copy the WAL into the database file on the checkpoint thread, so the WAL can restart.

        The first pass copies the bulk beside new commits. Commits landing meanwhile
        would keep the WAL from ever being fully copied (so it could never restart at
        its beginning and would grow without bound), hence a second, short pass
        copies the rest while commits are held back: writers wait a moment, the
        event loop never blocks on the checkpoint's fsyncs.
        """
        try:
            busy, _frames, _copied = await self._loop.run_in_executor(self._checkpointer, self._checkpoint)
            if not busy and not self._closed:
                self._hold_commits = True
                try:
                    await self._loop.run_in_executor(self._checkpointer, self._checkpoint)
                finally:
                    self._hold_commits = False
                    if self._pending and self._flush_handle is None:
                        self._flush_handle = self._loop.call_soon(self._flush)
        except Exception as exc:   # the WAL just grows until the next attempt
            log.warning("WAL checkpoint failed: %s", exc)
        finally:
            self._checkpoint_task = None

    def _checkpoint(self) -> tuple[int, int, int]:
        conn = self._checkpoint_conn
        if conn is None:
            conn = self._checkpoint_conn = _connect(self.path, check_same_thread=False)
        return conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def _close_checkpoint_conn(self) -> None:
        if self._checkpoint_conn is not None:
            self._checkpoint_conn.close()
            self._checkpoint_conn = None

    # --- watch -----------------------------------------------------------------------

    def watch(self, prefix: str, from_revision: int) -> Watcher:
        """Events under ``prefix`` with revision > from_revision, history first, then live."""
        self._check_open()
        if from_revision < self._compacted:
            raise ExpiredError(f"revision {from_revision} is compacted (compacted revision {self._compacted})")
        return self._hub.watch(prefix, from_revision, self._rev)

    async def _read_history(self, prefix: str, after: int, upto: int, limit: int) -> list[Event]:
        narrow = self.count(prefix) * 4 <= len(self._state)
        rows = await self._read(_history_rows, prefix, after, upto, limit, narrow)
        state = self._state
        loads = orjson.loads
        events = []
        for rev, key, created, deleted, value, prev_value in rows:
            type_ = DELETED if deleted else ADDED if created else MODIFIED
            cur = state.get(key)
            obj = cur.obj if cur is not None and cur.mod_revision == rev else loads(value)
            prev = None if type_ is ADDED or prev_value is None else loads(prev_value)
            events.append(Event(type_, key, obj, value, rev, prev))
        return events

    # --- compaction ------------------------------------------------------------------

    async def compact(self, revision: int | None = None) -> int:
        """Forget history older than ``revision`` (default: keep the last keep_revisions).

        Returns the compacted revision. Rows superseded at or before it, and
        tombstones at or before it, are deleted; the state at ``revision`` and
        every change after it stay readable.
        """
        self._check_open()
        if revision is None:
            revision = self._rev - self._keep_revisions
        if revision > self._rev:
            raise ValueError(f"cannot compact revision {revision}: newest revision is {self._rev}")
        async with self._compact_lock:
            if revision > self._compacted:
                # Recorded before any row goes: after a crash the revision cannot go back
                # and nobody reads a half-compacted past.
                self._transaction([(_SET_META, ("revision", self._rev)),
                                   (_SET_META, ("compact_revision", revision))])
                self._compacted = revision   # from now on older revisions are refused
            target = self._compacted
            while self._compact_progress < target and not self._closed:
                lo = self._compact_progress
                hi = min(lo + COMPACT_CHUNK, target)
                self._transaction([
                    # rows superseded by a row of this chunk, and the chunk's tombstones
                    ("DELETE FROM kine WHERE id IN (SELECT prev_revision FROM kine"
                     " WHERE id > ? AND id <= ? AND prev_revision > 0)", (lo, hi)),
                    ("DELETE FROM kine WHERE id > ? AND id <= ? AND deleted = 1", (lo, hi)),
                    (_SET_META, ("compact_progress", hi)),
                ])
                self._compact_progress = hi
                await asyncio.sleep(0)   # let writes and reads run between chunks
            return target

    def _transaction(self, statements: list[tuple[str, tuple]]) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN")
            for sql, args in statements:
                conn.execute(sql, args)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def _compact_loop(self) -> None:
        while True:
            await asyncio.sleep(self._compact_interval)
            try:
                if self._rev - self._keep_revisions > self._compacted:
                    await self.compact()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("store compaction failed")
