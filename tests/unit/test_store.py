"""Behaviour of skube.store: the revisioned SQLite store, its watch cache and compaction."""
from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

import skube.store.sqlite as store_sqlite
from skube.store import (
    ConflictError, Event, ExpiredError, KeyExistsError, KeyNotFoundError, Record, Store,
    StoreError,
)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=10))


def pod(name: str, ns: str = "default", **extra) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"}},
            "spec": {"nodeName": "n1"}, **extra}


def key(name: str, ns: str = "default") -> str:
    return f"/registry/pods/{ns}/{name}"


async def drain(w, n: int) -> list[Event]:
    """The next n events of watcher w."""
    out = []
    async for ev in w:
        out.append(ev)
        if len(out) == n:
            break
    return out


async def until(cond):
    """Yield to the event loop until cond() holds (bounded by run()'s timeout)."""
    while not cond():
        await asyncio.sleep(0)


def rows(path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT id, name, deleted FROM kine ORDER BY id").fetchall()


# --- create / get / list -----------------------------------------------------------

def test_create_get_list_prefix_and_pagination(tmp_path):
    async def main():
        s = await Store.open(str(tmp_path / "db"))
        assert s.revision == 0
        for name in ("c", "a", "b"):
            await s.create(key(name), pod(name))
        await s.create(key("a", "kube-system"), pod("a", "kube-system"))
        await s.create("/registry/services/default/a", {"metadata": {"name": "a"}})
        assert s.revision == 5

        rec = s.get(key("b"))
        assert isinstance(rec, Record)
        assert (rec.key, rec.mod_revision, rec.create_revision) == (key("b"), 3, 3)
        assert rec.obj["metadata"]["resourceVersion"] == "3"
        assert rec.raw == b'{"apiVersion":"v1","kind":"Pod","metadata":{"name":"b","namespace":"default",' \
                          b'"labels":{"app":"web"},"resourceVersion":"3"},"spec":{"nodeName":"n1"}}'
        assert s.get(key("zzz")) is None

        recs, rev = s.list("/registry/pods/")
        assert rev == 5
        assert [r.key for r in recs] == [key("a"), key("b"), key("c"), key("a", "kube-system")]
        assert [r.key for r in s.list("/registry/pods/default/")[0]] == [key("a"), key("b"), key("c")]
        assert s.list("/registry/pods/nope/") == ([], 5)
        assert len(s.list("")[0]) == 5
        assert s.count("/registry/pods/") == 4
        assert s.count("/registry/pods/default/") == 3
        assert s.count("/registry/") == 5
        assert s.count("/x") == 0
        assert s.count("/registry/pods/", start_key=key("b")) == 2

        page1, _ = s.list("/registry/pods/", limit=2)
        assert [r.key for r in page1] == [key("a"), key("b")]
        page2, _ = s.list("/registry/pods/", start_key=page1[-1].key, limit=2)
        assert [r.key for r in page2] == [key("c"), key("a", "kube-system")]
        page3, _ = s.list("/registry/pods/", start_key=page2[-1].key, limit=2)
        assert page3 == []
        # start_key before the prefix: the prefix still bounds the result
        assert [r.key for r in s.list("/registry/pods/default/", start_key="/a", limit=1)[0]] == [key("a")]
        assert s.list("/registry/pods/", limit=0)[0] == []
        await s.close()
    run(main())


def test_create_existing_update_and_delete_missing(tmp_path):
    async def main():
        s = await Store.open(str(tmp_path / "db"))
        await s.create(key("a"), pod("a"))
        with pytest.raises(KeyExistsError):
            await s.create(key("a"), pod("a"))
        with pytest.raises(KeyNotFoundError):
            await s.update(key("b"), pod("b"))
        with pytest.raises(KeyNotFoundError):
            await s.delete(key("b"))
        assert issubclass(KeyExistsError, StoreError) and issubclass(ExpiredError, StoreError)
        assert s.revision == 1      # failed writes take no revision
        await s.close()
    run(main())


def test_update_sets_revision_and_checks_expected_revision(tmp_path):
    async def main():
        s = await Store.open(str(tmp_path / "db"))
        created = await s.create(key("a"), pod("a"))
        obj = pod("a", status={"phase": "Running"})
        updated = await s.update(key("a"), obj, expected_revision=created.mod_revision)
        assert (updated.mod_revision, updated.create_revision) == (2, 1)
        assert obj["metadata"]["resourceVersion"] == "2"      # the caller's dict is stamped
        assert s.get(key("a")) is updated
        with pytest.raises(ConflictError):
            await s.update(key("a"), pod("a"), expected_revision=1)
        with pytest.raises(ConflictError):
            await s.delete(key("a"), expected_revision=1)
        assert s.get(key("a")).mod_revision == 2
        third = await s.update(key("a"), pod("a"))             # unconditional
        assert third.mod_revision == 3
        await s.close()
    run(main())


def test_delete_returns_last_state_at_delete_revision(tmp_path):
    async def main():
        s = await Store.open(str(tmp_path / "db"))
        created = await s.create(key("a"), pod("a"))
        gone = await s.delete(key("a"), expected_revision=1)
        assert (gone.mod_revision, gone.create_revision) == (2, 1)
        assert gone.obj["metadata"]["resourceVersion"] == "2"
        assert gone.obj["metadata"]["name"] == "a"
        assert created.obj["metadata"]["resourceVersion"] == "1"   # the shared object is untouched
        assert s.get(key("a")) is None
        assert s.list("/registry/pods/") == ([], 2)
        again = await s.create(key("a"), pod("a"))                # re-create after delete
        assert (again.mod_revision, again.create_revision) == (3, 3)
        await s.close()
    run(main())


def test_concurrent_updates_with_same_expected_revision_exactly_one_wins(tmp_path):
    async def main():
        s = await Store.open(str(tmp_path / "db"))
        rec = await s.create(key("a"), pod("a"))
        results = await asyncio.gather(
            *(s.update(key("a"), pod("a", spec={"n": i}), expected_revision=rec.mod_revision)
              for i in range(10)),
            return_exceptions=True)
        wins = [r for r in results if isinstance(r, Record)]
        assert len(wins) == 1
        assert all(isinstance(r, ConflictError) for r in results if r is not wins[0])
        assert s.get(key("a")) is wins[0]
        # two concurrent creates of one key: one wins too
        results = await asyncio.gather(s.create(key("b"), pod("b")), s.create(key("b"), pod("b")),
                                       return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["KeyExistsError", "Record"]
        await s.close()
    run(main())


def test_writes_in_one_tick_commit_together_in_revision_order(tmp_path, monkeypatch):
    monkeypatch.setattr(store_sqlite, "MAX_BATCH", 64)       # 200 writes: 4 transactions

    async def main():
        s = await Store.open(str(tmp_path / "db"))
        recs = await asyncio.gather(*(s.create(key(f"p{i:03d}"), pod(f"p{i:03d}")) for i in range(200)))
        assert [r.mod_revision for r in recs] == list(range(1, 201))
        # create, update and delete of one key in the same tick
        c, u, d = await asyncio.gather(s.create(key("x"), pod("x")), s.update(key("x"), pod("x")),
                                       s.delete(key("x")))
        assert (c.mod_revision, u.mod_revision, d.mod_revision) == (201, 202, 203)
        assert s.get(key("x")) is None and s.revision == 203
        await s.close()
        assert [r[0] for r in rows(tmp_path / "db")] == list(range(1, 204))
    run(main())


def test_failed_commit_is_not_acknowledged_and_takes_no_revision(tmp_path):
    class FailingInserts:
        def __init__(self, conn):
            self.conn = conn

        def __getattr__(self, name):
            return getattr(self.conn, name)

        def execute(self, sql, *args):
            if sql.startswith("INSERT INTO kine") or sql == "COMMIT":
                raise sqlite3.OperationalError("disk I/O error")
            return self.conn.execute(sql, *args)

        def executemany(self, sql, *args):
            raise sqlite3.OperationalError("disk I/O error")

    async def main():
        s = await Store.open(str(tmp_path / "db"))
        await s.create(key("a"), pod("a"))
        real = s._conn
        s._conn = FailingInserts(real)
        results = await asyncio.gather(s.create(key("b"), pod("b")), s.update(key("a"), pod("a")),
                                       return_exceptions=True)
        assert all(type(r) is StoreError for r in results)
        with pytest.raises(StoreError):
            await s.create(key("b"), pod("b"))
        assert s.revision == 1 and s.get(key("b")) is None and s.get(key("a")).mod_revision == 1
        s._conn = real
        assert (await s.create(key("b"), pod("b"))).mod_revision == 2
        await s.close()
    run(main())


# --- persistence -------------------------------------------------------------------

def test_state_and_revision_survive_reopen(tmp_path):
    path = str(tmp_path / "db")

    async def write():
        s = await Store.open(path)
        await s.create(key("a"), pod("a"))
        await s.create(key("b"), pod("b"))
        await s.update(key("a"), pod("a", status={"phase": "Running"}))
        await s.delete(key("b"))
        await s.close()

    async def check():
        s = await Store.open(path)
        assert s.revision == 4
        assert [r.key for r in s.list("/registry/pods/")[0]] == [key("a")]
        a = s.get(key("a"))
        assert (a.mod_revision, a.create_revision) == (3, 1)
        assert a.obj["status"] == {"phase": "Running"}
        assert a.obj["metadata"]["resourceVersion"] == "3"
        assert (await s.create(key("c"), pod("c"))).mod_revision == 5
        await s.close()

    run(write())
    run(check())


def test_revision_never_goes_back_after_compaction_deleted_the_newest_rows(tmp_path):
    path = str(tmp_path / "db")

    async def write():
        s = await Store.open(path, keep_revisions=0)
        for name in ("a", "b"):
            await s.create(key(name), pod(name))
            await s.update(key(name), pod(name))
            await s.delete(key(name))
        assert s.revision == 6
        assert await s.compact() == 6
        assert s.compacted_revision == 6
        await s.close()

    async def check():
        assert rows(path) == []          # every row was superseded or a tombstone
        s = await Store.open(path)
        assert (s.revision, s.compacted_revision) == (6, 6)
        assert (await s.create(key("a"), pod("a"))).mod_revision == 7
        await s.close()

    run(write())
    run(check())


CRASH_WRITER = textwrap.dedent("""
    import asyncio, os, signal, sys
    from skube.store import Store

    async def main(path):
        s = await Store.open(path)
        async def one(i):
            rec = await s.create(f"/registry/pods/default/p{i:04d}", {"metadata": {"name": f"p{i:04d}"}, "i": i})
            print(f"ack {rec.key} {rec.mod_revision}", flush=True)
            if i == 155:
                os.kill(os.getpid(), signal.SIGKILL)   # die with writes in flight, unacknowledged
        for start in range(0, 300, 10):
            await asyncio.gather(*(one(i) for i in range(start, start + 10)))

    asyncio.run(main(sys.argv[1]))
""")


def test_acknowledged_writes_survive_kill_9(tmp_path):
    path = str(tmp_path / "db")
    proc = subprocess.run([sys.executable, "-c", CRASH_WRITER, path], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    acked = [line.split() for line in proc.stdout.splitlines() if line.startswith("ack ")]
    assert len(acked) == 156

    async def check():
        s = await Store.open(path)
        for _, k, rev in acked:
            rec = s.get(k)
            assert rec is not None, k
            assert rec.mod_revision == int(rev)
            assert rec.obj["i"] == int(k[-4:])
        assert s.revision >= max(int(rev) for _, _, rev in acked)
        await s.close()
    run(check())


# --- list_at -----------------------------------------------------------------------

def test_list_at_older_revision_with_pagination(tmp_path):
    async def main():
        s = await Store.open(str(tmp_path / "db"))
        for name in ("a", "b", "c", "d"):
            await s.create(key(name), pod(name))          # revisions 1..4
        await s.create("/registry/services/default/a", {"metadata": {}})   # 5
        await s.update(key("a"), pod("a", spec={"v": 2}))  # 6
        await s.delete(key("b"))                          # 7
        await s.create(key("e"), pod("e"))                # 8

        at5 = await s.list_at("/registry/pods/", 5)
        assert [(r.key, r.mod_revision) for r in at5] == [(key(n), i) for i, n in enumerate("abcd", 1)]
        assert at5[0].obj["metadata"]["resourceVersion"] == "1" and "v" not in at5[0].obj["spec"]
        at7 = await s.list_at("/registry/pods/", 7)
        assert [(r.key, r.mod_revision) for r in at7] == [(key("a"), 6), (key("c"), 3), (key("d"), 4)]
        assert at7[0] is s.get(key("a"))       # unchanged since: the current record is reused
        # pages at revision 5
        p1 = await s.list_at("/registry/pods/", 5, limit=3)
        p2 = await s.list_at("/registry/pods/", 5, start_key=p1[-1].key, limit=3)
        assert [r.key for r in p1 + p2] == [key(n) for n in "abcd"]
        assert await s.list_at("/registry/pods/", 0) == []
        # the current revision (and anything newer) is served from memory
        assert [r.key for r in await s.list_at("/registry/pods/", 8)] == [key(n) for n in "acde"]
        assert [r.key for r in await s.list_at("/registry/pods/", 8, start_key=key("c"), limit=1)] == [key("d")]
        await s.close()
    run(main())


# --- watch -------------------------------------------------------------------------

def test_watch_live_events_with_prev_obj(tmp_path):
    async def main():
        s = await Store.open(str(tmp_path / "db"))
        w = s.watch("/registry/pods/", s.revision)
        other = s.watch("/registry/services/", s.revision)
        await s.create(key("a"), pod("a"))
        await s.create("/registry/services/default/a", {"metadata": {"name": "a"}})
        await s.update(key("a"), pod("a", spec={"v": 2}))
        await s.delete(key("a"))
        evs = await drain(w, 3)
        assert [(e.type, e.key, e.revision) for e in evs] == [
            ("ADDED", key("a"), 1), ("MODIFIED", key("a"), 3), ("DELETED", key("a"), 4)]
        assert evs[0].prev_obj is None
        assert evs[1].prev_obj["metadata"]["resourceVersion"] == "1"
        assert evs[1].obj["spec"] == {"v": 2}
        assert evs[2].obj["metadata"]["resourceVersion"] == "4"
        assert evs[2].prev_obj["metadata"]["resourceVersion"] == "3"
        assert [e.revision for e in await drain(other, 1)] == [2]
        assert w.progress_revision == 4
        w.close()
        other.close()
        await s.close()
    run(main())


def test_many_watchers_receive_an_event(tmp_path):
    async def main():
        s = await Store.open(str(tmp_path / "db"))
        watchers = [s.watch("/registry/pods/default/", 0) for _ in range(100)]
        watchers += [s.watch(p, 0) for p in ("", "/", "/registry/", "/registry/pods/default/a")]
        strangers = [s.watch(f"/registry/configmaps/ns{i}/", 0) for i in range(100)]
        tasks = [asyncio.create_task(drain(w, 1)) for w in watchers]
        await s.create(key("a"), pod("a"))
        for evs in await asyncio.gather(*tasks):
            assert [(e.type, e.revision) for e in evs] == [("ADDED", 1)]
        assert all(not w._queue for w in strangers)
        for w in watchers + strangers:
            w.close()
        assert len(s._hub) == 0
        await s.close()
    run(main())


def test_watch_from_revision_replays_history_from_the_cache(tmp_path):
    async def main():
        s = await Store.open(str(tmp_path / "db"))
        await s.create(key("a"), pod("a"))                      # 1
        await s.create("/registry/services/default/a", {"metadata": {}})   # 2
        await s.update(key("a"), pod("a"))                      # 3
        await s.delete(key("a"))                                # 4
        w = s.watch("/registry/pods/", 1)
        await s.create(key("b"), pod("b"))                      # 5, live
        evs = await drain(w, 3)
        assert [(e.type, e.revision) for e in evs] == [("MODIFIED", 3), ("DELETED", 4), ("ADDED", 5)]
        assert evs[0].prev_obj["metadata"]["resourceVersion"] == "1"
        assert evs[2].obj is s.get(key("b")).obj
        w.close()
        # a watch from the current revision sees only new events
        w = s.watch("/registry/pods/", s.revision)
        await s.create(key("c"), pod("c"))
        assert [e.revision for e in await drain(w, 1)] == [6]
        w.close()
        await s.close()
    run(main())


def test_watch_history_older_than_the_cache_comes_from_sqlite(tmp_path, monkeypatch):
    monkeypatch.setattr("skube.store.watch.HISTORY_BATCH", 4)   # several sqlite pages
    path = str(tmp_path / "db")

    async def main():
        s = await Store.open(path, watch_cache_size=5)
        for i in range(10):
            await s.create(key(f"p{i}"), pod(f"p{i}"))              # 1..10
        await s.create("/registry/services/default/a", {"metadata": {}})   # 11
        await s.update(key("p0"), pod("p0", spec={"v": 2}))          # 12
        await s.delete(key("p1"))                                    # 13
        w = s.watch("/registry/pods/", 0)                            # 1..5 only in sqlite
        evs = await drain(w, 12)
        assert [e.revision for e in evs] == [*range(1, 11), 12, 13]
        assert [e.type for e in evs[-3:]] == ["ADDED", "MODIFIED", "DELETED"]
        assert evs[10].prev_obj["metadata"]["resourceVersion"] == "1"
        assert evs[11].prev_obj["metadata"]["resourceVersion"] == "2"
        assert evs[11].obj["metadata"]["resourceVersion"] == "13"
        w.close()
        await s.close()

        s = await Store.open(path)                                   # empty cache after a restart
        w = s.watch("/registry/pods/default/p0", 1)
        evs = await drain(w, 1)
        assert [(e.type, e.revision) for e in evs] == [("MODIFIED", 12)]
        assert evs[0].obj is s.get(key("p0")).obj
        await s.create(key("p0x"), pod("p0x"))                       # matches the prefix too
        assert [e.revision for e in await drain(w, 1)] == [14]
        w.close()
        await s.close()
    run(main())


def test_watch_from_a_future_revision_skips_older_events(tmp_path):
    async def main():
        s = await Store.open(str(tmp_path / "db"))
        w = s.watch("/registry/pods/", 2)
        for name in "abc":
            await s.create(key(name), pod(name))
        assert [e.revision for e in await drain(w, 1)] == [3]
        w.close()
        await s.close()
    run(main())


def test_slow_watcher_is_dropped(tmp_path):
    async def main():
        s = await Store.open(str(tmp_path / "db"), max_watcher_queue=10)
        slow = s.watch("/registry/pods/", 0)
        fast = s.watch("/registry/pods/", 0)
        got = []

        async def consume():
            async for ev in fast:
                got.append(ev.revision)
                if ev.revision == 30:
                    return
        task = asyncio.create_task(consume())
        for i in range(30):
            await s.create(key(f"p{i}"), pod(f"p{i}"))
        await task
        assert got == list(range(1, 31))
        assert slow.closed and slow.reason == "too slow"
        assert [ev async for ev in slow] == []
        fast.close()
        await s.close()
    run(main())


def test_watchers_end_when_closed_or_when_the_store_closes(tmp_path):
    async def main():
        s = await Store.open(str(tmp_path / "db"))
        w1 = s.watch("/registry/pods/", 0)
        w2 = s.watch("/registry/pods/", 0)
        t1 = asyncio.create_task(drain(w1, 5))
        t2 = asyncio.create_task(drain(w2, 5))
        await until(lambda: w1._waiter is not None and w2._waiter is not None)
        w1.close()
        assert await t1 == [] and w1.reason == "closed"
        await s.create(key("a"), pod("a"))
        await until(lambda: w2._waiter is not None)
        await s.close()
        assert [e.revision for e in await t2] == [1]
        assert w2.reason == "store closed"
        with pytest.raises(StoreError):
            s.watch("/registry/pods/", 0)
        with pytest.raises(StoreError):
            await s.create(key("b"), pod("b"))
    run(main())


# --- compaction --------------------------------------------------------------------

def test_compaction_removes_superseded_rows_and_expires_old_revisions(tmp_path):
    path = str(tmp_path / "db")

    async def main():
        s = await Store.open(path, keep_revisions=2)
        await s.create(key("a"), pod("a"))                # 1
        await s.update(key("a"), pod("a"))                # 2
        await s.create(key("b"), pod("b"))                # 3
        await s.delete(key("b"))                          # 4
        await s.update(key("a"), pod("a"))                # 5
        await s.create(key("c"), pod("c"))                # 6
        assert await s.compact() == 4                     # keep the last 2 revisions
        # row 1 (superseded by 2), 3 and its tombstone 4 are gone; the state at 4 stays
        assert [r[0] for r in rows(path)] == [2, 5, 6]
        assert [(r.key, r.mod_revision) for r in await s.list_at("/registry/pods/", 4)] == [(key("a"), 2)]
        with pytest.raises(ExpiredError):
            await s.list_at("/registry/pods/", 3)
        with pytest.raises(ExpiredError):
            s.watch("/registry/pods/", 3)
        w = s.watch("/registry/pods/", 4)
        evs = await drain(w, 2)
        assert [(e.type, e.revision) for e in evs] == [("MODIFIED", 5), ("ADDED", 6)]
        w.close()
        assert await s.compact(2) == 4                    # older than compacted: no-op
        with pytest.raises(ValueError):
            await s.compact(99)
        assert await s.compact(6) == 6
        assert [r[0] for r in rows(path)] == [5, 6]
        await s.close()

        s = await Store.open(path)
        assert (s.revision, s.compacted_revision) == (6, 6)
        with pytest.raises(ExpiredError):
            s.watch("", 5)
        await s.close()
    run(main())


def test_compaction_ends_a_watcher_still_reading_that_history(tmp_path, monkeypatch):
    monkeypatch.setattr("skube.store.watch.HISTORY_BATCH", 4)

    async def main():
        s = await Store.open(str(tmp_path / "db"), watch_cache_size=0)
        await s.create(key("a"), pod("a"))
        for _ in range(9):
            await s.update(key("a"), pod("a"))                 # revisions 2..10
        w = s.watch("/registry/pods/", 0)
        first = await drain(w, 1)                          # fetched revisions 1..4 from sqlite
        assert [e.revision for e in first] == [1]
        await s.compact(8)
        rest = [e.revision async for e in w]
        assert rest == [2, 3, 4] and w.reason == "compacted"
        await s.close()
    run(main())


def test_background_compaction_task_runs(tmp_path):
    async def main():
        s = await Store.open(str(tmp_path / "db"), compact_interval=0.001, keep_revisions=3)
        for i in range(10):
            await s.create(key(f"p{i}"), pod(f"p{i}"))
        await until(lambda: s.compacted_revision == 7)
        await s.close()
    run(main())


# --- WAL upkeep --------------------------------------------------------------------

def test_wal_is_checkpointed_and_restarted_under_continuous_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(store_sqlite, "CHECKPOINT_BYTES", 256 << 10)
    path = str(tmp_path / "db")

    async def main():
        s = await Store.open(path, compact_interval=0)
        blob = "x" * 2000
        checkpoints = 0
        for i in range(1500):
            await s.create(key(f"p{i}"), pod(f"p{i}", data=blob))
            if s._checkpoint_task is not None and not s._checkpoint_task.done():
                checkpoints += 1
                await s._checkpoint_task
        assert checkpoints >= 5
        # without checkpoints the WAL would hold every page written (~20 MB)
        assert os.path.getsize(path + "-wal") < 4 << 20
        await s.close()
        assert not os.path.exists(path + "-wal")
    run(main())
