"""Node pools as the user declares them: ``skube up --node-pool NAME=COUNTxSIZE[:MIN-MAX]``
(repeatable) merged with the ``nodePools:`` list of ``DATA_DIR/config.yaml``.

A SIZE is ``<vCPU>c<GiB>g`` (``4c8g`` = 4 vCPU, 8 GiB; fractions allowed: ``0.5c1g``).
Every error is a :class:`PoolError` whose message names the pool and what to fix.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from ..billing.specs import CpuMemory

POOL_LABEL = "skube.io/node-pool"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
DEFAULT_BOOT_DELAY = 60.0
DEFAULT_IDLE = 600.0
DEFAULT_EVICTION_TIMEOUT = 120.0
PODS_PER_NODE = 110

_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)c(\d+(?:\.\d+)?)g")
_FLAG = re.compile(r"(?P<name>[^=]+)=(?P<count>\d+)x(?P<size>[^:]+)(?::(?P<min>\d+)-(?P<max>\d+))?")


class PoolError(ValueError):
    """A node pool is declared wrongly (the message says how to fix it)."""


@dataclass(frozen=True)
class Size(CpuMemory):
    """A node size: milli-vCPU and MiB."""
    cpu_m: int
    memory_mib: int

    def __str__(self) -> str:
        return f"{_num(self.vcpu)}c{_num(self.memory_gib)}g"

    def capacity(self) -> dict[str, str]:
        """The Node's capacity (= allocatable) for this size."""
        cpu = str(self.cpu_m // 1000) if self.cpu_m % 1000 == 0 else f"{self.cpu_m}m"
        return {"cpu": cpu, "memory": f"{self.memory_mib}Mi", "pods": str(PODS_PER_NODE),
                "ephemeral-storage": "100Gi"}


def _num(x: float) -> str:
    return str(int(x)) if x == int(x) else f"{x:g}"


def parse_size(text: str) -> Size:
    """``4c8g`` → Size(4000, 8192)."""
    m = _SIZE.fullmatch(str(text).strip().lower())
    if not m:
        raise PoolError(f"size {text!r}: expected <vCPU>c<GiB>g, e.g. 4c8g (4 vCPU, 8 GiB)")
    cpu_m, mem = round(float(m.group(1)) * 1000), round(float(m.group(2)) * 1024)
    if cpu_m <= 0 or mem <= 0:
        raise PoolError(f"size {text!r}: vCPU and memory must be positive")
    return Size(cpu_m, mem)


@dataclass(frozen=True)
class PoolSpec:
    """One pool: ``count`` nodes at start, kept within ``[min, max]`` by the autoscaler."""
    name: str
    size: Size
    count: int
    min: int
    max: int
    boot_delay: float = DEFAULT_BOOT_DELAY            # seconds (skube.clock) from request to join
    idle_seconds: float = DEFAULT_IDLE                 # unneeded this long → scale down
    provider: str | None = None                        # None: skube up's --provider
    eviction_timeout: float = DEFAULT_EVICTION_TIMEOUT  # give up a drain after this long

    @property
    def instance_type(self) -> str:
        return str(self.size)

    @property
    def autoscaled(self) -> bool:
        return self.min != self.max

    def validate(self) -> "PoolSpec":
        where = f"node pool {self.name!r}"
        if not _NAME.fullmatch(self.name):
            raise PoolError(f"{where}: the name must be lowercase letters, digits and '-' "
                            f"(a DNS label of at most 42 characters)")
        if not 0 <= self.min <= self.max:
            raise PoolError(f"{where}: min {self.min} and max {self.max} must satisfy 0 <= min <= max")
        if not self.min <= self.count <= self.max:
            raise PoolError(f"{where}: count {self.count} must lie within min-max {self.min}-{self.max}")
        if self.boot_delay < 0 or self.idle_seconds < 0 or self.eviction_timeout < 0:
            raise PoolError(f"{where}: bootDelaySeconds, scaleDownIdleSeconds and "
                            f"evictionTimeoutSeconds must not be negative")
        if self.provider not in (None, "local", "mock"):
            raise PoolError(f"{where}: provider {self.provider!r} is not one of local, mock")
        return self


def parse_flag(text: str) -> PoolSpec:
    """``general=2x4c8g`` or ``general=2x4c8g:1-5`` (no range: min = max = count)."""
    m = _FLAG.fullmatch(text.strip())
    if not m:
        raise PoolError(f"--node-pool {text!r}: expected NAME=COUNTxSIZE[:MIN-MAX], "
                        f"e.g. general=2x4c8g or general=2x4c8g:1-5")
    count = int(m.group("count"))
    lo = int(m.group("min")) if m.group("min") is not None else count
    hi = int(m.group("max")) if m.group("max") is not None else count
    try:
        size = parse_size(m.group("size"))
    except PoolError as e:
        raise PoolError(f"--node-pool {text!r}: {e}") from None
    return PoolSpec(m.group("name"), size, count, lo, hi).validate()


_KEYS = {"name", "size", "count", "min", "max", "bootDelaySeconds", "scaleDownIdleSeconds",
         "evictionTimeoutSeconds", "provider"}


def from_config(doc: dict) -> PoolSpec:
    """One entry of ``nodePools:`` in config.yaml."""
    if not isinstance(doc, dict) or not doc.get("name"):
        raise PoolError(f"nodePools entry {doc!r}: a mapping with at least name and size")
    name = str(doc["name"])
    unknown = sorted(set(doc) - _KEYS)
    if unknown:
        raise PoolError(f"node pool {name!r}: unknown keys {unknown}; known: {sorted(_KEYS)}")
    if "size" not in doc:
        raise PoolError(f"node pool {name!r}: size is required (e.g. size: 4c8g)")
    try:
        size = parse_size(doc["size"])
        count = int(doc.get("count", doc.get("min", 1)))
        lo = int(doc.get("min", count))
        hi = int(doc.get("max", max(count, lo)))
        return PoolSpec(name, size, count, lo, hi,
                        boot_delay=float(doc.get("bootDelaySeconds", DEFAULT_BOOT_DELAY)),
                        idle_seconds=float(doc.get("scaleDownIdleSeconds", DEFAULT_IDLE)),
                        provider=doc.get("provider"),
                        eviction_timeout=float(doc.get("evictionTimeoutSeconds",
                                                       DEFAULT_EVICTION_TIMEOUT))).validate()
    except PoolError as e:
        raise PoolError(f"node pool {name!r}: {e}" if name not in str(e) else str(e)) from None
    except (TypeError, ValueError) as e:
        raise PoolError(f"node pool {name!r}: {e}") from None


def merge(flags: list[str], config_pools: list | None) -> list[PoolSpec]:
    """Pools of config.yaml, then of the flags. A flag naming a configured pool sets its
    size, count and (when given) min-max; the config's timings and provider stay."""
    if config_pools is not None and not isinstance(config_pools, list):
        raise PoolError("config.yaml nodePools: expected a list of pools")
    pools: dict[str, PoolSpec] = {}
    for entry in config_pools or []:
        p = from_config(entry)
        if p.name in pools:
            raise PoolError(f"node pool {p.name!r} is declared twice in config.yaml nodePools")
        pools[p.name] = p
    seen: set[str] = set()
    for text in flags:
        f = parse_flag(text)
        if f.name in seen:
            raise PoolError(f"--node-pool {f.name!r} is given twice")
        seen.add(f.name)
        base = pools.get(f.name)
        has_range = ":" in text
        if base is None:
            pools[f.name] = f
        else:
            lo, hi = (f.min, f.max) if has_range else (min(base.min, f.count), max(base.max, f.count))
            pools[f.name] = replace(base, size=f.size, count=f.count, min=lo, max=hi).validate()
    return list(pools.values())


AGENT_MODES = {"process": False, "inProcess": True}


def agents_in_process(config: dict | None) -> bool:
    """config.yaml ``nodePoolAgents``: ``process`` (default; one process per node) or
    ``inProcess`` (inside ``skube up``: many mock nodes, e.g. for the cost simulator)."""
    mode = (config or {}).get("nodePoolAgents", "process")
    if mode not in AGENT_MODES:
        raise PoolError(f"config.yaml nodePoolAgents: {mode!r} is not one of {', '.join(AGENT_MODES)}")
    return AGENT_MODES[mode]


def read_config(data_dir) -> dict:
    """DATA_DIR/config.yaml as a mapping (empty when absent)."""
    path = Path(data_dir) / "config.yaml"
    if not path.exists():
        return {}
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise PoolError(f"{path}: invalid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise PoolError(f"{path}: expected a mapping at the top level")
    return doc


__all__ = ["agents_in_process", "read_config", "PoolSpec", "Size", "PoolError", "parse_size", "parse_flag", "from_config", "merge",
           "POOL_LABEL", "INSTANCE_TYPE_LABEL"]
