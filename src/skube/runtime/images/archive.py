"""Read image tarballs: docker-archive (`docker save`) and OCI image layout, possibly gzipped.

`read_archive` yields, per image in the archive, the names it is tagged with, the manifest to
install, and a way to copy each referenced blob out of the tarball.
"""
from __future__ import annotations

import hashlib
import posixpath
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import orjson

from .reference import InvalidReference, parse
from .registry import DOCKER_MANIFEST, INDEX_TYPES, OCI_MANIFEST

LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
CONFIG = "application/vnd.oci.image.config.v1+json"


class ArchiveError(Exception):
    pass


@dataclass
class ArchivedImage:
    names: list[str]
    manifest: bytes                 # an OCI/Docker image manifest (blobs are in the archive)
    top_digest: str                 # digest the names resolve to (index or manifest)
    members: dict[str, str]         # blob digest -> member name in the tar


def _member_digest(tf: tarfile.TarFile, name: str) -> tuple[str, int, bytes]:
    f = tf.extractfile(name)
    if f is None:
        raise ArchiveError(f"{name} is not a file in the archive")
    h, n, head = hashlib.sha256(), 0, b""
    while chunk := f.read(1 << 20):
        if not head:
            head = chunk[:4]
        h.update(chunk)
        n += len(chunk)
    return "sha256:" + h.hexdigest(), n, head


def _layer_type(head: bytes) -> str:
    if head[:2] == b"\x1f\x8b":
        return LAYER_GZIP
    if head == b"\x28\xb5\x2f\xfd":
        return LAYER_ZSTD
    return LAYER_TAR


def _read(tf: tarfile.TarFile, name: str) -> bytes:
    f = tf.extractfile(name)
    if f is None:
        raise ArchiveError(f"{name} is not a file in the archive")
    return f.read()


def read_archive(tf: tarfile.TarFile, *, default_repo: str, select: Callable[[list[dict]], dict]) -> list[ArchivedImage]:
    names = set(tf.getnames())
    norm = {posixpath.normpath(n): n for n in names}
    if "manifest.json" in norm:
        return _docker_archive(tf, norm)
    if "index.json" in norm:
        return _oci_layout(tf, norm, default_repo, select)
    raise ArchiveError("neither a docker-archive (manifest.json) nor an OCI layout (index.json)")


def _docker_archive(tf: tarfile.TarFile, norm: dict[str, str]) -> list[ArchivedImage]:
    out = []
    for entry in orjson.loads(_read(tf, norm["manifest.json"])):
        cfg_name = norm.get(posixpath.normpath(entry["Config"]))
        if cfg_name is None:
            raise ArchiveError(f"config {entry['Config']} missing from the archive")
        cfg = _read(tf, cfg_name)
        cfg_digest = "sha256:" + hashlib.sha256(cfg).hexdigest()
        members = {cfg_digest: cfg_name}
        layers = []
        for layer in entry.get("Layers") or []:
            lname = norm.get(posixpath.normpath(layer))
            if lname is None:
                raise ArchiveError(f"layer {layer} missing from the archive")
            digest, size, head = _member_digest(tf, lname)
            members[digest] = lname
            layers.append({"mediaType": _layer_type(head), "digest": digest, "size": size})
        manifest = orjson.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                 "config": {"mediaType": CONFIG, "digest": cfg_digest, "size": len(cfg)},
                                 "layers": layers})
        tags = []
        for t in entry.get("RepoTags") or []:
            try:
                tags.append(str(parse(t)))
            except InvalidReference:
                continue
        out.append(ArchivedImage(tags, manifest, "sha256:" + hashlib.sha256(manifest).hexdigest(), members))
    return out


def _oci_layout(tf, norm, default_repo, select) -> list[ArchivedImage]:
    def blob_member(digest: str) -> str:
        algo, _, hexpart = digest.partition(":")
        name = norm.get(f"blobs/{algo}/{hexpart}")
        if name is None:
            raise ArchiveError(f"blob {digest} missing from the OCI layout")
        return name

    def read_blob(digest: str) -> bytes:
        data = _read(tf, blob_member(digest))
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise ArchiveError(f"blob {digest} in the archive does not match its digest")
        return data

    index = orjson.loads(_read(tf, norm["index.json"]))
    out = []
    for desc in index.get("manifests") or []:
        ann = desc.get("annotations") or {}
        ref_name = ann.get("io.containerd.image.name") or ann.get("org.opencontainers.image.ref.name")
        names = []
        if ref_name:
            try:
                names.append(str(parse(ref_name)) if ("/" in ref_name or ":" in ref_name)
                             else str(parse(f"{default_repo}:{ref_name}")))
            except InvalidReference:
                pass
        top = desc["digest"]
        members: dict[str, str] = {}
        body = read_blob(top)
        members[top] = blob_member(top)
        doc = orjson.loads(body)
        media = doc.get("mediaType") or desc.get("mediaType")
        if media in INDEX_TYPES or "manifests" in doc:
            chosen = select(doc.get("manifests") or [])
            body = read_blob(chosen["digest"])
            members[chosen["digest"]] = blob_member(chosen["digest"])
            doc = orjson.loads(body)
        if doc.get("mediaType", OCI_MANIFEST) not in (OCI_MANIFEST, DOCKER_MANIFEST):
            raise ArchiveError(f"unsupported manifest type {doc.get('mediaType')}")
        for d in [doc["config"], *doc.get("layers", [])]:
            members[d["digest"]] = blob_member(d["digest"])
        out.append(ArchivedImage(names, body, top, members))
    return out


def open_archive(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:*")
    except tarfile.TarError as e:
        raise ArchiveError(f"{path}: not a tar archive: {e}") from e
