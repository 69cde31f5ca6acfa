"""Pod spec + container spec + image config -> OCI runtime spec (``config.json``).

A pure function (:func:`build_spec`) plus the small helpers kubelet semantics need:
command/args merging with ENTRYPOINT/CMD, ``$(VAR)`` expansion, user resolution,
capabilities, the RuntimeDefault-style seccomp profile and cgroup resources computed
the way kubelet computes them. Refused pod features raise :class:`Unsupported`.
"""
from __future__ import annotations

import platform
from dataclasses import dataclass, field

from skube.api.quantity import cpu_millis, memory_bytes


class ConfigError(Exception):
    """The container cannot be configured (kubelet: CreateContainerConfigError)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


class Unsupported(ConfigError):
    """The pod asks for something this runtime refuses (privileged, host namespaces…)."""


# containerd/CRI-O default capability set (what kubelet pods get when nothing is added/dropped)
DEFAULT_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
ALL_CAPABILITIES = DEFAULT_CAPABILITIES + [
    "CAP_DAC_READ_SEARCH", "CAP_LINUX_IMMUTABLE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_LEASE", "CAP_AUDIT_CONTROL", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]

# Syscalls the RuntimeDefault-style profile denies (EPERM) unless a capability that
# legitimately needs them was added: the docker/containerd default profile, as a deny list.
_DENIED_SYSCALLS: dict[str, list[str]] = {
    "": ["add_key", "keyctl", "request_key", "kcmp", "kexec_file_load", "kexec_load",
         "lookup_dcookie", "nfsservctl", "get_kernel_syms", "query_module", "uselib",
         "ustat", "sysfs", "_sysctl", "vm86", "vm86old", "userfaultfd", "perf_event_open",
         "open_by_handle_at", "name_to_handle_at", "bpf", "fsopen", "fsconfig", "fsmount",
         "fspick", "move_mount", "open_tree", "mbind", "set_mempolicy", "get_mempolicy",
         "move_pages", "swapon", "swapoff", "quotactl", "quotactl_fd"],
    "CAP_SYS_ADMIN": ["mount", "mount_setattr", "umount", "umount2", "unshare", "setns",
                      "pivot_root", "clone3", "setdomainname", "sethostname", "iopl",
                      "ioperm"],
    "CAP_SYS_MODULE": ["init_module", "finit_module", "delete_module", "create_module"],
    "CAP_SYS_BOOT": ["reboot"],
    "CAP_SYS_PTRACE": ["ptrace", "process_vm_readv", "process_vm_writev"],
    "CAP_SYS_TIME": ["settimeofday", "stime", "clock_settime", "clock_settime64", "adjtimex",
                     "clock_adjtime", "clock_adjtime64"],
    "CAP_SYS_PACCT": ["acct"],
}

MASKED_PATHS = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                "/sys/firmware", "/sys/devices/virtual/powercap"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MIN_SHARES, MAX_SHARES, SHARES_PER_CPU = 2, 262144, 1024
QUOTA_PERIOD, MIN_QUOTA = 100_000, 1000


@dataclass
class Mount:
    """A volume mount already resolved by the caller to a host path (subPath applied)."""
    host_path: str
    container_path: str
    read_only: bool = False
    propagation: str = "rprivate"


@dataclass
class ContainerContext:
    """Where the sandbox and the container's files live on the host."""
    rootfs: str
    cgroups_path: str
    netns_path: str | None = None
    ipc_ns_path: str | None = None
    uts_ns_path: str | None = None
    pid_ns_path: str | None = None       # set when the pod shares its process namespace
    hostname: str = ""
    hosts_path: str | None = None
    resolv_path: str | None = None
    hostname_path: str | None = None
    shm_path: str | None = None
    termination_log_path: str | None = None
    mounts: list[Mount] = field(default_factory=list)
    resolved_env: dict[str, str] = field(default_factory=dict)      # valueFrom results by name
    env_from: list[tuple[str, str]] = field(default_factory=list)   # envFrom results, in order
    passwd: str | None = None            # the image's /etc/passwd text (named users)
    group: str | None = None             # the image's /etc/group text
    memory_capacity: int = 0             # node memory, for the OOM score of Burstable pods
    cgroup_namespace: bool = False       # private cgroup namespace (cgroup v2 hosts)
    oom_score_adj: int | None = None     # override (e.g. the sandbox)
    oom_score_floor: int = -1000         # lowest value this host lets us set (no CAP_SYS_RESOURCE)


# ---- pure helpers ------------------------------------------------------------------------

def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: ``$$`` escapes, unknown references stay verbatim."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == "$" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2:end]
                    if name in env:
                        out.append(env[name])
                    else:
                        out.append(text[i:end + 1])
                    i = end + 1
                    continue
                out.append(text[i:])
                break
            out.append(c)
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def container_env(container: dict, image_config: dict, ctx: ContainerContext) -> list[str]:
    """``NAME=value`` list: image Env, then envFrom, then env (later wins, order kept),
    each container value ``$(VAR)``-expanded against the container variables before it."""
    merged: dict[str, str] = {}
    for item in image_config.get("Env") or []:
        k, _, v = item.partition("=")
        merged[k] = v
    ours: dict[str, str] = {}
    for k, v in ctx.env_from:
        merged[k] = ours[k] = v
    for e in container.get("env") or []:
        name = e["name"]
        if "valueFrom" in e:
            if name not in ctx.resolved_env:
                raise ConfigError("CreateContainerConfigError",
                                  f"env var {name!r}: valueFrom was not resolved")
            v = ctx.resolved_env[name]
        else:
            v = expand(e.get("value", "") or "", ours)
        merged[name] = ours[name] = v
    merged.setdefault("PATH", DEFAULT_PATH)
    if ctx.hostname:
        merged.setdefault("HOSTNAME", ctx.hostname)
    return [f"{k}={v}" for k, v in merged.items()]


def command_line(container: dict, image_config: dict, env: list[str]) -> list[str]:
    """The process args as Docker/kubelet merge them: ``command`` replaces ENTRYPOINT (and
    drops CMD), ``args`` replaces CMD; ``$(VAR)`` expanded in both."""
    envmap = dict(e.partition("=")[::2] for e in env)
    # kubelet expands only with the container's declared env, but image Env entries that were
    # not overridden are equally visible to the process; upstream uses container env only.
    cmd = container.get("command") or []
    args = container.get("args") or []
    cmd = [expand(c, envmap) for c in cmd]
    args = [expand(a, envmap) for a in args]
    if cmd:
        argv = cmd + args
    elif args:
        argv = list(image_config.get("Entrypoint") or []) + args
    else:
        argv = list(image_config.get("Entrypoint") or []) + list(image_config.get("Cmd") or [])
    if not argv:
        raise ConfigError("CreateContainerError", "no command specified")
    return argv


def _lookup(text: str | None, name: str, idx: int) -> tuple[int, int] | None:
    for line in (text or "").splitlines():
        parts = line.split(":")
        if len(parts) > 3 and parts[0] == name:
            try:
                return int(parts[2]), (int(parts[3]) if idx == 3 else 0)
            except ValueError:
                return None
    return None


def _uid_entry(text: str | None, uid: int) -> int | None:
    for line in (text or "").splitlines():
        parts = line.split(":")
        if len(parts) > 3 and parts[2] == str(uid):
            try:
                return int(parts[3])
            except ValueError:
                return None
    return None


def resolve_user(pod: dict, container: dict, image_config: dict,
                 ctx: ContainerContext) -> dict:
    """OCI ``process.user``: runAsUser/runAsGroup (container over pod) over image User."""
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    csc = container.get("securityContext") or {}
    uid = csc.get("runAsUser", psc.get("runAsUser"))
    gid = csc.get("runAsGroup", psc.get("runAsGroup"))
    image_user = (image_config.get("User") or "").strip()
    image_uid = image_gid = None
    if image_user:
        u, _, g = image_user.partition(":")
        if u.isdigit():
            image_uid = int(u)
        else:
            found = _lookup(ctx.passwd, u, 3)
            if found is None:
                raise ConfigError("CreateContainerError",
                                  f"unable to find user {u}: no matching entries in passwd file")
            image_uid, image_gid = found
        if g:
            if g.isdigit():
                image_gid = int(g)
            else:
                found = _lookup(ctx.group, g, 2)
                if found is None:
                    raise ConfigError("CreateContainerError",
                                      f"unable to find group {g}: no matching entries in group file")
                image_gid = found[0]
    if uid is None:
        uid = image_uid if image_uid is not None else 0
    if gid is None:
        if image_gid is not None and (csc.get("runAsUser", psc.get("runAsUser")) is None
                                      or image_uid == uid):
            gid = image_gid
        else:
            gid = _uid_entry(ctx.passwd, uid) or 0
    non_root = csc.get("runAsNonRoot", psc.get("runAsNonRoot"))
    if non_root and uid == 0:
        raise ConfigError("CreateContainerConfigError",
                          "container has runAsNonRoot and image will run as root")
    extra = [int(g) for g in psc.get("supplementalGroups") or []]
    if psc.get("fsGroup") is not None:
        extra.append(int(psc["fsGroup"]))
    user = {"uid": int(uid), "gid": int(gid)}
    if extra:
        user["additionalGids"] = sorted(set(extra))
    return user


def capabilities(container: dict) -> dict:
    """Default set plus ``add`` minus ``drop`` (``ALL`` understood on both sides)."""
    caps = (container.get("securityContext") or {}).get("capabilities") or {}
    norm = lambda c: c.upper() if c.upper().startswith("CAP_") else "CAP_" + c.upper()
    add = [norm(c) for c in caps.get("add") or []]
    drop = [norm(c) for c in caps.get("drop") or []]
    have = list(ALL_CAPABILITIES) if "CAP_ALL" in add else list(DEFAULT_CAPABILITIES)
    for c in add:
        if c != "CAP_ALL" and c not in have:
            have.append(c)
    if "CAP_ALL" in drop:
        have = [c for c in add if c != "CAP_ALL"]
    else:
        have = [c for c in have if c not in drop]
    return {"bounding": list(have), "effective": list(have), "permitted": list(have)}


def seccomp_profile(pod: dict, container: dict, caps: list[str]) -> dict | None:
    """RuntimeDefault (also the default when nothing is asked) or None for Unconfined."""
    prof = ((container.get("securityContext") or {}).get("seccompProfile")
            or ((pod.get("spec") or {}).get("securityContext") or {}).get("seccompProfile")
            or {"type": "RuntimeDefault"})
    kind = prof.get("type")
    if kind == "Unconfined":
        return None
    if kind == "Localhost":
        raise Unsupported("Unsupported", "Localhost seccomp profiles are not supported")
    denied: list[str] = []
    for cap, names in _DENIED_SYSCALLS.items():
        if not cap or cap not in caps:
            denied.extend(names)
    rules = [{"names": sorted(denied), "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    if "CAP_SYS_ADMIN" not in caps:
        # clone(2) creating a user namespace is the classic escape vector: deny that flag
        # (OCI MASKED_EQ: value is the mask, valueTwo the datum); clone3 flags live in a
        # struct seccomp cannot inspect, so it answers ENOSYS and libc falls back to clone.
        rules[0]["names"].remove("clone3")
        rules.append({"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                      "args": [{"index": 1 if platform.machine() == "s390x" else 0,
                                "value": 0x10000000, "valueTwo": 0x10000000,
                                "op": "SCMP_CMP_MASKED_EQ"}]})
        rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38})
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}


def _quantity(res: dict, kind: str, name: str) -> str | None:
    return ((res or {}).get(kind) or {}).get(name)


def qos_class(pod: dict) -> str:
    """Guaranteed / Burstable / BestEffort as kubelet's GetPodQOS computes it."""
    conts = list((pod.get("spec") or {}).get("containers") or []) + \
        list((pod.get("spec") or {}).get("initContainers") or [])
    any_set = False
    guaranteed = True
    for c in conts:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            lv = lim.get(r)
            rv = req.get(r, lv)
            if lv is None or rv is None or str(lv) != str(rv):
                if lv is None or rv is None or _cmp(r, lv) != _cmp(r, rv):
                    guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _cmp(resource: str, q: str) -> int:
    return cpu_millis(q) if resource == "cpu" else memory_bytes(q)


def oom_score_adj(pod: dict, container: dict, memory_capacity: int) -> int:
    """kubelet's GetContainerOOMScoreAdjust."""
    qos = qos_class(pod)
    if qos == "Guaranteed":
        return -997
    if qos == "BestEffort":
        return 1000
    req = _quantity(container.get("resources"), "requests", "memory")
    if req is None or not memory_capacity:
        return 999
    adj = 1000 - (1000 * memory_bytes(req)) // memory_capacity
    return int(min(max(adj, 2), 999))


def resources(container: dict) -> dict:
    """``linux.resources``: cpu shares/quota/period and memory limit as kubelet sets them."""
    res = container.get("resources") or {}
    cpu_req = _quantity(res, "requests", "cpu") or _quantity(res, "limits", "cpu")
    cpu_lim = _quantity(res, "limits", "cpu")
    mem_lim = _quantity(res, "limits", "memory")
    shares = MIN_SHARES
    if cpu_req is not None:
        shares = max(MIN_SHARES, min(MAX_SHARES, cpu_millis(cpu_req) * SHARES_PER_CPU // 1000))
    cpu: dict = {"shares": shares}
    if cpu_lim is not None and cpu_millis(cpu_lim) > 0:
        cpu["quota"] = max(MIN_QUOTA, cpu_millis(cpu_lim) * QUOTA_PERIOD // 1000)
        cpu["period"] = QUOTA_PERIOD
    out: dict = {"devices": [{"allow": False, "access": "rwm"}], "cpu": cpu}
    if mem_lim is not None and memory_bytes(mem_lim) > 0:
        out["memory"] = {"limit": memory_bytes(mem_lim)}
    return out


def check_supported(pod: dict, container: dict | None = None) -> None:
    """Raise :class:`Unsupported` for what a shared elastic instance host must refuse."""
    spec = pod.get("spec") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            raise Unsupported("Unsupported", f"{key} is not supported on elastic instances")
    if (spec.get("hostUsers") is False):
        pass  # user namespaces: accepted but not applied
    for vol in spec.get("volumes") or []:
        if "hostPath" in vol:
            raise Unsupported("Unsupported",
                              f"volume {vol.get('name')!r}: hostPath volumes are not supported")
    conts = [container] if container else (list(spec.get("initContainers") or [])
                                           + list(spec.get("containers") or []))
    for c in conts:
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            raise Unsupported("Unsupported",
                              f"container {c.get('name')!r}: privileged containers are not supported")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                raise Unsupported("Unsupported",
                                  f"container {c.get('name')!r}: hostPort is not supported")


# ---- the spec ----------------------------------------------------------------------------

def _bind(dst: str, src: str, ro: bool, extra: tuple = ()) -> dict:
    opts = ["rbind", "ro" if ro else "rw", *extra]
    return {"destination": dst, "type": "bind", "source": src, "options": opts}


def build_spec(pod: dict, container: dict, image_config: dict, ctx: ContainerContext) -> dict:
    """The OCI runtime spec for one container of ``pod`` (``image_config`` is the image's
    config object: Entrypoint/Cmd/Env/WorkingDir/User)."""
    check_supported(pod, container)
    image_config = image_config or {}
    sc = container.get("securityContext") or {}
    env = container_env(container, image_config, ctx)
    args = command_line(container, image_config, env)
    user = resolve_user(pod, container, image_config, ctx)
    caps = capabilities(container)
    allow_esc = sc.get("allowPrivilegeEscalation", True)
    process = {
        "terminal": bool(container.get("tty")),
        "user": user,
        "args": args,
        "env": env,
        "cwd": container.get("workingDir") or image_config.get("WorkingDir") or "/",
        "capabilities": caps,
        "noNewPrivileges": not allow_esc,
        "oomScoreAdj": max(ctx.oom_score_floor,
                           ctx.oom_score_adj if ctx.oom_score_adj is not None
                           else oom_score_adj(pod, container, ctx.memory_capacity)),
    }
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ]
    if ctx.shm_path:
        mounts.append(_bind("/dev/shm", ctx.shm_path, False, ("nosuid", "nodev", "noexec")))
    else:
        mounts.append({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                       "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]})
    user_paths = {m.container_path.rstrip("/") or "/" for m in ctx.mounts}
    for dst, src in (("/etc/hosts", ctx.hosts_path), ("/etc/resolv.conf", ctx.resolv_path),
                     ("/etc/hostname", ctx.hostname_path)):
        if src and dst not in user_paths:
            mounts.append(_bind(dst, src, False))
    term_path = container.get("terminationMessagePath") or "/dev/termination-log"
    if ctx.termination_log_path and term_path not in user_paths:
        mounts.append(_bind(term_path, ctx.termination_log_path, False))
    for m in ctx.mounts:
        prop = {"None": "rprivate", "HostToContainer": "rslave",
                "Bidirectional": "rshared"}.get(m.propagation, m.propagation or "rprivate")
        if prop == "rshared":
            raise Unsupported("Unsupported", "Bidirectional mount propagation is not supported")
        mounts.append(_bind(m.container_path, m.host_path, m.read_only, (prop,)))

    namespaces = [{"type": "mount"}]
    for kind, path in (("network", ctx.netns_path), ("ipc", ctx.ipc_ns_path),
                       ("uts", ctx.uts_ns_path), ("pid", ctx.pid_ns_path)):
        namespaces.append({"type": kind, "path": path} if path else {"type": kind})
    if ctx.cgroup_namespace:
        namespaces.append({"type": "cgroup"})

    linux: dict = {
        "namespaces": namespaces,
        "cgroupsPath": ctx.cgroups_path,
        "resources": resources(container),
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
    }
    seccomp = seccomp_profile(pod, container, caps["bounding"])
    if seccomp is not None:
        linux["seccomp"] = seccomp
    spec = {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": ctx.rootfs, "readonly": bool(sc.get("readOnlyRootFilesystem"))},
        "mounts": mounts,
        "linux": linux,
        "annotations": {
            "io.kubernetes.pod.uid": (pod.get("metadata") or {}).get("uid", ""),
            "io.kubernetes.pod.name": (pod.get("metadata") or {}).get("name", ""),
            "io.kubernetes.pod.namespace": (pod.get("metadata") or {}).get("namespace", ""),
            "io.kubernetes.container.name": container.get("name", ""),
        },
    }
    if ctx.uts_ns_path is None and ctx.hostname:
        spec["hostname"] = ctx.hostname
    return spec


def sandbox_spec(rootfs: str, holder: str, *, hostname: str, netns_path: str,
                 cgroups_path: str, share_pid: bool, cgroup_namespace: bool = False,
                 oom_score_floor: int = -1000) -> dict:
    """The pod's holder ("pause") container: owns the IPC, UTS (and shared PID) namespaces."""
    ns = [{"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "pid"},
          {"type": "network", "path": netns_path}]
    if cgroup_namespace:
        ns.append({"type": "cgroup"})
    return {
        "ociVersion": "1.0.2",
        "process": {"terminal": False, "user": {"uid": 65535, "gid": 65535},
                    "args": [holder, "-P"], "env": ["PATH=/"], "cwd": "/",
                    "capabilities": {"bounding": [], "effective": [], "permitted": []},
                    "noNewPrivileges": True, "oomScoreAdj": max(-998, oom_score_floor)},
        "root": {"path": rootfs, "readonly": True},
        "hostname": hostname,
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc",
                    "options": ["nosuid", "noexec", "nodev"]},
                   {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}],
        "linux": {"namespaces": ns, "cgroupsPath": cgroups_path,
                  "resources": {"devices": [{"allow": False, "access": "rwm"}],
                                "cpu": {"shares": MIN_SHARES}},
                  "maskedPaths": list(MASKED_PATHS), "readonlyPaths": list(READONLY_PATHS)},
    }


__all__ = ["ConfigError", "Unsupported", "Mount", "ContainerContext", "build_spec",
           "sandbox_spec", "expand", "command_line", "container_env", "resolve_user",
           "capabilities", "seccomp_profile", "resources", "qos_class", "oom_score_adj",
           "check_supported", "DEFAULT_CAPABILITIES"]
