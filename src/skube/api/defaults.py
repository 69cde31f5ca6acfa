"""Upstream defaulting for the v1 types the server stores, in place on JSON dicts.

``apply_defaults`` does what decoding a request does upstream (``SetDefaults_*`` of
``pkg/apis/{core,apps,batch,…}/v1``, plus the canonical re-serialisation of resource
quantities) and the create-time strategy/admission steps that give objects their
familiar shape (pod status and QoS class, priority, namespace finalizer and phase).
Create-only steps run when ``create`` is true; left as None they run when the object
has no ``status.phase`` yet, which is the case exactly on create.

Admission-only and strategy-only steps that depend on data the caller owns stay
separate: ``default_toleration_seconds(pod)`` (DefaultTolerationSeconds plugin) and
``job_prepare_for_create(job, uid)`` (the Job strategy's selector generation).
"""
from __future__ import annotations

import base64
import functools
import re
from fractions import Fraction
from typing import Any

from .quantity import parse_quantity, parse_quantity_format, round_up_milli, _format as _format_quantity
from .registry import ResourceInfo

__all__ = ["apply_defaults", "default_toleration_seconds", "job_prepare_for_create", "compute_qos_class",
           "default_pod_spec", "default_container", "image_pull_policy", "normalize_quantity",
           "DEFAULT_TOLERATION_SECONDS", "SYSTEM_PRIORITY_CLASSES"]

DEFAULT_TOLERATION_SECONDS = 300
SYSTEM_PRIORITY_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
_NOT_READY = "node.kubernetes.io/not-ready"
_UNREACHABLE = "node.kubernetes.io/unreachable"
_MAX_INT32 = 2 ** 31 - 1

# ---- quantities ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _normalize_text(s: str) -> str:
    value, fmt = parse_quantity_format(s)
    return _format_quantity(round_up_milli(value), fmt)


def normalize_quantity(v: Any) -> Any:
    """A resource-list quantity as upstream stores it: rounded up to milli precision and
    re-serialised canonically (``0.5`` -> ``"500m"``, ``1024Mi`` -> ``"1Gi"``). Values that
    do not parse are returned unchanged for validation to report."""
    if isinstance(v, bool):
        return v
    try:
        if isinstance(v, str):
            return _normalize_text(v.strip())
        if isinstance(v, (int, float)):
            return _normalize_text(repr(v) if isinstance(v, float) else str(v))
    except ValueError:
        return v
    return v


def _resource_list(rl: Any) -> None:
    if isinstance(rl, dict):
        for k, v in rl.items():
            nv = normalize_quantity(v)
            if nv is not v:
                rl[k] = nv


def _resources(res: Any) -> None:
    if isinstance(res, dict):
        _resource_list(res.get("limits"))
        _resource_list(res.get("requests"))


# ---- images ------------------------------------------------------------------------------------------

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?")


@functools.lru_cache(maxsize=2048)
def image_pull_policy(image: str) -> str:
    """Always for ``:latest`` or untagged images, IfNotPresent otherwise (SetDefaults_Container;
    an unparsable reference counts as tagged, as upstream ignores the parse error)."""
    m = _REFERENCE.fullmatch(image)
    if not m:
        return "IfNotPresent"
    tag, digest = m.group("tag"), m.group("digest")
    if tag == "latest" or (not tag and not digest):
        return "Always"
    return "IfNotPresent"


# ---- pod spec ------------------------------------------------------------------------------------------

def _probe(p: Any) -> None:
    if not isinstance(p, dict):
        return
    if not p.get("timeoutSeconds"):
        p["timeoutSeconds"] = 1
    if not p.get("periodSeconds"):
        p["periodSeconds"] = 10
    if not p.get("successThreshold"):
        p["successThreshold"] = 1
    if not p.get("failureThreshold"):
        p["failureThreshold"] = 3
    _handler(p)


def _handler(h: Any) -> None:
    if not isinstance(h, dict):
        return
    hg = h.get("httpGet")
    if isinstance(hg, dict):
        if not hg.get("path"):
            hg["path"] = "/"
        if not hg.get("scheme"):
            hg["scheme"] = "HTTP"


def _field_ref(fr: Any) -> None:
    if isinstance(fr, dict) and not fr.get("apiVersion"):
        fr["apiVersion"] = "v1"


def default_container(c: dict) -> None:
    """SetDefaults_Container plus the +default markers of its nested types."""
    if not c.get("imagePullPolicy"):
        image = c.get("image")
        c["imagePullPolicy"] = image_pull_policy(image) if isinstance(image, str) else "IfNotPresent"
    if not c.get("terminationMessagePath"):
        c["terminationMessagePath"] = "/dev/termination-log"
    if not c.get("terminationMessagePolicy"):
        c["terminationMessagePolicy"] = "File"
    res = c.get("resources")
    if res is None:
        c["resources"] = {}
    else:
        _resources(res)
    ports = c.get("ports")
    if isinstance(ports, list):
        for p in ports:
            if isinstance(p, dict) and not p.get("protocol"):
                p["protocol"] = "TCP"
    env = c.get("env")
    if isinstance(env, list):
        for e in env:
            vf = e.get("valueFrom") if isinstance(e, dict) else None
            if isinstance(vf, dict):
                _field_ref(vf.get("fieldRef"))
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        if key in c:
            _probe(c[key])
    lc = c.get("lifecycle")
    if isinstance(lc, dict):
        _handler(lc.get("postStart"))
        _handler(lc.get("preStop"))


_VOLUME_SOURCES = frozenset((
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs", "iscsi",
    "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "downwardAPI",
    "fc", "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk",
    "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral", "image"))


def _volume(v: dict) -> None:
    if not any(v.get(k) is not None for k in _VOLUME_SOURCES):
        v["emptyDir"] = {}
        return
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        src = v.get(key)
        if isinstance(src, dict) and src.get("defaultMode") is None:
            src["defaultMode"] = 420
    hp = v.get("hostPath")
    if isinstance(hp, dict) and hp.get("type") is None:
        hp["type"] = ""
    ed = v.get("emptyDir")
    if isinstance(ed, dict) and ed.get("sizeLimit") is not None:
        ed["sizeLimit"] = normalize_quantity(ed["sizeLimit"])
    da = v.get("downwardAPI")
    if isinstance(da, dict):
        for item in da.get("items") or []:
            if isinstance(item, dict):
                _field_ref(item.get("fieldRef"))
    proj = v.get("projected")
    if isinstance(proj, dict):
        for src in proj.get("sources") or []:
            if not isinstance(src, dict):
                continue
            sat = src.get("serviceAccountToken")
            if isinstance(sat, dict) and sat.get("expirationSeconds") is None:
                sat["expirationSeconds"] = 3600
            dapi = src.get("downwardAPI")
            if isinstance(dapi, dict):
                for item in dapi.get("items") or []:
                    if isinstance(item, dict):
                        _field_ref(item.get("fieldRef"))
    iscsi = v.get("iscsi")
    if isinstance(iscsi, dict) and not iscsi.get("iscsiInterface"):
        iscsi["iscsiInterface"] = "default"
    eph = v.get("ephemeral")
    if isinstance(eph, dict) and isinstance(eph.get("volumeClaimTemplate"), dict):
        _pvc_spec(eph["volumeClaimTemplate"].get("spec"))


def default_pod_spec(spec: dict) -> None:
    """SetDefaults_PodSpec and the defaults of everything a pod spec contains (pods and templates)."""
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if not spec.get("schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    # v1 <-> internal conversion keeps the deprecated serviceAccount in step
    san = spec.get("serviceAccountName")
    if san:
        spec["serviceAccount"] = san
    elif spec.get("serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    for key in ("containers", "initContainers", "ephemeralContainers"):
        cs = spec.get(key)
        if isinstance(cs, list):
            for c in cs:
                if isinstance(c, dict):
                    default_container(c)
    vols = spec.get("volumes")
    if isinstance(vols, list):
        for v in vols:
            if isinstance(v, dict):
                _volume(v)
    if spec.get("overhead") is not None:
        _resource_list(spec["overhead"])
    if spec.get("resources") is not None:
        _resources(spec["resources"])


def _template(tmpl: Any) -> None:
    if isinstance(tmpl, dict) and isinstance(tmpl.get("spec"), dict):
        default_pod_spec(tmpl["spec"])


# ---- pods --------------------------------------------------------------------------------------------

_QOS_RESOURCES = ("cpu", "memory")


def _q(v: Any) -> Fraction | None:
    try:
        return parse_quantity(v)
    except (ValueError, TypeError):
        return None


def compute_qos_class(pod: dict) -> str:
    """BestEffort, Burstable or Guaranteed, computed as upstream's ComputePodQOS."""
    spec = pod.get("spec") if isinstance(pod.get("spec"), dict) else {}
    requests: dict[str, Fraction] = {}
    limits: dict[str, Fraction] = {}
    guaranteed = True
    pod_res = spec.get("resources")
    if isinstance(pod_res, dict) and (pod_res.get("requests") or pod_res.get("limits")):
        sources = [pod_res]
    else:
        sources = [c.get("resources") if isinstance(c, dict) else None
                   for key in ("containers", "initContainers") for c in (spec.get(key) or [])]
    for res in sources:
        res = res if isinstance(res, dict) else {}
        for name, raw in (res.get("requests") or {}).items():
            if name in _QOS_RESOURCES:
                v = _q(raw)
                if v is not None and v > 0:
                    requests[name] = requests.get(name, 0) + v
        found = set()
        for name, raw in (res.get("limits") or {}).items():
            if name in _QOS_RESOURCES:
                v = _q(raw)
                if v is not None and v > 0:
                    found.add(name)
                    limits[name] = limits.get(name, 0) + v
        if len(found) < 2:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed:
        for name, req in requests.items():
            if limits.get(name) != req:
                guaranteed = False
                break
    if guaranteed and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


def _requests_from_limits(c: Any) -> None:
    if not isinstance(c, dict):
        return
    res = c.get("resources")
    if not isinstance(res, dict):
        return
    limits = res.get("limits")
    if not isinstance(limits, dict) or not limits:
        return
    requests = res.get("requests")
    if not isinstance(requests, dict):
        requests = res["requests"] = {}
    for k, v in limits.items():
        if k not in requests:
            requests[k] = v


def _pod(obj: dict, create: bool | None) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    default_pod_spec(spec)
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            _requests_from_limits(c)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork") is True:
        for key in ("containers", "initContainers"):
            for c in spec.get(key) or []:
                for p in (c.get("ports") or []) if isinstance(c, dict) else []:
                    if isinstance(p, dict) and not p.get("hostPort") and p.get("containerPort"):
                        p["hostPort"] = p["containerPort"]
    status = obj.get("status")
    if create is None:
        create = not (isinstance(status, dict) and status.get("phase"))
    if not create:
        return
    # Priority admission: class value (0 without a class) and the preemption default
    pcn = spec.get("priorityClassName")
    if spec.get("priority") is None:
        if not pcn:
            spec["priority"] = 0
        elif pcn in SYSTEM_PRIORITY_CLASSES:
            spec["priority"] = SYSTEM_PRIORITY_CLASSES[pcn]
    if not spec.get("preemptionPolicy"):
        spec["preemptionPolicy"] = "PreemptLowerPriority"
    # the pod strategy's PrepareForCreate: a fresh status
    if not isinstance(status, dict):
        status = obj["status"] = {}
    status.setdefault("phase", "Pending")
    status["qosClass"] = compute_qos_class(obj)
    if spec.get("schedulingGates"):
        conds = status.setdefault("conditions", [])
        if not any(isinstance(c, dict) and c.get("type") == "PodScheduled" for c in conds):
            conds.append({"type": "PodScheduled", "status": "False", "reason": "SchedulingGated",
                          "message": "Scheduling is blocked due to non-empty scheduling gates"})


def default_toleration_seconds(obj: dict) -> None:
    """The DefaultTolerationSeconds admission plugin (pods, on create): tolerate NoExecute
    not-ready/unreachable taints for 300s unless the pod already tolerates them."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    tols = spec.get("tolerations")
    if not isinstance(tols, list):
        tols = []
    not_ready = unreachable = False
    for t in tols:
        if not isinstance(t, dict):
            continue
        key, effect = t.get("key") or "", t.get("effect") or ""
        if effect in ("NoExecute", ""):
            if key in (_NOT_READY, ""):
                not_ready = True
            if key in (_UNREACHABLE, ""):
                unreachable = True
    if not_ready and unreachable:
        return
    tols = list(tols)
    if not not_ready:
        tols.append({"key": _NOT_READY, "operator": "Exists", "effect": "NoExecute",
                     "tolerationSeconds": DEFAULT_TOLERATION_SECONDS})
    if not unreachable:
        tols.append({"key": _UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
                     "tolerationSeconds": DEFAULT_TOLERATION_SECONDS})
    spec["tolerations"] = tols


# ---- workloads ---------------------------------------------------------------------------------------

def _deployment(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = spec.get("strategy")
    if not isinstance(strategy, dict):
        strategy = spec["strategy"] = {}
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        ru = strategy.get("rollingUpdate")
        if not isinstance(ru, dict):
            ru = strategy["rollingUpdate"] = {}
        if ru.get("maxUnavailable") is None:
            ru["maxUnavailable"] = "25%"
        if ru.get("maxSurge") is None:
            ru["maxSurge"] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    _template(spec.get("template"))


def _replica_set(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _template(spec.get("template"))


def _daemon_set(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    us = spec.get("updateStrategy")
    if not isinstance(us, dict):
        us = spec["updateStrategy"] = {}
    if not us.get("type"):
        us["type"] = "RollingUpdate"
    if us["type"] == "RollingUpdate":
        ru = us.get("rollingUpdate")
        if not isinstance(ru, dict):
            ru = us["rollingUpdate"] = {}
        if ru.get("maxUnavailable") is None:
            ru["maxUnavailable"] = 1
        if ru.get("maxSurge") is None:
            ru["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    _template(spec.get("template"))


def _stateful_set(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    us = spec.get("updateStrategy")
    if not isinstance(us, dict):
        us = spec["updateStrategy"] = {}
    if not us.get("type"):
        us["type"] = "RollingUpdate"
        if us.get("rollingUpdate") is None:
            us["rollingUpdate"] = {}
    ru = us.get("rollingUpdate")
    if us["type"] == "RollingUpdate" and isinstance(ru, dict) and ru.get("partition") is None:
        ru["partition"] = 0
    pol = spec.get("persistentVolumeClaimRetentionPolicy")
    if not isinstance(pol, dict):
        pol = spec["persistentVolumeClaimRetentionPolicy"] = {}
    if not pol.get("whenDeleted"):
        pol["whenDeleted"] = "Retain"
    if not pol.get("whenScaled"):
        pol["whenScaled"] = "Retain"
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    _template(spec.get("template"))
    for pvc in spec.get("volumeClaimTemplates") or []:
        if isinstance(pvc, dict):
            _pvc(pvc, True)


def _job_spec_template(spec: dict) -> None:
    pfp = spec.get("podFailurePolicy")
    if isinstance(pfp, dict):
        for rule in pfp.get("rules") or []:
            for pat in (rule.get("onPodConditions") or []) if isinstance(rule, dict) else []:
                if isinstance(pat, dict) and not pat.get("status"):
                    pat["status"] = "True"
    _template(spec.get("template"))


def _job(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = _MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    tmpl = spec.get("template")
    labels = (tmpl.get("metadata") or {}).get("labels") if isinstance(tmpl, dict) and \
        isinstance(tmpl.get("metadata"), dict) else None
    meta = obj.get("metadata")
    if isinstance(labels, dict) and isinstance(meta, dict) and not meta.get("labels"):
        meta["labels"] = dict(labels)
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if spec.get("podFailurePolicy") is not None else "TerminatingOrFailed"
    if spec.get("manualSelector") is None:
        spec["manualSelector"] = False
    _job_spec_template(spec)


def job_prepare_for_create(obj: dict, uid: str | None = None) -> None:
    """The Job strategy's selector generation (unless ``spec.manualSelector``): template labels
    ``controller-uid``/``job-name`` and their ``batch.kubernetes.io/`` twins, and a selector on
    ``batch.kubernetes.io/controller-uid``. ``uid`` defaults to ``metadata.uid``."""
    spec = obj.get("spec")
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    if not isinstance(spec, dict) or spec.get("manualSelector") is True:
        return
    uid = uid if uid is not None else (meta.get("uid") or "")
    name = meta.get("name") or ""
    tmpl = spec.get("template")
    if not isinstance(tmpl, dict):
        tmpl = spec["template"] = {}
    tmeta = tmpl.get("metadata")
    if not isinstance(tmeta, dict):
        tmeta = tmpl["metadata"] = {}
    labels = tmeta.get("labels")
    if not isinstance(labels, dict):
        labels = tmeta["labels"] = {}
    for key in ("job-name", "batch.kubernetes.io/job-name"):
        labels.setdefault(key, name)
    for key in ("controller-uid", "batch.kubernetes.io/controller-uid"):
        labels.setdefault(key, uid)
    sel = spec.get("selector")
    if not isinstance(sel, dict):
        sel = spec["selector"] = {}
    ml = sel.get("matchLabels")
    if not isinstance(ml, dict):
        ml = sel["matchLabels"] = {}
    ml.setdefault("batch.kubernetes.io/controller-uid", uid)


def _cron_job(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    jt = spec.get("jobTemplate")
    if isinstance(jt, dict) and isinstance(jt.get("spec"), dict):
        _job_spec_template(jt["spec"])


# ---- core kinds --------------------------------------------------------------------------------------

def _service(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        cfg = spec.get("sessionAffinityConfig")
        cip = cfg.get("clientIP") if isinstance(cfg, dict) else None
        if not isinstance(cip, dict) or cip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    stype = spec["type"]
    for p in spec.get("ports") or []:
        if not isinstance(p, dict):
            continue
        if not p.get("protocol"):
            p["protocol"] = "TCP"
        tp = p.get("targetPort")
        port = p.get("port")
        if (tp is None or tp == 0 or tp == "") and isinstance(port, int) and not isinstance(port, bool):
            p["targetPort"] = port
    accessible = stype in ("LoadBalancer", "NodePort") or (stype == "ClusterIP" and bool(spec.get("externalIPs")))
    if accessible and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and stype in ("NodePort", "LoadBalancer", "ClusterIP"):
        spec["internalTrafficPolicy"] = "Cluster"
    if stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if stype == "ExternalName":
        return
    # the service strategy keeps clusterIP and clusterIPs in step
    cip, cips = spec.get("clusterIP"), spec.get("clusterIPs")
    if cip and not cips:
        spec["clusterIPs"] = [cip]
    elif cips and isinstance(cips, list) and not cip:
        spec["clusterIP"] = cips[0]
    # a single-stack IPv4 cluster: what the allocator records for every non-ExternalName service
    if spec.get("ipFamilyPolicy") is None:
        spec["ipFamilyPolicy"] = "SingleStack"
    if not spec.get("ipFamilies"):
        spec["ipFamilies"] = ["IPv4"]


def _secret(obj: dict) -> None:
    if not obj.get("type"):
        obj["type"] = "Opaque"
    sd = obj.pop("stringData", None)
    if isinstance(sd, dict) and sd:
        data = obj.get("data")
        if not isinstance(data, dict):
            data = obj["data"] = {}
        for k, v in sd.items():
            data[k] = base64.b64encode(str(v).encode()).decode()


def _namespace(obj: dict, create: bool | None) -> None:
    meta = obj.get("metadata")
    if isinstance(meta, dict) and meta.get("name"):
        labels = meta.get("labels")
        if not isinstance(labels, dict):
            labels = meta["labels"] = {}
        labels["kubernetes.io/metadata.name"] = meta["name"]
    status = obj.get("status")
    if create is None:
        create = not (isinstance(status, dict) and status.get("phase"))
    if not isinstance(status, dict):
        status = obj["status"] = {}
    if not status.get("phase"):
        status["phase"] = "Active"
    if create:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            spec = obj["spec"] = {}
        fins = spec.get("finalizers")
        if not isinstance(fins, list):
            fins = spec["finalizers"] = []
        if "kubernetes" not in fins:
            fins.append("kubernetes")


def _pvc_spec(spec: Any) -> None:
    if not isinstance(spec, dict):
        return
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    _resources(spec.get("resources"))


def _pvc(obj: dict, create: bool | None) -> None:
    _pvc_spec(obj.get("spec"))
    status = obj.get("status")
    if not isinstance(status, dict):
        status = obj["status"] = {}
    if not status.get("phase"):
        status["phase"] = "Pending"


def _endpoints(obj: dict) -> None:
    for ss in obj.get("subsets") or []:
        for p in (ss.get("ports") or []) if isinstance(ss, dict) else []:
            if isinstance(p, dict) and not p.get("protocol"):
                p["protocol"] = "TCP"


def _endpoint_slice(obj: dict) -> None:
    for p in obj.get("ports") or []:
        if isinstance(p, dict):
            if p.get("name") is None:
                p["name"] = ""
            if p.get("protocol") is None:
                p["protocol"] = "TCP"


def _limit_range(obj: dict) -> None:
    spec = obj.get("spec")
    for item in (spec.get("limits") or []) if isinstance(spec, dict) else []:
        if not isinstance(item, dict):
            continue
        for key in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            _resource_list(item.get(key))
        if item.get("type") != "Container":
            continue
        default = item.get("default")
        if not isinstance(default, dict):
            default = item["default"] = {}
        dreq = item.get("defaultRequest")
        if not isinstance(dreq, dict):
            dreq = item["defaultRequest"] = {}
        for k, v in (item.get("max") or {}).items():
            default.setdefault(k, v)
        for k, v in default.items():
            dreq.setdefault(k, v)
        for k, v in (item.get("min") or {}).items():
            dreq.setdefault(k, v)


def _resource_quota(obj: dict) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        _resource_list(spec.get("hard"))
    status = obj.get("status")
    if isinstance(status, dict):
        _resource_list(status.get("hard"))
        _resource_list(status.get("used"))


def _node(obj: dict) -> None:
    status = obj.get("status")
    if not isinstance(status, dict):
        return
    _resource_list(status.get("capacity"))
    _resource_list(status.get("allocatable"))
    if status.get("allocatable") is None and isinstance(status.get("capacity"), dict):
        status["allocatable"] = dict(status["capacity"])


def _network_policy(obj: dict) -> None:
    """policyTypes: Ingress always, plus Egress when egress rules are present; ports: TCP."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or []:
            for p in (rule.get("ports") or []) if isinstance(rule, dict) else []:
                if isinstance(p, dict) and not p.get("protocol"):
                    p["protocol"] = "TCP"


def _rbac_binding(obj: dict) -> None:
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = "rbac.authorization.k8s.io"
    for s in obj.get("subjects") or []:
        if isinstance(s, dict) and not s.get("apiGroup") and s.get("kind") in ("User", "Group"):
            s["apiGroup"] = "rbac.authorization.k8s.io"


_SIMPLE = {
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replica_set,
    ("apps", "DaemonSet"): _daemon_set,
    ("apps", "StatefulSet"): _stateful_set,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cron_job,
    ("", "Service"): _service,
    ("", "Secret"): _secret,
    ("", "Endpoints"): _endpoints,
    ("", "LimitRange"): _limit_range,
    ("", "ResourceQuota"): _resource_quota,
    ("", "Node"): _node,
    ("discovery.k8s.io", "EndpointSlice"): _endpoint_slice,
    ("networking.k8s.io", "NetworkPolicy"): _network_policy,
    ("rbac.authorization.k8s.io", "RoleBinding"): _rbac_binding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _rbac_binding,
}
_WITH_CREATE = {
    ("", "Pod"): _pod,
    ("", "Namespace"): _namespace,
    ("", "PersistentVolumeClaim"): _pvc,
}


def apply_defaults(info: ResourceInfo, obj: dict, *, create: bool | None = None) -> None:
    """Fill upstream's defaults into ``obj`` (in place). Custom resources are left alone
    (their schema defaults are applied elsewhere)."""
    if info.custom or not isinstance(obj, dict):
        return
    key = (info.group, info.kind)
    fn = _SIMPLE.get(key)
    if fn is not None:
        fn(obj)
        return
    fn2 = _WITH_CREATE.get(key)
    if fn2 is not None:
        fn2(obj, create)
