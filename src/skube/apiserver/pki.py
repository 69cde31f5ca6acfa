"""Cluster PKI: a CA, the API server's serving certificate and client certificates.

First start creates them under DATA_DIR/pki; later starts reuse them. Identities
follow Kubernetes: a client certificate's CN is the user, its O fields the groups.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=3650)


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(cn: str, orgs: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


class PKI:
    """Certificates of one cluster, kept in ``DIR/pki``."""

    def __init__(self, data_dir: str | Path):
        self.dir = Path(data_dir) / "pki"
        self.ca = CertPair(self.dir / "ca.crt", self.dir / "ca.key")

    def ensure_ca(self) -> None:
        if self.ca.cert.exists() and self.ca.key.exists():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        key = _new_key()
        now = dt.datetime.now(dt.timezone.utc)
        name = _name(f"skube-ca@{int(now.timestamp())}")
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + _VALIDITY)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False),
                               critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        _write_private(self.ca.key, _key_pem(key))
        _write_private(self.ca.cert, cert.public_bytes(serialization.Encoding.PEM))

    def _load_ca(self):
        cert = x509.load_pem_x509_certificate(self.ca.cert.read_bytes())
        key = serialization.load_pem_private_key(self.ca.key.read_bytes(), None)
        return cert, key

    def issue(self, stem: str, cn: str, *, orgs: tuple[str, ...] = (), server: bool = False,
              hosts: tuple[str, ...] = ()) -> CertPair:
        """Issue (or reuse) ``stem.crt``/``stem.key`` signed by the cluster CA.

        A serving certificate is re-issued when its SANs no longer cover ``hosts``."""
        self.ensure_ca()
        pair = CertPair(self.dir / f"{stem}.crt", self.dir / f"{stem}.key")
        if pair.cert.exists() and pair.key.exists() and self._covers(pair.cert, hosts):
            return pair
        ca_cert, ca_key = self._load_ca()
        key = _new_key()
        now = dt.datetime.now(dt.timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(_name(cn, orgs)).issuer_name(ca_cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + _VALIDITY)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage(
                       [ExtendedKeyUsageOID.SERVER_AUTH] if server else [ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(_sans(hosts)), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        _write_private(pair.key, _key_pem(key))
        _write_private(pair.cert, cert.public_bytes(serialization.Encoding.PEM))
        return pair

    @staticmethod
    def _covers(cert_path: Path, hosts: tuple[str, ...]) -> bool:
        if not hosts:
            return True
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return False
        have = {str(v) for v in san.get_values_for_type(x509.DNSName)}
        have |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
        return all(_canonical_host(h) in have for h in hosts)


def _canonical_host(h: str) -> str:
    try:
        return str(ipaddress.ip_address(h))
    except ValueError:
        return h


def _sans(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    seen = set()
    for h in hosts:
        h = _canonical_host(h)
        if h in seen:
            continue
        seen.add(h)
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            out.append(x509.DNSName(h))
    return out


def subject_identity(subject: tuple) -> tuple[str, list[str]]:
    """(user, groups) from an ``ssl`` peer-certificate subject (CN = user, O = groups)."""
    user, groups = "", []
    for rdn in subject:
        for key, value in rdn:
            if key == "commonName":
                user = value
            elif key == "organizationName":
                groups.append(value)
    return user, groups
