"""Serverless admission: every pod tolerates the virtual node's taint, so it can run
as an elastic container instance — configurable per namespace and label selector.

Config (``DATA_DIR/config.yaml``, key ``serverless``)::

    serverless:
      default: true             # pods not matched by a rule
      rules:                    # first match wins
      - namespace: kube-system  # optional; omitted = any namespace
        selector: "tier=db"     # optional label selector; omitted = any pod
        enabled: false
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..api import selectors

VIRTUAL_NODE_TAINT_KEY = "virtual-kubelet.io/provider"
TOLERATION = {"key": VIRTUAL_NODE_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}


@dataclass
class Rule:
    enabled: bool
    namespace: str | None = None
    selector: selectors.LabelSelector | None = None

    def matches(self, namespace: str, labels: dict) -> bool:
        if self.namespace is not None and self.namespace != namespace:
            return False
        return self.selector is None or self.selector.matches(labels)


@dataclass
class ServerlessAdmission:
    default: bool = False
    rules: list[Rule] = field(default_factory=list)

    @classmethod
    def from_config(cls, doc: dict | None, *, default: bool = False) -> "ServerlessAdmission":
        doc = doc or {}
        rules = []
        for r in doc.get("rules") or []:
            sel = r.get("selector")
            rules.append(Rule(enabled=bool(r.get("enabled", True)), namespace=r.get("namespace"),
                              selector=selectors.parse_label_selector(sel) if sel else None))
        return cls(default=bool(doc.get("default", default)), rules=rules)

    def enabled_for(self, namespace: str, labels: dict) -> bool:
        for r in self.rules:
            if r.matches(namespace, labels):
                return r.enabled
        return self.default

    def admit_pod(self, pod: dict) -> None:
        meta = pod.get("metadata") or {}
        if not self.enabled_for(meta.get("namespace", "default"), meta.get("labels") or {}):
            return
        tolerations = pod.setdefault("spec", {}).setdefault("tolerations", [])
        if not any(t.get("key") == VIRTUAL_NODE_TAINT_KEY and t.get("operator") == "Exists"
                   for t in tolerations):
            tolerations.append(dict(TOLERATION))
