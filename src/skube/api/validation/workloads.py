"""apps/v1 (Deployment, ReplicaSet, StatefulSet, DaemonSet, ControllerRevision) and
batch/v1 (Job, CronJob) rules."""
from __future__ import annotations

import re
from typing import Any

from . import names as n
from ._field import (Errs, GoRaw, forbidden, go_label_selector, go_string_map, immutable, int_or_string,
                     invalid, nonnegative, not_supported, required, too_long_max_length, type_invalid)
from ._util import as_dict, as_list, is_int
from .cron import parse_schedule, tz_error
from .meta import (selector_is_convertible, selector_is_empty, selector_matches, validate_annotations,
                   validate_label_selector, validate_labels)
from .pod import validate_pod_template_spec

# ---- int-or-percent ------------------------------------------------------------------------------

def _percent_value(v: Any) -> int | None:
    if isinstance(v, str) and not n.is_valid_percent(v):
        return int(v[:-1])
    return None


def _int_or_percent_value(v: Any) -> int:
    p = _percent_value(v)
    if p is not None:
        return p
    if is_int(v):
        return v
    if isinstance(v, str) and v.lstrip("-").isdigit():
        return int(v)  # IntValue() of a numeric string
    return 0


def positive_int_or_percent(errs: Errs, v: Any, path: str) -> None:
    if isinstance(v, str):
        for m in n.is_valid_percent(v):
            invalid(errs, path, int_or_string(v), m)
    elif is_int(v):
        nonnegative(errs, path, v)
    elif v is not None:
        invalid(errs, path, GoRaw(str(v)), "must be an integer or percentage (e.g '5%%')")


def not_more_than_100_percent(errs: Errs, v: Any, path: str) -> None:
    p = _percent_value(v)
    if p is not None and p > 100:
        invalid(errs, path, int_or_string(v), "must not be greater than 100%")


# ---- shared --------------------------------------------------------------------------------------

def _selector(errs: Errs, spec: dict, path: str, kind_word: str) -> None:
    sel = spec.get("selector")
    if sel is None:
        required(errs, path + ".selector")
        return
    validate_label_selector(errs, sel, path + ".selector")
    if selector_is_empty(sel):
        invalid(errs, path + ".selector", go_label_selector(sel), f"empty selector is invalid for {kind_word}")


def _template_for_controller(errs: Errs, spec: dict, path: str, kind: str) -> None:
    """ValidatePodTemplateSpecForReplicaSet (and DaemonSet's equivalent)."""
    tmpl = spec.get("template")
    tpath = path + ".template"
    if tmpl is None:
        required(errs, tpath)
        return
    tmpl = as_dict(errs, tmpl, tpath)
    labels = (tmpl.get("metadata") or {}).get("labels") if isinstance(tmpl.get("metadata"), dict) else None
    sel = spec.get("selector")
    # a missing selector converts to "nothing", which is not empty and matches no labels
    if (sel is None or not selector_is_empty(sel)) and selector_is_convertible(sel) \
            and not selector_matches(sel, labels):
        invalid(errs, tpath + ".metadata.labels", GoRaw(go_string_map(labels if isinstance(labels, dict) else None)),
                "`selector` does not match template `labels`")
    validate_pod_template_spec(errs, tmpl, tpath)
    pspec = tmpl.get("spec") if isinstance(tmpl.get("spec"), dict) else {}
    rp = pspec.get("restartPolicy") or ""
    if rp != "Always":
        not_supported(errs, tpath + ".spec.restartPolicy", rp, ("Always",))
    if pspec.get("activeDeadlineSeconds") is not None:
        forbidden(errs, tpath + ".spec.activeDeadlineSeconds", f"activeDeadlineSeconds in {kind} is not Supported")


# ---- Deployment / ReplicaSet ------------------------------------------------------------------------

def validate_deployment(errs: Errs, obj: dict) -> None:
    spec = as_dict(errs, obj.get("spec"), "spec")
    nonnegative(errs, "spec.replicas", spec.get("replicas"))
    _selector(errs, spec, "spec", "deployment")
    if selector_is_convertible(spec.get("selector")):
        _template_for_controller(errs, spec, "spec", "ReplicaSet")
    else:
        invalid(errs, "spec.selector", go_label_selector(spec.get("selector")), "invalid label selector")
    strategy = as_dict(errs, spec.get("strategy"), "spec.strategy")
    st = strategy.get("type")
    if st == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            forbidden(errs, "spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")
    elif st == "RollingUpdate":
        ru = strategy.get("rollingUpdate")
        if ru is None:
            required(errs, "spec.strategy.rollingUpdate", "this should be defaulted and never be nil")
        else:
            ru = as_dict(errs, ru, "spec.strategy.rollingUpdate")
            p = "spec.strategy.rollingUpdate"
            mu, ms = ru.get("maxUnavailable"), ru.get("maxSurge")
            positive_int_or_percent(errs, mu, p + ".maxUnavailable")
            positive_int_or_percent(errs, ms, p + ".maxSurge")
            if _int_or_percent_value(mu) == 0 and _int_or_percent_value(ms) == 0:
                invalid(errs, p + ".maxUnavailable", int_or_string(mu if mu is not None else 0),
                        "may not be 0 when `maxSurge` is 0")
            not_more_than_100_percent(errs, mu, p + ".maxUnavailable")
    else:
        not_supported(errs, "spec.strategy", GoRaw("apps.DeploymentStrategy{Type:%s}" % (
            '"' + str(st or "") + '"')), ("Recreate", "RollingUpdate"))
    mrs = spec.get("minReadySeconds")
    nonnegative(errs, "spec.minReadySeconds", mrs)
    nonnegative(errs, "spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
    rb = spec.get("rollbackTo")
    if isinstance(rb, dict):
        nonnegative(errs, "spec.rollback.version", rb.get("revision"))
    pds = spec.get("progressDeadlineSeconds")
    if pds is not None:
        nonnegative(errs, "spec.progressDeadlineSeconds", pds)
        if is_int(pds) and pds <= (mrs if is_int(mrs) else 0):
            invalid(errs, "spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds")


def validate_deployment_update(errs: Errs, new: dict, old: dict) -> None:
    ns, os_ = new.get("spec") or {}, old.get("spec") or {}
    if isinstance(ns, dict) and isinstance(os_, dict) and ns.get("selector") != os_.get("selector"):
        immutable(errs, "spec.selector", go_label_selector(ns.get("selector")))


def validate_replica_set(errs: Errs, obj: dict) -> None:
    spec = as_dict(errs, obj.get("spec"), "spec")
    nonnegative(errs, "spec.replicas", spec.get("replicas"))
    nonnegative(errs, "spec.minReadySeconds", spec.get("minReadySeconds"))
    _selector(errs, spec, "spec", "deployment")
    if selector_is_convertible(spec.get("selector")):
        _template_for_controller(errs, spec, "spec", "ReplicaSet")
    else:
        invalid(errs, "spec.selector", go_label_selector(spec.get("selector")), "invalid label selector")


validate_replica_set_update = validate_deployment_update


# ---- StatefulSet -----------------------------------------------------------------------------------

def validate_stateful_set(errs: Errs, obj: dict) -> None:
    spec = as_dict(errs, obj.get("spec"), "spec")
    pmp = spec.get("podManagementPolicy") or ""
    if not pmp:
        required(errs, "spec.podManagementPolicy")
    elif pmp not in ("OrderedReady", "Parallel"):
        invalid(errs, "spec.podManagementPolicy", pmp, "must be 'OrderedReady' or 'Parallel'")
    us = as_dict(errs, spec.get("updateStrategy"), "spec.updateStrategy")
    ut = us.get("type") or ""
    ru = us.get("rollingUpdate")
    if not ut:
        required(errs, "spec.updateStrategy")
    elif ut == "OnDelete":
        if ru is not None:
            invalid(errs, "spec.updateStrategy.rollingUpdate", GoRaw("&apps.RollingUpdateStatefulSetStrategy{...}"),
                    "only allowed for updateStrategy 'RollingUpdate'")
    elif ut == "RollingUpdate":
        if ru is not None:
            ru = as_dict(errs, ru, "spec.updateStrategy.rollingUpdate")
            rp = "spec.updateStrategy.rollingUpdate"
            nonnegative(errs, rp + ".partition", ru.get("partition"))
            mu = ru.get("maxUnavailable")
            if mu is not None:
                positive_int_or_percent(errs, mu, rp + ".maxUnavailable")
                if _int_or_percent_value(mu) == 0:
                    invalid(errs, rp + ".maxUnavailable", int_or_string(mu), "cannot be 0")
                not_more_than_100_percent(errs, mu, rp + ".maxUnavailable")
    else:
        invalid(errs, "spec.updateStrategy", GoRaw('apps.StatefulSetUpdateStrategy{Type:"%s"}' % ut),
                "must be 'RollingUpdate' or 'OnDelete'")
    pol = spec.get("persistentVolumeClaimRetentionPolicy")
    if isinstance(pol, dict):
        for f in ("whenDeleted", "whenScaled"):
            v = pol.get(f) or ""
            if v not in ("Retain", "Delete"):
                not_supported(errs, f"spec.persistentVolumeClaimRetentionPolicy.{f}", v, ("Retain", "Delete"))
    nonnegative(errs, "spec.replicas", spec.get("replicas"))
    nonnegative(errs, "spec.minReadySeconds", spec.get("minReadySeconds"))
    ords = spec.get("ordinals")
    if isinstance(ords, dict):
        nonnegative(errs, "spec.ordinals.start", ords.get("start"))
    _selector(errs, spec, "spec", "statefulset")
    sel = spec.get("selector")
    tmpl = as_dict(errs, spec.get("template"), "spec.template")
    if not selector_is_convertible(sel):
        invalid(errs, "spec.selector", go_label_selector(sel), "")
    else:
        tmeta = tmpl.get("metadata") if isinstance(tmpl.get("metadata"), dict) else {}
        labels = tmeta.get("labels")
        if (sel is None or not selector_is_empty(sel)) and not selector_matches(sel, labels):
            invalid(errs, "spec.template.metadata.labels",
                    GoRaw(go_string_map(labels if isinstance(labels, dict) else None)),
                    "`selector` does not match template `labels`")
        validate_labels(errs, labels, "spec.template.labels")
        validate_annotations(errs, tmeta.get("annotations"), "spec.template.annotations")
    # upstream keeps the pod spec itself out of StatefulSet validation (volumes may come
    # from volumeClaimTemplates); the pod rules apply when the controller creates pods.
    pspec = tmpl.get("spec") if isinstance(tmpl.get("spec"), dict) else {}
    rp = pspec.get("restartPolicy") or ""
    if rp != "Always":
        not_supported(errs, "spec.template.spec.restartPolicy", rp, ("Always",))
    if pspec.get("activeDeadlineSeconds") is not None:
        forbidden(errs, "spec.template.spec.activeDeadlineSeconds", "activeDeadlineSeconds in StatefulSet is not Supported")


_STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds")


def validate_stateful_set_update(errs: Errs, new: dict, old: dict) -> None:
    ns = new.get("spec") if isinstance(new.get("spec"), dict) else {}
    os_ = old.get("spec") if isinstance(old.get("spec"), dict) else {}
    a = {k: v for k, v in ns.items() if k not in _STS_MUTABLE}
    b = {k: v for k, v in os_.items() if k not in _STS_MUTABLE}
    if a != b:
        forbidden(errs, "spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                  "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
                  "are forbidden")


# ---- DaemonSet ---------------------------------------------------------------------------------------

def validate_daemon_set(errs: Errs, obj: dict) -> None:
    spec = as_dict(errs, obj.get("spec"), "spec")
    sel = spec.get("selector")
    validate_label_selector(errs, sel, "spec.selector")
    tmpl = as_dict(errs, spec.get("template"), "spec.template")
    tmeta = tmpl.get("metadata") if isinstance(tmpl.get("metadata"), dict) else {}
    labels = tmeta.get("labels")
    if selector_is_convertible(sel) and not selector_matches(sel, labels):
        invalid(errs, "spec.template.metadata.labels", GoRaw(go_string_map(labels if isinstance(labels, dict) else None)),
                "`selector` does not match template `labels`")
    if sel is not None and selector_is_empty(sel):
        invalid(errs, "spec.selector", go_label_selector(sel), "empty selector is invalid for daemonset")
    validate_pod_template_spec(errs, tmpl, "spec.template")
    pspec = tmpl.get("spec") if isinstance(tmpl.get("spec"), dict) else {}
    rp = pspec.get("restartPolicy") or ""
    if rp != "Always":
        not_supported(errs, "spec.template.spec.restartPolicy", rp, ("Always",))
    if pspec.get("activeDeadlineSeconds") is not None:
        forbidden(errs, "spec.template.spec.activeDeadlineSeconds", "activeDeadlineSeconds in DaemonSet is not Supported")
    nonnegative(errs, "spec.minReadySeconds", spec.get("minReadySeconds"))
    nonnegative(errs, "spec.templateGeneration", spec.get("templateGeneration"))
    us = as_dict(errs, spec.get("updateStrategy"), "spec.updateStrategy")
    ut = us.get("type")
    if ut == "OnDelete":
        pass
    elif ut == "RollingUpdate":
        ru = us.get("rollingUpdate")
        if ru is None:
            required(errs, "spec.updateStrategy.rollingUpdate")
        else:
            ru = as_dict(errs, ru, "spec.updateStrategy.rollingUpdate")
            p = "spec.updateStrategy.rollingUpdate"
            mu, ms = ru.get("maxUnavailable"), ru.get("maxSurge")
            positive_int_or_percent(errs, mu, p + ".maxUnavailable")
            positive_int_or_percent(errs, ms, p + ".maxSurge")
            not_more_than_100_percent(errs, mu, p + ".maxUnavailable")
            not_more_than_100_percent(errs, ms, p + ".maxSurge")
            has_u, has_s = _int_or_percent_value(mu) != 0, _int_or_percent_value(ms) != 0
            if has_u and has_s:
                invalid(errs, p + ".maxSurge", int_or_string(ms), "may not be set when maxUnavailable is non-zero")
            elif not has_u and not has_s:
                required(errs, p + ".maxUnavailable", "cannot be 0 when maxSurge is 0")
    else:
        not_supported(errs, "spec.updateStrategy", GoRaw('apps.DaemonSetUpdateStrategy{Type:"%s"}' % (ut or "")),
                      ("RollingUpdate", "OnDelete"))
    nonnegative(errs, "spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))


def validate_daemon_set_update(errs: Errs, new: dict, old: dict) -> None:
    validate_deployment_update(errs, new, old)
    ns = new.get("spec") if isinstance(new.get("spec"), dict) else {}
    os_ = old.get("spec") if isinstance(old.get("spec"), dict) else {}
    ng, og = ns.get("templateGeneration") or 0, os_.get("templateGeneration") or 0
    if is_int(ng) and is_int(og):
        if ng < og:
            invalid(errs, "spec.templateGeneration", ng, "must not be decremented")
        changed = ns.get("template") != os_.get("template")
        if ng == og and changed and ("templateGeneration" in ns or "templateGeneration" in os_):
            invalid(errs, "spec.templateGeneration", ng, "must be incremented upon template update")
        elif ng > og and not changed:
            invalid(errs, "spec.templateGeneration", ng, "must not be incremented without template update")


# ---- ControllerRevision ------------------------------------------------------------------------------

def validate_controller_revision(errs: Errs, obj: dict) -> None:
    if obj.get("data") is None:
        required(errs, "data", "data is mandatory")
    nonnegative(errs, "revision", obj.get("revision"))


def validate_controller_revision_update(errs: Errs, new: dict, old: dict) -> None:
    if new.get("data") != old.get("data"):
        immutable(errs, "data", GoRaw("runtime.RawExtension{...}"))


# ---- Job -----------------------------------------------------------------------------------------------

def _job_spec(errs: Errs, spec: dict, path: str) -> None:
    for f in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished",
              "backoffLimitPerIndex", "maxFailedIndexes"):
        nonnegative(errs, f"{path}.{f}", spec.get(f))
    if spec.get("maxFailedIndexes") is not None and spec.get("backoffLimitPerIndex") is None:
        required(errs, path + ".backoffLimitPerIndex", "when maxFailedIndexes is specified")
    mb = spec.get("managedBy")
    if mb is not None:
        mb = mb if isinstance(mb, str) else ""
        seg = mb.split("/", 1)
        if not mb:
            required(errs, path + ".managedBy")
        elif len(seg) != 2 or not seg[0] or not seg[1]:
            invalid(errs, path + ".managedBy", mb, 'must be a domain-prefixed path (such as "acme.io/foo")')
        else:
            for m in n.is_dns1123_subdomain(seg[0]):
                invalid(errs, path + ".managedBy", seg[0], m)
            if not re.fullmatch(r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+", seg[1]):
                invalid(errs, path + ".managedBy", seg[1], n.regex_error(
                    "Invalid path", "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+"))
        if len(mb) > 63:
            too_long_max_length(errs, path + ".managedBy", 63)
    mode = spec.get("completionMode")
    completions, parallelism = spec.get("completions"), spec.get("parallelism")
    if mode is not None:
        if mode not in ("NonIndexed", "Indexed"):
            not_supported(errs, path + ".completionMode", mode, ("NonIndexed", "Indexed"))
        if mode == "Indexed":
            if completions is None:
                required(errs, path + ".completions", "when completion mode is Indexed")
            if is_int(parallelism) and parallelism > 100000:
                invalid(errs, path + ".parallelism", parallelism,
                        "must be less than or equal to 100000 when completion mode is Indexed")
            mfi = spec.get("maxFailedIndexes")
            if is_int(completions) and is_int(mfi) and mfi > completions:
                invalid(errs, path + ".maxFailedIndexes", mfi, "must be less than or equal to completions")
    if mode in (None, "NonIndexed"):
        for f in ("backoffLimitPerIndex", "maxFailedIndexes"):
            if spec.get(f) is not None:
                invalid(errs, f"{path}.{f}", spec[f], "requires indexed completion mode")
    if spec.get("successPolicy") is not None and mode != "Indexed":
        invalid(errs, path + ".successPolicy", GoRaw("batch.SuccessPolicy{...}"), "requires indexed completion mode")
    prp = spec.get("podReplacementPolicy")
    if prp is not None:
        if spec.get("podFailurePolicy") is not None:
            if prp != "Failed":
                not_supported(errs, path + ".podReplacementPolicy", prp, ("Failed",))
        elif prp not in ("Failed", "TerminatingOrFailed"):
            not_supported(errs, path + ".podReplacementPolicy", prp, ("Failed", "TerminatingOrFailed"))
    pfp = spec.get("podFailurePolicy")
    if isinstance(pfp, dict):
        _pod_failure_policy(errs, spec, pfp, path + ".podFailurePolicy")
    validate_pod_template_spec(errs, spec.get("template"), path + ".template")
    tmpl = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    rp = (tmpl.get("spec") or {}).get("restartPolicy") if isinstance(tmpl.get("spec"), dict) else None
    rp = rp or ""
    if rp in ("Always", ""):
        required(errs, path + ".template.spec.restartPolicy", 'valid values: "OnFailure", "Never"')
    elif rp not in ("OnFailure", "Never"):
        not_supported(errs, path + ".template.spec.restartPolicy", rp, ("OnFailure", "Never"))
    elif pfp is not None and rp != "Never":
        invalid(errs, path + ".template.spec.restartPolicy", rp, 'only "Never" is supported when podFailurePolicy is specified')


def _pod_failure_policy(errs: Errs, spec: dict, pfp: dict, path: str) -> None:
    rules = as_list(errs, pfp.get("rules"), path + ".rules")
    if len(rules) > 20:
        from ._field import too_many
        too_many(errs, path + ".rules", len(rules), 20)
    tmpl = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    pspec = tmpl.get("spec") if isinstance(tmpl.get("spec"), dict) else {}
    names = {c.get("name") for key in ("containers", "initContainers") for c in pspec.get(key) or []
             if isinstance(c, dict)}
    actions = ("Count", "FailIndex", "FailJob", "Ignore")
    for i, rule in enumerate(rules):
        rp = f"{path}.rules[{i}]"
        rule = as_dict(errs, rule, rp)
        action = rule.get("action") or ""
        if not action:
            required(errs, rp + ".action", 'valid values: ["Count" "FailIndex" "FailJob" "Ignore"]')
        elif action == "FailIndex":
            if spec.get("backoffLimitPerIndex") is None:
                invalid(errs, rp + ".action", action, "requires the backoffLimitPerIndex to be set")
        elif action not in actions:
            not_supported(errs, rp + ".action", action, actions)
        oec = rule.get("onExitCodes")
        opc = rule.get("onPodConditions")
        if isinstance(oec, dict):
            ep = rp + ".onExitCodes"
            op = oec.get("operator") or ""
            if not op:
                required(errs, ep + ".operator", 'valid values: ["In" "NotIn"]')
            elif op not in ("In", "NotIn"):
                not_supported(errs, ep + ".operator", op, ("In", "NotIn"))
            cn = oec.get("containerName")
            if cn is not None and cn not in names:
                invalid(errs, ep + ".containerName", cn,
                        "must be one of the container or initContainer names in the pod template")
            vals = as_list(errs, oec.get("values"), ep + ".values")
            if not vals:
                invalid(errs, ep + ".values", GoRaw("[]int32(nil)"), "at least one value is required")
            seen: set = set()
            for j, v in enumerate(vals):
                if op == "In" and v == 0:
                    invalid(errs, f"{ep}.values[{j}]", v, "must not be 0 for the In operator")
                if v in seen:
                    from ._field import duplicate
                    duplicate(errs, f"{ep}.values[{j}]", v)
                seen.add(v)
            if any(is_int(a) and is_int(b) and a > b for a, b in zip(vals, vals[1:])):
                invalid(errs, ep + ".values", vals, "must be ordered")
        if isinstance(opc, list):
            for j, pat in enumerate(opc):
                pp = f"{rp}.onPodConditions[{j}]"
                pat = as_dict(errs, pat, pp)
                t = pat.get("type") or ""
                for m in n.is_qualified_name(t):
                    invalid(errs, pp + ".type", t, m)
                st = pat.get("status") or ""
                if not st:
                    required(errs, pp + ".status", 'valid values: ["False" "True" "Unknown"]')
                elif st not in ("False", "True", "Unknown"):
                    not_supported(errs, pp + ".status", st, ("False", "True", "Unknown"))
        if oec is not None and opc:
            errs.append({"reason": "FieldValueInvalid", "field": rp,
                         "message": "Invalid value: specifying both OnExitCodes and OnPodConditions is not supported"})
        if oec is None and not opc:
            errs.append({"reason": "FieldValueInvalid", "field": rp,
                         "message": "Invalid value: specifying one of OnExitCodes and OnPodConditions is required"})


def _has_label(errs: Errs, labels: dict, key: str, expected: str) -> None:
    p = f"spec.template.metadata.labels[{key}]"
    if key not in labels:
        required(errs, p, f"must be '{expected}'")
    elif labels[key] != expected:
        invalid(errs, p, GoRaw(go_string_map(labels)), f"must be '{expected}'")


def validate_job(errs: Errs, obj: dict, *, require_prefixed_labels: bool = True) -> None:
    spec = as_dict(errs, obj.get("spec"), "spec")
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    if spec.get("manualSelector") is not True and spec.get("selector") is not None:
        uid = meta.get("uid") or ""
        name = meta.get("name") or ""
        if not uid:
            required(errs, "metadata.uid")
        tmpl = spec.get("template") if isinstance(spec.get("template"), dict) else {}
        tmeta = tmpl.get("metadata") if isinstance(tmpl.get("metadata"), dict) else {}
        labels = tmeta.get("labels") if isinstance(tmeta.get("labels"), dict) else {}
        _has_label(errs, labels, "controller-uid", uid)
        _has_label(errs, labels, "job-name", name)
        expected = {"controller-uid": uid, "job-name": name}
        if require_prefixed_labels:
            _has_label(errs, labels, "batch.kubernetes.io/controller-uid", uid)
            _has_label(errs, labels, "batch.kubernetes.io/job-name", name)
            expected["batch.kubernetes.io/controller-uid"] = uid
            expected["batch.kubernetes.io/job-name"] = name
        sel = spec.get("selector")
        if selector_is_convertible(sel) and not selector_matches(sel, expected):
            invalid(errs, "spec.selector", go_label_selector(sel), "`selector` not auto-generated")
    _job_spec(errs, spec, "spec")
    sel = spec.get("selector")
    if sel is None:
        required(errs, "spec.selector")
    else:
        validate_label_selector(errs, sel, "spec.selector")
    if selector_is_convertible(sel):
        tmpl = spec.get("template") if isinstance(spec.get("template"), dict) else {}
        tmeta = tmpl.get("metadata") if isinstance(tmpl.get("metadata"), dict) else {}
        labels = tmeta.get("labels")
        if not selector_matches(sel, labels):
            invalid(errs, "spec.template.metadata.labels",
                    GoRaw(go_string_map(labels if isinstance(labels, dict) else None)),
                    "`selector` does not match template `labels`")
    if spec.get("completionMode") == "Indexed" and is_int(spec.get("completions")) and spec["completions"] > 0:
        host = f"{meta.get('name', '')}-{spec['completions'] - 1}"
        if n.is_dns1123_label(host):
            invalid(errs, "metadata.name", meta.get("name", ""),
                    f"will not able to create pod with invalid DNS label: {host}")


def validate_job_update(errs: Errs, new: dict, old: dict) -> None:
    ns = new.get("spec") if isinstance(new.get("spec"), dict) else {}
    os_ = old.get("spec") if isinstance(old.get("spec"), dict) else {}
    indexed = ns.get("completionMode") == "Indexed"
    if ns.get("completions") != os_.get("completions"):
        if not indexed:
            immutable(errs, "spec.completions", ns.get("completions"))
        elif ns.get("completions") is not None and ns.get("completions") != ns.get("parallelism"):
            invalid(errs, "spec.completions", ns.get("completions"), "can only be modified in tandem with spec.parallelism")
    if ns.get("selector") != os_.get("selector"):
        immutable(errs, "spec.selector", go_label_selector(ns.get("selector")))
    nt, ot = ns.get("template"), os_.get("template")
    if isinstance(nt, dict) and isinstance(ot, dict) and os_.get("suspend") is True \
            and not ((old.get("status") or {}).get("startTime")):
        # a suspended Job that never started may still change its scheduling directives
        ot = _with_scheduling_of(ot, nt)
    if nt != ot:
        immutable(errs, "spec.template", GoRaw("core.PodTemplateSpec{...}"))
    for f in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy", "successPolicy"):
        if ns.get(f) != os_.get(f):
            immutable(errs, f"spec.{f}", ns.get(f) if not isinstance(ns.get(f), dict) else GoRaw("{...}"))


def _copy_key(dst: dict, src: dict, key: str) -> None:
    if key in src:
        dst[key] = src[key]
    else:
        dst.pop(key, None)


def _with_scheduling_of(old_t: dict, new_t: dict) -> dict:
    """The old template with the new one's labels, annotations, node selector, tolerations,
    scheduling gates and node affinity (what validatePodTemplateUpdate lets change)."""
    t = dict(old_t)
    meta = dict(t.get("metadata") or {})
    spec = dict(t.get("spec") or {})
    new_meta = new_t.get("metadata") if isinstance(new_t.get("metadata"), dict) else {}
    new_spec = new_t.get("spec") if isinstance(new_t.get("spec"), dict) else {}
    for k in ("labels", "annotations"):
        _copy_key(meta, new_meta, k)
    for k in ("nodeSelector", "tolerations", "schedulingGates"):
        _copy_key(spec, new_spec, k)
    old_aff, new_aff = spec.get("affinity"), new_spec.get("affinity")
    if isinstance(old_aff, dict) and new_aff is None:
        rest = {k: v for k, v in old_aff.items() if k != "nodeAffinity" and v is not None}
        if rest:
            spec["affinity"] = rest
        else:
            spec.pop("affinity", None)
    elif isinstance(new_aff, dict) and old_aff is None:
        spec["affinity"] = {"nodeAffinity": new_aff["nodeAffinity"]} if new_aff.get("nodeAffinity") is not None else {}
    elif isinstance(old_aff, dict) and isinstance(new_aff, dict):
        aff = dict(old_aff)
        _copy_key(aff, new_aff, "nodeAffinity")
        spec["affinity"] = aff
    t["metadata"], t["spec"] = meta, spec
    return t


# ---- CronJob --------------------------------------------------------------------------------------------

_TZ_PART = re.compile(r"[A-Za-z.\-_0-9+]{1,14}")


def _time_zone(errs: Errs, tz: Any, path: str) -> None:
    if tz is None:
        return
    if not isinstance(tz, str):
        type_invalid(errs, path, tz, "string")
        return
    if not tz:
        invalid(errs, path, tz, "timeZone must be nil or non-empty string")
        return
    for part in tz.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TZ_PART.fullmatch(part):
            invalid(errs, path, tz, f"unknown time zone {tz}")
            return
    if tz.lower() == "local":
        invalid(errs, path, tz, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")
    err = tz_error(tz)
    if err:
        invalid(errs, path, tz, err)


def validate_job_template(errs: Errs, jt: Any, path: str) -> None:
    jt = as_dict(errs, jt, path)
    spec = as_dict(errs, jt.get("spec"), path + ".spec")
    _job_spec(errs, spec, path + ".spec")
    if spec.get("selector") is not None:
        invalid(errs, path + ".spec.selector", go_label_selector(spec["selector"]), "`selector` will be auto-generated")
    if spec.get("manualSelector") is True:
        not_supported(errs, path + ".spec.manualSelector", True, ("nil", "false"))


def validate_cron_job(errs: Errs, obj: dict, old: dict | None = None) -> None:
    spec = as_dict(errs, obj.get("spec"), "spec")
    old_spec = (old or {}).get("spec") if isinstance((old or {}).get("spec"), dict) else None
    sched = spec.get("schedule")
    if not sched:
        required(errs, "spec.schedule")
    elif not isinstance(sched, str):
        type_invalid(errs, "spec.schedule", sched, "string")
    else:
        err = parse_schedule(sched)
        if err:
            invalid(errs, "spec.schedule", sched, err)
        allow_tz = old_spec is not None and "TZ" in (old_spec.get("schedule") or "")
        if allow_tz and "TZ" in sched and spec.get("timeZone") is not None:
            invalid(errs, "spec.schedule", sched, "cannot use both timeZone field and TZ or CRON_TZ in schedule")
        elif not allow_tz and "TZ" in sched:
            invalid(errs, "spec.schedule", sched, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
    nonnegative(errs, "spec.startingDeadlineSeconds", spec.get("startingDeadlineSeconds"))
    if old_spec is None or old_spec.get("timeZone") != spec.get("timeZone"):
        _time_zone(errs, spec.get("timeZone"), "spec.timeZone")
    cp = spec.get("concurrencyPolicy") or ""
    if not cp:
        required(errs, "spec.concurrencyPolicy")
    elif cp not in ("Allow", "Forbid", "Replace"):
        not_supported(errs, "spec.concurrencyPolicy", cp, ("Allow", "Forbid", "Replace"))
    validate_job_template(errs, spec.get("jobTemplate"), "spec.jobTemplate")
    nonnegative(errs, "spec.successfulJobsHistoryLimit", spec.get("successfulJobsHistoryLimit"))
    nonnegative(errs, "spec.failedJobsHistoryLimit", spec.get("failedJobsHistoryLimit"))
    if old is None:
        name = (obj.get("metadata") or {}).get("name") or ""
        if isinstance(name, str) and len(name) > 52:
            invalid(errs, "metadata.name", name, "must be no more than 52 characters")


__all__ = ["validate_deployment", "validate_deployment_update", "validate_replica_set",
           "validate_replica_set_update", "validate_stateful_set", "validate_stateful_set_update",
           "validate_daemon_set", "validate_daemon_set_update", "validate_controller_revision",
           "validate_controller_revision_update", "validate_job", "validate_job_update", "validate_cron_job",
           "validate_job_template", "positive_int_or_percent", "not_more_than_100_percent"]
