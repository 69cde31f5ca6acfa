"""Where and how to reach an API server: kubeconfig files, in-cluster service
accounts, and the credentials they name (certificates, tokens, exec plugins).

``load_kubeconfig()`` follows clientcmd's loading rules: ``KUBECONFIG`` (a
``:``-separated list, the first file to define a name wins) or ``~/.kube/config``,
and the in-cluster service account when neither exists. The result is a
:class:`ClientConfig`, which builds the ``ssl.SSLContext`` and the
``Authorization`` header of each request.
"""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import os
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import yaml

SERVICE_ACCOUNT_DIR = "var/run/secrets/kubernetes.io/serviceaccount"
EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
# client-go re-reads a service-account token file at most once a minute
TOKEN_FILE_REFRESH = 60.0


class ConfigError(Exception):
    """The kubeconfig (or in-cluster environment) cannot produce a usable config."""


# ---- credentials ----------------------------------------------------------------------


@dataclass
class ExecCredential:
    """What an exec plugin returned: a token and/or a client certificate, maybe expiring."""
    token: str | None = None
    client_certificate_data: str | None = None
    client_key_data: str | None = None
    expires_at: float | None = None          # time.time() seconds; None = never

    def valid(self, now: float | None = None) -> bool:
        return self.expires_at is None or (now or time.time()) < self.expires_at


def _parse_time(value: str) -> float:
    s = value.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    t = dt.datetime.fromisoformat(s)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.timestamp()


@dataclass
class ExecProvider:
    """A ``users[].user.exec`` entry: runs the plugin, caches its credential until
    ``status.expirationTimestamp``, and runs it again after a 401."""
    command: str
    api_version: str
    args: list[str] = field(default_factory=list)
    env: list[dict] = field(default_factory=list)
    provide_cluster_info: bool = False
    interactive_mode: str = "IfAvailable"
    install_hint: str = ""
    cluster_info: dict | None = None
    _cached: ExecCredential | None = field(default=None, repr=False)
    _lock: asyncio.Lock | None = field(default=None, repr=False)

    def exec_info(self) -> dict:
        """The ExecCredential passed to the plugin in ``KUBERNETES_EXEC_INFO``."""
        spec: dict = {"interactive": False}
        if self.provide_cluster_info and self.cluster_info is not None:
            spec["cluster"] = self.cluster_info
        return {"apiVersion": self.api_version, "kind": "ExecCredential", "spec": spec}

    def invalidate(self) -> None:
        self._cached = None

    async def credential(self) -> ExecCredential:
        if self._cached is not None and self._cached.valid():
            return self._cached
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._cached is not None and self._cached.valid():
                return self._cached
            self._cached = await self._run()
            return self._cached

    async def _run(self) -> ExecCredential:
        if self.interactive_mode == "Always":
            raise ConfigError(f"exec plugin {self.command!r} requires an interactive terminal "
                              "(interactiveMode: Always)")
        env = dict(os.environ)
        for e in self.env:
            env[str(e.get("name"))] = str(e.get("value", ""))
        env["KUBERNETES_EXEC_INFO"] = orjson.dumps(self.exec_info()).decode()
        try:
            proc = await asyncio.create_subprocess_exec(
                self.command, *self.args, env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        except OSError as e:
            hint = f"\n\n{self.install_hint}" if self.install_hint else ""
            raise ConfigError(f"exec plugin {self.command!r} could not be started: {e}{hint}") from None
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise ConfigError(f"exec plugin {self.command!r} failed with exit code "
                              f"{proc.returncode}: {err.decode(errors='replace').strip()}")
        return self.parse_output(out)

    def parse_output(self, out: bytes) -> ExecCredential:
        try:
            doc = orjson.loads(out)
        except orjson.JSONDecodeError as e:
            raise ConfigError(f"exec plugin {self.command!r} wrote invalid JSON: {e}") from None
        if not isinstance(doc, dict) or doc.get("kind") != "ExecCredential":
            raise ConfigError(f"exec plugin {self.command!r} did not return an ExecCredential")
        if doc.get("apiVersion") != self.api_version:
            raise ConfigError(f"exec plugin {self.command!r} returned apiVersion "
                              f"{doc.get('apiVersion')!r}, configured {self.api_version!r}")
        status = doc.get("status") or {}
        cred = ExecCredential(token=status.get("token") or None,
                              client_certificate_data=status.get("clientCertificateData") or None,
                              client_key_data=status.get("clientKeyData") or None)
        if bool(cred.client_certificate_data) != bool(cred.client_key_data):
            raise ConfigError(f"exec plugin {self.command!r} returned only one of "
                              "clientCertificateData and clientKeyData")
        if not cred.token and not cred.client_certificate_data:
            raise ConfigError(f"exec plugin {self.command!r} returned no token and no certificate")
        if status.get("expirationTimestamp"):
            cred.expires_at = _parse_time(status["expirationTimestamp"])
        return cred


# ---- the config -----------------------------------------------------------------------


@dataclass
class ClientConfig:
    """Everything needed to talk to one API server as one user."""
    server: str
    namespace: str = "default"
    ca_data: bytes | None = None             # PEM
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    client_cert_data: bytes | None = None    # PEM
    client_key_data: bytes | None = None     # PEM
    token: str | None = None
    token_file: str | None = None
    username: str | None = None
    password: str | None = None
    exec_provider: ExecProvider | None = None
    context: str | None = None
    _file_token: tuple[float, str] | None = field(default=None, repr=False)
    _ssl: tuple[object, ssl.SSLContext] | None = field(default=None, repr=False)

    # -- TLS

    def ssl_context(self, exec_cred: ExecCredential | None = None) -> ssl.SSLContext | None:
        """The TLS context for this server (None for plain http://).

        Rebuilt only when an exec plugin hands out a different client certificate."""
        if not self.server.startswith("https"):
            return None
        cert = self.client_cert_data, self.client_key_data
        if exec_cred is not None and exec_cred.client_certificate_data:
            cert = (exec_cred.client_certificate_data.encode(), exec_cred.client_key_data.encode())
        if self._ssl is not None and self._ssl[0] == cert:
            return self._ssl[1]
        if self.ca_data and not self.insecure_skip_tls_verify:
            # a configured CA is the only one trusted (as client-go does), not the system roots
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(cadata=self.ca_data.decode())
        else:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        if self.insecure_skip_tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if cert[0] and cert[1]:
            _load_cert_chain(ctx, cert[0], cert[1])
        self._ssl = (cert, ctx)
        return ctx

    # -- auth

    async def exec_credential(self) -> ExecCredential | None:
        return await self.exec_provider.credential() if self.exec_provider else None

    def bearer_token(self) -> str | None:
        """The static token, or the token file's content (re-read every minute, as
        service-account tokens rotate)."""
        if self.token_file:
            now = time.monotonic()
            if self._file_token is None or now - self._file_token[0] > TOKEN_FILE_REFRESH:
                try:
                    self._file_token = (now, Path(self.token_file).read_text().strip())
                except OSError:
                    if self._file_token is None:
                        raise
            return self._file_token[1]
        return self.token

    async def auth_headers(self) -> dict[str, str]:
        """The Authorization header for the next request (may run an exec plugin)."""
        cred = await self.exec_credential()
        if cred is not None and cred.token:
            return {"Authorization": f"Bearer {cred.token}"}
        token = self.bearer_token()
        if token:
            return {"Authorization": f"Bearer {token}"}
        if self.username is not None and self.password is not None:
            basic = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return {"Authorization": f"Basic {basic}"}
        return {}

    def on_unauthorized(self) -> bool:
        """A request got 401: drop cached credentials. True if a retry may help."""
        retry = False
        if self.exec_provider is not None:
            self.exec_provider.invalidate()
            retry = True
        if self.token_file:
            self._file_token = None
            retry = True
        return retry


def _load_cert_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """ssl only loads certificates from files: write both to a private temp file."""
    fd, path = tempfile.mkstemp(prefix="skube-client-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(cert.rstrip(b"\n") + b"\n" + key)
        ctx.load_cert_chain(path)
    finally:
        os.unlink(path)


# ---- kubeconfig loading -----------------------------------------------------------------


def _read_yaml(path: Path) -> dict:
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid kubeconfig: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: invalid kubeconfig: not a mapping")
    return doc


def _resolve(base: Path, value: str | None) -> str | None:
    """Relative file references in a kubeconfig are relative to that file."""
    if not value:
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else base / p)


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=False)
    except (ValueError, TypeError):
        raise ConfigError(f"{what} is not valid base64") from None


def _merged(paths: list[Path]) -> dict:
    """clientcmd merging: the first file that sets a value (or a named entry) wins;
    file paths inside each file are made absolute first."""
    out: dict = {"clusters": {}, "users": {}, "contexts": {}, "current-context": None}
    for path in paths:
        doc = _read_yaml(path)
        base = path.parent
        if not out["current-context"] and doc.get("current-context"):
            out["current-context"] = doc["current-context"]
        for section, keys in (("clusters", ("certificate-authority",)),
                              ("users", ("client-certificate", "client-key", "tokenFile"))):
            for entry in doc.get(section) or []:
                name = entry.get("name")
                body = dict(entry.get(section[:-1]) or {})
                if name is None or name in out[section]:
                    continue
                for k in keys:
                    body[k] = _resolve(base, body.get(k))
                ex = body.get("exec")
                if isinstance(ex, dict) and ex.get("command") and "/" in ex["command"]:
                    body["exec"] = dict(ex, command=_resolve(base, ex["command"]))
                out[section][name] = body
        for entry in doc.get("contexts") or []:
            name = entry.get("name")
            if name is not None and name not in out["contexts"]:
                out["contexts"][name] = dict(entry.get("context") or {})
    return out


def default_kubeconfig_paths() -> list[Path]:
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def load_kubeconfig(path: str | os.PathLike | None = None, context: str | None = None) -> ClientConfig:
    """Load a kubeconfig: ``path`` (a file, or a ``:``-separated list), else
    ``$KUBECONFIG``, else ``~/.kube/config``; with neither present, the in-cluster
    service account. ``context`` overrides ``current-context``."""
    if path is not None:
        paths = [Path(p).expanduser() for p in str(path).split(os.pathsep) if p]
        missing = [p for p in paths if not p.exists()]
        if missing and len(missing) == len(paths):
            raise ConfigError(f"kubeconfig {path} does not exist")
    else:
        paths = default_kubeconfig_paths()
    existing = [p for p in paths if p.exists()]
    if not existing:
        if path is None and in_cluster_available():
            return load_incluster_config()
        raise ConfigError("no kubeconfig found (tried %s) and not running in a cluster"
                          % ", ".join(map(str, paths)))
    return config_from_dict(_merged(existing), context=context)


def config_from_dict(merged: dict, context: str | None = None) -> ClientConfig:
    """Build a ClientConfig from merged kubeconfig sections (see ``_merged``)."""
    name = context or merged.get("current-context")
    if not name:
        raise ConfigError("kubeconfig has no current-context and none was given")
    ctx = merged["contexts"].get(name)
    if ctx is None:
        raise ConfigError(f"context {name!r} not found in kubeconfig")
    cluster = merged["clusters"].get(ctx.get("cluster"))
    if cluster is None:
        raise ConfigError(f"cluster {ctx.get('cluster')!r} of context {name!r} not found")
    user = merged["users"].get(ctx.get("user"), {}) if ctx.get("user") else {}
    server = cluster.get("server")
    if not server:
        raise ConfigError(f"cluster {ctx.get('cluster')!r} has no server")

    def data_or_file(section: dict, key: str, what: str) -> bytes | None:
        if section.get(f"{key}-data"):
            return _b64(section[f"{key}-data"], f"{what} {key}-data")
        if section.get(key):
            try:
                return Path(section[key]).read_bytes()
            except OSError as e:
                raise ConfigError(f"{what} {key}: {e}") from None
        return None

    cfg = ClientConfig(
        server=server.rstrip("/"),
        namespace=ctx.get("namespace") or "default",
        ca_data=data_or_file(cluster, "certificate-authority", "cluster"),
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name"),
        client_cert_data=data_or_file(user, "client-certificate", "user"),
        client_key_data=data_or_file(user, "client-key", "user"),
        token=user.get("token") or None,
        token_file=user.get("tokenFile") if not user.get("token") else None,
        username=user.get("username"),
        password=user.get("password"),
        context=name,
    )
    ex = user.get("exec")
    if ex:
        cfg.exec_provider = _exec_provider(ex, cluster, cfg)
    return cfg


def _exec_provider(ex: dict, cluster: dict, cfg: ClientConfig) -> ExecProvider:
    api_version = ex.get("apiVersion")
    if api_version not in EXEC_API_VERSIONS:
        raise ConfigError(f"exec plugin: unsupported apiVersion {api_version!r} "
                          f"(supported: {', '.join(EXEC_API_VERSIONS)})")
    if not ex.get("command"):
        raise ConfigError("exec plugin: command is required")
    mode = ex.get("interactiveMode") or ("" if api_version.endswith("/v1") else "IfAvailable")
    if mode not in ("Never", "IfAvailable", "Always"):
        raise ConfigError(f"exec plugin: interactiveMode must be Never, IfAvailable or Always, "
                          f"not {mode!r}")
    info: dict = {"server": cfg.server}
    if cfg.tls_server_name:
        info["tls-server-name"] = cfg.tls_server_name
    if cfg.insecure_skip_tls_verify:
        info["insecure-skip-tls-verify"] = True
    if cfg.ca_data:
        info["certificate-authority-data"] = base64.b64encode(cfg.ca_data).decode()
    if cluster.get("proxy-url"):
        info["proxy-url"] = cluster["proxy-url"]
    for ext in cluster.get("extensions") or []:
        if ext.get("name") == "client.authentication.k8s.io/exec":
            info["config"] = ext.get("extension")
    return ExecProvider(command=ex["command"], api_version=api_version,
                        args=[str(a) for a in ex.get("args") or []],
                        env=list(ex.get("env") or []),
                        provide_cluster_info=bool(ex.get("provideClusterInfo")),
                        interactive_mode=mode, install_hint=ex.get("installHint") or "",
                        cluster_info=info)


# ---- in-cluster -------------------------------------------------------------------------


def in_cluster_available(root: str | os.PathLike | None = None, env: dict | None = None) -> bool:
    env = os.environ if env is None else env
    base = Path(root or "/") / SERVICE_ACCOUNT_DIR
    return bool(env.get("KUBERNETES_SERVICE_HOST") and env.get("KUBERNETES_SERVICE_PORT")) \
        and (base / "token").exists()


def load_incluster_config(root: str | os.PathLike | None = None, env: dict | None = None) -> ClientConfig:
    """The pod's service account: token (re-read as it rotates), CA and namespace from
    ``ROOT/var/run/secrets/kubernetes.io/serviceaccount``, server from
    ``KUBERNETES_SERVICE_HOST``/``_PORT``."""
    env = os.environ if env is None else env
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError("unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and "
                          "KUBERNETES_SERVICE_PORT must be defined")
    base = Path(root or "/") / SERVICE_ACCOUNT_DIR
    token_file = base / "token"
    if not token_file.exists():
        raise ConfigError(f"unable to load in-cluster configuration: {token_file} does not exist")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    ca = base / "ca.crt"
    ns_file = base / "namespace"
    namespace = ns_file.read_text().strip() if ns_file.exists() else "default"
    return ClientConfig(server=f"https://{host}:{port}", namespace=namespace or "default",
                        ca_data=ca.read_bytes() if ca.exists() else None,
                        token_file=str(token_file), context="in-cluster")


__all__ = ["ClientConfig", "ConfigError", "ExecCredential", "ExecProvider", "load_kubeconfig",
           "load_incluster_config", "in_cluster_available", "config_from_dict",
           "default_kubeconfig_paths"]
