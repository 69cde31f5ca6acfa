"""Replay a trace on a real skube control plane under an accelerated clock.

For one strategy: start ``skube up --provider mock`` (API server, scheduler, controllers,
the virtual node, node pools with the autoscaler) in its own data dir with
``SKUBE_CLOCK`` set, so every process of the cluster shares the simulated time; create
the trace's Deployments and Jobs through the API as the day goes; watch pods and nodes
to sample the cluster; at the end stop the cluster and price what its ledgers recorded
with the same billing code as ``skube bill``.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import yaml

from ..billing.prices import PriceTable
from ..billing.report import find_ledgers, load_runs
from ..client.api import ApiError, Client, resource
from ..client.informer import Informer
from ..clock import ENV as CLOCK_ENV, Clock
from .metrics import Interval, Sample, StrategyResult
from .strategies import Strategy
from .trace import Trace, Workload

DAY0 = dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc).timestamp()   # a Monday, 00:00 UTC
VIRTUAL_NODE = "skube-virtual-node"
IMAGE = "registry.k8s.io/pause:3.10"       # never pulled: the mock provider runs nothing
SIM_LABEL = "sim.skube.io/workload"

PODS = resource("v1", "pods")
NODES = resource("v1", "nodes", namespaced=False)
NAMESPACES = resource("v1", "namespaces", namespaced=False)
DEPLOYMENTS = resource("apps/v1", "deployments")
JOBS = resource("batch/v1", "jobs")

Progress = Callable[[str], None]
# Real seconds after the last pod change during which the cluster still counts as busy.
# A loaded control plane stalls for a second or two between bursts of events (GC, a long
# sync, a lagging watch); a shorter window would let each stall jump minutes ahead.
BUSY_WINDOW = 3.0
# After the simulator changes a workload it stays busy until a pod changes (at most this
# many real seconds): at full speed the control plane's first reaction — seconds with
# 20,000 pods — would be a quarter of an hour of simulated time billed at the old size.
REACTION_TIMEOUT = 60.0
SIM_POD_CIDR = "10.64.0.0/14"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _resources(w: Workload) -> dict:
    q = {"cpu": f"{w.cpu_m}m", "memory": f"{w.memory // (1 << 20)}Mi"}
    return {"requests": dict(q), "limits": dict(q)}


def _template(w: Workload, restart: str, extra_annotations: dict | None = None) -> dict:
    return {"metadata": {"labels": {SIM_LABEL: w.name, **w.labels},
                         "annotations": {**w.annotations, **(extra_annotations or {})}},
            "spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "main", "image": IMAGE, "resources": _resources(w)}]}}


def deployment(w: Workload, replicas: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": w.name, "namespace": w.namespace, "labels": {SIM_LABEL: w.name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {SIM_LABEL: w.name}},
                     "strategy": {"type": "RollingUpdate"},
                     "template": _template(w, "Always")}}


def job(w: Workload, start: float) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": f"{w.name}-{int(start) // 3600:02d}{int(start) % 3600 // 60:02d}",
                         "namespace": w.namespace, "labels": {SIM_LABEL: w.name}},
            "spec": {"completions": w.completions, "parallelism": w.parallelism, "backoffLimit": 6,
                     "ttlSecondsAfterFinished": 60,
                     "template": _template(w, "Never", {"mock.skube.io/run-seconds": str(w.run_seconds)})}}


class Replay:
    """One strategy's run of a trace."""

    def __init__(self, trace: Trace, strategy: Strategy, data_dir: Path, *, speed: float,
                 busy_speed: float = 10.0, sample_every: float | None = None, progress: Progress | None = None,
                 prices: PriceTable | None = None):
        self.trace, self.strategy, self.data_dir = trace, strategy, Path(data_dir)
        self.speed = speed
        self.busy_speed = min(busy_speed, speed)
        self.last_activity = 0.0                              # real monotonic time of the last pod change
        self.awaiting_reaction = 0.0                          # busy until then unless a pod changed
        self.current_speed = self.speed
        self.sample_every = sample_every or min(300.0, max(trace.duration / 288, 10.0))
        self.progress = progress or (lambda line: None)
        self.prices = prices or PriceTable.defaults()
        self.result = StrategyResult(strategy.name, strategy.description, self.prices.currency,
                                     hours=int(-(-trace.duration // 3600)))
        self.pods: dict[str, tuple[str, str, int]] = {}      # uid → (node, phase, cpu_m)
        self.created: dict[str, float] = {}                   # uid → simulated t when first seen
        self.nodes: dict[str, int] = {}                       # ordinary node → allocatable cpu_m
        self.clock: Clock | None = None

    # ---- the cluster -----------------------------------------------------------------------

    def _up_command(self, port: int) -> list[str]:
        # a pod CIDR with room for 512 node-pool nodes (the default /16 has 128 slices)
        provider = self.data_dir / "provider.yaml"
        provider.write_text(yaml.safe_dump({"network": {"cidr": SIM_POD_CIDR}}))
        cmd = [sys.executable, "-m", "skube", "up", "--provider", "mock", "--data-dir", str(self.data_dir),
               "--port", str(port), "--kubelet-port", "0", "--policy", self.strategy.policy,
               "--provider-config", str(provider)]
        return cmd

    def _start_cluster(self, warmup: float) -> subprocess.Popen:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.strategy.config:
            (self.data_dir / "config.yaml").write_text(yaml.safe_dump(self.strategy.config, sort_keys=False))
        path = self.data_dir / "clock"
        path.unlink(missing_ok=True)
        self.clock = Clock(self.speed, epoch=DAY0, real_t0=time.time() + warmup,
                           path=path)
        env = {**os.environ, CLOCK_ENV: self.clock.env_value()}
        self.port = _free_port()
        self.log_path = self.data_dir / "up.log"
        return subprocess.Popen(self._up_command(self.port), stdout=open(self.log_path, "w"),
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)

    async def _wait_ready(self, proc: subprocess.Popen, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"skube up exited ({proc.returncode}):\n{self.log_path.read_text()[-3000:]}")
            if "ready" in self.log_path.read_text():
                return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"skube up not ready in {timeout:.0f}s:\n{self.log_path.read_text()[-3000:]}")

    @staticmethod
    def _stop_cluster(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)

    # ---- simulated time --------------------------------------------------------------------

    def now(self) -> float:
        """Simulated seconds since the day's start."""
        return self.clock.time() - DAY0

    async def until(self, t: float) -> None:
        await self.clock.sleep(t - self.now())

    async def _governor(self) -> None:
        """Time dilation: while pods are changing (the control plane is busy), run at
        busy_speed so its real latency stays small in simulated seconds; otherwise at speed."""
        while True:
            now = time.monotonic()
            self._set_speed(self.busy_speed if now - self.last_activity < BUSY_WINDOW
                            or now < self.awaiting_reaction else self.speed)
            await asyncio.sleep(0.1)

    def _set_speed(self, want: float) -> None:
        if want != self.current_speed and self.now() >= 0:
            self.clock.set_speed(want)
            self.current_speed = want

    # ---- observing -------------------------------------------------------------------------

    def _activity(self, reaction: bool = False) -> None:
        """The cluster is busy: keep the clock at the busy speed for BUSY_WINDOW; a pod
        change is also the reaction a trace step waits for."""
        self.last_activity = time.monotonic()
        if reaction:
            self.awaiting_reaction = 0.0

    def _on_pod(self, pod: dict) -> None:
        m, spec, st = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        if SIM_LABEL not in (m.get("labels") or {}):
            return
        uid, phase = m["uid"], st.get("phase", "Pending")
        self._activity(reaction=True)
        if uid not in self.created:
            self.created[uid] = self.now()
        prev = self.pods.get(uid)
        if phase == "Running" and (prev is None or prev[1] != "Running"):
            self.result.pods_started += 1
            if self.created[uid] >= 0:
                self.result.waits.append(max(self.now() - self.created[uid], 0.0))
        cpu = sum(int(str(((c.get("resources") or {}).get("requests") or {}).get("cpu", "0m")).rstrip("m") or 0)
                  for c in spec.get("containers") or [])
        self.pods[uid] = (spec.get("nodeName") or "", phase, cpu)

    def _on_pod_delete(self, pod: dict) -> None:
        self._activity(reaction=True)                  # a scale-down is work in progress too
        self.pods.pop(pod["metadata"]["uid"], None)

    def _on_node(self, node: dict) -> None:
        name = node["metadata"]["name"]
        if name == VIRTUAL_NODE or (node["metadata"].get("labels") or {}).get("type") == "virtual-kubelet":
            return
        if name not in self.nodes:
            self._activity()                           # a node joined: pods are about to move
        cpu = str(((node.get("status") or {}).get("allocatable") or {}).get("cpu", "0"))
        self.nodes[name] = int(cpu[:-1]) if cpu.endswith("m") else int(float(cpu) * 1000)

    def _on_node_update(self, old: dict, new: dict) -> None:
        if old.get("spec") != new.get("spec"):         # cordoned or tainted: a scale-down runs
            self._activity()
        self._on_node(new)

    def _on_node_delete(self, node: dict) -> None:
        self._activity()                               # a node released (billed until now)
        self.nodes.pop(node["metadata"]["name"], None)

    def sample(self) -> Sample:
        t = self.now()
        on_nodes = on_inst = pending = req = 0
        for node, phase, cpu in self.pods.values():
            if phase == "Running":
                if node == VIRTUAL_NODE:
                    on_inst += 1
                else:
                    on_nodes += 1
                    req += cpu
            elif phase == "Pending":
                pending += 1
        s = Sample(t=max(t, 0.0), demand=self.trace.pods_at(max(t, 0.0)), on_nodes=on_nodes,
                   on_instances=on_inst, pending=pending, nodes=len(self.nodes),
                   node_cpu_m=sum(self.nodes.values()), requested_cpu_m=req)
        self.result.samples.append(s)
        return s

    async def _sampler(self) -> None:
        t = 0.0
        next_report = 0.0
        while t <= self.trace.duration:
            await self.until(t)
            s = self.sample()
            if t >= next_report:
                self.progress(f"[{self.strategy.name}] {int(t) // 3600:02d}:{int(t) % 3600 // 60:02d}  "
                              f"demand {s.demand:,}  running {s.on_nodes + s.on_instances:,} "
                              f"({s.on_instances:,} on instances)  pending {s.pending:,}  nodes {s.nodes}")
                next_report = t + 3600
            t += self.sample_every

    # ---- driving ---------------------------------------------------------------------------

    def _events(self) -> list[tuple[float, str, Workload, int]]:
        ev = []
        for w in self.trace.workloads:
            if w.kind == "Deployment":
                ev += [(at, "scale", w, n) for at, n in w.steps if at > 0]
            else:
                ev += [(at, "job", w, 0) for at in w.starts]
        return sorted(ev, key=lambda e: e[0])

    async def _apply(self, client: Client, kind: str, w: Workload, n: int, at: float) -> None:
        self.awaiting_reaction = time.monotonic() + REACTION_TIMEOUT   # slow down first
        self._set_speed(self.busy_speed)
        try:
            if kind == "scale":
                await client.patch(DEPLOYMENTS, w.name, {"spec": {"replicas": n}}, w.namespace)
            else:
                await client.create(JOBS, job(w, at), w.namespace)
        except ApiError as e:
            self.progress(f"[{self.strategy.name}] {kind} {w.namespace}/{w.name} failed: {e}")

    async def _setup(self, client: Client) -> None:
        for ns in sorted({w.namespace for w in self.trace.workloads} - {"default"}):
            try:
                await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            except ApiError as e:
                if not e.already_exists:
                    raise
        for w in self.trace.workloads:
            if w.kind == "Deployment":
                await client.create(DEPLOYMENTS, deployment(w, w.replicas_at(0.0)), w.namespace)

    async def run(self) -> StrategyResult:
        initial = sum(w.replicas_at(0.0) for w in self.trace.workloads if w.kind == "Deployment")
        warmup = 8.0 + initial / 200.0                 # real seconds before the day starts
        proc = self._start_cluster(warmup)
        wall0 = time.monotonic()
        try:
            await self._wait_ready(proc)
            async with Client.from_kubeconfig(str(self.data_dir / "kubeconfig"), component="skube-sim") as client:
                pods = Informer(client, PODS)
                pods.add_handlers(self._on_pod, lambda _old, new: self._on_pod(new), self._on_pod_delete)
                nodes = Informer(client, NODES)
                nodes.add_handlers(self._on_node, self._on_node_update, self._on_node_delete)
                tasks = [pods.start(), nodes.start()]
                await pods.wait_synced(30)
                await self._setup(client)
                self.progress(f"[{self.strategy.name}] cluster up ({self.strategy.description}); "
                              f"day starts in {max(0.0, -self.now() / self.speed):.0f}s")
                sampler = asyncio.create_task(self._sampler())
                governor = asyncio.create_task(self._governor())
                for at, kind, w, n in self._events():
                    if at >= self.trace.duration:
                        break
                    await self.until(at)
                    await self._apply(client, kind, w, n, at)
                await sampler
                governor.cancel()
                pods.stop()
                nodes.stop()
                for t in tasks:
                    t.cancel()
        finally:
            self._stop_cluster(proc)
        self.result.wall_seconds = time.monotonic() - wall0
        self.result.simulated_seconds = self.trace.duration
        self.result.intervals = self.billed()
        return self.result

    # ---- pricing ---------------------------------------------------------------------------

    def billed(self) -> list[Interval]:
        """Everything the cluster's ledgers recorded, clipped to the simulated day."""
        end = self.trace.duration
        out: list[Interval] = []
        for r in load_runs(find_ledgers(self.data_dir)):
            price = self.prices.price(r.spec_table).for_run(bool(r.spot))
            start, stop = r.start - DAY0, (r.stop if r.stop is not None else DAY0 + end) - DAY0
            start, stop = max(start, 0.0), min(stop, end)
            if stop > start:
                out.append(Interval(start, stop, price.per_second(r.vcpu, r.memory_gib),
                                    price.minimum_seconds, "instance"))
        out += node_intervals(self.data_dir, end, self.prices)
        return out


def node_intervals(data_dir: Path, end: float, prices: PriceTable) -> list[Interval]:
    """Node-seconds of the node pools, from the cluster's node ledger (billing.nodes)."""
    from ..billing.nodes import load_node_runs, node_price
    price = node_price(prices)
    out = []
    for r in load_node_runs(data_dir):
        start, stop = r.start - DAY0, (r.stop if r.stop is not None else DAY0 + end) - DAY0
        start, stop = max(start, 0.0), min(stop, end)
        if stop > start:
            out.append(Interval(start, stop, price.per_second(r.vcpu, r.memory_gib),
                                price.minimum_seconds, "node"))
    return out
