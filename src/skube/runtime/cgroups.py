"""cgroup v1 / v2 (and hybrid) helpers: paths, usage statistics, OOM detection, cleanup.

runc creates the container cgroups (``cgroupsPath`` = ``/skube/pod<uid>/<container>``, the
cgroupfs driver); this module only reads and removes them. Hybrid hosts (v1 controllers
plus an empty v2 mount) are treated as v1, like runc does.
"""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ROOT = "/skube"


@dataclass(frozen=True)
class Hierarchy:
    version: int                        # 1 or 2
    mounts: dict[str, str]              # controller (or "unified"/"name=…") -> mount point


def _mountinfo() -> list[tuple[str, str, str]]:
    """(mountpoint, fstype, super options) for every cgroup mount of this process."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            rparts = right.split()
            if not rparts or rparts[0] not in ("cgroup", "cgroup2"):
                continue
            out.append((fields[4], rparts[0], rparts[2] if len(rparts) > 2 else ""))
    return out


@lru_cache(maxsize=1)
def hierarchy() -> Hierarchy:
    """Detect the host's cgroup layout (cached)."""
    mounts: dict[str, str] = {}
    v2_root = None
    for mnt, fstype, opts in _mountinfo():
        if fstype == "cgroup2":
            if mnt == "/sys/fs/cgroup":
                v2_root = mnt
            mounts.setdefault("unified", mnt)
            continue
        for opt in opts.split(","):
            if opt in ("rw", "ro") or opt.startswith(("relatime", "release_agent", "clone_children")):
                continue
            mounts.setdefault(opt, mnt)
    if v2_root or not any(k != "unified" for k in mounts):
        return Hierarchy(2, {"unified": v2_root or mounts.get("unified", "/sys/fs/cgroup")})
    return Hierarchy(1, mounts)


def version() -> int:
    return hierarchy().version


def pod_path(pod_uid: str) -> str:
    return f"{ROOT}/pod{pod_uid}"


def container_path(pod_uid: str, container_id: str) -> str:
    return f"{pod_path(pod_uid)}/{container_id}"


def _dirs(path: str) -> list[Path]:
    """Every directory that represents ``path`` (one per v1 hierarchy, or the v2 one)."""
    h = hierarchy()
    seen, out = set(), []
    for mnt in h.mounts.values():
        if mnt in seen:
            continue
        seen.add(mnt)
        out.append(Path(mnt + path))
    return out


def _read(p: Path) -> str | None:
    try:
        return p.read_text()
    except OSError:
        return None


def _kv(text: str | None) -> dict[str, int]:
    out = {}
    for line in (text or "").splitlines():
        k, _, v = line.partition(" ")
        try:
            out[k] = int(v)
        except ValueError:
            pass
    return out


def _ctrl(name: str) -> Path | None:
    h = hierarchy()
    mnt = h.mounts.get("unified") if h.version == 2 else h.mounts.get(name)
    return Path(mnt) if mnt else None


def oom_kills(path: str) -> int:
    """How many processes of cgroup ``path`` the kernel OOM-killed (0 if unknown)."""
    if version() == 2:
        base = _ctrl("unified")
        return _kv(_read(base / path.lstrip("/") / "memory.events")).get("oom_kill", 0) if base else 0
    base = _ctrl("memory")
    if not base:
        return 0
    info = _kv(_read(base / path.lstrip("/") / "memory.oom_control"))
    return info.get("oom_kill", 0)


def stats(path: str) -> dict | None:
    """``{"cpu_ns", "memory_usage", "working_set", "rss"}`` of cgroup ``path`` or None."""
    rel = path.lstrip("/")
    if version() == 2:
        base = _ctrl("unified")
        cpu = _kv(_read(base / rel / "cpu.stat"))
        usage = _read(base / rel / "memory.current")
        if usage is None and not cpu:
            return None
        mstat = _kv(_read(base / rel / "memory.stat"))
        mem = int(usage or 0)
        return {"cpu_ns": cpu.get("usage_usec", 0) * 1000, "memory_usage": mem,
                "working_set": max(0, mem - mstat.get("inactive_file", 0)),
                "rss": mstat.get("anon", 0)}
    cpu_base, mem_base = _ctrl("cpuacct"), _ctrl("memory")
    cpu_txt = _read(cpu_base / rel / "cpuacct.usage") if cpu_base else None
    mem_txt = _read(mem_base / rel / "memory.usage_in_bytes") if mem_base else None
    if cpu_txt is None and mem_txt is None:
        return None
    mstat = _kv(_read(mem_base / rel / "memory.stat")) if mem_base else {}
    mem = int(mem_txt or 0)
    return {"cpu_ns": int(cpu_txt or 0), "memory_usage": mem,
            "working_set": max(0, mem - mstat.get("total_inactive_file", 0)),
            "rss": mstat.get("total_rss", 0)}


def pids(path: str) -> list[int]:
    """Processes still in cgroup ``path`` (any hierarchy)."""
    found: set[int] = set()
    for d in _dirs(path):
        if not d.is_dir():
            continue
        for sub, _, files in os.walk(d):
            if "cgroup.procs" in files:
                for line in (_read(Path(sub) / "cgroup.procs") or "").split():
                    found.add(int(line))
    return sorted(found)


def remove(path: str, kill: bool = True) -> bool:
    """Remove cgroup ``path`` and its children everywhere (SIGKILL leftovers first when
    ``kill``). True when nothing is left."""
    if kill:
        for pid in pids(path):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    ok = True
    for d in _dirs(path):
        if not d.exists():
            continue
        for sub, dirs, _ in sorted(os.walk(d), key=lambda t: -len(t[0])):
            try:
                os.rmdir(sub)
            except FileNotFoundError:
                pass
            except OSError:
                ok = False
    return ok


def exists(path: str) -> bool:
    return any(d.exists() for d in _dirs(path))


def list_pods() -> list[str]:
    """Pod uids that have a cgroup under ``/skube`` in any hierarchy."""
    uids: set[str] = set()
    for d in _dirs(ROOT):
        if d.is_dir():
            for child in d.iterdir():
                if child.is_dir() and child.name.startswith("pod"):
                    uids.add(child.name[3:])
    return sorted(uids)


__all__ = ["hierarchy", "version", "pod_path", "container_path", "oom_kills", "stats", "pids",
           "remove", "exists", "list_pods", "ROOT"]
