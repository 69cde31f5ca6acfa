"""Serverless admission: decide, per new pod, whether and how it may use the virtual
node (an elastic scheduling policy, :mod:`skube.scheduler.policies`), and prepare the
pod for it — configurable per namespace and label selector.

Config (``DATA_DIR/config.yaml``, key ``serverless``; every key optional)::

    serverless:
      default: true             # pods not matched by a rule may use the virtual node
      policy: normalNodePrefer  # their policy (``skube up --policy NAME`` overrides it)
      maxWaitSeconds: 0         # normalNodePrefer: wait this long for an ordinary node
      rules:                    # first match wins
      - namespace: kube-system  # optional; omitted = any namespace
        selector: "tier=db"     # optional label selector; omitted = any pod
        enabled: false          # = policy normalNodeOnly (never the virtual node)
      - namespace: web
        policy: resourcePolicy  # units in order; scale-in in reverse order
        units:
        - {nodeSelector: {skube.io/node-pool: general}, max: 10}
        - {virtualNode: true}

A pod overrides the rules with, in this order: the annotation
``scheduling.skube.io/policy: NAME``; ECI's annotation
``alibabacloud.com/burst-resource`` (``eci``: normalNodePrefer, ``eci_only``:
virtualNodeOnly, empty: normalNodeOnly); ECI's label ``alibabacloud.com/eci``
(``"true"``: virtualNodeOnly, ``"false"``: normalNodeOnly).

Every policy but normalNodeOnly adds the virtual node's toleration; virtualNodeOnly
also adds ``nodeSelector: {type: virtual-kubelet}``. Policies the scheduler acts on
are recorded on the pod as annotations (see :mod:`skube.scheduler.policies`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..api import errors, selectors
from ..scheduler import policies
from ..scheduler.policies import (BURST_RESOURCE_ANNOTATION, ECI_LABEL, FAIR, NORMAL_NODE_ONLY,
                                  NORMAL_NODE_PREFER, POLICY_ANNOTATION, RESOURCE_POLICY,
                                  RESOURCE_POLICY_ANNOTATION, VIRTUAL_NODE_LABEL, VIRTUAL_NODE_ONLY,
                                  Policy)

VIRTUAL_NODE_TAINT_KEY = "virtual-kubelet.io/provider"
TOLERATION = {"key": VIRTUAL_NODE_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
_BURST_VALUES = {"eci": NORMAL_NODE_PREFER, "eci_only": VIRTUAL_NODE_ONLY, "": NORMAL_NODE_ONLY}
_ECI_LABEL_VALUES = {"true": VIRTUAL_NODE_ONLY, "false": NORMAL_NODE_ONLY}


@dataclass
class Rule:
    policy: Policy
    namespace: str | None = None
    selector: selectors.LabelSelector | None = None

    @property
    def enabled(self) -> bool:
        return self.policy.name != NORMAL_NODE_ONLY

    def matches(self, namespace: str, labels: dict) -> bool:
        if self.namespace is not None and self.namespace != namespace:
            return False
        return self.selector is None or self.selector.matches(labels)


def _rule_policy(doc: dict, default: Policy, path: str) -> Policy:
    """A rule's policy: its own ``policy``, else ``enabled`` (true: the cluster's
    default policy, or fair when that keeps pods off the virtual node)."""
    if doc.get("policy"):
        return Policy.from_doc(doc, path)
    if not bool(doc.get("enabled", True)):
        return Policy(NORMAL_NODE_ONLY)
    return default if default.uses_virtual_node else Policy(FAIR)


@dataclass
class ServerlessAdmission:
    default: bool = False
    rules: list[Rule] = field(default_factory=list)
    default_policy: Policy | None = None

    def __post_init__(self):
        if self.default_policy is None:
            self.default_policy = Policy(FAIR if self.default else NORMAL_NODE_ONLY)

    @classmethod
    def from_config(cls, doc: dict | None, *, default: bool = False,
                    policy: str | None = None) -> "ServerlessAdmission":
        """From the ``serverless`` config section; ``policy`` (``skube up --policy``)
        replaces the section's default policy. Raises ValueError on a bad config."""
        doc = dict(doc or {})
        if not isinstance(doc, dict):
            raise ValueError("serverless: expected a mapping")
        enabled = bool(doc.get("default", default))
        if policy:
            doc["policy"] = policy
        if doc.get("policy"):
            if doc["policy"] == RESOURCE_POLICY and not doc.get("units"):
                raise ValueError("serverless.units: the resourcePolicy policy needs its units in "
                                 "DATA_DIR/config.yaml (serverless.units)")
            top = Policy.from_doc(doc, "serverless")
        else:
            top = Policy(FAIR if enabled else NORMAL_NODE_ONLY)
        rules = []
        for i, r in enumerate(doc.get("rules") or []):
            path = f"serverless.rules[{i}]"
            if not isinstance(r, dict):
                raise ValueError(f"{path}: expected a mapping")
            sel = r.get("selector")     # also: which pods count towards a resourcePolicy unit's max
            rules.append(Rule(policy=_rule_policy(r, top, path), namespace=r.get("namespace"),
                              selector=selectors.parse_label_selector(sel) if sel else None))
        return cls(default=top.uses_virtual_node, rules=rules, default_policy=top)

    def policy_for(self, namespace: str, labels: dict) -> Policy:
        """The configured policy of a pod (first matching rule, else the default)."""
        for r in self.rules:
            if r.matches(namespace, labels):
                return r.policy
        return self.default_policy

    def enabled_for(self, namespace: str, labels: dict) -> bool:
        return self.policy_for(namespace, labels).uses_virtual_node

    def resolve(self, pod: dict) -> Policy:
        """The pod's policy: its own annotations/labels first, then the config. Raises a
        422 APIError for a value admission does not understand."""
        meta = pod.get("metadata") or {}
        ann = meta.get("annotations") or {}
        labels = meta.get("labels") or {}
        configured = self.policy_for(meta.get("namespace") or "default", labels)
        name = ann.get(POLICY_ANNOTATION)
        if name is not None:
            return _own_policy(pod, name, ann, configured)
        burst = ann.get(BURST_RESOURCE_ANNOTATION)
        if burst is not None:
            if burst not in _BURST_VALUES:
                raise _invalid(pod, f"metadata.annotations[{BURST_RESOURCE_ANNOTATION}]", burst,
                               'must be "eci", "eci_only" or empty')
            return _named(_BURST_VALUES[burst], configured)
        eci = labels.get(ECI_LABEL)
        if eci in _ECI_LABEL_VALUES:
            return _named(_ECI_LABEL_VALUES[eci], configured)
        return configured

    def admit_pod(self, pod: dict) -> None:
        policy = self.resolve(pod)
        if not policy.uses_virtual_node:
            return
        spec = pod.setdefault("spec", {})
        tolerations = spec.setdefault("tolerations", [])
        if not any(t.get("key") == VIRTUAL_NODE_TAINT_KEY and t.get("operator") == "Exists"
                   for t in tolerations):
            tolerations.append(dict(TOLERATION))
        if policy.name == VIRTUAL_NODE_ONLY:
            spec.setdefault("nodeSelector", {})[VIRTUAL_NODE_LABEL[0]] = VIRTUAL_NODE_LABEL[1]
        if policy.name != FAIR:
            meta = pod.setdefault("metadata", {})
            meta.setdefault("annotations", {}).update(policy.annotations())


def check_cluster_config(path, policy: str | None = None) -> None:
    """Raise ValueError (saying what to fix) if the ``serverless`` section of the cluster
    config at ``path`` (absent: fine), with ``policy`` as the default, is not valid."""
    import yaml
    from pathlib import Path
    path = Path(path)
    doc = yaml.safe_load(path.read_text()) if path.exists() else None
    section = doc.get("serverless") if isinstance(doc, dict) else None
    try:
        ServerlessAdmission.from_config(section, default=True, policy=policy)
    except ValueError as e:
        raise ValueError(f"{path}: {e}" if path.exists() else str(e)) from None


def _named(name: str, configured: Policy) -> Policy:
    """Policy ``name`` for a pod that asked for it; the configured one's settings
    (wait, units) carry over when it is the same policy."""
    return configured if configured.name == name else Policy(name)


def _own_policy(pod: dict, name: str, ann: dict, configured: Policy) -> Policy:
    path = f"metadata.annotations[{POLICY_ANNOTATION}]"
    if name not in policies.POLICIES:
        raise _invalid(pod, path, name, f"must be one of {', '.join(policies.POLICIES)}")
    if name != RESOURCE_POLICY:
        wait = ann.get(policies.MAX_WAIT_ANNOTATION)
        if wait is None:
            return _named(name, configured)
        try:
            return Policy.from_doc({"policy": name, "maxWaitSeconds": float(wait)})
        except ValueError as e:
            raise _invalid(pod, f"metadata.annotations[{policies.MAX_WAIT_ANNOTATION}]", wait,
                           "must be a non-negative number") from e
    raw = ann.get(RESOURCE_POLICY_ANNOTATION)
    if raw is None:
        if configured.name == RESOURCE_POLICY:
            return configured
        raise _invalid(pod, f"metadata.annotations[{RESOURCE_POLICY_ANNOTATION}]", None,
                       "the resourcePolicy policy needs its units here, as JSON "
                       '{"units": [...]}, or in the cluster config')
    import orjson
    try:
        doc = orjson.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError("expected a JSON object")
        return Policy.from_doc({**doc, "policy": RESOURCE_POLICY}, "resource-policy")
    except ValueError as e:
        raise _invalid(pod, f"metadata.annotations[{RESOURCE_POLICY_ANNOTATION}]", raw, str(e)) from e


def _invalid(pod: dict, path: str, value, detail: str) -> errors.APIError:
    from ..api.selectors import go_quote
    shown = "null" if value is None else go_quote(str(value))
    msg = f"Invalid value: {shown}: {detail}"
    return errors.invalid("Pod", (pod.get("metadata") or {}).get("name") or "",
                          [errors.cause(path, msg)])
