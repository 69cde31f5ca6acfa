"""Authentication and authorization of kubelet API requests, as the real kubelet
does in webhook mode.

* Authentication: a client certificate verified against the cluster CA (user =
  CN, groups = O), else a bearer token checked with a TokenReview against the API
  server. Neither → 401 (anonymous access is off, as ``--anonymous-auth=false``).
* Authorization: a SubjectAccessReview for verb (from the HTTP method: POST
  create, GET/HEAD get, PUT update, PATCH patch, DELETE delete) on
  ``nodes/<subresource>`` named after the node, the subresource from the path:
  ``/stats`` stats, ``/metrics`` metrics, ``/logs`` log, ``/spec`` spec,
  ``/checkpoint`` checkpoint, ``/configz`` configz, ``/healthz`` healthz,
  ``/pods`` pods, everything else (containerLogs, exec, attach, portForward, run)
  proxy. The fine-grained ones (configz, healthz, pods) fall back to proxy, as with
  upstream's KubeletFineGrainedAuthz. Denied → 403.

Results are cached as the kubelet caches them: token reviews 2 minutes, allowed
decisions 5 minutes, denied ones 30 seconds.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from ..client import ApiError

log = logging.getLogger("skube.node.kubelet_auth")

TOKEN_TTL = 120.0
ALLOWED_TTL = 300.0
DENIED_TTL = 30.0
TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"

_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch",
          "DELETE": "delete"}
_SUBRESOURCES = (("stats", "stats"), ("metrics", "metrics"), ("logs", "log"), ("spec", "spec"),
                 ("checkpoint", "checkpoint"), ("configz", "configz"), ("healthz", "healthz"),
                 ("pods", "pods"))
_FINE_GRAINED = ("configz", "healthz", "pods")


class AuthError(Exception):
    """``status`` 401/403/500 with the message the client gets."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""


def subresources(path: str) -> list[str]:
    """The ``nodes/<sub>`` subresources a request path is authorized as, in order."""
    first = path.strip("/").split("/", 1)[0]
    for prefix, sub in _SUBRESOURCES:
        if first == prefix:
            return [sub, "proxy"] if sub in _FINE_GRAINED else [sub]
    return ["proxy"]


def certificate_user(peercert: dict | None) -> User | None:
    """The user of a verified peer certificate (``ssl`` dict form): CN and O's."""
    if not peercert:
        return None
    cn, orgs = "", []
    for rdn in peercert.get("subject") or ():
        for k, v in rdn:
            if k == "commonName":
                cn = v
            elif k == "organizationName":
                orgs.append(v)
    return User(cn, (*orgs, "system:authenticated")) if cn else None


class KubeletAuth:
    """Checks requests with ``client`` (a skube.client.Client of the node's API server)."""

    def __init__(self, client, node_name: str, clock=time.monotonic):
        self.client = client
        self.node_name = node_name
        self.clock = clock
        self._tokens: dict[str, tuple[float, User | None]] = {}
        self._decisions: dict[tuple, tuple[float, bool]] = {}

    async def check(self, method: str, path: str, peercert: dict | None, authorization: str | None) -> User:
        """The authenticated, authorized user of a request; raises :class:`AuthError`."""
        user = await self.authenticate(peercert, authorization)
        verb = _VERBS.get(method.upper(), method.lower())
        subs = subresources(path)
        for sub in subs:
            if await self.authorize(user, verb, sub, path):
                return user
        raise AuthError(403, f"Forbidden (user={user.name}, verb={verb}, resource=nodes, "
                             f"subresource(s)=[{' '.join(subs)}])")

    async def authenticate(self, peercert: dict | None, authorization: str | None) -> User:
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token:
            user = await self._review_token(token)
            if user is None:
                raise AuthError(401, "Unauthorized")
            return user
        user = certificate_user(peercert)
        if user is None:
            raise AuthError(401, "Unauthorized")
        return user

    async def _review_token(self, token: str) -> User | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self.clock()
        hit = self._tokens.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        try:
            review = await self.client.create(TOKEN_REVIEWS, body)
        except ApiError as e:
            log.warning("TokenReview failed: %s", e)
            raise AuthError(500, f"Internal Server Error: token review failed: {e}") from None
        st = review.get("status") or {}
        u = st.get("user") or {}
        user = User(u.get("username") or "", tuple(u.get("groups") or ()), u.get("uid") or "") \
            if st.get("authenticated") and u.get("username") else None
        self._prune(self._tokens, now)
        self._tokens[key] = (now + TOKEN_TTL, user)
        return user

    async def authorize(self, user: User, verb: str, sub: str, path: str) -> bool:
        key = (user, verb, sub)
        now = self.clock()
        hit = self._decisions.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        spec = {"user": user.name, "groups": list(user.groups),
                "resourceAttributes": {"verb": verb, "group": "", "version": "v1", "resource": "nodes",
                                       "subresource": sub, "name": self.node_name}}
        if user.uid:
            spec["uid"] = user.uid
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        try:
            review = await self.client.create(ACCESS_REVIEWS, body)
        except ApiError as e:
            log.warning("SubjectAccessReview failed: %s", e)
            raise AuthError(500, f"Internal Server Error: authorization of {path} failed: {e}") from None
        allowed = bool((review.get("status") or {}).get("allowed"))
        self._prune(self._decisions, now)
        self._decisions[key] = (now + (ALLOWED_TTL if allowed else DENIED_TTL), allowed)
        return allowed

    @staticmethod
    def _prune(cache: dict, now: float, limit: int = 4096) -> None:
        if len(cache) >= limit:
            for k in [k for k, (exp, _) in cache.items() if exp <= now] or list(cache)[: limit // 2]:
                cache.pop(k, None)


__all__ = ["KubeletAuth", "AuthError", "User", "subresources", "certificate_user"]
