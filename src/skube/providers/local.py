"""The ``local`` provider: elastic container instances on this host.

Each pod becomes an instance of :class:`skube.runtime.instance.InstanceManager`
(a sandbox — network namespace on a CNI bridge plus a holder process — and runc
containers under conmon). This module supplies what the runtime does not know
about Kubernetes: the ``prepare`` hook pulls the image through
:class:`~skube.runtime.images.ImageService` (imagePullPolicy, imagePullSecrets),
gives the container its own root filesystem, resolves ``env``/``envFrom``
(ConfigMaps, Secrets, the downward API) and sets up the pod's volumes
(:mod:`skube.providers.volumes`). ConfigMaps, Secrets and service-account tokens
are read through the API (``ProviderContext.client``), and changes to them reach
running pods' volumes.

Failures are reported as the kubelet reports them: ``ErrImagePull`` then
``ImagePullBackOff`` while the pull is retried with back-off (10 s doubling to
5 min), ``CreateContainerConfigError`` for missing ConfigMaps/Secrets/keys,
``ContainerCreating`` while a volume cannot be set up.

Instances outlive the provider: a new provider (after a restart, even ``kill -9``)
re-adopts them from the runtime's state directory.

Config (YAML, ``--provider-config``), every key optional::

    network: {cidr: 10.42.0.0/16, bridge: skube0, name: skube, defaultRoute: false,
              clusterDNS: [], clusterDomain: cluster.local, mtu: null,
              serviceCIDR: "",              # routed via the bridge when there is no default route
              rangeStart: "", rangeEnd: ""} # this node's slice of the CIDR (several nodes, one bridge)
    imageDir: /path/to/images        # default: the cluster's images/ (or <node data dir>/images)
    insecureRegistries: [127.0.0.1, localhost]
    rootfsMode: auto                 # overlay | copy
    capacity: {cpu: "8", memory: 16Gi, pods: "110"}   # default: this host's
    volumeSyncPeriod: 60             # seconds between re-renders of ConfigMap/Secret/token volumes
    spot: {reclaimAfterSeconds: 600, warningSeconds: 180}   # spot reclaims (skube.providers.spot)
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

from ..client.events import EventRecorder
from ..runtime import logs as logfmt
from ..runtime.images import ImagePullError, ImageService
from ..runtime.images.reference import parse as parse_ref
from ..runtime.instance import Instance, InstanceManager, Prepared
from ..runtime.runc import RuncError
from ..runtime.sandbox import NetworkConfig
from .base import BadRequest, LogOptions, PodNotFound, Provider, ProviderContext
from .spot import RECLAIM_ANNOTATION, SpotConfig, SpotReclaimer, reclaimed_status
from .volumes import (VolumeError, VolumeManager, field_value, resource_value, secret_payload)

log = logging.getLogger("skube.providers.local")

ERR_IMAGE_PULL_SHOWN = 2.0       # seconds ErrImagePull is reported before ImagePullBackOff
STATS_WINDOW = 10.0
PULL_FAILURES = ("ErrImagePull", "ErrImageNeverPull", "InvalidImageName", "ImagePullBackOff")


class _ConfigError(Exception):
    """A container cannot be configured (kubelet: CreateContainerConfigError)."""


@dataclass
class _Failure:
    """Why the last attempt to create a container failed (kept until one succeeds)."""
    reason: str              # ErrImagePull, CreateContainerConfigError, ContainerCreating, …
    message: str
    at: float
    image: str = ""


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def image_gc_config(doc: dict) -> dict:
    """The provider config's ``imageGC`` section with the kubelet's defaults (85 / 80 percent
    of the image filesystem, every 300 s; no byte threshold). ValueError when inconsistent."""
    out = {"highThresholdPercent": 85, "lowThresholdPercent": 80, "thresholdBytes": None,
           "period": 300.0}
    unknown = set(doc) - set(out)
    if unknown:
        raise ValueError(f"imageGC: unknown keys {sorted(unknown)} (allowed: {sorted(out)})")
    out.update({k: v for k, v in doc.items() if v is not None})
    high, low = out["highThresholdPercent"], out["lowThresholdPercent"]
    if not (0 <= low <= 100 and 0 <= high <= 100):
        raise ValueError("imageGC: highThresholdPercent and lowThresholdPercent must be within [0, 100]")
    if low > high:
        raise ValueError(f"imageGC: lowThresholdPercent ({low}) must not exceed highThresholdPercent ({high})")
    if float(out["period"]) <= 0:
        raise ValueError("imageGC: period must be > 0 seconds")
    out["period"] = float(out["period"])
    return out


def _is_cluster_dir(p: Path) -> bool:
    return (p / "kubeconfig").exists() or (p / "pki" / "ca.crt").exists()


class ApiSources:
    """ConfigMaps, Secrets and TokenRequests through the API (informer cache first)."""

    def __init__(self, client):
        self.client = client
        self.informers: dict[str, Any] = {}

    def start(self, on_change) -> None:
        if self.client is None:
            return
        from ..client import Informer, resource
        for kind, plural, k in (("configmap", "configmaps", "ConfigMap"), ("secret", "secrets", "Secret")):
            inf = Informer(self.client, resource("v1", plural, kind=k), name=f"{plural} (local provider)")
            inf.on_add(lambda o, kind=kind: on_change(kind, o))
            inf.on_update(lambda old, new, kind=kind: on_change(kind, new))
            self.informers[kind] = inf
            inf.start()
        self.informers["service"] = Informer(self.client, resource("v1", "services", kind="Service"),
                                             name="services (local provider)")
        self.informers["service"].start()

    async def services(self) -> list[dict]:
        """Every Service (for the containers' service environment variables)."""
        inf = self.informers.get("service")
        if inf is None:
            return []
        if not inf.has_synced:
            await inf.wait_synced(timeout=10)
        return inf.list()

    def stop(self) -> None:
        for inf in self.informers.values():
            inf.stop()

    async def _get(self, kind: str, namespace: str, name: str | None) -> dict | None:
        if self.client is None or not name:
            return None
        inf = self.informers.get(kind)
        if inf is not None and inf.has_synced:
            obj = inf.get(f"{namespace}/{name}")
            if obj is not None:
                return obj
        from ..client import ApiError, resource
        try:
            return await self.client.get(resource("v1", kind + "s"), name, namespace)
        except ApiError as e:
            if e.not_found:
                return None
            raise

    async def configmap(self, namespace: str, name: str | None) -> dict | None:
        return await self._get("configmap", namespace, name)

    async def secret(self, namespace: str, name: str | None) -> dict | None:
        return await self._get("secret", namespace, name)

    async def token(self, namespace: str, service_account: str, pod: dict, audience: str | None,
                    expiration: int) -> tuple[str, float]:
        if self.client is None:
            raise VolumeError("no API access to request a service-account token")
        m = pod["metadata"]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": expiration,
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": m["name"],
                                            "uid": m["uid"]}}}
        if audience:
            body["spec"]["audiences"] = [audience]
        from urllib.parse import quote
        out = await self.client.request(
            "POST", f"/api/v1/namespaces/{quote(namespace)}/serviceaccounts/{quote(service_account)}/token",
            body=body)
        st = out.get("status") or {}
        exp = st.get("expirationTimestamp")
        import datetime as dt
        expiry = dt.datetime.fromisoformat(exp.replace("Z", "+00:00")).timestamp() if exp \
            else time.time() + expiration
        return st["token"], expiry


class LocalProvider(Provider):
    name = "local"

    def __init__(self, config: dict | None = None):
        self.doc = config or {}
        self._notify = None
        self.by_key: dict[str, str] = {}             # "ns/name" -> uid
        self.failures: dict[tuple[str, str], _Failure] = {}
        self._tasks: set[asyncio.Task] = set()
        self._cpu_samples: dict[str, tuple[int, float]] = {}
        self.mgr: InstanceManager | None = None
        self.reclaimed: dict[str, str] = {}          # uid -> when its spot instance was reclaimed

    # ---- lifecycle of the provider ------------------------------------------------------

    async def start(self, ctx: ProviderContext) -> None:
        self.ctx = ctx
        doc = self.doc or {}
        full = ctx.config or {}
        data_dir = Path(ctx.data_dir).resolve()
        net = doc.get("network") or {}
        self.network = NetworkConfig(
            cidr=net.get("cidr") or doc.get("podCIDR") or "10.42.0.0/16",
            bridge=net.get("bridge", "skube0"), name=net.get("name", "skube"),
            default_route=bool(net.get("defaultRoute", False)), mtu=net.get("mtu"),
            cluster_dns=list(net.get("clusterDNS") or []),
            cluster_domain=net.get("clusterDomain", "cluster.local"),
            service_cidr=net.get("serviceCIDR", ""),
            range_start=net.get("rangeStart", ""), range_end=net.get("rangeEnd", ""))
        image_dir = doc.get("imageDir") or doc.get("image_dir") or full.get("image_dir") or full.get("imageDir")
        if image_dir:
            image_dir = Path(image_dir).expanduser().resolve()
        elif _is_cluster_dir(data_dir.parent.parent):
            image_dir = data_dir.parent.parent / "images"
        else:
            image_dir = data_dir / "images"
        self.image_dir = image_dir
        gc = image_gc_config(doc.get("imageGC") or {})
        self.images = ImageService(image_dir.parent,
                                   insecure_registries=doc.get("insecureRegistries") or ("127.0.0.1", "localhost"),
                                   rootfs_mode=doc.get("rootfsMode", "auto"),
                                   gc_threshold_bytes=gc["thresholdBytes"],
                                   gc_high_percent=gc["highThresholdPercent"],
                                   gc_low_percent=gc["lowThresholdPercent"])
        if image_dir.name != "images":
            from ..runtime.images.store import ContentStore
            self.images.store.close()
            self.images.store = ContentStore(image_dir)
        self._capacity = self._host_capacity()
        self.sources = ApiSources(getattr(ctx, "client", None))
        self.volumes = VolumeManager(self.sources)
        self.events = EventRecorder(ctx.client, "kubelet", default_kind="Pod",
                                    default_api_version="v1") if ctx.client else None
        if self.events:
            self.events.start()
        self.mgr = InstanceManager(data_dir / "local", self._prepare, network=self.network,
                                   on_change=self._on_change, on_event=self._event)
        await self.mgr.start()
        for inst in self.mgr.list():
            m = inst.pod["metadata"]
            self.by_key[f"{m['namespace']}/{m['name']}"] = inst.uid
            if inst.phase not in ("Succeeded", "Failed") and not inst.deleting:
                pv = self._track(inst.pod)
                pv.set_up = (pv.dir).exists()
        if self.mgr.instances:
            log.info("local provider re-adopted %d instances", len(self.mgr.instances))
        self.spot = SpotReclaimer(SpotConfig(doc.get("spot")), data_dir / "local", ctx.client,
                                  ctx.node_name, self._reclaim)
        self.spot.start({k: u for k, u in self.by_key.items()
                         if (i := self.mgr.get(u)) is not None and not i.deleting
                         and i.phase not in ("Succeeded", "Failed")})
        self.sources.start(self._object_changed)
        period = float(doc.get("volumeSyncPeriod", 60))
        self._spawn(self._sync_loop(period))
        self._spawn(self._image_gc_loop(gc["period"]))

    async def close(self) -> None:
        if getattr(self, "spot", None) is not None:
            await self.spot.close()
        self.sources.stop()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.mgr is not None:
            await self.mgr.close()
        await self.images.close()
        if getattr(self, "events", None) is not None:
            await self.events.stop()

    def _event(self, inst_or_pod, etype: str, reason: str, message: str) -> None:
        """A core v1 Event about the pod (kubelet reasons: Created, Started, Killing,
        Unhealthy, BackOff, Pulling, Pulled, Failed)."""
        if getattr(self, "events", None) is not None:
            pod = inst_or_pod.pod if isinstance(inst_or_pod, Instance) else inst_or_pod
            self.events.event(pod, etype, reason, message)

    async def _image_gc_loop(self, period: float) -> None:
        """Image garbage collection every ``period`` seconds (the kubelet: every 5 minutes),
        besides the collection after each pull."""
        while True:
            await asyncio.sleep(period)
            try:
                await self.images.gc()
            except Exception:  # noqa: BLE001 - retried next period
                log.exception("image garbage collection")

    def _spawn(self, coro) -> asyncio.Task:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return t

    def notify_pods(self, callback) -> None:
        self._notify = callback

    # ---- node ---------------------------------------------------------------------------

    def _host_capacity(self) -> dict[str, str]:
        cap = {"cpu": str(os.cpu_count() or 1), "memory": f"{_mem_total() // 1024}Ki", "pods": "110"}
        cap.update({k: str(v) for k, v in (self.doc.get("capacity") or {}).items()})
        return cap

    def capacity(self) -> dict[str, str] | None:
        return dict(self._capacity)

    # ---- pods ---------------------------------------------------------------------------

    def _inst(self, namespace: str, name: str) -> Instance | None:
        uid = self.by_key.get(f"{namespace}/{name}")
        return self.mgr.get(uid) if uid else None

    def _track(self, pod: dict):
        uid = pod["metadata"]["uid"]
        inst = self.mgr.get(uid)
        ip = inst.sandbox.ip if inst is not None and inst.sandbox else ""
        return self.volumes.track(pod, self.mgr.sandboxes.pod_dir(uid), pod_ip=ip,
                                  host_ip=self.ctx.internal_ip, allocatable=self._capacity)

    async def create_pod(self, pod: dict) -> None:
        m = pod["metadata"]
        key = f"{m['namespace']}/{m['name']}"
        cur = self.by_key.get(key)
        if cur is not None and cur != m.get("uid"):
            old = self.mgr.get(cur)
            if old is not None:
                await self.delete_pod(old.pod, 0)
        self.by_key[key] = m["uid"]
        await self.mgr.create(pod)
        self.spot.watch(m)

    async def update_pod(self, pod: dict) -> None:
        """Labels and annotations reach downwardAPI volumes (changed images are not applied)."""
        inst = self._inst(pod["metadata"]["namespace"], pod["metadata"]["name"])
        if inst is None or inst.uid != pod["metadata"].get("uid"):
            return
        if (pod["metadata"].get("annotations") or {}).get(RECLAIM_ANNOTATION) == "true" and \
                not inst.deleting and inst.uid not in self.reclaimed:
            self.spot.reclaim_now(pod["metadata"])
        meta = inst.pod["metadata"]
        changed = False
        for k in ("labels", "annotations"):
            if pod["metadata"].get(k) != meta.get(k):
                meta[k] = pod["metadata"].get(k)
                changed = True
        if changed:
            inst.save()
            pv = self.volumes.pods.get(inst.uid)
            if pv is not None:
                pv.pod = inst.pod
                self._spawn(self.volumes.refresh(inst.uid))

    async def delete_pod(self, pod: dict, grace_period: int | None = None) -> dict | None:
        m = pod["metadata"]
        key = f"{m['namespace']}/{m['name']}"
        uid = self.by_key.get(key)
        if uid is None or (m.get("uid") and uid != m.get("uid")):
            return None
        self.spot.forget(key)
        inst = self.mgr.get(uid)
        final = None
        if inst is not None:
            await self.mgr.stop(uid, grace_period)
            final = self.status(inst)                 # how the containers ended (reclaimed: as such)
            await self._release_rootfs(inst, everything=True)
            await self.volumes.teardown(uid, inst.dir)
            await self.mgr.delete(uid, 0)
        self.reclaimed.pop(uid, None)
        if self.by_key.get(key) == uid:
            del self.by_key[key]
        for k in [k for k in self.failures if k[0] == uid]:
            del self.failures[k]
        return final

    async def get_pod_status(self, namespace: str, name: str) -> dict | None:
        inst = self._inst(namespace, name)
        return self.status(inst) if inst is not None else None

    async def get_pod(self, namespace: str, name: str) -> dict | None:
        inst = self._inst(namespace, name)
        return self.pod_view(inst) if inst is not None else None

    async def list_pods(self) -> list[dict]:
        return [self.pod_view(i) for i in self.mgr.list()]

    def pod_view(self, inst: Instance) -> dict:
        m, spec = inst.pod["metadata"], inst.pod.get("spec") or {}
        return {"metadata": {"namespace": m.get("namespace"), "name": m.get("name"), "uid": inst.uid},
                "spec": {"containers": [{"name": c["name"], "image": c.get("image", "")}
                                        for c in spec.get("containers") or []],
                         "restartPolicy": spec.get("restartPolicy", "Always")},
                "status": self.status(inst)}

    def status(self, inst: Instance) -> dict:
        """The runtime's status, with the reasons of failed container creations put the
        way the kubelet reports them (and a reclaimed spot instance as such)."""
        st = inst.status()
        if inst.uid in self.reclaimed:
            return reclaimed_status(st, self.reclaimed[inst.uid])
        now = time.time()
        for group in ("initContainerStatuses", "containerStatuses"):
            for cs in st.get(group) or []:
                w = (cs.get("state") or {}).get("waiting")
                if not w or w.get("reason") != "CreateContainerError":
                    continue
                f = self.failures.get((inst.uid, cs["name"]))
                if f is None or f.message != w.get("message"):
                    continue
                if f.reason == "ErrImagePull" and now - f.at >= ERR_IMAGE_PULL_SHOWN:
                    cs["state"] = {"waiting": {"reason": "ImagePullBackOff",
                                               "message": f'Back-off pulling image "{f.image}"'}}
                else:
                    cs["state"] = {"waiting": {"reason": f.reason, "message": f.message}}
        return st

    def _reclaim(self, key: str, uid: str) -> None:
        """The spot instance of ``key`` is reclaimed: its containers are stopped (within
        the pod's grace period) and the pod reported Failed."""
        inst = self.mgr.get(uid) if self.mgr else None
        if inst is None or inst.deleting or self.by_key.get(key) != uid:
            return
        self.reclaimed[uid] = _rfc3339(time.time())

        async def stop():
            await self.mgr.stop(uid, None)
            self._notify_uid(uid)
        self._spawn(stop())

    def _on_change(self, inst: Instance) -> None:
        if not inst.deleting:
            self._spawn(self._release_rootfs(inst))
        if self._notify is not None and inst.uid in self.mgr.instances:
            try:
                self._notify(self.pod_view(inst))
            except Exception:  # noqa: BLE001
                log.exception("pod notification failed")

    def _notify_uid(self, uid: str) -> None:
        inst = self.mgr.get(uid) if self.mgr else None
        if inst is not None and self._notify is not None:
            self._notify(self.pod_view(inst))

    async def _release_rootfs(self, inst: Instance, everything: bool = False) -> None:
        """Unmount the root filesystems of container attempts that ended."""
        for rec in list(inst.records.values()):
            base = inst.dir / "containers" / rec.name
            if not base.is_dir():
                continue
            for d in base.iterdir():
                if not d.name.isdigit() or not (d / "fs").exists():
                    continue
                attempt = int(d.name)
                done = everything or attempt < rec.restart_count or \
                    (attempt == rec.restart_count and (rec.state == "terminated" or
                                                       rec.reason == "CrashLoopBackOff"))
                if done and ((d / "fs" / "rootfs.json").exists() or os.path.ismount(d / "fs" / "rootfs")):
                    try:
                        await self.images.release_rootfs(d / "fs")
                    except OSError as e:
                        log.warning("releasing the rootfs of %s: %s", d, e)

    # ---- prepare: image, volumes, env ---------------------------------------------------

    def _fail(self, uid: str, name: str, reason: str, message: str, image: str = "") -> Exception:
        self.failures[(uid, name)] = _Failure(reason, message, time.time(), image)
        if reason == "ErrImagePull":
            asyncio.get_running_loop().call_later(ERR_IMAGE_PULL_SHOWN + 0.05, self._notify_uid, uid)
        return RuntimeError(message)

    async def _prepare(self, pod: dict, container: dict, cdir: Path) -> Prepared:
        try:
            return await self._prepare_container(pod, container, cdir)
        except Exception as e:
            if (pod["metadata"]["uid"], container["name"]) not in self.failures or \
                    self.failures[(pod["metadata"]["uid"], container["name"])].message != str(e):
                log.exception("preparing container %s of pod %s/%s", container["name"],
                              pod["metadata"].get("namespace"), pod["metadata"].get("name"))
            raise

    async def _prepare_container(self, pod: dict, container: dict, cdir: Path) -> Prepared:
        uid, cname = pod["metadata"]["uid"], container["name"]
        image = container.get("image", "")
        pv = self._track(pod)
        try:
            await self.volumes.setup(pv)
        except VolumeError as e:
            raise self._fail(uid, cname, "ContainerCreating", str(e)) from None
        policy = self._pull_policy(container)
        present = policy != "Always" and self.images.get(image) is not None
        started = time.monotonic()
        if present:
            self._event(pod, "Normal", "Pulled", f'Container image "{image}" already present on machine')
        elif policy != "Never":
            self._event(pod, "Normal", "Pulling", f'Pulling image "{image}"')
        try:
            rec = await self.images.pull(image, credentials=await self._pull_secrets(pod),
                                         policy=policy)
        except ImagePullError as e:
            if e.reason != "ErrImageNeverPull":
                self._event(pod, "Warning", "Failed", f'Failed to pull image "{image}": {e.message}')
            self._event(pod, "Warning", "Failed", f"Error: {e.reason}")
            raise self._fail(uid, cname, e.reason, e.message, image) from None
        if not present:
            took = time.monotonic() - started
            self._event(pod, "Normal", "Pulled",
                        f'Successfully pulled image "{image}" in {took:.3f}s ({took:.3f}s including waiting). '
                        f'Image size: {rec.size} bytes.')
        try:
            resolved, env_from = await self._env(pod, container, pv.pod_ip)
            env = dict(env_from)
            for e in container.get("env") or []:
                env[e["name"]] = resolved.get(e["name"], e.get("value", "") or "")
            mounts = self.volumes.mounts(pv, container, env)
        except (_ConfigError, VolumeError) as e:
            raise self._fail(uid, cname, "CreateContainerConfigError", str(e)) from None
        rootfs = await self.images.prepare_rootfs(rec, cdir / "fs")
        self.failures.pop((uid, cname), None)
        try:
            ref = parse_ref(rec.name)
            image_id = f"{ref.registry}/{ref.repository}@{rec.digest}"
        except ValueError:
            image_id = rec.digest
        return Prepared(rootfs=rootfs, image_config=rec.config, mounts=mounts, resolved_env=resolved,
                        env_from=env_from, image_id=image_id)

    @staticmethod
    def _pull_policy(container: dict) -> str:
        p = container.get("imagePullPolicy")
        if p:
            return p
        image = container.get("image", "")
        tail = image.rsplit("/", 1)[-1]
        return "Always" if ("@" not in tail and (":" not in tail or tail.endswith(":latest"))) else "IfNotPresent"

    async def _pull_secrets(self, pod: dict) -> list[dict]:
        ns = pod["metadata"].get("namespace", "default")
        out = []
        for ref in (pod.get("spec") or {}).get("imagePullSecrets") or []:
            try:
                s = await self.sources.secret(ns, ref.get("name"))
            except Exception as e:  # noqa: BLE001 - a pull without that secret may still work
                log.warning("image pull secret %s/%s: %s", ns, ref.get("name"), e)
                continue
            if s is not None and s.get("type") in ("kubernetes.io/dockerconfigjson", "kubernetes.io/dockercfg"):
                out.append(s)
        return out

    async def _env(self, pod: dict, c: dict, pod_ip: str) -> tuple[dict, list]:
        """``(resolved valueFrom by name, envFrom pairs)`` as the kubelet computes them."""
        ns = pod["metadata"].get("namespace", "default")
        cache: dict = {}

        async def get(kind: str, name: str) -> dict | None:
            if (kind, name) not in cache:
                fn = self.sources.configmap if kind == "configmap" else self.sources.secret
                cache[(kind, name)] = await fn(ns, name)
            return cache[(kind, name)]

        def payload(kind: str, obj: dict) -> dict[str, str]:
            if kind == "configmap":
                return dict(obj.get("data") or {})
            return {k: v.decode(errors="replace") for k, v in secret_payload(obj).items()}

        from ..network.servicelinks import service_env
        env_from: list[tuple[str, str]] = service_env(pod, await self.sources.services())
        for src in c.get("envFrom") or []:
            prefix = src.get("prefix") or ""
            kind, ref = ("configmap", src["configMapRef"]) if "configMapRef" in src else \
                ("secret", src.get("secretRef") or {})
            obj = await get(kind, ref.get("name"))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise _ConfigError(f'{kind} "{ref.get("name")}" not found')
            for k, v in payload(kind, obj).items():
                env_from.append((prefix + k, v))
        resolved: dict[str, str] = {}
        for e in c.get("env") or []:
            vf = e.get("valueFrom")
            if not vf:
                continue
            name = e["name"]
            if "configMapKeyRef" in vf or "secretKeyRef" in vf:
                kind = "configmap" if "configMapKeyRef" in vf else "secret"
                ref = vf.get("configMapKeyRef") or vf.get("secretKeyRef") or {}
                obj = await get(kind, ref.get("name"))
                data = payload(kind, obj) if obj is not None else None
                if data is None or ref.get("key") not in data:
                    if ref.get("optional"):
                        resolved[name] = ""       # the runtime needs a value for every valueFrom
                        continue
                    if data is None:
                        raise _ConfigError(f'{kind} "{ref.get("name")}" not found')
                    what = "ConfigMap" if kind == "configmap" else "Secret"
                    raise _ConfigError(f"couldn't find key {ref.get('key')} in {what} {ns}/{ref.get('name')}")
                resolved[name] = data[ref["key"]]
            elif "fieldRef" in vf:
                try:
                    resolved[name] = field_value(pod, vf["fieldRef"].get("fieldPath", ""), pod_ip=pod_ip,
                                                 host_ip=self.ctx.internal_ip)
                except VolumeError as err:
                    raise _ConfigError(str(err)) from None
            elif "resourceFieldRef" in vf:
                ref = vf["resourceFieldRef"]
                try:
                    resolved[name] = resource_value(pod, ref.get("containerName") or c["name"], ref,
                                                    self._capacity)
                except VolumeError as err:
                    raise _ConfigError(str(err)) from None
            else:
                raise _ConfigError(f"env var {name!r}: unsupported valueFrom")
        return resolved, env_from

    # ---- keeping volumes current ----------------------------------------------------------

    def _object_changed(self, kind: str, obj: dict) -> None:
        m = obj.get("metadata") or {}
        ref = (kind, m.get("namespace"), m.get("name"))
        for uid, pv in list(self.volumes.pods.items()):
            if ref in pv.refs and pv.set_up:
                self._spawn(self.volumes.refresh(uid))

    async def _sync_loop(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            for uid in list(self.volumes.pods):
                try:
                    await self.volumes.refresh(uid)
                except Exception:  # noqa: BLE001
                    log.exception("refreshing the volumes of pod %s", uid)

    # ---- logs, exec, stats --------------------------------------------------------------

    async def logs(self, namespace: str, name: str, container: str, opts: LogOptions) -> AsyncIterator[bytes]:
        inst = self._inst(namespace, name)
        if inst is None:
            raise PodNotFound(f"pod {namespace}/{name} is not running on this node")
        rec = inst.records.get(container)
        if rec is None:
            raise PodNotFound(f'container "{container}" in pod "{name}" not found')
        since_ns = None
        if opts.since_seconds is not None:
            since_ns = time.time_ns() - opts.since_seconds * 1_000_000_000
        elif opts.since_time:
            since_ns = logfmt.parse_time(opts.since_time)
        ro = logfmt.ReadOptions(tail_lines=opts.tail_lines, since_ns=since_ns, timestamps=opts.timestamps,
                                limit_bytes=opts.limit_bytes, follow=opts.follow and not opts.previous)
        try:
            return self.mgr.logs(inst.uid, container, ro, previous=opts.previous)
        except FileNotFoundError:
            if opts.previous:
                raise BadRequest(f'previous terminated container "{container}" in pod "{name}" not found') \
                    from None
            cs = next((s for g in ("containerStatuses", "initContainerStatuses")
                       for s in self.status(inst).get(g) or [] if s["name"] == container), {})
            reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason") or "ContainerCreating"
            if reason in PULL_FAILURES:
                reason = "image can't be pulled"
            raise BadRequest(f'container "{container}" in pod "{name}" is waiting to start: {reason}') \
                from None

    async def exec_handle(self, namespace: str, name: str, container: str, command: list[str], *,
                          tty: bool = False):
        """Start ``command`` in the container; the runtime's ExecHandle (stdin writer,
        stdout/stderr readers, ``wait()``, ``resize()``)."""
        inst = self._inst(namespace, name)
        if inst is None or container not in inst.records:
            raise PodNotFound(f'container "{container}" in pod "{name}" not found')
        try:
            return await self.mgr.exec(inst.uid, container, command, tty=tty)
        except RuncError as e:
            raise BadRequest(str(e)) from None

    async def exec(self, namespace: str, name: str, container: str, command: list[str], *,
                   stdin: bool, stdout: bool, stderr: bool, tty: bool, streams: Any) -> int:
        """Run ``command`` over the kubelet's exec streams (skube.node.streams.ExecStreams)."""
        from ..node.streams import run_exec_handle
        handle = await self.exec_handle(namespace, name, container, command, tty=tty)
        return await run_exec_handle(handle, streams)

    async def attach(self, namespace: str, name: str, container: str, *, stdin: bool,
                     stdout: bool, stderr: bool, tty: bool, streams: Any) -> None:
        """Attach the kubelet's streams to the container's main process (through its
        monitor's attach socket); returns when the container exits or the client leaves."""
        from ..node.streams import run_attach_handle
        inst = self._inst(namespace, name)
        if inst is None or container not in inst.records:
            raise PodNotFound(f'container "{container}" in pod "{name}" not found')
        try:
            handle, spec = await self.mgr.attach(inst.uid, container)
        except RuncError as e:
            raise BadRequest(str(e)) from None
        await run_attach_handle(handle, streams, container_stdin=bool(spec.get("stdin")))

    async def port_forward(self, namespace: str, name: str, port: int, stream: Any) -> None:
        """A TCP connection from the host to the pod's IP (the host reaches the pod
        bridge), pumped to and from the kubelet's port-forward stream."""
        inst = self._inst(namespace, name)
        if inst is None or inst.deleting:
            raise PodNotFound(f"pod {namespace}/{name} is not running on this node")
        ip = inst.sandbox.ip if inst.sandbox else ""
        if not ip:
            raise BadRequest(f"pod {namespace}/{name} has no IP address yet")
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), 10)
        except asyncio.TimeoutError:
            raise BadRequest(f"failed to connect to {ip}:{port} inside pod {namespace}/{name}: "
                             f"timed out") from None
        except OSError as e:
            raise BadRequest(f"failed to connect to {ip}:{port} inside pod {namespace}/{name}: "
                             f"{(os.strerror(e.errno) if e.errno else str(e)).lower()}") from None

        async def to_pod():
            while chunk := await stream.read():
                writer.write(chunk)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

        up = asyncio.ensure_future(to_pod())
        try:
            while chunk := await reader.read(65536):
                await stream.write(chunk)
        except ConnectionError:
            pass
        finally:
            up.cancel()
            await asyncio.gather(up, return_exceptions=True)
            writer.close()
            try:
                await writer.wait_closed()
            except Exception:  # noqa: BLE001 — already reset by the pod
                pass

    async def stats(self) -> dict:
        now = time.time()
        ts = _rfc3339(now)
        pods, node_cpu, node_mem, node_ws = [], 0, 0, 0
        for inst in self.mgr.list():
            if inst.phase in ("Succeeded", "Failed"):
                continue
            try:
                usage = self.mgr.stats(inst.uid)
            except KeyError:
                continue
            containers, p_cpu_ns, p_rate, p_mem, p_ws = [], 0, 0, 0, 0
            for cname, s in usage.items():
                rec = inst.records[cname]
                key = f"{inst.uid}/{rec.cid}"
                prev = self._cpu_samples.get(key)
                rate = 0
                if prev is not None and now > prev[1]:
                    rate = int(max(0, s["cpu_ns"] - prev[0]) / (now - prev[1]))
                self._cpu_samples[key] = (s["cpu_ns"], now)
                containers.append({
                    "name": cname, "startTime": _rfc3339(rec.started_at or now),
                    "cpu": {"time": ts, "usageNanoCores": rate, "usageCoreNanoSeconds": s["cpu_ns"]},
                    "memory": {"time": ts, "usageBytes": s["memory_usage"],
                               "workingSetBytes": s["working_set"], "rssBytes": s["rss"]}})
                p_cpu_ns += s["cpu_ns"]
                p_rate += rate
                p_mem += s["memory_usage"]
                p_ws += s["working_set"]
            m = inst.pod["metadata"]
            pods.append({"podRef": {"name": m["name"], "namespace": m["namespace"], "uid": inst.uid},
                         "startTime": _rfc3339(inst.start_time or now), "containers": containers,
                         "cpu": {"time": ts, "usageNanoCores": p_rate, "usageCoreNanoSeconds": p_cpu_ns},
                         "memory": {"time": ts, "usageBytes": p_mem, "workingSetBytes": p_ws}})
            node_cpu += p_rate
            node_mem += p_mem
            node_ws += p_ws
        live = {f"{i.uid}/{r.cid}" for i in self.mgr.list() for r in i.records.values()}
        for k in [k for k in self._cpu_samples if k not in live]:
            del self._cpu_samples[k]
        return {"node": {"cpu": {"time": ts, "usageNanoCores": node_cpu},
                         "memory": {"time": ts, "usageBytes": node_mem, "workingSetBytes": node_ws}},
                "pods": pods}


__all__ = ["LocalProvider", "ApiSources"]
