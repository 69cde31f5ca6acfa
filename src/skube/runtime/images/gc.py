"""Image garbage collection: when the store passes a disk threshold, remove the least recently
used images that no container uses, down to a low-water mark, then prune unreferenced content."""
from __future__ import annotations

import logging

from .store import ContentStore

log = logging.getLogger(__name__)


def collect(store: ContentStore, threshold_bytes: int, *, low_ratio: float = 0.8,
            protect: set[str] = frozenset()) -> list[str]:
    """Remove unused images (oldest `last_used` first) until usage <= low_ratio * threshold.

    Caller holds the store's gc.lock exclusively. Returns the names removed. `protect` names
    (pulls in flight) and images of mounted rootfs are never removed.
    """
    usage = store.disk_usage()
    if usage <= threshold_bytes:
        return []
    target = int(threshold_bytes * low_ratio)
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
        log.info("image gc removed %s; store now %d bytes (threshold %d)", removed, usage, threshold_bytes)
    return removed
