"""kubeconfig loading, in-cluster config and exec credential plugins."""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import ssl
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from skube.client import ApiError, Client
from skube.client.config import (ConfigError, load_incluster_config, load_kubeconfig)


# ---- fixtures ---------------------------------------------------------------------------


def _cert(cn: str, issuer_key=None, issuer_name=None, ca: bool = False):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name or name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key or key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return pem, key_pem, key, name


@pytest.fixture(scope="module")
def pki():
    ca_pem, _, ca_key, ca_name = _cert("test-ca", ca=True)
    client_pem, client_key, _, _ = _cert("alice", ca_key, ca_name)
    return {"ca": ca_pem, "cert": client_pem, "key": client_key}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def kubeconfig(clusters, users, contexts, current=None) -> dict:
    doc = {"apiVersion": "v1", "kind": "Config",
           "clusters": [{"name": n, "cluster": c} for n, c in clusters.items()],
           "users": [{"name": n, "user": u} for n, u in users.items()],
           "contexts": [{"name": n, "context": c} for n, c in contexts.items()]}
    if current:
        doc["current-context"] = current
    return doc


# ---- kubeconfig files -------------------------------------------------------------------


def test_data_fields_context_namespace_and_tls(tmp_path, pki):
    path = write(tmp_path / "config", kubeconfig(
        {"c1": {"server": "https://10.0.0.1:6443/", "certificate-authority-data": b64(pki["ca"])}},
        {"u1": {"client-certificate-data": b64(pki["cert"]), "client-key-data": b64(pki["key"])}},
        {"ctx": {"cluster": "c1", "user": "u1", "namespace": "team-a"}}, current="ctx"))
    cfg = load_kubeconfig(path)
    assert cfg.server == "https://10.0.0.1:6443" and cfg.namespace == "team-a" and cfg.context == "ctx"
    assert cfg.ca_data == pki["ca"] and cfg.client_cert_data == pki["cert"]
    ctx = cfg.ssl_context()
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert len(ctx.get_ca_certs()) == 1
    assert cfg.ssl_context() is ctx        # built once
    assert asyncio.run(cfg.auth_headers()) == {}


def test_file_references_are_relative_to_the_kubeconfig(tmp_path, pki):
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_bytes(pki["ca"])
    (tmp_path / "certs" / "c.pem").write_bytes(pki["cert"])
    (tmp_path / "certs" / "k.pem").write_bytes(pki["key"])
    path = write(tmp_path / "config", kubeconfig(
        {"c": {"server": "https://h:1", "certificate-authority": "certs/ca.pem"}},
        {"u": {"client-certificate": "certs/c.pem", "client-key": "certs/k.pem"}},
        {"x": {"cluster": "c", "user": "u"}}, current="x"))
    cfg = load_kubeconfig(path)
    assert cfg.ca_data == pki["ca"] and cfg.client_key_data == pki["key"] and cfg.namespace == "default"
    cfg.ssl_context()


def test_kubeconfig_env_list_merges_first_wins_and_context_override(tmp_path, monkeypatch):
    first = write(tmp_path / "a", kubeconfig(
        {"shared": {"server": "https://first:1"}}, {"u": {"token": "first-token"}},
        {"one": {"cluster": "shared", "user": "u"}}))
    second = write(tmp_path / "b", kubeconfig(
        {"shared": {"server": "https://second:1"}, "other": {"server": "http://other:8080"}},
        {"u": {"token": "second-token"}, "v": {"username": "bob", "password": "pw"}},
        {"one": {"cluster": "other", "user": "v"}, "two": {"cluster": "other", "user": "v"}},
        current="one"))
    monkeypatch.setenv("KUBECONFIG", f"{first}{os.pathsep}{tmp_path / 'missing'}{os.pathsep}{second}")
    cfg = load_kubeconfig()
    # current-context comes from the second file, but context "one" from the first
    assert cfg.context == "one" and cfg.server == "https://first:1"
    assert asyncio.run(cfg.auth_headers()) == {"Authorization": "Bearer first-token"}
    two = load_kubeconfig(context="two")
    assert two.server == "http://other:8080" and two.ssl_context() is None
    assert asyncio.run(two.auth_headers()) == {"Authorization": "Basic " + b64(b"bob:pw")}
    with pytest.raises(ConfigError, match="context 'nope' not found"):
        load_kubeconfig(context="nope")


def test_token_file_insecure_and_errors(tmp_path):
    token = tmp_path / "token"
    token.write_text("tok-1\n")
    path = write(tmp_path / "config", kubeconfig(
        {"c": {"server": "https://h:1", "insecure-skip-tls-verify": True, "tls-server-name": "api"}},
        {"u": {"tokenFile": "token"}}, {"x": {"cluster": "c", "user": "u"}}, current="x"))
    cfg = load_kubeconfig(path)
    assert cfg.tls_server_name == "api"
    assert cfg.ssl_context().verify_mode == ssl.CERT_NONE
    assert asyncio.run(cfg.auth_headers()) == {"Authorization": "Bearer tok-1"}
    token.write_text("tok-2")
    assert asyncio.run(cfg.auth_headers())["Authorization"] == "Bearer tok-1"   # cached
    assert cfg.on_unauthorized()            # a 401 forces a re-read
    assert asyncio.run(cfg.auth_headers())["Authorization"] == "Bearer tok-2"
    with pytest.raises(ConfigError, match="does not exist"):
        load_kubeconfig(tmp_path / "nothing")
    write(tmp_path / "nocur", kubeconfig({}, {}, {}))
    with pytest.raises(ConfigError, match="current-context"):
        load_kubeconfig(tmp_path / "nocur")


# ---- exec plugins -----------------------------------------------------------------------


PLUGIN = textwrap.dedent("""\
    import json, os, sys
    from pathlib import Path
    state = Path(os.environ["STATE"])
    n = int(state.read_text()) + 1 if state.exists() else 1
    state.write_text(str(n))
    info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
    Path(os.environ["STATE"] + ".info").write_text(json.dumps({"info": info, "args": sys.argv[1:]}))
    status = json.loads(os.environ.get("STATUS", "{}"))
    if "token" not in status and "clientCertificateData" not in status:
        status["token"] = f"tok-{n}"
    out = {"apiVersion": os.environ.get("OUT_VERSION", info["apiVersion"]), "kind": "ExecCredential",
           "status": status}
    print(json.dumps(out))
""")


def exec_config(tmp_path: Path, *, api_version="client.authentication.k8s.io/v1", status=None,
                provide_cluster_info=False, out_version=None, server="https://h:1") -> Path:
    script = tmp_path / "plugin.py"
    script.write_text(PLUGIN)
    env = [{"name": "STATE", "value": str(tmp_path / "state")}]
    if status is not None:
        env.append({"name": "STATUS", "value": json.dumps(status)})
    if out_version:
        env.append({"name": "OUT_VERSION", "value": out_version})
    user = {"exec": {"apiVersion": api_version, "command": sys.executable, "args": [str(script), "--flag"],
                     "env": env, "interactiveMode": "Never",
                     "provideClusterInfo": provide_cluster_info}}
    cluster = {"server": server, "insecure-skip-tls-verify": True,
               "extensions": [{"name": "client.authentication.k8s.io/exec",
                               "extension": {"audience": "skube"}}]}
    return write(tmp_path / "config", kubeconfig({"c": cluster}, {"u": user},
                                                 {"x": {"cluster": "c", "user": "u"}}, current="x"))


def runs(tmp_path: Path) -> int:
    return int((tmp_path / "state").read_text())


def test_exec_plugin_protocol_and_caching_until_expiry(tmp_path):
    future = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cfg = load_kubeconfig(exec_config(tmp_path, status={"token": "abc", "expirationTimestamp": future},
                                      provide_cluster_info=True))

    async def main():
        assert await cfg.auth_headers() == {"Authorization": "Bearer abc"}
        assert await cfg.auth_headers() == {"Authorization": "Bearer abc"}
    asyncio.run(main())
    assert runs(tmp_path) == 1           # cached until expirationTimestamp
    seen = json.loads((tmp_path / "state.info").read_text())
    assert seen["args"] == ["--flag"]
    info = seen["info"]
    assert info["apiVersion"] == "client.authentication.k8s.io/v1" and info["kind"] == "ExecCredential"
    assert info["spec"]["interactive"] is False
    assert info["spec"]["cluster"]["server"] == "https://h:1"
    assert info["spec"]["cluster"]["config"] == {"audience": "skube"}
    assert cfg.on_unauthorized()         # a 401 drops the cached credential
    asyncio.run(cfg.auth_headers())
    assert runs(tmp_path) == 2


def test_exec_plugin_expired_credential_is_refreshed_and_v1beta1(tmp_path):
    past = "2001-01-01T00:00:00Z"
    cfg = load_kubeconfig(exec_config(tmp_path, api_version="client.authentication.k8s.io/v1beta1",
                                      status={"token": "old", "expirationTimestamp": past}))

    async def main():
        await cfg.auth_headers()
        await cfg.auth_headers()
    asyncio.run(main())
    assert runs(tmp_path) == 2
    info = json.loads((tmp_path / "state.info").read_text())["info"]
    assert info["apiVersion"] == "client.authentication.k8s.io/v1beta1" and "cluster" not in info["spec"]


def test_exec_plugin_client_certificate_and_errors(tmp_path, pki):
    cfg = load_kubeconfig(exec_config(tmp_path, status={"clientCertificateData": pki["cert"].decode(),
                                                        "clientKeyData": pki["key"].decode()}))

    async def main():
        assert await cfg.auth_headers() == {}
        cred = await cfg.exec_credential()
        ctx = cfg.ssl_context(cred)
        assert ctx is not cfg.ssl_context(None)      # a context with the plugin's certificate
    asyncio.run(main())

    bad = load_kubeconfig(exec_config(tmp_path, out_version="client.authentication.k8s.io/v1beta1"))
    with pytest.raises(ConfigError, match="returned apiVersion"):
        asyncio.run(bad.auth_headers())
    with pytest.raises(ConfigError, match="unsupported apiVersion"):
        load_kubeconfig(exec_config(tmp_path, api_version="client.authentication.k8s.io/v1alpha1"))


def test_client_reruns_exec_plugin_after_401(tmp_path):
    """The server accepts only the plugin's second token: the first request gets a
    401, the client runs the plugin again and retries once."""
    async def main():
        async def handler(request):
            if request.headers.get("Authorization") != "Bearer tok-2":
                return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                          "reason": "Unauthorized", "message": "Unauthorized",
                                          "code": 401}, status=401)
            assert request.headers["User-Agent"] == "skube/test"
            return web.json_response({"kind": "ConfigMap", "metadata": {"name": "x"}})

        app = web.Application()
        app.router.add_get("/api/v1/namespaces/default/configmaps/x", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            cfg = load_kubeconfig(exec_config(tmp_path, server=f"http://127.0.0.1:{port}"))
            async with Client(cfg, "test") as c:
                got = await c.request("GET", "/api/v1/namespaces/default/configmaps/x")
                assert got["metadata"]["name"] == "x"
                assert runs(tmp_path) == 2
                (tmp_path / "state").write_text("5")      # tok-6 next: refused twice -> error
                cfg.exec_provider.invalidate()
                with pytest.raises(ApiError) as e:
                    await c.request("GET", "/api/v1/namespaces/default/configmaps/x")
                assert e.value.status == 401 and e.value.reason == "Unauthorized"
        finally:
            await runner.cleanup()
    asyncio.run(main())


# ---- in-cluster -------------------------------------------------------------------------


def test_in_cluster_config(tmp_path, pki):
    sa = tmp_path / "var/run/secrets/kubernetes.io/serviceaccount"
    sa.mkdir(parents=True)
    (sa / "token").write_text("sa-token\n")
    (sa / "ca.crt").write_bytes(pki["ca"])
    (sa / "namespace").write_text("apps")
    cfg = load_incluster_config(tmp_path, {"KUBERNETES_SERVICE_HOST": "10.43.0.1",
                                           "KUBERNETES_SERVICE_PORT": "443"})
    assert cfg.server == "https://10.43.0.1:443" and cfg.namespace == "apps" and cfg.ca_data == pki["ca"]
    assert asyncio.run(cfg.auth_headers()) == {"Authorization": "Bearer sa-token"}
    v6 = load_incluster_config(tmp_path, {"KUBERNETES_SERVICE_HOST": "fd00::1",
                                          "KUBERNETES_SERVICE_PORT": "6443"})
    assert v6.server == "https://[fd00::1]:6443"
    with pytest.raises(ConfigError, match="KUBERNETES_SERVICE_HOST"):
        load_incluster_config(tmp_path, {})
    with pytest.raises(ConfigError, match="does not exist"):
        load_incluster_config(tmp_path / "elsewhere", {"KUBERNETES_SERVICE_HOST": "h",
                                                       "KUBERNETES_SERVICE_PORT": "1"})
