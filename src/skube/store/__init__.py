"""Revisioned object store: SQLite log in the spirit of kine, in-memory state, watch cache."""
from .errors import ConflictError, ExpiredError, KeyExistsError, KeyNotFoundError, StoreError
from .records import ADDED, DELETED, MODIFIED, Event, Record
from .sqlite import Store
from .watch import Watcher

__all__ = [
    "ADDED", "DELETED", "MODIFIED",
    "ConflictError", "Event", "ExpiredError", "KeyExistsError", "KeyNotFoundError",
    "Record", "Store", "StoreError", "Watcher",
]
