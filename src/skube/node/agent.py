"""One virtual node, wired: provider + node registration/heartbeat + pod sync +
kubelet API, all talking to the API server through :mod:`skube.client`."""
from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from ..billing.meter import Meter
from ..client import Client, SharedInformer, load_kubeconfig
from ..providers import ProviderContext, create_provider
from . import certs
from .kubelet import KubeletServer
from .node import NodeConfig, NodeController
from .pods import PodController

log = logging.getLogger("skube.node.agent")


@dataclass
class AgentConfig:
    name: str
    kubeconfig: str | None = None
    context: str | None = None
    provider: str = "mock"
    provider_config: dict = field(default_factory=dict)
    kubelet_port: int = 10250
    kubelet_bind: str = "0.0.0.0"
    data_dir: Path | None = None          # default ~/.skube/nodes/NAME
    internal_ip: str = "127.0.0.1"
    zone: str | None = None
    region: str | None = None
    capacity: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    remove_on_shutdown: bool = False
    cluster_data_dir: Path | None = None  # where to look for the cluster CA key (standalone)
    workers: int = 32
    lease_renew: float = 10.0
    kind: str = "virtual"                 # "pool": an ordinary node-pool node (billed per node)
    shared_pods: SharedInformer | None = None   # in-process nodes: the process's pod informer

    def resolved_data_dir(self) -> Path:
        return Path(self.data_dir or Path.home() / ".skube" / "nodes" / self.name).expanduser()


class VirtualNode:
    """``await start()`` … ``await stop()``; attributes expose the parts for tests."""

    def __init__(self, cfg: AgentConfig):
        self.cfg = cfg
        self.data_dir = cfg.resolved_data_dir()
        self.client: Client | None = None
        self.provider = None
        self.node: NodeController | None = None
        self.pods: PodController | None = None
        self.kubelet: KubeletServer | None = None
        self.meter: Meter | None = None    # billing

    async def start(self) -> None:
        cfg = self.cfg
        self.data_dir.mkdir(parents=True, exist_ok=True)
        client_cfg = load_kubeconfig(cfg.kubeconfig, cfg.context)
        self.client = Client(client_cfg, component=f"virtual-node/{cfg.name}")
        doc = dict(cfg.provider_config or {})
        self.provider = create_provider(cfg.provider, doc.get("provider", doc))
        await self.provider.start(ProviderContext(node_name=cfg.name, data_dir=self.data_dir,
                                                  internal_ip=cfg.internal_ip, config=doc,
                                                  client=self.client))
        # billing: the ledger under DATA_DIR/billing; provider config `billing: {specs: eci|fargate|{…}}`
        if cfg.kind == "virtual":   # pods of a node-pool node are paid for by the node-second
            self.meter = Meter.open(self.data_dir, cfg.name, (doc.get("billing") or {}).get("specs"))
        self.pods = PodController(self.client, self.provider, cfg.name, host_ip=cfg.internal_ip,
                                  workers=cfg.workers, meter=self.meter, shared_pods=cfg.shared_pods)
        await self._start_kubelet(client_cfg.ca_data)
        node_doc = doc.get("node") or {}
        self.node = NodeController(self.client, self.provider, NodeConfig(
            name=cfg.name, provider_name=cfg.provider, internal_ip=cfg.internal_ip,
            kubelet_port=self.kubelet.port,
            capacity={**(node_doc.get("capacity") or {}), **cfg.capacity},
            labels={**(node_doc.get("labels") or {}), **cfg.labels},
            zone=cfg.zone or node_doc.get("zone"), region=cfg.region or node_doc.get("region"),
            remove_on_shutdown=cfg.remove_on_shutdown, lease_renew=cfg.lease_renew,
            kind=cfg.kind))
        await self.node.register()
        self.node.start()
        await self.pods.start()

    async def _start_kubelet(self, ca_pem: bytes | None) -> None:
        cfg = self.cfg
        candidates = []
        if cfg.cluster_data_dir:
            candidates.append(Path(cfg.cluster_data_dir))
        if cfg.kubeconfig:
            for p in str(cfg.kubeconfig).split(os.pathsep):
                if p:
                    candidates.append(Path(p).expanduser().resolve().parent)
        ca = certs.find_cluster_ca_key(ca_pem, candidates)
        hosts = ["localhost", "127.0.0.1", cfg.internal_ip, cfg.name, socket.gethostname()]
        crt, key = certs.ensure_serving_cert(self.data_dir / "pki", cfg.name, hosts, ca)
        ctx = certs.server_ssl_context(crt, key, ca_pem)
        self.kubelet = KubeletServer(self.provider, self.pods, cfg.name, host=cfg.kubelet_bind,
                                     port=cfg.kubelet_port, ssl_context=ctx,
                                     require_client_cert=bool(ca_pem))
        await self.kubelet.start()

    async def stop(self) -> None:
        for step in (self.pods and self.pods.stop, self.node and self.node.stop,
                     self.kubelet and self.kubelet.stop, self.provider and self.provider.close,
                     self.client and self.client.close, self.meter and self.meter.close):
            if step is None:
                continue
            try:
                if asyncio.iscoroutine(res := step()):
                    await res
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - stop everything we can
                log.exception("error while stopping the virtual node")


async def run_virtual_node(cfg: AgentConfig, ready_message: bool = True) -> None:
    """Run until SIGINT/SIGTERM, then stop cleanly."""
    import signal
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    vn = VirtualNode(cfg)
    try:
        await vn.start()
        if ready_message:
            print(f"skube virtual-node {cfg.name} ready (provider {cfg.provider}, kubelet "
                  f"https://{cfg.internal_ip}:{vn.kubelet.port})", flush=True)
        await stop.wait()
    finally:
        await vn.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


__all__ = ["AgentConfig", "VirtualNode", "run_virtual_node"]
