"""The two values the store hands out: a stored object (Record) and a change (Event)."""
from __future__ import annotations

from dataclasses import dataclass

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"


@dataclass(frozen=True, slots=True)
class Record:
    """One object as stored at ``mod_revision``.

    ``obj`` is shared between the store, its watch events and every caller that
    reads it: never mutate it (copy first). ``raw`` is ``orjson.dumps(obj)`` and
    ``obj["metadata"]["resourceVersion"] == str(mod_revision)``.
    """

    key: str
    obj: dict
    raw: bytes
    mod_revision: int
    create_revision: int


@dataclass(frozen=True, slots=True)
class Event:
    """One change: ``type`` is ADDED, MODIFIED or DELETED, ``revision`` its revision.

    For DELETED, ``obj`` is the last state with resourceVersion = the delete
    revision. ``prev_obj`` is the object before the change (None for ADDED).
    ``obj`` and ``prev_obj`` are shared: never mutate them.
    """

    type: str
    key: str
    obj: dict
    raw: bytes
    revision: int
    prev_obj: dict | None
