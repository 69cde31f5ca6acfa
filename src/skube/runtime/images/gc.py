"""Image garbage collection: when the store passes a disk threshold, remove the least recently
used images that no container uses, down to a low-water mark, then prune unreferenced content."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from .store import ContentStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GCPolicy:
    """When to collect: the store over ``threshold_bytes`` (down to ``low_ratio`` of it), or
    the store's filesystem at/over ``high_percent`` used (down to ``low_percent``), as the
    kubelet's imageGCHighThresholdPercent / imageGCLowThresholdPercent. None: not used."""
    threshold_bytes: int | None = None
    low_ratio: float = 0.8
    high_percent: float | None = None
    low_percent: float | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.threshold_bytes) or self.disk_pressure_enabled

    @property
    def disk_pressure_enabled(self) -> bool:
        return self.high_percent is not None and self.high_percent < 100    # 100: off (kubelet)


def fs_usage(path) -> tuple[int, int]:
    """(used, total) bytes of the filesystem holding ``path`` (used = total - available)."""
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    return total - st.f_bavail * st.f_frsize, total


def target_usage(store: ContentStore, policy: GCPolicy, usage: int) -> int | None:
    """How many bytes the store may keep, or None when no threshold is passed."""
    targets = []
    if policy.threshold_bytes and usage > policy.threshold_bytes:
        targets.append(int(policy.threshold_bytes * policy.low_ratio))
    if policy.disk_pressure_enabled:
        used, total = fs_usage(store.root)
        if total and used * 100 >= policy.high_percent * total:
            low = policy.low_percent if policy.low_percent is not None else policy.high_percent
            targets.append(max(0, usage - int(used - low * total / 100)))
    return min(targets) if targets else None


def collect(store: ContentStore, threshold_bytes: int | None = None, *, low_ratio: float = 0.8,
            protect: set[str] = frozenset(), policy: GCPolicy | None = None) -> list[str]:
    """Remove unused images (oldest `last_used` first) until the store is back under what
    ``policy`` (or ``threshold_bytes``/``low_ratio``) allows.

    Caller holds the store's gc.lock exclusively. Returns the names removed. `protect` names
    (pulls in flight) and images of mounted rootfs are never removed.
    """
    policy = policy or GCPolicy(threshold_bytes=threshold_bytes, low_ratio=low_ratio)
    usage = store.disk_usage()
    target = target_usage(store, policy, usage)
    if target is None:
        return []
    in_use = store.images_in_use() | set(protect)
    removed: list[str] = []
    store.prune()
    usage = store.disk_usage()
    for rec in sorted(store.records(), key=lambda r: r.last_used):
        if usage <= target:
            break
        if rec.name in in_use:
            continue
        store.delete_image(rec.name)
        removed.append(rec.name)
        store.prune()
        usage = store.disk_usage()
    if removed:
        log.info("image gc removed %s; store now %d bytes (target %d)", removed, usage, target)
    return removed
