"""Authentication: client certificates signed by the cluster CA, and bearer tokens.

The TLS layer verifies certificates; the server puts the verified subject's
(user, groups) into the ASGI scope under ``skube.peer``. Anything else is 401."""
from __future__ import annotations

import hmac

from ..api import errors
from .http import Request


class Authenticator:
    def __init__(self, tokens: dict[str, tuple[str, list[str]]] | None = None, verifier=None):
        # bearer token -> (user, groups)
        self.tokens = dict(tokens or {})
        # callable(token) -> (user, groups) | None, for service-account JWTs
        self.verifier = verifier

    def add_token(self, token: str, user: str, groups: list[str]) -> None:
        self.tokens[token] = (user, groups)

    def identify(self, scope: dict, authorization: str | None) -> tuple[str, list[str]] | None:
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer" and value:
                value = value.strip()
                for token, who in self.tokens.items():
                    if hmac.compare_digest(token, value):
                        return who
                if self.verifier is not None and value.count(".") == 2:
                    return self.verifier(value)
                return None
        peer = scope.get("skube.peer")
        if peer and peer[0]:
            return peer
        return None

    def authenticate(self, req: Request) -> None:
        who = self.identify(req.scope, req.headers.get("authorization"))
        if who is None:
            raise errors.unauthorized()
        req.user, req.groups = who[0], list(who[1]) + ["system:authenticated"]
