"""events.k8s.io/v1 Events are a second view of core v1 Events (one set of objects,
as upstream stores them): field renames both ways."""
from __future__ import annotations

# events.k8s.io/v1 field -> core/v1 field
_RENAMES = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_BACK = {v: k for k, v in _RENAMES.items()}


def to_core(obj: dict) -> dict:
    """An events.k8s.io/v1 Event as the core v1 Event that is stored."""
    out = {_RENAMES.get(k, k): v for k, v in obj.items()}
    out["apiVersion"], out["kind"] = "v1", "Event"
    return out


def from_core(obj: dict) -> dict:
    """A stored core v1 Event as events.k8s.io/v1 serves it."""
    out = {_BACK.get(k, k): v for k, v in obj.items()}
    out["apiVersion"], out["kind"] = "events.k8s.io/v1", "Event"
    return out
