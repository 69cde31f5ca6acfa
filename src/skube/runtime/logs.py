"""CRI container log files: format, reading (tail/since/follow/timestamps/limitBytes), rotation.

Each line is ``<RFC3339Nano time> <stdout|stderr> <P|F> <content>``; ``P`` marks a partial
line continued by the next entry. The files are written by the per-container monitor
(conmon ``k8s-file`` driver); kubelet reads only a container's current file, and so do we.
Rotation renames the file to ``<path>.<UTC time>`` and the writer is told to reopen.
"""
from __future__ import annotations

import asyncio
import calendar
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator, Callable

_TS = re.compile(rb"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


def parse_time(ts: bytes | str) -> int:
    """RFC 3339 (any offset, up to nanoseconds) -> nanoseconds since the epoch."""
    if isinstance(ts, str):
        ts = ts.encode()
    m = _TS.match(ts)
    if not m:
        raise ValueError(f"bad timestamp {ts!r}")
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    frac = (m.group(7) or b"").ljust(9, b"0")
    secs = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    tz = m.group(8)
    if tz != b"Z":
        sign = 1 if tz[:1] == b"+" else -1
        secs -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return secs * 1_000_000_000 + int(frac)


def format_time(ns: int) -> str:
    """Nanoseconds since the epoch -> RFC3339Nano in UTC (``…Z``), as kubelet writes it."""
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


@dataclass
class Entry:
    time_ns: int
    stream: str      # "stdout" | "stderr"
    partial: bool
    content: bytes   # without the trailing newline


def parse_line(line: bytes) -> Entry | None:
    """One CRI log line (without ``\\n``) or None if malformed."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    try:
        ns = parse_time(parts[0])
    except ValueError:
        return None
    tag = parts[2]
    content = parts[3] if len(parts) > 3 else b""
    return Entry(ns, parts[1].decode(), tag.split(b":")[0] == b"P", content)


def format_line(ns: int, stream: str, content: bytes, partial: bool = False) -> bytes:
    return f"{format_time(ns)} {stream} {'P' if partial else 'F'} ".encode() + content + b"\n"


@dataclass
class ReadOptions:
    tail_lines: int | None = None
    since_ns: int | None = None
    timestamps: bool = False
    limit_bytes: int | None = None
    follow: bool = False


def _render(e: Entry, ts: bool) -> bytes:
    body = e.content if e.partial else e.content + b"\n"
    return (format_time(e.time_ns).encode() + b" " + body) if ts else body


def _entries(data: bytes) -> tuple[list[Entry], int]:
    """Complete entries in ``data`` and how many bytes they used."""
    out, pos = [], 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            break
        e = parse_line(data[pos:nl])
        if e is not None:
            out.append(e)
        pos = nl + 1
    return out, pos


def _tail(entries: list[Entry], n: int) -> list[Entry]:
    """The last ``n`` logical lines (a run of partial entries plus its F entry is one)."""
    if n <= 0:
        return []
    count, i = 0, len(entries)
    while i > 0 and count < n:
        start = i - 1
        while start > 0 and entries[start - 1].partial:
            start -= 1
        count += 1
        i = start
    return entries[i:]


async def read(path: Path | str, opts: ReadOptions,
               done: Callable[[], bool] | None = None,
               poll: float = 0.1) -> AsyncIterator[bytes]:
    """Yield the log of ``path`` as kubectl shows it. With ``opts.follow`` keep reading new
    entries until ``done()`` is true and the file is drained (a rotation is followed)."""
    path = Path(path)
    remaining = opts.limit_bytes

    def emit(entries: list[Entry]) -> bytes:
        nonlocal remaining
        chunks = [_render(e, opts.timestamps) for e in entries
                  if opts.since_ns is None or e.time_ns >= opts.since_ns]
        blob = b"".join(chunks)
        if remaining is not None:
            blob = blob[:remaining]
            remaining -= len(blob)
        return blob

    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    try:
        data = f.read()
        entries, used = _entries(data)
        buf = data[used:]
        if opts.tail_lines is not None:
            entries = _tail(entries, opts.tail_lines)
        blob = emit(entries)
        if blob:
            yield blob
        if not opts.follow:
            return
        ino = os.fstat(f.fileno()).st_ino
        while remaining is None or remaining > 0:
            chunk = f.read()
            if chunk:
                buf += chunk
                entries, used = _entries(buf)
                buf = buf[used:]
                blob = emit(entries)
                if blob:
                    yield blob
                continue
            try:
                st = os.stat(path)
            except FileNotFoundError:
                st = None
            if st is not None and st.st_ino != ino:        # rotated: continue in the new file
                f.close()
                f = open(path, "rb")
                ino = os.fstat(f.fileno()).st_ino
                continue
            if done is not None and done():
                chunk = f.read()
                if not chunk:
                    return
                buf += chunk
                continue
            await asyncio.sleep(poll)
    finally:
        f.close()


async def read_all(path: Path | str, opts: ReadOptions | None = None, **kw) -> bytes:
    out = b""
    async for chunk in read(path, opts or ReadOptions(), **kw):
        out += chunk
    return out


def rotated(path: Path | str) -> list[Path]:
    """Rotated files of ``path``, oldest first."""
    path = Path(path)
    return sorted(p for p in path.parent.glob(path.name + ".*") if p.name != path.name)


def rotate(path: Path | str, max_size: int, max_files: int) -> bool:
    """If ``path`` grew beyond ``max_size`` rename it aside (keeping at most ``max_files``
    files in total, the current one included). True when the writer must reopen."""
    path = Path(path)
    try:
        if path.stat().st_size <= max_size:
            return False
    except FileNotFoundError:
        return False
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S.%f")
    os.rename(path, f"{path}.{stamp}")
    old = rotated(path)
    for p in old[:max(0, len(old) - max(0, max_files - 1))]:
        try:
            p.unlink()
        except FileNotFoundError:
            pass
    return True


__all__ = ["parse_time", "format_time", "parse_line", "format_line", "Entry", "ReadOptions",
           "read", "read_all", "rotate", "rotated"]
