"""TokenReview (authentication.k8s.io/v1) and SubjectAccessReview /
SelfSubjectAccessReview (authorization.k8s.io/v1): create-only resources that
nothing stores; the answer comes from this server's own authenticator and RBAC.

Kubelets in webhook mode (skube's virtual node, or any real kubelet pointed at
this server) use them to check the bearer tokens and the requests they receive.
The caller needs ``create`` on the review resource (checked by the router).
"""
from __future__ import annotations

from ..api import errors
from .authz import Attributes
from .http import Request, send_json
from .tokens import ISSUER

AUTHN = "authentication.k8s.io"
AUTHZ = "authorization.k8s.io"
RESOURCES = {(AUTHN, "tokenreviews"), (AUTHZ, "subjectaccessreviews"),
             (AUTHZ, "selfsubjectaccessreviews")}


def handles(group: str, plural: str) -> bool:
    return (group, plural) in RESOURCES


async def handle(server, req: Request, send, info, ns: str | None, name: str | None) -> None:
    """POST of a review: validate, evaluate, answer 201 with ``status`` filled in."""
    if req.method != "POST" or name is not None:
        raise errors.method_not_allowed("the server does not allow this method on the requested resource")
    obj = await req.json()
    if not isinstance(obj, dict) or obj.get("kind") not in (None, "", info.kind):
        raise errors.bad_request(f"the body must be a {info.kind} of {info.group_version}")
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise errors.invalid(info.kind, "", [errors.cause("spec", "Required value", "FieldValueRequired")],
                             info.group)
    if info.plural == "tokenreviews":
        status = token_review(server, spec)
    elif info.plural == "subjectaccessreviews":
        status = access_review(server, spec, spec.get("user") or "", spec.get("groups") or [], info)
    else:
        status = access_review(server, spec, req.user, req.groups, info)
        spec = {k: v for k, v in spec.items() if k in ("resourceAttributes", "nonResourceAttributes")}
    meta = dict(obj.get("metadata") or {})
    meta.setdefault("creationTimestamp", None)
    await send_json(send, 201, {"kind": info.kind, "apiVersion": info.group_version, "metadata": meta,
                                "spec": spec, "status": status})


def token_review(server, spec: dict) -> dict:
    """``status`` of a TokenReview: who the token is, for which of the asked audiences."""
    token = spec.get("token")
    if not isinstance(token, str) or not token:
        raise errors.invalid("TokenReview", "", [errors.cause("spec.token", "Required value",
                                                              "FieldValueRequired")], AUTHN)
    asked = spec.get("audiences") or []
    who = server.auth.identify({}, f"Bearer {token}")
    if who is None:
        return {"authenticated": False, "user": {}, "error": "invalid bearer token"}
    own = [ISSUER]
    if token.count(".") == 2 and server.signer is not None:   # a service-account JWT: its audiences
        claims = server.signer.verify(token) or {}
        aud = claims.get("aud") or []
        own = [aud] if isinstance(aud, str) else list(aud)
    audiences = [a for a in asked if a in own] if asked else own
    if asked and not audiences:
        return {"authenticated": False, "user": {}, "audiences": [],
                "error": "token audiences do not match the requested audiences"}
    user, groups = who
    groups = list(groups) + (["system:authenticated"] if "system:authenticated" not in groups else [])
    return {"authenticated": True, "user": {"username": user, "groups": groups}, "audiences": audiences}


def access_review(server, spec: dict, user: str, groups: list[str], info) -> dict:
    """``status`` of a (Self)SubjectAccessReview, evaluated by this server's RBAC."""
    res, non = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if bool(res) == bool(non):
        raise errors.invalid(info.kind, "", [errors.cause(
            "spec.resourceAttributes", "Invalid value: \"null\": exactly one of nonResourceAttributes "
            "or resourceAttributes must be specified")], AUTHZ)
    if info.plural == "subjectaccessreviews" and not user and not groups:
        raise errors.invalid(info.kind, "", [errors.cause(
            "spec.user", "Invalid value: \"\": at least one of user or group must be specified")], AUTHZ)
    if res:
        a = Attributes(user=user, groups=list(groups), verb=res.get("verb") or "",
                       namespace=res.get("namespace") or None, api_group=res.get("group") or "",
                       resource=res.get("resource") or "", subresource=res.get("subresource") or "",
                       name=res.get("name") or "")
    else:
        a = Attributes(user=user, groups=list(groups), verb=non.get("verb") or "", path=non.get("path") or "")
    if a.is_resource or a.path:
        allowed = server.authz.allowed(a)
    else:
        allowed = False
    return {"allowed": allowed} if allowed else {"allowed": False, "reason": "no RBAC rule allows it"}


__all__ = ["handles", "handle", "token_review", "access_review"]
