"""One node-pool node = one node agent process: ``skube virtual-node --node-kind pool``
(registration, Lease, pod sync and kubelet API as for the virtual node, with the node's
size as capacity), started, supervised and stopped by ``skube up``."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..client import SharedInformer
from .pools import INSTANCE_TYPE_LABEL, POOL_LABEL, PoolSpec
from .slots import pool_range
from .state import NodeRecord

log = logging.getLogger("skube.autoscaler.agents")

STOP_TIMEOUT = 20.0
_background: set[asyncio.Future] = set()     # in-process stops that outlived their timeout


@dataclass
class AgentSettings:
    """What every agent of a cluster shares."""
    data_dir: Path                        # the cluster's DATA_DIR
    kubeconfig: Path
    provider: str = "local"
    provider_config: dict = field(default_factory=dict)   # incl. the network block
    pod_cidr: str = "10.42.0.0/16"
    verbose: int = 0
    in_process: bool = False              # run agents inside this process (mock-scale runs)
    shared_pods: SharedInformer | None = None   # in-process agents watch pods through this one


def node_dir(data_dir: Path, name: str) -> Path:
    return Path(data_dir) / "nodes" / name


class NodeAgent:
    """The agent process of one node: ``await start()``, ``alive``, ``await stop()``."""

    def __init__(self, record: NodeRecord, spec: PoolSpec, settings: AgentSettings):
        self.record, self.spec, self.settings = record, spec, settings
        self.proc: asyncio.subprocess.Process | None = None
        self.dir = node_dir(settings.data_dir, record.name)
        self.restarts = 0
        self.starting = False       # between start()'s call and its return: not an exit

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def exit_status(self) -> int | None:
        return self.proc.returncode if self.proc is not None else None

    def provider_doc(self) -> dict:
        """The cluster's provider config with this node's slice of the pod CIDR."""
        doc = dict(self.settings.provider_config or {})
        start, end = pool_range(self.settings.pod_cidr, self.record.slot)
        doc["network"] = {**(doc.get("network") or {}), "rangeStart": start, "rangeEnd": end}
        doc.pop("spot", None)           # pool nodes are ordinary VMs: nothing reclaims their pods
        if self.record.provider == "mock":   # simulated pod IPs: a /24 per node, apart from the virtual node's
            slot = self.record.slot
            doc["podCIDR"] = f"10.{251 + slot // 256}.{slot % 256}.0/24"
        return doc

    def labels(self) -> dict:
        return {POOL_LABEL: self.spec.name, INSTANCE_TYPE_LABEL: self.spec.instance_type}

    def _provider_config(self) -> Path:
        path = self.dir / "provider.yaml"
        path.write_text(yaml.safe_dump(self.provider_doc()))
        return path

    def argv(self) -> list[str]:
        r, spec = self.record, self.spec
        labels = self.labels()
        argv = [sys.executable, "-m", "skube.cli", "virtual-node", "--name", r.name,
                "--node-kind", "pool", "--kubeconfig", str(self.settings.kubeconfig),
                "--provider", r.provider, "--provider-config", str(self._provider_config()),
                "--kubelet-port", "0", "--kubelet-bind", "127.0.0.1", "--internal-ip", "127.0.0.1",
                "--data-dir", str(self.dir), "--cluster-data-dir", str(self.settings.data_dir),
                "--node-labels", ",".join(f"{k}={v}" for k, v in labels.items())]
        for k, v in spec.size.capacity().items():
            argv += ["--capacity", f"{k}={v}"]
        if self.settings.verbose:
            argv.append("-" + "v" * self.settings.verbose)
        return argv

    async def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        stop_stray(self.record)
        logf = open(self.dir / "agent.log", "ab")
        self.starting = True
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv(), stdin=asyncio.subprocess.DEVNULL, stdout=logf, stderr=logf)
        finally:
            self.starting = False
            logf.close()
        self.record.pid = self.proc.pid
        log.info("node %s: agent started (pid %d)", self.record.name, self.proc.pid)

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (the node reports NotReady and stops syncing; instances keep running),
        SIGKILL after ``timeout``."""
        if not self.alive:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            log.warning("node %s: agent did not stop in %.0fs; killing it", self.record.name, timeout)
            self.proc.kill()
            await self.proc.wait()


class InProcessAgent(NodeAgent):
    """The same node agent run inside ``skube up`` (no process of its own): for runs of
    many mock-provider nodes, e.g. the cost simulator."""

    def __init__(self, record: NodeRecord, spec: PoolSpec, settings: AgentSettings):
        super().__init__(record, spec, settings)
        self.node = None

    @property
    def alive(self) -> bool:
        return self.node is not None

    @property
    def exit_status(self) -> int | None:
        return None

    async def start(self) -> None:
        from ..node.agent import AgentConfig, VirtualNode
        self.dir.mkdir(parents=True, exist_ok=True)
        node = VirtualNode(AgentConfig(
            name=self.record.name, kubeconfig=str(self.settings.kubeconfig), provider=self.record.provider,
            provider_config=self.provider_doc(), kubelet_port=0, kubelet_bind="127.0.0.1",
            data_dir=self.dir, cluster_data_dir=self.settings.data_dir, kind="pool",
            capacity=self.spec.size.capacity(), labels=self.labels(),
            shared_pods=self.settings.shared_pods))
        self.starting = True
        try:
            await node.start()
        except BaseException:
            await node.stop()
            raise
        finally:
            self.starting = False
        self.node = node

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """As the process's SIGKILL after ``timeout``: a stop still running then (e.g. 150
        nodes stopping at once) finishes in the background; the node counts as stopped."""
        node, self.node = self.node, None
        if node is None:
            return
        stopping = asyncio.ensure_future(node.stop())
        _background.add(stopping)
        stopping.add_done_callback(_background.discard)
        try:
            await asyncio.wait_for(asyncio.shield(stopping), timeout)
        except asyncio.TimeoutError:
            log.warning("node %s: agent did not stop in %.0fs; finishing in the background",
                        self.record.name, timeout)


def make_agent(record: NodeRecord, spec: PoolSpec, settings: AgentSettings) -> NodeAgent:
    return (InProcessAgent if settings.in_process else NodeAgent)(record, spec, settings)


def stop_stray(record: NodeRecord) -> None:
    """Kill an agent of this node left running by a ``skube up`` that crashed."""
    if not record.pid:
        return
    try:
        cmdline = Path(f"/proc/{record.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return
    if b"virtual-node" in cmdline and record.name.encode() in cmdline:
        log.warning("node %s: stopping a stray agent (pid %d)", record.name, record.pid)
        try:
            os.kill(record.pid, signal.SIGKILL)
        except OSError:
            pass


__all__ = ["NodeAgent", "InProcessAgent", "AgentSettings", "make_agent", "node_dir", "stop_stray"]
