"""skube's scheduler: kube-scheduler's default profile over :mod:`skube.client`.

    from skube.scheduler import Scheduler, run_scheduler

    await run_scheduler(kubeconfig, stop=stop_event)      # standalone
    sched = Scheduler(client); await sched.run(stop)      # in-process (``sched.ready``)

Modules: :mod:`.queue` (active/backoff/unschedulable), :mod:`.cache` (node infos and
pod indexes), :mod:`.plugins` (filter and score plugins), :mod:`.scheduler` (the loop,
binding, failure reporting), :mod:`.policies` (elastic scheduling policies: node tiers).
"""
from .cache import NodeInfo, PodInfo, SchedulerCache
from .plugins import Plugin, Status, default_plugins
from .queue import QueuedPod, SchedulingQueue
from .scheduler import DEFAULT_SCHEDULER_NAME, EventRecorder, FitError, Scheduler, run_scheduler

__all__ = ["Scheduler", "run_scheduler", "FitError", "EventRecorder", "DEFAULT_SCHEDULER_NAME",
           "SchedulingQueue", "QueuedPod", "SchedulerCache", "NodeInfo", "PodInfo", "Plugin",
           "Status", "default_plugins"]
