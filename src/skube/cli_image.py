"""`skube image pull|import|ls|rm`: the image store of the cluster whose data dir is DIR.

Safe while that cluster runs: the store is SQLite (WAL) plus file locks, shared with the runtime.
"""
from __future__ import annotations

import asyncio
import base64
import datetime
import json
import sys
import time
from pathlib import Path

import click

DEFAULT_DATA_DIR = Path.home() / ".skube"

data_dir_option = click.option(
    "--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True,
    help="Data dir of the cluster whose image store to use.")


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1000
    return f"{n}"


def _ago(ts: float) -> str:
    s = max(0, time.time() - ts)
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if s >= size:
            n = int(s // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


class Progress:
    """Per-layer pull progress: redrawn lines on a terminal, one line per finished layer otherwise."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.layers: dict[str, list[int]] = {}
        self.done: set[str] = set()
        self.drawn = 0
        self.last = 0.0

    def __call__(self, digest: str, done: int, total: int) -> None:
        first = digest not in self.layers
        self.layers[digest] = [done, total]
        finished = total and done >= total
        if not self.tty:
            if finished and digest not in self.done:
                self.done.add(digest)
                verb = "Already exists" if first else "Pull complete"
                self.stream.write(f"{digest[7:19]}: {verb} ({_human(total)})\n")
                self.stream.flush()
            return
        now = time.monotonic()
        if finished or first or now - self.last > 0.1:
            self.last = now
            self.draw()

    def draw(self) -> None:
        out = ["\x1b[A\x1b[2K" * self.drawn] if self.drawn else []
        for digest, (done, total) in self.layers.items():
            if total and done >= total:
                line = f"{digest[7:19]}: Pull complete {_human(total):>10}"
            else:
                width = 30
                filled = int(width * done / total) if total else 0
                line = f"{digest[7:19]}: [{'=' * filled}{'>' if filled < width else ''}{' ' * (width - filled - 1)}] " \
                       f"{_human(done)}/{_human(total)}"
            out.append(line + "\n")
        self.drawn = len(self.layers)
        self.stream.write("".join(out))
        self.stream.flush()


def _service(data_dir: Path, insecure: tuple[str, ...]):
    from .runtime.images import ImageService
    regs = ["127.0.0.1", "localhost", *insecure]
    return ImageService(data_dir.expanduser().resolve(), insecure_registries=regs)


def _run(coro):
    try:
        import uvloop
        return uvloop.run(coro)
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)


def _credentials(creds: str | None, docker_config: Path | None) -> list[dict]:
    out: list[dict] = []
    if creds:
        out.append({"__cli__": creds})  # resolved per registry below
    path = docker_config or Path.home() / ".docker" / "config.json"
    if path.is_file():
        try:
            out.append(json.loads(path.read_text()))
        except ValueError as e:
            raise click.ClickException(f"{path}: {e}")
    elif docker_config:
        raise click.ClickException(f"{docker_config}: no such file")
    return out


@click.group("image")
def image() -> None:
    """Manage the images of a skube cluster (pull, import, list, remove)."""


@image.command("pull")
@click.argument("ref")
@data_dir_option
@click.option("--creds", metavar="USER:PASSWORD", help="Credentials for the image's registry.")
@click.option("--docker-config", type=click.Path(path_type=Path), help="dockerconfigjson file "
              "(default ~/.docker/config.json when present).")
@click.option("--insecure-registry", multiple=True, metavar="HOST[:PORT]|CIDR",
              help="Also allow plain HTTP to this registry (127.0.0.1 and localhost always are).")
@click.option("--policy", type=click.Choice(["Always", "IfNotPresent", "Never"]), default="Always",
              show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="Print only the image digest.")
def pull(ref: str, data_dir: Path, creds: str | None, docker_config: Path | None, insecure_registry: tuple,
         policy: str, quiet: bool) -> None:
    """Pull REF (e.g. busybox, 127.0.0.1:5000/app:v1) into the store."""
    from .runtime.images import ImagePullError, parse
    from .runtime.images.reference import InvalidReference
    configs = _credentials(creds, docker_config)
    if creds:
        try:
            host = parse(ref).registry
        except InvalidReference as e:
            raise click.ClickException(str(e))
        user, _, pw = creds.partition(":")
        configs[0] = {"auths": {host: {"auth": base64.b64encode(f"{user}:{pw}".encode()).decode()}}}

    async def go():
        svc = _service(data_dir, insecure_registry)
        try:
            start = time.monotonic()
            rec = await svc.pull(ref, credentials=configs, policy=policy, progress=None if quiet else Progress())
            return rec, time.monotonic() - start
        finally:
            await svc.close()
    try:
        rec, took = _run(go())
    except ImagePullError as e:
        raise click.ClickException(str(e))
    if quiet:
        click.echo(rec.digest)
    else:
        click.echo(f"Digest: {rec.digest}")
        click.echo(f"Pulled {rec.name} ({_human(rec.size)} in {took:.2f}s)")


@image.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@data_dir_option
@click.option("--name", help="Repository for untagged images (default localhost/<file name>).")
def import_(file: Path, data_dir: Path, name: str | None) -> None:
    """Import FILE: a docker-archive (`docker save`) or OCI-layout tarball, keeping its tags."""
    async def go():
        svc = _service(data_dir, ())
        try:
            return await svc.import_archive(file, name=name)
        finally:
            await svc.close()
    try:
        recs = _run(go())
    except ValueError as e:
        raise click.ClickException(str(e))
    for r in recs:
        click.echo(f"Loaded image: {r.name}")


@image.command("ls")
@data_dir_option
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--digests", is_flag=True, help="Show manifest digests.")
def ls(data_dir: Path, output: str, digests: bool) -> None:
    """List the images in the store."""
    from .runtime.images.store import ContentStore
    root = data_dir.expanduser().resolve() / "images"
    if not (root / "index.db").exists():
        recs = []
    else:
        store = ContentStore(root)
        try:
            recs = store.records()
        finally:
            store.close()
    if output == "json":
        click.echo(json.dumps([{"name": r.name, "digest": r.digest, "id": r.id, "size": r.size,
                                "layers": r.layers, "lastUsed": datetime.datetime.fromtimestamp(
                                    r.last_used, datetime.timezone.utc).isoformat()} for r in recs], indent=2))
        return
    rows = [("IMAGE", "TAG", *(("DIGEST",) if digests else ()), "IMAGE ID", "SIZE", "LAST USED")]
    for r in recs:
        base = r.name.partition("@")[0]
        slash, colon = base.rfind("/"), base.rfind(":")
        repo, tag = (base[:colon], base[colon + 1:]) if colon > slash else (base, "<none>")
        rows.append((repo, tag, *((r.digest,) if digests else ()), r.id[7:19], _human(r.size), _ago(r.last_used)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("   ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


@image.command("rm")
@click.argument("refs", nargs=-1, required=True)
@data_dir_option
def rm(refs: tuple[str, ...], data_dir: Path) -> None:
    """Remove images (by name or ID); their layers go when nothing else uses them."""
    from .runtime.images import ImageNotFoundError

    async def go():
        svc = _service(data_dir, ())
        failed = []
        try:
            for ref in refs:
                try:
                    await svc.remove(ref)
                    click.echo(f"Untagged: {ref}")
                except ImageNotFoundError as e:
                    failed.append(str(e))
        finally:
            await svc.close()
        return failed
    failed = _run(go())
    if failed:
        raise click.ClickException("; ".join(failed))
