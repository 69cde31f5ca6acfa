"""The kubelet side of port-forward (``/portForward/{namespace}/{pod}``) over WebSocket.

Two protocols, chosen by the WebSocket subprotocol:

* ``SPDY/3.1+portforward.k8s.io`` (kubectl >= 1.31): the WebSocket carries the byte
  stream of a SPDY/3.1 session (frames may span or share binary messages). For each
  forwarded connection the client opens two streams (SYN_STREAM headers
  ``streamtype: error|data``, ``port``, ``requestid``); we reply to each, pair them by
  request id, hand the data stream to ``provider.port_forward`` and report a failure
  as text on the error stream. Both streams are finished (FIN) when the forwarding ends.
* ``v4.channel.k8s.io`` / ``portforward.k8s.io`` (or no subprotocol): the channel
  protocol. Query ``port`` (or ``ports``, comma-separated lists allowed) names the
  ports; port i uses channel 2i for data and 2i+1 for errors, and the first frame on
  each channel is the port as 2 bytes little-endian. One connection per port.

SPDY/3.1 in brief: every frame has an 8-byte header. Control frames: bit 31 set,
15-bit version (3), 16-bit type, 8-bit flags, 24-bit length. Data frames: 31-bit
stream id, 8-bit flags (0x01 FIN), 24-bit length. Header blocks (SYN_STREAM,
SYN_REPLY, HEADERS) are ``count, (len, name, len, value)*`` with 32-bit big-endian
lengths, compressed with one zlib stream per direction primed with the SPDY/3
dictionary and sync-flushed after each block.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import zlib

from aiohttp import WSMsgType, web

from ..providers.base import BadRequest, NotSupported, PodNotFound

log = logging.getLogger("skube.node.portforward")

SPDY_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
CHANNEL_PROTOCOLS = ("v4.channel.k8s.io", "portforward.k8s.io")
PROTOCOLS = (SPDY_PROTOCOL,) + CHANNEL_PROTOCOLS

# SPDY/3 control frame types, flags and status codes
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, CANCEL = 1, 2, 3, 5
INITIAL_WINDOW = 64 * 1024
MAX_DATA = 32 * 1024          # bytes per DATA frame we send
# the channel protocol: how long to wait for the client to hang up first once every
# port is done (the Python client may drop data that arrives with the close frame)
CHANNEL_LINGER = 1.0

_DICT_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base content-encoding "
    "content-language content-length content-location content-md5 content-range content-type date "
    "etag expect expires from host if-match if-modified-since if-none-match if-range "
    "if-unmodified-since last-modified location max-forwards pragma proxy-authenticate "
    "proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status").split() + [
    "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
_DICT_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
# The SPDY/3 header compression dictionary (spec section 2.6.10.1).
SPDY3_DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _DICT_WORDS) + _DICT_TAIL.encode()
assert len(SPDY3_DICTIONARY) == 1423 and zlib.adler32(SPDY3_DICTIONARY) == 0xE3C6A7C2, "SPDY/3 dictionary"


class PortForwardStream:
    """One forwarded connection as a provider sees it (``provider.port_forward``).

    ``await read()`` returns the next bytes from the client, ``b""`` once the client
    has finished sending (or went away); ``await write(data)`` sends bytes to the
    client; ``await close()`` tells the client no more data follows. ``port`` is the
    pod port asked for."""

    def __init__(self, port: int, send, finish):
        self.port = port
        self._send = send            # async (bytes) -> None
        self._finish = finish        # async () -> None
        self._in: asyncio.Queue[bytes] = asyncio.Queue()
        self._eof = False
        self._closed = False
        self.consumed = None         # optional callback(n) when the provider takes n bytes

    # fed by the protocol side
    def feed(self, data: bytes) -> None:
        if data and not self._eof:
            self._in.put_nowait(data)

    def feed_eof(self) -> None:
        if not self._eof:
            self._eof = True
            self._in.put_nowait(b"")

    # used by the provider
    async def read(self) -> bytes:
        if self._eof and self._in.empty():
            return b""
        data = await self._in.get()
        if not data:
            self._in.put_nowait(b"")     # stay at EOF for later readers
        elif self.consumed is not None:
            self.consumed(len(data))
        return data

    async def write(self, data: bytes) -> None:
        if data and not self._closed:
            await self._send(bytes(data))

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._finish()

    @property
    def closed(self) -> bool:
        return self._closed


def parse_ports(query) -> list[int]:
    """Ports of the ``port``/``ports`` query parameters (repeated and/or comma-separated)."""
    raw = list(query.getall("port", [])) + list(query.getall("ports", []))
    ports = []
    for value in raw:
        if not value:
            raise ValueError('query parameter "port" cannot be empty')
        for p in value.split(","):
            try:
                n = int(p)
            except ValueError:
                raise ValueError(f'unable to parse "{p}" as a port: not an integer') from None
            if not 0 < n < 65536:
                raise ValueError(f'port "{p}" must be > 0 and < 65536')
            ports.append(n)
    return ports


def _error_text(kubelet, ns: str, pod: str, port: int, e: BaseException) -> str:
    if isinstance(e, (NotSupported, PodNotFound, BadRequest)):
        reason = str(e)
    else:
        reason = f"{type(e).__name__}: {e}" if not str(e) else str(e)
    return f"error forwarding port {port} to pod {ns}/{pod} on node {kubelet.node_name}: {reason}"


async def _forward(kubelet, ns: str, pod: str, stream: PortForwardStream) -> str | None:
    """Run the provider's port_forward; the error text to report, or None."""
    try:
        await kubelet.provider.port_forward(ns, pod, stream.port, stream)
        return None
    except asyncio.CancelledError:
        raise
    except Exception as e:  # noqa: BLE001 — the client must learn why
        if not isinstance(e, (NotSupported, PodNotFound, BadRequest, OSError)):
            log.exception("port-forward %s/%s:%d", ns, pod, stream.port)
        return _error_text(kubelet, ns, pod, stream.port, e)


async def handle(kubelet, request: web.Request) -> web.StreamResponse:
    """The ``/portForward`` route (after the kubelet checked the provider supports it)."""
    ns, pod = request.match_info["namespace"], request.match_info["pod"]
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    spdy = SPDY_PROTOCOL in offered
    ports: list[int] = []
    if not spdy:
        try:
            ports = parse_ports(request.query)
        except ValueError as e:
            return web.Response(status=400, text=f"{e}\n", content_type="text/plain")
        if not ports:
            return web.Response(status=400, text='query parameter "port" is required\n',
                                content_type="text/plain")
    ws = web.WebSocketResponse(protocols=PROTOCOLS, heartbeat=None, max_msg_size=0, autoping=True)
    await ws.prepare(request)
    try:
        if ws.ws_protocol == SPDY_PROTOCOL:
            await SpdySession(kubelet, ns, pod, ws).run()
        else:
            await _channels(kubelet, ns, pod, ws, ports)
    finally:
        with contextlib.suppress(Exception):
            await ws.close()
    return ws


# ---- the channel protocol ------------------------------------------------------------------

async def _channels(kubelet, ns: str, pod: str, ws: web.WebSocketResponse, ports: list[int]) -> None:
    lock = asyncio.Lock()

    async def send(ch: int, data: bytes) -> None:
        if ws.closed:
            raise ConnectionResetError("the client went away")
        async with lock:
            await ws.send_bytes(bytes([ch]) + data)

    streams: list[PortForwardStream] = []
    for i, port in enumerate(ports):
        streams.append(PortForwardStream(port, lambda d, ch=2 * i: send(ch, d), _noop))
    for i, port in enumerate(ports):
        await send(2 * i, struct.pack("<H", port))
        await send(2 * i + 1, struct.pack("<H", port))

    async def one(i: int, s: PortForwardStream) -> None:
        err = await _forward(kubelet, ns, pod, s)
        if err is not None:
            with contextlib.suppress(Exception):
                await send(2 * i + 1, err.encode())

    async def reader() -> None:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                raw = msg.data
            elif msg.type == WSMsgType.TEXT:
                raw = msg.data.encode("utf-8", "surrogateescape")
            else:
                continue
            if not raw:
                continue
            ch, data = raw[0], raw[1:]
            if ch % 2 == 0 and ch // 2 < len(streams):
                streams[ch // 2].feed(data)

    read_task = asyncio.ensure_future(reader())
    tasks = [asyncio.ensure_future(one(i, s)) for i, s in enumerate(streams)]
    try:
        done, _ = await asyncio.wait([read_task, asyncio.gather(*tasks)],
                                     return_when=asyncio.FIRST_COMPLETED)
        if read_task in done:                   # the client hung up: nothing more can be delivered
            for s in streams:
                s.feed_eof()
        else:                                   # every port is done: let the client hang up first
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(read_task), CHANNEL_LINGER)
    finally:
        for t in tasks + [read_task]:
            t.cancel()
        await asyncio.gather(*tasks, read_task, return_exceptions=True)


async def _noop() -> None:
    return None


# ---- SPDY/3.1 ------------------------------------------------------------------------------

class SpdyError(Exception):
    """A session-level protocol error (the session is ended with GOAWAY)."""


class _Stream:
    __slots__ = ("id", "kind", "port", "request_id", "pf", "local_fin", "remote_fin", "unacked")

    def __init__(self, sid: int, kind: str, port: int | None, request_id: str):
        self.id, self.kind, self.port, self.request_id = sid, kind, port, request_id
        self.pf: PortForwardStream | None = None
        self.local_fin = self.remote_fin = False
        self.unacked = 0


class SpdySession:
    """A SPDY/3.1 server session carried by a WebSocket's binary messages."""

    def __init__(self, kubelet, ns: str, pod: str, ws: web.WebSocketResponse):
        self.kubelet, self.ns, self.pod, self.ws = kubelet, ns, pod, ws
        self.buf = bytearray()
        self.streams: dict[int, _Stream] = {}
        self.pairs: dict[str, dict[str, _Stream]] = {}
        self.tasks: set[asyncio.Task] = set()
        self.lock = asyncio.Lock()
        self.inflate = zlib.decompressobj(zdict=SPDY3_DICTIONARY)
        self.deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 9,
                                        zlib.Z_DEFAULT_STRATEGY, SPDY3_DICTIONARY)
        self.last_stream = 0
        self.gone_away = False

    # -- output --

    async def _write(self, frame: bytes) -> None:
        if self.ws.closed:
            raise ConnectionResetError("the client went away")
        await self.ws.send_bytes(frame)

    async def _control(self, ftype: int, flags: int, payload: bytes) -> None:
        async with self.lock:
            await self._write(struct.pack(">HHI", 0x8000 | 3, ftype, (flags << 24) | len(payload)) + payload)

    async def _headers_frame(self, ftype: int, sid: int, headers: dict[str, str], flags: int = 0) -> None:
        block = struct.pack(">I", len(headers)) + b"".join(
            struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
            for k, v in headers.items())
        async with self.lock:        # compression state must follow the order of frames on the wire
            z = self.deflate.compress(block) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
            payload = struct.pack(">I", sid) + z
            await self._write(struct.pack(">HHI", 0x8000 | 3, ftype, (flags << 24) | len(payload)) + payload)

    async def _data(self, st: _Stream, data: bytes, fin: bool = False) -> None:
        if st.local_fin:
            return
        view = memoryview(data)
        while True:
            chunk, view = view[:MAX_DATA], view[MAX_DATA:]
            last = not len(view)
            flags = FLAG_FIN if (fin and last) else 0
            async with self.lock:
                if st.local_fin:
                    return
                if flags:
                    st.local_fin = True
                await self._write(struct.pack(">II", st.id & 0x7FFFFFFF, (flags << 24) | len(chunk)) + bytes(chunk))
            if last:
                break
        self._maybe_forget(st)

    async def _rst(self, sid: int, status: int) -> None:
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await self._control(RST_STREAM, 0, struct.pack(">II", sid & 0x7FFFFFFF, status))

    # -- input --

    def _headers(self, block: bytes) -> dict[str, str]:
        raw = self.inflate.decompress(block)
        try:
            (n,), off, out = struct.unpack_from(">I", raw), 4, {}
            for _ in range(n):
                (ln,) = struct.unpack_from(">I", raw, off)
                name = raw[off + 4:off + 4 + ln].decode("latin-1").lower()
                off += 4 + ln
                (lv,) = struct.unpack_from(">I", raw, off)
                value = raw[off + 4:off + 4 + lv].decode("latin-1")
                off += 4 + lv
                out[name] = value.split("\0")[0]
        except struct.error:
            raise SpdyError("malformed header block") from None
        return out

    async def run(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type != WSMsgType.BINARY:
                    continue
                self.buf += msg.data
                while len(self.buf) >= 8:
                    length = int.from_bytes(self.buf[5:8], "big")
                    if len(self.buf) < 8 + length:
                        break
                    head, body = bytes(self.buf[:8]), bytes(self.buf[8:8 + length])
                    del self.buf[:8 + length]
                    await self._frame(head, body)
                if self.gone_away and not self.streams and not self.tasks:
                    break
        except SpdyError as e:
            log.info("port-forward %s/%s: SPDY protocol error: %s", self.ns, self.pod, e)
            with contextlib.suppress(Exception):
                await self._control(GOAWAY, 0, struct.pack(">II", self.last_stream, PROTOCOL_ERROR))
        except (ConnectionResetError, RuntimeError):
            pass
        finally:
            for st in self.streams.values():
                if st.pf is not None:
                    st.pf.feed_eof()
            for t in list(self.tasks):
                t.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _frame(self, head: bytes, body: bytes) -> None:
        flags = head[4]
        if head[0] & 0x80:
            version = int.from_bytes(head[0:2], "big") & 0x7FFF
            ftype = int.from_bytes(head[2:4], "big")
            if version != 3:
                raise SpdyError(f"unsupported SPDY version {version}")
            if ftype == SYN_STREAM:
                if len(body) < 10:
                    raise SpdyError("short SYN_STREAM")
                sid = int.from_bytes(body[0:4], "big") & 0x7FFFFFFF
                await self._syn_stream(sid, flags, self._headers(body[10:]))
            elif ftype in (SYN_REPLY, HEADERS):
                self._headers(body[4:])      # keep the decompressor in step; nothing to do
            elif ftype == RST_STREAM:
                sid = int.from_bytes(body[0:4], "big") & 0x7FFFFFFF
                st = self.streams.pop(sid, None)
                if st is not None:
                    st.local_fin = st.remote_fin = True
                    if st.pf is not None:
                        st.pf.feed_eof()
                    self._cancel_pair(st)
            elif ftype == PING:
                await self._control(PING, 0, body[:4])
            elif ftype == GOAWAY:
                self.gone_away = True
            # SETTINGS, WINDOW_UPDATE: we do not limit what we send (the Go peer never
            # sends WINDOW_UPDATE either), so there is nothing to track
            return
        sid = int.from_bytes(head[0:4], "big") & 0x7FFFFFFF
        st = self.streams.get(sid)
        if st is None:          # finished or reset already: late frames are dropped
            return
        if body and st.pf is not None and not st.remote_fin:
            st.pf.feed(body)
        elif body:                           # data on an error stream: dropped
            await self._ack(st, len(body))
        if flags & FLAG_FIN:
            st.remote_fin = True
            if st.pf is not None:
                st.pf.feed_eof()
            self._maybe_forget(st)

    async def _ack(self, st: _Stream, n: int) -> None:
        st.unacked += n
        if st.unacked >= INITIAL_WINDOW // 2 and not st.remote_fin:
            delta, st.unacked = st.unacked, 0
            with contextlib.suppress(ConnectionResetError, RuntimeError):
                await self._control(WINDOW_UPDATE, 0, struct.pack(">II", st.id, delta))

    async def _syn_stream(self, sid: int, flags: int, headers: dict[str, str]) -> None:
        self.last_stream = max(self.last_stream, sid)
        kind = headers.get("streamtype", "")
        port_s = headers.get("port", "")
        rid = headers.get("requestid", "")
        if sid in self.streams or self.gone_away:
            await self._rst(sid, PROTOCOL_ERROR if sid in self.streams else REFUSED_STREAM)
            return
        if kind not in ("error", "data"):
            log.info("port-forward %s/%s: stream %d has invalid streamtype %r", self.ns, self.pod, sid, kind)
            await self._rst(sid, REFUSED_STREAM)
            return
        st = _Stream(sid, kind, None, rid)
        st.remote_fin = bool(flags & FLAG_FIN)
        self.streams[sid] = st
        await self._headers_frame(SYN_REPLY, sid, {})
        pair = self.pairs.setdefault(rid, {})
        if kind in pair:
            await self._data(st, f"a {kind} stream already exists for request {rid}".encode(), fin=True)
            return
        pair[kind] = st
        try:
            port = int(port_s)
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            port = None
        st.port = port
        if kind == "data" and port is not None:     # buffer what the client sends before pairing
            st.pf = PortForwardStream(port, lambda b: self._data(st, b), lambda: self._data(st, b"", fin=True))
            st.pf.consumed = lambda n: self._spawn(self._ack(st, n))
            if st.remote_fin:
                st.pf.feed_eof()
        if "error" in pair and "data" in pair:
            del self.pairs[rid]
            self._spawn(self._serve(pair["error"], pair["data"]))

    def _spawn(self, coro) -> None:
        t = asyncio.ensure_future(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    def _cancel_pair(self, st: _Stream) -> None:
        for rid, pair in list(self.pairs.items()):
            if pair.get(st.kind) is st:
                del self.pairs[rid]

    def _maybe_forget(self, st: _Stream) -> None:
        if st.local_fin and st.remote_fin:
            self.streams.pop(st.id, None)

    async def _serve(self, err: _Stream, data: _Stream) -> None:
        """One forwarded connection: data stream <-> provider; failures on the error stream."""
        try:
            if data.pf is None:
                message = "invalid or missing port header in the data stream"
            else:
                message = await _forward(self.kubelet, self.ns, self.pod, data.pf)
            if message:
                await self._data(err, message.encode())
            await self._data(err, b"", fin=True)
            await self._data(data, b"", fin=True)
        except (ConnectionResetError, RuntimeError):
            pass


__all__ = ["PortForwardStream", "SpdySession", "SPDY3_DICTIONARY", "PROTOCOLS", "handle", "parse_ports"]
