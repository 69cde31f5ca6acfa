"""Kubernetes-style API errors: each one renders as a metav1.Status.

Messages follow apimachinery's pkg/api/errors so kubectl prints what users know,
e.g. ``Error from server (NotFound): pods "x" not found``.
"""
from __future__ import annotations

from typing import Any


class APIError(Exception):
    """An error the API server answers with a Status body and an HTTP code."""

    def __init__(self, code: int, reason: str, message: str,
                 details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": self.message, "code": self.code,
        }
        if self.reason:
            body["reason"] = self.reason
        if self.details:
            body["details"] = self.details
        return body


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def _details(name: str | None, group: str, kind: str | None, causes=None) -> dict:
    d: dict[str, Any] = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    if kind:
        d["kind"] = kind
    if causes:
        d["causes"] = causes
    return d


def not_found(resource: str, name: str, group: str = "") -> APIError:
    return APIError(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found',
                    _details(name, group, resource))


def already_exists(resource: str, name: str, group: str = "") -> APIError:
    return APIError(409, "AlreadyExists",
                    f'{_qualified(resource, group)} "{name}" already exists',
                    _details(name, group, resource))


def conflict(resource: str, name: str, group: str = "", why: str | None = None) -> APIError:
    why = why or ("the object has been modified; please apply your changes "
                  "to the latest version and try again")
    return APIError(409, "Conflict",
                    f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
                    _details(name, group, resource))


def invalid(kind: str, name: str, causes: list[dict[str, str]], group: str = "") -> APIError:
    """422 Invalid. ``causes`` are ``{"reason", "field", "message"}`` dicts as upstream
    builds them from field.ErrorList; the message joins them like apimachinery."""
    parts = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes]
    if len(parts) == 1:
        summary = parts[0]
    else:
        summary = "[" + ", ".join(parts) + "]"
    qual = f"{kind}.{group}" if group else kind
    return APIError(422, "Invalid", f'{qual} "{name}" is invalid: {summary}',
                    _details(name, group, kind, causes))


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def unauthorized(message: str = "Unauthorized") -> APIError:
    return APIError(401, "Unauthorized", message)


def forbidden(message: str) -> APIError:
    return APIError(403, "Forbidden", message)


def method_not_allowed(message: str) -> APIError:
    return APIError(405, "MethodNotAllowed", message)


def not_acceptable(message: str) -> APIError:
    return APIError(406, "NotAcceptable", message)


def gone(message: str) -> APIError:
    """410 Expired, e.g. a watch or continue token whose resourceVersion is compacted."""
    return APIError(410, "Expired", message)


def too_large(message: str = "the request body is too large") -> APIError:
    return APIError(413, "RequestEntityTooLarge", message)


def unsupported_media_type(content_type: str) -> APIError:
    return APIError(415, "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: "
                    f"application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type!r})")


def internal(message: str) -> APIError:
    return APIError(500, "InternalError", f"Internal error occurred: {message}")


def timeout(message: str) -> APIError:
    return APIError(504, "Timeout", message)


def cause(field: str, message: str, reason: str = "FieldValueInvalid") -> dict[str, str]:
    """One field cause of a 422: reason is a metav1.CauseType such as FieldValueRequired."""
    return {"reason": reason, "message": message, "field": field}
