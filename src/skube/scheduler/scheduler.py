"""The scheduler: assigns pending pods to nodes, as kube-scheduler's default profile.

One loop pops a pod from the :class:`~skube.scheduler.queue.SchedulingQueue`, runs the
filter plugins over the nodes (all of them, or ``percentage_of_nodes_to_score``),
scores the feasible ones, picks the best (random among equals), assumes the pod on
that node in the :class:`~skube.scheduler.cache.SchedulerCache` and binds it in the
background (``POST pods/NAME/binding``). A pod no node fits gets the
``PodScheduled=False`` condition (reason Unschedulable, upstream's message) and a
``FailedScheduling`` Warning event, and waits in the queue for a cluster change.
The pod's elastic scheduling policy (:mod:`.policies`) splits the nodes into tiers
tried in order (ordinary nodes before the virtual node, ResourcePolicy units).

Everything goes through :mod:`skube.client`: informers on nodes, pods and
namespaces feed the cache and the queue.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections import deque

from ..aio import unless_set
from ..client import ApiError, Client, load_kubeconfig, resource, shared_informer
from ..client.events import EventRecorder
from ..clock import clock
from . import policies
from .cache import NodeInfo, PodInfo, SchedulerCache, is_terminal
from .plugins import (NAMESPACE_CHANGE, NODE_ADD, NODE_DELETE, NODE_UPDATE, POD_ADD, POD_DELETE,
                      POD_UPDATE, UNSCHEDULABLE_AND_UNRESOLVABLE, Plugin, Status, default_plugins)
from .queue import QueuedPod, SchedulingQueue

log = logging.getLogger("skube.scheduler")

DEFAULT_SCHEDULER_NAME = "default-scheduler"
NODES = resource("v1", "nodes", namespaced=False, kind="Node")
PODS = resource("v1", "pods", kind="Pod")
NAMESPACES = resource("v1", "namespaces", namespaced=False, kind="Namespace")
NO_NODES = "no nodes available to schedule pods"
PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE = 5
METRIC_WINDOW = 100_000


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _histogram(reasons: dict[str, int]) -> str:
    return ", ".join(sorted(f"{n} {r}" for r, n in reasons.items()))


class FitError(Exception):
    """No node fits the pod: ``statuses`` maps node name to its :class:`Status`."""

    def __init__(self, pod: PodInfo, num_nodes: int, statuses: dict[str, Status],
                 retry_after: float | None = None):
        self.pod = pod
        self.num_nodes = num_nodes
        self.statuses = statuses
        self.retry_after = retry_after      # a policy opens more nodes after this many seconds
        super().__init__(self.message)

    @property
    def plugins(self) -> set[str]:
        return {s.plugin for s in self.statuses.values() if s.plugin}

    @property
    def message(self) -> str:
        """``0/3 nodes are available: 1 …, 2 …. preemption: 0/3 nodes are available: …``"""
        if self.num_nodes == 0:
            return NO_NODES
        reasons: dict[str, int] = {}
        for st in self.statuses.values():
            for r in st.reasons:
                reasons[r] = reasons.get(r, 0) + 1
        msg = f"0/{self.num_nodes} nodes are available: {_histogram(reasons)}."
        policy = ((self.pod.pod.get("spec") or {}).get("preemptionPolicy")) or "PreemptLowerPriority"
        if policy == "Never":
            return msg + " preemption: not eligible due to preemptionPolicy=Never."
        post: dict[str, int] = {}
        for st in self.statuses.values():
            r = PREEMPTION_NOT_HELPFUL if st.code == UNSCHEDULABLE_AND_UNRESOLVABLE else NO_VICTIMS
            post[r] = post.get(r, 0) + 1
        return f"{msg} preemption: 0/{self.num_nodes} nodes are available: {_histogram(post)}."


# ---- the scheduler ----------------------------------------------------------------------


class Scheduler:
    """Run with ``await scheduler.run(stop_event)`` (``ready`` is set once the caches
    have synced). ``percentage_of_nodes_to_score``: 0 adapts as upstream (all nodes up
    to 100, then 50% falling to 5%); 100 always filters every node."""

    def __init__(self, client: Client, *, name: str = DEFAULT_SCHEDULER_NAME,
                 percentage_of_nodes_to_score: int = 0, plugins: list[Plugin] | None = None,
                 bind_concurrency: int = 64, record_scheduled_events: bool = True,
                 seed: int | None = None, queue: SchedulingQueue | None = None):
        self.client = client
        self.name = name
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score
        self.plugins = plugins if plugins is not None else default_plugins()
        self.filter_plugins = [p for p in self.plugins if p.filters]
        self.score_plugins = [p for p in self.plugins if p.weight]
        self._events_of = {p.name: p.events for p in self.plugins}
        self._events_of["NoNodes"] = frozenset({NODE_ADD})
        self._events_of[policies.PLUGIN] = frozenset({NODE_ADD, NODE_UPDATE, POD_DELETE, POD_UPDATE})
        self.cache = SchedulerCache()
        self.queue = queue or SchedulingQueue()
        self.recorder = EventRecorder(client, name, workers=4, default_kind="Pod", default_api_version="v1")
        self.record_scheduled_events = record_scheduled_events
        self.bind_concurrency = bind_concurrency
        self.random = random.Random(seed)
        self.ready = asyncio.Event()
        self.next_start_node_index = 0
        # views of the client's shared informers (one watch with the controllers in skube up)
        self.nodes = shared_informer(client, NODES).view(name="scheduler nodes")
        self.pods = shared_informer(client, PODS).view(name="scheduler pods")
        self.namespaces = shared_informer(client, NAMESPACES).view(name="scheduler namespaces")
        self._binds: set[asyncio.Task] = set()
        self._bind_slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task] = set()
        # metrics
        self.scheduled = 0
        self.attempts = 0
        self.failures = 0
        # latencies of the last METRIC_WINDOW scheduled pods (seconds)
        self.queue_wait: deque[float] = deque(maxlen=METRIC_WINDOW)  # first enqueue → successful pop
        self.e2e: deque[float] = deque(maxlen=METRIC_WINDOW)         # first enqueue → bound
        self._register()

    # ---- informer handlers --------------------------------------------------------------

    def _register(self) -> None:
        self.nodes.add_handlers(self._node_add, self._node_update, self._node_delete)
        self.pods.add_handlers(self._pod_add, self._pod_update, self._pod_delete)
        self.namespaces.add_handlers(self._ns_add, self._ns_update, self._ns_delete)

    def _interested(self, q: QueuedPod, event: str) -> bool:
        plugins = q.unschedulable_plugins
        if not plugins:
            return True
        of = self._events_of
        return any(event in of.get(p, ()) for p in plugins)

    def _move(self, event: str) -> None:
        self.queue.move_all(event, self._interested)

    def _node_add(self, node: dict) -> None:
        self.cache.add_node(node)
        self._move(NODE_ADD)

    def _node_update(self, old: dict, new: dict) -> None:
        self.cache.update_node(new)
        if _node_changed(old, new):
            self._move(NODE_UPDATE)

    def _node_delete(self, node: dict) -> None:
        self.cache.remove_node(node)
        self._move(NODE_DELETE)

    def _ns_add(self, ns: dict) -> None:
        self.cache.set_namespace(ns)
        self._move(NAMESPACE_CHANGE)

    def _ns_update(self, old: dict, new: dict) -> None:
        self.cache.set_namespace(new)
        if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
            self._move(NAMESPACE_CHANGE)

    def _ns_delete(self, ns: dict) -> None:
        self.cache.remove_namespace(ns)

    def responsible_for(self, pod: dict) -> bool:
        spec = pod.get("spec") or {}
        return ((spec.get("schedulerName") or DEFAULT_SCHEDULER_NAME) == self.name
                and not spec.get("nodeName")
                and not (pod.get("metadata") or {}).get("deletionTimestamp")
                and not is_terminal(pod))

    def _pod_add(self, pod: dict) -> None:
        if (pod.get("spec") or {}).get("nodeName"):
            if not is_terminal(pod):
                self.cache.add_pod(pod)
                self._move(POD_ADD)
        elif self.responsible_for(pod):
            self.queue.add(PodInfo(pod))

    def _pod_update(self, old: dict, new: dict) -> None:
        if (new.get("spec") or {}).get("nodeName"):
            key = _key(new)
            self.queue.delete(key)
            if is_terminal(new):
                if self.cache.remove_pod(key) is not None:
                    self._move(POD_DELETE)
                return
            was = self.cache.pods.get(key)
            info = PodInfo(new)
            self.cache.update_pod(info)
            if was is None or not (old.get("spec") or {}).get("nodeName"):
                self._move(POD_ADD)
            elif (was.labels != info.labels or was.requests != info.requests
                  or was.terminating != info.terminating):
                self._move(POD_UPDATE)
        elif self.responsible_for(new):
            self.queue.update(PodInfo(new))
        else:
            self.queue.delete(_key(new))

    def _pod_delete(self, pod: dict) -> None:
        key = _key(pod)
        self.queue.delete(key)
        if self.cache.remove_pod(key) is not None:
            self._move(POD_DELETE)

    # ---- one scheduling cycle -----------------------------------------------------------

    def num_feasible_nodes_to_find(self, n: int) -> int:
        pct = self.percentage_of_nodes_to_score
        if n < MIN_FEASIBLE_NODES_TO_FIND or pct >= 100:
            return n
        if pct <= 0:
            pct = max(MIN_FEASIBLE_NODES_PERCENTAGE, 50 - n // 125)
        return max(MIN_FEASIBLE_NODES_TO_FIND, n * pct // 100)

    def schedule_pod(self, pod: PodInfo, waited: float = 0.0) -> str:
        """Pick a node for ``pod`` (synchronously, on the cache as it is); raise
        :class:`FitError` when none fits. ``waited``: seconds (simulated) it has been pending."""
        return self.select_node(pod, waited)[0]

    def select_node(self, pod: PodInfo, waited: float = 0.0) -> tuple[str, int]:
        """The node for ``pod`` and the index of the policy tier it came from: the pod's
        elastic policy (:mod:`.policies`) orders the nodes in tiers, and a later tier is
        tried only when no node of the earlier ones fits."""
        n = len(self.cache.node_list)
        if n == 0:
            raise FitError(pod, 0, {})
        state: dict = {}
        filters = [p for p in self.filter_plugins if p.pre_filter(state, pod, self.cache)]
        plan = policies.tiers(policies.policy_of(pod.pod), pod, self.cache, waited, clock().real_seconds)
        statuses: dict[str, Status] = {}
        for i, nodes in enumerate(plan.tiers):
            if nodes:
                name = self._pick(pod, state, filters, nodes, statuses)
                if name is not None:
                    return name, i
        statuses.update(plan.held)
        raise FitError(pod, n, statuses, retry_after=plan.retry_after)

    def _pick(self, pod: PodInfo, state: dict, filters: list[Plugin], nodes: list[NodeInfo],
              statuses: dict[str, Status]) -> str | None:
        """Filter ``nodes`` (recording why each rejected one does not fit), score the
        feasible ones and return the best, or None."""
        n = len(nodes)
        want = self.num_feasible_nodes_to_find(n)
        feasible = []
        start = self.next_start_node_index % n
        processed = 0
        for i in range(n):
            node = nodes[(start + i) % n]
            processed += 1
            for p in filters:
                st = p.filter(state, pod, node)
                if st is not None:
                    statuses[node.name] = st
                    break
            else:
                feasible.append(node)
                if len(feasible) >= want:
                    break
        self.next_start_node_index = (start + processed) % n
        if not feasible:
            return None
        if len(feasible) == 1:
            return feasible[0].name
        totals = [0] * len(feasible)
        for p in self.score_plugins:
            if not p.pre_score(state, pod, self.cache, feasible):
                continue
            scores = [p.score(state, pod, node) for node in feasible]
            p.normalize(state, pod, scores)
            w = p.weight
            for i, s in enumerate(scores):
                totals[i] += s * w
        best_score = max(totals)
        best = [i for i, s in enumerate(totals) if s == best_score]
        return feasible[best[0] if len(best) == 1 else self.random.choice(best)].name

    async def schedule_one(self, q: QueuedPod) -> None:
        pod = q.info
        current = self.pods.get(pod.key)
        if current is None or not self.responsible_for(current):
            self.queue.done(pod.key)
            return
        self.attempts += 1
        try:
            node, tier = self.select_node(pod, clock().monotonic() - q.first_seen)
        except FitError as e:
            self.failures += 1
            self.queue.add_unschedulable(q, e.plugins or {"NoNodes"})
            if e.retry_after is not None:       # a policy opens more nodes later: retry then
                asyncio.get_running_loop().call_later(max(e.retry_after, 0.0), self.queue.activate, pod.key)
            self._spawn(self._record_failure(pod, e.message))
            return
        except Exception as e:  # noqa: BLE001 - a plugin bug must not stop the scheduler
            log.exception("scheduling %s failed", pod.key)
            self.queue.requeue_error(q)
            self._spawn(self._record_failure(pod, f"running scheduling cycle: {e}", reason="SchedulerError"))
            return
        assumed = pod.assigned_to(node)
        self.cache.assume_pod(assumed)
        await self._bind_slots.acquire()
        cost = policies.deletion_cost_for(policies.policy_of(pod.pod), tier)
        task = asyncio.create_task(self._bind(q, assumed, cost), name=f"bind {pod.key}")
        self._binds.add(task)
        task.add_done_callback(self._binds.discard)

    async def _bind(self, q: QueuedPod, assumed: PodInfo, deletion_cost: int | None = None) -> None:
        key = assumed.key
        try:
            body = {"apiVersion": "v1", "kind": "Binding",
                    "metadata": {"name": assumed.name, "namespace": assumed.namespace, "uid": assumed.uid},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": assumed.node_name}}
            path = f"/api/v1/namespaces/{assumed.namespace}/pods/{assumed.name}/binding"
            try:
                await self.client.request("POST", path, body=body)
            except ApiError as e:
                self.cache.forget_pod(key)
                if e.not_found or (e.status == 409 and "already assigned" in e.message) or \
                        "being deleted" in e.message:
                    self.queue.done(key)
                    return
                log.info("binding %s to %s failed: %s", key, assumed.node_name, e)
                self._move(POD_DELETE)
                self.queue.requeue_error(q)
                self.recorder.event(assumed.pod, "Warning", "FailedScheduling",
                                    f"Binding rejected: {e.message}", "Scheduling")
                return
            except Exception as e:  # noqa: BLE001 - connection trouble: retry later
                self.cache.forget_pod(key)
                self._move(POD_DELETE)
                self.queue.requeue_error(q)
                log.info("binding %s failed: %s", key, e)
                return
            now = self.queue.clock()
            self.scheduled += 1
            self.queue_wait.append(q.popped_at - q.initial_timestamp)
            self.e2e.append(now - q.initial_timestamp)
            self.queue.done(key)
            if self.record_scheduled_events:
                self.recorder.event(assumed.pod, "Normal", "Scheduled",
                                    f"Successfully assigned {key} to {assumed.node_name}", "Binding")
            if deletion_cost is not None:
                await self._set_deletion_cost(assumed, deletion_cost)
        finally:
            self._bind_slots.release()

    async def _set_deletion_cost(self, pod: PodInfo, cost: int) -> None:
        """Scale-in in reverse order of the policy's tiers: a pod placed on a later tier
        gets a lower pod-deletion-cost (a cost the pod already carries is kept)."""
        ann = (pod.pod.get("metadata") or {}).get("annotations") or {}
        if policies.DELETION_COST_ANNOTATION in ann:
            return
        try:
            await self.client.patch(PODS, pod.name, {"metadata": {
                "uid": pod.uid, "annotations": {policies.DELETION_COST_ANNOTATION: str(cost)}}},
                pod.namespace)
        except Exception as e:  # noqa: BLE001 - best effort, as ACK's reverse-order scale-in
            log.info("setting the deletion cost of %s failed: %s", pod.key, e)

    async def _record_failure(self, pod: PodInfo, message: str, reason: str = "Unschedulable") -> None:
        """PodScheduled=False (if it changed) and a FailedScheduling event."""
        current = self.pods.get(pod.key) or pod.pod
        if not self.responsible_for(current):
            return
        self.recorder.event(current, "Warning", "FailedScheduling", message, "Scheduling")
        conds = (current.get("status") or {}).get("conditions") or []
        old = next((c for c in conds if c.get("type") == "PodScheduled"), None)
        if old and old.get("status") == "False" and old.get("reason") == reason and \
                old.get("message") == message:
            return
        now = _now()
        cond = {"type": "PodScheduled", "status": "False", "reason": reason, "message": message,
                "lastProbeTime": None,
                "lastTransitionTime": old.get("lastTransitionTime") if old and old.get("status") == "False"
                else now}
        try:
            await self.client.patch(PODS, pod.name, {"status": {"conditions": [cond]}}, pod.namespace,
                                    patch_type="strategic", subresource="status")
        except ApiError as e:
            if not e.not_found:
                log.info("updating the status of %s failed: %s", pod.key, e)
        except Exception as e:  # noqa: BLE001
            log.info("updating the status of %s failed: %s", pod.key, e)

    def _spawn(self, coro) -> None:
        t = asyncio.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    # ---- running ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Sync the caches, then schedule until ``stop`` is set."""
        self._bind_slots = asyncio.Semaphore(self.bind_concurrency)
        self.recorder.start()
        informers = (self.namespaces, self.nodes, self.pods)
        for inf in informers:
            inf.start()
        loop_task = None
        try:
            for inf in informers:
                await inf.wait_synced()
            self.ready.set()
            loop_task = asyncio.create_task(self._loop(), name="scheduling loop")
            await unless_set(loop_task, stop)      # the loop's failure is raised here
        finally:
            self.queue.close()
            if loop_task is not None and not loop_task.done():
                loop_task.cancel()
                await asyncio.gather(loop_task, return_exceptions=True)
            if self._binds:
                await asyncio.wait(set(self._binds), timeout=5)
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=5)
            await self.recorder.stop()
            for inf in informers:
                inf.stop()

    async def _loop(self) -> None:
        while True:
            q = await self.queue.pop()
            if q is None:
                return
            await self.schedule_one(q)
            await asyncio.sleep(0)      # let informer events and bindings through


def _key(pod: dict) -> str:
    m = pod.get("metadata") or {}
    return f"{m.get('namespace') or 'default'}/{m.get('name')}"


def _node_changed(old: dict, new: dict) -> bool:
    """Did anything a plugin reads change (not just heartbeats)?"""
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    os_, ns_ = old.get("status") or {}, new.get("status") or {}
    return (om.get("labels") != nm.get("labels") or old.get("spec") != new.get("spec")
            or os_.get("allocatable") != ns_.get("allocatable"))


async def run_scheduler(kubeconfig: str, *, stop: asyncio.Event, name: str = DEFAULT_SCHEDULER_NAME,
                        context: str | None = None, **options) -> None:
    """Run a scheduler against the API server of ``kubeconfig`` until ``stop`` is set."""
    client = Client(load_kubeconfig(kubeconfig, context), component="scheduler")
    try:
        await Scheduler(client, name=name, **options).run(stop)
    finally:
        await client.close()


__all__ = ["Scheduler", "FitError", "EventRecorder", "run_scheduler", "DEFAULT_SCHEDULER_NAME"]
