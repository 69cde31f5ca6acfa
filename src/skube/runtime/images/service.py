"""ImageService: pull, import, list, remove images and prepare container root filesystems."""
from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import platform
import re
import shutil
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable

import aiohttp
import orjson

from . import archive as archive_mod
from .gc import GCPolicy, collect
from .reference import InvalidReference, Reference, parse
from .registry import INDEX_TYPES, MANIFEST_TYPES, RegistryClient, RegistryError, parse_docker_configs
from .rootfs import copy_layers, mount_overlay, overlay_supported, unmount
from .store import ContentStore, DigestMismatch, ImageRecord
from .unpack import LayerError, chain_ids, unpack_layer

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], Any]
_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
           "armv6l": "arm", "i686": "386", "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x",
           "riscv64": "riscv64"}
_VARIANT = {"armv7l": "v7", "armv6l": "v6", "aarch64": "v8", "arm64": "v8"}
LAYER_DOWNLOADS = 3
MARKER = "rootfs.json"


class ImagePullError(Exception):
    """Pull failed. `reason` is the kubelet reason (ErrImagePull, ErrImageNeverPull, InvalidImageName);
    `cause` says why: unauthorized, not found, network, digest mismatch, invalid, platform."""

    def __init__(self, reason: str, message: str, cause: str = ""):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.cause = cause

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


class ImageNotFoundError(KeyError):
    def __str__(self) -> str:
        return f"no such image: {self.args[0]}"


def host_platform() -> tuple[str, str, str]:
    m = platform.machine().lower()
    return "linux", _GOARCH.get(m, m), _VARIANT.get(m, "")


def select_platform(manifests: list[dict], want: tuple[str, str, str] | None = None) -> dict:
    """Pick linux + this machine's architecture from an index (variant matched when given)."""
    os_, arch, variant = want or host_platform()
    candidates = [m for m in manifests if (m.get("platform") or {}).get("os") == os_
                  and (m.get("platform") or {}).get("architecture") == arch]
    if not candidates:
        seen = sorted({f"{(m.get('platform') or {}).get('os')}/{(m.get('platform') or {}).get('architecture')}"
                       for m in manifests})
        raise ImagePullError("ErrImagePull", f"no matching manifest for {os_}/{arch} in the manifest list "
                             f"entries (has {', '.join(seen)})", "platform")
    exact = [m for m in candidates if (m["platform"].get("variant") or "") == variant]
    return (exact or candidates)[0]


class _Hub:
    """Fans progress of one in-flight pull out to every caller waiting on it."""

    def __init__(self, cb: Progress | None):
        self.callbacks = [cb] if cb else []

    def __call__(self, digest: str, done: int, total: int) -> None:
        for cb in self.callbacks:
            try:
                cb(digest, done, total)
            except Exception:  # a broken display must not break a pull
                log.exception("progress callback failed")


class ImageService:
    """The runtime's image store: one per data dir, safe beside the `skube image` CLI."""

    def __init__(self, data_dir: Path, *, insecure_registries: Iterable[str] = ("127.0.0.1", "localhost"),
                 gc_threshold_bytes: int | None = None, gc_high_percent: float | None = None,
                 gc_low_percent: float | None = None, rootfs_mode: str = "auto",
                 client: RegistryClient | None = None):
        self.data_dir = Path(data_dir)
        self.store = ContentStore(self.data_dir / "images")
        self.client = client or RegistryClient(insecure_registries)
        self.gc_threshold_bytes = gc_threshold_bytes
        self.gc_high_percent, self.gc_low_percent = gc_high_percent, gc_low_percent
        if rootfs_mode not in ("auto", "overlay", "copy"):
            raise ValueError("rootfs_mode must be auto, overlay or copy")
        self.rootfs_mode = rootfs_mode
        self._overlay: bool | None = None
        self._pulls: dict[str, tuple[asyncio.Task, _Hub]] = {}

    async def close(self) -> None:
        await self.client.close()
        self.store.close()

    # ---------------------------------------------------------------- lookups
    def get(self, image: str) -> ImageRecord | None:
        try:
            return self.store.get(str(parse(image)))
        except InvalidReference:
            return None

    def list(self) -> list[ImageRecord]:
        return self.store.records()

    # ---------------------------------------------------------------- pull
    async def pull(self, image: str, *, credentials: list[dict] | None = None, policy: str = "IfNotPresent",
                   progress: Progress | None = None) -> ImageRecord:
        try:
            ref = parse(image)
        except InvalidReference as e:
            raise ImagePullError("InvalidImageName", str(e), "invalid") from e
        name = str(ref)
        if policy not in ("Always", "IfNotPresent", "Never"):
            raise ValueError(f"unknown imagePullPolicy {policy!r}")
        if policy != "Always":
            rec = self.store.get(name)
            if rec is not None:
                return rec
            if policy == "Never":
                raise ImagePullError("ErrImageNeverPull", f'Container image "{image}" is not present with pull '
                                     'policy of Never', "not present")
        inflight = self._pulls.get(name)
        if inflight is not None:
            if progress:
                inflight[1].callbacks.append(progress)
            return await asyncio.shield(inflight[0])
        hub = _Hub(progress)
        task = asyncio.ensure_future(self._pull(ref, parse_docker_configs(credentials), hub, policy))
        self._pulls[name] = (task, hub)
        task.add_done_callback(lambda _: self._pulls.pop(name, None))
        rec = await asyncio.shield(task)
        self._maybe_gc(protect={name})
        return rec

    async def _pull(self, ref: Reference, creds: dict, hub: _Hub, policy: str) -> ImageRecord:
        name = str(ref)
        try:
            async with self.store.content_lock():
                body, media, top = await self.client.get_manifest(ref, creds=creds)
                cached = self.store.get(name)
                if cached is not None and cached.digest == top and all(map(self.store.has_snapshot, cached.layers)):
                    self.store.touch(name)
                    return self.store.get(name)
                extra = []
                if media in INDEX_TYPES:
                    self.store.put_blob_bytes(body, top)
                    extra.append(top)
                    chosen = select_platform(orjson.loads(body).get("manifests") or [])
                    body, media, _ = await self.client.get_manifest(ref, chosen["digest"], creds=creds)
                if media not in MANIFEST_TYPES:
                    raise ImagePullError("ErrImagePull", f"unsupported manifest type {media!r}", "invalid")

                async def fetch(desc: dict) -> Path:
                    return await self._fetch_blob(ref, desc, creds, hub)

                return (await self._install([name], top, body, fetch, hub, extra))[0]
        except ImagePullError:
            raise
        except RegistryError as e:
            cause = {"unauthorized": "unauthorized", "not_found": "not found"}.get(e.code, e.code.replace("_", " "))
            raise ImagePullError("ErrImagePull", f'failed to pull image "{ref}": {e}', cause) from e
        except (DigestMismatch, LayerError) as e:
            cause = "digest mismatch" if "mismatch" in str(e) else "invalid"
            raise ImagePullError("ErrImagePull", f'failed to pull image "{ref}": {e}', cause) from e
        except (KeyError, ValueError, TypeError) as e:
            raise ImagePullError("ErrImagePull", f'failed to pull image "{ref}": malformed manifest or config: {e}',
                                 "invalid") from e

    async def _fetch_blob(self, ref: Reference, desc: dict, creds: dict, hub: _Hub) -> Path:
        digest = desc["digest"]
        path = self.store.blob_path(digest)
        if path.exists():
            return path

        async def make() -> Path:
            if not path.exists():
                await self._download(ref, desc, creds, hub)
            return path
        return await self.store.single_flight("blob-" + digest, make)

    async def _download(self, ref: Reference, desc: dict, creds: dict, hub: _Hub) -> None:
        digest, total = desc["digest"], int(desc.get("size") or 0)
        tmp = self.store.ingest_path(".blob")
        h, done, attempt = hashlib.sha256(), 0, 0
        try:
            with open(tmp, "wb") as f:
                while True:
                    try:
                        async with self.client.open_blob(ref, digest, offset=done, creds=creds) as r:
                            if done and r.status != 206:
                                f.seek(0)
                                f.truncate()
                                h, done = hashlib.sha256(), 0
                            while chunk := await r.content.read(1 << 20):
                                h.update(chunk)
                                f.write(chunk)
                                done += len(chunk)
                                if total and done > total:
                                    raise DigestMismatch(f"blob {digest} is larger than its descriptor size {total}")
                                hub(digest, done, total)
                        break
                    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, asyncio.TimeoutError) as e:
                        attempt += 1
                        if attempt > self.client.retries:
                            raise RegistryError(f"downloading {digest}: {e}", code="network") from e
                        await asyncio.sleep(0.1 * 2 ** attempt)
            got = "sha256:" + h.hexdigest()
            if got != digest or (total and done != total):
                raise DigestMismatch(f"digest mismatch for blob {digest}: got {got} ({done} bytes)")
            self.store.commit_blob(tmp, digest, done)
        finally:
            tmp.unlink(missing_ok=True)

    async def _install(self, names: list[str], top: str, manifest_body: bytes,
                       fetch: Callable[[dict], Awaitable[Path]], hub: _Hub, extra_blobs: list[str]) -> list[ImageRecord]:
        """Store manifest and config, unpack missing layers, and record the image under `names`."""
        manifest = orjson.loads(manifest_body)
        manifest_digest = self.store.put_blob_bytes(manifest_body)
        cfg_desc = manifest["config"]
        cfg_doc = orjson.loads((await fetch(cfg_desc)).read_bytes())
        layers = manifest.get("layers") or []
        diff_ids = (cfg_doc.get("rootfs") or {}).get("diff_ids") or []
        if len(diff_ids) != len(layers):
            raise ImagePullError("ErrImagePull", f"image config lists {len(diff_ids)} layers, manifest {len(layers)}",
                                 "invalid")
        chains = chain_ids(diff_ids)
        for desc, chain in zip(layers, chains):
            size = int(desc.get("size") or 0)
            hub(desc["digest"], size if self.store.has_snapshot(chain) else 0, size)
        sem = asyncio.Semaphore(LAYER_DOWNLOADS)

        async def layer(i: int) -> None:
            chain = chains[i]
            if self.store.has_snapshot(chain):
                return

            async def make() -> None:
                if self.store.has_snapshot(chain):
                    return
                async with sem:
                    blob = await fetch(layers[i])
                tmp = self.store.ingest_path(".snap")
                try:
                    diff, size = await asyncio.to_thread(unpack_layer, blob, tmp / "fs",
                                                         media_type=layers[i].get("mediaType", ""),
                                                         diff_id=diff_ids[i])
                    self.store.commit_snapshot(tmp, chain, diff, size)
                finally:
                    if tmp.exists():
                        await asyncio.to_thread(shutil.rmtree, tmp, True)
            await self.store.single_flight("snap-" + chain, make)

        results = await asyncio.gather(*(layer(i) for i in range(len(layers))), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        blobs = [*extra_blobs, manifest_digest, cfg_desc["digest"],
                 *(d["digest"] for d in layers if self.store.has_blob(d["digest"]))]
        now = time.time()
        size = int(cfg_desc.get("size") or 0) + sum(int(d.get("size") or 0) for d in layers)
        records = []
        for name in names:
            rec = ImageRecord(name=name, digest=top, config=cfg_doc.get("config") or {}, size=size, layers=chains,
                              last_used=now, manifest_digest=manifest_digest, config_digest=cfg_desc["digest"],
                              blobs=blobs, created=now)
            self.store.put_image(rec)
            records.append(rec)
        return records

    # ---------------------------------------------------------------- import
    async def import_archive(self, path: Path, *, name: str | None = None) -> list[ImageRecord]:
        """Import a docker-archive or OCI-layout tarball (optionally gzipped); keeps its tags.

        Untagged images (or OCI refs that are only a tag) are named after `name` or the file's stem
        under `localhost/`."""
        path = Path(path)
        stem = re.sub(r"[^a-z0-9._-]+", "-", path.name.split(".")[0].lower()).strip("-._") or "image"
        default_repo = name or f"localhost/{stem}"
        try:
            tf = await asyncio.to_thread(archive_mod.open_archive, path)
        except archive_mod.ArchiveError as e:
            raise ValueError(f"cannot import {path}: {e}") from e
        tar_lock = asyncio.Lock()
        hub = _Hub(None)
        try:
            images = await asyncio.to_thread(archive_mod.read_archive, tf, default_repo=default_repo,
                                             select=select_platform)
            out: list[ImageRecord] = []
            async with self.store.content_lock():
                for img in images:
                    async def fetch(desc: dict, img=img) -> Path:
                        digest = desc["digest"]
                        if self.store.has_blob(digest):
                            return self.store.blob_path(digest)
                        async with tar_lock:
                            await asyncio.to_thread(self._copy_member, tf, img.members[digest], digest)
                        return self.store.blob_path(digest)
                    names = img.names or [f"{default_repo}@{img.top_digest}"]
                    extra = []
                    if img.top_digest in img.members and img.top_digest != "sha256:" + hashlib.sha256(img.manifest).hexdigest():
                        await fetch({"digest": img.top_digest})
                        extra.append(img.top_digest)
                    out += await self._install(names, img.top_digest, img.manifest, fetch, hub, extra)
            return out
        except (archive_mod.ArchiveError, DigestMismatch, LayerError, KeyError, ValueError) as e:
            raise ValueError(f"cannot import {path}: {e}") from e
        finally:
            tf.close()

    def _copy_member(self, tf, member: str, digest: str) -> None:
        src = tf.extractfile(member)
        tmp = self.store.ingest_path(".blob")
        h, n = hashlib.sha256(), 0
        try:
            with open(tmp, "wb") as out:
                while chunk := src.read(1 << 20):
                    h.update(chunk)
                    out.write(chunk)
                    n += len(chunk)
            if "sha256:" + h.hexdigest() != digest:
                raise DigestMismatch(f"archive member {member} does not match {digest}")
            self.store.commit_blob(tmp, digest, n)
        finally:
            tmp.unlink(missing_ok=True)

    # ---------------------------------------------------------------- remove / gc
    async def remove(self, image: str) -> None:
        """Untag an image and delete content nothing else uses (mounted layers stay until released)."""
        names = self._names_for(image)
        if not names:
            raise ImageNotFoundError(image)
        for n in names:
            self.store.delete_image(n)
        async with self.store.lock("gc.lock", fcntl.LOCK_EX):
            await asyncio.to_thread(self.store.prune)

    def _names_for(self, image: str) -> list[str]:
        rec = self.get(image)
        if rec is not None:
            return [rec.name]
        key = image if image.startswith("sha256:") else f"sha256:{image}"
        if re.fullmatch(r"sha256:[0-9a-f]{6,64}", key):
            return [r.name for r in self.store.records() if r.config_digest.startswith(key)]
        return []

    @property
    def gc_policy(self) -> GCPolicy:
        return GCPolicy(threshold_bytes=self.gc_threshold_bytes, high_percent=self.gc_high_percent,
                        low_percent=self.gc_low_percent)

    def _maybe_gc(self, protect: set[str] = frozenset()) -> list[str]:
        if not self.gc_policy.enabled:
            return []
        with self.store.try_exclusive() as locked:
            if not locked:  # pulls in flight; a later pull will collect
                return []
            return collect(self.store, protect=set(protect) | set(self._pulls), policy=self.gc_policy)

    async def gc(self) -> list[str]:
        """Collect now (waits for pulls in flight)."""
        if not self.gc_policy.enabled:
            return []
        async with self.store.lock("gc.lock", fcntl.LOCK_EX):
            return collect(self.store, protect=set(self._pulls), policy=self.gc_policy)

    # ---------------------------------------------------------------- rootfs
    def _use_overlay(self) -> bool:
        if self.rootfs_mode != "auto":
            return self.rootfs_mode == "overlay"
        if self._overlay is None:
            self._overlay = overlay_supported(self.store.root / "ingest")
        return self._overlay

    async def prepare_rootfs(self, record: ImageRecord, container_dir: Path) -> Path:
        """Give a container its own writable root filesystem over the image's read-only snapshots."""
        container_dir = Path(container_dir).resolve()
        rootfs = container_dir / "rootfs"
        marker = container_dir / MARKER
        if marker.exists() and (os.path.ismount(rootfs) or orjson.loads(marker.read_bytes())["mode"] == "copy"):
            return rootfs  # prepared before (e.g. re-adopted after a restart)
        container_dir.mkdir(parents=True, exist_ok=True)
        async with self.store.content_lock():
            missing = [c for c in record.layers if not self.store.has_snapshot(c)]
            if missing:
                raise ImagePullError("ErrImagePull", f"image {record.name} is missing layers {missing}; pull it again",
                                     "not present")
            mode = "overlay" if self._use_overlay() else "copy"
            self.store.add_mount(container_dir, record.name, record.layers, mode)
            try:
                rootfs.mkdir(exist_ok=True)
                lowers = [self.store.snapshot_fs(c) for c in record.layers]
                if mode == "overlay":
                    if not lowers:
                        empty = self.store.root / "empty"
                        empty.mkdir(exist_ok=True)
                        lowers = [empty]
                    for sub in ("upper", "work"):
                        (container_dir / sub).mkdir(exist_ok=True)
                    try:
                        mount_overlay(lowers[::-1], container_dir / "upper", container_dir / "work", rootfs)
                    except OSError as e:
                        if self.rootfs_mode == "overlay":
                            raise
                        log.warning("overlay mount failed (%s); copying the rootfs instead", e)
                        mode = "copy"
                        self.store.add_mount(container_dir, record.name, record.layers, mode)
                if mode == "copy":
                    await asyncio.to_thread(copy_layers, lowers, rootfs)
                marker.write_bytes(orjson.dumps({"mode": mode, "image": record.name, "layers": record.layers}))
            except BaseException:
                await self.release_rootfs(container_dir)
                raise
        self.store.touch(record.name)
        return rootfs

    async def release_rootfs(self, container_dir: Path) -> None:
        """Unmount and delete the container's rootfs and writable layer; idempotent."""
        container_dir = Path(container_dir).resolve()
        rootfs = container_dir / "rootfs"
        if os.path.ismount(rootfs):
            unmount(rootfs)

        def clean() -> None:
            for sub in ("rootfs", "upper", "work"):
                p = container_dir / sub
                if p.exists() and not os.path.ismount(p):
                    shutil.rmtree(p, ignore_errors=True)
            (container_dir / MARKER).unlink(missing_ok=True)
        await asyncio.to_thread(clean)
        self.store.remove_mount(container_dir)
