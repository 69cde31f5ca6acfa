"""Pod volumes (ValidateVolumes and the per-source rules upstream keeps for them)."""
from __future__ import annotations

from typing import Any

from . import names as n
from . import resources as r
from ._field import Errs, duplicate, forbidden, invalid, not_supported, required, too_long, type_invalid
from ._util import as_dict, as_list, as_str, is_int
from .meta import validate_labels
from .podcommon import (VOLUME_FIELD_PATHS, file_mode, key_to_paths, local_descending, local_non_reserved,
                        no_backsteps, object_field_selector, pull_policy, resource_field_selector)

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
_VOLUME_REQUIRED = {
    "gitRepo": ("repository",), "gcePersistentDisk": ("pdName",), "awsElasticBlockStore": ("volumeID",),
    "nfs": ("server", "path"), "iscsi": ("targetPortal", "iqn"), "glusterfs": ("endpoints", "path"),
    "rbd": ("monitors", "image"), "cinder": ("volumeID",), "cephfs": ("monitors",),
    "quobyte": ("volume",), "flexVolume": ("driver",), "azureFile": ("secretName", "shareName"),
    "vsphereVolume": ("volumePath",), "photonPersistentDisk": ("pdID",),
    "portworxVolume": ("volumeID",), "azureDisk": ("diskName", "diskURI"),
    "scaleIO": ("gateway", "system", "volumeName"), "storageos": ("volumeName",),
}
_VOLUME_CHILD_PATH = {"gcePersistentDisk": "persistentDisk"}


def _downward_file(errs: Errs, f: dict, path: str) -> None:
    p = as_str(errs, f.get("path"), path + ".path")
    if not p:
        required(errs, path + ".path")
    local_non_reserved(errs, p, path + ".path")
    if f.get("fieldRef") is not None:
        object_field_selector(errs, as_dict(errs, f["fieldRef"], path + ".fieldRef"),
                               VOLUME_FIELD_PATHS, path + ".fieldRef")
        if f.get("resourceFieldRef") is not None:
            invalid(errs, path, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously")
    elif f.get("resourceFieldRef") is not None:
        resource_field_selector(errs, as_dict(errs, f["resourceFieldRef"], path + ".resourceFieldRef"),
                                 path + ".resourceFieldRef", volume=True)
    else:
        required(errs, path, "one of fieldRef and resourceFieldRef is required")
    file_mode(errs, f.get("mode"), path + ".mode")


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
                no_backsteps(errs, hp, cpath + ".path")
                t = src.get("type")
                valid = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File",
                         "FileOrCreate", "Socket")
                if t is not None and t not in valid:
                    not_supported(errs, cpath + ".type", t, valid)
        elif key == "gitRepo":
            local_descending(errs, as_str(errs, src.get("directory"), cpath + ".directory"),
                              cpath + ".directory")
        elif key == "secret":
            if not src.get("secretName"):
                required(errs, cpath + ".secretName")
            file_mode(errs, src.get("defaultMode"), cpath + ".defaultMode")
            key_to_paths(errs, src.get("items"), cpath + ".items")
        elif key == "configMap":
            if not src.get("name"):
                required(errs, cpath + ".name")
            file_mode(errs, src.get("defaultMode"), cpath + ".defaultMode")
            key_to_paths(errs, src.get("items"), cpath + ".items")
        elif key == "persistentVolumeClaim":
            if not src.get("claimName"):
                required(errs, cpath + ".claimName")
        elif key == "nfs":
            np = src.get("path")
            if isinstance(np, str) and not np.startswith("/"):
                invalid(errs, cpath + ".path", np, "must be an absolute path")
        elif key == "downwardAPI":
            file_mode(errs, src.get("defaultMode"), cpath + ".defaultMode")
            for f in as_list(errs, src.get("items"), cpath + ".items"):
                _downward_file(errs, as_dict(errs, f, cpath), cpath)
        elif key == "projected":
            file_mode(errs, src.get("defaultMode"), cpath + ".defaultMode")
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
            pull_policy(errs, src.get("pullPolicy"), cpath + ".pullPolicy")
    if count == 0:
        required(errs, path, "must specify a volume type")


def _csi_driver(errs: Errs, driver: Any, path: str) -> None:
    d = driver if isinstance(driver, str) else ""
    if not d:
        required(errs, path)
    if len(d) > 63:
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
            key_to_paths(errs, s.get("items"), sp + ".secret.items", seen, path, s.get("name") or "")
        if src.get("configMap") is not None:
            count += 1
            c = as_dict(errs, src["configMap"], sp + ".configMap")
            if not c.get("name"):
                required(errs, sp + ".configMap.name")
            key_to_paths(errs, c.get("items"), sp + ".configMap.items", seen, path, c.get("name") or "")
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
                local_non_reserved(errs, as_str(errs, t["path"], path + ".path"), path + ".path")
        if src.get("clusterTrustBundle") is not None:
            count += 1
            b = as_dict(errs, src["clusterTrustBundle"], sp + ".clusterTrustBundle")
            if "name" not in b and "signerName" not in b:
                required(errs, sp + ".clusterTrustBundle", "either name or signerName must be specified")
            if not b.get("path"):
                required(errs, sp + ".clusterTrustBundle.path")
            local_non_reserved(errs, as_str(errs, b.get("path"), sp + ".clusterTrustBundle.path"),
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


__all__ = ["validate_volumes"]
