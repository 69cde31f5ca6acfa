"""The billing ledger: one SQLite row per instance run, under a node's data dir.

A *run* is one instance of one pod, from the moment the provider started it
(``start``) to the moment it stopped (``stop``, NULL while it runs). A pod
whose instance is lost and recreated has two runs; container restarts inside
an instance do not start a new run (the instance keeps being billed).

Durability: WAL journal, ``synchronous=NORMAL`` — every committed write
survives a crash of the process (``kill -9``); the meter commits before the
node writes the status that made it record. Replays are harmless: a run is
identified by ``(pod_uid, start)`` (INSERT OR IGNORE), and ``stop`` is only
ever written once, on a run that has none.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .specs import CpuMemory

LEDGER_FILE = "ledger.db"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY,
    pod_uid     TEXT    NOT NULL,
    namespace   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    node        TEXT    NOT NULL,
    spec_table  TEXT    NOT NULL,            -- which size menu / price entry (eci, fargate…)
    cpu_m       INTEGER NOT NULL,            -- billed size: milli-vCPU
    memory_mib  INTEGER NOT NULL,            -- billed size: MiB
    rounded     INTEGER NOT NULL DEFAULT 1,  -- 0: larger than every size, billed as asked
    req_cpu_m   INTEGER NOT NULL DEFAULT 0,  -- what the pod asked for (before rounding)
    req_memory  INTEGER NOT NULL DEFAULT 0,  -- bytes
    start       REAL    NOT NULL,            -- unix seconds
    stop        REAL,                        -- NULL while running
    owner_kind  TEXT,
    owner_name  TEXT,
    spot        INTEGER NOT NULL DEFAULT 0,
    UNIQUE (pod_uid, start)
);
CREATE INDEX IF NOT EXISTS runs_open ON runs (pod_uid) WHERE stop IS NULL;
CREATE INDEX IF NOT EXISTS runs_stop ON runs (stop);
"""

_COLUMNS = ("id", "pod_uid", "namespace", "name", "node", "spec_table", "cpu_m", "memory_mib",
            "rounded", "req_cpu_m", "req_memory", "start", "stop", "owner_kind", "owner_name", "spot")


@dataclass
class Run(CpuMemory):
    id: int
    pod_uid: str
    namespace: str
    name: str
    node: str
    spec_table: str
    cpu_m: int
    memory_mib: int
    rounded: int
    req_cpu_m: int
    req_memory: int
    start: float
    stop: float | None
    owner_kind: str | None
    owner_name: str | None
    spot: int


def open_ledger_db(path: Path, schema: str, what: str, *, create: bool) -> sqlite3.Connection:
    """A ledger's SQLite database: autocommit (every write its own transaction), WAL so
    readers (``skube bill``) never block the writer; created with ``schema`` if asked."""
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.exists():
        raise FileNotFoundError(f"no {what} at {path}")
    db = sqlite3.connect(str(path), isolation_level=None, timeout=10.0, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 10000")
    if create:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.executescript(schema)
    return db


class Ledger:
    """``Ledger(path)`` opens (and creates) the ledger database at ``path``."""

    def __init__(self, path: str | Path, *, create: bool = True):
        self.path = Path(path)
        self.db = open_ledger_db(self.path, _SCHEMA, "billing ledger", create=create)
        if create:
            self.db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)",
                            (str(SCHEMA_VERSION),))

    @classmethod
    def for_data_dir(cls, data_dir: str | Path, *, create: bool = True) -> "Ledger":
        """The ledger of the node whose data dir is ``data_dir`` (``billing/ledger.db``)."""
        return cls(Path(data_dir) / "billing" / LEDGER_FILE, create=create)

    def close(self) -> None:
        self.db.close()

    # ---- writes (each one a committed transaction) ---------------------------------------

    def start_run(self, *, pod_uid: str, namespace: str, name: str, node: str, spec_table: str,
                  cpu_m: int, memory_mib: int, start: float, rounded: bool = True,
                  req_cpu_m: int = 0, req_memory: int = 0, owner_kind: str | None = None,
                  owner_name: str | None = None, spot: bool = False) -> int:
        """Record that a run of ``pod_uid`` started at ``start``; returns its id. Recording
        the same ``(pod_uid, start)`` again changes nothing."""
        self.db.execute(
            "INSERT OR IGNORE INTO runs (pod_uid, namespace, name, node, spec_table, cpu_m, "
            "memory_mib, rounded, req_cpu_m, req_memory, start, owner_kind, owner_name, spot) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (pod_uid, namespace, name, node, spec_table, cpu_m, memory_mib, int(rounded),
             req_cpu_m, req_memory, start, owner_kind, owner_name, int(spot)))
        row = self.db.execute("SELECT id FROM runs WHERE pod_uid = ? AND start = ?",
                              (pod_uid, start)).fetchone()
        return row[0]

    def stop_run(self, pod_uid: str, stop: float, *, start: float | None = None) -> int:
        """Record that the open run(s) of ``pod_uid`` (only the one started at ``start``, if
        given) stopped at ``stop`` (never before its start). Returns how many were open."""
        sql = "UPDATE runs SET stop = MAX(?, start) WHERE pod_uid = ? AND stop IS NULL"
        args: tuple = (stop, pod_uid)
        if start is not None:
            sql += " AND start = ?"
            args += (start,)
        return self.db.execute(sql, args).rowcount

    # ---- reads --------------------------------------------------------------------------

    def open_runs(self) -> list[Run]:
        return self._select("WHERE stop IS NULL")

    def runs(self, *, since: float | None = None, namespace: str | None = None) -> list[Run]:
        """Runs that were running at or after ``since`` (all, without it), oldest first."""
        where, args = [], []
        if since is not None:
            where.append("(stop IS NULL OR stop > ?)")
            args.append(since)
        if namespace is not None:
            where.append("namespace = ?")
            args.append(namespace)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        return self._select(clause + " ORDER BY start, id", args)

    def _select(self, clause: str, args=()) -> list[Run]:
        rows = self.db.execute(f"SELECT {', '.join(_COLUMNS)} FROM runs {clause}", args).fetchall()
        return [Run(*r) for r in rows]


__all__ = ["Ledger", "Run", "LEDGER_FILE"]
