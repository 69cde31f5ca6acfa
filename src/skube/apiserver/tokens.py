"""Service-account tokens: signed JWTs (ES256) as the TokenRequest API issues them,
and their verification for bearer-token authentication."""
from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600
# a pod-bound request for exactly this long (what projected volumes ask for) gets a token
# valid for EXPIRATION_EXTENSION with a ``warnafter`` claim instead (kube-apiserver's
# --service-account-extend-token-expiration, on by default)
WARN_ONLY_EXPIRATION = 3607
EXPIRATION_EXTENSION = 365 * 24 * 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class TokenSigner:
    """Signs and verifies service-account JWTs with the cluster's ``sa.key``."""

    def __init__(self, pki_dir: Path):
        path = Path(pki_dir) / "sa.key"
        if not path.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
        self.key = serialization.load_pem_private_key(path.read_bytes(), None)
        pub = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = _b64(hashlib.sha256(pub).digest())

    def sign(self, claims: dict) -> str:
        header = {"alg": "ES256", "kid": self.kid}
        signing_input = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}".encode()
        der = self.key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input.decode() + "." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def verify(self, token: str) -> dict | None:
        """The claims of a valid, unexpired token signed by this cluster; else None."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = orjson.loads(_unb64(parts[0]))
            if header.get("alg") != "ES256":
                return None
            raw = _unb64(parts[2])
            if len(raw) != 64:
                return None
            sig = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
            self.key.public_key().verify(sig, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
            claims = orjson.loads(_unb64(parts[1]))
        except (ValueError, InvalidSignature, orjson.JSONDecodeError):
            return None
        now = time.time()
        if claims.get("iss") != ISSUER or claims.get("exp", 0) < now or claims.get("nbf", 0) > now + 60:
            return None
        return claims

    def issue(self, namespace: str, sa_name: str, sa_uid: str, *, audiences: list[str] | None = None,
              expiration: int = DEFAULT_EXPIRATION, bound: dict | None = None,
              warn_after: int | None = None, node: dict | None = None) -> tuple[str, int]:
        """A token for the service account; returns (token, expiry as a unix time).
        ``warn_after``: seconds until the ``warnafter`` claim; ``node``: the bound pod's node."""
        now = int(time.time())
        exp = now + expiration
        private: dict = {"namespace": namespace, "serviceaccount": {"name": sa_name, "uid": sa_uid}}
        if bound:
            private[bound["kind"].lower()] = {"name": bound["name"], "uid": bound.get("uid", "")}
        if node:
            private["node"] = {"name": node["name"], "uid": node.get("uid", "")}
        if warn_after:
            private["warnafter"] = now + warn_after
        claims = {"aud": audiences or [ISSUER], "exp": exp, "iat": now, "jti": str(uuid.uuid4()), "nbf": now,
                  "iss": ISSUER, "sub": f"system:serviceaccount:{namespace}:{sa_name}", "kubernetes.io": private}
        return self.sign(claims), exp
