"""Instance spec tables and rounding: what size of instance a pod is billed as.

A serverless provider sells a fixed menu of instance sizes (vCPU, memory). A pod
asks for resources; the provider rounds the pod's total up to the smallest size
on the menu that covers it, and bills that size. A :class:`SpecTable` holds one
menu plus the rules that turn a pod spec into the amount to round:

* ``basis``: which of a container's figures counts. ``limits`` (Alibaba ECI:
  limits win over requests where both are set; requests where no limit) or
  ``requests`` (AWS Fargate: the requests, i.e. the reservations; limits only
  where a container has no request — which the API server's defaulting already
  does).
* the pod total is what Kubernetes schedules on (its "effective request"):
  ``max(largest init container, sum of app containers)``; sidecar init
  containers (``restartPolicy: Always``) count with the app containers. A
  pod-level ``spec.resources`` wins where it is set.
* ``overhead_mib`` is added to the memory before rounding (Fargate: 256 MiB for
  kubelet, kube-proxy and containerd).
* ``default``: the size used when the pod sets neither CPU nor memory (ECI:
  2 vCPU / 4 GiB). Without one, the smallest size that covers the overhead.

Rounding takes the smallest vCPU step that has a memory size covering the
memory asked for, then the smallest such memory: 7 vCPU / 13 GiB on ECI (with
the 8 vCPU / 14 GiB size sold in Hangzhou) becomes 8 vCPU / 14 GiB; 1 vCPU /
8 GiB on Fargate (+256 MiB) becomes 2 vCPU / 9 GB. A pod larger than every size
is billed for exactly what it asked (``Spec.rounded`` is False).

Sizes are integers: milli-vCPU and MiB. Tables load from plain dicts (YAML)::

    name: eci
    basis: limits            # or requests
    overheadMiB: 0
    default: {vcpu: 2, memoryGiB: 4}
    sizes:
      - {vcpu: 0.25, memoryGiB: [0.5, 1]}
      - {vcpu: 2, memoryGiB: {min: 4, max: 16, step: 1}}

Sources of the built-in tables: ``docs/billing.md``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

from ..api.quantity import parse_quantity

MIB = 1024 * 1024


class CpuMemory:
    """``vcpu`` and ``memory_gib`` of anything sized by ``cpu_m`` (milli-vCPU) and
    ``memory_mib``: instance specs, ledger runs, node sizes."""

    @property
    def vcpu(self) -> float:
        return self.cpu_m / 1000

    @property
    def memory_gib(self) -> float:
        return self.memory_mib / 1024


@dataclass(frozen=True, order=True)
class Spec(CpuMemory):
    """One instance size: ``cpu_m`` milli-vCPU, ``memory_mib`` MiB."""
    cpu_m: int
    memory_mib: int
    rounded: bool = field(default=True, compare=False)

    def __str__(self) -> str:
        return f"{_num(self.vcpu)} vCPU / {_num(self.memory_gib)} GiB"


def _num(x: float) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".")


@dataclass
class PodResources:
    """The amount a pod asks for, before rounding (milli-vCPU, bytes)."""
    cpu_m: int = 0
    memory_bytes: int = 0


@dataclass
class SpecTable:
    name: str
    sizes: list[Spec]                    # sorted by (cpu_m, memory_mib)
    basis: str = "limits"                # "limits" or "requests"
    overhead_mib: int = 0
    default: Spec | None = None

    def __post_init__(self) -> None:
        if self.basis not in ("limits", "requests"):
            raise ValueError(f"spec table {self.name!r}: basis must be limits or requests, "
                             f"not {self.basis!r}")
        if not self.sizes:
            raise ValueError(f"spec table {self.name!r} has no sizes")
        self.sizes = sorted(set(self.sizes))

    # ---- rounding -----------------------------------------------------------------------

    def round_up(self, cpu_m: int, memory_bytes: int) -> Spec:
        """The smallest size covering ``cpu_m`` milli-vCPU and ``memory_bytes`` (overhead
        already included); the request itself (``rounded=False``) if none does."""
        for s in self.sizes:
            if s.cpu_m >= cpu_m and s.memory_mib * MIB >= memory_bytes:
                return s
        return Spec(cpu_m, -(-memory_bytes // MIB), rounded=False)

    def pod_resources(self, pod: dict) -> PodResources:
        """What ``pod`` asks for under this table's basis (no overhead, no rounding)."""
        return pod_resources(pod, self.basis)

    def spec_for_pod(self, pod: dict, *, strict: bool = True) -> Spec:
        """The size ``pod`` is billed as: the first size of its ``eci-use-specs`` list
        that fits it, else its amount rounded up. Raises :class:`SpecUnsatisfiable`
        when the list has no fitting size (``strict=False``: round up instead)."""
        r = self.pod_resources(pod)
        wanted = ((pod.get("metadata") or {}).get("annotations") or {}).get(USE_SPECS_ANNOTATION)
        if wanted is not None:
            try:
                return self.first_acceptable(wanted, r)
            except SpecUnsatisfiable:
                if strict:
                    raise
        if r.cpu_m == 0 and r.memory_bytes == 0 and self.default is not None:
            return self.default
        return self.round_up(r.cpu_m, r.memory_bytes + self.overhead_mib * MIB)

    def first_acceptable(self, wanted: str, r: PodResources) -> Spec:
        """The first size listed in ``wanted`` (an ``eci-use-specs`` value) that this
        table sells and that covers ``r`` plus the overhead."""
        need_mem = r.memory_bytes + self.overhead_mib * MIB
        entries = parse_use_specs(wanted)
        skipped = []
        for text, spec in entries:
            if spec is None:
                skipped.append(f"{text}: ECS instance types are not sold by spec table {self.name!r}")
            elif spec not in self.sizes:
                skipped.append(f"{text}: not a size of spec table {self.name!r}")
            elif spec.cpu_m < r.cpu_m or spec.memory_mib * MIB < need_mem:
                skipped.append(f"{text}: smaller than the pod's {_num(r.cpu_m / 1000)} vCPU / "
                               f"{_num(need_mem / MIB / 1024)} GiB")
            else:
                return spec
        raise SpecUnsatisfiable(f"no instance spec in {USE_SPECS_ANNOTATION}={wanted!r} fits the pod: "
                                + "; ".join(skipped))

    # ---- (de)serialisation --------------------------------------------------------------

    @classmethod
    def from_dict(cls, doc: dict) -> "SpecTable":
        name = str(doc.get("name") or "custom")
        sizes: list[Spec] = []
        for entry in doc.get("sizes") or []:
            cpu_m = _milli(entry["vcpu"])
            mem = entry.get("memoryGiB")
            if isinstance(mem, dict):
                lo, hi, step = (Fraction(str(mem[k])) for k in ("min", "max", "step"))
                if step <= 0 or hi < lo:
                    raise ValueError(f"spec table {name!r}: bad memory range {mem}")
                values, v = [], lo
                while v <= hi:
                    values.append(v)
                    v += step
            elif isinstance(mem, (list, tuple)):
                values = [Fraction(str(v)) for v in mem]
            else:
                values = [Fraction(str(mem))]
            sizes.extend(Spec(cpu_m, _mib(v)) for v in values)
        default = doc.get("default")
        return cls(name=name, sizes=sizes, basis=doc.get("basis", "limits"),
                   overhead_mib=int(doc.get("overheadMiB", 0)),
                   default=Spec(_milli(default["vcpu"]), _mib(Fraction(str(default["memoryGiB"]))))
                   if default else None)

    def to_dict(self) -> dict:
        by_cpu: dict[int, list[float]] = {}
        for s in self.sizes:
            by_cpu.setdefault(s.cpu_m, []).append(s.memory_gib)
        doc = {"name": self.name, "basis": self.basis, "overheadMiB": self.overhead_mib,
               "sizes": [{"vcpu": c / 1000, "memoryGiB": m} for c, m in by_cpu.items()]}
        if self.default is not None:
            doc["default"] = {"vcpu": self.default.vcpu, "memoryGiB": self.default.memory_gib}
        return doc


def _milli(v) -> int:
    return int(Fraction(str(v)) * 1000)


def _mib(gib: Fraction) -> int:
    return int(gib * 1024)


# ---- pod annotations: the one place their names live ---------------------------------------

# Alibaba ECI: up to 5 acceptable specs in priority order, "2-4Gi" (vCPU-memory) or an ECS type.
USE_SPECS_ANNOTATION = "k8s.aliyun.com/eci-use-specs"
MAX_USE_SPECS = 5
# Alibaba ECI: run (and bill) the pod as a spot instance.
SPOT_STRATEGY_ANNOTATION = "k8s.aliyun.com/eci-spot-strategy"
SPOT_STRATEGIES = ("SpotAsPriceGo", "SpotWithPriceLimit")

_USE_SPEC = re.compile(r"(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)Gi")


class SpecUnsatisfiable(ValueError):
    """The pod's list of acceptable specs is malformed or has no size that fits it."""


def parse_use_specs(value: str) -> list[tuple[str, Spec | None]]:
    """``"2-4Gi,4-8Gi,ecs.c6.xlarge"`` -> ``[(text, Spec | None for an ECS type), …]``."""
    items = [v.strip() for v in str(value).split(",") if v.strip()]
    if not items:
        raise SpecUnsatisfiable(f"{USE_SPECS_ANNOTATION} is empty: list specs like 2-4Gi,4-8Gi")
    if len(items) > MAX_USE_SPECS:
        raise SpecUnsatisfiable(f"{USE_SPECS_ANNOTATION} lists {len(items)} specs; at most "
                                f"{MAX_USE_SPECS} are allowed")
    out: list[tuple[str, Spec | None]] = []
    for text in items:
        if text.startswith("ecs."):
            out.append((text, None))
            continue
        m = _USE_SPEC.fullmatch(text)
        if not m:
            raise SpecUnsatisfiable(f"{USE_SPECS_ANNOTATION}: {text!r} is neither <vCPU>-<memory>Gi "
                                    f"(e.g. 2-4Gi) nor an ECS instance type (ecs.…)")
        out.append((text, Spec(_milli(m.group(1)), _mib(Fraction(m.group(2))))))
    return out


def is_spot(pod: dict) -> bool:
    """Whether ``pod`` asks to run as a spot instance."""
    return ((pod.get("metadata") or {}).get("annotations") or {}).get(SPOT_STRATEGY_ANNOTATION) \
        in SPOT_STRATEGIES


# ---- the pod's effective request ------------------------------------------------------------

def _container_amount(c: dict, basis: str) -> tuple[int, int]:
    res = c.get("resources") or {}
    return _amount(res, basis)


def _amount(res: dict, basis: str) -> tuple[int, int]:
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    first, second = (lim, req) if basis == "limits" else (req, lim)
    out = []
    for name in ("cpu", "memory"):
        raw = first.get(name, second.get(name))
        if raw is None:
            out.append(0)
            continue
        q = parse_quantity(raw)
        out.append(_ceil(q * 1000) if name == "cpu" else _ceil(q))
    return out[0], out[1]


def _ceil(q: Fraction) -> int:
    return -(-q.numerator // q.denominator)


def pod_resources(pod: dict, basis: str = "limits") -> PodResources:
    """The pod's total: max(largest init container, app containers + sidecars), per
    resource (upstream's effective request), or its pod-level ``spec.resources``."""
    spec = pod.get("spec") or {}
    pod_level = _amount(spec.get("resources") or {}, basis) if spec.get("resources") else (0, 0)
    totals = []
    for i in range(2):
        app = sum(_container_amount(c, basis)[i] for c in spec.get("containers") or [])
        sidecars = 0
        init_peak = 0
        for c in spec.get("initContainers") or []:
            v = _container_amount(c, basis)[i]
            if c.get("restartPolicy") == "Always":      # a sidecar: runs beside the app
                sidecars += v
            else:
                init_peak = max(init_peak, sidecars + v)
        total = max(app + sidecars, init_peak)
        totals.append(pod_level[i] or total)
    return PodResources(totals[0], totals[1])


# ---- built-in tables ----------------------------------------------------------------------

ECI = SpecTable.from_dict({
    # Alibaba Cloud ECI, "Specify vCPU and memory to create an instance": sizes sold in all
    # regions, plus 8 vCPU / 14 GiB, the size of the documented Hangzhou example
    # (7 vCPU / 13 GiB -> 8 vCPU / 14 GiB). Limits win over requests; no vCPU/memory at
    # all -> 2 vCPU / 4 GiB.
    "name": "eci", "basis": "limits", "overheadMiB": 0,
    "default": {"vcpu": 2, "memoryGiB": 4},
    "sizes": [
        {"vcpu": 0.25, "memoryGiB": [0.5, 1]},
        {"vcpu": 0.5, "memoryGiB": [1, 2]},
        {"vcpu": 1, "memoryGiB": [2, 4, 8]},
        {"vcpu": 2, "memoryGiB": [1, 2, 4, 8, 16]},
        {"vcpu": 4, "memoryGiB": [2, 4, 8, 16, 32]},
        {"vcpu": 8, "memoryGiB": [4, 8, 14, 16, 32, 64]},
        {"vcpu": 12, "memoryGiB": [12, 24, 48, 96]},
        {"vcpu": 16, "memoryGiB": [16, 32, 64, 128]},
        {"vcpu": 24, "memoryGiB": [24, 48, 96, 192]},
        {"vcpu": 32, "memoryGiB": [32, 64, 128, 256]},
        {"vcpu": 52, "memoryGiB": [96, 192, 384]},
        {"vcpu": 64, "memoryGiB": [128, 256, 512]},
    ],
})

FARGATE = SpecTable.from_dict({
    # AWS EKS Fargate, "Understand Fargate Pod configuration details": pod size =
    # max(largest init container, sum of app containers) + 256 MB, rounded up to
    # these vCPU/memory combinations; nothing requested -> 0.25 vCPU / 0.5 GB.
    "name": "fargate", "basis": "requests", "overheadMiB": 256,
    "sizes": [
        {"vcpu": 0.25, "memoryGiB": [0.5, 1, 2]},
        {"vcpu": 0.5, "memoryGiB": [1, 2, 3, 4]},
        {"vcpu": 1, "memoryGiB": [2, 3, 4, 5, 6, 7, 8]},
        {"vcpu": 2, "memoryGiB": {"min": 4, "max": 16, "step": 1}},
        {"vcpu": 4, "memoryGiB": {"min": 8, "max": 30, "step": 1}},
        {"vcpu": 8, "memoryGiB": {"min": 16, "max": 60, "step": 4}},
        {"vcpu": 16, "memoryGiB": {"min": 32, "max": 120, "step": 8}},
    ],
})

BUILTIN_TABLES: dict[str, SpecTable] = {"eci": ECI, "fargate": FARGATE}


def spec_table(doc: str | dict | None) -> SpecTable:
    """A built-in table by name (``eci``, ``fargate``), a table from a dict, or ECI."""
    if doc is None:
        return ECI
    if isinstance(doc, str):
        try:
            return BUILTIN_TABLES[doc]
        except KeyError:
            raise ValueError(f"unknown spec table {doc!r}; built in: {sorted(BUILTIN_TABLES)}") from None
    return SpecTable.from_dict(doc)


__all__ = ["Spec", "SpecTable", "PodResources", "pod_resources", "spec_table", "ECI", "FARGATE",
           "BUILTIN_TABLES", "USE_SPECS_ANNOTATION", "SPOT_STRATEGY_ANNOTATION", "SPOT_STRATEGIES",
           "SpecUnsatisfiable", "parse_use_specs", "is_spot"]
