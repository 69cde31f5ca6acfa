"""The Service environment variables the kubelet gives every container: for the
`kubernetes` Service always, and for each Service of the pod's namespace unless
``spec.enableServiceLinks`` is false (``{NAME}_SERVICE_HOST``, ``{NAME}_SERVICE_PORT[_{PORT}]``
and the Docker-link ``{NAME}_PORT…`` family). Services without a ClusterIP get none."""
from __future__ import annotations


def _var(name: str) -> str:
    return name.replace("-", "_").upper()


def _service_vars(svc: dict) -> list[tuple[str, str]]:
    spec = svc.get("spec") or {}
    ip, ports = spec.get("clusterIP") or "", spec.get("ports") or []
    if not ip or ip == "None" or not ports:
        return []
    prefix = _var(svc["metadata"]["name"])
    host = f"[{ip}]" if ":" in ip else ip
    out = [(f"{prefix}_SERVICE_HOST", ip), (f"{prefix}_SERVICE_PORT", str(ports[0]["port"]))]
    out += [(f"{prefix}_SERVICE_PORT_{_var(p['name'])}", str(p["port"])) for p in ports if p.get("name")]
    for i, p in enumerate(ports):
        proto = (p.get("protocol") or "TCP").lower()
        url = f"{proto}://{host}:{p['port']}"
        if i == 0:
            out.append((f"{prefix}_PORT", url))
        pp = f"{prefix}_PORT_{p['port']}_{proto.upper()}"
        out += [(pp, url), (f"{pp}_PROTO", proto), (f"{pp}_PORT", str(p["port"])), (f"{pp}_ADDR", ip)]
    return out


def service_env(pod: dict, services: list[dict]) -> list[tuple[str, str]]:
    """``(name, value)`` pairs for ``pod`` from ``services`` (all namespaces), lowest
    precedence: the container's own env and envFrom override them."""
    ns = pod["metadata"].get("namespace", "default")
    links = (pod.get("spec") or {}).get("enableServiceLinks") is not False
    chosen: dict[str, dict] = {}
    for svc in services:
        m = svc.get("metadata") or {}
        if m.get("namespace") == ns and links:
            chosen[m.get("name", "")] = svc
        elif m.get("namespace") == "default" and m.get("name") == "kubernetes":
            chosen.setdefault("kubernetes", svc)
    out: list[tuple[str, str]] = []
    for name in sorted(chosen):
        out += _service_vars(chosen[name])
    return out
