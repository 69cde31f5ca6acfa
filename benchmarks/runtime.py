"""Instance runtime on this host (issue 3): pod start latency, burst start, memory per pod.

Real runc containers under conmon, through :class:`skube.runtime.instance.InstanceManager`
with a ``prepare`` hook built the way the local provider builds it (ImageService pull with
IfNotPresent + ``prepare_rootfs``). The image is the host-busybox image of
:mod:`skube.runtime.images.builtin`, imported into a temporary image store first, so every
pull is a cache hit. Each pod has one container running ``sleep 3600``.

Figures:

* ``create_to_running_p50_s`` / ``_p99_s``: ``InstanceManager.create`` called -> the
  container is running (``runc start`` returned), over ``--pods`` pods created one after
  another (each waits for the previous one). Targets <= 0.3 s and <= 1 s.
* ``burst_all_running_s``: ``--pods`` pods created at once -> all running. Target <= 10 s.
* ``runtime_rss_per_pod_MB``: RSS of this Python process (the runtime) with ``--pods``
  running pods minus before any, divided by the number of pods. Target <= 2 MB. The
  per-pod conmon monitors (``conmon_rss_per_pod_MB``, and their PSS, which does not count
  the shared libraries again for every pod) and the sandbox holders (catatonit) are
  reported apart.
* pull throughput is ``benchmarks/runtime_pull.py``'s (key ``pull_throughput``).

It uses its own bridge (``skbench0``) and CIDR (10.199.0.0/16) and a temporary data dir,
so it never touches a running cluster's pods, and removes everything it made (pods,
network namespaces, mounts, cgroups, the bridge) even when it fails or is interrupted.

    sudo .venv/bin/python benchmarks/runtime.py [--pods 100] [--timeout 600]

Needs root, runc, conmon, catatonit, /bin/busybox and the CNI plugins in /usr/lib/cni.
Progress on stderr; one JSON line on stdout at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from skube.runtime import cgroups
from skube.runtime.images import ImageService
from skube.runtime.images.builtin import ensure_busybox
from skube.runtime.images.service import host_platform
from skube.runtime.instance import Instance, InstanceManager, Prepared
from skube.runtime.sandbox import NetworkConfig

BRIDGE = "skbench0"
CIDR = "10.199.0.0/16"
NET_NAME = "skbench"
TARGETS = {"create_to_running_p50_s": 0.3, "create_to_running_p99_s": 1.0,
           "burst_all_running_s": 10.0, "runtime_rss_per_pod_MB": 2.0}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def percentile(xs: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(xs)
    k = max(0, min(len(s) - 1, -(-len(s) * p // 100) - 1))
    return s[int(k)]


def proc_kb(pid: int | str, field: str, file: str = "status") -> int:
    """A ``kB`` field of /proc/<pid>/status or smaps_rollup (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/{file}") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def self_rss_kb() -> int:
    gc.collect()
    return proc_kb("self", "VmRSS")


def check_host() -> None:
    missing = [b for b in ("runc", "conmon", "catatonit", "busybox") if not shutil.which(b)]
    if os.geteuid() != 0:
        raise SystemExit("benchmarks/runtime.py needs root (runc, network namespaces, mounts)")
    if missing or not Path("/usr/lib/cni/bridge").exists():
        raise SystemExit(f"missing: {missing or ''} {'' if Path('/usr/lib/cni/bridge').exists() else 'CNI plugins'}")


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="skbench-rt-", dir="/tmp"))
        self.net = NetworkConfig(cidr=CIDR, bridge=BRIDGE, name=NET_NAME)
        self.images: ImageService | None = None
        self.mgr: InstanceManager | None = None
        self.image = ""
        self.uids: set[str] = set()                      # every pod this run made
        self.t_create: dict[str, float] = {}
        self.t_running: dict[str, float] = {}
        self.t_sandbox: dict[str, float] = {}               # sandbox ready (netns, CNI, holder)
        self.leftovers: dict = {}
        self.waiters: dict[str, asyncio.Future] = {}

    # ---- setup ----------------------------------------------------------------------------

    async def setup(self) -> None:
        self.images = ImageService(self.tmp, rootfs_mode="auto")
        t = time.perf_counter()
        self.image = await ensure_busybox(self.images, host_platform()[1])
        if not self.image:
            raise SystemExit("no busybox binary on this host")
        log(f"imported {self.image} into {self.tmp / 'images'} in {time.perf_counter() - t:.2f} s")
        self.mgr = InstanceManager(self.tmp / "local", self.prepare, network=self.net,
                                   on_change=self.on_change)
        await self.mgr.start()

    async def prepare(self, pod: dict, container: dict, cdir: Path) -> Prepared:
        """The local provider's hook without volumes/env: image (cached) -> own rootfs."""
        rec = await self.images.pull(container["image"], policy=container.get("imagePullPolicy", "IfNotPresent"))
        rootfs = await self.images.prepare_rootfs(rec, cdir / "fs")
        return Prepared(rootfs=rootfs, image_config=rec.config, image_id=rec.digest)

    def on_change(self, inst: Instance) -> None:
        uid = inst.uid
        if uid in self.t_running:
            return
        if inst.sandbox is not None and uid not in self.t_sandbox:
            self.t_sandbox[uid] = time.perf_counter()
        fut = self.waiters.get(uid)
        recs = [r for r in inst.records.values() if not r.init]
        if recs and all(r.state == "running" for r in recs):
            self.t_running[uid] = time.perf_counter()
            if fut and not fut.done():
                fut.set_result(None)
        elif fut and not fut.done():
            bad = [r for r in recs if r.reason in ("CreateContainerError", "CreateContainerConfigError")
                   or r.state == "terminated"]
            if inst.phase == "Failed" or bad:
                why = inst.message or "; ".join(f"{r.name}: {r.reason} {r.message}" for r in bad)
                fut.set_exception(RuntimeError(f"pod {inst.pod['metadata']['name']} did not start: {why}"))

    def pod(self, name: str) -> dict:
        uid = str(uuid.uuid4())
        self.uids.add(uid)
        return {"metadata": {"name": name, "namespace": "bench", "uid": uid},
                "spec": {"restartPolicy": "Always", "terminationGracePeriodSeconds": 0,
                         "containers": [{"name": "c", "image": self.image, "imagePullPolicy": "IfNotPresent",
                                         "command": ["sleep", "3600"]}]}}

    async def start_pod(self, name: str, timeout: float) -> float:
        """Create one pod and wait until its container runs; create->running seconds."""
        p = self.pod(name)
        uid = p["metadata"]["uid"]
        self.waiters[uid] = asyncio.get_running_loop().create_future()
        self.t_create[uid] = time.perf_counter()
        await self.mgr.create(p)
        await asyncio.wait_for(self.waiters[uid], timeout)
        return self.t_running[uid] - self.t_create[uid]

    async def delete_pod(self, uid: str) -> None:
        """As the local provider deletes: stop (no grace), release the rootfs, remove."""
        inst = self.mgr.get(uid)
        if inst is None:
            return
        await self.mgr.stop(uid, 0)
        for cdir in sorted((inst.dir / "containers").glob("*/*/fs")):
            try:
                await self.images.release_rootfs(cdir)
            except OSError as e:
                log(f"release rootfs {cdir}: {e}")
        await self.mgr.delete(uid, 0)
        self.waiters.pop(uid, None)

    async def delete_all(self) -> float:
        t = time.perf_counter()
        sem = asyncio.Semaphore(32)

        async def one(uid):
            async with sem:
                await self.delete_pod(uid)
        res = await asyncio.gather(*(one(u) for u in list(self.mgr.instances)), return_exceptions=True)
        errs = [r for r in res if isinstance(r, BaseException)]
        if errs:
            log(f"{len(errs)} deletes failed, first: {errs[0]!r}")
        return time.perf_counter() - t

    def monitor_memory(self) -> dict:
        conmon_rss = conmon_pss = holder_rss = holder_pss = n = 0
        for inst in self.mgr.list():
            for r in inst.records.values():
                if r.state == "running" and r.monitor_pid:
                    conmon_rss += proc_kb(r.monitor_pid, "VmRSS")
                    conmon_pss += proc_kb(r.monitor_pid, "Pss", "smaps_rollup")
            if inst.sandbox and inst.sandbox.holder_pid:
                holder_rss += proc_kb(inst.sandbox.holder_pid, "VmRSS")
                holder_pss += proc_kb(inst.sandbox.holder_pid, "Pss", "smaps_rollup")
            n += 1
        n = max(n, 1)
        return {"conmon_rss_per_pod_MB": round(conmon_rss / n / 1024, 3),
                "conmon_pss_per_pod_MB": round(conmon_pss / n / 1024, 3),
                "holder_rss_per_pod_MB": round(holder_rss / n / 1024, 3),
                "holder_pss_per_pod_MB": round(holder_pss / n / 1024, 3)}

    # ---- the run --------------------------------------------------------------------------

    async def run(self) -> dict:
        n, per_pod = self.args.pods, self.args.pod_timeout
        await self.setup()
        out: dict = {"benchmark": "runtime", "pods": n, "image": self.image, "cpus": os.cpu_count(),
                     "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
                     "rootfs_mode": "overlay" if self.images._use_overlay() else "copy"}

        # warm-up: first sandbox creates the bridge, the holder rootfs, the image snapshot use
        t = await self.start_pod("warmup", per_pod)
        log(f"warm-up pod running after {t:.3f} s (bridge, holder rootfs; not counted)")
        await self.delete_all()
        rss_before = self_rss_kb()

        # 1. one after another
        lat, sb = [], []
        for i in range(n):
            lat.append(await self.start_pod(f"seq-{i}", per_pod))
            uid = max(self.t_create, key=self.t_create.get)
            sb.append(self.t_sandbox[uid] - self.t_create[uid])
            if (i + 1) % 20 == 0:
                log(f"sequential: {i + 1}/{n} running, last {lat[-1]:.3f} s")
        out["create_to_running_p50_s"] = round(percentile(lat, 50), 4)
        out["create_to_running_p99_s"] = round(percentile(lat, 99), 4)
        out["create_to_running_max_s"] = round(max(lat), 4)
        out["create_to_running_mean_s"] = round(sum(lat) / len(lat), 4)
        out["of_which_sandbox_p50_s"] = round(percentile(sb, 50), 4)
        out["of_which_container_p50_s"] = round(percentile([a - b for a, b in zip(lat, sb)], 50), 4)
        log(f"sequential: p50 {out['create_to_running_p50_s']} s, p99 {out['create_to_running_p99_s']} s")

        # 2. memory with n running pods
        rss_with = self_rss_kb()
        out["runtime_rss_before_MB"] = round(rss_before / 1024, 1)
        out["runtime_rss_with_pods_MB"] = round(rss_with / 1024, 1)
        out["runtime_rss_per_pod_MB"] = round((rss_with - rss_before) / n / 1024, 3)
        out.update(self.monitor_memory())
        log(f"memory: runtime {out['runtime_rss_per_pod_MB']} MB/pod, "
            f"conmon {out['conmon_rss_per_pod_MB']} MB/pod RSS ({out['conmon_pss_per_pod_MB']} PSS)")

        d = await self.delete_all()
        out["delete_sequential_set_s"] = round(d, 3)
        log(f"deleted {n} pods in {d:.2f} s")

        # 3. all at once
        t0 = time.perf_counter()
        first = len(self.t_create)
        burst = await asyncio.gather(*(self.start_pod(f"burst-{i}", self.args.burst_timeout) for i in range(n)))
        out["burst_all_running_s"] = round(time.perf_counter() - t0, 3)
        uids = list(self.t_create)[first:]
        out["burst_all_sandboxes_ready_s"] = round(max(self.t_sandbox[u] for u in uids) - t0, 3)
        out["burst_first_running_s"] = round(min(self.t_running[u] for u in uids) - t0, 3)
        out["burst_create_to_running_p50_s"] = round(percentile(burst, 50), 4)
        out["burst_create_to_running_p99_s"] = round(percentile(burst, 99), 4)
        log(f"burst: {n} pods running after {out['burst_all_running_s']} s")
        rss_burst = self_rss_kb()
        out["runtime_rss_per_pod_after_burst_MB"] = round((rss_burst - rss_before) / n / 1024, 3)

        d = await self.delete_all()
        out["delete_burst_set_s"] = round(d, 3)
        log(f"deleted {n} pods in {d:.2f} s")

        out["pull_throughput"] = "see benchmarks/runtime_pull.py"
        out["targets"] = TARGETS
        out["meets_targets"] = {k: out[k] <= v for k, v in TARGETS.items()}
        return out

    # ---- cleanup --------------------------------------------------------------------------

    async def cleanup_async(self) -> None:
        if self.mgr is not None:
            try:
                await asyncio.wait_for(self.delete_all(), 120)
            except (Exception, asyncio.CancelledError) as e:
                log(f"cleanup: deleting pods: {e!r}")
            try:
                await self.mgr.close()
            except Exception as e:  # noqa: BLE001
                log(f"cleanup: closing manager: {e!r}")
        if self.images is not None:
            try:
                await self.images.close()
            except Exception as e:  # noqa: BLE001
                log(f"cleanup: closing image service: {e!r}")

    def cleanup_sync(self) -> None:
        """Whatever the orderly deletes left: containers, netns, mounts, cgroups, bridge, files."""
        def run(*argv):
            return subprocess.run(argv, capture_output=True, text=True, timeout=30)
        root = self.tmp / "local" / "runc"
        left = []
        if root.exists():
            left = run("runc", "--root", str(root), "list", "-q").stdout.split()
            for cid in left:
                run("runc", "--root", str(root), "delete", "-f", cid)
        ns = [f"skube-{u}" for u in self.uids if Path(f"/run/netns/skube-{u}").exists()]
        for name in ns:
            run("ip", "netns", "delete", name)
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f if line.split()[4].startswith(str(self.tmp))]
        for m in sorted(mounts, key=len, reverse=True):
            run("umount", "-l", m)
        cg = set(cgroups.list_pods()) & self.uids
        for uid in cg:
            cgroups.remove(cgroups.pod_path(uid))
        if left or ns or mounts or cg:
            log(f"cleanup removed leftovers: containers={len(left)} netns={len(ns)} "
                f"mounts={len(mounts)} cgroups={len(cg)}")
        if Path(f"/sys/class/net/{BRIDGE}").exists():
            run("ip", "link", "delete", BRIDGE)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.leftovers = self.leaks()

    def leaks(self) -> dict:
        """What is still there after cleanup (should be nothing)."""
        procs = []
        for p in Path("/proc").iterdir():
            if p.name.isdigit():
                try:
                    if str(self.tmp).encode() in (p / "cmdline").read_bytes():
                        procs.append(int(p.name))
                except OSError:
                    pass
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f if line.split()[4].startswith(str(self.tmp))]
        out = {"processes": procs, "mounts": mounts,
               "netns": [u for u in self.uids if Path(f"/run/netns/skube-{u}").exists()],
               "cgroups": sorted(set(cgroups.list_pods()) & self.uids),
               "bridge": [BRIDGE] if Path(f"/sys/class/net/{BRIDGE}").exists() else [],
               "data_dir": [str(self.tmp)] if self.tmp.exists() else []}
        return {k: v for k, v in out.items() if v}


async def amain(args) -> dict:
    bench = Bench(args)
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        result = await asyncio.wait_for(bench.run(), args.timeout)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        log("cleaning up")
        try:
            await bench.cleanup_async()
        finally:
            bench.cleanup_sync()
            if bench.leftovers:
                log(f"LEFT AFTER CLEANUP: {bench.leftovers}")
    result["leftovers_after_cleanup"] = bench.leftovers
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pods", type=int, default=100)
    p.add_argument("--timeout", type=float, default=600, help="bound on the whole measurement (s)")
    p.add_argument("--pod-timeout", type=float, default=30, help="one pod, create -> running (s)")
    p.add_argument("--burst-timeout", type=float, default=120, help="the burst, create -> all running (s)")
    args = p.parse_args()
    check_host()
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        log(f"note: bridge {BRIDGE} exists already (a previous run?); it is reused and removed at the end")
    # plain asyncio, as `skube` runs the local runtime (cli._run: uvloop's subprocess
    # spawning does not suit conmon's sync pipe; under uvloop the first pod never starts)
    try:
        result = asyncio.run(amain(args))
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise SystemExit("runtime benchmark: interrupted (cleaned up)")
    except TimeoutError:
        raise SystemExit("runtime benchmark: not done within --timeout / --pod-timeout (cleaned up)")
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
