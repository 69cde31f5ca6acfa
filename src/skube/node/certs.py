"""Certificates of the kubelet API: a serving certificate, and the CA that signs
the clients allowed in.

The serving certificate is signed by the cluster CA when the node can read the
CA key (standalone: the kubeconfig sits in the cluster's data dir, beside
``pki/ca.key``), else self-signed. Either way it is kept in the node's data dir
and re-issued when its SANs or issuer no longer fit.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger("skube.node.certs")

VALIDITY = dt.timedelta(days=365)


def _write(path: Path, data: bytes, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def find_cluster_ca_key(ca_pem: bytes | None, candidates: list[Path]) -> tuple[x509.Certificate, object] | None:
    """The cluster CA (cert, key) if one of ``candidates`` (data dirs) holds
    ``pki/ca.crt`` + ``pki/ca.key`` matching ``ca_pem`` (the kubeconfig's CA)."""
    if not ca_pem:
        return None
    try:
        want = x509.load_pem_x509_certificate(ca_pem)
    except ValueError:
        return None
    for d in candidates:
        crt, key = d / "pki" / "ca.crt", d / "pki" / "ca.key"
        try:
            cert = x509.load_pem_x509_certificate(crt.read_bytes())
            if cert != want:
                continue
            return cert, serialization.load_pem_private_key(key.read_bytes(), None)
        except (OSError, ValueError):
            continue
    return None


def _sans(hosts: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for h in dict.fromkeys(hosts):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            out.append(x509.DNSName(h))
    return out


def ensure_serving_cert(cert_dir: Path, node_name: str, hosts: list[str],
                        ca: tuple[x509.Certificate, object] | None) -> tuple[Path, Path]:
    """``kubelet.crt``/``kubelet.key`` in ``cert_dir`` for ``hosts``, signed by ``ca``
    (or self-signed); reused while still fitting."""
    crt_path, key_path = cert_dir / "kubelet.crt", cert_dir / "kubelet.key"
    if crt_path.exists() and key_path.exists():
        try:
            cur = x509.load_pem_x509_certificate(crt_path.read_bytes())
            san = cur.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            have = {str(v) for v in san.get_values_for_type(x509.DNSName)} | \
                {str(v) for v in san.get_values_for_type(x509.IPAddress)}
            want_issuer = ca[0].subject if ca else cur.subject
            fresh = cur.not_valid_after_utc > dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=7)
            if set(hosts) <= have and cur.issuer == want_issuer and fresh:
                return crt_path, key_path
        except (ValueError, x509.ExtensionNotFound):
            pass
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node_name}")])
    issuer_name, signing_key = (ca[0].subject, ca[1]) if ca else (subject, key)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + VALIDITY)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False),
                              critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
               .add_extension(x509.SubjectAlternativeName(_sans(hosts)), critical=False))
    cert = builder.sign(signing_key, hashes.SHA256())
    _write(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    _write(crt_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    log.info("issued kubelet serving certificate (%s)", "cluster CA" if ca else "self-signed")
    return crt_path, key_path


def server_ssl_context(cert: Path, key: Path, client_ca_pem: bytes | None) -> ssl.SSLContext:
    """TLS for the kubelet API: our certificate; client certificates from
    ``client_ca_pem`` are asked for (optional at the TLS level, required by the app)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    if client_ca_pem:
        ctx.load_verify_locations(cadata=client_ca_pem.decode())
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def client_ssl_context(ca_pem: bytes | None, cert_pem: bytes, key_pem: bytes,
                       verify: bool = True) -> ssl.SSLContext:
    """TLS for a client of a kubelet (tests, the API server's proxy)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify and ca_pem:
        ctx.load_verify_locations(cadata=ca_pem.decode())
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    fd, path = tempfile.mkstemp(prefix="skube-kubelet-client-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(cert_pem.rstrip(b"\n") + b"\n" + key_pem)
        ctx.load_cert_chain(path)
    finally:
        os.unlink(path)
    return ctx


__all__ = ["find_cluster_ca_key", "ensure_serving_cert", "server_ssl_context", "client_ssl_context"]
