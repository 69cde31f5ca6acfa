"""Async wrapper around the ``runc`` binary (and the ``conmon`` per-container monitor).

Containers are created through conmon: a small C monitor (one per container, not Python)
that becomes the container's parent and subreaper, owns its stdout/stderr pipes, writes
them to a CRI-format log file, records the exit status in ``<exit_dir>/<id>`` and then
exits. It is detached from skube, so containers, their logs and their exit codes survive a
restart of skube. skube learns of an exit by polling a ``pidfd`` of the monitor in the event
loop (no thread, no process of its own per container).
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
from dataclasses import dataclass
from pathlib import Path


class RuncError(Exception):
    def __init__(self, message: str, returncode: int | None = None):
        super().__init__(message)
        self.message = message
        self.returncode = returncode


@dataclass
class Monitored:
    pid: int          # the container's init process (host pid)
    monitor_pid: int  # conmon


def _binary(name: str, *fallbacks: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for f in fallbacks:
        if os.access(f, os.X_OK):
            return f
    return name


async def wait_pid(pid: int, timeout: float | None = None) -> bool:
    """Wait until process ``pid`` (not necessarily our child) exits. True if it did."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    loop.add_reader(fd, lambda: fut.done() or fut.set_result(True))
    try:
        await asyncio.wait_for(fut, timeout)
        return True
    except asyncio.TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:   # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


class Runc:
    """``runc --root <root>`` commands; every call is a short-lived subprocess."""

    def __init__(self, root: Path | str, runc: str | None = None, conmon: str | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.runc = runc or _binary("runc", "/usr/sbin/runc", "/usr/bin/runc")
        self.conmon = conmon or _binary("conmon", "/usr/bin/conmon", "/usr/libexec/podman/conmon")

    def _cmd(self, *args: str) -> list[str]:
        return [self.runc, "--root", str(self.root), *args]

    async def _run(self, *args: str, check: bool = True, timeout: float = 30) -> tuple[int, bytes, bytes]:
        proc = await asyncio.create_subprocess_exec(
            *self._cmd(*args), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuncError(f"runc {args[0]} timed out")
        if check and proc.returncode != 0:
            raise RuncError(_message(err) or f"runc {args[0]} failed", proc.returncode)
        return proc.returncode, out, err

    # ---- monitored containers -------------------------------------------------------------

    async def create_monitored(self, cid: str, bundle: Path | str, *, log_path: Path | str,
                               exit_dir: Path | str, persist_dir: Path | str,
                               stdin: bool = False, stdin_once: bool = False, tty: bool = False,
                               timeout: float = 30) -> Monitored:
        """``runc create`` under a detached conmon; returns once the container is created
        (its process waits for :meth:`start`). Raises RuncError with runc's message.

        ``stdin`` keeps the container's stdin open (a pipe, or the terminal with ``tty``) for
        :meth:`attach` clients; ``stdin_once`` closes it when the first attached client leaves;
        ``tty`` gives the process a pseudo-terminal (the spec's ``process.terminal``)."""
        bundle = Path(bundle)
        Path(exit_dir).mkdir(parents=True, exist_ok=True)
        Path(persist_dir).mkdir(parents=True, exist_ok=True)
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        for stale in (Path(exit_dir) / cid, bundle / "pidfile", bundle / "conmon.pid"):
            stale.unlink(missing_ok=True)
        r, w = os.pipe()
        env = dict(os.environ, _OCI_SYNCPIPE=str(w))
        args = [self.conmon, "--api-version", "1", "-c", cid, "-u", cid, "-n", cid,
                "-r", self.runc, "--runtime-arg", f"--root={self.root}", "-b", str(bundle),
                "-p", str(bundle / "pidfile"), "-P", str(bundle / "conmon.pid"),
                "-l", f"k8s-file:{log_path}", "--exit-dir", str(exit_dir),
                "-0", str(persist_dir), "--socket-dir-path", str(bundle),
                "--log-level", "error"]
        if tty:
            args.append("--terminal")
        if stdin:
            args.append("--stdin")
            if not stdin_once:
                args.append("--leave-stdin-open")
        try:
            proc = await asyncio.create_subprocess_exec(
                *args, env=env, pass_fds=(w,), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
                start_new_session=True, cwd=str(bundle))
        finally:
            os.close(w)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(r, "rb", 0))
        try:
            _, err = await asyncio.wait_for(proc.communicate(), timeout)
            line = await asyncio.wait_for(reader.readline(), timeout)
        except asyncio.TimeoutError:
            raise RuncError(f"creating container {cid} timed out")
        finally:
            transport.close()
        if proc.returncode != 0 or not line:
            raise RuncError(_message(err) or f"conmon failed for {cid}", proc.returncode)
        msg = json.loads(line)
        pid = int(msg.get("data", -1))
        if pid <= 0:
            raise RuncError(_message(msg.get("message", "").encode()) or "container create failed")
        monitor_pid = int((bundle / "conmon.pid").read_text().strip())
        return Monitored(pid=pid, monitor_pid=monitor_pid)

    async def run_detached(self, cid: str, bundle: Path | str) -> int:
        """``runc run --detach`` with /dev/null stdio (the pod's holder process); its pid."""
        bundle = Path(bundle)
        pidfile = bundle / "pidfile"
        pidfile.unlink(missing_ok=True)
        logfile = bundle / "runc.log"
        logfile.unlink(missing_ok=True)
        # the container inherits runc's stdio: /dev/null, errors are read from --log
        proc = await asyncio.create_subprocess_exec(
            self.runc, "--root", str(self.root), "--log", str(logfile), "--log-format", "json",
            "run", "--detach", "--bundle", str(bundle), "--pid-file", str(pidfile), cid,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
        if await proc.wait() != 0:
            msg = ""
            try:
                for line in logfile.read_text().splitlines():
                    rec = json.loads(line)
                    if rec.get("level") in ("error", "fatal"):
                        msg = rec.get("msg", msg)
            except (OSError, ValueError):
                pass
            raise RuncError(msg or "runc run failed", proc.returncode)
        return int(pidfile.read_text().strip())

    async def attach(self, bundle: Path | str) -> "AttachHandle":
        """Connect to the attach socket conmon keeps in ``bundle`` for the container's main
        process (stdin in, stdout/stderr out). Raises RuncError if the monitor is gone."""
        loop = asyncio.get_running_loop()
        bundle = Path(bundle)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        sock.setblocking(False)
        try:   # through /proc/self/fd: a socket path may not exceed 107 bytes
            dfd = os.open(bundle, os.O_PATH | os.O_CLOEXEC)
            try:
                await loop.sock_connect(sock, f"/proc/self/fd/{dfd}/attach")
            finally:
                os.close(dfd)
        except OSError as e:
            sock.close()
            raise RuncError(f"cannot attach: the container's monitor is not running ({e.strerror})")
        return AttachHandle(sock, bundle / "ctl")

    # ---- plain commands -----------------------------------------------------------------

    async def start(self, cid: str) -> None:
        await self._run("start", cid)

    async def state(self, cid: str) -> dict | None:
        """runc's state (``status``: created/running/paused/stopped) or None if unknown."""
        rc, out, err = await self._run("state", cid, check=False)
        if rc != 0:
            return None
        return json.loads(out)

    async def list(self) -> list[dict]:
        rc, out, _ = await self._run("list", "--format", "json", check=False)
        if rc != 0 or not out.strip():
            return []
        return json.loads(out) or []

    async def kill(self, cid: str, sig: int | str = signal.SIGTERM, all: bool = False) -> bool:
        """Signal the container; False if it is not running any more."""
        name = sig if isinstance(sig, str) else signal.Signals(sig).name
        args = ["kill"] + (["--all"] if all else []) + [cid, name]
        rc, _, _ = await self._run(*args, check=False)
        return rc == 0

    async def delete(self, cid: str, force: bool = False) -> None:
        """Remove the container (``force`` kills it first); unknown ids are fine."""
        rc, _, err = await self._run("delete", *(["--force"] if force else []), cid, check=False)
        if rc != 0 and b"does not exist" not in err and b"not exist" not in err:
            raise RuncError(_message(err) or f"runc delete {cid} failed", rc)

    async def exec(self, cid: str, args: list[str], *, tty: bool = False,
                   env: list[str] | None = None, cwd: str | None = None,
                   user: str | None = None) -> "ExecHandle":
        """``runc exec`` in the foreground as an :class:`ExecHandle`. With ``tty`` runc is
        given a pseudo-terminal of ours (it relays it to the one it allocates in the
        container); stdout then carries the terminal output and stderr is None."""
        cmd = ["exec"]
        if tty:
            cmd.append("--tty")
        for e in env or []:
            cmd += ["--env", e]
        if cwd:
            cmd += ["--cwd", cwd]
        if user:
            cmd += ["--user", user]
        cmd += [cid, *args]
        if not tty:
            proc = await asyncio.create_subprocess_exec(
                *self._cmd(*cmd), stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            return ExecHandle(proc, proc.stdin, proc.stdout, proc.stderr)
        master, slave = os.openpty()
        try:
            termios_mod = __import__("tty")
            termios_mod.setraw(slave)
            proc = await asyncio.create_subprocess_exec(
                *self._cmd(*cmd), stdin=slave, stdout=slave, stderr=slave,
                start_new_session=True)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        rt, _ = await loop.connect_read_pipe(lambda: _PtyReader(reader),
                                             os.fdopen(os.dup(master), "rb", 0))
        wt, wp = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin,
                                               os.fdopen(os.dup(master), "wb", 0))
        writer = asyncio.StreamWriter(wt, wp, None, loop)
        return ExecHandle(proc, writer, reader, None, master=master, transports=[rt, wt])


class AttachHandle:
    """A client of conmon's attach socket (SOCK_SEQPACKET). Each message conmon sends is
    one output chunk prefixed by a byte naming its pipe; what we send is written to the
    container's stdin. Resizes go to conmon's ``ctl`` fifo."""

    STDOUT, STDERR = 2, 3           # conmon's pipe numbers (1 is stdin)
    MAX_WRITE = 8192                # conmon reads at most this much per message

    RESIZE_GAP = 0.1                # conmon acts on one message per read of its fifo

    def __init__(self, sock: socket.socket, ctl_path: Path):
        self.sock = sock
        self.ctl_path = ctl_path
        self._size: tuple[int, int] | None = None
        self._last_resize = 0.0
        self._resize_timer: asyncio.TimerHandle | None = None

    async def read(self) -> tuple[int, bytes] | None:
        """The next ``(pipe, data)`` of output; None once the container's output ended."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                msg = await loop.sock_recv(self.sock, 65536)
            except OSError:
                return None
            if not msg:
                return None
            if len(msg) > 1:
                return msg[0], msg[1:]

    async def write(self, data: bytes) -> None:
        """Feed the container's stdin (dropped by conmon when the container has none)."""
        loop = asyncio.get_running_loop()
        for i in range(0, len(data), self.MAX_WRITE):
            await loop.sock_sendall(self.sock, data[i:i + self.MAX_WRITE])

    def close_stdin(self) -> None:
        """End of our input: conmon closes the container's stdin if it was started
        ``stdin_once``."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def resize(self, rows: int, cols: int) -> None:
        """Set the container terminal's size (conmon's control message type 1). Sizes sent
        in quick succession (kubectl attach sends size+1, then the size, to force a redraw)
        are spaced out, and a burst collapses to its last size: conmon reads its fifo in
        chunks and acts on the first message of each."""
        self._size = (rows, cols)
        if self._resize_timer is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._last_resize + self.RESIZE_GAP - loop.time()
        if wait <= 0:
            self._write_size()
        else:
            self._resize_timer = loop.call_later(wait, self._write_size)

    def _write_size(self) -> None:
        self._resize_timer = None
        self._last_resize = asyncio.get_running_loop().time()
        rows, cols = self._size
        try:
            fd = os.open(self.ctl_path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return
        try:
            os.write(fd, f"1 {max(0, min(rows, 1000))} {max(0, min(cols, 1000))}\n".encode())
        except OSError:
            pass
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._resize_timer is not None:
            self._resize_timer.cancel()
            self._resize_timer = None
        self.sock.close()


class _PtyReader(asyncio.StreamReaderProtocol):
    """A pty master reports EIO once the other side is closed: treat it as EOF."""

    def connection_lost(self, exc):
        super().connection_lost(None if isinstance(exc, OSError) else exc)


class ExecHandle:
    """A running ``runc exec``: ``stdin`` (writer), ``stdout``/``stderr`` (readers), ``wait()``."""

    def __init__(self, proc, stdin, stdout, stderr, master: int | None = None,
                 transports: list | None = None):
        self.proc = proc
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.tty = master is not None
        self._master = master
        self._transports = transports or []

    @property
    def pid(self) -> int:
        return self.proc.pid

    def resize(self, rows: int, cols: int) -> None:
        """Set the terminal size (tty sessions); runc relays it into the container."""
        if self._master is not None:
            import fcntl, struct, termios
            fcntl.ioctl(self._master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            try:
                os.killpg(self.proc.pid, signal.SIGWINCH)
            except ProcessLookupError:
                pass

    async def wait(self) -> int:
        rc = await self.proc.wait()
        if self._master is not None:
            await asyncio.sleep(0)   # let the pty reader drain what is buffered
        return rc

    def kill(self) -> None:
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass

    def close(self) -> None:
        for t in self._transports:
            t.close()
        self._transports = []
        if self._master is not None:
            os.close(self._master)
            self._master = None


def _message(err: bytes) -> str:
    """The useful part of runc/conmon error output."""
    text = err.decode(errors="replace").strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if 'msg="' in ln:
            return ln.split('msg="', 1)[1].rsplit('"', 1)[0].replace('\\"', '"')
    return lines[-1] if lines else ""


__all__ = ["Runc", "RuncError", "Monitored", "ExecHandle", "AttachHandle", "wait_pid", "pid_alive"]
