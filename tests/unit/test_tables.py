"""Server-side printing: Table rows of realistic objects against what kubectl shows."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from skube.api.errors import APIError
from skube.api.jsonpath import JSONPathError, find, format_value
from skube.api.registry import BUILTIN, ResourceInfo
from skube.api.tables import column_definitions, human_duration, to_table

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def ago(seconds: float = 0, *, minutes: float = 0, hours: float = 0, days: float = 0) -> str:
    t = NOW - timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


INFO = {(r.group, r.kind): r for r in BUILTIN}


def info(kind: str, group: str = "") -> ResourceInfo:
    return INFO[(group, kind)]


def meta(name: str, created: str | None = None, **extra) -> dict:
    m = {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": "7",
         "creationTimestamp": created or ago(days=2, hours=3)}
    m.update(extra)
    return m


def cells(kind: str, obj: dict, group: str = "") -> list:
    return to_table(info(kind, group), [obj], now=NOW)["rows"][0]["cells"]


def headers(kind: str, group: str = "", wide: bool = False) -> list[str]:
    cols = column_definitions(info(kind, group))
    return [c["name"].upper() for c in cols if wide or c["priority"] == 0]


# --- formatting helpers -----------------------------------------------------------

@pytest.mark.parametrize("delta,text", [
    (timedelta(seconds=0), "0s"),
    (timedelta(seconds=1), "1s"),
    (timedelta(seconds=-1), "0s"),
    (timedelta(seconds=-2), "<invalid>"),
    (timedelta(seconds=70), "70s"),
    (timedelta(seconds=119.9), "119s"),
    (timedelta(seconds=190), "3m10s"),
    (timedelta(minutes=5), "5m"),
    (timedelta(minutes=70), "70m"),
    (timedelta(hours=3, minutes=20), "3h20m"),
    (timedelta(hours=5), "5h"),
    (timedelta(hours=47), "47h"),
    (timedelta(hours=49), "2d1h"),
    (timedelta(days=3), "3d"),
    (timedelta(hours=8 * 24 + 2), "8d"),
    (timedelta(days=45), "45d"),
    (timedelta(days=367), "367d"),
    (timedelta(hours=365 * 2 * 24 + 25), "2y1d"),
    (timedelta(days=365 * 3), "3y"),
    (timedelta(hours=365 * 8 * 24 + 2), "8y"),
])
def test_human_duration(delta, text):
    assert human_duration(delta) == text


# --- table envelope ---------------------------------------------------------------

def test_table_envelope_and_include_object():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta("p"), "spec": {"containers": [{"name": "c"}]},
           "status": {"phase": "Pending"}}
    t = to_table(info("Pod"), [pod], resource_version="42", continue_token="tok", remaining=3, now=NOW)
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"] == {"resourceVersion": "42", "continue": "tok", "remainingItemCount": 3}
    assert t["columnDefinitions"][0] == {"name": "Name", "type": "string", "format": "name",
                                         "description": t["columnDefinitions"][0]["description"],
                                         "priority": 0}
    assert t["rows"][0]["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                      "metadata": pod["metadata"]}
    assert to_table(info("Pod"), [pod], include_object="Object", now=NOW)["rows"][0]["object"] is pod
    assert to_table(info("Pod"), [pod], include_object="None", now=NOW)["rows"][0]["object"] is None
    assert to_table(info("Pod"), [], now=NOW) | {"columnDefinitions": None} == {
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": None,
        "rows": []}
    with pytest.raises(APIError) as exc:
        to_table(info("Pod"), [pod], include_object="Everything")
    assert exc.value.message == 'unrecognized includeObject value: "Everything"'


@pytest.mark.parametrize("kind,group,wide,names", [
    ("Pod", "", False, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]),
    ("Pod", "", True, ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE",
                       "READINESS GATES"]),
    ("Node", "", True, ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP",
                        "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]),
    ("Deployment", "apps", True, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS",
                                  "IMAGES", "SELECTOR"]),
    ("ReplicaSet", "apps", False, ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]),
    ("StatefulSet", "apps", False, ["NAME", "READY", "AGE"]),
    ("DaemonSet", "apps", False, ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE",
                                  "NODE SELECTOR", "AGE"]),
    ("Service", "", True, ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]),
    ("Job", "batch", True, ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE", "CONTAINERS", "IMAGES",
                            "SELECTOR"]),
    ("CronJob", "batch", False, ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE",
                                 "AGE"]),
    ("Event", "", False, ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]),
    ("Event", "", True, ["LAST SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE",
                         "FIRST SEEN", "COUNT", "NAME"]),
    ("Event", "events.k8s.io", False, ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]),
    ("Namespace", "", False, ["NAME", "STATUS", "AGE"]),
    ("ConfigMap", "", False, ["NAME", "DATA", "AGE"]),
    ("Secret", "", False, ["NAME", "TYPE", "DATA", "AGE"]),
    ("ServiceAccount", "", False, ["NAME", "SECRETS", "AGE"]),
    ("Endpoints", "", False, ["NAME", "ENDPOINTS", "AGE"]),
    ("EndpointSlice", "discovery.k8s.io", False, ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]),
    ("Lease", "coordination.k8s.io", False, ["NAME", "HOLDER", "AGE"]),
    ("PodDisruptionBudget", "policy", False, ["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE",
                                              "ALLOWED DISRUPTIONS", "AGE"]),
    ("RoleBinding", "rbac.authorization.k8s.io", True, ["NAME", "ROLE", "AGE", "USERS", "GROUPS",
                                                        "SERVICEACCOUNTS"]),
    ("Role", "rbac.authorization.k8s.io", False, ["NAME", "CREATED AT"]),
    ("ClusterRole", "rbac.authorization.k8s.io", False, ["NAME", "CREATED AT"]),
    ("LimitRange", "", False, ["NAME", "CREATED AT"]),
    ("CustomResourceDefinition", "apiextensions.k8s.io", False, ["NAME", "CREATED AT"]),
    ("ResourceQuota", "", False, ["NAME", "REQUEST", "LIMIT", "AGE"]),
    ("PersistentVolumeClaim", "", True, ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES",
                                         "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "AGE", "VOLUMEMODE"]),
    ("ControllerRevision", "apps", False, ["NAME", "CONTROLLER", "REVISION", "AGE"]),
])
def test_column_headers(kind, group, wide, names):
    assert headers(kind, group, wide) == names


# --- pods ------------------------------------------------------------------------

def pod(name="web-1", *, containers=("app",), init=(), phase="Running", statuses=None,
        init_statuses=None, conditions=None, node="node-1", ip="10.244.1.5", **extra):
    p = {"apiVersion": "v1", "kind": "Pod", "metadata": meta(name, ago(days=2, hours=3)),
         "spec": {"containers": [{"name": c, "image": "nginx"} for c in containers],
                  "nodeName": node},
         "status": {"phase": phase}}
    if init:
        p["spec"]["initContainers"] = [dict(c) if isinstance(c, dict) else {"name": c, "image": "busybox"}
                                       for c in init]
    if statuses is not None:
        p["status"]["containerStatuses"] = statuses
    if init_statuses is not None:
        p["status"]["initContainerStatuses"] = init_statuses
    if conditions is not None:
        p["status"]["conditions"] = conditions
    if ip:
        p["status"]["podIP"] = ip
        p["status"]["podIPs"] = [{"ip": ip}]
    for k, v in extra.items():
        section, _, key = k.partition("__")
        (p["metadata"] if section == "meta" else p[section])[key] = v
    return p


def running(name="app", restarts=0, finished=None, ready=True):
    cs = {"name": name, "ready": ready, "restartCount": restarts, "started": True,
          "state": {"running": {"startedAt": ago(minutes=4)}}}
    if finished:
        cs["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": finished}}
    return cs


def waiting(reason, name="app", restarts=0, finished=None):
    cs = {"name": name, "ready": False, "restartCount": restarts, "state": {"waiting": {"reason": reason}}}
    if finished:
        cs["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": finished}}
    return cs


def terminated(reason="Completed", code=0, name="app", signal=None):
    term = {"exitCode": code, "finishedAt": ago(minutes=1)}
    if reason:
        term["reason"] = reason
    if signal:
        term["signal"] = signal
    return {"name": name, "ready": False, "restartCount": 0, "state": {"terminated": term}}


READY = [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"},
         {"type": "ContainersReady", "status": "True"}, {"type": "PodScheduled", "status": "True"}]
NOT_INITIALIZED = [{"type": "Initialized", "status": "False"}, {"type": "PodScheduled", "status": "True"}]

POD_CASES = {
    "running with restarts": (
        pod(containers=("app", "sidecar"), conditions=READY,
            statuses=[running("app", 3, ago(minutes=5)), running("sidecar")]),
        ["web-1", "2/2", "Running", "3 (5m ago)", "2d3h", "10.244.1.5", "node-1", "<none>", "<none>"]),
    "unscheduled": (
        pod(phase="Pending", node=None, ip=None,
            conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]),
        ["web-1", "0/1", "Pending", "0", "2d3h", "<none>", "<none>", "<none>", "<none>"]),
    "scheduling gated": (
        pod(phase="Pending", node=None, ip=None,
            conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]),
        ["web-1", "0/1", "SchedulingGated", "0", "2d3h", "<none>", "<none>", "<none>", "<none>"]),
    "container creating": (
        pod(phase="Pending", ip=None, statuses=[waiting("ContainerCreating")]),
        ["web-1", "0/1", "ContainerCreating", "0", "2d3h", "<none>", "node-1", "<none>", "<none>"]),
    "crash loop": (
        pod(statuses=[waiting("CrashLoopBackOff", restarts=4, finished=ago(30))]),
        ["web-1", "0/1", "CrashLoopBackOff", "4 (30s ago)", "2d3h", "10.244.1.5", "node-1", "<none>",
         "<none>"]),
    "image pull backoff": (
        pod(phase="Pending", statuses=[waiting("ImagePullBackOff")]),
        ["web-1", "0/1", "ImagePullBackOff", "0", "2d3h", "10.244.1.5", "node-1", "<none>", "<none>"]),
    "completed": (
        pod(phase="Succeeded", statuses=[terminated()]),
        ["web-1", "0/1", "Completed", "0", "2d3h", "10.244.1.5", "node-1", "<none>", "<none>"]),
    "error": (
        pod(phase="Failed", statuses=[terminated("Error", 1)]),
        ["web-1", "0/1", "Error", "0", "2d3h", "10.244.1.5", "node-1", "<none>", "<none>"]),
    "oom killed": (
        pod(phase="Running", statuses=[terminated("OOMKilled", 137)]),
        ["web-1", "0/1", "OOMKilled", "0", "2d3h", "10.244.1.5", "node-1", "<none>", "<none>"]),
    "exit code without reason": (
        pod(phase="Failed", statuses=[terminated(None, 2)]),
        ["web-1", "0/1", "ExitCode:2", "0", "2d3h", "10.244.1.5", "node-1", "<none>", "<none>"]),
    "signal without reason": (
        pod(phase="Failed", statuses=[terminated(None, 137, signal=9)]),
        ["web-1", "0/1", "Signal:9", "0", "2d3h", "10.244.1.5", "node-1", "<none>", "<none>"]),
    "first init running": (
        pod(phase="Pending", init=("init-a", "init-b"), conditions=NOT_INITIALIZED,
            init_statuses=[running("init-a", ready=False), waiting("PodInitializing", "init-b")],
            statuses=[waiting("PodInitializing")]),
        ["web-1", "0/1", "Init:0/2", "0", "2d3h", "10.244.1.5", "node-1", "<none>", "<none>"]),
    "second init running": (
        pod(phase="Pending", init=("init-a", "init-b"), conditions=NOT_INITIALIZED,
            init_statuses=[terminated(name="init-a"), running("init-b", ready=False)],
            statuses=[waiting("PodInitializing")]),
        ["web-1", "0/1", "Init:1/2", "0", "2d3h", "10.244.1.5", "node-1", "<none>", "<none>"]),
    "init crash loop": (
        pod(phase="Pending", init=("init-a",), conditions=NOT_INITIALIZED,
            init_statuses=[waiting("CrashLoopBackOff", "init-a", restarts=2, finished=ago(minutes=1))],
            statuses=[waiting("PodInitializing")]),
        ["web-1", "0/1", "Init:CrashLoopBackOff", "2 (60s ago)", "2d3h", "10.244.1.5", "node-1",
         "<none>", "<none>"]),
    "init error": (
        pod(phase="Failed", init=("init-a",), init_statuses=[terminated("Error", 1, name="init-a")],
            statuses=[waiting("PodInitializing")]),
        ["web-1", "0/1", "Init:Error", "0", "2d3h", "10.244.1.5", "node-1", "<none>", "<none>"]),
    "init exit code": (
        pod(phase="Pending", init=("init-a",), init_statuses=[terminated(None, 3, name="init-a")]),
        ["web-1", "0/1", "Init:ExitCode:3", "0", "2d3h", "10.244.1.5", "node-1", "<none>", "<none>"]),
    "pod initializing": (
        pod(phase="Pending", init=("init-a",),
            init_statuses=[terminated(name="init-a")], statuses=[waiting("PodInitializing")]),
        ["web-1", "0/1", "PodInitializing", "0", "2d3h", "10.244.1.5", "node-1", "<none>", "<none>"]),
    "native sidecar": (
        pod(init=({"name": "proxy", "image": "envoy", "restartPolicy": "Always"},), conditions=READY,
            init_statuses=[running("proxy", 1, ago(hours=2))], statuses=[running("app")]),
        ["web-1", "2/2", "Running", "1 (120m ago)", "2d3h", "10.244.1.5", "node-1", "<none>", "<none>"]),
    "terminating": (
        pod(conditions=READY, statuses=[running()], meta__deletionTimestamp=ago(10)),
        ["web-1", "1/1", "Terminating", "0", "2d3h", "10.244.1.5", "node-1", "<none>", "<none>"]),
    "terminal pod being deleted keeps its reason": (
        pod(phase="Succeeded", statuses=[terminated()], meta__deletionTimestamp=ago(10)),
        ["web-1", "0/1", "Completed", "0", "2d3h", "10.244.1.5", "node-1", "<none>", "<none>"]),
    "node lost": (
        pod(statuses=[running()], meta__deletionTimestamp=ago(10), status__reason="NodeLost"),
        ["web-1", "1/1", "Unknown", "0", "2d3h", "10.244.1.5", "node-1", "<none>", "<none>"]),
    "evicted": (
        pod(phase="Failed", status__reason="Evicted", ip=None),
        ["web-1", "0/1", "Evicted", "0", "2d3h", "<none>", "node-1", "<none>", "<none>"]),
    "completed container beside a running one, not ready": (
        pod(containers=("job", "helper"), statuses=[terminated(name="job"), running("helper")]),
        ["web-1", "1/2", "NotReady", "0", "2d3h", "10.244.1.5", "node-1", "<none>", "<none>"]),
    "completed container beside a running one, ready": (
        pod(containers=("job", "helper"), conditions=READY,
            statuses=[terminated(name="job"), running("helper")]),
        ["web-1", "1/2", "Running", "0", "2d3h", "10.244.1.5", "node-1", "<none>", "<none>"]),
    "readiness gates and nominated node": (
        pod(statuses=[running()], spec__readinessGates=[{"conditionType": "example.com/lb"},
                                                        {"conditionType": "example.com/dns"}],
            conditions=READY + [{"type": "example.com/lb", "status": "True"},
                                {"type": "example.com/dns", "status": "False"}],
            status__nominatedNodeName="node-2"),
        ["web-1", "1/1", "Running", "0", "2d3h", "10.244.1.5", "node-1", "node-2", "1/2"]),
}


@pytest.mark.parametrize("case", list(POD_CASES))
def test_pod_rows(case):
    obj, expected = POD_CASES[case]
    assert cells("Pod", obj) == expected


def test_pod_row_conditions():
    done = to_table(info("Pod"), [POD_CASES["completed"][0]], now=NOW)["rows"][0]
    assert done["conditions"] == [{"type": "Completed", "status": "True", "reason": "Succeeded",
                                   "message": "The pod has completed successfully."}]
    failed = to_table(info("Pod"), [POD_CASES["error"][0]], now=NOW)["rows"][0]
    assert failed["conditions"][0]["reason"] == "Failed"
    assert "conditions" not in to_table(info("Pod"), [POD_CASES["crash loop"][0]], now=NOW)["rows"][0]


# --- workloads -------------------------------------------------------------------

TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"},
                                    {"name": "log", "image": "fluent-bit:3"}]}}


def workload(kind, name, spec, status, created=None):
    return {"kind": kind, "metadata": meta(name, created or ago(minutes=45)), "spec": spec, "status": status}


@pytest.mark.parametrize("kind,group,obj,expected", [
    ("Deployment", "apps",
     workload("Deployment", "web", {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                                    "template": TEMPLATE},
              {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}),
     ["web", "2/3", 3, 2, "45m", "nginx,log", "nginx:1.25,fluent-bit:3", "app=web"]),
    ("Deployment", "apps",
     workload("Deployment", "fresh", {"selector": {"matchLabels": {"app": "web"}, "matchExpressions": [
         {"key": "tier", "operator": "In", "values": ["b", "a"]}]}, "template": TEMPLATE}, {}),
     ["fresh", "0/1", 0, 0, "45m", "nginx,log", "nginx:1.25,fluent-bit:3", "app=web,tier in (a,b)"]),
    ("ReplicaSet", "apps",
     workload("ReplicaSet", "web-7c5b9f", {"replicas": 2, "selector": {"matchLabels": {
         "app": "web", "pod-template-hash": "7c5b9f"}}, "template": TEMPLATE},
              {"replicas": 2, "readyReplicas": 1}),
     ["web-7c5b9f", 2, 2, 1, "45m", "nginx,log", "nginx:1.25,fluent-bit:3",
      "app=web,pod-template-hash=7c5b9f"]),
    ("ReplicaSet", "apps",
     workload("ReplicaSet", "old", {"replicas": 0, "template": TEMPLATE}, {"replicas": 0}),
     ["old", 0, 0, 0, "45m", "nginx,log", "nginx:1.25,fluent-bit:3", "<none>"]),
    ("StatefulSet", "apps",
     workload("StatefulSet", "db", {"replicas": 3, "template": TEMPLATE}, {"readyReplicas": 3}),
     ["db", "3/3", "45m", "nginx,log", "nginx:1.25,fluent-bit:3"]),
    ("DaemonSet", "apps",
     workload("DaemonSet", "agent", {"selector": {"matchLabels": {"app": "agent"}},
                                     "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                                           "containers": [{"name": "a", "image": "agent:1"}]}}},
              {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
               "updatedNumberScheduled": 3, "numberAvailable": 2}),
     ["agent", 3, 3, 2, 3, 2, "kubernetes.io/os=linux", "45m", "a", "agent:1", "app=agent"]),
    ("DaemonSet", "apps",
     workload("DaemonSet", "all", {"template": {"spec": {"containers": []}}}, {}),
     ["all", 0, 0, 0, 0, 0, "<none>", "45m", "", "", "<none>"]),
])
def test_workload_rows(kind, group, obj, expected):
    assert cells(kind, obj, group) == expected


JOB_TEMPLATE = {"spec": {"containers": [{"name": "pi", "image": "perl:5"}], "restartPolicy": "Never"}}
JOB_SELECTOR = {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}


@pytest.mark.parametrize("spec,status,meta_extra,expected", [
    ({"completions": 1, "parallelism": 1}, {"succeeded": 1, "startTime": ago(70), "completionTime": ago(58),
                                            "conditions": [{"type": "Complete", "status": "True"}]},
     {}, ["Complete", "1/1", "12s"]),
    ({"completions": 5, "parallelism": 2}, {"succeeded": 2, "active": 2, "startTime": ago(minutes=3, seconds=20)},
     {}, ["Running", "2/5", "3m20s"]),
    ({"parallelism": 3}, {"active": 3, "startTime": ago(30)}, {}, ["Running", "0/1 of 3", "30s"]),
    ({"parallelism": 1}, {}, {}, ["Running", "0/1", ""]),
    ({"completions": 1}, {"failed": 6, "startTime": ago(hours=1), "completionTime": ago(minutes=50),
                          "conditions": [{"type": "FailureTarget", "status": "True"},
                                         {"type": "Failed", "status": "True"}]},
     {}, ["Failed", "0/1", "10m"]),
    ({"completions": 1, "suspend": True}, {"conditions": [{"type": "Suspended", "status": "True"}]},
     {}, ["Suspended", "0/1", ""]),
    ({"completions": 1}, {"conditions": [{"type": "FailureTarget", "status": "True"}]},
     {}, ["FailureTarget", "0/1", ""]),
    ({"completions": 1}, {"startTime": ago(5)}, {"deletionTimestamp": ago(1)}, ["Terminating", "0/1", "5s"]),
])
def test_job_rows(spec, status, meta_extra, expected):
    job = workload("Job", "pi", {**spec, "selector": JOB_SELECTOR, "template": JOB_TEMPLATE}, status,
                   created=ago(hours=4))
    job["metadata"].update(meta_extra)
    assert cells("Job", job, "batch") == ["pi", *expected, "4h", "pi", "perl:5",
                                          "batch.kubernetes.io/controller-uid=u1"]


@pytest.mark.parametrize("spec,status,expected", [
    ({"schedule": "*/5 * * * *", "suspend": False}, {}, ["*/5 * * * *", "<none>", "False", 0, "<none>"]),
    ({"schedule": "0 3 * * *", "timeZone": "Europe/Paris", "suspend": True},
     {"active": [{"name": "nightly-1"}], "lastScheduleTime": ago(minutes=7)},
     ["0 3 * * *", "Europe/Paris", "True", 1, "7m"]),
    ({"schedule": "@hourly"}, {}, ["@hourly", "<none>", "False", 0, "<none>"]),
])
def test_cronjob_rows(spec, status, expected):
    cj = workload("CronJob", "nightly", {**spec, "jobTemplate": {"spec": {"template": JOB_TEMPLATE}}},
                  status, created=ago(days=3))
    assert cells("CronJob", cj, "batch") == ["nightly", *expected, "3d", "pi", "perl:5", "<none>"]


# --- nodes and namespaces ------------------------------------------------------------

def node(name, *, ready="True", unschedulable=False, labels=None, conditions=True):
    n = {"kind": "Node", "metadata": {"name": name, "creationTimestamp": ago(days=45),
                                      "labels": labels or {}},
         "spec": {"unschedulable": True} if unschedulable else {},
         "status": {"nodeInfo": {"kubeletVersion": "v1.37.1", "osImage": "Debian GNU/Linux 12 (bookworm)",
                                 "kernelVersion": "6.1.0-18-amd64",
                                 "containerRuntimeVersion": "containerd://1.7.13"},
                    "addresses": [{"type": "InternalIP", "address": "192.168.1.10"},
                                  {"type": "Hostname", "address": name}]}}
    if conditions:
        n["status"]["conditions"] = [{"type": "MemoryPressure", "status": "False"},
                                     {"type": "Ready", "status": ready}]
    return n


@pytest.mark.parametrize("obj,expected", [
    (node("cp-1", labels={"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/master": ""}),
     ["cp-1", "Ready", "control-plane,master", "45d", "v1.37.1"]),
    (node("w-1", ready="False", unschedulable=True), ["w-1", "NotReady,SchedulingDisabled", "<none>", "45d",
                                                      "v1.37.1"]),
    (node("w-2", ready="Unknown"), ["w-2", "NotReady", "<none>", "45d", "v1.37.1"]),
    (node("w-3", conditions=False, labels={"kubernetes.io/role": "worker"}),
     ["w-3", "Unknown", "worker", "45d", "v1.37.1"]),
])
def test_node_rows(obj, expected):
    assert cells("Node", obj) == expected + ["192.168.1.10", "<none>", "Debian GNU/Linux 12 (bookworm)",
                                             "6.1.0-18-amd64", "containerd://1.7.13"]


def test_node_wide_unknowns():
    bare = {"metadata": {"name": "virtual", "creationTimestamp": ago(90)}, "status": {}}
    assert cells("Node", bare) == ["virtual", "Unknown", "<none>", "90s", "", "<none>", "<none>",
                                   "<unknown>", "<unknown>", "<unknown>"]


def test_namespace_rows():
    ns = {"metadata": {"name": "kube-system", "creationTimestamp": ago(days=10)}, "status": {"phase": "Active"}}
    gone = {"metadata": {"name": "old", "creationTimestamp": ago(minutes=3)}, "status": {"phase": "Terminating"}}
    t = to_table(info("Namespace"), [ns, gone], now=NOW)
    assert [r["cells"] for r in t["rows"]] == [["kube-system", "Active", "10d"], ["old", "Terminating", "3m"]]


# --- services and endpoints -------------------------------------------------------

def svc(name, spec, status=None):
    return {"metadata": meta(name, ago(hours=5)), "spec": spec, "status": status or {}}


@pytest.mark.parametrize("obj,expected", [
    (svc("kubernetes", {"type": "ClusterIP", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
                        "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}),
     ["kubernetes", "ClusterIP", "10.96.0.1", "<none>", "443/TCP", "5h", "<none>"]),
    (svc("web", {"type": "NodePort", "clusterIPs": ["10.96.12.7"], "selector": {"app": "web"},
                 "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                           {"port": 53, "nodePort": 30053, "protocol": "UDP"}]}),
     ["web", "NodePort", "10.96.12.7", "<none>", "80:30080/TCP,53:30053/UDP", "5h", "app=web"]),
    (svc("lb", {"type": "LoadBalancer", "clusterIPs": ["10.96.3.3"], "ports": [{"port": 80, "nodePort": 31000}]}),
     ["lb", "LoadBalancer", "10.96.3.3", "<pending>", "80:31000/TCP", "5h", "<none>"]),
    (svc("lb2", {"type": "LoadBalancer", "clusterIPs": ["10.96.3.4"], "externalIPs": ["1.2.3.4"],
                 "ports": [{"port": 80, "nodePort": 31001, "protocol": "TCP"}]},
         {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "lb.example.com"}]}}),
     ["lb2", "LoadBalancer", "10.96.3.4", "203.0.113.9,lb.example.com,1.2.3.4", "80:31001/TCP", "5h",
      "<none>"]),
    (svc("ext", {"type": "ExternalName", "externalName": "db.example.com"}),
     ["ext", "ExternalName", "<none>", "db.example.com", "<none>", "5h", "<none>"]),
    (svc("headless", {"clusterIP": "None", "clusterIPs": ["None"], "selector": {"app": "db"},
                      "ports": [{"port": 5432}], "externalIPs": ["10.0.0.9"]}),
     ["headless", "ClusterIP", "None", "10.0.0.9", "5432/TCP", "5h", "app=db"]),
])
def test_service_rows(obj, expected):
    assert cells("Service", obj) == expected


@pytest.mark.parametrize("subsets,text", [
    ([], "<none>"),
    ([{"addresses": [{"ip": "10.244.1.5"}, {"ip": "10.244.2.6"}], "ports": [{"port": 8080}]}],
     "10.244.1.5:8080,10.244.2.6:8080"),
    ([{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 6)], "ports": [{"port": 80}]}],
     "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more..."),
    ([{"addresses": [{"ip": "10.0.0.1"}]}], "10.0.0.1"),
    ([{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}], "[fd00::1]:80"),
])
def test_endpoints_rows(subsets, text):
    ep = {"metadata": meta("web", ago(hours=5)), "subsets": subsets}
    assert cells("Endpoints", ep) == ["web", text, "5h"]


def test_endpointslice_rows():
    es = {"metadata": meta("web-abc12", ago(hours=5)), "addressType": "IPv4",
          "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
          "endpoints": [{"addresses": ["10.244.1.5"]}, {"addresses": ["10.244.2.6"]}]}
    assert cells("EndpointSlice", es, "discovery.k8s.io") == ["web-abc12", "IPv4", "80",
                                                              "10.244.1.5,10.244.2.6", "5h"]
    empty = {"metadata": meta("e", ago(hours=5)), "addressType": "IPv6", "ports": [{"name": ""}]}
    assert cells("EndpointSlice", empty, "discovery.k8s.io") == ["e", "IPv6", "<unset>", "<unset>", "5h"]
    many = {"metadata": meta("m", ago(hours=5)), "addressType": "IPv4", "ports": [{}],
            "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(5)]}
    assert cells("EndpointSlice", many, "discovery.k8s.io")[2:4] == [
        "*", "10.0.0.0,10.0.0.1,10.0.0.2 + 2 more..."]


# --- events --------------------------------------------------------------------------

def test_core_event_rows():
    ev = {"metadata": meta("web-1.17c9a", ago(minutes=12)),
          "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default",
                             "fieldPath": "spec.containers{app}"},
          "reason": "BackOff", "message": "Back-off restarting failed container app\n", "type": "Warning",
          "source": {"component": "kubelet", "host": "node-1"},
          "firstTimestamp": ago(minutes=12), "lastTimestamp": ago(minutes=2), "count": 7}
    assert cells("Event", ev) == ["2m", "Warning", "BackOff", "pod/web-1", "spec.containers{app}",
                                  "kubelet, node-1", "Back-off restarting failed container app",
                                  "12m", 7, "web-1.17c9a"]


def test_new_style_event_rows():
    core = {"metadata": meta("web-1.17c9b", ago(40)), "involvedObject": {"kind": "Pod", "name": "web-1"},
            "reason": "Scheduled", "message": "Successfully assigned default/web-1 to node-1",
            "type": "Normal", "eventTime": "2024-05-01T11:59:20.123456Z",
            "reportingComponent": "default-scheduler", "reportingInstance": "default-scheduler-cp-1"}
    assert cells("Event", core) == ["39s", "Normal", "Scheduled", "pod/web-1", "", "default-scheduler, "
                                    "default-scheduler-cp-1", "Successfully assigned default/web-1 to node-1",
                                    "39s", 1, "web-1.17c9b"]
    v1 = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": meta("n.1", ago(minutes=30)),
          "eventTime": ago(minutes=30).replace("Z", ".000000Z"), "reportingController": "skube/node",
          "reportingInstance": "vn-0", "action": "Pulling", "reason": "Pulling", "type": "Normal",
          "regarding": {"kind": "Node", "name": "vn-0"}, "note": "pulling image",
          "series": {"count": 4, "lastObservedTime": ago(minutes=1).replace("Z", ".000000Z")}}
    assert cells("Event", v1, "events.k8s.io") == ["60s", "Normal", "Pulling", "node/vn-0", "",
                                                   "skube/node, vn-0", "pulling image", "30m", 4, "n.1"]
    cluster_event = {"metadata": meta("x", ago(5)), "involvedObject": {"kind": "Node"}, "count": 0}
    assert cells("Event", cluster_event)[:4] == ["<unknown>", "", "", "node"]


# --- config and access objects ------------------------------------------------------

@pytest.mark.parametrize("kind,group,obj,expected", [
    ("ConfigMap", "", {"metadata": meta("kube-root-ca.crt", ago(days=1)), "data": {"ca.crt": "x"}},
     ["kube-root-ca.crt", 1, "24h"]),
    ("ConfigMap", "", {"metadata": meta("bin", ago(days=1)), "data": {"a": "1"}, "binaryData": {"b": "AA=="}},
     ["bin", 2, "24h"]),
    ("ConfigMap", "", {"metadata": meta("empty", ago(days=1))}, ["empty", 0, "24h"]),
    ("Secret", "", {"metadata": meta("tls", ago(days=1)), "type": "kubernetes.io/tls",
                    "data": {"tls.crt": "eA==", "tls.key": "eA=="}}, ["tls", "kubernetes.io/tls", 2, "24h"]),
    ("Secret", "", {"metadata": meta("plain", ago(days=1)), "type": "Opaque"}, ["plain", "Opaque", 0, "24h"]),
    ("ServiceAccount", "", {"metadata": meta("default", ago(days=1))}, ["default", 0, "24h"]),
    ("ServiceAccount", "", {"metadata": meta("bot", ago(days=1)), "secrets": [{"name": "bot-token"}]},
     ["bot", 1, "24h"]),
    ("Lease", "coordination.k8s.io", {"metadata": meta("node-1", ago(days=1)),
                                      "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}},
     ["node-1", "node-1", "24h"]),
    ("Lease", "coordination.k8s.io", {"metadata": meta("free", ago(days=1)), "spec": {}}, ["free", "", "24h"]),
    ("PodDisruptionBudget", "policy", {"metadata": meta("web", ago(days=1)), "spec": {"minAvailable": 2},
                                       "status": {"disruptionsAllowed": 1}}, ["web", "2", "N/A", 1, "24h"]),
    ("PodDisruptionBudget", "policy", {"metadata": meta("db", ago(days=1)), "spec": {"maxUnavailable": "25%"},
                                       "status": {}}, ["db", "N/A", "25%", 0, "24h"]),
    ("RoleBinding", "rbac.authorization.k8s.io",
     {"metadata": meta("read", ago(days=1)), "roleRef": {"kind": "Role", "name": "reader",
                                                          "apiGroup": "rbac.authorization.k8s.io"},
      "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
                   {"kind": "ServiceAccount", "name": "ci", "namespace": "build"},
                   {"kind": "User", "name": "bob"}]},
     ["read", "Role/reader", "24h", "alice, bob", "devs", "build/ci"]),
    ("ClusterRoleBinding", "rbac.authorization.k8s.io",
     {"metadata": {"name": "admin", "creationTimestamp": ago(days=1)},
      "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}},
     ["admin", "ClusterRole/cluster-admin", "24h", "", "", ""]),
    ("Role", "rbac.authorization.k8s.io", {"metadata": meta("reader", "2024-04-30T09:15:00.5Z"), "rules": []},
     ["reader", "2024-04-30T09:15:00Z"]),
    ("ClusterRole", "rbac.authorization.k8s.io", {"metadata": {"name": "view"}}, ["view", "0001-01-01T00:00:00Z"]),
    ("LimitRange", "", {"metadata": meta("limits", "2024-04-30T09:15:00+02:00")},
     ["limits", "2024-04-30T07:15:00Z"]),
    ("CustomResourceDefinition", "apiextensions.k8s.io",
     {"metadata": {"name": "shirts.stable.example.com", "creationTimestamp": "2024-04-01T00:00:00Z"}},
     ["shirts.stable.example.com", "2024-04-01T00:00:00Z"]),
])
def test_simple_rows(kind, group, obj, expected):
    assert cells(kind, obj, group) == expected


def test_resource_quota_rows():
    rq = {"metadata": meta("compute", ago(minutes=10)),
          "status": {"hard": {"pods": "10", "requests.cpu": "1", "requests.memory": "1Gi",
                              "limits.cpu": "2", "limits.memory": "2048Mi"},
                     "used": {"pods": "3", "requests.cpu": "500m", "requests.memory": "512Mi",
                              "limits.cpu": "1"}}}
    assert cells("ResourceQuota", rq) == [
        "compute", "pods: 3/10, requests.cpu: 500m/1, requests.memory: 512Mi/1Gi",
        "limits.cpu: 1/2, limits.memory: 0/2Gi", "10m"]
    assert cells("ResourceQuota", {"metadata": meta("none", ago(minutes=10))}) == ["none", "", "", "10m"]


@pytest.mark.parametrize("obj,expected", [
    ({"metadata": meta("data-db-0", ago(days=6)),
      "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}},
               "storageClassName": "standard", "volumeMode": "Filesystem", "volumeName": "pvc-123"},
      "status": {"phase": "Bound", "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                 "capacity": {"storage": "10240Mi"}}},
     ["data-db-0", "Bound", "pvc-123", "10Gi", "RWO,RWX", "standard", "<unset>", "6d", "Filesystem"]),
    ({"metadata": meta("pending", ago(days=6), annotations={"volume.beta.kubernetes.io/storage-class": "slow"}),
      "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
               "resources": {"requests": {"storage": "1Gi"}}},
      "status": {"phase": "Pending"}},
     ["pending", "Pending", "", "", "", "slow", "<unset>", "6d", "<unset>"]),
    ({"metadata": meta("going", ago(days=6), deletionTimestamp=ago(3)),
      "spec": {"volumeName": "pv-1", "volumeAttributesClassName": "gold"}, "status": {"phase": "Bound"}},
     ["going", "Terminating", "pv-1", "0", "", "", "gold", "6d", "<unset>"]),
])
def test_pvc_rows(obj, expected):
    assert cells("PersistentVolumeClaim", obj) == expected


def test_controller_revision_rows():
    cr = {"metadata": meta("web-6d4cf56db6", ago(hours=1), ownerReferences=[
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "u", "controller": True}]),
        "revision": 2}
    assert cells("ControllerRevision", cr, "apps") == ["web-6d4cf56db6", "statefulset.apps/web", 2, "60m"]
    orphan = {"metadata": meta("x", ago(hours=1)), "revision": 1}
    assert cells("ControllerRevision", orphan, "apps") == ["x", "<none>", 1, "60m"]


# --- custom resources ---------------------------------------------------------------

def cr_info(columns=()):
    return ResourceInfo("stable.example.com", "v1", "Shirt", "shirts", "shirt", True, custom=True,
                        printer_columns=tuple(columns))


SHIRT = {"apiVersion": "stable.example.com/v1", "kind": "Shirt",
         "metadata": meta("blue-m", ago(hours=3)),
         "spec": {"color": "blue", "size": "M", "replicas": 3, "ratio": 1.5, "tags": ["a", "b"],
                  "labels": {"x": "1"}, "enabled": True},
         "status": {"observed": ago(minutes=30),
                    "conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}}


def test_custom_resource_without_printer_columns():
    t = to_table(cr_info(), [SHIRT], now=NOW)
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Age"]
    assert t["columnDefinitions"][1]["type"] == "date"
    assert t["rows"][0]["cells"] == ["blue-m", "3h"]


def test_custom_resource_printer_columns():
    columns = [
        {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio"},
        {"name": "Enabled", "type": "boolean", "jsonPath": ".spec.enabled"},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "First Tag", "type": "string", "jsonPath": ".spec.tags[0]"},
        {"name": "Tags", "type": "string", "jsonPath": ".spec.tags", "priority": 1},
        {"name": "Labels", "type": "string", "jsonPath": ".spec.labels", "priority": 1},
        {"name": "Missing", "type": "string", "jsonPath": ".spec.nope"},
        {"name": "Observed", "type": "date", "jsonPath": ".status.observed", "description": "Last sync."},
        {"name": "Size Int", "type": "integer", "jsonPath": ".spec.size"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    t = to_table(cr_info(columns), [SHIRT], now=NOW)
    defs = t["columnDefinitions"]
    assert [c["name"] for c in defs][:3] == ["Name", "Color", "Replicas"]
    assert defs[0]["format"] == "name"
    assert defs[1]["description"] == "Custom resource definition column (in JSONPath format): .spec.color"
    assert defs[10]["description"] == "Last sync."
    assert defs[7]["priority"] == 1
    assert t["rows"][0]["cells"] == ["blue-m", "blue", 3, 1.5, True, "True", "a", '["a","b"]',
                                     '{"x":"1"}', None, "30m", None, "3h"]


def test_custom_resource_bad_dates():
    cols = [{"name": "When", "type": "date", "jsonPath": ".spec.when"}]
    obj = {"metadata": {"name": "x"}, "spec": {"when": "yesterday"}}
    assert to_table(cr_info(cols), [obj], now=NOW)["rows"][0]["cells"] == ["x", "<invalid>"]


# --- through the real kubectl --------------------------------------------------------

KUBECTL = shutil.which("kubectl", path=os.path.dirname(os.path.abspath(sys.executable)) + os.pathsep
                       + os.environ.get("PATH", ""))


def _serve(tables: dict[str, dict]):
    discovery = {
        "/api": {"kind": "APIVersions", "versions": ["v1"],
                 "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]},
        "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
        "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
             "verbs": ["get", "list"], "shortNames": ["po"]},
            {"name": "services", "singularName": "service", "namespaced": True, "kind": "Service",
             "verbs": ["get", "list"], "shortNames": ["svc"]}]},
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            path = self.path.split("?")[0]
            body = discovery.get(path) or tables.get(path)
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_kubectl_prints_our_tables(tmp_path):
    pods = [POD_CASES["running with restarts"][0], POD_CASES["crash loop"][0]]
    pods[1] = json.loads(json.dumps(pods[1]))
    pods[1]["metadata"]["name"] = "web-2"
    services = [svc("web", {"type": "NodePort", "clusterIPs": ["10.96.12.7"], "selector": {"app": "web"},
                            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]})]
    tables = {"/api/v1/namespaces/default/pods": to_table(info("Pod"), pods, resource_version="9", now=NOW),
              "/api/v1/namespaces/default/services": to_table(info("Service"), services, now=NOW)}
    server = _serve(tables)
    try:
        env = {"HOME": str(tmp_path), "KUBECACHEDIR": str(tmp_path / "cache"), "PATH": os.environ.get("PATH", "")}
        base = [KUBECTL, "--server", f"http://127.0.0.1:{server.server_address[1]}", "-n", "default"]

        def run(*args):
            out = subprocess.run(base + list(args), capture_output=True, text=True, env=env, timeout=60)
            assert out.returncode == 0, out.stderr
            return [line.split() for line in out.stdout.strip().splitlines()]

        assert run("get", "pods") == [
            ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
            ["web-1", "2/2", "Running", "3", "(5m", "ago)", "2d3h"],
            ["web-2", "0/1", "CrashLoopBackOff", "4", "(30s", "ago)", "2d3h"]]
        assert run("get", "pods", "-o", "wide")[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP",
                                                       "NODE", "NOMINATED", "NODE", "READINESS", "GATES"]
        assert run("get", "svc", "--show-labels") == [
            ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "LABELS"],
            ["web", "NodePort", "10.96.12.7", "<none>", "80:30080/TCP", "5h", "<none>"]]
    finally:
        server.shutdown()


# --- the JSONPath subset behind printer columns and selectable fields ----------------

DOC = {"metadata": {"name": "x", "annotations": {"example.com/owner": "team-a", "a.b": "dotted"}},
       "spec": {"items": [{"name": "a", "n": 1}, {"name": "b", "n": 5}, {"name": "c", "n": 3}],
                "nested": {"deep": {"name": "inner"}}},
       "status": {"conditions": [{"type": "Ready", "status": "True"},
                                 {"type": "Synced", "status": "False", "reason": "Err"}]}}


@pytest.mark.parametrize("expr,found", [
    (".metadata.name", ["x"]),
    ("{.metadata.name}", ["x"]),
    ("$.metadata.name", ["x"]),
    (".metadata.annotations['example.com/owner']", ["team-a"]),
    ('.metadata.annotations["a.b"]', ["dotted"]),
    (r".metadata.annotations.a\.b", ["dotted"]),
    (".metadata.missing", []),
    (".metadata.name.deeper", []),
    (".spec.items[0].name", ["a"]),
    (".spec.items[-1].name", ["c"]),
    (".spec.items[7].name", []),
    (".spec.items[*].name", ["a", "b", "c"]),
    (".spec.items[0:2].name", ["a", "b"]),
    (".spec.items[?(@.n > 2)].name", ["b", "c"]),
    (".spec.items[?(@.name == 'b')].n", [5]),
    ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
    ('.status.conditions[?(@.type!="Ready")].type', ["Synced"]),
    (".status.conditions[?(@.reason)].reason", ["Err"]),
    ("..name", ["x", "a", "b", "c", "inner"]),
    (".spec.nested.*.name", ["inner"]),
])
def test_jsonpath_find(expr, found):
    assert find(expr, DOC) == found


@pytest.mark.parametrize("expr", ["", ".spec.items[", ".spec[?(@.a ~ 1)]", ".spec[a b]", ".spec.items[1:x]"])
def test_jsonpath_errors(expr):
    with pytest.raises(JSONPathError):
        find(expr, DOC)


@pytest.mark.parametrize("value,text", [
    ("s", "s"), (3, "3"), (3.0, "3"), (1.5, "1.5"), (1e21, "1e+21"), (1.5e-07, "1.5e-07"),
    (True, "true"), (None, "null"), ({"b": 1, "a": [1, "x"]}, '{"a":[1,"x"],"b":1}'),
])
def test_jsonpath_format_value(value, text):
    assert format_value(value) == text
