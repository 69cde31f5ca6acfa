"""The kubelet's ``/metrics/resource``: the provider's stats as Prometheus text with
the upstream metric names (what metrics-server and skube's metrics.k8s.io read).

Counters are cumulative core-seconds; gauges are bytes; every sample carries the
millisecond timestamp of the stats it comes from. Summary times with whole-second precision that fall in the current second are
stamped with the time of the scrape (ms). The node's CPU counter is the
provider's when it reports one, else the sum of its pods' CPU time, kept monotonic
across pods that come and go (only positive per-pod increments are added).
"""
from __future__ import annotations

import datetime as dt
import time

_HEADERS = {
    "container_cpu_usage_seconds_total": ("Cumulative cpu time consumed by the container in core-seconds",
                                          "counter"),
    "container_memory_working_set_bytes": ("Current working set of the container in bytes", "gauge"),
    "container_start_time_seconds": ("Start time of the container since unix epoch in seconds", "gauge"),
    "node_cpu_usage_seconds_total": ("Cumulative cpu time consumed by the node in core-seconds", "counter"),
    "node_memory_working_set_bytes": ("Current working set of the node in bytes", "gauge"),
    "pod_cpu_usage_seconds_total": ("Cumulative cpu time consumed by the pod in core-seconds", "counter"),
    "pod_memory_working_set_bytes": ("Current working set of the pod in bytes", "gauge"),
    "resource_scrape_error": ("1 if there was an error while getting container metrics, 0 otherwise", "gauge"),
}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _ms(rfc3339: str | None, now: float) -> int:
    """A stats time in ms. Summary times are whole seconds (metav1.Time); one that is the
    current second is taken as ``now`` (the stats were just read), so that rates computed
    from two scrapes a second apart are not off by up to a second."""
    if rfc3339:
        try:
            t = dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return int(now * 1000)
        if t == int(t) and t <= now < t + 1:
            return int(now * 1000)
        return int(t * 1000)
    return int(now * 1000)


def _exact_ms(rfc3339: str | None) -> int | None:
    try:
        return int(dt.datetime.fromisoformat((rfc3339 or "").replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def _label(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**kw: str) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in kw.items()) + "}"


def _num(v: float) -> str:
    return repr(float(v)) if isinstance(v, float) else str(v)


class ResourceMetrics:
    """Renders ``/metrics/resource`` from ``provider.stats()`` summaries."""

    def __init__(self) -> None:
        self._node_cpu_ns = 0                      # monotonic node CPU time (ns) when derived
        self._pod_cpu_ns: dict[str, int] = {}      # pod uid -> last cumulative CPU time seen

    def _node_cpu(self, node: dict, pods: list[dict]) -> int:
        own = (node.get("cpu") or {}).get("usageCoreNanoSeconds")
        if own is not None:
            return int(own)
        seen: dict[str, int] = {}
        for p in pods:
            uid = (p.get("podRef") or {}).get("uid") or ""
            cur = int((p.get("cpu") or {}).get("usageCoreNanoSeconds") or 0)
            seen[uid] = cur
            self._node_cpu_ns += max(0, cur - self._pod_cpu_ns.get(uid, 0))
        self._pod_cpu_ns = seen
        return self._node_cpu_ns

    def render(self, summary: dict | None, error: bool = False, now: float | None = None) -> str:
        """Prometheus text for one stats summary (``None`` with ``error``: only the error gauge)."""
        now = time.time() if now is None else now
        out: dict[str, list[str]] = {k: [] for k in _HEADERS}
        if summary is not None:
            node = summary.get("node") or {}
            pods = summary.get("pods") or []
            ncpu, nmem = node.get("cpu") or {}, node.get("memory") or {}
            out["node_cpu_usage_seconds_total"].append(
                f"node_cpu_usage_seconds_total {_num(self._node_cpu(node, pods) / 1e9)} {_ms(ncpu.get('time'), now)}")
            if nmem.get("workingSetBytes") is not None:
                out["node_memory_working_set_bytes"].append(
                    f"node_memory_working_set_bytes {_num(nmem['workingSetBytes'])} {_ms(nmem.get('time'), now)}")
            for p in pods:
                ref = p.get("podRef") or {}
                ns, name = ref.get("namespace") or "", ref.get("name") or ""
                pcpu, pmem = p.get("cpu") or {}, p.get("memory") or {}
                plabels = _labels(namespace=ns, pod=name)
                if pcpu.get("usageCoreNanoSeconds") is not None:
                    out["pod_cpu_usage_seconds_total"].append(
                        f"pod_cpu_usage_seconds_total{plabels} {_num(pcpu['usageCoreNanoSeconds'] / 1e9)} "
                        f"{_ms(pcpu.get('time'), now)}")
                if pmem.get("workingSetBytes") is not None:
                    out["pod_memory_working_set_bytes"].append(
                        f"pod_memory_working_set_bytes{plabels} {_num(pmem['workingSetBytes'])} "
                        f"{_ms(pmem.get('time'), now)}")
                for c in p.get("containers") or []:
                    labels = _labels(container=c.get("name") or "", namespace=ns, pod=name)
                    ccpu, cmem = c.get("cpu") or {}, c.get("memory") or {}
                    if ccpu.get("usageCoreNanoSeconds") is not None:
                        out["container_cpu_usage_seconds_total"].append(
                            f"container_cpu_usage_seconds_total{labels} "
                            f"{_num(ccpu['usageCoreNanoSeconds'] / 1e9)} {_ms(ccpu.get('time'), now)}")
                    if cmem.get("workingSetBytes") is not None:
                        out["container_memory_working_set_bytes"].append(
                            f"container_memory_working_set_bytes{labels} {_num(cmem['workingSetBytes'])} "
                            f"{_ms(cmem.get('time'), now)}")
                    started = _exact_ms(c.get("startTime"))
                    if started is not None:
                        out["container_start_time_seconds"].append(
                            f"container_start_time_seconds{labels} {_num(started / 1000)} {started}")
        out["resource_scrape_error"].append(f"resource_scrape_error {1 if error else 0}")
        lines: list[str] = []
        for name, samples in out.items():
            if not samples:
                continue
            help_, typ = _HEADERS[name]
            lines += [f"# HELP {name} [STABLE] {help_}", f"# TYPE {name} {typ}", *samples]
        return "\n".join(lines) + "\n"


def parse(text: str) -> dict[str, list[tuple[dict[str, str], float, int | None]]]:
    """Prometheus text -> ``{metric: [(labels, value, timestamp_ms | None), …]}`` (the subset
    of the format the kubelet writes: no escapes inside label values beyond ``\\"``)."""
    out: dict[str, list] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        labels: dict[str, str] = {}
        if "{" in line:
            name, _, rest = line.partition("{")
            body, _, tail = rest.rpartition("}")
            for part in _split_labels(body):
                k, _, v = part.partition("=")
                labels[k.strip()] = v.strip().strip('"').replace('\\"', '"').replace("\\\\", "\\")
        else:
            name, _, tail = line.partition(" ")
        fields = tail.split()
        if not fields:
            continue
        ts = int(fields[1]) if len(fields) > 1 else None
        out.setdefault(name.strip(), []).append((labels, float(fields[0]), ts))
    return out


def _split_labels(body: str) -> list[str]:
    parts, cur, quoted, esc = [], [], False, False
    for ch in body:
        if esc:
            cur.append(ch)
            esc = False
        elif ch == "\\":
            cur.append(ch)
            esc = True
        elif ch == '"':
            cur.append(ch)
            quoted = not quoted
        elif ch == "," and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur))
    return parts


__all__ = ["ResourceMetrics", "parse", "CONTENT_TYPE"]
