"""``metadata.managedFields`` entries: decode, identify, cap, encode.

A manager is identified as apimachinery's BuildManagerIdentifier does: by name,
operation and subresource, plus the apiVersion for ``Update`` entries (appliers
keep one entry across versions). Encoding sorts entries like
``sortEncodedManagedFields`` (operation, time, manager, apiVersion, subresource)
and reuses untouched entry dicts so an unchanged object encodes identically.
"""
from __future__ import annotations

import datetime
import functools

import orjson

from skube.api.fieldmanager import fieldset
from skube.api.fieldmanager.fieldset import Node, dumps

APPLY = "Apply"
UPDATE = "Update"
MAX_UPDATE_MANAGERS = 10            # DefaultMaxUpdateManagers
ANCIENT_CHANGES = "ancient-changes"  # capManagersManager's bucket name


class Entry:
    """One manager's field set, with what the wire entry carries besides."""

    __slots__ = ("manager", "operation", "api_version", "subresource", "time", "fields", "source")

    def __init__(self, manager: str, operation: str, api_version: str, subresource: str,
                 time: str | None, fields: Node, source: dict | None = None):
        self.manager = manager
        self.operation = operation
        self.api_version = api_version
        self.subresource = subresource
        self.time = time
        self.fields = fields
        self.source = source        # the decoded wire dict, reused when nothing changed

    @property
    def applied(self) -> bool:
        return self.operation == APPLY

    @property
    def ident(self) -> tuple[str, str, str, str]:
        return identity(self.manager, self.operation, self.api_version, self.subresource)

    def encode(self) -> dict:
        src = self.source
        if (src is not None and src.get("fieldsV1") is self.fields and src.get("time") == self.time
                and src.get("apiVersion", "") == self.api_version and src.get("operation") == self.operation):
            return src
        out: dict = {}
        if self.manager:
            out["manager"] = self.manager
        out["operation"] = self.operation
        if self.api_version:
            out["apiVersion"] = self.api_version
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = fieldset.canonical(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def identity(manager: str, operation: str, api_version: str, subresource: str) -> tuple[str, str, str, str]:
    return (manager, operation, api_version if operation != APPLY else "", subresource)


def identifier_json(ident: tuple[str, str, str, str]) -> str:
    """The manager identifier upstream keys its maps with (JSON of the entry sans fields/time)."""
    manager, operation, api_version, subresource = ident
    parts = []
    if manager:
        parts.append('"manager":' + dumps(manager))
    if operation:
        parts.append('"operation":' + dumps(operation))
    if api_version:
        parts.append('"apiVersion":' + dumps(api_version))
    if subresource:
        parts.append('"subresource":' + dumps(subresource))
    return "{" + ",".join(parts) + "}"


def describe(ident: tuple[str, str, str, str]) -> str:
    """printManager: ``"kubectl" with subresource "status" using apps/v1``."""
    manager, operation, api_version, subresource = ident
    out = _quote(manager)
    if subresource:
        out += f" with subresource {_quote(subresource)}"
    if operation == UPDATE:
        out += f" using {api_version}"
    return out


def _quote(s: str) -> str:
    """Go's %q for ordinary strings."""
    return orjson.dumps(s).decode()


class DecodeError(ValueError):
    pass


def decode(raw: object, *, validate: bool = False) -> dict[tuple, Entry]:
    """Entries by identity. Raises DecodeError on a malformed list (as upstream's
    DecodeManagedFields); ``validate`` also checks every FieldsV1 tree."""
    out: dict[tuple, Entry] = {}
    if raw is None:
        return out
    if not isinstance(raw, list):
        raise DecodeError("managedFields must be a list")
    for i, e in enumerate(raw):
        if not isinstance(e, dict):
            raise DecodeError(f"managed fields entry {i} is not an object")
        op = e.get("operation")
        if op not in (APPLY, UPDATE):
            raise DecodeError("operation must be `Apply` or `Update`")
        api_version = e.get("apiVersion") or ""
        if not api_version:
            raise DecodeError("apiVersion must not be empty")
        ftype = e.get("fieldsType")
        if ftype != "FieldsV1":
            if not ftype:
                raise DecodeError(f"missing fieldsType in managed fields entry {i}")
            raise DecodeError(f'invalid fieldsType "{ftype}" in managed fields entry {i}')
        fields = e.get("fieldsV1")
        if fields is None:
            fields = {}
        if validate and not fieldset.is_valid(fields):
            raise DecodeError(f"error decoding fieldsV1 of managed fields entry {i}")
        if not isinstance(fields, dict):
            raise DecodeError(f"error decoding fieldsV1 of managed fields entry {i}")
        time = e.get("time")
        entry = Entry(e.get("manager") or "", op, api_version, e.get("subresource") or "",
                      time if isinstance(time, str) else None, fields, e)
        out[entry.ident] = entry
    return out


def is_reset(raw: object) -> bool:
    """An empty list, or a list holding one empty entry, asks to clear managedFields."""
    return isinstance(raw, list) and (len(raw) == 0 or (len(raw) == 1 and raw[0] == {}))


@functools.lru_cache(maxsize=4096)
def seconds(ts: str | None) -> int:
    if not ts:
        return 0
    try:
        return int(datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def cap_updates(entries: dict[tuple, Entry], limit: int = MAX_UPDATE_MANAGERS) -> dict[tuple, Entry]:
    """Merge the oldest Update entries into per-version "ancient-changes" buckets
    until at most ``limit`` Update entries remain (capManagersManager)."""
    updaters = [k for k, e in entries.items() if not e.applied]
    if len(updaters) <= limit:
        return entries
    updaters.sort(key=lambda k: (seconds(entries[k].time), identifier_json(k)))
    entries = dict(entries)
    first_by_version: dict[str, tuple] = {}
    length = len(updaters)
    for k in updaters:
        if length <= limit:
            break
        e = entries[k]
        version = e.api_version
        bucket = identity(ANCIENT_CHANGES, UPDATE, version, "")
        if version in first_by_version:
            if bucket not in entries:
                first = entries.pop(first_by_version[version])
                entries[bucket] = Entry(ANCIENT_CHANGES, UPDATE, version, "", first.time, first.fields)
            b = entries[bucket]
            entries[bucket] = Entry(ANCIENT_CHANGES, UPDATE, version, "", e.time,
                                    fieldset.union(e.fields, b.fields))
            del entries[k]
            length -= 1
        else:
            first_by_version[version] = k
    return entries


def encode(entries: dict[tuple, Entry]) -> list[dict]:
    items = sorted(entries.values(), key=lambda e: (e.operation, seconds(e.time), e.manager,
                                                    e.api_version, e.subresource))
    return [e.encode() for e in items]
