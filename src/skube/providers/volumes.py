"""Pod volumes on this host, materialised the way the kubelet does it.

``emptyDir`` is a directory (``medium: Memory``: a tmpfs sized by ``sizeLimit``);
``configMap``, ``secret``, ``downwardAPI`` and ``projected`` (with
``serviceAccountToken``) are rendered by :func:`atomic_write`, kubelet's
AtomicWriter: the files live in a timestamped ``..<ts>`` directory, ``..data``
points at it, and each top-level name is a symlink through ``..data``; an update
writes a new directory and renames a fresh ``..data`` over the old one, so
readers in the container see either the old or the new set, never a mix.

:class:`VolumeManager` keeps, per pod, what its volumes were rendered from, so a
changed ConfigMap or Secret (or a token close to expiry) re-renders them while
the pod runs. Where objects come from is the caller's business: a
:class:`Sources` (ConfigMaps, Secrets and TokenRequests through the API).
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import os
import secrets as _secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..runtime.fsgroup import set_volume_ownership

from ..api.quantity import cpu_millis, memory_bytes
from ..runtime.oci import Mount, expand

log = logging.getLogger("skube.providers.volumes")

DEFAULT_MODE = 0o644
DEFAULT_TOKEN_EXPIRATION = 3600
RENDERED = ("configMap", "secret", "downwardAPI", "projected")
# rendered on a tmpfs, never on disk (the kubelet wraps these in a Memory emptyDir)
IN_MEMORY = ("secret", "downwardAPI", "projected")


class VolumeError(Exception):
    """A volume cannot be set up (kubelet: a FailedMount event; the pod stays ContainerCreating)."""


class Sources(Protocol):
    """Where volume and env contents come from (None: the object does not exist)."""

    async def configmap(self, namespace: str, name: str) -> dict | None: ...

    async def secret(self, namespace: str, name: str) -> dict | None: ...

    async def token(self, namespace: str, service_account: str, pod: dict, audience: str | None,
                    expiration: int) -> tuple[str, float]: ...


# ---- object payloads -------------------------------------------------------------------------

def configmap_payload(cm: dict) -> dict[str, bytes]:
    out = {k: (v or "").encode() for k, v in (cm.get("data") or {}).items()}
    for k, v in (cm.get("binaryData") or {}).items():
        out[k] = base64.b64decode(v or "")
    return out


def secret_payload(secret: dict) -> dict[str, bytes]:
    out = {k: base64.b64decode(v or "") for k, v in (secret.get("data") or {}).items()}
    for k, v in (secret.get("stringData") or {}).items():
        out[k] = (v or "").encode()
    return out


# ---- downward API ----------------------------------------------------------------------------

def _format_map(m: dict) -> str:
    """kubelet's fieldpath.FormatMap: sorted ``key="value"`` lines."""
    return "\n".join(f"{k}={json.dumps(v)}" for k, v in sorted((m or {}).items()))


def _subscript(path: str, prefix: str) -> str | None:
    """``metadata.labels['x']`` -> ``x`` (None if ``path`` is not ``prefix[...]``)."""
    if path.startswith(prefix + "[") and path.endswith("]"):
        inner = path[len(prefix) + 1:-1]
        if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
            return inner[1:-1]
    return None


def field_value(pod: dict, path: str, *, pod_ip: str = "", host_ip: str = "",
                volume: bool = False) -> str:
    """The value of a downward-API ``fieldRef.fieldPath`` (env and volumes)."""
    m, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    simple = {
        "metadata.name": m.get("name", ""), "metadata.namespace": m.get("namespace", ""),
        "metadata.uid": m.get("uid", ""), "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName") or spec.get("serviceAccount") or "",
        "status.podIP": pod_ip, "status.podIPs": pod_ip, "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in simple:
        return simple[path]
    if path == "metadata.labels":
        return _format_map(m.get("labels"))
    if path == "metadata.annotations":
        return _format_map(m.get("annotations"))
    for prefix, src in (("metadata.labels", m.get("labels")), ("metadata.annotations", m.get("annotations"))):
        key = _subscript(path, prefix)
        if key is not None:
            return (src or {}).get(key, "")
    raise VolumeError(f"unsupported fieldPath: {path}")


def resource_value(pod: dict, container_name: str, ref: dict, allocatable: dict) -> str:
    """A ``resourceFieldRef`` value: the container's limit (the node's allocatable when
    unset) or request, divided by ``divisor`` and rounded up, as kubelet computes it."""
    res = ref.get("resource", "")
    container = None
    for c in list((pod.get("spec") or {}).get("containers") or []) + \
            list((pod.get("spec") or {}).get("initContainers") or []):
        if c.get("name") == container_name:
            container = c
    if container is None:
        raise VolumeError(f"resourceFieldRef: container {container_name!r} not found")
    kind, _, name = res.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise VolumeError(f"unsupported resourceFieldRef resource: {res}")
    resources = container.get("resources") or {}
    q = (resources.get(kind) or {}).get(name)
    if q is None and kind == "requests":
        q = (resources.get("limits") or {}).get(name)       # requests default to limits
    if q is None:
        q = allocatable.get(name) if kind == "limits" else "0"
    if q is None:
        q = "0"
    divisor = str(ref.get("divisor") or "1")
    if name == "cpu":
        value, div = cpu_millis(str(q)), cpu_millis(divisor)
        return str(math.ceil(value / div) if div else 0)
    value, div = memory_bytes(str(q)), memory_bytes(divisor)
    return str(math.ceil(value / div) if div else 0)


# ---- the atomic writer -----------------------------------------------------------------------

Files = dict   # relative path -> (bytes, mode)


def _current(target: Path) -> Files | None:
    data = target / "..data"
    if not data.is_symlink():
        return None
    root = target / os.readlink(data)
    out: Files = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            st = p.stat()
            out[str(p.relative_to(root))] = (p.read_bytes(), st.st_mode & 0o7777)
    return out


async def _mount_tmpfs(path: Path) -> None:
    """A tmpfs at ``path`` (kept if one is there already)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.path.ismount(path):
        return
    proc = await asyncio.create_subprocess_exec(
        "mount", "-t", "tmpfs", "-o", "nosuid,nodev", "tmpfs", str(path),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise VolumeError(err.decode(errors="replace").strip())


def atomic_write(target: Path, files: Files) -> bool:
    """Make ``target`` hold exactly ``files`` (kubelet's AtomicWriter); True if it changed."""
    target.mkdir(parents=True, exist_ok=True)
    for rel in files:
        parts = Path(rel).parts
        if Path(rel).is_absolute() or ".." in parts or not parts or parts[0].startswith(".."):
            raise VolumeError(f"invalid path {rel!r}")
    if _current(target) == files:
        return False
    data = target / "..data"
    old = os.readlink(data) if data.is_symlink() else None
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + _secrets.token_hex(5)
    new = target / stamp
    new.mkdir(mode=0o755)
    for rel, (content, mode) in files.items():
        p = new / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
        os.chmod(p, mode)
    tmp = target / "..data_tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(stamp, tmp)
    os.rename(tmp, data)
    tops = {Path(rel).parts[0] for rel in files}
    for top in tops:
        link = target / top
        if not link.is_symlink():
            os.symlink(f"..data/{top}", link)
    for entry in target.iterdir():
        if not entry.name.startswith("..") and entry.name not in tops and entry.is_symlink():
            entry.unlink()
    if old and old != stamp:
        shutil.rmtree(target / old, ignore_errors=True)
    return True


# ---- rendering -------------------------------------------------------------------------------

def _project(payload: dict[str, bytes], items: list | None, mode: int, optional: bool,
             kind: str) -> Files:
    if not items:
        return {k: (v, mode) for k, v in payload.items()}
    out: Files = {}
    for it in items:
        key = it.get("key")
        if key not in payload:
            if optional:
                continue
            what = "config key" if kind == "configmap" else "secret key"
            raise VolumeError(f"{kind} references non-existent {what}: {key}")
        out[it["path"]] = (payload[key], it.get("mode", mode))
    return out


@dataclass
class _Token:
    token: str
    issued: float
    expiry: float

    def fresh(self, now: float) -> bool:
        """kubelet refreshes at 80% of the TTL (or after 24 h)."""
        ttl = self.expiry - self.issued
        return now < self.issued + min(0.8 * ttl, 86400)


@dataclass
class PodVolumes:
    """What is known about one pod's volumes."""
    pod: dict
    dir: Path
    pod_ip: str = ""
    host_ip: str = ""
    allocatable: dict = field(default_factory=dict)
    set_up: bool = False
    tokens: dict = field(default_factory=dict)       # (volume, index) -> _Token
    refs: set = field(default_factory=set)           # {("configmap"|"secret", namespace, name)}
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def uid(self) -> str:
        return self.pod["metadata"]["uid"]


class VolumeManager:
    """Sets up, refreshes and tears down the volumes of the pods on this host."""

    def __init__(self, sources: Sources):
        self.sources = sources
        self.pods: dict[str, PodVolumes] = {}

    # ---- set-up and teardown --------------------------------------------------------------

    def track(self, pod: dict, pod_dir: Path, *, pod_ip: str = "", host_ip: str = "",
              allocatable: dict | None = None) -> PodVolumes:
        uid = pod["metadata"]["uid"]
        pv = self.pods.get(uid)
        if pv is None:
            pv = self.pods[uid] = PodVolumes(pod, Path(pod_dir) / "volumes")
            pv.refs = self.references(pod)
        pv.pod_ip, pv.host_ip = pod_ip or pv.pod_ip, host_ip or pv.host_ip
        pv.allocatable = allocatable or pv.allocatable
        return pv

    async def setup(self, pv: PodVolumes) -> None:
        """Create every volume of the pod (idempotent; rendered volumes are refreshed)."""
        async with pv.lock:
            for vol in (pv.pod.get("spec") or {}).get("volumes") or []:
                await self._setup_one(pv, vol)
            pv.set_up = True

    async def _setup_one(self, pv: PodVolumes, vol: dict) -> None:
        name = vol["name"]
        path = pv.dir / name
        if "emptyDir" in vol:
            ed = vol.get("emptyDir") or {}
            if not path.exists():
                path.mkdir(parents=True)
                os.chmod(path, 0o777)
            if ed.get("medium") == "Memory" and not os.path.ismount(path):
                opts = "mode=0777"
                if ed.get("sizeLimit"):
                    opts += f",size={memory_bytes(str(ed['sizeLimit']))}"
                proc = await asyncio.create_subprocess_exec(
                    "mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path),
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
                _, err = await proc.communicate()
                if proc.returncode != 0:
                    raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : '
                                      f"{err.decode(errors='replace').strip()}")
            psc = (pv.pod.get("spec") or {}).get("securityContext") or {}
            await asyncio.to_thread(set_volume_ownership, path, psc.get("fsGroup"),
                                    policy=psc.get("fsGroupChangePolicy"))
            return
        if any(k in vol for k in RENDERED):
            try:
                if any(k in vol for k in IN_MEMORY):
                    await _mount_tmpfs(path)
                files = await self.render(pv, vol)
                await asyncio.to_thread(self._write_rendered, pv, path, files)
            except VolumeError as e:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {e}') from None
            return
        kinds = [k for k in vol if k != "name"]
        raise VolumeError(f"volume {name!r}: volume type {', '.join(kinds) or 'unknown'} is not "
                          f"supported on this node")

    @staticmethod
    def _write_rendered(pv: PodVolumes, path: Path, files) -> bool:
        """atomic_write, then the pod's fsGroup on the result (read-only: the kubelet
        ignores fsGroupChangePolicy for these volumes)."""
        gid = ((pv.pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
        if gid is not None:     # the modes fsGroup gives, up front: unchanged files stay so
            files = {rel: (data, mode | 0o440) for rel, (data, mode) in files.items()}
        changed = atomic_write(path, files)
        if changed and gid is not None:
            set_volume_ownership(path, gid, read_only=True)
        return changed

    async def refresh(self, uid: str) -> None:
        """Re-render the pod's configMap/secret/downwardAPI/projected volumes (changes only)."""
        pv = self.pods.get(uid)
        if pv is None or not pv.set_up:
            return
        async with pv.lock:
            for vol in (pv.pod.get("spec") or {}).get("volumes") or []:
                if any(k in vol for k in RENDERED):
                    try:
                        files = await self.render(pv, vol)
                        if await asyncio.to_thread(self._write_rendered, pv, pv.dir / vol["name"], files):
                            log.info("volume %s of pod %s updated", vol["name"], uid)
                    except VolumeError as e:
                        log.warning("volume %s of pod %s not refreshed: %s", vol["name"], uid, e)

    async def teardown(self, uid: str, pod_dir: Path | None = None) -> None:
        """Unmount what the pod's volumes mounted; the files go with the pod's directory."""
        pv = self.pods.pop(uid, None)
        vdir = pv.dir if pv is not None else (Path(pod_dir) / "volumes" if pod_dir else None)
        if vdir is None:
            return
        prefix = str(vdir.resolve()) + "/"
        with open("/proc/self/mountinfo") as f:
            mounts = [ln.split()[4] for ln in f]
        for m in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
            proc = await asyncio.create_subprocess_exec("umount", "-l", m, stdout=asyncio.subprocess.DEVNULL,
                                                        stderr=asyncio.subprocess.DEVNULL)
            await proc.wait()

    # ---- rendering ------------------------------------------------------------------------

    @staticmethod
    def references(pod: dict) -> set:
        """ConfigMaps and Secrets the pod's volumes are rendered from."""
        ns = pod["metadata"].get("namespace", "default")
        out = set()
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            if "configMap" in vol:
                out.add(("configmap", ns, (vol["configMap"] or {}).get("name")))
            if "secret" in vol:
                out.add(("secret", ns, (vol["secret"] or {}).get("secretName")))
            for src in ((vol.get("projected") or {}).get("sources") or []):
                if "configMap" in src:
                    out.add(("configmap", ns, (src["configMap"] or {}).get("name")))
                if "secret" in src:
                    out.add(("secret", ns, (src["secret"] or {}).get("name")))
        return out

    async def render(self, pv: PodVolumes, vol: dict) -> Files:
        ns = pv.pod["metadata"].get("namespace", "default")
        if "configMap" in vol:
            src = vol["configMap"] or {}
            return await self._configmap(ns, src, src.get("defaultMode", DEFAULT_MODE))
        if "secret" in vol:
            src = vol["secret"] or {}
            return await self._secret(ns, src.get("secretName"), src, src.get("defaultMode", DEFAULT_MODE))
        if "downwardAPI" in vol:
            src = vol["downwardAPI"] or {}
            return self._downward(pv, src.get("items") or [], src.get("defaultMode", DEFAULT_MODE))
        proj = vol.get("projected") or {}
        mode = proj.get("defaultMode", DEFAULT_MODE)
        files: Files = {}
        for i, src in enumerate(proj.get("sources") or []):
            if "configMap" in src:
                s = src["configMap"] or {}
                files.update(await self._configmap(ns, s, mode))
            elif "secret" in src:
                s = src["secret"] or {}
                files.update(await self._secret(ns, s.get("name"), s, mode))
            elif "downwardAPI" in src:
                files.update(self._downward(pv, (src["downwardAPI"] or {}).get("items") or [], mode))
            elif "serviceAccountToken" in src:
                s = src["serviceAccountToken"] or {}
                tok = await self._token(pv, (vol["name"], i), s)
                files[s["path"]] = (tok.encode(), mode)
            else:
                kinds = ", ".join(src)
                raise VolumeError(f"projected source {kinds} is not supported")
        return files

    async def _configmap(self, ns: str, src: dict, mode: int) -> Files:
        name = src.get("name")
        optional = bool(src.get("optional"))
        cm = await self.sources.configmap(ns, name)
        if cm is None:
            # the root CA bundle is published by a controller that may not run (yet)
            if optional or name == "kube-root-ca.crt":
                return {}
            raise VolumeError(f'configmap "{name}" not found')
        return _project(configmap_payload(cm), src.get("items"), mode, optional, "configmap")

    async def _secret(self, ns: str, name: str | None, src: dict, mode: int) -> Files:
        optional = bool(src.get("optional"))
        s = await self.sources.secret(ns, name)
        if s is None:
            if optional:
                return {}
            raise VolumeError(f'secret "{name}" not found')
        return _project(secret_payload(s), src.get("items"), mode, optional, "secret")

    def _downward(self, pv: PodVolumes, items: list, mode: int) -> Files:
        files: Files = {}
        for it in items:
            if "fieldRef" in it:
                v = field_value(pv.pod, it["fieldRef"].get("fieldPath", ""), pod_ip=pv.pod_ip,
                                host_ip=pv.host_ip, volume=True)
            elif "resourceFieldRef" in it:
                ref = it["resourceFieldRef"]
                v = resource_value(pv.pod, ref.get("containerName", ""), ref, pv.allocatable)
            else:
                continue
            files[it["path"]] = (v.encode(), it.get("mode", mode))
        return files

    async def _token(self, pv: PodVolumes, key: tuple, src: dict) -> str:
        now = time.time()
        cur = pv.tokens.get(key)
        if cur is not None and cur.fresh(now):
            return cur.token
        spec = pv.pod.get("spec") or {}
        sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        exp = int(src.get("expirationSeconds") or DEFAULT_TOKEN_EXPIRATION)
        try:
            token, expiry = await self.sources.token(pv.pod["metadata"].get("namespace", "default"), sa,
                                                     pv.pod, src.get("audience") or None, exp)
        except VolumeError:
            raise
        except Exception as e:  # noqa: BLE001 - reported as a mount failure, retried
            raise VolumeError(f"failed to fetch token: {e}") from None
        pv.tokens[key] = _Token(token, now, expiry)
        return token

    # ---- container mounts -----------------------------------------------------------------

    def mounts(self, pv: PodVolumes, container: dict, env: dict[str, str]) -> list[Mount]:
        """The container's ``volumeMounts`` as host bind mounts (subPath resolved safely)."""
        vols = {v["name"]: v for v in (pv.pod.get("spec") or {}).get("volumes") or []}
        out = []
        for vm in container.get("volumeMounts") or []:
            vol = vols.get(vm.get("name"))
            if vol is None:
                raise VolumeError(f"volumeMount {vm.get('name')!r}: no volume of that name")
            host = pv.dir / vol["name"]
            rendered = any(k in vol for k in RENDERED)
            read_only = bool(vm.get("readOnly")) or rendered
            sub = vm.get("subPath") or ""
            if not sub and vm.get("subPathExpr"):
                sub = expand(vm["subPathExpr"], env)
            path = host
            if sub:
                p = Path(sub)
                if p.is_absolute() or ".." in p.parts:
                    raise VolumeError(f"subPath {sub!r} must be a relative path without '..'")
                path = host / sub
                if not os.path.lexists(path) and not rendered:
                    path.mkdir(parents=True, exist_ok=True)
                    os.chmod(path, 0o777)
                real, base = os.path.realpath(path), os.path.realpath(host)
                if real != base and not real.startswith(base + "/"):
                    raise VolumeError(f"subPath {sub!r} resolves outside the volume {vol['name']!r}")
                if not os.path.exists(real):
                    raise VolumeError(f"subPath {sub!r} does not exist in volume {vol['name']!r}")
                path = Path(real)
            out.append(Mount(host_path=str(path), container_path=vm["mountPath"], read_only=read_only,
                             propagation=vm.get("mountPropagation") or "None"))
        return out


__all__ = ["VolumeManager", "VolumeError", "PodVolumes", "Sources", "atomic_write", "field_value",
           "resource_value", "configmap_payload", "secret_payload"]
