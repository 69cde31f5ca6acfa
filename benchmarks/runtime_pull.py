"""Image pull throughput from a local registry (Debian's docker-registry on 127.0.0.1), beside a
plain HTTP GET of the same blob bytes (the physical limit on this machine).

Figures: raw_http_MBps (aiohttp GET, bytes discarded), fetch_MBps (skube's blob download into the
content store, sha256-verified while streaming), pull_MBps (a full `ImageService.pull` of a fresh
store: manifest, config, download, verify, unpack into a snapshot). One JSON line at the end.

    python benchmarks/runtime_pull.py [--mb 128] [--runs 3]
"""
from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

from skube.runtime.images import ImageService, RegistryClient, parse
from skube.runtime.images.registry import OCI_MANIFEST


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_registry(root: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cfg = root / "config.yml"
    cfg.write_text(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n"
                   f"    rootdirectory: {root / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: {uuid.uuid4().hex}\n")
    proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("docker-registry did not start")
            time.sleep(0.02)


def make_layer(mb: int) -> tuple[bytes, bytes]:
    """A tar of 8 MiB files of random bytes (incompressible), gzip level 1: (blob, tar)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for i in range(max(1, mb // 8)):
            data = os.urandom(8 << 20)
            ti = tarfile.TarInfo(f"data/file{i}")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    tar = buf.getvalue()
    return gzip.compress(tar, compresslevel=1), tar


def sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


async def main(args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="skube-bench-pull-"))
    proc, host = start_registry(tmp)
    try:
        blob, tar = make_layer(args.mb)
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                             "rootfs": {"type": "layers", "diff_ids": [sha(tar)]}}).encode()
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": sha(config), "size": len(config)},
                               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                           "digest": sha(blob), "size": len(blob)}]}).encode()
        ref = parse(f"{host}/bench/big:v1")
        client = RegistryClient()
        await client.push_blob(ref, blob)
        await client.push_blob(ref, config)
        await client.push_manifest(ref, manifest, OCI_MANIFEST)
        await client.close()
        del tar
        mb = len(blob) / 1e6
        url = f"http://{host}/v2/{ref.repository}/blobs/{sha(blob)}"
        raw, fetch, pull = [], [], []
        async with aiohttp.ClientSession(auto_decompress=False, read_bufsize=1 << 20) as s:
            for _ in range(args.runs):
                t = time.perf_counter()
                async with s.get(url) as r:
                    while await r.content.read(1 << 20):
                        pass
                raw.append(mb / (time.perf_counter() - t))
        for i in range(args.runs):
            data = tmp / f"store{i}"
            svc = ImageService(data)
            try:
                from skube.runtime.images.service import _Hub
                t = time.perf_counter()
                await svc._fetch_blob(ref, {"digest": sha(blob), "size": len(blob)}, {}, _Hub(None))
                fetch.append(mb / (time.perf_counter() - t))
            finally:
                await svc.close()
            shutil.rmtree(data)
            svc = ImageService(data)
            try:
                t = time.perf_counter()
                await svc.pull(str(ref))
                pull.append(mb / (time.perf_counter() - t))
            finally:
                await svc.close()
            shutil.rmtree(data)
        return {"benchmark": "runtime_pull", "blob_MB": round(mb, 1), "runs": args.runs,
                "raw_http_MBps": round(max(raw), 1), "fetch_MBps": round(max(fetch), 1),
                "pull_MBps": round(max(pull), 1),
                "fetch_vs_raw": round(max(fetch) / max(raw), 2)}
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=int, default=128, help="layer size in MB")
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    try:
        import uvloop
        result = uvloop.run(main(a))
    except ImportError:
        result = asyncio.run(main(a))
    print(json.dumps(result))
    sys.stdout.flush()
