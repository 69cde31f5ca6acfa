"""`skube` command line."""
from __future__ import annotations

import logging
from pathlib import Path

import click

from .cli_pool import node_pool_option, resolve_pools

DEFAULT_DATA_DIR = Path.home() / ".skube"


def _run(coro, *, uvloop_ok: bool = True) -> None:
    """Run on uvloop, except where the local runtime runs: uvloop's subprocess spawning does
    not pass conmon its sync pipe (pass_fds), so that needs asyncio's own loop."""
    if uvloop_ok:
        import uvloop
        uvloop.run(coro)
    else:
        import asyncio
        asyncio.run(coro)


@click.group()
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.version_option(package_name="skube")
def main(verbose: int) -> None:
    """skube: serverless Kubernetes on one machine."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True,
              help="Where the cluster keeps its state, certificates and kubeconfig.")
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=6443, show_default=True, type=int, help="HTTPS port.")
@click.option("--compact-interval", default=300.0, show_default=True, type=float,
              help="Seconds between compactions of old revisions.")
@click.option("--keep-revisions", default=1000, show_default=True, type=int,
              help="Revisions kept by compaction, at least.")
@click.option("--controllers", default="garbagecollector,namespace,serviceaccount,root-ca-cert-publisher",
              show_default=True,
              help="Comma-separated controllers to run beside the server ('' for none).")
@click.option("--disable-admission-plugins", default="", show_default=True,
              help="Comma-separated admission plugins to turn off (ServiceAccount).")
def apiserver(data_dir: Path, bind: str, port: int, compact_interval: float, keep_revisions: int,
              controllers: str, disable_admission_plugins: str) -> None:
    """Serve the Kubernetes API over HTTPS, stored in SQLite under DATA_DIR."""
    from .apiserver.server import ServerConfig, run_apiserver
    from .controllers import CONTROLLERS
    names = tuple(n.strip() for n in controllers.split(",") if n.strip())
    unknown = [n for n in names if n not in CONTROLLERS]
    if unknown:
        raise click.BadParameter(f"unknown controllers {unknown}; known: {sorted(CONTROLLERS)}",
                                 param_hint="--controllers")
    cfg = ServerConfig(data_dir=data_dir.expanduser().resolve(), bind=bind, port=port,
                       compact_interval=compact_interval, keep_revisions=keep_revisions,
                       controllers=names, disabled_admission_plugins=_admission_plugins(disable_admission_plugins))
    _run(run_apiserver(cfg))


def _admission_plugins(value: str) -> tuple[str, ...]:
    from .apiserver.serviceaccount_admission import PLUGIN_NAME
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    unknown = [n for n in names if n != PLUGIN_NAME]
    if unknown:
        raise click.BadParameter(f"unknown admission plugins {unknown}; known: ['{PLUGIN_NAME}']",
                                 param_hint="--disable-admission-plugins")
    return names


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), default=DEFAULT_DATA_DIR, show_default=True,
              help="Where the cluster keeps its state; running `skube up` again resumes it.")
@click.option("--port", default=6443, show_default=True, type=int, help="HTTPS port of the API server.")
@click.option("--provider", type=click.Choice(["local", "mock"]), default="local", show_default=True,
              help="What runs the virtual node's pods (local: real container instances on this "
                   "host; mock: simulated instances).")
@click.option("--provider-config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Provider config (YAML).")
@click.option("--kubelet-port", default=10250, show_default=True, type=int,
              help="HTTPS port of the virtual node's kubelet API (0: any free port).")
@click.option("--policy", type=click.Choice(["fair", "normalNodeOnly", "virtualNodeOnly", "normalNodePrefer",
                                             "resourcePolicy"]),
              help="Default elastic scheduling policy of every namespace (rules in DATA_DIR/config.yaml "
                   "still apply first; see docs/scheduling.md).")
@node_pool_option
def up(data_dir: Path, port: int, provider: str, provider_config: Path | None, kubelet_port: int,
       policy: str | None, node_pools: tuple[str, ...]) -> None:
    """Start a whole serverless cluster: API server, controllers, scheduler, virtual node."""
    import yaml

    from .up import UpConfig, run_up
    doc = yaml.safe_load(provider_config.read_text()) if provider_config else {}
    data_dir = data_dir.expanduser().resolve()
    from .apiserver.admission import check_cluster_config
    try:
        check_cluster_config(data_dir / "config.yaml", policy)
    except (ValueError, yaml.YAMLError) as e:
        raise click.BadParameter(str(e), param_hint="--policy / config.yaml serverless") from None
    pools = resolve_pools(data_dir, node_pools, provider, (doc or {}).get("network"))
    from .up import virtual_node_capacity
    try:
        virtual_node_capacity(data_dir)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    _run(run_up(UpConfig(data_dir=data_dir.expanduser().resolve(), port=port, provider=provider,
                         provider_config=doc or {}, kubelet_port=kubelet_port, policy=policy,
                         node_pools=pools)),
         uvloop_ok=provider != "local")


def _register() -> None:
    from .cli_bill import bill
    from .cli_cost import cost
    from .cli_image import image
    from .cli_node import virtual_node
    main.add_command(bill)
    main.add_command(cost)
    main.add_command(image)
    main.add_command(virtual_node)


_register()

if __name__ == "__main__":  # pragma: no cover
    main()
