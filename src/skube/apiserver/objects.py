"""Small helpers on JSON-shaped API objects: timestamps, uids, generated names, copies."""
from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import uuid

import orjson

# upstream's utilrand alphabet: no vowels (no words), no confusable characters
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def now_rfc3339() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """metav1.MicroTime as upstream serialises it (RFC 3339 with microseconds)."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def new_uid() -> str:
    return str(uuid.uuid4())


def generate_name(prefix: str) -> str:
    """generateName: the prefix (cut to leave room) plus 5 random characters."""
    if len(prefix) > 58:
        prefix = prefix[:58]
    return prefix + "".join(secrets.choice(_ALPHANUMS) for _ in range(5))


def deep_copy(obj):
    return orjson.loads(orjson.dumps(obj))


def meta(obj: dict) -> dict:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = obj["metadata"] = {}
    return m


async def settle() -> None:
    """Before retrying a write that lost a race: let the store commit what it has staged
    (group commit), so the next read sees the write that won (without a yield the retry
    reads the same record again and loses every time)."""
    await asyncio.sleep(0)
