"""Running controllers: skube's kube-controller-manager.

``ControllerManager`` starts named controllers over one shared :class:`Client`
inside the current event loop; ``run_controllers`` is the whole lifecycle for a
kubeconfig (used by ``skube apiserver`` and ``skube up``)."""
from __future__ import annotations

import asyncio
import logging

from ..aio import wait_set
from ..client import Client, load_kubeconfig
from ..scheduler import Scheduler
from .cronjob import CronJobController
from .daemonset import DaemonSetController
from .deployment import DeploymentController
from .disruption import DisruptionController
from .endpoints import EndpointsController, EndpointSliceController
from .garbagecollector import GarbageCollector
from .job import JobController
from .leaderelection import LeaderElector
from .namespace import NamespaceController
from .nodelifecycle import NodeLifecycleController
from .podgc import PodGCController
from .replicaset import ReplicaSetController
from .rootca import RootCACertPublisher
from .serviceaccount import ServiceAccountController
from .statefulset import StatefulSetController

log = logging.getLogger("skube.controllers")

CONTROLLERS = {
    "garbagecollector": GarbageCollector,
    "namespace": NamespaceController,
    "disruption": DisruptionController,
    "nodelifecycle": NodeLifecycleController,
    "replicaset": ReplicaSetController,
    "deployment": DeploymentController,
    "statefulset": StatefulSetController,
    "daemonset": DaemonSetController,
    "job": JobController,
    "cronjob": CronJobController,
    "endpoints": EndpointsController,
    "endpointslice": EndpointSliceController,
    "serviceaccount": ServiceAccountController,
    "root-ca-cert-publisher": RootCACertPublisher,
    "podgc": PodGCController,
    "scheduler": Scheduler,
}
DEFAULT_CONTROLLERS = tuple(CONTROLLERS)


class ControllerManager:
    """Named controllers sharing one Client. ``await start()``, ``await wait_ready()``,
    ``await stop()`` — or ``await run(stop_event)`` for all three."""

    def __init__(self, client: Client, names: list[str] | tuple[str, ...] = DEFAULT_CONTROLLERS,
                 **options: dict):
        unknown = [n for n in names if n not in CONTROLLERS]
        if unknown:
            raise ValueError(f"unknown controllers: {', '.join(unknown)} "
                             f"(known: {', '.join(CONTROLLERS)})")
        self.client = client
        self.options = options       # controller name -> keyword arguments of its constructor
        self.controllers = {n: CONTROLLERS[n](client, **options.get(n, {})) for n in names}
        self._stop = asyncio.Event()
        self._tasks: dict[str, asyncio.Task] = {}

    def __getitem__(self, name: str):
        return self.controllers[name]

    async def start(self) -> None:
        self._stop.clear()
        for name, ctrl in self.controllers.items():
            if name not in self._tasks or self._tasks[name].done():
                self._tasks[name] = asyncio.create_task(self._run_one(name, ctrl),
                                                        name=f"controller {name}")

    async def _run_one(self, name: str, ctrl) -> None:
        while not self._stop.is_set():
            try:
                await ctrl.run(self._stop)
                return
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - restart a crashed controller after a pause
                log.exception("controller %s crashed; restarting", name)
                await wait_set(self._stop, 5.0)
                ctrl = self.controllers[name] = CONTROLLERS[name](self.client, **self.options.get(name, {}))

    async def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until every controller has synced its caches; False on timeout."""
        try:
            await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in self.controllers.values())),
                                   timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        tasks = list(self._tasks.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for t in pending:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()


async def run_controllers(kubeconfig: str, names: list[str], *, stop: asyncio.Event,
                          context: str | None = None, leader_elect: bool = True,
                          lease_name: str = "skube-controller-manager",
                          lease_namespace: str = "kube-system", identity: str | None = None,
                          lease_duration: float = 15.0, renew_deadline: float = 10.0,
                          retry_period: float = 2.0) -> None:
    """Run the named controllers against the API server of ``kubeconfig`` until ``stop`` is set.

    With ``leader_elect`` (the default) they run only while this process holds the
    Lease ``lease_namespace/lease_name`` (see :mod:`.leaderelection`), so two managers on
    one cluster never both act: a fresh ControllerManager starts on each acquisition and
    is stopped on losing the Lease; on ``stop`` the Lease is released after the
    controllers have stopped."""
    unknown = [n for n in names if n not in CONTROLLERS]
    if unknown:
        raise ValueError(f"unknown controllers: {', '.join(unknown)} (known: {', '.join(CONTROLLERS)})")
    client = Client(load_kubeconfig(kubeconfig, context), component="controller-manager")
    try:
        if not leader_elect:
            await ControllerManager(client, names).run(stop)
            return
        current: list[ControllerManager] = []

        async def started() -> None:
            manager = ControllerManager(client, names)
            current.append(manager)
            await manager.start()

        async def stopped() -> None:
            while current:
                await current.pop().stop()

        elector = LeaderElector(client, lease_name, lease_namespace, identity,
                                lease_duration=lease_duration, renew_deadline=renew_deadline,
                                retry_period=retry_period)
        await elector.run(started, stopped, stop)
    finally:
        await client.close()


__all__ = ["ControllerManager", "run_controllers", "LeaderElector", "CONTROLLERS", "DEFAULT_CONTROLLERS"]
