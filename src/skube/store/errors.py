"""Errors raised by the object store; the API server maps each to a Status."""
from __future__ import annotations


class StoreError(Exception):
    """Base class of every store error (also: the store is closed, a write failed)."""


class KeyExistsError(StoreError):
    """create() of a key that already exists (→ 409 AlreadyExists)."""


class KeyNotFoundError(StoreError):
    """update() or delete() of a key that does not exist (→ 404 NotFound)."""


class ConflictError(StoreError):
    """expected_revision was given and differs from the key's mod revision (→ 409 Conflict)."""


class ExpiredError(StoreError):
    """A revision older than the compacted revision was asked for (→ 410 Gone)."""
