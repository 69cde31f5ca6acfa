"""Real registries for the image tests: Debian's docker-registry (CNCF distribution) on loopback,
anonymous, htpasswd basic auth, and token auth backed by a small token server of our own; and
real images built here from Debian's busybox-static, pushed with skube's own registry client."""
from __future__ import annotations

import asyncio
import base64
import datetime
import gzip
import hashlib
import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import zstandard

from skube.runtime.images.reference import parse
from skube.runtime.images.registry import OCI_INDEX, OCI_MANIFEST, RegistryClient

REGISTRY_BIN = "/usr/bin/docker-registry"
BUSYBOX = "/bin/busybox"
USER, PASSWORD = "alice", "s3cret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def docker_config(host: str, user: str = USER, password: str = PASSWORD) -> dict:
    """A decoded `.dockerconfigjson`."""
    return {"auths": {host: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}}}


def pull_secret(host: str, user: str = USER, password: str = PASSWORD) -> dict:
    """A kubernetes.io/dockerconfigjson Secret object."""
    raw = json.dumps(docker_config(host, user, password)).encode()
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "regcred"}, "data": {".dockerconfigjson": base64.b64encode(raw).decode()}}


# ---------------------------------------------------------------- image building

def _add(tf: tarfile.TarFile, name: str, *, data: bytes | None = None, kind=tarfile.REGTYPE, mode=0o644,
         link: str = "", uid=0, gid=0, dev=(0, 0)) -> None:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = kind, mode, uid, gid, 1_700_000_000
    ti.linkname = link
    ti.devmajor, ti.devminor = dev
    if data is not None:
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    else:
        tf.addfile(ti)


def make_tar(build) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        build(tf)
    return buf.getvalue()


def busybox_tar() -> bytes:
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()

    def build(tf):
        for d, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("root", 0o700)):
            _add(tf, d, kind=tarfile.DIRTYPE, mode=mode)
        _add(tf, "bin/busybox", data=Path(BUSYBOX).read_bytes(), mode=0o755)
        for a in applets:
            if a != "busybox":
                _add(tf, f"bin/{a}", kind=tarfile.SYMTYPE, link="busybox", mode=0o777)
        _add(tf, "etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
        _add(tf, "etc/group", data=b"root:x:0:\nnogroup:x:65534:\n")
    return make_tar(build)


def extras_tar() -> bytes:
    def build(tf):
        _add(tf, "etc/a.txt", data=b"a\n")
        _add(tf, "etc/b.txt", data=b"b\n", uid=1000, gid=1000, mode=0o640)
        _add(tf, "etc/b-link", kind=tarfile.LNKTYPE, link="etc/b.txt")
        _add(tf, "data", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tf, "data/old1", data=b"old1\n")
        _add(tf, "data/sub/old2", data=b"old2\n")
        _add(tf, "run/fifo", kind=tarfile.FIFOTYPE, mode=0o600)
        _add(tf, "dev/null2", kind=tarfile.CHRTYPE, mode=0o666, dev=(1, 3))
        _add(tf, "usr/bin/setuid-thing", data=b"#!/bin/sh\n", mode=0o4755)
    return make_tar(build)


def whiteout_tar() -> bytes:
    def build(tf):
        _add(tf, "etc/.wh.a.txt", data=b"")
        _add(tf, "data/.wh..wh..opq", data=b"")
        _add(tf, "data/new", data=b"new\n")
        _add(tf, "etc/c.txt", data=b"c\n")
    return make_tar(build)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class BuiltImage:
    """An image as blobs: config, layers (compressed as pushed) and the OCI manifest."""
    config: bytes
    layers: list[tuple[bytes, str]]       # (blob, mediaType)
    diff_tars: list[bytes]                # the uncompressed layer tars
    manifest: bytes = b""
    extra_blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return sha(self.manifest)

    @property
    def size(self) -> int:
        return sum(len(b) for b, _ in self.layers)


def build_image(tars: list[bytes], compress: list[str], *, arch: str = "amd64", cmd=("sh",)) -> BuiltImage:
    layers = []
    for t, c in zip(tars, compress):
        if c == "gzip":
            layers.append((gzip.compress(t, compresslevel=1, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"))
        elif c == "zstd":
            layers.append((zstandard.ZstdCompressor().compress(t), "application/vnd.oci.image.layer.v1.tar+zstd"))
        else:
            layers.append((t, "application/vnd.oci.image.layer.v1.tar"))
    config = json.dumps({
        "architecture": arch, "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/bin:/usr/bin"], "Cmd": list(cmd), "WorkingDir": "/", "User": "0"},
        "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in tars]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": m, "digest": sha(b), "size": len(b)} for b, m in layers]}).encode()
    return BuiltImage(config, layers, tars, manifest)


@dataclass
class Images:
    busybox: BuiltImage
    busybox_arm64: BuiltImage
    index: bytes
    layered: BuiltImage

    @property
    def index_digest(self) -> str:
        return sha(self.index)


@pytest.fixture(scope="session")
def images() -> Images:
    base = busybox_tar()
    busybox = build_image([base], ["gzip"])
    arm = build_image([base], ["gzip"], arch="arm64", cmd=("echo", "arm64"))
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": arm.digest, "size": len(arm.manifest),
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": OCI_MANIFEST, "digest": busybox.digest, "size": len(busybox.manifest),
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    layered = build_image([base, extras_tar(), whiteout_tar()], ["gzip", "zstd", "none"], cmd=("ls", "/etc"))
    return Images(busybox, arm, index, layered)


async def push_image(client: RegistryClient, ref: str, img: BuiltImage, creds=None) -> None:
    r = parse(ref)
    for blob, _ in img.layers:
        await client.push_blob(r, blob, creds=creds)
    await client.push_blob(r, img.config, creds=creds)
    await client.push_manifest(r, img.manifest, OCI_MANIFEST, creds=creds)


async def push_all(client: RegistryClient, host: str, images: Images, creds=None) -> None:
    await push_image(client, f"{host}/library/busybox:multiarch-amd64", images.busybox, creds)
    await push_image(client, f"{host}/library/busybox:arm64", images.busybox_arm64, creds)
    await client.push_manifest(parse(f"{host}/library/busybox:latest"), images.index, OCI_INDEX, creds=creds)
    await push_image(client, f"{host}/test/layered:v1", images.layered, creds)


# ---------------------------------------------------------------- registries

def _self_signed(tmp: Path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "skube-test-token-issuer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (tmp / "token.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


class TokenServer:
    """Docker token auth (https://distribution.github.io/distribution/spec/auth/token/) on loopback."""

    def __init__(self, tmp: Path, service: str, issuer: str):
        from cryptography.hazmat.primitives import serialization
        self.key, cert = _self_signed(tmp)
        self.x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.service, self.issuer = service, issuer
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.requests += 1
                q = parse_qs(urlparse(self.path).query)
                auth = self.headers.get("Authorization", "")
                user = None
                if auth.startswith("Basic "):
                    u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                    if (u, p) != (USER, PASSWORD):
                        self.send_response(401)
                        self.end_headers()
                        return
                    user = u
                access = []
                if user:  # anonymous users get a token with no access at all
                    for scope in q.get("scope", []):
                        typ, _, rest = scope.partition(":")
                        name, _, actions = rest.rpartition(":")
                        access.append({"type": typ, "name": name, "actions": actions.split(",")})
                body = json.dumps({"token": outer.sign(user or "", access), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def sign(self, sub: str, access: list) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        def b64(d: bytes) -> str:
            return base64.urlsafe_b64encode(d).rstrip(b"=").decode()
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": self.issuer, "sub": sub, "aud": self.service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        sig = self.key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing}.{b64(sig)}"

    def stop(self):
        self.httpd.shutdown()


@dataclass
class Registry:
    host: str
    proc: subprocess.Popen
    root: Path


def start_registry(tmp: Path, name: str, auth: str = "") -> Registry:
    port = free_port()
    root = tmp / name
    root.mkdir()
    cfg = root / "config.yml"
    cfg.write_text(f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root / 'data'}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: {uuid.uuid4().hex}
{auth}
""")
    log = open(root / "registry.log", "wb")
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:  # readiness: the port accepts connections
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"registry {name} did not start: {(root / 'registry.log').read_text()}")
            time.sleep(0.02)
    return Registry(f"127.0.0.1:{port}", proc, root)


@dataclass
class Registries:
    anon: Registry
    basic: Registry
    token: Registry
    token_server: TokenServer
    images: Images


@pytest.fixture(scope="session")
def registries(tmp_path_factory, images) -> Registries:
    if not (os.path.exists(REGISTRY_BIN) and os.path.exists(BUSYBOX) and shutil.which("htpasswd")):
        pytest.fail("docker-registry, busybox-static and apache2-utils are required (make setup installs them)")
    tmp = tmp_path_factory.mktemp("registries")
    htpasswd = tmp / "htpasswd"
    subprocess.run(["htpasswd", "-Bbc", str(htpasswd), USER, PASSWORD], check=True, capture_output=True)
    ts = TokenServer(tmp, service="skube-test-registry", issuer="skube-test-issuer")
    anon = start_registry(tmp, "anon")
    basic = start_registry(tmp, "basic", f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {htpasswd}\n")
    token = start_registry(tmp, "token", f"""auth:
  token:
    realm: http://127.0.0.1:{ts.port}/token
    service: skube-test-registry
    issuer: skube-test-issuer
    rootcertbundle: {tmp / 'token.crt'}
""")
    regs = Registries(anon, basic, token, ts, images)

    async def push():
        client = RegistryClient()
        try:
            await push_all(client, anon.host, images)
            await push_all(client, basic.host, images, {basic.host: (USER, PASSWORD)})
            await push_all(client, token.host, images, {token.host: (USER, PASSWORD)})
        finally:
            await client.close()
    try:
        asyncio.run(push())
        yield regs
    finally:
        for r in (anon, basic, token):
            r.proc.terminate()
        for r in (anon, basic, token):
            try:
                r.proc.wait(10)
            except subprocess.TimeoutExpired:
                r.proc.kill()
        ts.stop()


def run(coro):
    """Run a coroutine to completion in a fresh event loop (tests are plain functions)."""
    return asyncio.run(coro)
