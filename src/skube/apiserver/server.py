"""Running the API server: PKI and kubeconfig on first start, the store, and
uvicorn serving HTTPS with client-certificate identities."""
from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from ..store import Store
import yaml

from .admission import ServerlessAdmission
from .app import APIServer
from .auth import Authenticator
from .kubeconfig import write_kubeconfig
from .pki import PKI, subject_identity
from .tokens import TokenSigner

log = logging.getLogger("skube.apiserver")


class _PeerIdentityProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol plus the verified client certificate's (user, groups)."""

    def connection_made(self, transport):  # type: ignore[override]
        super().connection_made(transport)
        self._peer = _peer_of(transport)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._peer:
            self.scope["skube.peer"] = self._peer  # type: ignore[index]


def _peer_of(transport):
    ssl_obj = transport.get_extra_info("ssl_object")
    cert = ssl_obj.getpeercert() if ssl_obj is not None else None
    return subject_identity(cert.get("subject", ())) if cert else None


class _PeerIdentityWebSocket(WebSocketsSansIOProtocol):
    """The same for WebSocket upgrades (exec, attach, port-forward)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # uvicorn negotiates the subprotocol through the ASGI accept message; the library's own
        # strict parsing would refuse kubectl's `SPDY/3.1+portforward.k8s.io` with a 400
        self.conn.process_subprotocol = lambda headers: None

    def connection_made(self, transport):  # type: ignore[override]
        super().connection_made(transport)
        self._peer = _peer_of(transport)

    async def run_asgi(self) -> None:
        if self._peer:
            self.scope["skube.peer"] = self._peer  # type: ignore[index]
        await super().run_asgi()


@dataclass
class ServerConfig:
    data_dir: Path
    bind: str = "127.0.0.1"
    port: int = 6443
    compact_interval: float = 300.0
    keep_revisions: int = 1000
    extra_sans: tuple[str, ...] = field(default_factory=tuple)
    # controllers run beside the server, through the API like any client
    controllers: tuple[str, ...] = ("garbagecollector", "namespace", "serviceaccount", "root-ca-cert-publisher")
    # serverless admission when DATA_DIR/config.yaml says nothing (skube up: on)
    serverless_default: bool = False
    # the default elastic scheduling policy (skube up --policy), over DATA_DIR/config.yaml's
    serverless_policy: str | None = None
    # Service ClusterIPs and node ports are allocated from these (skube.network.config)
    service_cidr: str = "10.43.0.0/16"
    node_port_range: tuple[int, int] = (30000, 32767)
    # admission plugins turned off (kube-apiserver's --disable-admission-plugins)
    disabled_admission_plugins: tuple[str, ...] = ()

    def cluster_config(self) -> dict:
        """DATA_DIR/config.yaml, the cluster's own settings (empty when absent)."""
        path = self.data_dir / "config.yaml"
        if not path.exists():
            return {}
        doc = yaml.safe_load(path.read_text()) or {}
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        return doc

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "::", "") else self.bind
        if ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{self.port}"


def prepare_pki(cfg: ServerConfig) -> tuple[PKI, object, object]:
    """CA, serving and admin certificates, and DATA_DIR/kubeconfig (reused when present)."""
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    pki = PKI(cfg.data_dir)
    pki.ensure_ca()
    hosts = ("localhost", "127.0.0.1", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
             "kubernetes.default.svc.cluster.local", str(ipaddress.ip_network(cfg.service_cidr)[1]))
    if cfg.bind not in ("0.0.0.0", "::", ""):
        hosts += (cfg.bind,)
    hosts += cfg.extra_sans
    serving = pki.issue("apiserver", "kube-apiserver", server=True, hosts=hosts)
    admin = pki.issue("admin", "system:admin", orgs=("system:masters",))
    write_kubeconfig(cfg.data_dir / "kubeconfig", cfg.url, pki.ca.cert, admin.cert, admin.key)
    return pki, serving, admin


class RunningServer:
    """An API server started inside the current event loop (used by `skube up` too)."""

    def __init__(self, cfg: ServerConfig):
        self.cfg = cfg
        self.app: APIServer | None = None
        self.store: Store | None = None
        self.uvicorn: uvicorn.Server | None = None

    async def start(self) -> None:
        cfg = self.cfg
        pki, serving, _ = prepare_pki(cfg)
        self.store = await Store.open(str(cfg.data_dir / "state.db"),
                                      compact_interval=cfg.compact_interval,
                                      keep_revisions=cfg.keep_revisions)
        # Long-lived objects (the whole current state) make full GC passes slow:
        # move what is loaded out of the collector's view and collect less often.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        serverless = ServerlessAdmission.from_config(cfg.cluster_config().get("serverless"),
                                                     default=cfg.serverless_default,
                                                     policy=cfg.serverless_policy)
        self.app = APIServer(self.store, Authenticator(), external_url=cfg.url,
                             signer=TokenSigner(pki.dir), serverless=serverless,
                             data_dir=cfg.data_dir, service_cidr=cfg.service_cidr,
                             node_port_range=cfg.node_port_range,
                             disabled_admission_plugins=cfg.disabled_admission_plugins)
        await self.app.start()
        ucfg = uvicorn.Config(
            self.app, host=cfg.bind, port=cfg.port, http=_PeerIdentityProtocol, loop="none",
            lifespan="off", log_level="warning", access_log=False,
            ssl_certfile=str(serving.cert), ssl_keyfile=str(serving.key),
            ssl_ca_certs=str(pki.ca.cert), ssl_cert_reqs=ssl.CERT_OPTIONAL,
            timeout_keep_alive=120, timeout_graceful_shutdown=2, backlog=4096,
            ws=_PeerIdentityWebSocket, ws_ping_interval=None)
        ucfg.load()
        self.uvicorn = uvicorn.Server(ucfg)
        self.uvicorn.lifespan = ucfg.lifespan_class(ucfg)
        await self.uvicorn.startup()

    async def serve_forever(self) -> None:
        assert self.uvicorn is not None
        await self.uvicorn.main_loop()

    async def stop(self) -> None:
        if self.app is not None:
            await self.app.close()
        if self.uvicorn is not None:
            self.uvicorn.should_exit = True
            await self.uvicorn.shutdown()
        if self.store is not None:
            await self.store.close()


async def run_apiserver(cfg: ServerConfig) -> None:
    """`skube apiserver`: serve until SIGINT/SIGTERM, then shut down cleanly."""
    from ..controllers import run_controllers
    srv = RunningServer(cfg)
    with _capture_signals(srv):
        await srv.start()
        stop = asyncio.Event()
        controllers = None
        if cfg.controllers:
            controllers = asyncio.create_task(run_controllers(
                str(cfg.data_dir / "kubeconfig"), list(cfg.controllers), stop=stop))
        print(f"skube apiserver ready at {cfg.url} (kubeconfig: {cfg.data_dir / 'kubeconfig'})", flush=True)
        await srv.serve_forever()
        stop.set()
        if controllers is not None:
            try:
                await asyncio.wait_for(controllers, 10)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 — shutting down regardless
                log.exception("controllers did not stop cleanly")
    await srv.stop()
    print("skube apiserver stopped", flush=True)


class _capture_signals:
    def __init__(self, srv: RunningServer):
        self.srv = srv

    def __enter__(self):
        import signal
        loop = asyncio.get_running_loop()

        def stop():
            if self.srv.uvicorn is not None:
                self.srv.uvicorn.should_exit = True
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        return self

    def __exit__(self, *exc):
        import signal
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
