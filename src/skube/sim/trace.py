"""Workload traces: what a cluster runs over a day, read from YAML.

A trace lists workloads; each is a Deployment whose replica count steps over the day or
a Job started at given times of day. Times are ``HH:MM`` (or ``HH:MM:SS``) from the
start of the simulated day; durations are seconds or ``30s``/``15m``/``2h``::

    name: evening-classes
    duration: 24h                      # how long the replay runs (default 24h)
    cluster:                           # ordinary nodes, for the strategies that use them
      nodeSize: 16c32g
      bootDelay: 60s                   # a VM takes about a minute (autoscaler)
      scaleDownIdle: 10m
    workloads:
    - name: web                        # constant: 200 replicas all day
      kind: Deployment
      resources: {cpu: 500m, memory: 1Gi}
      replicas: 200
    - name: classes                    # steps: replicas from each time on
      kind: Deployment
      resources: {cpu: "1", memory: 2Gi}
      replicas: [{at: "19:00", count: 20000}, {at: "21:00", count: 0}]
    - name: nightly-report
      kind: Job
      at: ["02:00"]
      completions: 200
      parallelism: 50
      runSeconds: 15m                  # how long each pod runs (the mock provider's lifecycle)
      resources: {cpu: "2", memory: 4Gi}

Errors name the field to fix (``TraceError``)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..api.quantity import cpu_millis, memory_bytes

DAY = 86400.0
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class TraceError(ValueError):
    """A trace that cannot be replayed; the message names the field."""


@dataclass
class Workload:
    name: str
    kind: str                                   # Deployment | Job
    namespace: str = "default"
    cpu_m: int = 500
    memory: int = 1 << 30                       # bytes
    labels: dict = field(default_factory=dict)
    annotations: dict = field(default_factory=dict)
    # Deployment: (seconds of day, replicas) steps, sorted; replicas hold until the next step
    steps: list[tuple[float, int]] = field(default_factory=list)
    # Job: start times, and each pod's run time
    starts: list[float] = field(default_factory=list)
    completions: int = 1
    parallelism: int = 1
    run_seconds: float = 60.0

    def replicas_at(self, t: float) -> int:
        n = 0
        for at, count in self.steps:
            if at > t:
                break
            n = count
        return n

    @property
    def peak(self) -> int:
        if self.kind == "Deployment":
            return max((c for _, c in self.steps), default=0)
        return min(self.parallelism, self.completions)


@dataclass
class ClusterShape:
    node_cpu_m: int = 16000
    node_memory: int = 32 << 30
    node_size: str = "16c32g"
    boot_delay: float = 60.0
    scale_down_idle: float = 600.0


@dataclass
class Trace:
    name: str
    duration: float
    workloads: list[Workload]
    cluster: ClusterShape
    description: str = ""

    def demand(self, t: float) -> list[tuple[Workload, int]]:
        """Pods each workload asks for at ``t`` (Jobs: the pods running if each wave
        started on time and ran exactly runSeconds)."""
        out = []
        for w in self.workloads:
            if w.kind == "Deployment":
                out.append((w, w.replicas_at(t)))
            else:
                out.append((w, sum(_job_running(w, t - s) for s in w.starts if t >= s)))
        return out

    def pods_at(self, t: float) -> int:
        return sum(n for _, n in self.demand(t))


def _job_running(w: Workload, elapsed: float) -> int:
    """Pods of one Job run running ``elapsed`` seconds after it started, in ideal waves."""
    if elapsed < 0 or w.run_seconds <= 0:
        return 0
    wave = int(elapsed // w.run_seconds)
    left = w.completions - wave * w.parallelism
    return max(0, min(w.parallelism, left))


def parse_time_of_day(value, where: str) -> float:
    if isinstance(value, int) and not isinstance(value, bool):   # YAML 1.1 reads 19:00 as 1140
        raise TraceError(f"{where}: quote times of day, e.g. \"19:00\" (YAML read {value!r} as a number)")
    m = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", str(value).strip())
    if not m or int(m[2]) > 59 or int(m[3] or 0) > 59 or int(m[1]) > 24 or \
            (int(m[1]) == 24 and (int(m[2]) or int(m[3] or 0))):
        raise TraceError(f"{where}: {value!r} is not a time of day HH:MM between 00:00 and 24:00")
    return int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3] or 0)


def parse_duration(value, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|m|h|d)?", str(value).strip())
        if not m:
            raise TraceError(f"{where}: {value!r} is not a duration (seconds, or like 30s, 15m, 2h)")
        seconds = float(m[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m[2] or "s"]
    if seconds < 0 or math.isinf(seconds) or math.isnan(seconds):
        raise TraceError(f"{where}: {value!r} must be a non-negative duration")
    return seconds


def parse_size(text: str, where: str) -> tuple[int, int]:
    """``16c32g`` → (16000 milli-CPU, 32 GiB in bytes)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)c(\d+(?:\.\d+)?)g", str(text).strip().lower())
    if not m or float(m[1]) <= 0 or float(m[2]) <= 0:
        raise TraceError(f"{where}: {text!r} is not a node size like 16c32g (vCPUs, GiB)")
    return int(float(m[1]) * 1000), int(float(m[2]) * (1 << 30))


def _int(v, where: str, minimum: int = 0) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise TraceError(f"{where}: {v!r} must be an integer >= {minimum}")
    return v


def _workload(doc, i: int) -> Workload:
    where = f"workloads[{i}]"
    if not isinstance(doc, dict):
        raise TraceError(f"{where}: expected a mapping")
    name = doc.get("name")
    if not isinstance(name, str) or not _DNS1123.match(name) or len(name) > 50:
        raise TraceError(f"{where}.name: {name!r} must be a DNS-1123 label of at most 50 characters")
    kind = doc.get("kind", "Deployment")
    if kind not in ("Deployment", "Job"):
        raise TraceError(f"{where}.kind: {kind!r} must be Deployment or Job")
    res = doc.get("resources") or {}
    if not isinstance(res, dict):
        raise TraceError(f"{where}.resources: expected a mapping with cpu and memory")
    try:
        cpu = cpu_millis(str(res.get("cpu", "500m")))
        mem = memory_bytes(str(res.get("memory", "1Gi")))
    except (ValueError, TypeError) as e:
        raise TraceError(f"{where}.resources: {e}") from None
    if cpu <= 0 or mem <= 0:
        raise TraceError(f"{where}.resources: cpu and memory must be positive")
    ns = doc.get("namespace", "default")
    if not isinstance(ns, str) or not _DNS1123.match(ns):
        raise TraceError(f"{where}.namespace: {ns!r} must be a DNS-1123 label")
    w = Workload(name=name, kind=kind, namespace=ns, cpu_m=cpu, memory=mem,
                 labels=dict(doc.get("labels") or {}), annotations=dict(doc.get("annotations") or {}))
    if kind == "Deployment":
        reps = doc.get("replicas", 1)
        if isinstance(reps, int) and not isinstance(reps, bool):
            w.steps = [(0.0, _int(reps, f"{where}.replicas"))]
        elif isinstance(reps, list) and reps:
            steps = []
            for j, s in enumerate(reps):
                if not isinstance(s, dict) or "at" not in s or "count" not in s:
                    raise TraceError(f"{where}.replicas[{j}]: expected {{at: \"HH:MM\", count: N}}")
                steps.append((parse_time_of_day(s["at"], f"{where}.replicas[{j}].at"),
                              _int(s["count"], f"{where}.replicas[{j}].count")))
            steps.sort()
            if steps[0][0] > 0:
                steps.insert(0, (0.0, 0))
            w.steps = steps
        else:
            raise TraceError(f"{where}.replicas: a number, or a list of {{at, count}} steps")
    else:
        at = doc.get("at")
        at = [at] if isinstance(at, (str, int)) else at
        if not isinstance(at, list) or not at:
            raise TraceError(f"{where}.at: a time of day or a list of them when the Job starts")
        w.starts = sorted(parse_time_of_day(a, f"{where}.at[{j}]") for j, a in enumerate(at))
        w.completions = _int(doc.get("completions", 1), f"{where}.completions", 1)
        w.parallelism = _int(doc.get("parallelism", 1), f"{where}.parallelism", 1)
        w.run_seconds = parse_duration(doc.get("runSeconds", 60), f"{where}.runSeconds")
    return w


def load_trace(source: str | Path | dict) -> Trace:
    """A trace from a YAML file (or an already parsed mapping)."""
    if isinstance(source, dict):
        doc, origin = source, "trace"
    else:
        path = Path(source)
        try:
            doc = yaml.safe_load(path.read_text())
        except OSError as e:
            raise TraceError(f"{path}: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise TraceError(f"{path}: not valid YAML: {e}") from None
        origin = str(path)
    if not isinstance(doc, dict):
        raise TraceError(f"{origin}: expected a mapping with name and workloads")
    wl = doc.get("workloads")
    if not isinstance(wl, list) or not wl:
        raise TraceError(f"{origin}: workloads: a non-empty list is required")
    workloads = [_workload(d, i) for i, d in enumerate(wl)]
    seen = set()
    for i, w in enumerate(workloads):
        if (w.namespace, w.name) in seen:
            raise TraceError(f"workloads[{i}].name: {w.name!r} appears twice in namespace {w.namespace}")
        seen.add((w.namespace, w.name))
    c = doc.get("cluster") or {}
    if not isinstance(c, dict):
        raise TraceError("cluster: expected a mapping")
    size = str(c.get("nodeSize", "16c32g"))
    cpu, mem = parse_size(size, "cluster.nodeSize")
    shape = ClusterShape(node_cpu_m=cpu, node_memory=mem, node_size=size,
                         boot_delay=parse_duration(c.get("bootDelay", 60), "cluster.bootDelay"),
                         scale_down_idle=parse_duration(c.get("scaleDownIdle", 600), "cluster.scaleDownIdle"))
    for w in workloads:
        if w.cpu_m > cpu or w.memory > mem:
            raise TraceError(f"workload {w.name}: a pod ({w.cpu_m}m, {w.memory >> 20}Mi) does not fit "
                             f"on a {size} node; raise cluster.nodeSize")
    duration = parse_duration(doc.get("duration", "24h"), "duration")
    if duration <= 0:
        raise TraceError("duration: must be positive")
    name = doc.get("name") or (Path(source).stem if not isinstance(source, dict) else "trace")
    return Trace(name=str(name), duration=duration, workloads=workloads, cluster=shape,
                 description=str(doc.get("description", "")))
