"""Async client of the OCI distribution (registry v2) API.

Handles the WWW-Authenticate challenge flow (anonymous, Basic, Bearer tokens), credentials from
`kubernetes.io/dockerconfigjson` secrets, insecure (plain-HTTP) registries and retries. Knows
nothing of the local store: it resolves manifests and opens blob streams.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import logging
import re
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator, Iterable
from urllib.parse import urlencode, urljoin

import aiohttp
import orjson

from .reference import DOCKER_HUB, Reference, normalise_registry

log = logging.getLogger(__name__)

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))

RETRY_STATUS = {408, 429, 500, 502, 503, 504}
MAX_MANIFEST = 4 << 20


class RegistryError(Exception):
    """A registry request failed. `code`: unauthorized, not_found, digest_mismatch, network, invalid."""

    def __init__(self, message: str, *, code: str = "error", status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status


# ---------------------------------------------------------------- credentials

def parse_docker_configs(configs: Iterable[dict] | None) -> dict[str, tuple[str, str]]:
    """Registry host -> (username, password) from dockerconfigjson documents or Secret objects.

    Accepts decoded `.dockerconfigjson` content (`{"auths": {...}}`), legacy `.dockercfg` content
    (the auths map itself) and whole `kubernetes.io/dockerconfigjson` / `dockercfg` Secret dicts.
    Earlier entries win, as kubelet tries pull secrets in order.
    """
    out: dict[str, tuple[str, str]] = {}
    for cfg in configs or ():
        if not isinstance(cfg, dict):
            continue
        if "data" in cfg or "stringData" in cfg or cfg.get("kind") == "Secret":
            cfg = _secret_config(cfg)
        auths = cfg.get("auths", cfg) if isinstance(cfg.get("auths"), dict) else cfg
        for key, entry in auths.items():
            if not isinstance(entry, dict):
                continue
            user, pw = entry.get("username"), entry.get("password")
            if (not user or pw is None) and entry.get("auth"):
                try:
                    user, _, pw = base64.b64decode(entry["auth"]).decode().partition(":")
                except Exception:
                    continue
            if user and pw is not None:
                out.setdefault(normalise_registry(key), (user, pw))
    return out


def _secret_config(secret: dict) -> dict:
    for key in (".dockerconfigjson", ".dockercfg"):
        if key in (secret.get("stringData") or {}):
            return orjson.loads(secret["stringData"][key])
        if key in (secret.get("data") or {}):
            return orjson.loads(base64.b64decode(secret["data"][key]))
    return {}


# ---------------------------------------------------------------- insecure registries

class InsecureRegistries:
    """Hosts allowed over plain HTTP: `host`, `host:port`, or CIDR (`127.0.0.0/8`)."""

    def __init__(self, entries: Iterable[str]):
        self.hosts: set[str] = set()
        self.nets: list = []
        for e in entries:
            e = e.strip().lower()
            if "/" in e:
                try:
                    self.nets.append(ipaddress.ip_network(e, strict=False))
                    continue
                except ValueError:
                    pass
            self.hosts.add(e)

    def __contains__(self, host: str) -> bool:
        host = host.lower()
        if host in self.hosts:
            return True
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
        name = name.strip("[]")
        if name in self.hosts:
            return True
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            return False
        if "localhost" in self.hosts and ip.is_loopback:
            return True
        return any(ip in n for n in self.nets)


# ---------------------------------------------------------------- client

def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)\s*=\s*"([^"]*)"', rest)}
    params.update({k.lower(): v for k, v in re.findall(r'(\w+)\s*=\s*([^",\s]+)', rest) if k.lower() not in params})
    return scheme.lower(), params


class RegistryClient:
    """One aiohttp session shared by all pulls; tokens and schemes cached per registry."""

    def __init__(self, insecure_registries: Iterable[str] = ("127.0.0.1", "localhost"), *,
                 retries: int = 3, timeout: float = 30.0, user_agent: str = "skube"):
        self.insecure = InsecureRegistries(insecure_registries)
        self.retries = retries
        self.timeout = timeout
        self.user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._base: dict[str, str] = {}
        self._tokens: dict[tuple, tuple[str, float]] = {}
        self.requests = 0          # HTTP requests sent (tests and benchmarks read it)
        self.blob_fetches = 0      # blob GETs started

    async def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=32, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=self.timeout),
                headers={"User-Agent": self.user_agent}, auto_decompress=False,
                read_bufsize=1 << 20)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- scheme -----------------------------------------------------------
    async def base_url(self, host: str) -> str:
        if host in self._base:
            return self._base[host]
        if host not in self.insecure:
            base = f"https://{host}"
        else:
            # Like dockerd: an insecure registry is tried over HTTPS without verification, then plain HTTP.
            base = f"http://{host}"
            s = await self.session()
            try:
                async with s.get(f"https://{host}/v2/", ssl=False,
                                 timeout=aiohttp.ClientTimeout(total=self.timeout)) as r:
                    await r.read()
                    base = f"https://{host}"
            except aiohttp.ClientConnectorError as e:
                if not isinstance(e, aiohttp.ClientSSLError):
                    raise RegistryError(f"cannot reach registry {host}: {e}", code="network") from e
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
        self._base[host] = base
        return base

    def _ssl(self, host: str):
        return False if host in self.insecure else None

    # -- auth -------------------------------------------------------------
    async def _authorize(self, host: str, challenge: str, scope: str,
                         creds: dict[str, tuple[str, str]]) -> str:
        scheme, params = _parse_challenge(challenge)
        cred = creds.get(normalise_registry(host)) or (creds.get(DOCKER_HUB) if host.endswith("docker.io") else None)
        if scheme == "basic":
            if not cred:
                raise RegistryError(f"unauthorized: {host} requires authentication", code="unauthorized", status=401)
            return "Basic " + base64.b64encode(f"{cred[0]}:{cred[1]}".encode()).decode()
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError(f"unsupported auth challenge from {host}: {challenge}", code="unauthorized", status=401)
        scopes = [scope] if scope else []
        if params.get("scope") and params["scope"] not in scopes:
            scopes.append(params["scope"])
        key = (host, tuple(scopes), cred)
        hit = self._tokens.get(key)
        if hit and hit[1] > time.monotonic():
            return hit[0]
        query = [("service", params["service"])] if "service" in params else []
        query += [("scope", s) for s in scopes]
        url = params["realm"] + ("&" if "?" in params["realm"] else "?") + urlencode(query)
        headers = {}
        if cred:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{cred[0]}:{cred[1]}".encode()).decode()
        s = await self.session()
        self.requests += 1
        try:
            async with s.get(url, headers=headers, ssl=None if url.startswith("https://") else False) as r:
                body = await r.read()
                if r.status in (401, 403):
                    raise RegistryError(f"unauthorized: token server {params['realm']} refused the credentials",
                                        code="unauthorized", status=r.status)
                if r.status != 200:
                    raise RegistryError(f"token server {params['realm']} answered {r.status}", code="network",
                                        status=r.status)
        except aiohttp.ClientError as e:
            raise RegistryError(f"token server {params['realm']}: {e}", code="network") from e
        doc = orjson.loads(body)
        token = doc.get("token") or doc.get("access_token")
        if not token:
            raise RegistryError("token server returned no token", code="unauthorized")
        ttl = max(int(doc.get("expires_in") or 60), 10)
        header = f"Bearer {token}"
        self._tokens[key] = (header, time.monotonic() + ttl - 5)
        return header

    # -- requests ---------------------------------------------------------
    @asynccontextmanager
    async def request(self, method: str, ref: Reference, path: str, *, scope_actions: str = "pull",
                      creds: dict | None = None, headers: dict | None = None, data=None,
                      url: str | None = None, ok=(200,)) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send one API request with auth and retries; yields a response whose status is in `ok`."""
        host = ref.api_host
        creds = creds or {}
        base = await self.base_url(host)
        target = url or f"{base}/v2/{ref.repository}{path}"
        scope = f"repository:{ref.repository}:{scope_actions}"
        s = await self.session()
        auth_key = (host, scope, tuple(sorted(creds.items())))
        attempt, authed = 0, False
        while True:
            h = dict(headers or {})
            if auth_key in self._tokens and self._tokens[auth_key][1] > time.monotonic():
                h["Authorization"] = self._tokens[auth_key][0]
            try:
                self.requests += 1
                resp = await s.request(method, target, headers=h, data=data, ssl=self._ssl(host))
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                attempt += 1
                if attempt > self.retries:
                    raise RegistryError(f"{method} {target}: {e or type(e).__name__}", code="network") from e
                await asyncio.sleep(0.1 * 2 ** attempt)
                continue
            try:
                if resp.status == 401 and not authed and "WWW-Authenticate" in resp.headers:
                    challenge = resp.headers["WWW-Authenticate"]
                    await resp.read()
                    resp.release()
                    header = await self._authorize(host, challenge, scope, creds)
                    self._tokens[auth_key] = (header, time.monotonic() + 50)
                    authed = True
                    continue
                if resp.status in RETRY_STATUS and attempt < self.retries and data is None:
                    attempt += 1
                    resp.release()
                    await asyncio.sleep(0.1 * 2 ** attempt)
                    continue
                if resp.status not in ok:
                    raise await _error_from(resp, f"{method} {ref.name}{path}")
                yield resp
            finally:
                resp.release()
            return

    # -- manifests --------------------------------------------------------
    async def get_manifest(self, ref: Reference, reference: str | None = None, *,
                           creds: dict | None = None) -> tuple[bytes, str, str]:
        """Fetch a manifest or index: (body, media type, digest). Digest-pinned fetches are verified."""
        reference = reference or ref.reference
        async with self.request("GET", ref, f"/manifests/{reference}", creds=creds,
                                headers={"Accept": ACCEPT}) as r:
            if (r.content_length or 0) > MAX_MANIFEST:
                raise RegistryError("manifest too large", code="invalid")
            body = await r.content.read(MAX_MANIFEST + 1)
            media = (r.headers.get("Content-Type") or "").split(";")[0].strip()
            header_digest = r.headers.get("Docker-Content-Digest")
        if len(body) > MAX_MANIFEST:
            raise RegistryError("manifest too large", code="invalid")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        expected = reference if reference.startswith("sha256:") else header_digest
        if expected and expected.startswith("sha256:") and expected != digest:
            raise RegistryError(f"manifest digest mismatch: expected {expected}, got {digest}", code="digest_mismatch")
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise RegistryError(f"manifest of {ref} is not JSON", code="invalid") from e
        media = doc.get("mediaType") or media
        if media in DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
            raise RegistryError(f"{ref}: Docker schema 1 manifests are not supported", code="invalid")
        if not media:
            media = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
        return body, media, digest

    async def head_manifest(self, ref: Reference, *, creds: dict | None = None) -> str | None:
        """The digest the registry has for the reference (None if it does not say)."""
        async with self.request("HEAD", ref, f"/manifests/{ref.reference}", creds=creds,
                                headers={"Accept": ACCEPT}) as r:
            return r.headers.get("Docker-Content-Digest")

    # -- blobs ------------------------------------------------------------
    @asynccontextmanager
    async def open_blob(self, ref: Reference, digest: str, *, offset: int = 0,
                        creds: dict | None = None) -> AsyncIterator[aiohttp.ClientResponse]:
        """Stream a blob (status 206 when the Range from `offset` was honoured)."""
        headers = {"Range": f"bytes={offset}-"} if offset else None
        self.blob_fetches += 1
        async with self.request("GET", ref, f"/blobs/{digest}", creds=creds, headers=headers,
                                ok=(200, 206)) as r:
            yield r

    async def blob_exists(self, ref: Reference, digest: str, *, creds: dict | None = None) -> bool:
        try:
            async with self.request("HEAD", ref, f"/blobs/{digest}", creds=creds, scope_actions="pull,push"):
                return True
        except RegistryError as e:
            if e.code == "not_found":
                return False
            raise

    async def push_blob(self, ref: Reference, data: bytes, *, creds: dict | None = None) -> str:
        """Upload a blob (monolithic POST + PUT); returns its digest. Skips blobs already there."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if await self.blob_exists(ref, digest, creds=creds):
            return digest
        async with self.request("POST", ref, "/blobs/uploads/", creds=creds, scope_actions="pull,push",
                                ok=(202,)) as r:
            location = urljoin(str(r.url), r.headers["Location"])
        location += ("&" if "?" in location else "?") + urlencode({"digest": digest})
        async with self.request("PUT", ref, "", url=location, creds=creds, scope_actions="pull,push", data=data,
                                headers={"Content-Type": "application/octet-stream"}, ok=(201, 204)):
            pass
        return digest

    async def push_manifest(self, ref: Reference, body: bytes, media_type: str, *,
                            creds: dict | None = None) -> str:
        async with self.request("PUT", ref, f"/manifests/{ref.reference}", creds=creds, scope_actions="pull,push",
                                data=body, headers={"Content-Type": media_type}, ok=(201, 204)):
            pass
        return "sha256:" + hashlib.sha256(body).hexdigest()


async def _error_from(resp: aiohttp.ClientResponse, what: str) -> RegistryError:
    try:
        body = await resp.content.read(65536)
        errors = orjson.loads(body).get("errors") or []
        detail = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}" for e in errors)
    except Exception:
        detail = ""
    status = resp.status
    if status in (401, 403):
        code, text = "unauthorized", "pull access denied, repository does not exist or may require authorization"
    elif status == 404:
        code, text = "not_found", "not found"
    else:
        code, text = ("network" if status >= 500 else "error"), f"unexpected status {status}"
    return RegistryError(f"{what}: {text}" + (f": server message: {detail}" if detail else ""), code=code, status=status)
