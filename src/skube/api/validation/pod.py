"""Pod spec rules (core validation's ValidatePodSpec and friends), on v1 JSON dicts.

Validation runs after defaulting, as upstream's does, so fields that defaulting always
fills (imagePullPolicy, terminationMessagePolicy, protocol, restartPolicy, …) are
reported as required when missing.
"""
from __future__ import annotations

import posixpath
from typing import Any

from . import names as n
from . import resources as r
from ._field import (Errs, GoRaw, Stringer, duplicate, forbidden, go_string_slice, int_or_string,
                     invalid, invalid_omit, nonnegative, not_found, not_supported, required,
                     type_invalid, NEGATIVE)
from ._util import as_dict, as_int, as_list, as_str, is_int
from .meta import validate_label_selector, validate_labels

MAX_INT32 = 2 ** 31 - 1
PROTOCOLS = ("SCTP", "TCP", "UDP")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
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

# Volume source fields in the order upstream checks them, with the path it reports.
VOLUME_SOURCES = (
    ("emptyDir", "emptyDir"), ("hostPath", "hostPath"), ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"), ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"), ("nfs", "nfs"), ("iscsi", "iscsi"), ("glusterfs", "glusterfs"),
    ("flocker", "flocker"), ("persistentVolumeClaim", "persistentVolumeClaim"), ("rbd", "rbd"),
    ("cinder", "cinder"), ("cephfs", "cephFS"), ("quobyte", "quobyte"), ("downwardAPI", "downwarAPI"),
    ("fc", "fc"), ("flexVolume", "flexVolume"), ("configMap", "configMap"), ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"), ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"), ("azureDisk", "azureDisk"), ("storageos", "storageos"),
    ("projected", "projected"), ("scaleIO", "scaleIO"), ("csi", "csi"), ("ephemeral", "ephemeral"),
    ("image", "image"),
)
# fields a volume source must carry: source -> ((field, path child), ...)
_VOLUME_REQUIRED = {
    "gitRepo": ("repository",), "gcePersistentDisk": ("pdName",), "awsElasticBlockStore": ("volumeID",),
    "nfs": ("server", "path"), "iscsi": ("targetPortal", "iqn"), "glusterfs": ("endpoints", "path"),
    "rbd": ("monitors", "image"), "cinder": ("volumeID",), "cephfs": ("monitors",),
    "quobyte": ("volume",), "flexVolume": ("driver",), "azureFile": ("secretName", "shareName"),
    "vsphereVolume": ("volumePath",), "photonPersistentDisk": ("pdID",),
    "portworxVolume": ("volumeID",), "azureDisk": ("diskName", "diskURI"),
    "scaleIO": ("gateway", "system", "volumeName"), "storageos": ("volumeName",),
}
# paths upstream reports those under (a few differ from the JSON name)
_VOLUME_CHILD_PATH = {"gcePersistentDisk": "persistentDisk"}


def _port_num_or_name(errs: Errs, port: Any, path: str) -> None:
    if is_int(port):
        for m in n.is_valid_port_num(port):
            invalid(errs, path, port, m)
    elif isinstance(port, str):
        for m in n.is_valid_port_name(port):
            invalid(errs, path, port, m)
    else:
        type_invalid(errs, path, port, "integer or string")


# ---- paths -------------------------------------------------------------------------------

def _no_backsteps(errs: Errs, target: str, path: str) -> None:
    if ".." in target.replace("\\", "/").split("/"):
        invalid(errs, path, target, "must not contain '..'")


def _local_descending(errs: Errs, target: str, path: str) -> None:
    if target.startswith("/"):
        invalid(errs, path, target, "must be a relative path")
    _no_backsteps(errs, target, path)


def _local_non_reserved(errs: Errs, target: str, path: str) -> None:
    _local_descending(errs, target, path)
    if target.startswith("..") and not target.startswith("../"):
        invalid(errs, path, target, "must not start with '..'")


def _file_mode(errs: Errs, mode: Any, path: str) -> None:
    if mode is None:
        return
    if not is_int(mode):
        type_invalid(errs, path, mode, "integer")
    elif mode > 0o777 or mode < 0:
        invalid(errs, path, mode, FILE_MODE_MSG)


def _key_to_paths(errs: Errs, items: Any, path: str, seen: set | None = None,
                  dup_path: str = "", dup_value: str = "") -> None:
    for i, kp in enumerate(as_list(errs, items, path)):
        ip = f"{path}[{i}]"
        kp = as_dict(errs, kp, ip)
        if not kp.get("key"):
            required(errs, ip + ".key")
        p = as_str(errs, kp.get("path"), ip + ".path")
        if not p:
            required(errs, ip + ".path")
        _local_non_reserved(errs, p, ip + ".path")
        _file_mode(errs, kp.get("mode"), ip + ".mode")
        if seen is not None and p:
            if p in seen:
                invalid(errs, dup_path, dup_value, "conflicting duplicate paths")
            seen.add(p)


# ---- volumes -----------------------------------------------------------------------------

def _downward_file(errs: Errs, f: dict, path: str) -> None:
    p = as_str(errs, f.get("path"), path + ".path")
    if not p:
        required(errs, path + ".path")
    _local_non_reserved(errs, p, path + ".path")
    if f.get("fieldRef") is not None:
        _object_field_selector(errs, as_dict(errs, f["fieldRef"], path + ".fieldRef"),
                               VOLUME_FIELD_PATHS, path + ".fieldRef")
        if f.get("resourceFieldRef") is not None:
            invalid(errs, path, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously")
    elif f.get("resourceFieldRef") is not None:
        _resource_field_selector(errs, as_dict(errs, f["resourceFieldRef"], path + ".resourceFieldRef"),
                                 path + ".resourceFieldRef", volume=True)
    else:
        required(errs, path, "one of fieldRef and resourceFieldRef is required")
    _file_mode(errs, f.get("mode"), path + ".mode")


def _volume_source(errs: Errs, vol: dict, path: str, vol_name: str, pod_name: str | None,
                   is_pod: bool) -> None:
    count = 0
    for key, child in VOLUME_SOURCES:
        src = vol.get(key)
        if src is None:
            continue
        cpath = f"{path}.{child}"
        if count:
            forbidden(errs, cpath, "may not specify more than 1 volume type")
            continue
        count += 1
        src = as_dict(errs, src, cpath)
        for fld in _VOLUME_REQUIRED.get(key, ()):
            if not src.get(fld):
                required(errs, f"{path}.{_VOLUME_CHILD_PATH.get(key, child)}.{fld}")
        if key == "emptyDir":
            limit = src.get("sizeLimit")
            if limit is not None:
                q = r.quantity(errs, limit, cpath + ".sizeLimit")
                if q is not None and q < 0:
                    forbidden(errs, cpath + ".sizeLimit", "SizeLimit field must be a valid resource quantity")
        elif key == "hostPath":
            hp = as_str(errs, src.get("path"), cpath + ".path")
            if not hp:
                required(errs, cpath + ".path")
            else:
                _no_backsteps(errs, hp, cpath + ".path")
                t = src.get("type")
                valid = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File",
                         "FileOrCreate", "Socket")
                if t is not None and t not in valid:
                    not_supported(errs, cpath + ".type", t, valid)
        elif key == "gitRepo":
            _local_descending(errs, as_str(errs, src.get("directory"), cpath + ".directory"),
                              cpath + ".directory")
        elif key == "secret":
            if not src.get("secretName"):
                required(errs, cpath + ".secretName")
            _file_mode(errs, src.get("defaultMode"), cpath + ".defaultMode")
            _key_to_paths(errs, src.get("items"), cpath + ".items")
        elif key == "configMap":
            if not src.get("name"):
                required(errs, cpath + ".name")
            _file_mode(errs, src.get("defaultMode"), cpath + ".defaultMode")
            _key_to_paths(errs, src.get("items"), cpath + ".items")
        elif key == "persistentVolumeClaim":
            if not src.get("claimName"):
                required(errs, cpath + ".claimName")
        elif key == "nfs":
            np = src.get("path")
            if isinstance(np, str) and not np.startswith("/"):
                invalid(errs, cpath + ".path", np, "must be an absolute path")
        elif key == "downwardAPI":
            _file_mode(errs, src.get("defaultMode"), cpath + ".defaultMode")
            for f in as_list(errs, src.get("items"), cpath + ".items"):
                _downward_file(errs, as_dict(errs, f, cpath), cpath)
        elif key == "projected":
            _file_mode(errs, src.get("defaultMode"), cpath + ".defaultMode")
            _projected(errs, src, cpath)
        elif key == "csi":
            _csi_driver(errs, src.get("driver"), cpath + ".driver")
        elif key == "ephemeral":
            tmpl = src.get("volumeClaimTemplate")
            if tmpl is None:
                required(errs, cpath + ".volumeClaimTemplate")
            else:
                from .core import validate_pvc_spec
                tmpl = as_dict(errs, tmpl, cpath + ".volumeClaimTemplate")
                tm = as_dict(errs, tmpl.get("metadata"), cpath + ".volumeClaimTemplate.metadata")
                validate_labels(errs, tm.get("labels"), cpath + ".volumeClaimTemplate.metadata.labels")
                validate_pvc_spec(errs, as_dict(errs, tmpl.get("spec"), cpath + ".volumeClaimTemplate.spec"),
                                  cpath + ".volumeClaimTemplate.spec")
            if pod_name and vol_name:
                pvc = f"{pod_name}-{vol_name}"
                for m in n.name_is_dns_subdomain(pvc):
                    invalid(errs, cpath + ".name", vol_name, f'PVC name "{pvc}": {m}')
        elif key == "image":
            if is_pod and not src.get("reference"):
                required(errs, cpath + ".reference")
            _pull_policy(errs, src.get("pullPolicy"), cpath + ".pullPolicy")
    if count == 0:
        required(errs, path, "must specify a volume type")


def _csi_driver(errs: Errs, driver: Any, path: str) -> None:
    d = driver if isinstance(driver, str) else ""
    if not d:
        required(errs, path)
    if len(d) > 63:
        from ._field import too_long
        too_long(errs, path, 63)
    for m in n.is_dns1123_subdomain(d.lower()):
        invalid(errs, path, d, m)


def _projected(errs: Errs, proj: dict, path: str) -> None:
    seen: set[str] = set()
    for i, src in enumerate(as_list(errs, proj.get("sources"), path + ".sources")):
        sp = f"{path}.sources[{i}]"
        src = as_dict(errs, src, sp)
        count = 0
        if src.get("secret") is not None:
            count += 1
            s = as_dict(errs, src["secret"], sp + ".secret")
            if not s.get("name"):
                required(errs, sp + ".secret.name")
            _key_to_paths(errs, s.get("items"), sp + ".secret.items", seen, path, s.get("name") or "")
        if src.get("configMap") is not None:
            count += 1
            c = as_dict(errs, src["configMap"], sp + ".configMap")
            if not c.get("name"):
                required(errs, sp + ".configMap.name")
            _key_to_paths(errs, c.get("items"), sp + ".configMap.items", seen, path, c.get("name") or "")
        if src.get("downwardAPI") is not None:
            count += 1
            d = as_dict(errs, src["downwardAPI"], sp + ".downwardAPI")
            for f in as_list(errs, d.get("items"), sp + ".downwardAPI.items"):
                f = as_dict(errs, f, sp + ".downwardAPI")
                _downward_file(errs, f, sp + ".downwardAPI")
                fp = f.get("path")
                if fp:
                    if fp in seen:
                        invalid(errs, path, fp, "conflicting duplicate paths")
                    seen.add(fp)
        if src.get("serviceAccountToken") is not None:
            count += 1
            t = as_dict(errs, src["serviceAccountToken"], sp + ".serviceAccountToken")
            exp = t.get("expirationSeconds")
            tp = sp + ".serviceAccountToken.expirationSeconds"
            if is_int(exp):
                if exp < 600:
                    invalid(errs, tp, exp, "may not specify a duration less than 10 minutes")
                if exp > 1 << 32:
                    invalid(errs, tp, exp, "may not specify a duration larger than 2^32 seconds")
            if not t.get("path"):
                required(errs, path + ".path")
            else:
                _local_non_reserved(errs, as_str(errs, t["path"], path + ".path"), path + ".path")
        if src.get("clusterTrustBundle") is not None:
            count += 1
            b = as_dict(errs, src["clusterTrustBundle"], sp + ".clusterTrustBundle")
            if "name" not in b and "signerName" not in b:
                required(errs, sp + ".clusterTrustBundle", "either name or signerName must be specified")
            if not b.get("path"):
                required(errs, sp + ".clusterTrustBundle.path")
            _local_non_reserved(errs, as_str(errs, b.get("path"), sp + ".clusterTrustBundle.path"),
                                sp + ".clusterTrustBundle.path")
        if src.get("podCertificate") is not None:
            count += 1
        if count > 1:
            forbidden(errs, sp, "may not specify more than 1 volume type per source")


def validate_volumes(errs: Errs, volumes: Any, path: str, pod_name: str | None,
                     is_pod: bool) -> dict[str, dict]:
    """Returns name -> volume for the volumes that validated (mounts refer to these)."""
    out: dict[str, dict] = {}
    created_pvcs = set()
    vols = as_list(errs, volumes, path)
    if pod_name:
        for v in vols:
            if isinstance(v, dict) and v.get("ephemeral") is not None:
                created_pvcs.add(f"{pod_name}-{v.get('name', '')}")
    for i, vol in enumerate(vols):
        ip = f"{path}[{i}]"
        if not isinstance(vol, dict):
            type_invalid(errs, ip, vol, "object")
            continue
        el: Errs = []
        name = vol.get("name")
        name = name if isinstance(name, str) else ""
        _volume_source(el, vol, ip, name, pod_name, is_pod)
        if not name:
            required(el, ip + ".name")
        else:
            for m in n.is_dns1123_label(name):
                invalid(el, ip + ".name", name, m)
        if name in out:
            duplicate(el, ip + ".name", name)
        if not el:
            out[name] = vol
        else:
            errs.extend(el)
        pvc = vol.get("persistentVolumeClaim")
        if isinstance(pvc, dict) and pvc.get("claimName") in created_pvcs:
            invalid(errs, ip + ".persistentVolumeClaim.claimName", pvc["claimName"],
                    "must not reference a PVC that gets created for an ephemeral volume")
    return out


# ---- env -----------------------------------------------------------------------------------

def _object_field_selector(errs: Errs, fs: dict, allowed: tuple, path: str) -> None:
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


def _resource_field_selector(errs: Errs, fs: dict, path: str, volume: bool) -> None:
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


def _key_selector(errs: Errs, s: dict, path: str) -> None:
    name = s.get("name") if isinstance(s.get("name"), str) else ""
    for m in n.name_is_dns_subdomain(name):
        invalid(errs, path + ".name", name, m)
    key = s.get("key")
    if not key:
        required(errs, path + ".key")
    elif isinstance(key, str):
        for m in n.is_config_map_key(key):
            invalid(errs, path + ".key", key, m)


def validate_env(errs: Errs, env: Any, path: str) -> None:
    for i, ev in enumerate(as_list(errs, env, path)):
        ip = f"{path}[{i}]"
        ev = as_dict(errs, ev, ip)
        name = ev.get("name")
        if not name:
            required(errs, ip + ".name")
        elif isinstance(name, str):
            for m in n.is_relaxed_env_var_name(name):
                invalid(errs, ip + ".name", name, m)
        else:
            type_invalid(errs, ip + ".name", name, "string")
        vf = ev.get("valueFrom")
        if vf is None:
            continue
        vp = ip + ".valueFrom"
        vf = as_dict(errs, vf, vp)
        count = 0
        if vf.get("fieldRef") is not None:
            count += 1
            _object_field_selector(errs, as_dict(errs, vf["fieldRef"], vp + ".fieldRef"), ENV_FIELD_PATHS,
                                   vp + ".fieldRef")
        if vf.get("resourceFieldRef") is not None:
            count += 1
            _resource_field_selector(errs, as_dict(errs, vf["resourceFieldRef"], vp + ".resourceFieldRef"),
                                     vp + ".resourceFieldRef", volume=False)
        if vf.get("configMapKeyRef") is not None:
            count += 1
            _key_selector(errs, as_dict(errs, vf["configMapKeyRef"], vp + ".configMapKeyRef"),
                          vp + ".configMapKeyRef")
        if vf.get("secretKeyRef") is not None:
            count += 1
            _key_selector(errs, as_dict(errs, vf["secretKeyRef"], vp + ".secretKeyRef"), vp + ".secretKeyRef")
        if vf.get("fileKeyRef") is not None:
            count += 1
        if count == 0:
            invalid(errs, vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` "
                    "or `secretKeyRef`")
        elif ev.get("value"):
            invalid(errs, vp, "", "may not be specified when `value` is not empty")
        elif count > 1:
            invalid(errs, vp, "", "may not have more than one field specified at a time")


def validate_env_from(errs: Errs, env_from: Any, path: str) -> None:
    for i, ev in enumerate(as_list(errs, env_from, path)):
        ip = f"{path}[{i}]"
        ev = as_dict(errs, ev, ip)
        prefix = ev.get("prefix")
        if prefix and isinstance(prefix, str):
            for m in n.is_relaxed_env_var_name(prefix):
                invalid(errs, ip + ".prefix", prefix, m)
        count = 0
        for key in ("configMapRef", "secretRef"):
            if ev.get(key) is None:
                continue
            count += 1
            ref = as_dict(errs, ev[key], f"{ip}.{key}")
            name = ref.get("name")
            if not name:
                required(errs, f"{ip}.{key}.name")
            elif isinstance(name, str):
                for m in n.name_is_dns_subdomain(name, True):
                    invalid(errs, f"{ip}.{key}.name", name, m)
        if count == 0:
            invalid(errs, path, "", "must specify one of: `configMapRef` or `secretRef`")
        elif count > 1:
            invalid(errs, path, "", "may not have more than one field specified at a time")


# ---- containers ------------------------------------------------------------------------------

def _pull_policy(errs: Errs, policy: Any, path: str) -> None:
    if policy in PULL_POLICIES:
        return
    if not policy:
        required(errs, path)
    else:
        not_supported(errs, path, policy, PULL_POLICIES)


def _container_ports(errs: Errs, ports: Any, path: str) -> None:
    names: set[str] = set()
    for i, port in enumerate(as_list(errs, ports, path)):
        ip = f"{path}[{i}]"
        port = as_dict(errs, port, ip)
        name = port.get("name")
        if name and isinstance(name, str):
            msgs = n.is_valid_port_name(name)
            for m in msgs:
                invalid(errs, ip + ".name", name, m)
            if not msgs:
                if name in names:
                    duplicate(errs, ip + ".name", name)
                else:
                    names.add(name)
        cp = as_int(errs, port.get("containerPort"), ip + ".containerPort")
        if not cp:
            if cp is not None or port.get("containerPort") is None:
                required(errs, ip + ".containerPort")
        else:
            for m in n.is_valid_port_num(cp):
                invalid(errs, ip + ".containerPort", cp, m)
        hp = as_int(errs, port.get("hostPort"), ip + ".hostPort")
        if hp:
            for m in n.is_valid_port_num(hp):
                invalid(errs, ip + ".hostPort", hp, m)
        proto = port.get("protocol")
        if not proto:
            required(errs, ip + ".protocol")
        elif proto not in PROTOCOLS:
            not_supported(errs, ip + ".protocol", proto, PROTOCOLS)


def _volume_mounts(errs: Errs, c: dict, volumes: dict[str, dict], path: str) -> None:
    mounts = as_list(errs, c.get("volumeMounts"), path)
    devices = [d for d in as_list(errs, c.get("volumeDevices"), path[:-len("volumeMounts")] + "volumeDevices")
               if isinstance(d, dict)]
    dev_names = {d.get("name") for d in devices}
    dev_paths = {d.get("devicePath") for d in devices}
    privileged = (c.get("securityContext") or {}).get("privileged") is True \
        if isinstance(c.get("securityContext"), dict) else False
    seen: set[str] = set()
    for i, mnt in enumerate(mounts):
        ip = f"{path}[{i}]"
        mnt = as_dict(errs, mnt, ip)
        name = mnt.get("name") or ""
        if not name:
            required(errs, ip + ".name")
        if name not in volumes:
            not_found(errs, ip + ".name", name)
        mp = mnt.get("mountPath") or ""
        if not mp:
            required(errs, ip + ".mountPath")
        if mp in seen:
            invalid(errs, ip + ".mountPath", mp, "must be unique")
        seen.add(mp)
        if name in dev_names:
            invalid(errs, ip + ".name", name, "must not already exist in volumeDevices")
        if mp in dev_paths:
            invalid(errs, ip + ".mountPath", mp, "must not already exist as a path in volumeDevices")
        vol = volumes.get(name)
        sub = mnt.get("subPath") or ""
        subx = mnt.get("subPathExpr") or ""
        if vol is not None and vol.get("image") is not None:
            if sub:
                invalid(errs, ip + ".subPath", sub, "not allowed in image volume sources")
            if subx:
                invalid(errs, ip + ".subPathExpr", subx, "not allowed in image volume sources")
        if sub:
            _local_descending(errs, sub, path + ".subPath")
        if subx:
            if sub:
                invalid(errs, ip + ".subPathExpr", subx, "subPathExpr and subPath are mutually exclusive")
            _local_descending(errs, subx, path + ".subPathExpr")
        prop = mnt.get("mountPropagation")
        if prop is not None:
            valid = ("Bidirectional", "HostToContainer", "None")
            if prop not in valid:
                not_supported(errs, path + ".mountPropagation", prop, valid)
            if prop == "Bidirectional" and not privileged:
                forbidden(errs, path + ".mountPropagation",
                          "Bidirectional mount propagation is available only to privileged containers")
        rro = mnt.get("recursiveReadOnly")
        if rro is not None and rro != "Disabled":
            if rro in ("Enabled", "IfPossible"):
                if not mnt.get("readOnly"):
                    forbidden(errs, path + ".recursiveReadOnly", "may only be specified when readOnly is true")
                if prop not in (None, "None"):
                    forbidden(errs, path + ".recursiveReadOnly",
                              "may only be specified when mountPropagation is None or not specified")
            else:
                not_supported(errs, path + ".recursiveReadOnly", rro, ("Disabled", "Enabled", "IfPossible"))


def _volume_devices(errs: Errs, c: dict, volumes: dict[str, dict], path: str) -> None:
    mounts = {m.get("name"): m.get("mountPath") for m in (c.get("volumeMounts") or []) if isinstance(m, dict)}
    mount_paths = set(mounts.values())
    names: set[str] = set()
    dpaths: set[str] = set()
    for i, dev in enumerate(as_list(errs, c.get("volumeDevices"), path)):
        ip = f"{path}[{i}]"
        dev = as_dict(errs, dev, ip)
        name = dev.get("name") or ""
        dp = dev.get("devicePath") or ""
        vol = volumes.get(name)
        if not name:
            required(errs, ip + ".name")
        if name in names:
            invalid(errs, ip + ".name", name, "must be unique")
        if vol is not None and vol.get("persistentVolumeClaim") is None and vol.get("ephemeral") is None:
            invalid(errs, ip + ".name", name,
                    "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode")
        if vol is None:
            not_found(errs, ip + ".name", name)
        if not dp:
            required(errs, ip + ".devicePath")
        if dp in dpaths:
            invalid(errs, ip + ".devicePath", dp, "must be unique")
        if dp and ".." in dp.split("/"):
            invalid(errs, ip + ".devicePath", dp, "can not contain backsteps ('..')")
        else:
            dpaths.add(dp)
        if name in mounts:
            invalid(errs, ip + ".name", name, "must not already exist in volumeMounts")
        if dp in mount_paths:
            invalid(errs, ip + ".devicePath", dp, "must not already exist as a path in volumeMounts")
        if name:
            names.add(name)


def _seccomp(errs: Errs, sp: Any, path: str) -> None:
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
            _local_descending(errs, as_str(errs, lp, path + ".localhostProfile"), path + ".localhostProfile")
    elif lp is not None:
        invalid(errs, path + ".localhostProfile", lp, "can only be set when seccomp type is Localhost")


def _apparmor(errs: Errs, ap: Any, path: str) -> None:
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


def _id_range(errs: Errs, v: Any, path: str) -> None:
    if v is None:
        return
    if not is_int(v):
        type_invalid(errs, path, v, "integer")
    elif not 0 <= v <= MAX_UID:
        invalid(errs, path, v, n.inclusive_range_error(0, MAX_UID))


def _security_context(errs: Errs, sc: Any, path: str, host_users: bool) -> None:
    if sc is None:
        return
    sc = as_dict(errs, sc, path)
    _id_range(errs, sc.get("runAsUser"), path + ".runAsUser")
    _id_range(errs, sc.get("runAsGroup"), path + ".runAsGroup")
    pm = sc.get("procMount")
    if pm is not None:
        if pm not in ("Default", "Unmasked"):
            not_supported(errs, path + ".procMount", pm, ("Default", "Unmasked"))
        if host_users and pm == "Unmasked":
            invalid(errs, path + ".procMount", pm, "`hostUsers` must be false to use `Unmasked`")
    _seccomp(errs, sc.get("seccompProfile"), path + ".seccompProfile")
    if sc.get("allowPrivilegeEscalation") is False:
        if sc.get("privileged") is True:
            invalid(errs, path, GoRaw("&core.SecurityContext{...}"),
                    "cannot set `allowPrivilegeEscalation` to false and `privileged` to true")
        caps = sc.get("capabilities")
        if isinstance(caps, dict) and "CAP_SYS_ADMIN" in (caps.get("add") or []):
            invalid(errs, path, GoRaw("&core.SecurityContext{...}"),
                    "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN")
    _apparmor(errs, sc.get("appArmorProfile"), path + ".appArmorProfile")


def _resize_policy(errs: Errs, policies: Any, path: str, restart_policy: str) -> None:
    seen: set[str] = set()
    for i, p in enumerate(as_list(errs, policies, path)):
        p = as_dict(errs, p, f"{path}[{i}]")
        rn = p.get("resourceName") or ""
        if rn in seen:
            duplicate(errs, f"{path}[{i}]", rn)
        seen.add(rn)
        if rn not in ("cpu", "memory"):
            if not rn:
                required(errs, path)
            else:
                not_supported(errs, path, rn, ("cpu", "memory"))
        rp = p.get("restartPolicy") or ""
        if rp not in ("NotRequired", "RestartContainer"):
            if not rp:
                required(errs, path)
            else:
                not_supported(errs, path, rp, ("NotRequired", "RestartContainer"))
        if restart_policy == "Never" and rp != "NotRequired":
            invalid(errs, path, rp, "must be 'NotRequired' when `restartPolicy` is 'Never'")


def _container_common(errs: Errs, c: dict, volumes: dict, claim_names: set, path: str,
                      restart_policy: str, host_users: bool) -> None:
    name = c.get("name")
    if not name:
        required(errs, path + ".name")
    elif isinstance(name, str):
        for m in n.is_dns1123_label(name):
            invalid(errs, path + ".name", name, m)
    else:
        type_invalid(errs, path + ".name", name, "string")
    if not c.get("image"):
        required(errs, path + ".image")
    tmp = c.get("terminationMessagePolicy")
    if tmp not in TERMINATION_MESSAGE_POLICIES:
        if not tmp:
            required(errs, path + ".terminationMessagePolicy")
        else:
            not_supported(errs, path + ".terminationMessagePolicy", tmp, TERMINATION_MESSAGE_POLICIES)
    if c.get("ports") is not None:
        _container_ports(errs, c["ports"], path + ".ports")
    if c.get("env") is not None:
        validate_env(errs, c["env"], path + ".env")
    if c.get("envFrom") is not None:
        validate_env_from(errs, c["envFrom"], path + ".envFrom")
    if c.get("volumeMounts") is not None:
        _volume_mounts(errs, c, volumes, path + ".volumeMounts")
    if c.get("volumeDevices") is not None:
        _volume_devices(errs, c, volumes, path + ".volumeDevices")
    _pull_policy(errs, c.get("imagePullPolicy"), path + ".imagePullPolicy")
    res = c.get("resources")
    if res:
        r.requirements(errs, res, path + ".resources", claim_names=claim_names)
    if c.get("resizePolicy") is not None:
        _resize_policy(errs, c["resizePolicy"], path + ".resizePolicy", restart_policy)
    if c.get("securityContext") is not None:
        _security_context(errs, c["securityContext"], path + ".securityContext", host_users)


# ---- probes and handlers -----------------------------------------------------------------------

def _handler(errs: Errs, h: dict, grace: Any, path: str, *, probe: bool) -> None:
    count = 0
    kinds = ("exec", "httpGet", "tcpSocket", "grpc") if probe else ("exec", "httpGet", "tcpSocket", "sleep")
    for kind in kinds:
        v = h.get(kind)
        if v is None:
            continue
        kp = f"{path}.{kind}"
        if count:
            forbidden(errs, kp, "may not specify more than 1 handler type")
            continue
        count += 1
        v = as_dict(errs, v, kp)
        if kind == "exec":
            if not v.get("command"):
                required(errs, kp + ".command")
        elif kind == "httpGet":
            if not v.get("path"):
                required(errs, kp + ".path")
            _port_num_or_name(errs, v.get("port"), kp + ".port")
            scheme = v.get("scheme")
            if scheme not in ("HTTP", "HTTPS"):
                not_supported(errs, kp + ".scheme", scheme or "", ("HTTP", "HTTPS"))
            for hdr in as_list(errs, v.get("httpHeaders"), kp + ".httpHeaders"):
                hname = hdr.get("name", "") if isinstance(hdr, dict) else ""
                for m in n.is_http_header_name(hname):
                    invalid(errs, kp + ".httpHeaders", hname, m)
        elif kind == "tcpSocket":
            _port_num_or_name(errs, v.get("port"), kp + ".port")
        elif kind == "grpc":
            port = v.get("port")
            if not is_int(port):
                type_invalid(errs, kp + ".port", port, "integer")
            else:
                _port_num_or_name(errs, port, kp + ".port")
        elif kind == "sleep":
            secs = v.get("seconds")
            if is_int(grace) and is_int(secs) and (secs < 0 or secs > grace):
                invalid(errs, kp, secs, f"must be non-negative and less than terminationGracePeriodSeconds ({grace})")
    if count == 0:
        required(errs, path, "must specify a handler type")


def _probe(errs: Errs, probe: Any, grace: Any, path: str, kind: str) -> None:
    if probe is None:
        return
    probe = as_dict(errs, probe, path)
    _handler(errs, probe, grace, path, probe=True)
    for f in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        nonnegative(errs, f"{path}.{f}", probe.get(f))
    tgp = probe.get("terminationGracePeriodSeconds")
    if is_int(tgp) and tgp <= 0:
        invalid(errs, path + ".terminationGracePeriodSeconds", tgp, "must be greater than 0")
    if kind == "readiness":
        if tgp is not None:
            invalid(errs, path + ".terminationGracePeriodSeconds", tgp, "must not be set for readinessProbes")
    else:
        st = probe.get("successThreshold")
        if st != 1:
            invalid(errs, path + ".successThreshold", st if st is not None else 0, "must be 1")


def _lifecycle(errs: Errs, lc: Any, grace: Any, path: str) -> None:
    lc = as_dict(errs, lc, path)
    for hook in ("postStart", "preStop"):
        if lc.get(hook) is not None:
            _handler(errs, as_dict(errs, lc[hook], f"{path}.{hook}"), grace, f"{path}.{hook}", probe=False)
    sig = lc.get("stopSignal")
    if sig is not None and not isinstance(sig, str):
        type_invalid(errs, path + ".stopSignal", sig, "string")


def _host_ports(errs: Errs, containers: list, path: str, seen: set | None = None) -> None:
    seen = set() if seen is None else seen
    for ci, c in enumerate(containers):
        if not isinstance(c, dict):
            continue
        for pi, p in enumerate(c.get("ports") or []):
            if not isinstance(p, dict) or not p.get("hostPort"):
                continue
            key = f"{p.get('protocol', '')}/{p.get('hostIP', '')}/{p.get('hostPort')}"
            if key in seen:
                duplicate(errs, f"{path}[{ci}].ports[{pi}].hostPort", key)
            else:
                seen.add(key)


def validate_containers(errs: Errs, spec: dict, volumes: dict, claim_names: set, path: str,
                        restart_policy: str, host_users: bool) -> None:
    grace = spec.get("terminationGracePeriodSeconds")
    containers = as_list(errs, spec.get("containers"), path + ".containers")
    cpath = path + ".containers"
    if not containers:
        required(errs, cpath)
    names: set = set()
    for i, c in enumerate(containers):
        ip = f"{cpath}[{i}]"
        if not isinstance(c, dict):
            type_invalid(errs, ip, c, "object")
            continue
        _container_common(errs, c, volumes, claim_names, ip, restart_policy, host_users)
        name = c.get("name")
        if name in names:
            duplicate(errs, ip + ".name", name)
        elif isinstance(name, str):
            names.add(name)
        if c.get("lifecycle") is not None:
            _lifecycle(errs, c["lifecycle"], grace, ip + ".lifecycle")
        _probe(errs, c.get("livenessProbe"), grace, ip + ".livenessProbe", "liveness")
        _probe(errs, c.get("readinessProbe"), grace, ip + ".readinessProbe", "readiness")
        _probe(errs, c.get("startupProbe"), grace, ip + ".startupProbe", "startup")
        if c.get("restartPolicy") is not None:
            forbidden(errs, ip + ".restartPolicy", "may not be set for non-init containers")
    if containers:
        _host_ports(errs, containers, cpath)

    ipath = path + ".initContainers"
    for i, c in enumerate(as_list(errs, spec.get("initContainers"), ipath)):
        ip = f"{ipath}[{i}]"
        if not isinstance(c, dict):
            type_invalid(errs, ip, c, "object")
            continue
        _container_common(errs, c, volumes, claim_names, ip, restart_policy, host_users)
        rp = c.get("restartPolicy")
        restart_always = False
        if rp is not None:
            if rp != "Always":
                not_supported(errs, ip + ".restartPolicy", rp, ("Always",))
            restart_always = rp == "Always"
        name = c.get("name")
        if name in names:
            duplicate(errs, ip + ".name", name)
        elif isinstance(name, str) and name:
            names.add(name)
        _host_ports(errs, [c], ipath)
        if restart_always:
            if c.get("lifecycle") is not None:
                _lifecycle(errs, c["lifecycle"], grace, ip + ".lifecycle")
            _probe(errs, c.get("livenessProbe"), grace, ip + ".livenessProbe", "liveness")
            _probe(errs, c.get("readinessProbe"), grace, ip + ".readinessProbe", "readiness")
            _probe(errs, c.get("startupProbe"), grace, ip + ".startupProbe", "startup")
        else:
            for f in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if c.get(f) is not None:
                    forbidden(errs, f"{ip}.{f}", "may not be set for init containers without restartPolicy=Always")
        if c.get("resizePolicy") and not restart_always:
            invalid(errs, ip + ".resizePolicy", GoRaw("[]core.ContainerResizePolicy{...}"),
                    "must not be set for init containers")


# ---- scheduling ------------------------------------------------------------------------------

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def validate_tolerations(errs: Errs, tolerations: Any, path: str) -> None:
    for i, t in enumerate(as_list(errs, tolerations, path)):
        ip = f"{path}[{i}]"
        t = as_dict(errs, t, ip)
        key = t.get("key") or ""
        op = t.get("operator") or ""
        effect = t.get("effect") or ""
        if key:
            for m in n.is_qualified_name(key):
                invalid(errs, ip + ".key", key, m)
        if not key and op != "Exists":
            invalid(errs, ip + ".operator", op,
                    "operator must be Exists when `key` is empty, which means \"match all values and all keys\"")
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            invalid(errs, ip + ".effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set")
        value = t.get("value") or ""
        if op in ("Equal", ""):
            msgs = n.is_label_value(value) if isinstance(value, str) else ["must be a string"]
            if msgs:
                invalid(errs, ip + ".operator", value, ";".join(msgs))
        elif op == "Exists":
            if value:
                invalid(errs, ip + ".operator", value, "value must be empty when `operator` is 'Exists'")
        else:
            not_supported(errs, ip + ".operator", op, ("Equal", "Exists"))
        if effect and effect not in TAINT_EFFECTS:
            not_supported(errs, ip + ".effect", effect, TAINT_EFFECTS)


def _node_selector_requirement(errs: Errs, rq: dict, path: str, check_values: bool) -> None:
    op = rq.get("operator")
    values = rq.get("values") or []
    if op in ("In", "NotIn"):
        if not values:
            required(errs, path + ".values", "must be specified when `operator` is 'In' or 'NotIn'")
    elif op in ("Exists", "DoesNotExist"):
        if values:
            forbidden(errs, path + ".values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
    elif op in ("Gt", "Lt"):
        if len(values) != 1:
            required(errs, path + ".values", "must be specified single value when `operator` is 'Lt' or 'Gt'")
    else:
        invalid(errs, path + ".operator", op or "", "not a valid selector operator")
    key = rq.get("key") or ""
    for m in n.is_qualified_name(key):
        invalid(errs, path + ".key", key, m)
    if check_values and isinstance(values, list):
        for j, v in enumerate(values):
            if isinstance(v, str):
                for m in n.is_label_value(v):
                    invalid(errs, f"{path}.values[{j}]", v, m)


def _node_selector_term(errs: Errs, term: dict, path: str, check_values: bool) -> None:
    for j, rq in enumerate(as_list(errs, term.get("matchExpressions"), path + ".matchExpressions")):
        _node_selector_requirement(errs, as_dict(errs, rq, path), f"{path}.matchExpressions[{j}]", check_values)
    for j, rq in enumerate(as_list(errs, term.get("matchFields"), path + ".matchFields")):
        rp = f"{path}.matchFields[{j}]"
        rq = as_dict(errs, rq, rp)
        values = rq.get("values") or []
        if rq.get("operator") in ("In", "NotIn"):
            if len(values) != 1:
                required(errs, rp + ".values",
                         "must be only one value when `operator` is 'In' or 'NotIn' for node field selector")
        else:
            invalid(errs, rp + ".operator", rq.get("operator") or "", "not a valid selector operator")
        if rq.get("key") != "metadata.name":
            invalid(errs, rp + ".key", rq.get("key") or "", "not a valid field selector key")
        else:
            for k, v in enumerate(values):
                for m in n.name_is_dns_subdomain(v if isinstance(v, str) else ""):
                    invalid(errs, f"{rp}.values[{k}]", v, m)


def _pod_affinity_term(errs: Errs, term: dict, path: str) -> None:
    validate_label_selector(errs, term.get("labelSelector"), path + ".labelSelector")
    validate_label_selector(errs, term.get("namespaceSelector"), path + ".namespaceSelector")
    for ns in as_list(errs, term.get("namespaces"), path + ".namespaces"):
        for m in n.name_is_dns_label(ns if isinstance(ns, str) else ""):
            invalid(errs, path + ".namespace", ns, m)
    sel = term.get("labelSelector")
    for fld in ("matchLabelKeys", "mismatchLabelKeys"):
        keys = term.get(fld)
        if keys:
            if sel is None:
                forbidden(errs, f"{path}.{fld}", "must not be specified when labelSelector is not set")
            else:
                for k, key in enumerate(keys):
                    for m in n.is_qualified_name(key if isinstance(key, str) else ""):
                        invalid(errs, f"{path}.{fld}[{k}]", key, m)
    mismatch = set(term.get("mismatchLabelKeys") or [])
    for k, key in enumerate(term.get("matchLabelKeys") or []):
        if key in mismatch:
            invalid(errs, f"{path}.matchLabelKeys[{k}]", key, "exists in both matchLabelKeys and mismatchLabelKeys")
    tk = term.get("topologyKey") or ""
    if not tk:
        required(errs, path + ".topologyKey", "can not be empty")
    for m in n.is_qualified_name(tk):
        invalid(errs, path + ".topologyKey", tk, m)


def _weight(errs: Errs, w: Any, path: str) -> None:
    if not is_int(w) or w <= 0 or w > 100:
        invalid(errs, path, w if w is not None else 0, "must be in the range 1-100")


def validate_affinity(errs: Errs, aff: Any, path: str) -> None:
    if aff is None:
        return
    aff = as_dict(errs, aff, path)
    na = aff.get("nodeAffinity")
    if na is not None:
        np = path + ".nodeAffinity"
        na = as_dict(errs, na, np)
        req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
        if req is not None:
            rp = np + ".requiredDuringSchedulingIgnoredDuringExecution"
            terms = as_list(errs, as_dict(errs, req, rp).get("nodeSelectorTerms"), rp + ".nodeSelectorTerms")
            if not terms:
                required(errs, rp + ".nodeSelectorTerms", "must have at least one node selector term")
            for i, t in enumerate(terms):
                _node_selector_term(errs, as_dict(errs, t, rp), f"{rp}.nodeSelectorTerms[{i}]", True)
        pp = np + ".preferredDuringSchedulingIgnoredDuringExecution"
        for i, t in enumerate(as_list(errs, na.get("preferredDuringSchedulingIgnoredDuringExecution"), pp)):
            t = as_dict(errs, t, pp)
            _weight(errs, t.get("weight"), f"{pp}[{i}].weight")
            _node_selector_term(errs, as_dict(errs, t.get("preference"), pp), f"{pp}[{i}].preference", False)
    for kind in ("podAffinity", "podAntiAffinity"):
        pa = aff.get(kind)
        if pa is None:
            continue
        kp = f"{path}.{kind}"
        pa = as_dict(errs, pa, kp)
        rp = kp + ".requiredDuringSchedulingIgnoredDuringExecution"
        for i, t in enumerate(as_list(errs, pa.get("requiredDuringSchedulingIgnoredDuringExecution"), rp)):
            _pod_affinity_term(errs, as_dict(errs, t, rp), f"{rp}[{i}]")
        pp = kp + ".preferredDuringSchedulingIgnoredDuringExecution"
        for i, t in enumerate(as_list(errs, pa.get("preferredDuringSchedulingIgnoredDuringExecution"), pp)):
            t = as_dict(errs, t, pp)
            _weight(errs, t.get("weight"), f"{pp}[{i}].weight")
            _pod_affinity_term(errs, as_dict(errs, t.get("podAffinityTerm"), pp), f"{pp}[{i}].podAffinityTerm")


def _topology_spread(errs: Errs, constraints: Any, path: str) -> None:
    items = as_list(errs, constraints, path)
    for i, c in enumerate(items):
        ip = f"{path}[{i}]"
        c = as_dict(errs, c, ip)
        skew = c.get("maxSkew")
        if not is_int(skew) or skew <= 0:
            invalid(errs, ip + ".maxSkew", skew if skew is not None else 0, "must be greater than zero")
        if not c.get("topologyKey"):
            required(errs, ip + ".topologyKey", "can not be empty")
        wu = c.get("whenUnsatisfiable") or ""
        if wu not in ("DoNotSchedule", "ScheduleAnyway"):
            not_supported(errs, ip + ".whenUnsatisfiable", wu, ("DoNotSchedule", "ScheduleAnyway"))
        for other in items[i + 1:]:
            if isinstance(other, dict) and other.get("topologyKey") == c.get("topologyKey") and \
                    other.get("whenUnsatisfiable") == wu:
                duplicate(errs, ip + ".{topologyKey, whenUnsatisfiable}", f"{{{c.get('topologyKey')}, {wu}}}")
                break
        md = c.get("minDomains")
        if md is not None:
            if not is_int(md) or md <= 0:
                invalid(errs, ip + ".minDomains", md, "must be greater than zero")
            if wu != "DoNotSchedule":
                invalid(errs, ip + ".minDomains", md,
                        f"can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {wu}")
        for pol in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
            v = c.get(pol)
            if v is not None and v not in ("Honor", "Ignore"):
                not_supported(errs, f"{ip}.{pol}", v, ("Honor", "Ignore"))
        keys = c.get("matchLabelKeys")
        sel = c.get("labelSelector")
        if keys:
            sel_keys = set()
            if sel is None:
                forbidden(errs, ip + ".matchLabelKeys", "must not be specified when labelSelector is not set")
            elif isinstance(sel, dict):
                sel_keys = set((sel.get("matchLabels") or {}).keys()) | {
                    e.get("key") for e in sel.get("matchExpressions") or [] if isinstance(e, dict)}
            for k, key in enumerate(keys):
                for m in n.is_qualified_name(key if isinstance(key, str) else ""):
                    invalid(errs, f"{ip}.matchLabelKeys[{k}]", key, m)
                if key in sel_keys:
                    invalid(errs, f"{ip}.matchLabelKeys[{k}]", key, "exists in both matchLabelKeys and labelSelector")
        validate_label_selector(errs, sel, ip + ".labelSelector")


def _dns_config(errs: Errs, cfg: Any, dns_policy: Any, path: str) -> None:
    if dns_policy == "None":
        if cfg is None:
            required(errs, path, "must provide `dnsConfig` when `dnsPolicy` is None")
            return
        if not (cfg.get("nameservers") if isinstance(cfg, dict) else None):
            required(errs, path + ".nameservers", "must provide at least one DNS nameserver when `dnsPolicy` is None")
            return
    if cfg is None:
        return
    cfg = as_dict(errs, cfg, path)
    ns = as_list(errs, cfg.get("nameservers"), path + ".nameservers")
    if len(ns) > 3:
        invalid(errs, path + ".nameservers", GoRaw(go_string_slice(ns)), "must not have more than 3 nameservers")
    for i, ip in enumerate(ns):
        for m in n.is_valid_ip(ip if isinstance(ip, str) else ""):
            invalid(errs, f"{path}.nameservers[{i}]", ip, m)
    searches = as_list(errs, cfg.get("searches"), path + ".searches")
    if len(searches) > 32:
        invalid(errs, path + ".searches", GoRaw(go_string_slice(searches)), "must not have more than 32 search paths")
    if len(" ".join(str(s) for s in searches)) > 2048:
        invalid(errs, path + ".searches", GoRaw(go_string_slice(searches)),
                "must not have more than 2048 characters (including spaces) in the search list")
    for i, s in enumerate(searches):
        if s == ".":
            continue
        s = s[:-1] if isinstance(s, str) and s.endswith(".") else s
        for m in n.is_dns1123_subdomain_with_underscore(s if isinstance(s, str) else ""):
            invalid(errs, f"{path}.searches[{i}]", s, m)
    for i, opt in enumerate(as_list(errs, cfg.get("options"), path + ".options")):
        if not (opt.get("name") if isinstance(opt, dict) else None):
            required(errs, f"{path}.options[{i}]", "must not be empty")


def _pod_security_context(errs: Errs, sc: Any, spec: dict, path: str) -> None:
    if sc is None:
        return
    sc = as_dict(errs, sc, path)
    _id_range(errs, sc.get("fsGroup"), path + ".fsGroup")
    _id_range(errs, sc.get("runAsUser"), path + ".runAsUser")
    _id_range(errs, sc.get("runAsGroup"), path + ".runAsGroup")
    for i, g in enumerate(as_list(errs, sc.get("supplementalGroups"), path + ".supplementalGroups")):
        _id_range(errs, g, f"{path}.supplementalGroups[{i}]")
    if sc.get("shareProcessNamespace") is True or spec.get("shareProcessNamespace") is True:
        if spec.get("hostPID") is True and spec.get("shareProcessNamespace") is True:
            invalid(errs, path + ".shareProcessNamespace", True, "ShareProcessNamespace and HostPID cannot both be enabled")
    seen: set[str] = set()
    for i, s in enumerate(as_list(errs, sc.get("sysctls"), path + ".sysctls")):
        sp = f"{path}.sysctls[{i}].name"
        name = s.get("name") if isinstance(s, dict) else None
        if not name:
            required(errs, sp)
        elif not _sysctl_ok(name):
            invalid(errs, sp, name, "must have at most 253 characters and match regex "
                    "^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$")
        elif name in seen:
            duplicate(errs, sp, name)
        if isinstance(name, str):
            if spec.get("hostNetwork") is True and name.startswith("net."):
                invalid(errs, sp, name, "may not be specified when 'hostNetwork' is true")
            elif spec.get("hostIPC") is True and (name.startswith("kernel.shm") or name.startswith("kernel.msg")
                                                  or name.startswith("kernel.sem") or name.startswith("fs.mqueue.")):
                invalid(errs, sp, name, "may not be specified when 'hostIPC' is true")
            seen.add(name)
    fcp = sc.get("fsGroupChangePolicy")
    if fcp is not None and fcp not in ("OnRootMismatch", "Always"):
        not_supported(errs, path + ".fsGroupChangePolicy", fcp, ("Always", "OnRootMismatch"))
    _seccomp(errs, sc.get("seccompProfile"), path + ".seccompProfile")
    _apparmor(errs, sc.get("appArmorProfile"), path + ".appArmorProfile")
    sgp = sc.get("supplementalGroupsPolicy")
    if sgp is not None and sgp not in ("Merge", "Strict"):
        not_supported(errs, path + ".supplementalGroupsPolicy", sgp, ("Merge", "Strict"))
    slp = sc.get("seLinuxChangePolicy")
    if slp is not None and slp not in ("MountOption", "Recursive"):
        not_supported(errs, path + ".seLinuxChangePolicy", slp, ("MountOption", "Recursive"))


_SYSCTL_SEG = None


def _sysctl_ok(name: str) -> bool:
    global _SYSCTL_SEG
    if _SYSCTL_SEG is None:
        import re
        seg = "[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
        _SYSCTL_SEG = re.compile(f"({seg}[\\./])*{seg}")
    return len(name) <= 253 and bool(_SYSCTL_SEG.fullmatch(name))


# ---- the pod spec ------------------------------------------------------------------------------

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
    _pod_security_context(errs, sc, spec, path + ".securityContext")
    for i, ref in enumerate(as_list(errs, spec.get("imagePullSecrets"), path + ".imagePullSecrets")):
        if not isinstance(ref, dict) or set(ref) - {"name"}:
            invalid(errs, f"{path}.imagePullSecrets[{i}]", GoRaw(f"core.LocalObjectReference{{...}}"),
                    "only name may be set")
    validate_affinity(errs, spec.get("affinity"), path + ".affinity")
    _dns_config(errs, spec.get("dnsConfig"), dns_policy, path + ".dnsConfig")
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
        _topology_spread(errs, spec["topologySpreadConstraints"], path + ".topologySpreadConstraints")
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
    from .meta import validate_annotations
    tmpl = as_dict(errs, tmpl, path)
    meta = as_dict(errs, tmpl.get("metadata"), path + ".metadata")
    validate_labels(errs, meta.get("labels"), path + ".labels")
    validate_annotations(errs, meta.get("annotations"), path + ".annotations")
    validate_pod_spec(errs, tmpl.get("spec"), path + ".spec")
    spec = tmpl.get("spec")
    if isinstance(spec, dict) and spec.get("ephemeralContainers"):
        forbidden(errs, path + ".spec.ephemeralContainers", "ephemeral containers not allowed in pod template")


# ---- pod update ----------------------------------------------------------------------------------

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


def spec_diff(old: dict, new: dict) -> str:
    """A cmp.Diff-like rendering of which pod spec fields differ."""
    import orjson
    lines = ["  core.PodSpec{"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key):
            continue
        name = _go_field(key)
        if key in old:
            lines.append(f"- \t{name}: {orjson.dumps(old[key]).decode()},")
        if key in new:
            lines.append(f"+ \t{name}: {orjson.dumps(new[key]).decode()},")
    lines.append("  }")
    return "\n".join(lines) + "\n"


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


__all__ = ["validate_pod_spec", "validate_pod_template_spec", "validate_pod_update",
           "validate_tolerations", "validate_affinity", "validate_env", "validate_volumes"]
