"""``metrics.k8s.io/v1beta1``: NodeMetrics and PodMetrics (get, list, label and field
selectors) served by the API server itself, answered as metrics-server would: from
each node's kubelet ``/metrics/resource``.

CPU is a rate: the difference of two scrapes' cumulative CPU seconds over the
time between their samples — ``window`` is that time and ``timestamp`` the later
sample's time. A node's scrapes are cached for ``SCRAPE_TTL`` seconds; when a node
has no earlier scrape (the first request, or one older than ``MAX_AGE``), it is
scraped twice, ``FIRST_WINDOW`` apart. Memory is the working set of the later
scrape. A node whose kubelet cannot be scraped contributes nothing (its pods are
left out of lists, a get of one is 404), as with metrics-server.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import weakref
from dataclasses import dataclass, field

import aiohttp

from ..api import errors, selectors
from ..node.resource_metrics import parse
from . import proxy
from .http import Request, send_json

log = logging.getLogger("skube.apiserver.metrics")

GROUP = "metrics.k8s.io"
RESOURCES = {(GROUP, "nodes"), (GROUP, "pods")}
SCRAPE_TTL = 5.0
FIRST_WINDOW = 1.0
MAX_AGE = 120.0
SCRAPE_TIMEOUT = 10.0


@dataclass
class Scrape:
    """One ``/metrics/resource`` answer: (cumulative CPU seconds, working set bytes,
    sample time in ms) of the node and of each container."""
    at: float
    node: tuple[float | None, float | None, int | None] = (None, None, None)
    containers: dict[tuple[str, str, str], list] = field(default_factory=dict)


def parse_scrape(text: str, at: float) -> Scrape:
    m = parse(text)
    s = Scrape(at)
    cpu = m.get("node_cpu_usage_seconds_total") or []
    mem = m.get("node_memory_working_set_bytes") or []
    s.node = (cpu[0][1] if cpu else None, mem[0][1] if mem else None, cpu[0][2] if cpu else None)
    for name, idx in (("container_cpu_usage_seconds_total", 0), ("container_memory_working_set_bytes", 1)):
        for labels, value, ts in m.get(name) or []:
            key = (labels.get("namespace", ""), labels.get("pod", ""), labels.get("container", ""))
            entry = s.containers.setdefault(key, [None, None, None])
            entry[idx] = value
            if idx == 0:
                entry[2] = ts
    return s


def cpu_rate(prev, cur) -> tuple[float, float, int] | None:
    """(cores, window seconds, later sample ms) from two (cpu_s, mem, ts_ms) samples."""
    if prev is None or cur is None or None in (prev[0], cur[0], prev[2], cur[2]):
        return None
    window = (cur[2] - prev[2]) / 1000
    if window <= 0 or cur[0] < prev[0]:
        return None                                 # same sample, or a counter reset
    return (cur[0] - prev[0]) / window, window, cur[2]


class _NodeScraper:
    """The two latest scrapes of one node's kubelet."""

    def __init__(self) -> None:
        self.prev: Scrape | None = None
        self.cur: Scrape | None = None
        self.lock = asyncio.Lock()


class MetricsSource:
    """Scrapes kubelets for one API server (cached per node)."""

    def __init__(self, server):
        self.server = server
        self.nodes: dict[str, _NodeScraper] = {}

    async def _scrape(self, node: dict) -> Scrape:
        host, port = proxy.kubelet_address(node)
        kc = proxy.kubelet_client(self.server)
        hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT)
        async with kc.session().get(f"https://{hostport}/metrics/resource", ssl=kc.verify,
                                    timeout=timeout) as resp:
            text = await resp.text()
            if resp.status != 200:
                raise RuntimeError(f"kubelet answered {resp.status}: {text.strip()[:200]}")
        return parse_scrape(text, time.monotonic())

    async def samples(self, node: dict) -> tuple[Scrape, Scrape] | None:
        """(earlier, later) scrapes of ``node``, or None if its kubelet cannot be scraped."""
        name = node["metadata"]["name"]
        ns = self.nodes.setdefault(name, _NodeScraper())
        async with ns.lock:
            now = time.monotonic()
            try:
                if ns.cur is None or now - ns.cur.at >= SCRAPE_TTL:
                    new = await self._scrape(node)
                    if ns.cur is not None and new.at - ns.cur.at <= MAX_AGE:
                        ns.prev = ns.cur
                    else:
                        ns.prev = None
                    ns.cur = new
                if ns.prev is None:
                    await asyncio.sleep(FIRST_WINDOW)
                    ns.prev, ns.cur = ns.cur, await self._scrape(node)
            except Exception as e:  # noqa: BLE001 - one unreachable node must not fail the list
                log.warning("scraping the kubelet of node %s failed: %s", name, e)
                return None
            return ns.prev, ns.cur


_sources: "weakref.WeakKeyDictionary[object, MetricsSource]" = weakref.WeakKeyDictionary()


def source(server) -> MetricsSource:
    s = _sources.get(server)
    if s is None:
        s = _sources[server] = MetricsSource(server)
    return s


# ---- quantities and times ---------------------------------------------------------------------

def cpu_quantity(cores: float) -> str:
    """Cores as metrics-server writes them: nanocores in canonical form (``5m``, ``1234n``)."""
    n = max(int(round(cores * 1e9)), 0)
    if n % 1_000_000_000 == 0:
        return str(n // 1_000_000_000)
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1000 == 0:
        return f"{n // 1000}u"
    return f"{n}n"


def memory_quantity(b: float) -> str:
    """Bytes in binary SI canonical form (``10240Ki``, ``12345``)."""
    n = max(int(b), 0)
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = 1024 ** ("KMGTPE".index(suffix[0]) + 1)
        if n and n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)


def go_duration(seconds: float) -> str:
    """A Go ``time.Duration`` string (``1.002s``, ``15s``, ``1m0.5s``)."""
    ns = int(round(seconds * 1e9))
    if ns == 0:
        return "0s"
    h, rem = divmod(ns, 3600 * 10**9)
    m, rem = divmod(rem, 60 * 10**9)
    s = f"{rem / 1e9:.9f}".rstrip("0").rstrip(".")
    if h or m:
        return (f"{h}h" if h else "") + f"{m}m{s}s"
    if ns < 10**6:
        return f"{ns / 1e3:g}µs"
    if ns < 10**9:
        return f"{ns / 1e6:g}ms"
    return f"{s}s"


def _time(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- the resources ------------------------------------------------------------------------------

def node_metrics(node: dict, pair: tuple[Scrape, Scrape]) -> dict | None:
    rate = cpu_rate(pair[0].node, pair[1].node)
    mem = pair[1].node[1]
    if rate is None or mem is None:
        return None
    m = node["metadata"]
    return {"kind": "NodeMetrics", "apiVersion": f"{GROUP}/v1beta1",
            "metadata": {"name": m["name"], "creationTimestamp": _now(), "labels": m.get("labels") or {}},
            "timestamp": _time(rate[2]), "window": go_duration(rate[1]),
            "usage": {"cpu": cpu_quantity(rate[0]), "memory": memory_quantity(mem)}}


def pod_metrics(pod: dict, pair: tuple[Scrape, Scrape]) -> dict | None:
    m = pod["metadata"]
    ns, name = m["namespace"], m["name"]
    containers, stamp = [], None
    for c in (pod.get("spec") or {}).get("containers") or []:
        key = (ns, name, c["name"])
        rate = cpu_rate(pair[0].containers.get(key), pair[1].containers.get(key))
        mem = (pair[1].containers.get(key) or [None, None])[1]
        if rate is None or mem is None:
            continue
        stamp = stamp or rate
        containers.append({"name": c["name"],
                           "usage": {"cpu": cpu_quantity(rate[0]), "memory": memory_quantity(mem)}})
    if not containers:
        return None
    return {"kind": "PodMetrics", "apiVersion": f"{GROUP}/v1beta1",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": _now(),
                         "labels": m.get("labels") or {}},
            "timestamp": _time(stamp[2]), "window": go_duration(stamp[1]), "containers": containers}


async def handle(server, req: Request, send, info, ns: str | None, name: str | None, sub: str,
                 watch: bool) -> None:
    """GET (get or list) of nodes/pods in metrics.k8s.io."""
    if sub:
        raise server._path_not_found(req)
    if req.method not in ("GET", "HEAD") or watch or req.flag("watch"):
        raise errors.method_not_allowed("the server does not allow this method on the requested resource")
    store, src = server.store, source(server)
    kind = "NodeMetrics" if info.plural == "nodes" else "PodMetrics"
    if info.plural == "nodes":
        if name is not None:
            rec = store.get(f"/core/nodes/{name}")
            objs = [rec.obj] if rec is not None else []
        else:
            objs = [r.obj for r in store.list("/core/nodes/")[0]]
        objs = _select(req, objs, "Node")
        pairs = await asyncio.gather(*(src.samples(n) for n in objs))
        items = [x for x in (node_metrics(n, p) for n, p in zip(objs, pairs) if p) if x]
    else:
        if name is not None:
            rec = store.get(f"/core/pods/{ns}/{name}")
            objs = [rec.obj] if rec is not None else []
        else:
            objs = [r.obj for r in store.list(f"/core/pods/{ns}/" if ns else "/core/pods/")[0]]
        objs = [p for p in _select(req, objs, "Pod") if (p.get("spec") or {}).get("nodeName")
                and (p.get("status") or {}).get("phase") == "Running"]
        wanted = {p["spec"]["nodeName"] for p in objs}
        nodes = {n: store.get(f"/core/nodes/{n}") for n in wanted}
        live = {n: rec.obj for n, rec in nodes.items() if rec is not None}
        pairs = dict(zip(live, await asyncio.gather(*(src.samples(o) for o in live.values()))))
        items = [x for x in (pod_metrics(p, pairs[p["spec"]["nodeName"]]) for p in objs
                             if pairs.get(p["spec"]["nodeName"])) if x]
    items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
    if name is not None:
        if not items:
            what = f"{ns}/{name}" if info.plural == "pods" else name
            raise errors.APIError(404, "NotFound", f'{kind.lower()}.{GROUP} "{what}" not found',
                                  {"name": name, "group": GROUP, "kind": info.plural})
        return await send_json(send, 200, items[0])
    await send_json(send, 200, {"kind": f"{kind}List", "apiVersion": f"{GROUP}/v1beta1",
                                "metadata": {}, "items": items})


def _select(req: Request, objs: list[dict], kind: str) -> list[dict]:
    ls = selectors.parse_label_selector(req.arg("labelSelector"))
    fs = selectors.parse_field_selector(req.arg("fieldSelector"), "", kind)
    return [o for o in objs if ls.matches((o.get("metadata") or {}).get("labels") or {}) and fs.matches(o)]


__all__ = ["handle", "RESOURCES", "MetricsSource", "source", "cpu_quantity", "memory_quantity",
           "go_duration", "parse_scrape", "cpu_rate"]
