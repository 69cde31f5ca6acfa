"""Server-side printing: objects as a ``meta.k8s.io/v1`` Table, as kube-apiserver renders
them for ``kubectl get`` (``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``).

Columns and cell values follow upstream's printers (``pkg/printers/internalversion``);
the server always generates wide rows, kubectl hides columns with priority > 0 unless
``-o wide``. Built-in kinds without a printer get upstream's default convertor (NAME,
CREATED AT); custom resources get their CRD version's ``additionalPrinterColumns``
(or NAME, AGE when it declares none).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping

from skube.api import errors
from skube.api.jsonpath import JSONPathError, compile_path, format_value
from skube.api.quantity import canonical_quantity
from skube.api.selectors import (format_label_selector, format_labels,
                                 label_selector_from_dict)

__all__ = ["to_table", "column_definitions", "human_duration", "translate_timestamp_since",
           "INCLUDE_OBJECT_VALUES"]

INCLUDE_OBJECT_VALUES = ("None", "Metadata", "Object")

# ---------------------------------------------------------------------------
# Time and quantity formatting
# ---------------------------------------------------------------------------

_ZERO_TIME = "0001-01-01T00:00:00Z"


def _parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (Time or MicroTime) as an aware datetime; None if unset."""
    if not value or not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    if t.year == 1 and t.month == 1 and t.day == 1 and t.hour == 0 and t.minute == 0:
        return None  # Go's zero time
    return t


def human_duration(d: timedelta) -> str:
    """apimachinery's duration.HumanDuration: ~2-3 significant figures ("5s", "3m20s", "2d3h")."""
    seconds = int(d.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if dy == 0 else f"{years}y{dy}d"
    return f"{hours // 24 // 365}y"


def translate_timestamp_since(value: Any, now: datetime) -> str:
    """Age of an RFC 3339 timestamp, or ``<unknown>`` when unset."""
    t = _parse_time(value)
    if t is None:
        return "<unknown>"
    return human_duration(now - t)


def _rfc3339_utc(value: Any) -> str:
    t = _parse_time(value)
    if t is None:
        return _ZERO_TIME
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quantity(value: Any) -> str:
    """A resource quantity as resource.Quantity.String() prints it ("10240Mi" -> "10Gi");
    an absent quantity is zero, unparsable text is shown as is."""
    if value is None:
        return "0"
    try:
        return canonical_quantity(value)
    except (ValueError, TypeError):
        return str(value)


def _int_or_string(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _int(v: Any, default: int = 0) -> int:
    if isinstance(v, bool) or v is None:
        return default
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v)
    return default


def _d(obj: Any, *path: str) -> Any:
    """obj[path0][path1]..., or {} when any step is missing."""
    for p in path:
        if not isinstance(obj, dict):
            return {}
        obj = obj.get(p)
    return obj if obj is not None else {}


def _s(v: Any) -> str:
    return v if isinstance(v, str) else ("" if v is None else str(v))


# ---------------------------------------------------------------------------
# Column definitions
# ---------------------------------------------------------------------------

_NAME_DESC = ("Name is unique within a namespace (or the cluster, for cluster-scoped "
              "resources) and cannot be changed after creation.")
_AGE_DESC = ("CreationTimestamp is the server time at which the object was created, "
             "as RFC 3339 in UTC.")
_CONTAINERS_DESC = "Names of each container in the template."
_IMAGES_DESC = "Images referenced by each container in the template."

Column = tuple  # (name, type, format, description, priority)


def _c(name: str, typ: str = "string", desc: str = "", priority: int = 0, fmt: str = "") -> Column:
    return (name, typ, fmt, desc, priority)


_NAME = _c("Name", desc=_NAME_DESC, fmt="name")
_AGE = _c("Age", desc=_AGE_DESC)
_WIDE_CONTAINERS = (_c("Containers", desc=_CONTAINERS_DESC, priority=1),
                    _c("Images", desc=_IMAGES_DESC, priority=1))


def _coldefs(cols: Iterable[Column]) -> list[dict]:
    return [{"name": n, "type": t, "format": f, "description": d, "priority": p}
            for n, t, f, d, p in cols]


# ---------------------------------------------------------------------------
# Row printers. Each takes (obj, now) and returns (cells, row conditions or None).
# ---------------------------------------------------------------------------

Row = tuple[list[Any], list[dict] | None]
Printer = Callable[[dict, datetime], Row]


def _name(obj: dict) -> str:
    return _s(_d(obj, "metadata").get("name"))


def _age(obj: dict, now: datetime) -> str:
    return translate_timestamp_since(_d(obj, "metadata").get("creationTimestamp"), now)


def _containers(containers: Any) -> tuple[str, str]:
    containers = containers or []
    return (",".join(_s(c.get("name")) for c in containers),
            ",".join(_s(c.get("image")) for c in containers))


def _max_time(current: datetime | None, value: Any) -> datetime | None:
    t = _parse_time(value)
    if t is not None and (current is None or current < t):
        return t
    return current


def _condition_true(conditions: Any, ctype: str) -> bool:
    for c in conditions or []:
        if c.get("type") == ctype:
            return c.get("status") == "True"
    return False


_POD_SUCCEEDED = [{"type": "Completed", "status": "True", "reason": "Succeeded",
                   "message": "The pod has completed successfully."}]
_POD_FAILED = [{"type": "Completed", "status": "True", "reason": "Failed",
                "message": "The pod failed."}]


def _terminated_reason(term: dict, prefix: str = "") -> str:
    reason = term.get("reason") or ""
    if reason:
        return prefix + reason
    signal = _int(term.get("signal"))
    if signal:
        return f"{prefix}Signal:{signal}"
    return f"{prefix}ExitCode:{_int(term.get('exitCode'))}"


def _pod_ip(status: dict) -> str:
    ips = status.get("podIPs")
    if ips:
        return _s(ips[0].get("ip")) if isinstance(ips[0], dict) else ""
    return _s(status.get("podIP"))


def _print_pod(obj: dict, now: datetime) -> Row:
    meta, spec, status = _d(obj, "metadata"), _d(obj, "spec"), _d(obj, "status")
    init_specs = spec.get("initContainers") or []
    phase = _s(status.get("phase"))
    reason = _s(status.get("reason")) or phase
    conditions = status.get("conditions") or []
    for cond in conditions:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    row_conditions = _POD_SUCCEEDED if phase == "Succeeded" else _POD_FAILED if phase == "Failed" else None

    sidecars = {c.get("name") for c in init_specs if c.get("restartPolicy") == "Always"}
    total = len(spec.get("containers") or []) + len(sidecars)
    ready = restarts = sidecar_restarts = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None

    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        count = _int(cs.get("restartCount"))
        finished = _d(cs, "lastState", "terminated").get("finishedAt")
        restarts += count
        last_restart = _max_time(last_restart, finished)
        is_sidecar = cs.get("name") in sidecars
        if is_sidecar:
            sidecar_restarts += count
            last_sidecar_restart = _max_time(last_sidecar_restart, finished)
        state = cs.get("state") or {}
        term, waiting = state.get("terminated"), state.get("waiting")
        if term is not None and _int(term.get("exitCode")) == 0:
            continue
        if is_sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if term is not None:
            reason = _terminated_reason(term, "Init:")
        elif waiting is not None and waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(conditions, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += _int(cs.get("restartCount"))
            last_restart = _max_time(last_restart, _d(cs, "lastState", "terminated").get("finishedAt"))
            state = cs.get("state") or {}
            term, waiting = state.get("terminated"), state.get("waiting")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif term is not None:
                reason = _terminated_reason(term)
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(conditions, "Ready") else "NotReady"

    if meta.get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Failed", "Succeeded"):
            reason = "Terminating"

    restarts_str = str(restarts)
    if restarts and last_restart is not None:
        restarts_str = f"{restarts} ({human_duration(now - last_restart)} ago)"

    gates = spec.get("readinessGates") or []
    readiness = "<none>"
    if gates:
        true_count = 0
        for gate in gates:
            for cond in conditions:
                if cond.get("type") == gate.get("conditionType"):
                    if cond.get("status") == "True":
                        true_count += 1
                    break
        readiness = f"{true_count}/{len(gates)}"
    cells = [_name(obj), f"{ready}/{total}", reason, restarts_str, _age(obj, now),
             _pod_ip(status) or "<none>", _s(spec.get("nodeName")) or "<none>",
             _s(status.get("nominatedNodeName")) or "<none>", readiness]
    return cells, row_conditions


def _node_roles(labels: Mapping[str, str]) -> str:
    roles = set()
    for k, v in labels.items():
        if k.startswith("node-role.kubernetes.io/"):
            role = k[len("node-role.kubernetes.io/"):]
            if role:
                roles.add(role)
        elif k == "kubernetes.io/role" and v:
            roles.add(v)
    return ",".join(sorted(roles)) or "<none>"


def _node_address(status: dict, kind: str) -> str:
    for a in status.get("addresses") or []:
        if a.get("type") == kind:
            return _s(a.get("address"))
    return "<none>"


def _print_node(obj: dict, now: datetime) -> Row:
    spec, status = _d(obj, "spec"), _d(obj, "status")
    states: list[str] = []
    ready = None
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            ready = cond  # the last one wins, as with upstream's condition map
    if ready is not None:
        states.append("Ready" if ready.get("status") == "True" else "NotReady")
    else:
        states.append("Unknown")
    if spec.get("unschedulable"):
        states.append("SchedulingDisabled")
    info = status.get("nodeInfo") or {}
    return [_name(obj), ",".join(states), _node_roles(_d(obj, "metadata", "labels")),
            _age(obj, now), _s(info.get("kubeletVersion")),
            _node_address(status, "InternalIP"), _node_address(status, "ExternalIP"),
            _s(info.get("osImage")) or "<unknown>", _s(info.get("kernelVersion")) or "<unknown>",
            _s(info.get("containerRuntimeVersion")) or "<unknown>"], None


def _print_namespace(obj: dict, now: datetime) -> Row:
    return [_name(obj), _s(_d(obj, "status").get("phase")) or "Active", _age(obj, now)], None


def _replicas(spec: dict) -> int:
    return _int(spec.get("replicas"), 1) if "replicas" in spec else 1


def _print_deployment(obj: dict, now: datetime) -> Row:
    spec, status = _d(obj, "spec"), _d(obj, "status")
    names, images = _containers(_d(spec, "template", "spec").get("containers"))
    try:
        selector = str(label_selector_from_dict(spec.get("selector")))
    except errors.APIError:
        selector = "<invalid>"
    return [_name(obj), f"{_int(status.get('readyReplicas'))}/{_replicas(spec)}",
            _int(status.get("updatedReplicas")), _int(status.get("availableReplicas")),
            _age(obj, now), names, images, selector], None


def _print_replicaset(obj: dict, now: datetime) -> Row:
    spec, status = _d(obj, "spec"), _d(obj, "status")
    names, images = _containers(_d(spec, "template", "spec").get("containers"))
    return [_name(obj), _replicas(spec), _int(status.get("replicas")),
            _int(status.get("readyReplicas")), _age(obj, now), names, images,
            format_label_selector(spec.get("selector"))], None


def _print_replicationcontroller(obj: dict, now: datetime) -> Row:
    spec, status = _d(obj, "spec"), _d(obj, "status")
    names, images = _containers(_d(spec, "template", "spec").get("containers"))
    return [_name(obj), _replicas(spec), _int(status.get("replicas")),
            _int(status.get("readyReplicas")), _age(obj, now), names, images,
            format_labels(spec.get("selector"))], None


def _print_statefulset(obj: dict, now: datetime) -> Row:
    spec, status = _d(obj, "spec"), _d(obj, "status")
    names, images = _containers(_d(spec, "template", "spec").get("containers"))
    return [_name(obj), f"{_int(status.get('readyReplicas'))}/{_replicas(spec)}",
            _age(obj, now), names, images], None


def _print_daemonset(obj: dict, now: datetime) -> Row:
    spec, status = _d(obj, "spec"), _d(obj, "status")
    pod_spec = _d(spec, "template", "spec")
    names, images = _containers(pod_spec.get("containers"))
    return [_name(obj), _int(status.get("desiredNumberScheduled")),
            _int(status.get("currentNumberScheduled")), _int(status.get("numberReady")),
            _int(status.get("updatedNumberScheduled")), _int(status.get("numberAvailable")),
            format_labels(pod_spec.get("nodeSelector")), _age(obj, now), names, images,
            format_label_selector(spec.get("selector"))], None


def _print_job(obj: dict, now: datetime) -> Row:
    spec, status = _d(obj, "spec"), _d(obj, "status")
    succeeded = _int(status.get("succeeded"))
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{_int(spec.get('completions'))}"
    else:
        parallelism = _int(spec.get("parallelism"), 1) if spec.get("parallelism") is not None else 1
        completions = (f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1")
    start = _parse_time(status.get("startTime"))
    end = _parse_time(status.get("completionTime"))
    if start is None:
        duration = ""
    elif end is None:
        duration = human_duration(now - start)
    else:
        duration = human_duration(end - start)
    conds = status.get("conditions") or []
    if _condition_true(conds, "Complete"):
        state = "Complete"
    elif _condition_true(conds, "Failed"):
        state = "Failed"
    elif _d(obj, "metadata").get("deletionTimestamp"):
        state = "Terminating"
    elif _condition_true(conds, "Suspended"):
        state = "Suspended"
    elif _condition_true(conds, "FailureTarget"):
        state = "FailureTarget"
    else:
        state = "Running"
    names, images = _containers(_d(spec, "template", "spec").get("containers"))
    return [_name(obj), state, completions, duration, _age(obj, now), names, images,
            format_label_selector(spec.get("selector"))], None


def _bool_ptr(v: Any) -> str:
    if v is None:
        return "<unset>"
    return "True" if v else "False"


def _print_cronjob(obj: dict, now: datetime) -> Row:
    spec, status = _d(obj, "spec"), _d(obj, "status")
    last = status.get("lastScheduleTime")
    last_str = translate_timestamp_since(last, now) if last else "<none>"
    tz = spec.get("timeZone")
    job_spec = _d(spec, "jobTemplate", "spec")
    names, images = _containers(_d(job_spec, "template", "spec").get("containers"))
    suspend = spec.get("suspend", False)
    return [_name(obj), _s(spec.get("schedule")), "<none>" if tz is None else _s(tz),
            _bool_ptr(suspend), len(status.get("active") or []), last_str, _age(obj, now),
            names, images, format_label_selector(job_spec.get("selector"))], None


def _lb_ingress(status: dict, wide: bool = True) -> str:
    found = set()
    for ing in _d(status, "loadBalancer").get("ingress") or []:
        if ing.get("ip"):
            found.add(ing["ip"])
        elif ing.get("hostname"):
            found.add(ing["hostname"])
    r = ",".join(sorted(found))
    if not wide and len(r) > 16:
        r = r[:13] + "..."
    return r


def _service_external_ip(spec: dict, status: dict, stype: str) -> str:
    external = [_s(x) for x in spec.get("externalIPs") or []]
    if stype in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if stype == "LoadBalancer":
        lb = _lb_ingress(status)
        if external:
            return ",".join((lb.split(",") if lb else []) + external)
        return lb or "<pending>"
    if stype == "ExternalName":
        return _s(spec.get("externalName"))
    return "<unknown>"


def _print_service(obj: dict, now: datetime) -> Row:
    spec, status = _d(obj, "spec"), _d(obj, "status")
    stype = _s(spec.get("type")) or "ClusterIP"
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    internal = _s(cluster_ips[0]) if cluster_ips else "<none>"
    pieces = []
    for p in spec.get("ports") or []:
        proto = _s(p.get("protocol")) or "TCP"
        node_port = _int(p.get("nodePort"))
        if node_port > 0:
            pieces.append(f"{_int(p.get('port'))}:{node_port}/{proto}")
        else:
            pieces.append(f"{_int(p.get('port'))}/{proto}")
    return [_name(obj), stype, internal, _service_external_ip(spec, status, stype),
            ",".join(pieces) or "<none>", _age(obj, now), format_labels(spec.get("selector"))], None


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _print_endpoints(obj: dict, now: datetime) -> Row:
    subsets = obj.get("subsets") or []
    if not subsets:
        text = "<none>"
    else:
        listed: list[str] = []
        limit, more, count = 3, False, 0
        for ss in subsets:
            addresses = ss.get("addresses") or []
            ports = ss.get("ports") or []
            if not ports:
                count += len(addresses)
                for a in addresses:
                    if len(listed) == limit:
                        more = True
                        break
                    listed.append(_s(a.get("ip")))
                continue
            for port in ports:
                count += len(addresses)
                for a in addresses:
                    if len(listed) == limit:
                        more = True
                        break
                    listed.append(_join_host_port(_s(a.get("ip")), _int(port.get("port"))))
        text = ",".join(listed)
        if more:
            text = f"{text} + {count - limit} more..."
    return [_name(obj), text, _age(obj, now)], None


def _list_with_more(listed: list[str], more: bool, count: int, limit: int) -> str:
    text = ",".join(listed)
    if more:
        return f"{text} + {count - limit} more..."
    return text or "<unset>"


def _print_endpointslice(obj: dict, now: datetime) -> Row:
    limit = 3
    ports: list[str] = []
    more, count = False, 0
    for p in obj.get("ports") or []:
        if len(ports) < limit:
            if p.get("port") is not None:
                ports.append(str(_int(p.get("port"))))
            elif p.get("name") is not None:
                ports.append(_s(p.get("name")))
            else:
                ports.append("*")
        elif len(ports) == limit:
            more = True
        count += 1
    addrs: list[str] = []
    more2, count2 = False, 0
    for ep in obj.get("endpoints") or []:
        for a in ep.get("addresses") or []:
            if len(addrs) < limit:
                addrs.append(_s(a))
            elif len(addrs) == limit:
                more2 = True
            count2 += 1
    return [_name(obj), _s(obj.get("addressType")), _list_with_more(ports, more, count, limit),
            _list_with_more(addrs, more2, count2, limit), _age(obj, now)], None


def _event_fields(obj: dict) -> dict:
    """An events.k8s.io/v1 Event in the core/v1 shape the printer reads."""
    if "regarding" not in obj and "note" not in obj and "deprecatedSource" not in obj:
        return obj
    return {
        "metadata": obj.get("metadata") or {},
        "involvedObject": obj.get("regarding") or {},
        "message": obj.get("note"),
        "source": obj.get("deprecatedSource") or {},
        "firstTimestamp": obj.get("deprecatedFirstTimestamp"),
        "lastTimestamp": obj.get("deprecatedLastTimestamp"),
        "count": obj.get("deprecatedCount"),
        "eventTime": obj.get("eventTime"),
        "series": obj.get("series"),
        "type": obj.get("type"), "reason": obj.get("reason"),
        "reportingComponent": obj.get("reportingController"),
        "reportingInstance": obj.get("reportingInstance"),
    }


def _print_event(obj: dict, now: datetime) -> Row:
    ev = _event_fields(obj)
    if _parse_time(ev.get("firstTimestamp")) is None:
        first = translate_timestamp_since(ev.get("eventTime"), now)
    else:
        first = translate_timestamp_since(ev.get("firstTimestamp"), now)
    if _parse_time(ev.get("lastTimestamp")) is None:
        last = first
    else:
        last = translate_timestamp_since(ev.get("lastTimestamp"), now)
    count = _int(ev.get("count"))
    series = ev.get("series")
    if series is not None:
        last = translate_timestamp_since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1
    involved = ev.get("involvedObject") or {}
    kind = _s(involved.get("kind")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = ev.get("source") or {}
    component = _s(source.get("component")) or _s(ev.get("reportingComponent"))
    host = _s(source.get("host")) or _s(ev.get("reportingInstance"))
    source_str = f"{component}, {host}" if host else component
    return [last, _s(ev.get("type")), _s(ev.get("reason")), target,
            _s(involved.get("fieldPath")), source_str, _s(ev.get("message")).strip(),
            first, count, _name(obj)], None


def _print_configmap(obj: dict, now: datetime) -> Row:
    return [_name(obj), len(obj.get("data") or {}) + len(obj.get("binaryData") or {}),
            _age(obj, now)], None


def _print_secret(obj: dict, now: datetime) -> Row:
    keys = set(obj.get("data") or {}) | set(obj.get("stringData") or {})
    return [_name(obj), _s(obj.get("type")) or "Opaque", len(keys), _age(obj, now)], None


def _print_serviceaccount(obj: dict, now: datetime) -> Row:
    return [_name(obj), len(obj.get("secrets") or []), _age(obj, now)], None


def _print_lease(obj: dict, now: datetime) -> Row:
    return [_name(obj), _s(_d(obj, "spec").get("holderIdentity")), _age(obj, now)], None


def _print_network_policy(obj: dict, now: datetime) -> Row:
    return [_name(obj), format_label_selector(_d(obj, "spec").get("podSelector")), _age(obj, now)], None


def _print_pdb(obj: dict, now: datetime) -> Row:
    spec = _d(obj, "spec")
    min_av = spec.get("minAvailable")
    max_un = spec.get("maxUnavailable")
    return [_name(obj), "N/A" if min_av is None else _int_or_string(min_av),
            "N/A" if max_un is None else _int_or_string(max_un),
            _int(_d(obj, "status").get("disruptionsAllowed")), _age(obj, now)], None


def _print_binding(obj: dict, now: datetime) -> Row:
    ref = obj.get("roleRef") or {}
    users, groups, sas = [], [], []
    for subj in obj.get("subjects") or []:
        kind = subj.get("kind")
        if kind == "ServiceAccount":
            sas.append(f"{_s(subj.get('namespace'))}/{_s(subj.get('name'))}")
        elif kind == "User":
            users.append(_s(subj.get("name")))
        elif kind == "Group":
            groups.append(_s(subj.get("name")))
    return [_name(obj), f"{_s(ref.get('kind'))}/{_s(ref.get('name'))}", _age(obj, now),
            ", ".join(users), ", ".join(groups), ", ".join(sas)], None


def _print_resourcequota(obj: dict, now: datetime) -> Row:
    status = _d(obj, "status")
    hard, used = status.get("hard") or {}, status.get("used") or {}
    requests, limits = [], []
    for res in sorted(hard):
        text = f"{res}: {_quantity(used.get(res))}/{_quantity(hard[res])}"
        pieces = res.split(".")
        (limits if len(pieces) > 1 and pieces[0] == "limits" else requests).append(text)
    return [_name(obj), ", ".join(requests), ", ".join(limits), _age(obj, now)], None


_ACCESS_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                 ("ReadWriteOncePod", "RWOP"))


def _access_modes(modes: Any) -> str:
    present = set(modes or [])
    return ",".join(short for mode, short in _ACCESS_MODES if mode in present)


def _print_pvc(obj: dict, now: datetime) -> Row:
    meta, spec, status = _d(obj, "metadata"), _d(obj, "spec"), _d(obj, "status")
    phase = "Terminating" if meta.get("deletionTimestamp") else _s(status.get("phase"))
    capacity = access = ""
    if spec.get("volumeName"):
        access = _access_modes(status.get("accessModes"))
        capacity = _quantity(_d(status, "capacity").get("storage"))
    annotations = meta.get("annotations") or {}
    if "volume.beta.kubernetes.io/storage-class" in annotations:
        storage_class = _s(annotations["volume.beta.kubernetes.io/storage-class"])
    else:
        storage_class = _s(spec.get("storageClassName"))
    vac = spec.get("volumeAttributesClassName")
    mode = spec.get("volumeMode")
    return [_name(obj), phase, _s(spec.get("volumeName")), capacity, access, storage_class,
            "<unset>" if vac is None else _s(vac), _age(obj, now),
            "<unset>" if mode is None else _s(mode)], None


def _print_controllerrevision(obj: dict, now: datetime) -> Row:
    controller = "<none>"
    for ref in _d(obj, "metadata").get("ownerReferences") or []:
        if ref.get("controller"):
            api_version = _s(ref.get("apiVersion"))
            group = api_version.split("/", 1)[0] if "/" in api_version else ""
            kind = _s(ref.get("kind"))
            gk = f"{kind}.{group}" if group else kind
            name = _s(ref.get("name"))
            controller = f"{gk.lower()}/{name}" if gk else name
            break
    return [_name(obj), controller, _int(obj.get("revision")), _age(obj, now)], None


_DEFAULT_COLUMNS = (_NAME, _c("Created At", "date", _AGE_DESC))


def _print_default(obj: dict, now: datetime) -> Row:
    return [_name(obj), _rfc3339_utc(_d(obj, "metadata").get("creationTimestamp"))], None


_SELECTOR_WIDE = _c("Selector", desc="Label query over the objects this controller manages.",
                    priority=1)

# (group, kind) -> (column definitions, row printer)
_PRINTERS: dict[tuple[str, str], tuple[tuple[Column, ...], Printer]] = {
    ("", "Pod"): ((
        _NAME,
        _c("Ready", desc="The aggregate readiness state of this pod for accepting traffic."),
        _c("Status", desc="The aggregate status of the containers in this pod."),
        _c("Restarts", desc="The number of times the containers in this pod have been restarted "
                            "and when the last container in this pod has restarted."),
        _AGE,
        _c("IP", desc="The pod's primary IP address.", priority=1),
        _c("Node", desc="The node the pod is scheduled to.", priority=1),
        _c("Nominated Node", desc="The node the scheduler nominated for this pod after "
                                  "preemption.", priority=1),
        _c("Readiness Gates", desc="Readiness gates that are true, of those the pod declares.",
           priority=1),
    ), _print_pod),
    ("", "Node"): ((
        _NAME,
        _c("Status", desc="The status of the node"),
        _c("Roles", desc="The roles of the node"),
        _AGE,
        _c("Version", desc="Kubelet version reported by the node."),
        _c("Internal-IP", desc="The node's internal address.", priority=1),
        _c("External-IP", desc="The node's external address.", priority=1),
        _c("OS-Image", desc="OS image reported by the node.", priority=1),
        _c("Kernel-Version", desc="Kernel version reported by the node.", priority=1),
        _c("Container-Runtime", desc="Container runtime version reported by the node.",
           priority=1),
    ), _print_node),
    ("", "Namespace"): ((_NAME, _c("Status", desc="The status of the namespace"), _AGE),
                        _print_namespace),
    ("apps", "Deployment"): ((
        _NAME,
        _c("Ready", desc="Number of the pod with ready state"),
        _c("Up-to-date", desc="Pods updated to the latest template."),
        _c("Available", desc="Pods available for at least minReadySeconds."),
        _AGE, *_WIDE_CONTAINERS, _SELECTOR_WIDE,
    ), _print_deployment),
    ("apps", "ReplicaSet"): ((
        _NAME,
        _c("Desired", "integer", "Number of desired pods."),
        _c("Current", "integer", "Number of pods currently present."),
        _c("Ready", "integer", "Number of ready pods."),
        _AGE, *_WIDE_CONTAINERS, _SELECTOR_WIDE,
    ), _print_replicaset),
    ("", "ReplicationController"): ((
        _NAME,
        _c("Desired", "integer", "Number of desired pods."),
        _c("Current", "integer", "Number of pods currently present."),
        _c("Ready", "integer", "Number of ready pods."),
        _AGE, *_WIDE_CONTAINERS, _SELECTOR_WIDE,
    ), _print_replicationcontroller),
    ("apps", "StatefulSet"): ((
        _NAME, _c("Ready", desc="Number of the pod with ready state"), _AGE, *_WIDE_CONTAINERS,
    ), _print_statefulset),
    ("apps", "DaemonSet"): ((
        _NAME,
        _c("Desired", "integer", "Nodes that should run the daemon pod."),
        _c("Current", "integer", "Nodes running at least one daemon pod."),
        _c("Ready", "integer", "Nodes whose daemon pod is ready."),
        _c("Up-to-date", "integer", "Nodes running the updated daemon pod."),
        _c("Available", "integer", "Nodes whose daemon pod is available."),
        _c("Node Selector", desc="Node labels the daemon pods must match."),
        _AGE, *_WIDE_CONTAINERS, _SELECTOR_WIDE,
    ), _print_daemonset),
    ("batch", "Job"): ((
        _NAME,
        _c("Status", desc="Status of the job."),
        _c("Completions", desc="Succeeded pods out of the required completions."),
        _c("Duration", desc="Time required to complete the job."),
        _AGE, *_WIDE_CONTAINERS, _SELECTOR_WIDE,
    ), _print_job),
    ("batch", "CronJob"): ((
        _NAME,
        _c("Schedule", desc="The schedule in Cron format."),
        _c("Timezone", desc="The time zone the schedule is interpreted in."),
        _c("Suspend", "boolean", "Whether subsequent runs are suspended."),
        _c("Active", "integer", "Number of currently running jobs."),
        _c("Last Schedule", desc="When a job was last successfully scheduled."),
        _AGE, *_WIDE_CONTAINERS, _SELECTOR_WIDE,
    ), _print_cronjob),
    ("", "Service"): ((
        _NAME,
        _c("Type", desc="How the service is exposed."),
        _c("Cluster-IP", desc="The service's cluster IP."),
        _c("External-IP", desc="External addresses of the service."),
        _c("Port(s)", desc="The ports the service exposes."),
        _AGE,
        _c("Selector", desc="Pods with labels matching this selector receive traffic.",
           priority=1),
    ), _print_service),
    ("", "Endpoints"): ((_NAME, _c("Endpoints", desc="Addresses and ports of the endpoints."),
                         _AGE), _print_endpoints),
    ("discovery.k8s.io", "EndpointSlice"): ((
        _NAME,
        _c("AddressType", desc="The type of address carried by this slice."),
        _c("Ports", desc="The ports exposed by the endpoints."),
        _c("Endpoints", desc="Addresses of the endpoints."),
        _AGE,
    ), _print_endpointslice),
    ("", "ConfigMap"): ((_NAME, _c("Data", desc="Number of data entries."), _AGE),
                        _print_configmap),
    ("", "Secret"): ((_NAME, _c("Type", desc="The secret's type."),
                      _c("Data", desc="Number of data entries."), _AGE), _print_secret),
    ("", "ServiceAccount"): ((_NAME, _c("Secrets", desc="Number of referenced secrets."), _AGE),
                             _print_serviceaccount),
    ("coordination.k8s.io", "Lease"): ((_NAME, _c("Holder", desc="Identity of the holder."),
                                        _AGE), _print_lease),
    ("networking.k8s.io", "NetworkPolicy"): ((
        _NAME,
        _c("Pod-Selector", desc="A label selector to select which pods this network policy "
                                "applies to. An empty selector selects all pods in the namespace."),
        _AGE,
    ), _print_network_policy),
    ("policy", "PodDisruptionBudget"): ((
        _NAME,
        _c("Min Available", desc="The minimum number of pods that must be available."),
        _c("Max Unavailable", desc="The maximum number of pods that may be unavailable."),
        _c("Allowed Disruptions", "integer",
           "Calculated number of pods that may be disrupted at this time."),
        _AGE,
    ), _print_pdb),
    ("", "ResourceQuota"): ((
        _NAME,
        _c("Request", desc="Request represents a minimum amount of cpu/memory that a "
                           "container may consume."),
        _c("Limit", desc="Limits control the maximum amount of cpu/memory that a container "
                         "may use independent of contention on the node."),
        _AGE,
    ), _print_resourcequota),
    ("", "PersistentVolumeClaim"): ((
        _NAME,
        _c("Status", desc="The claim's phase."),
        _c("Volume", desc="The bound volume."),
        _c("Capacity", desc="Capacity of the bound volume."),
        _c("Access Modes", desc="Access modes of the bound volume."),
        _c("StorageClass", desc="StorageClass of the pvc"),
        _c("VolumeAttributesClass", desc="VolumeAttributesClass of the pvc"),
        _AGE,
        _c("VolumeMode", desc="Whether the volume is a filesystem or a block device.",
           priority=1),
    ), _print_pvc),
    ("apps", "ControllerRevision"): ((
        _NAME,
        _c("Controller", desc="Controller of the object"),
        _c("Revision", desc="The revision number of the state."),
        _AGE,
    ), _print_controllerrevision),
}

for _group in ("rbac.authorization.k8s.io",):
    for _kind, _what in (("RoleBinding", "roleBinding"), ("ClusterRoleBinding", "clusterRoleBinding")):
        _PRINTERS[(_group, _kind)] = ((
            _NAME,
            _c("Role", desc="The role the subjects are bound to."),
            _AGE,
            _c("Users", desc=f"Users in the {_what}", priority=1),
            _c("Groups", desc=f"Groups in the {_what}", priority=1),
            _c("ServiceAccounts", desc=f"ServiceAccounts in the {_what}", priority=1),
        ), _print_binding)

_EVENT_PRINTER = ((
    _c("Last Seen", desc="When the event was last observed."),
    _c("Type", desc="Type of the event (Normal, Warning)."),
    _c("Reason", desc="Short, machine-understandable reason for the event."),
    _c("Object", desc="The object the event is about."),
    _c("Subobject", desc="The part of the object the event is about.", priority=1),
    _c("Source", desc="The component that reported the event.", priority=1),
    _c("Message", desc="Human-readable description of the event."),
    _c("First Seen", desc="When the event was first observed.", priority=1),
    _c("Count", desc="How many times the event has occurred.", priority=1),
    _c("Name", desc=_NAME_DESC, priority=1, fmt="name"),
), _print_event)
_PRINTERS[("", "Event")] = _EVENT_PRINTER
_PRINTERS[("events.k8s.io", "Event")] = _EVENT_PRINTER


# ---------------------------------------------------------------------------
# Custom resources: additionalPrinterColumns
# ---------------------------------------------------------------------------

_CR_DEFAULT_COLUMNS = ({"name": "Age", "type": "date", "description": _AGE_DESC,
                        "jsonPath": ".metadata.creationTimestamp"},)


def _cell_for_json(col_type: str, value: Any, now: datetime) -> Any:
    if value is None:
        return None
    if col_type == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, (int, float)):
            return int(value)
    elif col_type == "number":
        if isinstance(value, bool):
            return None
        if isinstance(value, (int, float)):
            return float(value)
    elif col_type == "boolean":
        if isinstance(value, bool):
            return value
    elif col_type == "date":
        if isinstance(value, str):
            if value in ("", "null"):
                return "<unknown>"
            try:
                t = datetime.fromisoformat(value)
            except ValueError:
                return "<invalid>"
            if t.tzinfo is None:
                return "<invalid>"
            if _parse_time(value) is None:
                return "<unknown>"
            return human_duration(now - t)
    elif col_type == "string":
        if isinstance(value, str):
            return value
    return None


def _custom_printer(columns: Iterable[Mapping[str, Any]]) -> tuple[tuple[Column, ...], Printer]:
    cols: list[Column] = [_NAME]
    paths = []
    for col in columns:
        json_path = col.get("jsonPath") or col.get("JSONPath") or ""
        try:
            path = compile_path(json_path)
        except JSONPathError:
            break  # upstream keeps the columns parsed before an unrecognized one
        desc = col.get("description") or (
            f"Custom resource definition column (in JSONPath format): {json_path}")
        typ = _s(col.get("type")) or "string"
        cols.append((_s(col.get("name")), typ, _s(col.get("format")), desc,
                     _int(col.get("priority"))))
        paths.append((path, typ))

    def printer(obj: dict, now: datetime) -> Row:
        cells: list[Any] = [_name(obj)]
        for path, typ in paths:
            found = path.find(obj)
            if not found:
                cells.append(None)
                continue
            value = found[0]
            if typ == "string":
                cells.append(None if value is None else format_value(value))
            else:
                cells.append(_cell_for_json(typ, value, now))
        return cells, None

    return tuple(cols), printer


# ---------------------------------------------------------------------------
# The Table
# ---------------------------------------------------------------------------

def _printer_for(info: Any) -> tuple[tuple[Column, ...], Printer]:
    if getattr(info, "custom", False):
        columns = tuple(getattr(info, "printer_columns", ()) or ()) or _CR_DEFAULT_COLUMNS
        return _custom_printer(columns)
    return _PRINTERS.get((info.group, info.kind), (_DEFAULT_COLUMNS, _print_default))


def column_definitions(info: Any) -> list[dict]:
    """The Table's columnDefinitions for this resource (all priorities)."""
    return _coldefs(_printer_for(info)[0])


def to_table(info: Any, objs: list[dict], *, include_object: str = "Metadata",
             resource_version: str = "", continue_token: str | None = None,
             remaining: int | None = None, now: datetime | None = None) -> dict:
    """Render ``objs`` (items of one resource) as a ``meta.k8s.io/v1`` Table.

    ``include_object`` is the request's ``includeObject``: ``None`` (no object),
    ``Metadata`` (a PartialObjectMetadata; the default) or ``Object`` (the object as is)."""
    include = include_object or "Metadata"
    if include not in INCLUDE_OBJECT_VALUES:
        raise errors.bad_request(f"unrecognized includeObject value: \"{include_object}\"")
    if now is None:
        now = datetime.now(timezone.utc)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    cols, printer = _printer_for(info)
    rows = []
    for obj in objs:
        cells, conditions = printer(obj, now)
        row: dict[str, Any] = {"cells": cells}
        if conditions:
            row["conditions"] = [dict(c) for c in conditions]
        if include == "Metadata":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": obj.get("metadata") or {}}
        elif include == "Object":
            row["object"] = obj
        else:
            row["object"] = None
        rows.append(row)
    metadata: dict[str, Any] = {}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    if continue_token:
        metadata["continue"] = continue_token
    if remaining is not None:
        metadata["remainingItemCount"] = remaining
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
            "columnDefinitions": _coldefs(cols), "rows": rows}
