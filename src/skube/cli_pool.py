"""`skube up --node-pool NAME=COUNTxSIZE[:MIN-MAX]` and the ``nodePools:`` list of
DATA_DIR/config.yaml, merged and checked before anything starts (docs/node-pools.md)."""
from __future__ import annotations

from pathlib import Path

import click

node_pool_option = click.option(
    "--node-pool", "node_pools", multiple=True, metavar="NAME=COUNTxSIZE[:MIN-MAX]",
    help="Add a pool of ordinary nodes (repeatable), e.g. general=2x4c8g (2 nodes of 4 vCPU / "
         "8 GiB) or general=2x4c8g:1-5 (autoscaled between 1 and 5). More settings: nodePools "
         "in DATA_DIR/config.yaml.")


def resolve_pools(data_dir: Path, flags: tuple[str, ...], provider: str, network: dict | None) -> list:
    """The pools to run (flags merged over config.yaml), or click.BadParameter saying
    what to fix."""
    from .autoscaler.pools import PoolError, agents_in_process, merge, read_config
    from .autoscaler.slots import slot_count
    from .network.config import ClusterNetwork
    try:
        doc = read_config(data_dir)
        pools = merge(list(flags), doc.get("nodePools"))
        agents_in_process(doc)
    except PoolError as e:
        raise click.BadParameter(str(e), param_hint="--node-pool") from None
    local_max = sum(p.max for p in pools if (p.provider or provider) == "local")
    if local_max:
        cidr = ClusterNetwork.from_doc(network).pod_cidr
        if local_max > slot_count(cidr):
            raise click.BadParameter(
                f"the local node pools may grow to {local_max} nodes but the pod CIDR {cidr} has "
                f"room for {slot_count(cidr)}; lower their max or widen network.cidr",
                param_hint="--node-pool")
    return pools
