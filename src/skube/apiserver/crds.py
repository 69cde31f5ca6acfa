"""CustomResourceDefinitions: validating them, establishing them (status), and
serving their custom resources at once through the registry."""
from __future__ import annotations

import logging

from ..api import crdschema, errors
from ..api.registry import ALL_VERBS, ResourceInfo
from .objects import deep_copy, now_rfc3339

log = logging.getLogger("skube.crds")
CRD_PREFIX = "/apiextensions.k8s.io/customresourcedefinitions/"


def resources_of(crd: dict) -> list[ResourceInfo]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    for v in spec.get("versions") or []:
        if not v.get("served", True):
            continue
        subs = v.get("subresources") or {}
        sub_names = tuple(s for s in ("status", "scale") if s in subs)
        out.append(ResourceInfo(
            group=spec.get("group", ""), version=v["name"], kind=names.get("kind", ""),
            plural=names.get("plural", ""), singular=names.get("singular") or names.get("kind", "").lower(),
            namespaced=spec.get("scope") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()), categories=tuple(names.get("categories") or ()),
            verbs=ALL_VERBS, subresources=sub_names, custom=True,
            schema=((v.get("schema") or {}).get("openAPIV3Schema")),
            printer_columns=tuple(v.get("additionalPrinterColumns") or ()),
            scale=subs.get("scale")))
    return out


class CRDManager:
    def __init__(self, server):
        self.server = server
        self._fields: dict[tuple[str, str], dict] = {}

    def load(self) -> None:
        for rec in self.server.store.list(CRD_PREFIX)[0]:
            if not rec.obj["metadata"].get("deletionTimestamp"):
                self._register(rec.obj)

    @staticmethod
    def default(crd: dict) -> None:
        """Upstream CRD defaulting: singular and listKind names, conversion None."""
        spec = crd.setdefault("spec", {})
        names = spec.get("names")
        if isinstance(names, dict) and names.get("kind"):
            names.setdefault("singular", names["kind"].lower())
            names.setdefault("listKind", names["kind"] + "List")
        if isinstance(spec, dict):
            spec.setdefault("conversion", {"strategy": "None"})

    def validate(self, info, obj: dict, old: dict | None) -> None:
        causes = crdschema.validate_crd(obj)
        if old is not None:
            for f in ("group", "scope"):
                if (old.get("spec") or {}).get(f) != (obj.get("spec") or {}).get(f) and f == "group":
                    causes.append(errors.cause("spec.group", "Invalid value: %r: field is immutable"
                                               % (obj.get("spec") or {}).get(f)))
        if causes:
            raise errors.invalid("CustomResourceDefinition", obj["metadata"].get("name", ""), causes,
                                 "apiextensions.k8s.io")

    def _register(self, crd: dict) -> None:
        spec = crd.get("spec") or {}
        group, plural = spec.get("group", ""), (spec.get("names") or {}).get("plural", "")
        self.server.registry.remove_group_resource(group, plural)
        for r in resources_of(crd):
            self.server.registry.add(r)
            sel = {}
            for v in spec.get("versions") or []:
                if v["name"] == r.version:
                    sel = {f["jsonPath"].lstrip("."): f["jsonPath"] for f in v.get("selectableFields") or []}
            self._fields[(group, r.kind)] = sel

    def selectable_fields(self, info: ResourceInfo) -> dict:
        fields = self._fields.get((info.group, info.kind))
        return {"extra_fields": fields} if fields else {}

    async def on_write(self, crd: dict) -> None:
        if crd["metadata"].get("deletionTimestamp"):
            return
        self._register(crd)
        status = crd.get("status") or {}
        conds = {c.get("type"): c for c in status.get("conditions") or []}
        names = (crd.get("spec") or {}).get("names") or {}
        if conds.get("Established", {}).get("status") == "True" and status.get("acceptedNames") == names:
            return
        store = self.server.store
        rec = store.get(CRD_PREFIX + crd["metadata"]["name"])
        if rec is None:
            return
        new = deep_copy(rec.obj)
        now = now_rfc3339()
        storage = [v["name"] for v in (new.get("spec") or {}).get("versions") or [] if v.get("storage")]
        new["status"] = {
            "acceptedNames": names,
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": now},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted", "lastTransitionTime": now},
            ],
            "storedVersions": sorted(set(status.get("storedVersions") or []) | set(storage)),
        }
        await store.update(rec.key, new, rec.mod_revision)

    async def on_delete(self, crd: dict) -> None:
        spec = crd.get("spec") or {}
        group, plural = spec.get("group", ""), (spec.get("names") or {}).get("plural", "")
        self.server.registry.remove_group_resource(group, plural)
        store = self.server.store
        for rec in store.list(f"/{group}/{plural}/")[0]:
            try:
                await store.delete(rec.key)
            except Exception:  # noqa: BLE001 — already gone
                pass
