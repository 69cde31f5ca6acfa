"""The kubelet side of exec/attach: Kubernetes' WebSocket channel protocol
(`v5.channel.k8s.io`, `v4.channel.k8s.io`) bridged to a provider's process.

Binary frames carry one stream each, first byte = channel: 0 stdin, 1 stdout,
2 stderr, 3 error (a metav1.Status when the command ends), 4 resize
(`{"Width":…,"Height":…}`); v5 adds 255 = close (`[255, channel]`), which
half-closes stdin."""
from __future__ import annotations

import asyncio
import contextlib

import orjson
from aiohttp import WSMsgType, web

from ..aio import race

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


class ExecStreams:
    """What a provider's ``exec``/``attach`` reads and writes: stdin chunks (None =
    end of input), stdout/stderr writers and terminal resizes."""

    def __init__(self, ws: web.WebSocketResponse, *, stdin: bool, stdout: bool, stderr: bool, tty: bool):
        self.ws = ws
        self.stdin, self.stdout, self.stderr, self.tty = stdin, stdout, stderr, tty
        self._stdin: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._resize: asyncio.Queue[tuple[int, int] | None] = asyncio.Queue()
        self.disconnected = asyncio.Event()     # the client's WebSocket is gone
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type == WSMsgType.TEXT:      # the Python client sends str data as text frames
                    raw = msg.data.encode("utf-8", "surrogateescape")
                elif msg.type == WSMsgType.BINARY:
                    raw = msg.data
                else:
                    continue
                if not raw:
                    continue
                ch, data = raw[0], raw[1:]
                if ch == STDIN:
                    if data:
                        self._stdin.put_nowait(data)
                elif ch == RESIZE:
                    try:
                        size = orjson.loads(data)
                        self._resize.put_nowait((int(size.get("Width", 0)), int(size.get("Height", 0))))
                    except (orjson.JSONDecodeError, ValueError, AttributeError):
                        pass
                elif ch == CLOSE and data[:1] == bytes([STDIN]):
                    self._stdin.put_nowait(None)
        finally:
            self.disconnected.set()
            self._stdin.put_nowait(None)
            self._resize.put_nowait(None)

    async def read_stdin(self) -> bytes | None:
        return await self._stdin.get()

    async def resizes(self):
        """(width, height) of each resize the client sends."""
        while (size := await self._resize.get()) is not None:
            yield size

    async def _send(self, ch: int, data: bytes) -> None:
        if data and not self.ws.closed:
            with contextlib.suppress(ConnectionResetError, RuntimeError):
                await self.ws.send_bytes(bytes([ch]) + data)

    async def write_stdout(self, data: bytes) -> None:
        await self._send(STDOUT, data)

    async def write_stderr(self, data: bytes) -> None:
        await self._send(STDERR if not self.tty else STDOUT, data)

    async def finish(self, exit_code: int | None, error: str | None = None) -> None:
        """Report the outcome on the error channel as upstream does, then close."""
        if error is not None:
            status = {"metadata": {}, "status": "Failure", "message": error}
        elif exit_code:
            status = {"metadata": {}, "status": "Failure",
                      "message": f"command terminated with non-zero exit code: exit status {exit_code}",
                      "reason": "NonZeroExitCode",
                      "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]}}
        else:
            status = {"metadata": {}, "status": "Success"}
        await self._send(ERROR, orjson.dumps(status))
        self._reader.cancel()
        with contextlib.suppress(Exception):
            await self.ws.close()


async def run_exec_handle(handle, streams: ExecStreams) -> int:
    """Bridge a process handle (``stdin`` writer, ``stdout``/``stderr`` readers,
    ``resize(rows, cols)``, ``wait()``, ``close()``) to the client's streams."""

    async def pump_in():
        while (chunk := await streams.read_stdin()) is not None:
            handle.stdin.write(chunk)
            await handle.stdin.drain()
        if handle.stdin.can_write_eof():
            handle.stdin.write_eof()
        else:
            handle.stdin.close()

    async def pump_out(reader, write):
        if reader is None:
            return
        while chunk := await reader.read(65536):
            await write(chunk)

    async def resizes():
        async for width, height in streams.resizes():
            handle.resize(height, width)

    side = []
    if streams.stdin and handle.stdin is not None:
        side.append(asyncio.ensure_future(pump_in()))
    if streams.tty:
        side.append(asyncio.ensure_future(resizes()))
    outs = [asyncio.ensure_future(pump_out(handle.stdout, streams.write_stdout))]
    if not streams.tty:
        outs.append(asyncio.ensure_future(pump_out(handle.stderr, streams.write_stderr)))
    try:
        code = await handle.wait()
        with contextlib.suppress(asyncio.TimeoutError, OSError):
            await asyncio.wait_for(asyncio.gather(*outs, return_exceptions=True), 5)
        return code
    finally:
        for t in side + outs:
            t.cancel()
        handle.close()


async def run_attach_handle(handle, streams: ExecStreams, *, container_stdin: bool) -> None:
    """Bridge an attach handle (``read()`` → ``(pipe, data)`` or None at the end of output,
    ``write(data)``, ``close_stdin()``, ``resize(rows, cols)``, ``close()``, pipe numbers
    ``STDOUT``/``STDERR``) to the client's streams. Returns when the container's output ends
    (it exited) or the client goes away; the container keeps running in the latter case.
    The client's stdin reaches the container only if it was started with ``stdin``."""

    async def pump_in():
        while (chunk := await streams.read_stdin()) is not None:
            await handle.write(chunk)
        handle.close_stdin()        # with stdinOnce the monitor now closes the container's stdin

    async def pump_out():
        while (msg := await handle.read()) is not None:
            pipe, data = msg
            if pipe == handle.STDERR:
                if streams.stderr or streams.tty:
                    await streams.write_stderr(data)
            elif streams.stdout:
                await streams.write_stdout(data)

    async def resizes():
        async for width, height in streams.resizes():
            handle.resize(height, width)

    side = []
    if streams.stdin and container_stdin:
        side.append(asyncio.ensure_future(pump_in()))
    if streams.tty:
        side.append(asyncio.ensure_future(resizes()))
    try:
        await race(pump_out(), streams.disconnected.wait())
    finally:
        for t in side:
            t.cancel()
        await asyncio.gather(*side, return_exceptions=True)
        handle.close()
