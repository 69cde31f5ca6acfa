"""A thin request/response layer over raw ASGI: the API server's only HTTP plumbing.

Kept tiny on purpose: every API request passes through here, so it avoids
framework overhead; bodies are bytes, objects are serialised with orjson.
"""
from __future__ import annotations

from typing import Any, AsyncIterator
from urllib.parse import parse_qs, unquote

import orjson
import yaml

from ..api import errors

MAX_BODY = 3 * 1024 * 1024  # upstream's limit for a request body


class Request:
    __slots__ = ("scope", "receive", "method", "path", "query", "headers", "user", "groups", "_body")

    def __init__(self, scope, receive):
        self.scope = scope
        self.receive = receive
        self.method: str = scope.get("method", "GET")
        self.path: str = unquote(scope["path"]) if "%" in scope["path"] else scope["path"]
        qs = scope.get("query_string", b"")
        self.query: dict[str, list[str]] = parse_qs(qs.decode("latin-1"), keep_blank_values=True) if qs else {}
        self.headers: dict[str, str] = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.user: str = ""
        self.groups: list[str] = []
        self._body: bytes | None = None

    def arg(self, name: str, default: str | None = None) -> str | None:
        v = self.query.get(name)
        return v[-1] if v else default

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def flag(self, name: str) -> bool:
        v = self.arg(name)
        return v is not None and v.lower() in ("true", "1", "")

    def int_arg(self, name: str) -> int | None:
        v = self.arg(name)
        if v is None or v == "":
            return None
        try:
            return int(v)
        except ValueError:
            raise errors.bad_request(f"invalid value for {name}: {v!r} is not an integer") from None

    async def body(self) -> bytes:
        if self._body is None:
            declared = self.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > MAX_BODY:
                raise errors.too_large("Request entity too large: limit is 3145728")
            chunks = []
            size = 0
            while True:
                msg = await self.receive()
                if msg["type"] == "http.disconnect":
                    break
                chunk = msg.get("body", b"")
                size += len(chunk)
                if size > MAX_BODY:
                    raise errors.too_large("Request entity too large: limit is 3145728")
                chunks.append(chunk)
                if not msg.get("more_body"):
                    break
            self._body = b"".join(chunks)
        return self._body

    async def json(self, *, allow_yaml: bool = True) -> Any:
        """The decoded body: JSON, or YAML when the Content-Type says so."""
        raw = await self.body()
        ctype = self.content_type()
        if not raw.strip():
            raise errors.bad_request("the request body is empty: send the object as JSON or YAML")
        if ctype == "application/vnd.kubernetes.protobuf":
            from ..api import protobuf
            return protobuf.decode(raw)
        if ctype not in _DECODABLE and not ctype.endswith("+json") and not ctype.endswith("yaml"):
            raise errors.unsupported_media_type(ctype)
        if ctype.endswith("yaml"):
            if not allow_yaml:
                raise errors.unsupported_media_type(ctype)
            try:
                return yaml.safe_load(raw)
            except yaml.YAMLError as e:
                raise errors.bad_request(f"error converting YAML to JSON: {e}") from None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise errors.bad_request(f"the request body is not valid JSON: {e}") from None

    def content_type(self) -> str:
        return self.headers.get("content-type", "application/json").split(";", 1)[0].strip().lower()

    def accepts(self) -> list[tuple[str, dict[str, str]]]:
        """Accept header as [(media type, params)], in the order given."""
        out = []
        for part in self.headers.get("accept", "").split(","):
            part = part.strip()
            if not part:
                continue
            fields = [f.strip() for f in part.split(";")]
            params = {}
            for f in fields[1:]:
                if "=" in f:
                    k, v = f.split("=", 1)
                    params[k.strip()] = v.strip()
            out.append((fields[0].lower(), params))
        return out


JSON = b"application/json"
_DECODABLE = {"application/json", "application/yaml", "", "*/*"}


async def send_bytes(send, status: int, body: bytes, content_type: bytes = JSON,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    h = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if headers:
        h.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": h})
    await send({"type": "http.response.body", "body": body})


async def send_json(send, status: int, obj: Any, headers=None) -> None:
    await send_bytes(send, status, orjson.dumps(obj), JSON, headers)


async def send_error(send, err: errors.APIError) -> None:
    extra = [(k.lower().encode(), v.encode()) for k, v in err.headers.items()]
    await send_json(send, err.code, err.status(), extra)


async def send_stream(send, status: int, chunks: AsyncIterator[bytes], content_type: bytes = JSON,
                      headers=None) -> None:
    """A chunked response, one flush per chunk (watch streams, followed logs)."""
    h = [(b"content-type", content_type), (b"cache-control", b"no-cache, private")]
    if headers:
        h.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": h})
    async for chunk in chunks:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
