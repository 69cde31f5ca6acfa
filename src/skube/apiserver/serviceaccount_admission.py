"""The ServiceAccount admission plugin (upstream plugin/pkg/admission/serviceaccount),
applied to pods on create only.

A new pod gets ``serviceAccountName`` (``default`` when empty); the ServiceAccount must
exist or the pod is refused with 403 (the ``default`` account is looked up 10 times,
100–200 ms apart, because the serviceaccount controller creates it just after the
namespace). Unless ``automountServiceAccountToken`` (the pod's, else the account's) is
false, every init and regular container without a mount at
``/var/run/secrets/kubernetes.io/serviceaccount`` mounts the projected volume
``kube-api-access-<5 chars>`` there read-only: a bound token (``token``, 3607 s), the
cluster CA (ConfigMap ``kube-root-ca.crt``, key ``ca.crt``) and the namespace. A pod
without ``imagePullSecrets`` takes its account's.
"""
from __future__ import annotations

import asyncio
import random

from ..api import errors
from .objects import generate_name

PLUGIN_NAME = "ServiceAccount"
DEFAULT_SERVICE_ACCOUNT = "default"
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
TOKEN_EXPIRATION_SECONDS = 3607      # upstream's WarnOnlyBoundTokenExpirationSeconds
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
PROJECTED_DEFAULT_MODE = 420         # 0644
DEFAULT_ACCOUNT_ATTEMPTS = 10


def token_volume_source() -> dict:
    """The projected source of the service-account volume, as upstream writes it."""
    return {"defaultMode": PROJECTED_DEFAULT_MODE, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}


def should_automount(sa: dict, pod: dict) -> bool:
    """The pod's automountServiceAccountToken wins, then the account's; default true."""
    own = (pod.get("spec") or {}).get("automountServiceAccountToken")
    if own is not None:
        return bool(own)
    sa_pref = sa.get("automountServiceAccountToken")
    return True if sa_pref is None else bool(sa_pref)


def mount_token(pod: dict) -> None:
    """Mount the API-access volume in every container lacking a mount at the token path
    (re-using an existing ``kube-api-access-*`` volume); add the volume if any did."""
    spec = pod.setdefault("spec", {})
    volumes = spec.get("volumes") or []
    existing = next((v["name"] for v in volumes if str(v.get("name", "")).startswith(VOLUME_PREFIX)), None)
    name = existing or generate_name(VOLUME_PREFIX)
    needed = False
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            mounts = c.get("volumeMounts") or []
            if any(m.get("mountPath") == TOKEN_MOUNT_PATH for m in mounts):
                continue
            c["volumeMounts"] = [*mounts, {"name": name, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}]
            needed = True
    if needed and existing is None:
        spec["volumes"] = [*volumes, {"name": name, "projected": token_volume_source()}]


async def lookup_service_account(store, namespace: str, name: str) -> dict | None:
    """The ServiceAccount, waiting briefly for ``default`` (its controller may lag)."""
    attempts = DEFAULT_ACCOUNT_ATTEMPTS if name == DEFAULT_SERVICE_ACCOUNT else 1
    interval = random.uniform(0.1, 0.2)
    for i in range(attempts):
        if i:
            await asyncio.sleep(interval)
        rec = store.get(f"/core/serviceaccounts/{namespace}/{name}")
        if rec is not None:
            return rec.obj
    return None


async def admit_pod(store, pod: dict, *, enabled: bool = True) -> None:
    """Mutate a pod being created as upstream's ServiceAccount plugin does; raise a 403
    APIError when its ServiceAccount does not exist. Disabled: only the name is defaulted."""
    meta, spec = pod.get("metadata") or {}, pod.setdefault("spec", {})
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec.get("serviceAccount") or DEFAULT_SERVICE_ACCOUNT
    if not enabled:
        return
    ns, sa_name = meta.get("namespace") or "default", spec["serviceAccountName"]
    sa = await lookup_service_account(store, ns, sa_name)
    if sa is None:
        name = meta.get("name") or ""
        subject = f'pods "{name}"' if name else "pods"
        raise errors.APIError(403, "Forbidden",
                              f'{subject} is forbidden: error looking up service account {ns}/{sa_name}: '
                              f'serviceaccount "{sa_name}" not found',
                              {**({"name": name} if name else {}), "kind": "pods"})
    if should_automount(sa, pod):
        mount_token(pod)
    if not spec.get("imagePullSecrets") and sa.get("imagePullSecrets"):
        spec["imagePullSecrets"] = [{"name": s.get("name", "")} for s in sa["imagePullSecrets"]]


__all__ = ["admit_pod", "mount_token", "should_automount", "token_volume_source", "PLUGIN_NAME",
           "TOKEN_MOUNT_PATH", "ROOT_CA_CONFIGMAP"]
