"""Pod spec rules (core validation's ValidatePodSpec and friends), on v1 JSON dicts.

Validation runs after defaulting, as upstream's does, so fields that defaulting always
fills (imagePullPolicy, terminationMessagePolicy, protocol, restartPolicy, …) are
reported as required when missing."""
from __future__ import annotations

from typing import Any

from . import names as n
from . import resources as r
from ._field import Errs, GoRaw, duplicate, forbidden, invalid, not_supported, required, type_invalid
from ._util import as_dict, as_list, is_int
from .containers import validate_containers, validate_env
from .meta import validate_annotations, validate_labels
from .podcommon import MAX_INT32
from .scheduling import (validate_affinity, validate_dns_config, validate_pod_security_context,
                         validate_tolerations, validate_topology_spread)
from .volumes import validate_volumes

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")


def validate_pod_spec(errs: Errs, spec: Any, path: str, *, pod_name: str | None = None,
                      is_pod: bool = False) -> None:
    """ValidatePodSpec (plus the pod-only container image whitespace rule when is_pod)."""
    spec = as_dict(errs, spec, path)
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is None:
        required(errs, path + ".terminationGracePeriodSeconds")
    elif not is_int(grace):
        type_invalid(errs, path + ".terminationGracePeriodSeconds", grace, "integer")
    sc = spec.get("securityContext")
    host_users = not (isinstance(sc, dict) and sc.get("hostUsers") is False)
    volumes = validate_volumes(errs, spec.get("volumes"), path + ".volumes", pod_name, is_pod)
    claim_names = set()
    for i, c in enumerate(as_list(errs, spec.get("resourceClaims"), path + ".resourceClaims")):
        cp = f"{path}.resourceClaims[{i}]"
        c = as_dict(errs, c, cp)
        name = c.get("name")
        if not name:
            required(errs, cp + ".name")
        elif name in claim_names:
            duplicate(errs, cp + ".name", name)
        else:
            for m in n.is_dns1123_label(name):
                invalid(errs, cp + ".name", name, m)
            claim_names.add(name)
        has_name = c.get("resourceClaimName") is not None
        has_tmpl = c.get("resourceClaimTemplateName") is not None
        if has_name and has_tmpl:
            invalid(errs, cp, GoRaw("core.PodResourceClaim{...}"),
                    "at most one of `resourceClaimName` or `resourceClaimTemplateName` may be specified")
        if not has_name and not has_tmpl:
            invalid(errs, cp, GoRaw("core.PodResourceClaim{...}"),
                    "must specify one of: `resourceClaimName`, `resourceClaimTemplateName`")
    restart_policy = spec.get("restartPolicy") or ""
    validate_containers(errs, spec, volumes, claim_names, path, restart_policy, host_users)
    if spec.get("resources") is not None:
        r.requirements(errs, spec["resources"], path + ".resources", pod_level=True)
    if spec.get("hostNetwork") is True:
        for i, c in enumerate(spec.get("containers") or []):
            for j, p in enumerate((c.get("ports") or []) if isinstance(c, dict) else []):
                if not isinstance(p, dict):
                    continue
                hp, cp = p.get("hostPort") or 0, p.get("containerPort") or 0
                if (is_pod or hp != 0) and hp != cp:
                    invalid(errs, f"{path}.containers[{i}].ports[{j}].hostPort", hp,
                            "must match `containerPort` when `hostNetwork` is true")
    if restart_policy not in RESTART_POLICIES:
        if not restart_policy:
            required(errs, path + ".restartPolicy")
        else:
            not_supported(errs, path + ".restartPolicy", restart_policy, RESTART_POLICIES)
    dns_policy = spec.get("dnsPolicy") or ""
    if dns_policy not in DNS_POLICIES:
        if not dns_policy:
            required(errs, path + ".dnsPolicy")
        else:
            not_supported(errs, path + ".dnsPolicy", dns_policy, DNS_POLICIES)
    validate_labels(errs, spec.get("nodeSelector"), path + ".nodeSelector")
    validate_pod_security_context(errs, sc, spec, path + ".securityContext")
    for i, ref in enumerate(as_list(errs, spec.get("imagePullSecrets"), path + ".imagePullSecrets")):
        if not isinstance(ref, dict) or set(ref) - {"name"}:
            invalid(errs, f"{path}.imagePullSecrets[{i}]", GoRaw("core.LocalObjectReference{...}"),
                    "only name may be set")
    validate_affinity(errs, spec.get("affinity"), path + ".affinity")
    validate_dns_config(errs, spec.get("dnsConfig"), dns_policy, path + ".dnsConfig")
    for i, g in enumerate(as_list(errs, spec.get("readinessGates"), path + ".readinessGates")):
        ct = g.get("conditionType", "") if isinstance(g, dict) else ""
        for m in n.is_qualified_name(ct):
            invalid(errs, f"{path}.readinessGates[{i}].conditionType", ct, m)
    gates: set[str] = set()
    for i, g in enumerate(as_list(errs, spec.get("schedulingGates"), path + ".schedulingGates")):
        gn = g.get("name", "") if isinstance(g, dict) else ""
        for m in n.is_qualified_name(gn):
            invalid(errs, f"{path}.schedulingGates[{i}]", gn, m)
        if gn in gates:
            duplicate(errs, f"{path}.schedulingGates[{i}]", gn)
        gates.add(gn)
    if spec.get("topologySpreadConstraints") is not None:
        validate_topology_spread(errs, spec["topologySpreadConstraints"], path + ".topologySpreadConstraints")
    if not host_users:
        for f in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(f) is True:
                forbidden(errs, f"{path}.{f if f == 'hostNetwork' else f[0].upper() + f[1:]}",
                          "when `pod.Spec.HostUsers` is false")
    san = spec.get("serviceAccountName")
    if san:
        for m in n.name_is_dns_subdomain(san if isinstance(san, str) else ""):
            invalid(errs, path + ".serviceAccountName", san, m)
    node = spec.get("nodeName")
    if node:
        for m in n.name_is_dns_subdomain(node if isinstance(node, str) else ""):
            invalid(errs, path + ".nodeName", node, m)
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None:
        if not is_int(ads) or ads < 1 or ads > MAX_INT32:
            invalid(errs, path + ".activeDeadlineSeconds", ads, n.inclusive_range_error(1, MAX_INT32))
    for f in ("hostname", "subdomain"):
        v = spec.get(f)
        if v:
            for m in n.is_dns1123_label(v if isinstance(v, str) else ""):
                invalid(errs, f"{path}.{f}", v, m)
    if spec.get("tolerations"):
        validate_tolerations(errs, spec["tolerations"], path + ".tolerations")
    for i, ha in enumerate(as_list(errs, spec.get("hostAliases"), path + ".hostAliases")):
        ha = as_dict(errs, ha, f"{path}.hostAliases[{i}]")
        for m in n.is_valid_ip(ha.get("ip") or ""):
            invalid(errs, f"{path}.hostAliases[{i}].ip", ha.get("ip") or "", m)
        for j, h in enumerate(as_list(errs, ha.get("hostnames"), f"{path}.hostAliases[{i}].hostnames")):
            for m in n.is_dns1123_subdomain(h if isinstance(h, str) else ""):
                invalid(errs, f"{path}.hostAliases[{i}].hostnames[{j}]", h, m)
    pcn = spec.get("priorityClassName")
    if pcn:
        for m in n.name_is_dns_subdomain(pcn if isinstance(pcn, str) else ""):
            invalid(errs, path + ".priorityClassName", pcn, m)
    rcn = spec.get("runtimeClassName")
    if rcn is not None:
        for m in n.name_is_dns_subdomain(rcn if isinstance(rcn, str) else ""):
            invalid(errs, path + ".runtimeClassName", rcn, m)
    pp = spec.get("preemptionPolicy")
    if pp is not None and pp not in ("PreemptLowerPriority", "Never"):
        if not pp:
            required(errs, path + ".preemptionPolicy")
        else:
            not_supported(errs, path + ".preemptionPolicy", pp, ("PreemptLowerPriority", "Never"))
    if spec.get("overhead") is not None:
        r.requirements(errs, {"limits": spec["overhead"]}, path + ".overhead")
    os_ = spec.get("os")
    if os_ is not None:
        os_ = as_dict(errs, os_, path + ".os")
        name = os_.get("name")
        if not name:
            required(errs, path + ".os.name", "cannot be empty")
        elif name not in ("linux", "windows"):
            not_supported(errs, path + ".os", name, ("linux", "windows"))
        elif name == "linux":
            if isinstance(sc, dict) and sc.get("windowsOptions") is not None:
                forbidden(errs, path + ".securityContext.windowsOptions", "windows options cannot be set for a linux pod")
    if is_pod:
        for key in ("containers", "initContainers"):
            for i, c in enumerate(spec.get(key) or []):
                img = c.get("image") if isinstance(c, dict) else None
                if isinstance(img, str) and img != img.strip():
                    invalid(errs, f"{path}.{key}[{i}].image", img, "must not have leading or trailing whitespace")


def validate_pod_template_spec(errs: Errs, tmpl: Any, path: str) -> None:
    """ValidatePodTemplateSpec: template labels/annotations and the pod spec."""
    tmpl = as_dict(errs, tmpl, path)
    meta = as_dict(errs, tmpl.get("metadata"), path + ".metadata")
    validate_labels(errs, meta.get("labels"), path + ".labels")
    validate_annotations(errs, meta.get("annotations"), path + ".annotations")
    validate_pod_spec(errs, tmpl.get("spec"), path + ".spec")
    spec = tmpl.get("spec")
    if isinstance(spec, dict) and spec.get("ephemeralContainers"):
        forbidden(errs, path + ".spec.ephemeralContainers", "ephemeral containers not allowed in pod template")


UPDATABLE_POD_SPEC_FIELDS = (
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
)


def _go_field(key: str) -> str:
    special = {"dnsPolicy": "DNSPolicy", "dnsConfig": "DNSConfig", "hostIPC": "HostIPC", "hostPID": "HostPID",
               "os": "OS", "serviceAccountName": "ServiceAccountName"}
    return special.get(key, key[:1].upper() + key[1:])


def _diff_lines(old: Any, new: Any, depth: int, label: str, out: list) -> None:
    """cmp.Diff-style lines: context lines start with two spaces, changes with '-'/'+'."""
    import orjson
    tabs = "\t" * depth
    if isinstance(old, dict) and isinstance(new, dict):
        out.append(f"  {tabs}{label}{{")
        same = 0
        for key in sorted(set(old) | set(new)):
            if old.get(key) == new.get(key):
                same += 1
                continue
            name = _go_field(key) + ": "
            if key in old and key in new:
                _diff_lines(old[key], new[key], depth + 1, name, out)
            else:
                if key in old:
                    out.append(f"- {tabs}\t{name}{orjson.dumps(old[key]).decode()},")
                if key in new:
                    out.append(f"+ {tabs}\t{name}{orjson.dumps(new[key]).decode()},")
        if same:
            out.append(f"  {tabs}\t... // {same} identical fields")
        out.append(f"  {tabs}}}" + ("," if depth else ""))
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out.append(f"  {tabs}{label}{{")
        for o, nv in zip(old, new):
            if o == nv:
                out.append(f"  {tabs}\t{{...}},")
            else:
                _diff_lines(o, nv, depth + 1, "", out)
        out.append(f"  {tabs}}},")
    else:
        out.append(f"- {tabs}{label}{orjson.dumps(old).decode()},")
        out.append(f"+ {tabs}{label}{orjson.dumps(new).decode()},")


def spec_diff(old: dict, new: dict, type_name: str = "core.PodSpec") -> str:
    """A cmp.Diff-like rendering of how a spec differs (what upstream appends to
    "pod updates may not change fields …")."""
    out: list[str] = []
    _diff_lines(old, new, 0, type_name, out)
    return "\n".join(out) + "\n"


def validate_pod_update(errs: Errs, new: dict, old: dict) -> None:
    """The spec rules of ValidatePodUpdate (metadata and the new spec are validated by the caller)."""
    ns = new.get("spec") if isinstance(new.get("spec"), dict) else {}
    os_ = old.get("spec") if isinstance(old.get("spec"), dict) else {}
    for key in ("containers", "initContainers"):
        nc = ns.get(key) or []
        oc = os_.get(key) or []
        if len(nc) != len(oc):
            forbidden(errs, f"spec.{key}", "pod updates may not add or remove containers")
            return
        for i, c in enumerate(nc):
            img = c.get("image") if isinstance(c, dict) else None
            if not img:
                required(errs, f"spec.{key}[{i}].image")
            elif isinstance(img, str) and img.strip() != img:
                invalid(errs, f"spec.{key}[{i}].image", img, "must not have leading or trailing whitespace")
    nads, oads = ns.get("activeDeadlineSeconds"), os_.get("activeDeadlineSeconds")
    if nads is not None:
        if not is_int(nads) or nads < 0 or nads > MAX_INT32:
            invalid(errs, "spec.activeDeadlineSeconds", nads, n.inclusive_range_error(0, MAX_INT32))
            return
        if is_int(oads) and oads < nads:
            invalid(errs, "spec.activeDeadlineSeconds", nads, "must be less than or equal to previous value")
            return
    elif oads is not None:
        invalid(errs, "spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value")
    # tolerations: existing ones may only change their tolerationSeconds
    new_tols = ns.get("tolerations") or []
    for old_t in os_.get("tolerations") or []:
        if not isinstance(old_t, dict):
            continue
        base = {k: v for k, v in old_t.items() if k != "tolerationSeconds"}
        if not any(isinstance(t, dict) and {k: v for k, v in t.items() if k != "tolerationSeconds"} == base
                   for t in new_tols):
            forbidden(errs, "spec.tolerations", "existing toleration can not be modified except its tolerationSeconds")
            break
    else:
        validate_tolerations(errs, new_tols, "spec.tolerations")
    new_gates = ns.get("schedulingGates") or []
    old_gate_names = {g.get("name") for g in os_.get("schedulingGates") or [] if isinstance(g, dict)}
    for i, g in enumerate(new_gates):
        gn = g.get("name") if isinstance(g, dict) else None
        if gn not in old_gate_names:
            forbidden(errs, f"spec.schedulingGates[{i}].name",
                      f"only deletion is allowed, but found new scheduling gate '{gn}'")
    if ns == os_:
        return
    munged = dict(ns)
    for key in ("containers", "initContainers"):
        if key in munged:
            oc = os_.get(key) or []
            munged[key] = [dict(c, image=oc[i].get("image")) if isinstance(c, dict) and isinstance(oc[i], dict)
                           and "image" in oc[i] else ({k: v for k, v in c.items() if k != "image"}
                                                      if isinstance(c, dict) else c)
                           for i, c in enumerate(munged[key])]
    for key in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        if key in os_:
            munged[key] = os_[key]
        else:
            munged.pop(key, None)
    ogp, ngp = os_.get("terminationGracePeriodSeconds"), munged.get("terminationGracePeriodSeconds")
    if is_int(ogp) and ogp < 0 and ngp == 1:
        munged["terminationGracePeriodSeconds"] = ogp
    if os_.get("schedulingGates"):
        old_sel = os_.get("nodeSelector") or {}
        new_sel = munged.get("nodeSelector") or {}
        if new_sel != old_sel:
            if any(new_sel.get(k) != v for k, v in old_sel.items()):
                invalid(errs, "spec.nodeSelector", new_sel,
                        "only additions to spec.nodeSelector are allowed (no mutations or deletions)")
            if "nodeSelector" in os_:
                munged["nodeSelector"] = os_["nodeSelector"]
            else:
                munged.pop("nodeSelector", None)
    if munged != os_:
        forbidden(errs, "spec", "pod updates may not change fields other than "
                  + ",".join(UPDATABLE_POD_SPEC_FIELDS) + "\n" + spec_diff(os_, munged))


__all__ = ["validate_pod_spec", "validate_pod_template_spec", "validate_pod_update", "spec_diff", "validate_tolerations", "validate_affinity", "validate_env", "validate_volumes"]
