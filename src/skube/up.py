"""`skube up`: the whole serverless cluster in one process — API server, controllers,
scheduler and the virtual node `skube-virtual-node`.

Everything but the API server is an ordinary API client (skube.client) connecting
with the admin kubeconfig, exactly as it would to any other cluster."""
from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path

from .apiserver.server import RunningServer, ServerConfig

log = logging.getLogger("skube.up")

NODE_NAME = "skube-virtual-node"


@dataclass
class UpConfig:
    data_dir: Path
    port: int = 6443
    bind: str = "127.0.0.1"
    provider: str = "local"
    provider_config: dict = field(default_factory=dict)
    kubelet_port: int = 10250
    policy: str | None = None      # default elastic scheduling policy (skube.scheduler.policies)
    node_pools: list = field(default_factory=list)   # skube.autoscaler.PoolSpec (--node-pool)


async def _builtin_image(cfg: UpConfig) -> str | None:
    """Make the host-busybox image available in the cluster's image store."""
    import platform

    from .runtime.images import ImageService
    from .runtime.images.builtin import ensure_busybox
    from .runtime.images.service import _GOARCH
    service = ImageService(cfg.data_dir)
    try:
        return await ensure_busybox(service, _GOARCH.get(platform.machine(), platform.machine()))
    finally:
        await service.close()


def virtual_node_capacity(data_dir: Path) -> dict:
    """config.yaml ``virtualNode: {capacity: {cpu: "20000", pods: "50000", …}}``: what the
    virtual node advertises beyond its defaults (1000 CPU, 4Ti, 10000 pods) — e.g. for a
    burst of tens of thousands of pods."""
    from .autoscaler.pools import read_config
    from .api.quantity import parse_quantity
    section = read_config(data_dir).get("virtualNode") or {}
    capacity = section.get("capacity") or {} if isinstance(section, dict) else None
    if not isinstance(capacity, dict):
        raise ValueError("config.yaml virtualNode.capacity: expected a mapping of resource to quantity")
    for name, value in capacity.items():
        try:
            parse_quantity(str(value))
        except ValueError:
            raise ValueError(f"config.yaml virtualNode.capacity.{name}: {value!r} is not a quantity") from None
    return {str(k): str(v) for k, v in capacity.items()}


async def run_up(cfg: UpConfig) -> None:
    """Start everything, print how to use it, run until SIGINT/SIGTERM, stop in reverse."""
    from .controllers.manager import CONTROLLERS, DEFAULT_CONTROLLERS, run_controllers
    from .node.agent import AgentConfig, VirtualNode
    from .scheduler import run_scheduler

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    from .network.agent import run_network_agent
    from .network.config import ClusterNetwork
    net = ClusterNetwork.from_doc(cfg.provider_config.get("network"))
    provider_config = {**cfg.provider_config,
                       "network": {**(cfg.provider_config.get("network") or {}), **net.provider_network()}}
    from .autoscaler.slots import virtual_range     # node pools take the upper half of the CIDR
    start, end = virtual_range(net.pod_cidr)
    vn_config = {**provider_config, "network": {**provider_config["network"],
                                                "rangeStart": start, "rangeEnd": end}}
    server = RunningServer(ServerConfig(data_dir=cfg.data_dir, bind=cfg.bind, port=cfg.port,
                                        controllers=(), serverless_default=True,
                                        serverless_policy=cfg.policy,
                                        service_cidr=net.service_cidr,
                                        node_port_range=net.node_port_range))
    kubeconfig = cfg.data_dir / "kubeconfig"
    controllers = node = None
    try:
        await server.start()
        image = await _builtin_image(cfg) if cfg.provider == "local" else None
        tasks = [run_controllers(str(kubeconfig), list(DEFAULT_CONTROLLERS), stop=stop)]
        if "scheduler" not in CONTROLLERS:
            tasks.append(run_scheduler(str(kubeconfig), stop=stop))
        if cfg.provider == "local":     # the host's pod network: service proxy, DNS, policy
            tasks.append(run_network_agent(str(kubeconfig), net, stop))
        if cfg.node_pools:              # ordinary nodes: one agent process each, autoscaled
            from .autoscaler.agents import AgentSettings
            from .autoscaler.autoscaler import run_autoscaler
            from .autoscaler.pools import agents_in_process, read_config
            level = logging.getLogger().getEffectiveLevel()
            tasks.append(run_autoscaler(cfg.node_pools, AgentSettings(
                data_dir=cfg.data_dir, kubeconfig=kubeconfig, provider=cfg.provider,
                provider_config=provider_config, pod_cidr=net.pod_cidr,
                in_process=agents_in_process(read_config(cfg.data_dir)),
                verbose=2 if level <= logging.DEBUG else 1 if level <= logging.INFO else 0), stop))
        controllers = asyncio.ensure_future(asyncio.gather(*tasks))
        node = VirtualNode(AgentConfig(
            name=NODE_NAME, kubeconfig=str(kubeconfig), provider=cfg.provider,
            provider_config=vn_config, kubelet_port=cfg.kubelet_port,
            capacity=virtual_node_capacity(cfg.data_dir),
            data_dir=cfg.data_dir / "nodes" / NODE_NAME, cluster_data_dir=cfg.data_dir))
        await node.start()
        print(f"skube cluster ready at {server.cfg.url}: API server, controllers "
              f"({', '.join(DEFAULT_CONTROLLERS)}) and virtual node {NODE_NAME} "
              f"(provider {cfg.provider})" +
              "".join(f", node pool {p.name} ({p.count}x{p.instance_type}, {p.min}-{p.max})"
                      for p in cfg.node_pools) + "\n"
              f"  export KUBECONFIG={kubeconfig}\n"
              f"  kubectl get nodes" +
              (f"\n  offline image: {image} (kubectl run hello --image={image} -- sleep 3600)" if image else ""),
              flush=True)
        serving = asyncio.create_task(server.serve_forever(), name="apiserver")
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, stopping, controllers}, return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        if controllers.done() and controllers.exception():
            log.error("controllers failed: %s", controllers.exception())
    finally:
        stop.set()
        if node is not None:
            await node.stop()
        if controllers is not None:
            try:
                await asyncio.wait_for(controllers, 15)
            except Exception:  # noqa: BLE001 — shutting down regardless
                log.exception("controllers did not stop cleanly")
        await server.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        print("skube cluster stopped", flush=True)
