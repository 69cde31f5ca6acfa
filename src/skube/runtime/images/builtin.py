"""The image `skube up` makes available offline: busybox built from the host's
static busybox binary (Debian `busybox-static`), imported into the cluster's
image store as ``skube.local/busybox:host`` (a non-latest tag, so the default
imagePullPolicy IfNotPresent finds it without any registry)."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

BUSYBOX_IMAGE = "skube.local/busybox:host"


def _sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def _add(tf: tarfile.TarFile, name: str, *, data: bytes = b"", kind=tarfile.REGTYPE, mode=0o644,
         link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname, info.mtime = kind, mode, link, 0
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tf.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def busybox_layer(busybox: str) -> bytes:
    """An uncompressed layer: /bin/busybox, one symlink per applet, minimal /etc."""
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("root", 0o700), ("www", 0o755)):
            _add(tf, d, kind=tarfile.DIRTYPE, mode=mode)
        _add(tf, "bin/busybox", data=Path(busybox).read_bytes(), mode=0o755)
        for a in applets:
            if a != "busybox":
                _add(tf, f"bin/{a}", kind=tarfile.SYMTYPE, link="busybox", mode=0o777)
        _add(tf, "etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
        _add(tf, "etc/group", data=b"root:x:0:\nnogroup:x:65534:\n")
        _add(tf, "www/index.html", data=b"hello from skube\n")
    return buf.getvalue()


def write_oci_layout(out: Path, layer: bytes, ref: str, arch: str) -> None:
    """An OCI-layout tarball holding one single-layer image tagged ``ref``."""
    gz = gzip.compress(layer, compresslevel=6, mtime=0)
    config = json.dumps({
        "architecture": arch, "os": "linux", "created": "1970-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [_sha(layer)]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _sha(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": _sha(gz),
                    "size": len(gz)}]}).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _sha(manifest),
        "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": ref}}]}).encode()
    with tarfile.open(out, "w") as tf:
        for name, data in (("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'), ("index.json", index)):
            _add(tf, name, data=data)
        for blob in (config, manifest, gz):
            _add(tf, "blobs/sha256/" + _sha(blob).split(":", 1)[1], data=blob)


async def ensure_busybox(service, arch: str) -> str | None:
    """Import the host-busybox image unless the store has it; its name, or None
    when the host has no busybox binary."""
    if service.get(BUSYBOX_IMAGE) is not None:
        return BUSYBOX_IMAGE
    busybox = shutil.which("busybox")
    if busybox is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "busybox.tar"
        write_oci_layout(path, busybox_layer(busybox), BUSYBOX_IMAGE, arch)
        await service.import_archive(path)
    return BUSYBOX_IMAGE
