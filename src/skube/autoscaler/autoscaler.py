"""The node pools' controller and cluster autoscaler, run by ``skube up``.

Keeps every pool's nodes alive (one agent process each, restarted when it dies), and
every ``scan_interval`` (real seconds) decides (:mod:`.decide`):

* scale up — request nodes for unschedulable pods (``TriggeredScaleUp`` /
  ``NotTriggerScaleUp`` events on the pods); a requested node is billed at once and its
  agent starts after the pool's ``bootDelaySeconds``;
* scale down — a node unneeded for ``scaleDownIdleSeconds`` is tainted
  ``ToBeDeletedByClusterAutoscaler`` and cordoned, its pods evicted through the eviction
  API (a 429 from a PodDisruptionBudget is retried until ``evictionTimeoutSeconds``, then
  the node is given back: ``ScaleDownFailed``), its agent stopped, its Node deleted and
  its billing closed (``ScaleDown`` events on the node and pods).

Boot delay and idle time are on :func:`skube.clock.clock` (the cost simulator accelerates
them); scanning, eviction retries and timeouts are infrastructure timing (real).
"""
from __future__ import annotations

import asyncio
import logging
import shutil
import time
from pathlib import Path

from ..aio import wait_set
from ..billing.nodes import NodeLedger
from ..client import (ApiError, Client, Informer, index_by_node_name, load_kubeconfig, object_key, resource,
                      shared_informer)
from ..client.events import EventRecorder
from ..clock import clock
from ..node.node import go_arch
from ..scheduler.cache import PodInfo, SchedulerCache, is_terminal
from . import decide
from .agents import AgentSettings, NodeAgent, make_agent, node_dir
from .pools import PoolSpec, parse_size
from .slots import slot_count
from .state import NodeRecord, PoolState

log = logging.getLogger("skube.autoscaler")

PODS = resource("v1", "pods", kind="Pod")
NODES = resource("v1", "nodes", namespaced=False, kind="Node")
NAMESPACES = resource("v1", "namespaces", namespaced=False, kind="Namespace")
LEASES = resource("coordination.k8s.io/v1", "leases", kind="Lease")
COMPONENT = "cluster-autoscaler"
SCAN_INTERVAL = 2.0
SCAN_PACE = 5.0          # the wait after a scan, in multiples of its run time (≥ SCAN_INTERVAL)
SCAN_MAX_GAP = 60.0      # …but scans are never further apart than this on the clock (simulated s)
RETRY_INTERVAL = 2.0
POD_GONE_TIMEOUT = 60.0


class Autoscaler:
    """``await run(stop)``: resume the pools, autoscale until ``stop``, stop the agents
    (their nodes and pods stay; the next ``skube up`` resumes them)."""

    def __init__(self, pools: list[PoolSpec], settings: AgentSettings, *,
                 scan_interval: float = SCAN_INTERVAL,
                 threshold: float = decide.UTILIZATION_THRESHOLD):
        self.pools = {p.name: p for p in pools}
        self.settings = settings
        self.cidr_full_warned = False
        self.data_dir = Path(settings.data_dir)
        self.scan_interval = scan_interval
        self.threshold = threshold
        self.state = PoolState.load(self.data_dir)
        self.agents: dict[str, NodeAgent] = {}
        self.booting: dict[str, asyncio.Task] = {}
        self.draining: dict[str, asyncio.Task] = {}
        self.unneeded_since: dict[str, float] = {}
        self.reported: dict[str, str] = {}       # pod uid → last scale-up event reason sent
        self.expected: set[str] = set()          # nodes unschedulable pods fit on (not idle)
        self.ledger: NodeLedger | None = None
        self.client: Client | None = None
        self.events: EventRecorder | None = None
        self.arch = go_arch()
        self._infos: dict[str, PodInfo] = {}     # the last snapshot's parsed pods, by key

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self.ledger = NodeLedger.for_data_dir(self.data_dir)
        self.client = Client(load_kubeconfig(str(self.settings.kubeconfig)), component=COMPONENT)
        self.events = EventRecorder(self.client, COMPONENT)
        self.events.start()
        pods = shared_informer(self.client, PODS)
        self.pod_informer = pods.view(name="autoscaler pods")
        self.pod_informer.add_indexer("node", index_by_node_name)
        if self.settings.in_process:    # in-process nodes: views of this one pod watch
            self.settings.shared_pods = pods
        self.node_informer = Informer(self.client, NODES)
        self.ns_informer = Informer(self.client, NAMESPACES)
        for inf in (self.pod_informer, self.node_informer, self.ns_informer):
            inf.start()
        for inf in (self.pod_informer, self.node_informer, self.ns_informer):
            await inf.wait_synced()
        await self._resume()

    async def _resume(self) -> None:
        """Nodes of removed pools go; the others come back; pools get to their size."""
        for rec in list(self.state.nodes.values()):
            if rec.pool not in self.pools:
                log.info("node pool %s is no longer declared: releasing %s", rec.pool, rec.name)
                await self._release(rec)
        now = clock().time()
        for name, spec in self.pools.items():
            first = name not in self.state.counters
            nodes = self.state.in_pool(name)
            want = spec.count if first else min(max(len(nodes), spec.min), spec.max)
            for rec in nodes[want:]:
                await self._release(rec)
            for _ in range(want - len(nodes)):
                self._request(spec, now, boot_delay=0.0 if first else spec.boot_delay)
        self.state.save(self.data_dir)
        for node in self.node_informer.list():     # drains cut short by a restart: give back
            name = node["metadata"]["name"]
            if name in self.state.nodes and any(t.get("key") == decide.TO_BE_DELETED_TAINT
                                                for t in (node.get("spec") or {}).get("taints") or []):
                await self._mark(name, False)
        for rec in self.state.nodes.values():
            self.ledger.start(node=rec.name, pool=rec.pool, instance_type=rec.size,
                              cpu_m=self.pools[rec.pool].size.cpu_m,
                              memory_mib=self.pools[rec.pool].size.memory_mib,
                              provider=rec.provider, start=rec.requested_at)
            if rec.joined:
                await self._start_agent(rec)
            elif rec.name not in self.booting:
                self._boot(rec, self.pools[rec.pool].boot_delay - (now - rec.requested_at))

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            while not stop.is_set():
                began = time.monotonic()
                try:
                    await self.scan()
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - one bad scan must not end autoscaling
                    log.exception("autoscaler scan failed")
                # a scan over many pods takes time the API server and nodes need too: wait
                # SCAN_PACE times as long as it took (at least the scan interval), but not
                # past the moment an idle node may go
                took = time.monotonic() - began
                await self._pause(stop, max(self.scan_interval, SCAN_PACE * took))
        finally:
            await self.close()

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        """Wait ``seconds`` (real), or until ``stop``, or until the next idle deadline or
        SCAN_MAX_GAP on the clock, whichever comes first (under the simulator's fast clock a
        real-time pause is minutes of simulated time: a node emptied just then would be
        noticed, and billed, that much later)."""
        end = time.monotonic() + seconds
        now = clock().time()
        dues = [since + self.pools[self.state.nodes[name].pool].idle_seconds
                for name, since in self.unneeded_since.items()
                if name in self.state.nodes and self.state.nodes[name].pool in self.pools]
        due = min([d for d in dues if d > now] + [now + SCAN_MAX_GAP])   # past ones: the scan decided
        while not stop.is_set():
            left = end - time.monotonic()
            left = min(left, clock().due_in(due))
            if left <= 0:
                return
            await wait_set(stop, min(left, 0.5))     # slices: the clock's speed may change

    async def close(self) -> None:
        for t in [*self.booting.values(), *self.draining.values()]:
            t.cancel()
        await asyncio.gather(*self.booting.values(), *self.draining.values(), return_exceptions=True)
        await asyncio.gather(*(a.stop() for a in self.agents.values()), return_exceptions=True)
        self.state.save(self.data_dir)
        for inf in (self.pod_informer, self.node_informer, self.ns_informer):
            inf.stop()
        if self.events:
            await self.events.stop()
        if self.client:
            await self.client.close()
        if self.ledger:
            self.ledger.close()

    # ---- nodes coming --------------------------------------------------------------------

    def _request(self, spec: PoolSpec, now: float, boot_delay: float) -> NodeRecord:
        """A new node of ``spec``: recorded, billed from now, joining after ``boot_delay``."""
        rec = NodeRecord(name=self.state.next_name(spec.name), pool=spec.name,
                         slot=self.state.free_slot(), requested_at=now, size=spec.instance_type,
                         provider=spec.provider or self.settings.provider)
        self.state.nodes[rec.name] = rec
        self.state.save(self.data_dir)
        if self.ledger is not None:
            self.ledger.start(node=rec.name, pool=rec.pool, instance_type=rec.size,
                              cpu_m=spec.size.cpu_m, memory_mib=spec.size.memory_mib,
                              provider=rec.provider, start=now)
        self._boot(rec, boot_delay)
        return rec

    def _boot(self, rec: NodeRecord, delay: float) -> None:
        async def boot() -> None:
            await clock().sleep(max(delay, 0.0))
            rec.joined = True
            await self._start_agent(rec)
            self.state.save(self.data_dir)
            self.booting.pop(rec.name, None)
        self.booting[rec.name] = asyncio.create_task(boot(), name=f"boot {rec.name}")

    async def _start_agent(self, rec: NodeRecord) -> None:
        agent = self.agents.get(rec.name)
        if agent is None:
            agent = self.agents[rec.name] = make_agent(rec, self._spec_of(rec), self.settings)
        await agent.start()
        self.state.save(self.data_dir)

    def _spec_of(self, rec: NodeRecord) -> PoolSpec:
        """The node's pool (or, for a pool no longer declared, one of the node's size)."""
        return self.pools.get(rec.pool) or PoolSpec(rec.pool, parse_size(rec.size), 0, 0, 0,
                                                    provider=rec.provider)

    async def _supervise(self) -> None:
        for name, agent in list(self.agents.items()):
            if not agent.alive and not agent.starting and name not in self.draining \
                    and name in self.state.nodes:
                agent.restarts += 1
                log.warning("node %s: agent exited (%s); restarting", name, agent.exit_status)
                try:
                    await agent.start()
                except Exception:  # noqa: BLE001 - one node must not stop the scan of the others
                    log.exception("node %s: agent did not start", name)
                self.state.save(self.data_dir)

    # ---- the scan -----------------------------------------------------------------------

    def _snapshot(self) -> SchedulerCache:
        cache = SchedulerCache()
        for ns in self.ns_informer.list():
            cache.set_namespace(ns)
        for node in self.node_informer.list():
            if _ready(node):
                cache.add_node(node)
        infos, self._infos = self._infos, {}
        for name in list(cache.nodes):
            for pod in self.pod_informer.by_index("node", name):
                if is_terminal(pod):
                    continue
                key, rv = object_key(pod), pod["metadata"].get("resourceVersion")
                info = infos.get(key)
                if info is None or info.resource_version != rv or info.pod is not pod:
                    info = PodInfo(pod)        # parsed once per version, not once per scan
                self._infos[key] = info
                cache.add_pod(info)
        return cache

    def _views(self, registered: set[str]) -> dict[str, decide.PoolView]:
        views = {name: decide.PoolView(spec) for name, spec in self.pools.items()}
        for rec in self.state.nodes.values():
            if rec.pool in views and rec.name not in self.draining:
                views[rec.pool].nodes.append(rec.name)
                if rec.name not in registered:
                    views[rec.pool].booting.append(rec.name)
        return views

    async def scan(self) -> None:
        await self._supervise()
        registered = {n["metadata"]["name"] for n in self.node_informer.list() if _ready(n)}
        pending = [p for p in self.pod_informer.list() if decide.is_unschedulable(p)]
        uids = {p["metadata"].get("uid") for p in pending}
        self.reported = {u: m for u, m in self.reported.items() if u in uids}
        self.expected = set()
        if pending:
            self._scale_up(pending, registered)
        if any(len(self.state.in_pool(name)) > spec.min for name, spec in self.pools.items()):
            self._scale_down(registered)
        else:
            self.unneeded_since.clear()

    def _scale_up(self, pending: list[dict], registered: set[str]) -> None:
        views = self._views(registered)
        plan = decide.plan_scale_up(self._snapshot(), pending, list(views.values()), arch=self.arch)
        self.expected = set(plan.expected.values())
        now = clock().time()
        added: dict[str, str] = {}
        room = slot_count(self.settings.pod_cidr) - len(self.state.nodes)
        for pool, n in plan.new_nodes.items():
            spec, before = self.pools[pool], len(views[pool].nodes)
            if n > room:                # every node needs its own slice of the pod CIDR
                if not self.cidr_full_warned:
                    log.warning("scale-up: node pool %s wants %d more nodes but the pod CIDR %s has room "
                                "for %d node-pool nodes in all; set a larger network.cidr",
                                pool, n, self.settings.pod_cidr, slot_count(self.settings.pod_cidr))
                    self.cidr_full_warned = True
                n = max(room, 0)
                if n == 0:
                    continue
            room -= n
            for _ in range(n):
                self._request(spec, now, spec.boot_delay)
            added[pool] = f"[{{{pool} {before}->{before + n} (max: {spec.max})}}]"
            log.info("scale-up: node pool %s %d -> %d", pool, before, before + n)
        by_key = {f"{p['metadata'].get('namespace')}/{p['metadata']['name']}": p for p in pending}
        for key, pool in plan.triggered.items():
            if pool in added:
                self._pod_event(by_key[key], "Normal", "TriggeredScaleUp",
                                f"pod triggered scale-up: {added[pool]}")
        for key, why in plan.no_scale_up.items():
            self._pod_event(by_key[key], "Normal", "NotTriggerScaleUp", why)

    def _pod_event(self, pod: dict, etype: str, reason: str, message: str) -> None:
        uid = pod["metadata"].get("uid", "")
        if self.reported.get(uid) == message:
            return
        self.reported[uid] = message
        self.events.event(pod, etype, reason, message)

    def _scale_down(self, registered: set[str]) -> None:
        views = self._views(registered)
        for v in views.values():       # only nodes that have joined can go
            v.nodes = [n for n in v.nodes if n in registered] + v.booting
        cache = self._snapshot()
        candidates, _why = decide.scale_down_candidates(
            cache, views, threshold=self.threshold, exclude=set(self.draining) | set(self.booting),
            keep=self.expected)
        now = clock().time()
        names = {c.node for c in candidates}
        for gone in set(self.unneeded_since) - names:
            del self.unneeded_since[gone]
        busy = bool(self.draining)
        for c in candidates:
            since = self.unneeded_since.setdefault(c.node, now)
            if now - since < self.pools[c.pool].idle_seconds or c.node in self.draining:
                continue
            if c.pods and busy:        # one non-empty node at a time, empty ones together
                continue
            busy = busy or bool(c.pods)
            rec = self.state.nodes.get(c.node)
            if rec is not None:
                self.draining[c.node] = asyncio.create_task(self._scale_down_node(rec, c),
                                                            name=f"scale down {c.node}")

    # ---- nodes going --------------------------------------------------------------------

    async def _scale_down_node(self, rec: NodeRecord, cand: decide.Candidate) -> None:
        name, spec = rec.name, self.pools[rec.pool]
        try:
            node = await self.client.get(NODES, name)
            await self._mark(name, True)
            self.events.normal(node, "ScaleDown", "marked the node as toBeDeleted/unschedulable")
            refused = await self._drain(name, spec.eviction_timeout)
            if refused:
                await self._mark(name, False)
                self.events.warning(node, "ScaleDownFailed", f"failed to drain the node: {refused}")
                self.unneeded_since.pop(name, None)
                return
            self.events.normal(node, "ScaleDown", "node removed by cluster autoscaler")
            await self._release(rec)
            log.info("scale-down: removed %s (utilization %.2f)", name, cand.utilization)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001
            log.exception("scale-down of %s failed", name)
            try:
                await self._mark(name, False)
            except Exception:  # noqa: BLE001
                pass
        finally:
            self.draining.pop(name, None)
            self.unneeded_since.pop(name, None)

    async def _mark(self, name: str, deleting: bool) -> None:
        """Taint ToBeDeletedByClusterAutoscaler and cordon (or undo both); the taint list is
        replaced under a resourceVersion precondition, retried on conflict."""
        for attempt in range(5):
            node = await self.client.get(NODES, name)
            taints = [t for t in (node.get("spec") or {}).get("taints") or []
                      if t.get("key") != decide.TO_BE_DELETED_TAINT]
            if deleting:
                taints.append({"key": decide.TO_BE_DELETED_TAINT, "value": str(int(clock().time())),
                               "effect": "NoSchedule"})
            try:
                await self.client.patch(NODES, name, {
                    "spec": {"taints": taints, "unschedulable": deleting},
                    "metadata": {"resourceVersion": node["metadata"]["resourceVersion"]}})
                return
            except ApiError as e:
                if not e.conflict or attempt == 4:
                    raise

    def _pods_on(self, name: str) -> list[dict]:
        return [p for p in self.pod_informer.by_index("node", name) if not is_terminal(p)]

    async def _drain(self, name: str, timeout: float) -> str | None:
        """Evict the node's pods (DaemonSet and mirror pods stay); None when they are
        gone, else why not (a PodDisruptionBudget kept refusing)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        evicted: set[str] = set()
        while True:
            refused = None
            for pod in self._pods_on(name):
                meta = pod["metadata"]
                if decide._ignored(decide.PodInfo(pod)) or meta.get("deletionTimestamp") \
                        or meta["uid"] in evicted:
                    continue
                try:
                    await self.client.request("POST", PODS.path(meta["namespace"], meta["name"], "eviction"),
                                              body={"apiVersion": "policy/v1", "kind": "Eviction",
                                                    "metadata": {"name": meta["name"],
                                                                 "namespace": meta["namespace"]}})
                    evicted.add(meta["uid"])
                    self.events.normal(pod, "ScaleDown", "deleting pod for node scale down")
                except ApiError as e:
                    if e.status == 429:
                        refused = f"pod {meta['namespace']}/{meta['name']}: {e.message}"
                    elif not e.not_found:
                        raise
            if refused is None:
                break
            if loop.time() >= deadline:
                return refused
            await asyncio.sleep(RETRY_INTERVAL)
        # wait for the evicted pods to terminate (graceful deletion on the node)
        until = loop.time() + POD_GONE_TIMEOUT
        while loop.time() < until:
            left = [p for p in self._pods_on(name) if not decide._ignored(decide.PodInfo(p))]
            if not left:
                return None
            await asyncio.sleep(0.5)
        return f"{len(left)} pod(s) did not terminate in {POD_GONE_TIMEOUT:.0f}s"

    async def _release(self, rec: NodeRecord) -> None:
        """Delete what remains on the node, stop its agent, delete the Node, stop billing."""
        name = rec.name
        task = self.booting.pop(name, None)
        if task is not None:
            task.cancel()
        agent = self.agents.get(name)
        if rec.joined and self._pods_on(name) and (agent is None or not agent.alive):
            await self._start_agent(rec)           # only the node's agent can stop its pods
            agent = self.agents[name]
        if agent is not None and agent.alive:
            for pod in self._pods_on(name):        # DaemonSet pods and stragglers
                try:
                    await self.client.delete(PODS, pod["metadata"]["name"], pod["metadata"]["namespace"])
                except ApiError:
                    pass
            loop = asyncio.get_running_loop()
            until = loop.time() + POD_GONE_TIMEOUT
            while self._pods_on(name) and loop.time() < until:
                await asyncio.sleep(0.5)
            await agent.stop()
        self.agents.pop(name, None)
        for res, ns in ((NODES, None), (LEASES, "kube-node-lease")):
            try:
                await self.client.delete(res, name, ns)
            except ApiError as e:
                if not e.not_found:
                    raise
        self.ledger.stop(name, clock().time())
        self.state.nodes.pop(name, None)
        self.state.save(self.data_dir)
        shutil.rmtree(node_dir(self.data_dir, name), ignore_errors=True)


def _ready(node: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


async def run_autoscaler(pools: list[PoolSpec], settings: AgentSettings, stop: asyncio.Event,
                         **options) -> None:
    await Autoscaler(pools, settings, **options).run(stop)


__all__ = ["Autoscaler", "run_autoscaler"]
