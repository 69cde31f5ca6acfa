"""`skube virtual-node`: join a cluster (any conformant API server) as a virtual node."""
from __future__ import annotations

import logging
from pathlib import Path

import click


def _parse_capacity(values: tuple[str, ...]) -> dict:
    out = {}
    for v in values:
        k, sep, q = v.partition("=")
        if not sep or not k or not q:
            raise click.BadParameter(f"{v!r}: expected RESOURCE=QUANTITY", param_hint="--capacity")
        out[k] = q
    return out


def _parse_labels(text: str) -> dict:
    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--node-labels")
        out[k] = v
    return out


@click.command("virtual-node")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None,
              help="Kubeconfig of the cluster to join (default: $KUBECONFIG, ~/.kube/config, in-cluster).")
@click.option("--context", default=None, help="Kubeconfig context to use.")
@click.option("--name", required=True, help="Node name.")
@click.option("--provider", default="mock", show_default=True, help="What runs the pods.")
@click.option("--provider-config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Provider config (YAML).")
@click.option("--kubelet-port", default=10250, show_default=True, type=int,
              help="HTTPS port of the kubelet API (0: any free port).")
@click.option("--kubelet-bind", default="0.0.0.0", show_default=True, help="Address the kubelet API listens on.")
@click.option("--internal-ip", default="127.0.0.1", show_default=True,
              help="Address the API server reaches the kubelet API at (the node's InternalIP).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Node state (default ~/.skube/nodes/NAME).")
@click.option("--cluster-data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Data dir of a standalone skube cluster, to sign the kubelet certificate with its CA "
                   "(default: the kubeconfig's directory, if it holds pki/ca.key).")
@click.option("--zone", default=None, help="topology.kubernetes.io/zone label.")
@click.option("--region", default=None, help="topology.kubernetes.io/region label.")
@click.option("--capacity", multiple=True, help="RESOURCE=QUANTITY (repeatable), e.g. cpu=2000.")
@click.option("--workers", default=32, show_default=True, type=int, help="Concurrent pod sync workers.")
@click.option("--remove-on-shutdown", is_flag=True, help="Delete the Node on shutdown instead of NotReady.")
@click.option("--lease-renew-interval", default=10.0, show_default=True, type=float, hidden=True,
              help="Seconds between Lease renewals.")
@click.option("--node-kind", type=click.Choice(["virtual", "pool"]), default="virtual", hidden=True,
              help="pool: an ordinary node of a node pool (capacity exactly --capacity, no "
                   "virtual-kubelet taint; `skube up --node-pool` runs these).")
@click.option("--node-labels", default="", help="Extra node labels, KEY=VALUE,KEY=VALUE (as the kubelet's).")
@click.option("-v", "--verbose", count=True, help="More logging.")
def virtual_node(kubeconfig, context, name, provider, provider_config, kubelet_port, kubelet_bind,
                 internal_ip, data_dir, cluster_data_dir, zone, region, capacity, workers,
                 remove_on_shutdown, lease_renew_interval, node_kind, node_labels, verbose) -> None:
    """Run a virtual node: register NAME, run its pods through PROVIDER, serve the kubelet API."""
    import yaml

    from .node.agent import AgentConfig, run_virtual_node
    if verbose:
        logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    doc = {}
    if provider_config is not None:
        try:
            doc = yaml.safe_load(provider_config.read_text()) or {}
        except yaml.YAMLError as e:
            raise click.BadParameter(f"invalid YAML: {e}", param_hint="--provider-config") from None
        if not isinstance(doc, dict):
            raise click.BadParameter("must be a YAML mapping", param_hint="--provider-config")
    if provider == "mock":
        from .providers.mock import MockConfig
        try:
            MockConfig(doc.get("provider", doc))
        except (ValueError, TypeError) as e:
            raise click.BadParameter(str(e), param_hint="--provider-config") from None
    from .providers import PROVIDERS
    if provider not in PROVIDERS:
        raise click.BadParameter(f"unknown provider {provider!r}; known: {', '.join(sorted(PROVIDERS))}",
                                 param_hint="--provider")
    cfg = AgentConfig(name=name, kubeconfig=kubeconfig, context=context, provider=provider,
                      provider_config=doc, kubelet_port=kubelet_port, kubelet_bind=kubelet_bind,
                      data_dir=data_dir, internal_ip=internal_ip, zone=zone, region=region,
                      capacity=_parse_capacity(capacity), remove_on_shutdown=remove_on_shutdown,
                      cluster_data_dir=cluster_data_dir, workers=workers,
                      lease_renew=lease_renew_interval, kind=node_kind,
                      labels=_parse_labels(node_labels))
    from .cli import _run
    _run(run_virtual_node(cfg), uvloop_ok=provider != "local")


if __name__ == "__main__":  # pragma: no cover
    virtual_node()
