"""REST verbs on stored resources: the generic registry of the API server.

Every write goes: decode -> admission (defaulting, mutation) -> validation ->
field ownership -> store. Reads are served from the store's memory.
"""
from __future__ import annotations

import asyncio
import base64
import binascii

import orjson

from ..api import apply as ssa
from ..api import defaults, errors, fieldvalidation, patch, selectors, tables, validation
from ..api import crdschema, events
from ..api.registry import ResourceInfo
from ..store import ConflictError, ExpiredError, KeyExistsError, KeyNotFoundError
from . import lifecycle
from .http import JSON, Request, send_bytes, send_json, send_stream
from .objects import deep_copy, generate_name, new_uid, now_micro, now_rfc3339, settle
from .watch import WatchStream, error_event, expired

TABLE_CT = b"application/json;as=Table;v=v1;g=meta.k8s.io"
_UPDATE_RETRIES = 16


def _names_rv(body) -> bool:
    """Does a patch body set metadata.resourceVersion (a merge/apply body, or a JSON patch op)?"""
    if isinstance(body, dict):
        meta = body.get("metadata")
        return isinstance(meta, dict) and bool(meta.get("resourceVersion"))
    if isinstance(body, list):
        return any(isinstance(op, dict) and op.get("path") == "/metadata/resourceVersion" for op in body)
    return False


def _gv_of(obj_api_version: str) -> tuple[str, str]:
    if "/" in obj_api_version:
        g, v = obj_api_version.split("/", 1)
        return g, v
    return "", obj_api_version


def wants_table(req: Request) -> tuple[bool, str]:
    """(Table requested, includeObject) from the Accept header and query."""
    for media, params in req.accepts():
        if media == "application/json" and params.get("as") == "Table" \
                and params.get("g") == "meta.k8s.io":
            return True, req.arg("includeObject", "Metadata") or "Metadata"
        if media in ("application/json", "*/*", "application/yaml",
                     "application/vnd.kubernetes.protobuf") and "as" not in params:
            return False, ""
    return False, ""


def wants_partial_metadata(req: Request) -> bool:
    for media, params in req.accepts():
        if media == "application/json" and params.get("as", "").startswith("PartialObjectMetadata"):
            return True
        if media == "application/json" and "as" not in params:
            return False
    return False


def _partial(obj: dict) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def dry_run(req: Request) -> bool:
    values = req.args("dryRun")
    for v in values:
        if v != "All":
            raise errors.bad_request(f"Invalid dry run value: {v!r}: valid values are 'All'")
    return bool(values)


def field_validation(req: Request) -> str:
    v = req.arg("fieldValidation", "") or ""
    if v in ("", "Warn", "Strict", "Ignore"):
        return v or "Warn"
    raise errors.bad_request(f'fieldValidation must be one of "Ignore", "Warn", or "Strict", got {v!r}')


def encode_continue(rv: int, key: str) -> str:
    tok = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": key})
    return base64.urlsafe_b64encode(tok).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        pad = "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(token + pad))
        return int(data["rv"]), str(data["start"])
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise errors.bad_request("continue key is not valid: the token is malformed") from None


# resources served in another shape than they are stored: (to storage, from storage)
VIEWS = {("events.k8s.io", "Event"): (events.to_core, events.from_core)}


def view_of(info: ResourceInfo):
    return VIEWS.get((info.group, info.kind)) if info.stored_as else None


def shown(info: ResourceInfo, obj: dict) -> dict:
    """The object as this resource serves it."""
    v = view_of(info)
    return v[1](obj) if v else obj


def shown_raw(info: ResourceInfo, rec) -> bytes:
    v = view_of(info)
    return orjson.dumps(v[1](rec.obj)) if v else rec.raw


def stored(info: ResourceInfo, obj: dict) -> dict:
    v = view_of(info)
    return v[0](obj) if v else obj


class Resources:
    """All REST verbs for registered resources, against one store."""

    def __init__(self, server):
        self.server = server
        self.store = server.store
        self.registry = server.registry

    # ---- helpers -------------------------------------------------------------------------

    def _manager(self, req: Request) -> str:
        fm = req.arg("fieldManager")
        if fm:
            if len(fm) > 128:
                raise errors.bad_request("fieldManager: Too long: must have at most 128 bytes")
            return fm
        return ssa.manager_from_user_agent(req.headers.get("user-agent", ""))

    def _schema(self, info: ResourceInfo) -> dict | None:
        return info.schema if info.custom else None

    def _check_type(self, info: ResourceInfo, obj, *, require: bool = False) -> dict:
        if not isinstance(obj, dict):
            raise errors.bad_request("the body must be a JSON or YAML object, not "
                                     f"{type(obj).__name__}")
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if require and (not api_version or not kind):
            missing = "apiVersion" if not api_version else "kind"
            raise errors.bad_request(f"Object '{missing}' is missing in '{orjson.dumps(obj)[:200].decode()}'")
        if kind and kind != info.kind:
            raise errors.bad_request(
                f"the object provided is unrecognized: kind {kind!r} does not match the "
                f"resource {info.group_resource} (kind {info.kind!r})")
        if api_version and api_version != info.api_version:
            g, _ = _gv_of(api_version)
            if g != info.group:
                raise errors.bad_request(
                    f"the API version in the data ({api_version}) does not match the expected "
                    f"API version ({info.api_version})")
        obj["apiVersion"], obj["kind"] = info.api_version, info.kind
        md = obj.get("metadata")
        if md is None:
            obj["metadata"] = {}
        elif not isinstance(md, dict):
            raise errors.bad_request("metadata must be an object")
        return obj

    def _check_namespace(self, info: ResourceInfo, obj: dict, ns: str | None) -> None:
        m = obj["metadata"]
        if info.namespaced:
            body_ns = m.get("namespace")
            if body_ns and ns and body_ns != ns:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request")
            m["namespace"] = ns or body_ns or "default"
        else:
            m.pop("namespace", None)

    def _fields(self, req: Request, info: ResourceInfo, obj: dict, name: str,
                is_patch: bool = False) -> list[str]:
        """fieldValidation: Strict rejects unknown fields, Warn returns warnings."""
        mode = field_validation(req)
        if mode == "Ignore":
            return []
        unknown = fieldvalidation.unknown_fields(info, obj)
        if not unknown:
            return []
        if mode == "Strict":
            raise fieldvalidation.strict_error(info, name, unknown, patch=is_patch)
        return fieldvalidation.warnings(unknown)

    async def _namespace_open(self, info: ResourceInfo, ns: str | None) -> None:
        if not info.namespaced or not ns:
            return
        rec = self.store.get(f"/core/namespaces/{ns}")
        if rec is None:
            raise errors.not_found("namespaces", ns)
        if rec.obj["metadata"].get("deletionTimestamp") or \
                (rec.obj.get("status") or {}).get("phase") == "Terminating":
            raise errors.APIError(
                403, "Forbidden",
                f"{info.plural} \"{{name}}\" is forbidden: unable to create new content in namespace "
                f"{ns} because it is being terminated",
                {"kind": info.plural, "causes": [{"reason": "NamespaceTerminating",
                                                   "message": f"namespace {ns} is being terminated",
                                                   "field": "metadata.namespace"}]})

    def _validate(self, info: ResourceInfo, obj: dict, old: dict | None) -> None:
        if info.custom:
            causes = validation.validate_object_meta(info, obj)
            causes += crdschema.validate_custom(info.schema or {}, obj)
            if causes:
                raise errors.invalid(info.kind, obj["metadata"].get("name", ""), causes, info.group)
            return
        if old is None:
            validation.validate_create(info, obj)
        else:
            validation.validate_update(info, obj, old)
        hook = self.server.validators.get(info.kind)
        if hook:
            hook(info, obj, old)

    def _default(self, info: ResourceInfo, obj: dict, create: bool) -> None:
        if info.custom:
            if info.schema:
                crdschema.apply_schema_defaults(info.schema, obj)
                crdschema.prune(info.schema, obj)
        else:
            defaults.apply_defaults(info, obj, create=create)

    def _headers(self, warnings: list[str]) -> list[tuple[bytes, bytes]]:
        return [(b"warning", fieldvalidation.warning_header(w).encode()) for w in warnings]

    def _encode_one(self, req: Request, info: ResourceInfo, obj: dict, raw: bytes | None = None):
        table, include = wants_table(req)
        if table:
            t = tables.to_table(info, [obj], include_object=include,
                                resource_version=obj["metadata"].get("resourceVersion", ""))
            return orjson.dumps(t), TABLE_CT
        if wants_partial_metadata(req):
            return orjson.dumps(_partial(obj)), b"application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
        return raw if raw is not None else orjson.dumps(obj), JSON

    async def _respond(self, req, send, info, status, obj, raw=None, warnings=()):
        body, ct = self._encode_one(req, info, obj, raw)
        await send_bytes(send, status, body, ct, self._headers(list(warnings)))

    def _get_record(self, info: ResourceInfo, ns: str | None, name: str):
        rec = self.store.get(info.key(ns, name))
        if rec is None:
            raise errors.not_found(info.plural, name, info.group)
        return rec

    # ---- get / list ----------------------------------------------------------------------

    async def get(self, req: Request, send, info: ResourceInfo, ns: str | None, name: str) -> None:
        rec = self._get_record(info, ns, name)
        await self._respond(req, send, info, 200, shown(info, rec.obj), shown_raw(info, rec))

    def _matcher(self, req: Request, info: ResourceInfo, name: str | None = None):
        match = self._matcher_of_shown(req, info, name)
        if match is None or view_of(info) is None:
            return match
        return lambda o: match(shown(info, o))

    def _matcher_of_shown(self, req: Request, info: ResourceInfo, name: str | None = None):
        ls = selectors.parse_label_selector(req.arg("labelSelector"))
        fs = selectors.parse_field_selector(req.arg("fieldSelector"), info.group, info.kind,
                                            **self.server.selectable_fields(info))
        if name is not None:
            want = name
            if ls.empty and fs.empty:
                return lambda o: o["metadata"].get("name") == want
            return lambda o: o["metadata"].get("name") == want and \
                ls.matches(o["metadata"].get("labels")) and fs.matches(o)
        if ls.empty and fs.empty:
            return None
        if fs.empty:
            return lambda o: ls.matches(o["metadata"].get("labels"))
        if ls.empty:
            return fs.matches
        return lambda o: ls.matches(o["metadata"].get("labels")) and fs.matches(o)

    async def list(self, req: Request, send, info: ResourceInfo, ns: str | None) -> None:
        if req.flag("watch"):
            return await self.watch(req, send, info, ns)
        match = self._matcher(req, info)
        prefix = info.list_prefix(ns)
        limit = req.int_arg("limit") or None
        if limit is not None and limit < 0:
            limit = None
        token = req.arg("continue")
        rv_arg = req.arg("resourceVersion")
        rv_match = req.arg("resourceVersionMatch")
        if token and rv_arg not in (None, ""):
            raise errors.bad_request("specifying resource version is not allowed when using continue")
        if rv_match and rv_match not in ("Exact", "NotOlderThan"):
            raise errors.bad_request(f"resourceVersionMatch: Unsupported value: {rv_match!r}: "
                                     'supported values: "Exact", "NotOlderThan"')
        if rv_match and rv_arg in (None, ""):
            raise errors.bad_request("resourceVersionMatch is forbidden unless resourceVersion is provided")
        start_key, at_rev = None, None
        if token:
            at_rev, start_key = decode_continue(token)
        elif rv_arg not in (None, "", "0"):
            try:
                want = int(rv_arg)
            except ValueError:
                raise errors.bad_request(f"invalid resource version: {rv_arg!r}") from None
            if rv_match == "Exact":
                at_rev = want
            elif want > self.store.revision:
                await self._wait_for_revision(want)

        items, rev, last_key, remaining = await self._collect(prefix, match, limit, start_key, at_rev, token)
        cont = encode_continue(rev, last_key) if last_key else None
        table, include = wants_table(req)
        if table:
            t = tables.to_table(info, [shown(info, r.obj) for r in items], include_object=include,
                                resource_version=str(rev), continue_token=cont, remaining=remaining)
            return await send_bytes(send, 200, orjson.dumps(t), TABLE_CT)
        meta = {"resourceVersion": str(rev)}
        if cont:
            meta["continue"] = cont
            if remaining is not None:
                meta["remainingItemCount"] = remaining
        if wants_partial_metadata(req):
            body = orjson.dumps({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                                 "metadata": meta, "items": [_partial(shown(info, r.obj)) for r in items]})
            return await send_bytes(send, 200, body,
                                    b"application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1")
        head = orjson.dumps({"kind": info.list_kind, "apiVersion": info.api_version, "metadata": meta})
        body = head[:-1] + b',"items":[' + b",".join(shown_raw(info, r) for r in items) + b"]}"
        await send_bytes(send, 200, body)

    async def _wait_for_revision(self, want: int) -> None:
        for _ in range(30):
            if self.store.revision >= want:
                return
            await asyncio.sleep(0.1)
        raise errors.APIError(504, "Timeout", f"Too large resource version: {want}, current: {self.store.revision}",
                              {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                               "retryAfterSeconds": 1})

    async def _collect(self, prefix, match, limit, start_key, at_rev, token):
        """Items of one page, the list's revision, the continue key and remainingItemCount."""
        store = self.store
        if at_rev is not None and at_rev != store.revision:
            try:
                if at_rev < store.compacted_revision:
                    raise ExpiredError()
                # without a selector one page (plus one, to know if more follow) is enough
                fetch = await store.list_at(prefix, at_rev, start_key,
                                            limit + 1 if (limit and match is None) else None)
            except ExpiredError:
                if token:
                    raise errors.gone("The provided continue parameter is too old to display a "
                                      "consistent list result. You can start a new list without the "
                                      "continue parameter, or use the continue token in this response "
                                      "to retrieve the remainder of the results. Continuing with the "
                                      "provided token results in an inconsistent list - objects that "
                                      "were created, modified, or deleted between the time the first "
                                      "chunk was returned and now may show up in the list.") from None
                raise expired(str(at_rev), store.compacted_revision) from None
            rev = at_rev
        else:
            fetch = None
            rev = store.revision
        if fetch is None:
            if match is None and limit:
                page, rev = store.list(prefix, start_key, limit + 1)
                more = len(page) > limit
                page = page[:limit]
                if more:
                    remaining = store.count(prefix, page[-1].key)
                    return page, rev, page[-1].key, remaining
                return page, rev, None, None
            fetch, rev = store.list(prefix, start_key)
        out = []
        last = None
        for r in fetch:
            if match is None or match(r.obj):
                if limit and len(out) == limit:
                    # the count is exact only for the current state; past pages give none
                    current = at_rev is None or at_rev == store.revision
                    remaining = store.count(prefix, last) if match is None and current else None
                    return out, rev, last, remaining
                out.append(r)
            last = r.key
        return out, rev, None, None

    # ---- watch ---------------------------------------------------------------------------

    async def watch(self, req: Request, send, info: ResourceInfo, ns: str | None,
                    name: str | None = None) -> None:
        match = self._matcher(req, info, name) or (lambda o: True)
        rv = req.arg("resourceVersion")
        send_initial = req.arg("sendInitialEvents")
        rv_match = req.arg("resourceVersionMatch")
        initial = None
        if send_initial is not None:
            initial = send_initial.lower() == "true"
            if rv_match != "NotOlderThan":
                raise errors.invalid("ListOptions", "", [errors.cause(
                    "sendInitialEvents", "Forbidden: sendInitialEvents is forbidden for watch unless "
                    "resourceVersionMatch is set to NotOlderThan", "FieldValueForbidden")], "meta.k8s.io")
            if initial and not req.flag("allowWatchBookmarks"):
                raise errors.invalid("ListOptions", "", [errors.cause(
                    "allowWatchBookmarks", "Forbidden: allowWatchBookmarks must be set to true when "
                    "sendInitialEvents is true", "FieldValueForbidden")], "meta.k8s.io")
        elif rv_match:
            raise errors.invalid("ListOptions", "", [errors.cause(
                "resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden for watch unless "
                "sendInitialEvents is provided", "FieldValueForbidden")], "meta.k8s.io")
        if rv not in (None, "", "0"):
            try:
                int(rv)
            except ValueError:
                raise errors.bad_request(f"invalid resource version: {rv!r}") from None
        timeout = req.int_arg("timeoutSeconds")
        table, include = wants_table(req)
        encode = None
        if table:
            first = [True]

            def encode(kind, obj, raw):
                obj = shown(info, obj)
                t = tables.to_table(info, [obj], include_object=include,
                                    resource_version=obj["metadata"].get("resourceVersion", ""))
                if not first[0]:
                    t["columnDefinitions"] = []
                first[0] = False
                return b'{"type":"' + kind.encode() + b'","object":' + orjson.dumps(t) + b"}\n"
        elif view_of(info):
            def encode(kind, obj, raw):
                return b'{"type":"' + kind.encode() + b'","object":' + orjson.dumps(shown(info, obj)) + b"}\n"
        try:
            stream = WatchStream(self.store, info, info.list_prefix(ns), match, rv=rv,
                                 send_initial=initial, bookmarks=req.flag("allowWatchBookmarks"),
                                 timeout=timeout, encode=encode)
        except ExpiredError:
            err = expired(rv or "", self.store.compacted_revision)
            return await send_bytes(send, 200, error_event(err))
        await self.server.stream_until_disconnect(req, send, stream.events(), stream.close,
                                                  TABLE_CT if table else JSON)

    # ---- create --------------------------------------------------------------------------

    async def create(self, req: Request, send, info: ResourceInfo, ns: str | None) -> None:
        obj = self._check_type(info, await req.json())
        is_dry = dry_run(req)
        self._check_namespace(info, obj, ns)
        m = obj["metadata"]
        if not m.get("name") and m.get("generateName"):
            m["name"] = generate_name(m["generateName"])
        warnings = self._fields(req, info, obj, m.get("name", ""))
        await self._namespace_open(info, m.get("namespace") if info.namespaced else None)
        created = await self.create_object(info, obj, manager=self._manager(req), dry=is_dry)
        await self._respond(req, send, info, 201, created.obj if hasattr(created, "obj") else created,
                            getattr(created, "raw", None), warnings)

    async def create_object(self, info: ResourceInfo, obj: dict, *, manager: str, dry: bool = False,
                            applied: bool = False):
        """Admit, validate and store a new object (also used by apply and internal writers)."""
        m = obj["metadata"]
        for k in ("resourceVersion",):
            if m.get(k):
                raise errors.invalid(info.kind, m.get("name", ""), [errors.cause(
                    "metadata.resourceVersion", "Invalid value: " + orjson.dumps(m[k]).decode() +
                    ": resourceVersion can not be set for Create requests")], info.group)
        m["uid"] = new_uid()
        m["creationTimestamp"] = now_rfc3339()
        lifecycle.prepare_for_create(info, obj)
        self._default(info, obj, create=True)
        try:
            await self.server.admit(info, obj, None)
            self._validate(info, obj, None)
            if not applied:
                ssa.track_update(None, obj, manager=manager, group=info.group, version=info.version,
                                 kind=info.kind, schema=self._schema(info), now=now_rfc3339(),
                                 status_subresource=lifecycle.has_status_subresource(info))
            if dry:
                return obj
            try:
                rec = await self.store.create(info.key(m.get("namespace"), m["name"]), stored(info, obj))
            except KeyExistsError:
                raise errors.already_exists(info.plural, m["name"], info.group) from None
        finally:
            self.server.create_finished(info, obj)     # quota reservations end with the write
        await self.server.after_write(info, rec.obj, None)
        return shown(info, rec.obj) if view_of(info) else rec

    # ---- update / patch ------------------------------------------------------------------

    async def update(self, req: Request, send, info: ResourceInfo, ns: str | None, name: str,
                     subresource: str = "") -> None:
        obj = self._check_type(info, await req.json())
        is_dry = dry_run(req)
        self._check_namespace(info, obj, ns)
        m = obj["metadata"]
        if m.get("name") and m["name"] != name:
            raise errors.bad_request("the name of the object (%s) does not match the name on the URL (%s)"
                                     % (m["name"], name))
        m["name"] = name
        warnings = self._fields(req, info, obj, name)
        manager = self._manager(req)
        rv = m.get("resourceVersion")
        key = info.key(ns, name)
        for attempt in range(_UPDATE_RETRIES):
            rec = self.store.get(key)
            if rec is None:
                raise errors.not_found(info.plural, name, info.group)
            if rv and rv != rec.obj["metadata"]["resourceVersion"]:
                raise errors.conflict(info.plural, name, info.group)
            uid = m.get("uid")
            if uid and uid != rec.obj["metadata"].get("uid"):
                raise errors.conflict(info.plural, name, info.group,
                                      f"Precondition failed: UID in precondition: {uid}, UID in object "
                                      f"meta: {rec.obj['metadata'].get('uid')}")
            try:
                # an unconditional update (no resourceVersion) is retried on a race, as upstream does
                out = await self.update_object(info, rec, deep_copy(obj) if not rv else obj,
                                               manager=manager, subresource=subresource, dry=is_dry)
            except errors.APIError as e:
                if e.reason == "Conflict" and not rv and attempt + 1 < _UPDATE_RETRIES:
                    await settle()
                    continue
                raise
            return await self._respond(req, send, info, 200, out.obj if hasattr(out, "obj") else out,
                                       getattr(out, "raw", None), warnings)

    async def update_object(self, info: ResourceInfo, rec, new: dict, *, manager: str,
                            subresource: str = "", dry: bool = False, tracked: bool = False):
        """Store ``new`` in place of ``rec`` (validated, owned, generation bumped);
        removes the object when it is deleting and nothing holds it any more."""
        old = shown(info, rec.obj)
        new.setdefault("metadata", {})
        lifecycle.prepare_for_update(info, new, old, subresource)
        if subresource != "status":
            self._default(info, new, create=False)
            await self.server.admit(info, new, old)
        self._validate(info, new, old)
        if not tracked:
            ssa.track_update(old, new, manager=manager, group=info.group, version=info.version,
                             kind=info.kind, schema=self._schema(info), now=now_rfc3339(),
                             subresource=subresource,
                             status_subresource=lifecycle.has_status_subresource(info))
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if dry:
            return new
        key = rec.key
        try:
            if lifecycle.ready_to_remove(new):
                kept = await self.store.update(key, stored(info, new), rec.mod_revision)
                out = await self.store.delete(key, kept.mod_revision)
                await self.server.after_delete(info, out.obj)
                return shown(info, out.obj) if view_of(info) else out
            out = await self.store.update(key, stored(info, new), rec.mod_revision)
        except ConflictError:
            raise errors.conflict(info.plural, new["metadata"]["name"], info.group) from None
        except KeyNotFoundError:
            raise errors.not_found(info.plural, new["metadata"]["name"], info.group) from None
        await self.server.after_write(info, out.obj, old)
        return shown(info, out.obj) if view_of(info) else out

    async def patch(self, req: Request, send, info: ResourceInfo, ns: str | None, name: str,
                    subresource: str = "") -> None:
        kind = patch.patch_type(req.content_type(), strategic=not info.custom)
        is_dry = dry_run(req)
        key = info.key(ns, name)
        if kind == "apply":
            body = await req.json()
        else:
            try:
                body = orjson.loads(await req.body())
            except orjson.JSONDecodeError as e:
                raise errors.bad_request(f"the patch is not valid JSON: {e}") from None
        manager = self._manager(req)
        force = req.flag("force")
        if kind == "apply":
            if not req.arg("fieldManager"):
                raise errors.bad_request("PATCH, application/apply-patch+yaml requests require a "
                                         "fieldManager query parameter")
        elif req.arg("force") is not None:
            raise errors.bad_request("force: Forbidden: may not be specified for non-apply patch")
        warnings: list[str] = []
        for attempt in range(_UPDATE_RETRIES):
            rec = self.store.get(key)
            if rec is None:
                if kind != "apply" or subresource:
                    raise errors.not_found(info.plural, name, info.group)
                obj = self._check_type(info, deep_copy(body), require=True)
                self._check_namespace(info, obj, ns)
                if obj["metadata"].get("name") not in (None, name):
                    raise errors.bad_request("the name of the object (%s) does not match the name on the "
                                             "URL (%s)" % (obj["metadata"]["name"], name))
                obj["metadata"]["name"] = name
                warnings = self._fields(req, info, obj, name)
                await self._namespace_open(info, ns)
                new = ssa.server_side_apply(None, obj, manager=manager, force=force, group=info.group,
                                            version=info.version, kind=info.kind,
                                            schema=self._schema(info), now=now_rfc3339(),
                             status_subresource=lifecycle.has_status_subresource(info))
                try:
                    out = await self.create_object(info, new, manager=manager, dry=is_dry, applied=True)
                except errors.APIError as e:
                    if e.reason == "AlreadyExists" and attempt + 1 < _UPDATE_RETRIES:
                        continue
                    raise
                return await self._respond(req, send, info, 201, getattr(out, "obj", out),
                                           getattr(out, "raw", None), warnings)
            current = shown(info, rec.obj)
            if kind == "json":
                new = patch.json_patch(current, body)
            elif kind == "merge":
                new = patch.merge_patch(current, body)
            elif kind == "strategic":
                new = patch.strategic_merge_patch(current, body, info.group, info.version, info.kind)
            else:
                applied = self._check_type(info, deep_copy(body), require=True)
                if applied["metadata"].get("name") not in (None, name):
                    raise errors.bad_request("the name of the object (%s) does not match the name on the "
                                             "URL (%s)" % (applied["metadata"]["name"], name))
                applied["metadata"]["name"] = name
                if info.namespaced:
                    applied["metadata"].setdefault("namespace", ns)
                new = ssa.server_side_apply(current, applied, manager=manager, force=force,
                                            group=info.group, version=info.version, kind=info.kind,
                                            schema=self._schema(info), now=now_rfc3339(),
                             status_subresource=lifecycle.has_status_subresource(info))
            if not isinstance(new, dict):
                raise errors.bad_request("the patch produced something that is not an object")
            new = self._check_type(info, new)
            if attempt == 0:
                warnings = self._fields(req, info, new, name, is_patch=True)
            # a precondition only when the patch itself names a resourceVersion (the merged
            # object always carries the current one): otherwise a concurrent write is retried
            want_rv = new["metadata"].get("resourceVersion")
            if not _names_rv(body) and want_rv == current["metadata"]["resourceVersion"]:
                want_rv = None
            if want_rv and want_rv != current["metadata"]["resourceVersion"]:
                raise errors.conflict(info.plural, name, info.group)
            self._check_namespace(info, new, ns)
            new["metadata"]["name"] = name
            try:
                out = await self.update_object(info, rec, new, manager=manager, subresource=subresource,
                                               dry=is_dry, tracked=(kind == "apply"))
            except errors.APIError as e:
                if e.reason == "Conflict" and e.code == 409 and not want_rv and \
                        attempt + 1 < _UPDATE_RETRIES and "Apply failed" not in e.message:
                    await settle()
                    continue
                raise
            return await self._respond(req, send, info, 200, getattr(out, "obj", out),
                                       getattr(out, "raw", None), warnings)
        raise errors.conflict(info.plural, name, info.group)

    # ---- delete --------------------------------------------------------------------------

    async def _delete_options(self, req: Request) -> dict:
        opts: dict = {}
        if (await req.body()).strip():
            opts = await req.json()
            if not isinstance(opts, dict):
                raise errors.bad_request("DeleteOptions must be an object")
        if req.arg("gracePeriodSeconds") is not None:
            opts["gracePeriodSeconds"] = req.int_arg("gracePeriodSeconds")
        if req.arg("propagationPolicy"):
            opts["propagationPolicy"] = req.arg("propagationPolicy")
        if req.arg("orphanDependents") is not None:
            opts["orphanDependents"] = req.flag("orphanDependents")
        if req.args("dryRun"):
            opts["dryRun"] = req.args("dryRun")
        for v in opts.get("dryRun") or []:
            if v != "All":
                raise errors.bad_request(f"Invalid dry run value: {v!r}: valid values are 'All'")
        policy = opts.get("propagationPolicy")
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise errors.invalid("DeleteOptions", "", [errors.cause(
                "propagationPolicy", f'Unsupported value: "{policy}": supported values: "Foreground", '
                '"Background", "Orphan", "nil"', "FieldValueNotSupported")], "meta.k8s.io")
        if policy and opts.get("orphanDependents") is not None:
            raise errors.invalid("DeleteOptions", "", [errors.cause(
                "propagationPolicy", "Invalid value: \"%s\": orphanDependents and deletionPropagation "
                "cannot be both set" % policy)], "meta.k8s.io")
        g = opts.get("gracePeriodSeconds")
        if g is not None and not isinstance(g, int):
            raise errors.bad_request("gracePeriodSeconds must be an integer")
        return opts

    async def delete(self, req: Request, send, info: ResourceInfo, ns: str | None, name: str) -> None:
        opts = await self._delete_options(req)
        out, removed = await self.delete_object(info, ns, name, opts)
        status = 200
        if not removed and opts.get("orphanDependents") is False:
            status = 202
        obj = getattr(out, "obj", out)
        raw = getattr(out, "raw", None) if not view_of(info) else None
        await self._respond(req, send, info, status, shown(info, obj), raw)

    async def delete_object(self, info: ResourceInfo, ns: str | None, name: str, opts: dict):
        """Delete per DeleteOptions; returns (object, removed now?)."""
        dry = bool(opts.get("dryRun"))
        key = info.key(ns, name)
        for _ in range(_UPDATE_RETRIES):
            rec = self.store.get(key)
            if rec is None:
                raise errors.not_found(info.plural, name, info.group)
            obj = rec.obj
            m = obj["metadata"]
            pre = opts.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != m.get("uid"):
                raise errors.conflict(info.plural, name, info.group,
                                      f"Precondition failed: UID in precondition: {pre['uid']}, UID in "
                                      f"object meta: {m.get('uid')}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != m.get("resourceVersion"):
                raise errors.conflict(info.plural, name, info.group,
                                      f"Precondition failed: ResourceVersion in precondition: "
                                      f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                      f"{m.get('resourceVersion')}")
            node_exists = True
            if info.kind == "Pod" and not info.group and (obj.get("spec") or {}).get("nodeName"):
                node_exists = self.store.get(f"/core/nodes/{obj['spec']['nodeName']}") is not None
            grace = lifecycle.grace_period_for_delete(info, obj, opts.get("gracePeriodSeconds"), node_exists)
            finalizers = list(m.get("finalizers") or [])
            policy = opts.get("propagationPolicy")
            if policy is None and opts.get("orphanDependents") is not None:
                policy = "Orphan" if opts["orphanDependents"] else "Background"
            if policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            if policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            if policy in ("Background", "Foreground"):
                finalizers = [f for f in finalizers if f != "orphan" or policy == "Orphan"]
            if info.kind == "Namespace" and not info.group:
                return await self._delete_namespace(info, rec, dry), False
            already = m.get("deletionTimestamp")
            if not finalizers and grace == 0:
                if dry:
                    return obj, True
                try:
                    out = await self.store.delete(key, rec.mod_revision)
                except ConflictError:
                    await settle()
                    continue
                except KeyNotFoundError:
                    raise errors.not_found(info.plural, name, info.group) from None
                await self.server.after_delete(info, out.obj)
                return out, True
            new = deep_copy(obj)
            nm = new["metadata"]
            nm["finalizers"] = finalizers
            if not finalizers:
                nm.pop("finalizers")
            if already:
                old_grace = m.get("deletionGracePeriodSeconds") or 0
                if grace < old_grace:   # a delete may shorten, never extend, the grace period
                    nm["deletionGracePeriodSeconds"] = grace
                    nm["deletionTimestamp"] = lifecycle.deletion_time(grace)
                    if grace == 0 and not finalizers:
                        nm.pop("deletionGracePeriodSeconds")
            else:
                nm["deletionTimestamp"] = lifecycle.deletion_time(grace)
                nm["deletionGracePeriodSeconds"] = grace
            if new == obj:
                return rec, False
            if dry:
                return new, False
            if lifecycle.tracks_generation(info) and not already:
                nm["generation"] = m.get("generation", 1) + 1
            try:
                if lifecycle.ready_to_remove(new) or (grace == 0 and not finalizers):
                    out = await self.store.delete(key, rec.mod_revision)
                    await self.server.after_delete(info, out.obj)
                    return out, True
                out = await self.store.update(key, new, rec.mod_revision)
            except ConflictError:
                await settle()
                continue
            await self.server.after_write(info, out.obj, obj)
            return out, False
        raise errors.conflict(info.plural, name, info.group)

    async def _delete_namespace(self, info: ResourceInfo, rec, dry: bool):
        """Namespaces go Terminating; the namespace controller empties and finalizes them."""
        obj = rec.obj
        if obj["metadata"].get("deletionTimestamp"):
            return rec
        new = deep_copy(obj)
        new["metadata"]["deletionTimestamp"] = now_rfc3339()
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        new.setdefault("status", {})["phase"] = "Terminating"
        if dry:
            return new
        if not (new.get("spec") or {}).get("finalizers") and not new["metadata"].get("finalizers"):
            out = await self.store.delete(rec.key, rec.mod_revision)
            await self.server.after_delete(info, out.obj)
            return out
        out = await self.store.update(rec.key, new, rec.mod_revision)
        await self.server.after_write(info, out.obj, obj)
        return out

    async def delete_collection(self, req: Request, send, info: ResourceInfo, ns: str | None) -> None:
        opts = await self._delete_options(req)
        match = self._matcher(req, info)
        items, rev = self.store.list(info.list_prefix(ns))
        out = []
        for r in items:
            if match is not None and not match(r.obj):
                continue
            m = r.obj["metadata"]
            try:
                o, _ = await self.delete_object(info, m.get("namespace"), m["name"], opts)
                out.append(orjson.dumps(shown(info, getattr(o, "obj", o))))
            except errors.APIError as e:
                if e.code != 404:
                    raise
        head = orjson.dumps({"kind": info.list_kind, "apiVersion": info.api_version,
                             "metadata": {"resourceVersion": str(self.store.revision)}})
        await send_bytes(send, 200, head[:-1] + b',"items":[' + b",".join(out) + b"]}")


__all__ = ["Resources", "wants_table", "TABLE_CT", "now_micro", "send_json", "send_stream"]
