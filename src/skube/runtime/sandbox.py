"""Pod sandboxes: network namespace + CNI (bridge/host-local/loopback), the pod's files
(hostname, /etc/hosts, /etc/resolv.conf, shared /dev/shm) and a holder process.

The holder is a runc container running ``catatonit -P`` (a static pause binary from
Debian) from a tiny read-only rootfs; it owns the pod's IPC and UTS namespaces (and the PID
namespace when ``shareProcessNamespace``) which the app containers join by path. The
network namespace is a named one (``/run/netns/skube-<uid>``) so it outlives every process.
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from skube.runtime import cgroups
from skube.runtime.oci import sandbox_spec
from skube.runtime.runc import Runc, RuncError

NETNS_DIR = Path("/run/netns")
CNI_BIN = Path("/usr/lib/cni")


def oom_score_floor() -> int:
    """Our own oom_score_adj: without CAP_SYS_RESOURCE nothing lower can be set."""
    try:
        return int(Path("/proc/self/oom_score_adj").read_text())
    except (OSError, ValueError):
        return -1000


class SandboxError(Exception):
    pass


@dataclass
class NetworkConfig:
    """How pods are networked. ``default_route`` gives pods a route out through the bridge
    (off by default: pods reach each other and the host, nothing else)."""
    cidr: str = "10.42.0.0/16"
    bridge: str = "skube0"
    name: str = "skube"
    cni_bin: str = str(CNI_BIN)
    default_route: bool = False
    mtu: int | None = None
    cluster_dns: list[str] = field(default_factory=list)
    cluster_domain: str = "cluster.local"
    service_cidr: str = ""          # routed through the bridge when there is no default route
    range_start: str = ""           # this node's slice of the shared CIDR (host-local rangeStart)
    range_end: str = ""             # … and rangeEnd; empty: the whole CIDR
    host_resolv_conf: str = "/etc/resolv.conf"
    shm_size: str = "64m"


@dataclass
class SandboxState:
    """What is persisted about a sandbox (enough to adopt or tear it down later)."""
    pod_uid: str
    dir: str
    netns: str
    holder_id: str
    holder_pid: int = 0
    ip: str = ""
    gateway: str = ""
    hostname: str = ""
    share_pid: bool = False

    @property
    def netns_path(self) -> str:
        return str(NETNS_DIR / self.netns)

    def ns_path(self, kind: str) -> str:
        return f"/proc/{self.holder_pid}/ns/{kind}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SandboxState":
        return cls(**d)


async def _run(*argv: str, input: bytes | None = None, env: dict | None = None,
               check: bool = True) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await proc.communicate(input)
    if check and proc.returncode != 0:
        raise SandboxError(f"{' '.join(argv[:3])}: {(err or out).decode(errors='replace').strip()}")
    return proc.returncode, out, err


def hostname_of(pod: dict) -> str:
    spec = pod.get("spec") or {}
    return (spec.get("hostname") or pod["metadata"]["name"])[:63].rstrip("-.")


def hosts_file(pod: dict, ip: str, cluster_domain: str) -> str:
    """The kubelet-managed /etc/hosts."""
    spec = pod.get("spec") or {}
    host = hostname_of(pod)
    lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet",
             "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    if ip:
        if spec.get("subdomain"):
            ns = pod["metadata"].get("namespace", "default")
            fqdn = f"{host}.{spec['subdomain']}.{ns}.svc.{cluster_domain}"
            lines.append(f"{ip}\t{fqdn}\t{host}")
        else:
            lines.append(f"{ip}\t{host}")
    aliases = spec.get("hostAliases") or []
    if aliases:
        lines.append("")
        lines.append("# Entries added by HostAliases.")
        for a in aliases:
            lines.append(f"{a['ip']}\t" + "\t".join(a.get("hostnames") or []))
    return "\n".join(lines) + "\n"


def _parse_resolv(text: str) -> tuple[list[str], list[str], list[str]]:
    ns, search, opts = [], [], []
    for line in text.splitlines():
        f = line.split("#", 1)[0].split()
        if not f:
            continue
        if f[0] == "nameserver" and len(f) > 1:
            ns.append(f[1])
        elif f[0] == "search":              # kubelet: the last line wins; trailing dots and "." dropped
            search = [d.rstrip(".") for d in f[1:] if d != "."]
        elif f[0] == "options":
            opts.extend(f[1:])
    return ns, search, opts


def resolv_conf(pod: dict, cfg: NetworkConfig, host_resolv: str = "") -> str:
    """/etc/resolv.conf for dnsPolicy (ClusterFirst, Default, None) + dnsConfig, as kubelet."""
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    host_ns, host_search, host_opts = _parse_resolv(host_resolv)
    ns_list: list[str]
    search: list[str]
    opts: list[str]
    if policy == "None":
        ns_list, search, opts = [], [], []
    elif cfg.cluster_dns and (policy == "ClusterFirstWithHostNet"
                              or (policy == "ClusterFirst" and not spec.get("hostNetwork"))):
        namespace = pod["metadata"].get("namespace", "default")
        d = cfg.cluster_domain
        ns_list = list(cfg.cluster_dns)
        search = list(dict.fromkeys([f"{namespace}.svc.{d}", f"svc.{d}", d] + host_search))
        opts = ["ndots:5"]
    else:                                   # Default, ClusterFirst on the host network or without cluster DNS
        ns_list, search, opts = host_ns, host_search, host_opts
    dc = spec.get("dnsConfig") or {}
    for n in dc.get("nameservers") or []:
        if n not in ns_list:
            ns_list.append(n)
    for s in dc.get("searches") or []:
        if s not in search:
            search.append(s)
    merged: dict[str, str] = {}
    for o in opts:
        k, _, v = o.partition(":")
        merged[k] = o
    for o in dc.get("options") or []:
        name = o["name"]
        merged[name] = f"{name}:{o['value']}" if o.get("value") not in (None, "") else name
    out = [f"nameserver {n}" for n in ns_list[:3]]
    if search:
        out.append("search " + " ".join(search[:32]))
    if merged:
        out.append("options " + " ".join(merged.values()))
    return "\n".join(out) + "\n"


class SandboxManager:
    """Creates and destroys pod sandboxes under ``data_dir``."""

    def __init__(self, data_dir: Path | str, runc: Runc, net: NetworkConfig | None = None,
                 holder_binary: str | None = None):
        self.data_dir = Path(data_dir)
        self.runc = runc
        self.net = net or NetworkConfig()
        self.ipam_dir = self.data_dir / "cni" / "ipam"
        self.holder_binary = holder_binary or shutil.which("catatonit") or "/usr/bin/catatonit"
        self._holder_rootfs: Path | None = None

    # ---- CNI --------------------------------------------------------------------------

    def _bridge_conf(self) -> dict:
        n = self.net
        rng = {"subnet": n.cidr}
        rng.update({k: v for k, v in (("rangeStart", n.range_start), ("rangeEnd", n.range_end)) if v})
        ipam: dict = {"type": "host-local", "ranges": [[rng]], "dataDir": str(self.ipam_dir)}
        if n.service_cidr and not n.default_route:
            ipam["routes"] = [{"dst": n.service_cidr}]
        conf = {"cniVersion": "1.0.0", "name": n.name, "type": "bridge", "bridge": n.bridge,
                "isGateway": True, "isDefaultGateway": bool(n.default_route),
                "ipMasq": bool(n.default_route), "hairpinMode": True, "ipam": ipam}
        if n.mtu:
            conf["mtu"] = n.mtu
        return conf

    def _loopback_conf(self) -> dict:
        return {"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}

    async def _cni(self, command: str, conf: dict, cid: str, netns: str, ifname: str) -> dict:
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": netns,
               "CNI_IFNAME": ifname, "CNI_PATH": self.net.cni_bin,
               "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
        plugin = str(Path(self.net.cni_bin) / conf["type"])
        rc, out, err = await _run(plugin, input=json.dumps(conf).encode(), env=env, check=False)
        if rc != 0:
            try:
                msg = json.loads(out).get("msg", "")
            except ValueError:
                msg = (out or err).decode(errors="replace")
            raise SandboxError(f"CNI {conf['type']} {command} failed: {msg}")
        return json.loads(out) if out.strip() else {}

    async def allocated_ips(self) -> list[str]:
        d = self.ipam_dir / self.net.name
        if not d.is_dir():
            return []
        out = []
        for p in d.iterdir():
            try:
                ipaddress.ip_address(p.name)
                out.append(p.name)
            except ValueError:
                pass
        return out

    # ---- holder -----------------------------------------------------------------------

    def _holder_root(self) -> Path:
        if self._holder_rootfs is None:
            root = self.data_dir / "holder" / "rootfs"
            if not (root / "catatonit").exists():
                for d in ("proc", "dev", "etc"):
                    (root / d).mkdir(parents=True, exist_ok=True)
                tmp = root / "catatonit.tmp"
                shutil.copy2(self.holder_binary, tmp)
                os.replace(tmp, root / "catatonit")
            self._holder_rootfs = root
        return self._holder_rootfs

    # ---- lifecycle --------------------------------------------------------------------

    def pod_dir(self, pod_uid: str) -> Path:
        return self.data_dir / "pods" / pod_uid

    def planned(self, pod: dict) -> SandboxState:
        """The sandbox :meth:`create` makes for ``pod``: its names derive from the pod's uid
        alone, so a half-created one can be found and torn down after a crash."""
        uid = pod["metadata"]["uid"]
        spec = pod.get("spec") or {}
        return SandboxState(pod_uid=uid, dir=str(self.pod_dir(uid)), netns=f"skube-{uid}",
                            holder_id=f"{uid}-sandbox", hostname=hostname_of(pod),
                            share_pid=bool(spec.get("shareProcessNamespace")))

    async def create(self, pod: dict) -> SandboxState:
        """Network namespace, CNI, pod files, /dev/shm and the holder; undone on failure."""
        st = self.planned(pod)
        uid, pdir = st.pod_uid, Path(st.dir)
        pdir.mkdir(parents=True, exist_ok=True)
        try:
            if not Path(st.netns_path).exists():
                await _run("ip", "netns", "add", st.netns)
            await self._cni("ADD", self._loopback_conf(), uid, st.netns_path, "lo")
            res = await self._cni("ADD", self._bridge_conf(), uid, st.netns_path, "eth0")
            for ipc in res.get("ips") or []:
                addr = ipc["address"].split("/")[0]
                if ipaddress.ip_address(addr).version == 4 or not st.ip:
                    st.ip, st.gateway = addr, ipc.get("gateway", "")
            self.write_files(pod, st)
            shm = pdir / "shm"
            shm.mkdir(exist_ok=True)
            if not os.path.ismount(shm):
                await _run("mount", "-t", "tmpfs", "-o",
                           f"nosuid,nodev,noexec,mode=1777,size={self.net.shm_size}", "shm", str(shm))
            bundle = pdir / "sandbox"
            bundle.mkdir(exist_ok=True)
            cfg = sandbox_spec(str(self._holder_root()), "/catatonit", hostname=st.hostname,
                               netns_path=st.netns_path,
                               cgroups_path=cgroups.container_path(uid, st.holder_id),
                               share_pid=st.share_pid, cgroup_namespace=cgroups.version() == 2,
                               oom_score_floor=oom_score_floor())
            (bundle / "config.json").write_text(json.dumps(cfg))
            await self.runc.delete(st.holder_id, force=True)
            st.holder_pid = await self.runc.run_detached(st.holder_id, bundle)
        except BaseException:
            await self.destroy(st)
            raise
        return st

    def write_files(self, pod: dict, st: SandboxState) -> None:
        pdir = Path(st.dir)
        try:
            host_resolv = Path(self.net.host_resolv_conf).read_text()
        except OSError:
            host_resolv = ""
        (pdir / "hostname").write_text(st.hostname + "\n")
        (pdir / "hosts").write_text(hosts_file(pod, st.ip, self.net.cluster_domain))
        (pdir / "resolv.conf").write_text(resolv_conf(pod, self.net, host_resolv))

    async def alive(self, st: SandboxState) -> bool:
        state = await self.runc.state(st.holder_id)
        return bool(state and state.get("status") == "running" and state.get("pid") == st.holder_pid)

    async def destroy(self, st: SandboxState) -> None:
        """Tear everything down; idempotent and tolerant of half-created sandboxes."""
        errors = []
        try:
            await self.runc.delete(st.holder_id, force=True)
        except RuncError as e:
            errors.append(str(e))
        if Path(st.netns_path).exists():
            for conf, ifname in ((self._bridge_conf(), "eth0"), (self._loopback_conf(), "lo")):
                try:
                    await self._cni("DEL", conf, st.pod_uid, st.netns_path, ifname)
                except SandboxError as e:
                    errors.append(str(e))
            rc, _, err = await _run("ip", "netns", "delete", st.netns, check=False)
            if rc != 0 and Path(st.netns_path).exists():
                errors.append(err.decode(errors="replace"))
        else:   # the namespace is gone: still release the address
            try:
                await self._cni("DEL", self._bridge_conf(), st.pod_uid, "", "eth0")
            except SandboxError as e:
                errors.append(str(e))
        shm = Path(st.dir) / "shm"
        if os.path.ismount(shm):
            await _run("umount", "-l", str(shm), check=False)
        cgroups.remove(cgroups.pod_path(st.pod_uid))
        if errors:
            raise SandboxError("; ".join(errors))


__all__ = ["oom_score_floor", "SandboxManager", "SandboxState", "NetworkConfig", "SandboxError", "hosts_file",
           "resolv_conf", "hostname_of"]
