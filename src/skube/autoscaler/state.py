"""The pools' nodes as ``skube up`` left them (``DATA_DIR/nodepools.json``), so a restart
resumes them: every node still listed gets its agent back, with the same IP slot."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_FILE = "nodepools.json"


@dataclass
class NodeRecord:
    name: str
    pool: str
    slot: int
    requested_at: float           # skube.clock seconds: when billing began
    size: str = ""
    provider: str = "local"
    joined: bool = False          # boot delay over, agent started at least once
    pid: int = 0                  # the agent's process id (to stop a stray one after a crash)


@dataclass
class PoolState:
    nodes: dict[str, NodeRecord] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)    # pool → last node number

    @classmethod
    def load(cls, data_dir: Path) -> "PoolState":
        path = Path(data_dir) / STATE_FILE
        if not path.exists():
            return cls()
        doc = json.loads(path.read_text() or "{}")
        return cls({n["name"]: NodeRecord(**n) for n in doc.get("nodes", [])},
                   dict(doc.get("counters") or {}))

    def save(self, data_dir: Path) -> None:
        """Atomically (write, fsync, rename)."""
        path = Path(data_dir) / STATE_FILE
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump({"nodes": [asdict(n) for n in self.nodes.values()],
                       "counters": self.counters}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def in_pool(self, pool: str) -> list[NodeRecord]:
        return [n for n in self.nodes.values() if n.pool == pool]

    def next_name(self, pool: str) -> str:
        self.counters[pool] = self.counters.get(pool, 0) + 1
        return f"{pool}-{self.counters[pool]}"

    def free_slot(self) -> int:
        used = {n.slot for n in self.nodes.values()}
        slot = 1
        while slot in used:
            slot += 1
        return slot


__all__ = ["PoolState", "NodeRecord", "STATE_FILE"]
