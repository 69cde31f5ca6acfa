"""Helpers shared by the pod-spec rules: ports, paths, file modes, pull policies,
downward-API selectors and security profiles (all from core validation)."""
from __future__ import annotations

from typing import Any

from . import names as n
from . import resources as r
from ._field import Errs, invalid, not_supported, required, type_invalid
from ._util import as_dict, as_list, as_str, is_int

MAX_INT32 = 2 ** 31 - 1
PROTOCOLS = ("SCTP", "TCP", "UDP")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"
ENV_FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                   "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP",
                   "status.podIPs")
VOLUME_FIELD_PATHS = ("metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace",
                      "metadata.uid")
DOWNWARD_CONVERTIBLE = frozenset(("metadata.annotations", "metadata.labels", "metadata.name",
                                  "metadata.namespace", "metadata.uid", "spec.nodeName",
                                  "spec.restartPolicy", "spec.serviceAccountName", "spec.schedulerName",
                                  "status.phase", "status.hostIP", "status.hostIPs", "status.podIP",
                                  "status.podIPs"))
RESOURCE_FIELD_PATHS = ("limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu",
                        "requests.ephemeral-storage", "requests.memory")
CPU_DIVISORS = frozenset(("1m", "1"))
MEM_DIVISORS = frozenset(("1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"))
MAX_UID = 0xFFFFFFFF


def port_num_or_name(errs: Errs, port: Any, path: str) -> None:
    if is_int(port):
        for m in n.is_valid_port_num(port):
            invalid(errs, path, port, m)
    elif isinstance(port, str):
        for m in n.is_valid_port_name(port):
            invalid(errs, path, port, m)
    else:
        type_invalid(errs, path, port, "integer or string")


def no_backsteps(errs: Errs, target: str, path: str) -> None:
    if ".." in target.replace("\\", "/").split("/"):
        invalid(errs, path, target, "must not contain '..'")


def local_descending(errs: Errs, target: str, path: str) -> None:
    if target.startswith("/"):
        invalid(errs, path, target, "must be a relative path")
    no_backsteps(errs, target, path)


def local_non_reserved(errs: Errs, target: str, path: str) -> None:
    local_descending(errs, target, path)
    if target.startswith("..") and not target.startswith("../"):
        invalid(errs, path, target, "must not start with '..'")


def file_mode(errs: Errs, mode: Any, path: str) -> None:
    if mode is None:
        return
    if not is_int(mode):
        type_invalid(errs, path, mode, "integer")
    elif mode > 0o777 or mode < 0:
        invalid(errs, path, mode, FILE_MODE_MSG)


def key_to_paths(errs: Errs, items: Any, path: str, seen: set | None = None,
                  dup_path: str = "", dup_value: str = "") -> None:
    for i, kp in enumerate(as_list(errs, items, path)):
        ip = f"{path}[{i}]"
        kp = as_dict(errs, kp, ip)
        if not kp.get("key"):
            required(errs, ip + ".key")
        p = as_str(errs, kp.get("path"), ip + ".path")
        if not p:
            required(errs, ip + ".path")
        local_non_reserved(errs, p, ip + ".path")
        file_mode(errs, kp.get("mode"), ip + ".mode")
        if seen is not None and p:
            if p in seen:
                invalid(errs, dup_path, dup_value, "conflicting duplicate paths")
            seen.add(p)


def object_field_selector(errs: Errs, fs: dict, allowed: tuple, path: str) -> None:
    api_version = fs.get("apiVersion")
    if not api_version:
        required(errs, path + ".apiVersion")
        return
    fp = fs.get("fieldPath")
    if not fp:
        required(errs, path + ".fieldPath")
        return
    fp = str(fp)
    if api_version != "v1":
        invalid(errs, path + ".fieldPath", fp, f"error converting fieldPath: unsupported pod version: {api_version}")
        return
    base, subscript, ok = fp, "", False
    if fp.endswith("']") and "['" in fp:
        base, _, rest = fp.partition("['")
        subscript, ok = rest[:-2], True
    if ok and base in ("metadata.annotations", "metadata.labels"):
        pass
    elif base not in DOWNWARD_CONVERTIBLE or ok:
        invalid(errs, path + ".fieldPath", fp, f"error converting fieldPath: field label not supported: {fp}")
        return
    if ok:
        key = subscript.lower() if base == "metadata.annotations" else subscript
        for m in n.is_qualified_name(key):
            invalid(errs, path, key, m)
    elif base not in allowed:
        not_supported(errs, path + ".fieldPath", base, sorted(allowed))


def resource_field_selector(errs: Errs, fs: dict, path: str, volume: bool) -> None:
    res = fs.get("resource")
    if volume and not fs.get("containerName"):
        required(errs, path + ".containerName")
    elif not res:
        required(errs, path + ".resource")
    elif res not in RESOURCE_FIELD_PATHS and not (
            isinstance(res, str) and (res.startswith("requests.hugepages-") or res.startswith("limits.hugepages-"))):
        not_supported(errs, path + ".resource", res, RESOURCE_FIELD_PATHS)
    div = fs.get("divisor")
    if div is None or not isinstance(res, str):
        return
    q = r.quantity(errs, div, path + ".divisor")
    if q is None or q == 0:
        return
    d = r.qstr(div)
    if res in ("limits.cpu", "requests.cpu"):
        if d not in CPU_DIVISORS:
            invalid(errs, path + ".divisor", res, "only divisor's values 1m and 1 are supported with the cpu resource")
    elif res in ("limits.memory", "requests.memory"):
        if d not in MEM_DIVISORS:
            invalid(errs, path + ".divisor", res, "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, "
                    "1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource")
    elif res in ("limits.ephemeral-storage", "requests.ephemeral-storage"):
        if d not in MEM_DIVISORS:
            invalid(errs, path + ".divisor", res, "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, "
                    "1Gi, 1Ti, 1Pi, 1Ei are supported with the local ephemeral storage resource")


def pull_policy(errs: Errs, policy: Any, path: str) -> None:
    if policy in PULL_POLICIES:
        return
    if not policy:
        required(errs, path)
    else:
        not_supported(errs, path, policy, PULL_POLICIES)


def seccomp_profile(errs: Errs, sp: Any, path: str) -> None:
    if sp is None:
        return
    sp = as_dict(errs, sp, path)
    t = sp.get("type")
    valid = ("Localhost", "RuntimeDefault", "Unconfined")
    if not t:
        required(errs, path + ".type", "type is required when seccompProfile is set")
    elif t not in valid:
        not_supported(errs, path + ".type", t, valid)
    lp = sp.get("localhostProfile")
    if t == "Localhost":
        if lp is None:
            required(errs, path + ".localhostProfile", "must be set when seccomp type is Localhost")
        else:
            local_descending(errs, as_str(errs, lp, path + ".localhostProfile"), path + ".localhostProfile")
    elif lp is not None:
        invalid(errs, path + ".localhostProfile", lp, "can only be set when seccomp type is Localhost")


def apparmor_profile(errs: Errs, ap: Any, path: str) -> None:
    if ap is None:
        return
    ap = as_dict(errs, ap, path)
    t = ap.get("type")
    lp = ap.get("localhostProfile")
    if t == "Localhost":
        if lp is None:
            required(errs, path + ".localhostProfile", "must be set when AppArmor type is Localhost")
        elif isinstance(lp, str):
            if lp.strip() != lp:
                invalid(errs, path + ".localhostProfile", lp, "must not be padded with whitespace")
            elif not lp:
                required(errs, path + ".localhostProfile", "must be set when AppArmor type is Localhost")
            if len(lp) > 4095:
                from ._field import too_long
                too_long(errs, path + ".localhostProfile", 4095)
    elif t in ("RuntimeDefault", "Unconfined"):
        if lp is not None:
            invalid(errs, path + ".localhostProfile", lp, "can only be set when AppArmor type is Localhost")
    elif not t:
        required(errs, path + ".type", "type is required when appArmorProfile is set")
    else:
        not_supported(errs, path + ".type", t, ("Localhost", "RuntimeDefault", "Unconfined"))


def id_range(errs: Errs, v: Any, path: str) -> None:
    if v is None:
        return
    if not is_int(v):
        type_invalid(errs, path, v, "integer")
    elif not 0 <= v <= MAX_UID:
        invalid(errs, path, v, n.inclusive_range_error(0, MAX_UID))
