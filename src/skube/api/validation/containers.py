"""Containers and init containers: names, images, ports, env, mounts, resources,
probes, lifecycle hooks and security contexts (validateContainers and friends)."""
from __future__ import annotations

from typing import Any

from . import names as n
from . import resources as r
from ._field import (Errs, GoRaw, duplicate, forbidden, invalid, nonnegative, not_found, not_supported, required,
                     type_invalid)
from ._util import as_dict, as_int, as_list, is_int
from .podcommon import (ENV_FIELD_PATHS, PROTOCOLS, apparmor_profile, id_range, local_descending,
                        object_field_selector, port_num_or_name, pull_policy, resource_field_selector,
                        seccomp_profile)

TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")


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
            object_field_selector(errs, as_dict(errs, vf["fieldRef"], vp + ".fieldRef"), ENV_FIELD_PATHS,
                                   vp + ".fieldRef")
        if vf.get("resourceFieldRef") is not None:
            count += 1
            resource_field_selector(errs, as_dict(errs, vf["resourceFieldRef"], vp + ".resourceFieldRef"),
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
            local_descending(errs, sub, path + ".subPath")
        if subx:
            if sub:
                invalid(errs, ip + ".subPathExpr", subx, "subPathExpr and subPath are mutually exclusive")
            local_descending(errs, subx, path + ".subPathExpr")
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


def _security_context(errs: Errs, sc: Any, path: str, host_users: bool) -> None:
    if sc is None:
        return
    sc = as_dict(errs, sc, path)
    id_range(errs, sc.get("runAsUser"), path + ".runAsUser")
    id_range(errs, sc.get("runAsGroup"), path + ".runAsGroup")
    pm = sc.get("procMount")
    if pm is not None:
        if pm not in ("Default", "Unmasked"):
            not_supported(errs, path + ".procMount", pm, ("Default", "Unmasked"))
        if host_users and pm == "Unmasked":
            invalid(errs, path + ".procMount", pm, "`hostUsers` must be false to use `Unmasked`")
    seccomp_profile(errs, sc.get("seccompProfile"), path + ".seccompProfile")
    if sc.get("allowPrivilegeEscalation") is False:
        if sc.get("privileged") is True:
            invalid(errs, path, GoRaw("&core.SecurityContext{...}"),
                    "cannot set `allowPrivilegeEscalation` to false and `privileged` to true")
        caps = sc.get("capabilities")
        if isinstance(caps, dict) and "CAP_SYS_ADMIN" in (caps.get("add") or []):
            invalid(errs, path, GoRaw("&core.SecurityContext{...}"),
                    "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN")
    apparmor_profile(errs, sc.get("appArmorProfile"), path + ".appArmorProfile")


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
    pull_policy(errs, c.get("imagePullPolicy"), path + ".imagePullPolicy")
    res = c.get("resources")
    if res:
        r.requirements(errs, res, path + ".resources", claim_names=claim_names)
    if c.get("resizePolicy") is not None:
        _resize_policy(errs, c["resizePolicy"], path + ".resizePolicy", restart_policy)
    if c.get("securityContext") is not None:
        _security_context(errs, c["securityContext"], path + ".securityContext", host_users)


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
            port_num_or_name(errs, v.get("port"), kp + ".port")
            scheme = v.get("scheme")
            if scheme not in ("HTTP", "HTTPS"):
                not_supported(errs, kp + ".scheme", scheme or "", ("HTTP", "HTTPS"))
            for hdr in as_list(errs, v.get("httpHeaders"), kp + ".httpHeaders"):
                hname = hdr.get("name", "") if isinstance(hdr, dict) else ""
                for m in n.is_http_header_name(hname):
                    invalid(errs, kp + ".httpHeaders", hname, m)
        elif kind == "tcpSocket":
            port_num_or_name(errs, v.get("port"), kp + ".port")
        elif kind == "grpc":
            port = v.get("port")
            if not is_int(port):
                type_invalid(errs, kp + ".port", port, "integer")
            else:
                port_num_or_name(errs, port, kp + ".port")
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


__all__ = ["validate_containers", "validate_env", "validate_env_from"]
