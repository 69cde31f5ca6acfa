"""Subresources (status, scale, binding, eviction, finalize) and admission steps
that need cluster state (Service ClusterIP and NodePort allocation: .ipalloc)."""
from __future__ import annotations

import orjson

from ..api import errors, patch, selectors
from ..api.registry import ResourceInfo
from ..store.errors import ConflictError
from .http import Request, send_json
from .objects import deep_copy, now_rfc3339, settle


def _success(details: dict | None = None) -> dict:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
    if details:
        body["details"] = details
    return body


def _get_path(obj: dict, path: str):
    cur = obj
    for part in path.lstrip(".").split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _set_path(obj: dict, path: str, value) -> None:
    parts = path.lstrip(".").split(".")
    cur = obj
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value


class Subresources:
    def __init__(self, server):
        self.server = server
        self.store = server.store

    async def handle(self, req: Request, send, info: ResourceInfo, ns, name, sub, extra) -> None:
        r = self.server.resources
        m = req.method
        if sub in ("status", "ephemeralcontainers", "resize"):
            sub_name = "status" if sub == "status" else ""
            if m == "GET":
                return await r.get(req, send, info, ns, name)
            if m == "PUT":
                return await r.update(req, send, info, ns, name, sub_name)
            if m == "PATCH":
                return await r.patch(req, send, info, ns, name, sub_name)
        elif sub == "scale":
            return await self.scale(req, send, info, ns, name)
        elif sub == "binding" and m == "POST":
            return await self.binding(req, send, info, ns, name)
        elif sub == "eviction" and m == "POST":
            return await self.eviction(req, send, info, ns, name)
        elif sub == "finalize" and m == "PUT":
            return await self.finalize(req, send, info, name)
        elif sub == "token" and m == "POST" and info.kind == "ServiceAccount":
            return await self.token_request(req, send, info, ns, name)
        elif sub == "log" and m == "GET" and info.kind == "Pod":
            from . import proxy
            pod = self.server.resources._get_record(info, ns, name).obj
            node_name = (pod.get("spec") or {}).get("nodeName")
            node = self.store.get(f"/core/nodes/{node_name}") if node_name else None
            return await proxy.proxy_log(self.server, req, send, pod, node.obj if node else None)
        elif sub in ("exec", "attach", "portforward", "proxy"):
            raise errors.APIError(503, "ServiceUnavailable",
                                  f"{info.plural}/{sub} is not available: no node agent serves it yet")
        raise errors.method_not_allowed("the server does not allow this method on the requested resource")

    # ---- scale ---------------------------------------------------------------------------

    def _scale_paths(self, info: ResourceInfo) -> tuple[str, str, str | None]:
        if info.custom:
            sc = info.scale or {}
            return sc.get("specReplicasPath", ".spec.replicas"), \
                sc.get("statusReplicasPath", ".status.replicas"), sc.get("labelSelectorPath")
        return ".spec.replicas", ".status.replicas", None

    def _to_scale(self, info: ResourceInfo, obj: dict) -> dict:
        spec_p, status_p, sel_p = self._scale_paths(info)
        m = obj["metadata"]
        if sel_p:
            selector = _get_path(obj, sel_p) or ""
        else:
            sel = (obj.get("spec") or {}).get("selector")
            selector = selectors.label_selector_to_string(sel) if isinstance(sel, dict) else ""
        meta = {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in m}
        status = {"replicas": _get_path(obj, status_p) or 0}
        if selector:
            status["selector"] = selector
        return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta,
                "spec": {"replicas": _get_path(obj, spec_p) or 0}, "status": status}

    async def scale(self, req: Request, send, info: ResourceInfo, ns, name) -> None:
        rec = self.server.resources._get_record(info, ns, name)
        if req.method == "GET":
            return await send_json(send, 200, self._to_scale(info, rec.obj))
        if req.method not in ("PUT", "PATCH"):
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        current = self._to_scale(info, rec.obj)
        if req.method == "PUT":
            body = await req.json()
            if not isinstance(body, dict):
                raise errors.bad_request("the body must be a Scale object")
            new_scale = body
        else:
            kind = patch.patch_type(req.content_type())
            body = await req.json()
            if kind == "json":
                new_scale = patch.json_patch(current, body)
            elif kind == "merge":
                new_scale = patch.merge_patch(current, body)
            elif kind == "strategic":
                new_scale = patch.strategic_merge_patch(current, body, "autoscaling", "v1", "Scale")
            else:
                new_scale = patch.merge_patch(current, body)
        replicas = (new_scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid("Scale", name, [errors.cause(
                "spec.replicas", f"Invalid value: {orjson.dumps(replicas).decode()}: must be greater than "
                "or equal to 0")], "autoscaling")
        want_rv = (new_scale.get("metadata") or {}).get("resourceVersion")
        if want_rv and want_rv != rec.obj["metadata"]["resourceVersion"]:
            raise errors.conflict(info.plural, name, info.group)
        new = deep_copy(rec.obj)
        _set_path(new, self._scale_paths(info)[0], replicas)
        out = await self.server.resources.update_object(
            info, rec, new, manager=self.server.resources._manager(req), dry=bool(req.args("dryRun")))
        await send_json(send, 200, self._to_scale(info, getattr(out, "obj", out)))

    # ---- pods/binding, pods/eviction ------------------------------------------------------

    async def binding(self, req: Request, send, info: ResourceInfo, ns, name) -> None:
        body = await req.json()
        if not isinstance(body, dict):
            raise errors.bad_request("the body must be a Binding object")
        name = name or (body.get("metadata") or {}).get("name")
        if not name:
            raise errors.invalid("Binding", "", [errors.cause("metadata.name", "Required value",
                                                               "FieldValueRequired")])
        target = body.get("target") or {}
        node = target.get("name")
        if not node:
            raise errors.invalid("Binding", name, [errors.cause("target.name", "Required value",
                                                                 "FieldValueRequired")])
        for _ in range(8):
            rec = self.server.resources._get_record(info, ns, name)
            pod = rec.obj
            if pod["metadata"].get("deletionTimestamp"):
                raise errors.conflict(info.plural, name, "", "pod is being deleted, cannot be assigned to a host")
            assigned = (pod.get("spec") or {}).get("nodeName")
            if assigned:
                raise errors.conflict(info.plural, name, "",
                                      f"pod {name} is already assigned to node \"{assigned}\"")
            new = deep_copy(pod)
            new["spec"]["nodeName"] = node
            conds = new.setdefault("status", {}).setdefault("conditions", [])
            conds[:] = [c for c in conds if c.get("type") != "PodScheduled"]
            conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                          "lastTransitionTime": now_rfc3339()})
            try:
                new["metadata"]["resourceVersion"] = pod["metadata"]["resourceVersion"]
                await self.store.update(rec.key, new, rec.mod_revision)
            except ConflictError:                # re-read and retry
                await settle()
                continue
            return await send_json(send, 201, _success())
        raise errors.conflict(info.plural, name)

    async def eviction(self, req: Request, send, info: ResourceInfo, ns, name) -> None:
        body = await req.json() or {}
        rec = self.server.resources._get_record(info, ns, name)
        pod = rec.obj
        pdb_info = self.server.registry.get("policy", "v1", "poddisruptionbudgets")
        labels = pod["metadata"].get("labels") or {}
        matching = []
        if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed", "Pending"):
            pdbs, _ = self.store.list(pdb_info.list_prefix(ns))
            for p in pdbs:
                sel = (p.obj.get("spec") or {}).get("selector")
                if sel is not None and selectors.label_selector_from_dict(sel).matches(labels):
                    matching.append(p)
        if len(matching) > 1:
            raise errors.APIError(500, "InternalError", "This pod has more than one PodDisruptionBudget, "
                                  "which the eviction subresource does not support.")
        if matching:
            p = matching[0]
            st = p.obj.get("status") or {}
            if st.get("disruptionsAllowed", 0) < 1:
                pname = p.obj["metadata"]["name"]
                raise errors.APIError(
                    429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.",
                    {"causes": [{"reason": "DisruptionBudget",
                                 "message": f"The disruption budget {pname} needs "
                                 f"{st.get('desiredHealthy', 0)} healthy pods and has "
                                 f"{st.get('currentHealthy', 0)} currently"}]})
        options = dict(body.get("deleteOptions") or {})
        if req.args("dryRun"):
            options["dryRun"] = req.args("dryRun")
        dry = bool(options.get("dryRun"))
        if matching and not dry:
            newp = deep_copy(p.obj)
            newp["status"]["disruptionsAllowed"] = st["disruptionsAllowed"] - 1
            newp["status"].setdefault("disruptedPods", {})[name] = now_rfc3339()
            await self.store.update(p.key, newp, p.mod_revision)
        if not dry and not pod["metadata"].get("deletionTimestamp"):
            await self._mark_disruption_target(rec)
        await self.server.resources.delete_object(info, ns, name, options)
        await send_json(send, 201, _success())

    async def _mark_disruption_target(self, rec) -> None:
        """As upstream before deleting an evicted pod: the DisruptionTarget condition
        (reason EvictionByEvictionAPI) in its status, so controllers (a Job's
        podFailurePolicy) and people can tell an eviction from a failure."""
        for _ in range(5):
            new = deep_copy(rec.obj)
            conditions = new.setdefault("status", {}).setdefault("conditions", [])
            if any(c.get("type") == "DisruptionTarget" and c.get("status") == "True"
                   and c.get("reason") == "EvictionByEvictionAPI" for c in conditions):
                return
            conditions[:] = [c for c in conditions if c.get("type") != "DisruptionTarget"]
            conditions.append({"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                               "message": "Eviction API: evicting", "lastProbeTime": None,
                               "lastTransitionTime": now_rfc3339()})
            try:
                await self.store.update(rec.key, new, rec.mod_revision)
                return
            except ConflictError:           # written meanwhile: re-read and retry
                rec = self.store.get(rec.key)
                if rec is None:
                    return

    async def token_request(self, req: Request, send, info: ResourceInfo, ns, name) -> None:
        """serviceaccounts/token (TokenRequest): a signed, expiring, optionally bound token."""
        from .tokens import DEFAULT_EXPIRATION, EXPIRATION_EXTENSION, ISSUER, MIN_EXPIRATION, WARN_ONLY_EXPIRATION
        body = await req.json()
        if not isinstance(body, dict):
            raise errors.bad_request("the body must be a TokenRequest object")
        sa = self.server.resources._get_record(info, ns, name).obj
        spec = body.get("spec") or {}
        exp = spec.get("expirationSeconds") or DEFAULT_EXPIRATION
        if not isinstance(exp, int) or exp < MIN_EXPIRATION:
            raise errors.invalid("TokenRequest", name, [errors.cause(
                "spec.expirationSeconds", f"Invalid value: {exp}: may not specify a duration less than "
                "10 minutes")], "authentication.k8s.io")
        bound = spec.get("boundObjectRef")
        if bound:
            kind = bound.get("kind")
            plural = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}.get(kind)
            if plural is None:
                raise errors.invalid("TokenRequest", name, [errors.cause(
                    "spec.boundObjectRef.kind", f'Unsupported value: "{kind}": supported values: "Pod", '
                    '"Secret", "Node"', "FieldValueNotSupported")], "authentication.k8s.io")
            target = self.store.get(f"/core/{plural}/{ns}/{bound.get('name')}" if kind != "Node"
                                    else f"/core/nodes/{bound.get('name')}")
            if target is None:
                raise errors.not_found(plural, bound.get("name", ""))
            if bound.get("uid") and bound["uid"] != target.obj["metadata"]["uid"]:
                raise errors.conflict(plural, bound.get("name", ""), "",
                                      "the UID in the bound object reference does not match")
            bound = {**bound, "uid": target.obj["metadata"]["uid"]}
        node = warn_after = None
        token_exp = exp
        if bound and bound["kind"] == "Pod":
            node_name = (target.obj.get("spec") or {}).get("nodeName")
            nrec = self.store.get(f"/core/nodes/{node_name}") if node_name else None
            node = {"name": node_name, "uid": nrec.obj["metadata"]["uid"]} if nrec else None
            # pod-bound 3607 s tokens for the API itself: valid a year, warn after 3607 s
            if exp == WARN_ONLY_EXPIRATION and set(spec.get("audiences") or [ISSUER]) <= {ISSUER}:
                warn_after, token_exp = exp, EXPIRATION_EXTENSION
        token, token_expiry = self.server.signer.issue(ns, name, sa["metadata"]["uid"],
                                                       audiences=spec.get("audiences") or None,
                                                       expiration=token_exp, bound=bound,
                                                       warn_after=warn_after, node=node)
        expiry = token_expiry - token_exp + exp      # the status shows the requested lifetime
        import datetime as dt
        out = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
               "metadata": {"name": name, "namespace": ns,
                            "creationTimestamp": now_rfc3339()},
               "spec": {**spec, "expirationSeconds": exp},
               "status": {"token": token, "expirationTimestamp":
                          dt.datetime.fromtimestamp(expiry, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}}
        await send_json(send, 201, out)

    async def finalize(self, req: Request, send, info: ResourceInfo, name) -> None:
        body = await req.json()
        rec = self.server.resources._get_record(info, None, name)
        new = deep_copy(rec.obj)
        new.setdefault("spec", {})["finalizers"] = list(((body or {}).get("spec") or {}).get("finalizers") or [])
        if not new["spec"]["finalizers"]:
            new["spec"].pop("finalizers")
        if new["metadata"].get("deletionTimestamp") and not new["spec"].get("finalizers") \
                and not new["metadata"].get("finalizers"):
            out = await self.store.delete(rec.key, rec.mod_revision)
            return await send_json(send, 200, out.obj)
        out = await self.store.update(rec.key, new, rec.mod_revision)
        await send_json(send, 200, out.obj)

    # ---- admission needing cluster state ----------------------------------------------------

    async def admit(self, info: ResourceInfo, obj: dict, old: dict | None) -> None:
        if info.kind == "Service" and not info.group:
            self.server.service_alloc.admit(obj, old)
