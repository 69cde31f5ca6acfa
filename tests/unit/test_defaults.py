"""Defaulting: what upstream's SetDefaults_*, create strategies and admission fill in."""
import copy

import pytest

from skube.api import defaults
from skube.api.defaults import (apply_defaults, compute_qos_class, default_toleration_seconds, image_pull_policy,
                                job_prepare_for_create, normalize_quantity)
from skube.api.registry import Registry

REG = Registry()


def info(group, kind):
    return next(r for r in REG.resources() if r.group == group and r.kind == kind)


def defaulted(group, kind, obj, **kw):
    obj = copy.deepcopy(obj)
    apply_defaults(info(group, kind), obj, **kw)
    return obj


def pod(**spec):
    base = {"containers": [{"name": "app", "image": "nginx:1.25"}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": base}


def template(**spec):
    base = {"containers": [{"name": "app", "image": "nginx"}]}
    base.update(spec)
    return {"metadata": {"labels": {"app": "web"}}, "spec": base}


# ---- pods ---------------------------------------------------------------------------------------------

def test_pod_spec_defaults():
    spec = defaulted("", "Pod", pod())["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["securityContext"] == {}
    assert spec["enableServiceLinks"] is True
    assert spec["priority"] == 0
    assert spec["preemptionPolicy"] == "PreemptLowerPriority"


def test_container_defaults():
    c = defaulted("", "Pod", pod())["spec"]["containers"][0]
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["resources"] == {}


def test_init_and_ephemeral_containers_are_defaulted():
    spec = defaulted("", "Pod", pod(initContainers=[{"name": "init", "image": "busybox"}]))["spec"]
    assert spec["initContainers"][0]["imagePullPolicy"] == "Always"
    assert spec["initContainers"][0]["terminationMessagePolicy"] == "File"


@pytest.mark.parametrize("image,policy", [
    ("nginx", "Always"),
    ("nginx:latest", "Always"),
    ("nginx:1.25", "IfNotPresent"),
    ("docker.io/library/nginx", "Always"),
    ("registry:5000/team/app", "Always"),
    ("registry:5000/team/app:v2", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
    ("nginx:latest@sha256:" + "a" * 64, "Always"),
    ("Bad/Image", "IfNotPresent"),     # unparsable: upstream ignores the error, no tag
    ("", "IfNotPresent"),
])
def test_image_pull_policy(image, policy):
    assert image_pull_policy(image) == policy


def test_explicit_values_are_kept():
    spec = defaulted("", "Pod", pod(restartPolicy="Never", dnsPolicy="Default", terminationGracePeriodSeconds=0,
                                    containers=[{"name": "a", "image": "x", "imagePullPolicy": "Never"}]))["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["dnsPolicy"] == "Default"
    assert spec["terminationGracePeriodSeconds"] == 0
    assert spec["containers"][0]["imagePullPolicy"] == "Never"


def test_ports_probes_and_env():
    c = {"name": "a", "image": "x", "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
         "livenessProbe": {"httpGet": {"port": 80}},
         "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5},
         "lifecycle": {"preStop": {"httpGet": {"port": 8080}}},
         "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}
    c = defaulted("", "Pod", pod(containers=[c]))["spec"]["containers"][0]
    assert [p["protocol"] for p in c["ports"]] == ["TCP", "UDP"]
    assert c["livenessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                  "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert c["readinessProbe"]["periodSeconds"] == 5
    assert c["lifecycle"]["preStop"]["httpGet"]["scheme"] == "HTTP"
    assert c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"


def test_volume_defaults():
    vols = [{"name": "scratch"},
            {"name": "cfg", "configMap": {"name": "c"}},
            {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256}},
            {"name": "host", "hostPath": {"path": "/var"}},
            {"name": "proj", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]
    spec = defaulted("", "Pod", pod(volumes=vols))["spec"]
    got = {v["name"]: v for v in spec["volumes"]}
    assert got["scratch"]["emptyDir"] == {}
    assert got["cfg"]["configMap"]["defaultMode"] == 420
    assert got["sec"]["secret"]["defaultMode"] == 256
    assert got["host"]["hostPath"]["type"] == ""
    assert got["proj"]["projected"]["defaultMode"] == 420
    assert got["proj"]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"] == 3600


def test_requests_default_from_limits_and_quantities_are_canonical():
    c = {"name": "a", "image": "x",
         "resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"}, "requests": {"memory": "512Mi"}}}
    res = defaulted("", "Pod", pod(containers=[c]))["spec"]["containers"][0]["resources"]
    assert res["limits"] == {"cpu": "500m", "memory": "1Gi"}
    assert res["requests"] == {"memory": "512Mi", "cpu": "500m"}


@pytest.mark.parametrize("raw,stored", [("0.5", "500m"), ("0.0001", "1m"), (2, "2"), ("1000m", "1"),
                                        ("1e3", "1e3"), ("bogus", "bogus"), (True, True)])
def test_normalize_quantity(raw, stored):
    assert normalize_quantity(raw) == stored


def test_pod_status_on_create():
    obj = defaulted("", "Pod", pod())
    assert obj["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


def test_existing_status_marks_an_update():
    obj = pod()
    obj["status"] = {"phase": "Running", "qosClass": "BestEffort"}
    out = defaulted("", "Pod", obj)
    assert out["status"] == {"phase": "Running", "qosClass": "BestEffort"}
    assert "priority" not in out["spec"]


def test_create_flag_overrides_inference():
    obj = pod()
    obj["status"] = {"phase": "Running"}
    out = defaulted("", "Pod", obj, create=True)
    assert out["status"]["qosClass"] == "BestEffort"
    assert defaulted("", "Pod", pod(), create=False).get("status") is None


def test_scheduling_gated_condition():
    out = defaulted("", "Pod", pod(schedulingGates=[{"name": "example.com/gate"}]))
    assert out["status"]["conditions"] == [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated",
                                            "message": "Scheduling is blocked due to non-empty scheduling gates"}]


@pytest.mark.parametrize("pcn,priority", [("system-node-critical", 2000001000),
                                          ("system-cluster-critical", 2000000000)])
def test_system_priority_classes(pcn, priority):
    assert defaulted("", "Pod", pod(priorityClassName=pcn))["spec"]["priority"] == priority


def test_host_network_ports():
    c = {"name": "a", "image": "x", "ports": [{"containerPort": 8080}]}
    spec = defaulted("", "Pod", pod(hostNetwork=True, containers=[c]))["spec"]
    assert spec["containers"][0]["ports"][0]["hostPort"] == 8080


def test_service_account_fields_kept_in_step():
    assert defaulted("", "Pod", pod(serviceAccountName="robot"))["spec"]["serviceAccount"] == "robot"
    assert defaulted("", "Pod", pod(serviceAccount="legacy"))["spec"]["serviceAccountName"] == "legacy"


def res(requests=None, limits=None):
    r = {}
    if requests:
        r["requests"] = requests
    if limits:
        r["limits"] = limits
    return {"name": "c", "image": "x", "resources": r}


@pytest.mark.parametrize("containers,qos", [
    ([res()], "BestEffort"),
    ([res(requests={"cpu": "100m"})], "Burstable"),
    ([res(limits={"cpu": "1", "memory": "1Gi"})], "Guaranteed"),   # requests defaulted from limits
    ([res(requests={"cpu": "1", "memory": "1Gi"}, limits={"cpu": "1", "memory": "1Gi"})], "Guaranteed"),
    ([res(requests={"cpu": "500m", "memory": "1Gi"}, limits={"cpu": "1", "memory": "1Gi"})], "Burstable"),
    ([res(limits={"cpu": "1"})], "Burstable"),
    ([res(limits={"cpu": "1", "memory": "1Gi"}), res()], "Burstable"),
    ([res(requests={"nvidia.com/gpu": "1"})], "BestEffort"),         # only cpu and memory count
    ([res(requests={"cpu": "0"})], "BestEffort"),
])
def test_qos_class(containers, qos):
    for i, c in enumerate(containers):
        c["name"] = f"c{i}"
    assert defaulted("", "Pod", pod(containers=containers))["status"]["qosClass"] == qos


def test_qos_uses_pod_level_resources():
    p = pod(resources={"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}})
    assert compute_qos_class(p) == "Guaranteed"


# ---- DefaultTolerationSeconds ---------------------------------------------------------------------------

NOT_READY = {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300}
UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
               "tolerationSeconds": 300}


@pytest.mark.parametrize("existing,added", [
    ([], [NOT_READY, UNREACHABLE]),
    ([{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
       "tolerationSeconds": 10}], [UNREACHABLE]),
    ([{"operator": "Exists"}], []),                                      # tolerates everything
    ([{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}], [NOT_READY]),  # any effect
    ([{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoSchedule"}],
     [NOT_READY, UNREACHABLE]),
])
def test_default_toleration_seconds(existing, added):
    p = pod(tolerations=copy.deepcopy(existing))
    default_toleration_seconds(p)
    assert p["spec"]["tolerations"] == existing + added


# ---- workloads ------------------------------------------------------------------------------------------

def test_deployment_defaults():
    d = defaulted("apps", "Deployment", {"metadata": {"name": "d", "namespace": "default"},
                                         "spec": {"selector": {"matchLabels": {"app": "web"}},
                                                  "template": template()}})
    spec = d["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    tspec = spec["template"]["spec"]
    assert tspec["restartPolicy"] == "Always" and tspec["schedulerName"] == "default-scheduler"
    assert tspec["containers"][0]["imagePullPolicy"] == "Always"
    # Pod-only defaults stay off templates, as upstream
    assert "enableServiceLinks" not in tspec and "priority" not in tspec


def test_deployment_recreate_gets_no_rolling_update():
    d = defaulted("apps", "Deployment", {"spec": {"strategy": {"type": "Recreate"}, "template": template()}})
    assert d["spec"]["strategy"] == {"type": "Recreate"}


def test_replica_set_defaults():
    rs = defaulted("apps", "ReplicaSet", {"spec": {"template": template()}})
    assert rs["spec"]["replicas"] == 1
    assert rs["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"


def test_stateful_set_defaults():
    sts = defaulted("apps", "StatefulSet", {"spec": {"template": template(), "volumeClaimTemplates": [
        {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                "resources": {"requests": {"storage": "1024Mi"}}}}]}})
    spec = sts["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["replicas"] == 1 and spec["revisionHistoryLimit"] == 10
    vct = spec["volumeClaimTemplates"][0]
    assert vct["spec"]["volumeMode"] == "Filesystem"
    assert vct["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert vct["status"] == {"phase": "Pending"}


def test_stateful_set_on_delete_keeps_no_rolling_update():
    sts = defaulted("apps", "StatefulSet", {"spec": {"updateStrategy": {"type": "OnDelete"}, "template": template()}})
    assert sts["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_daemon_set_defaults():
    ds = defaulted("apps", "DaemonSet", {"spec": {"template": template()}})
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert ds["spec"]["revisionHistoryLimit"] == 10


JOB = {"metadata": {"name": "pi", "namespace": "default", "uid": "u-1"},
       "spec": {"template": {"spec": {"containers": [{"name": "pi", "image": "perl"}], "restartPolicy": "Never"}}}}


def test_job_defaults():
    spec = defaulted("batch", "Job", JOB)["spec"]
    assert spec["completions"] == 1 and spec["parallelism"] == 1
    assert spec["backoffLimit"] == 6
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False
    assert spec["manualSelector"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_job_parallelism_only():
    spec = defaulted("batch", "Job", {"spec": {"parallelism": 3, "template": {}}})["spec"]
    assert spec["parallelism"] == 3 and "completions" not in spec


def test_job_backoff_limit_per_index_and_failure_policy():
    spec = defaulted("batch", "Job", {"spec": {"backoffLimitPerIndex": 1, "podFailurePolicy": {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}}})["spec"]
    assert spec["backoffLimit"] == 2 ** 31 - 1
    assert spec["podReplacementPolicy"] == "Failed"
    assert spec["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] == "True"


def test_job_labels_copied_from_template():
    job = copy.deepcopy(JOB)
    job["spec"]["template"]["metadata"] = {"labels": {"app": "pi"}}
    assert defaulted("batch", "Job", job)["metadata"]["labels"] == {"app": "pi"}


def test_job_prepare_for_create():
    job = defaulted("batch", "Job", JOB)
    job_prepare_for_create(job, "u-1")
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}}
    assert job["spec"]["template"]["metadata"]["labels"] == {
        "controller-uid": "u-1", "batch.kubernetes.io/controller-uid": "u-1",
        "job-name": "pi", "batch.kubernetes.io/job-name": "pi"}


def test_job_prepare_for_create_keeps_user_labels_and_manual_selectors():
    job = copy.deepcopy(JOB)
    job["spec"]["template"]["metadata"] = {"labels": {"job-name": "custom"}}
    job_prepare_for_create(job)          # uid taken from metadata
    assert job["spec"]["template"]["metadata"]["labels"]["job-name"] == "custom"
    assert job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"] == "u-1"
    manual = copy.deepcopy(JOB)
    manual["spec"]["manualSelector"] = True
    job_prepare_for_create(manual, "u-1")
    assert "selector" not in manual["spec"]


def test_cron_job_defaults():
    cj = defaulted("batch", "CronJob", {"spec": {"schedule": "@hourly", "jobTemplate": {"spec": {"template": {
        "spec": {"containers": [{"name": "a", "image": "b"}], "restartPolicy": "OnFailure"}}}}}})
    spec = cj["spec"]
    assert spec["concurrencyPolicy"] == "Allow"
    assert spec["suspend"] is False
    assert spec["successfulJobsHistoryLimit"] == 3
    assert spec["failedJobsHistoryLimit"] == 1
    job_spec = spec["jobTemplate"]["spec"]
    assert "backoffLimit" not in job_spec     # SetDefaults_Job is not run on templates
    assert job_spec["template"]["spec"]["containers"][0]["terminationMessagePolicy"] == "File"


# ---- core kinds -----------------------------------------------------------------------------------------

def test_service_defaults():
    svc = defaulted("", "Service", {"metadata": {"name": "web"},
                                    "spec": {"selector": {"app": "web"},
                                             "ports": [{"port": 80}, {"port": 53, "protocol": "UDP",
                                                                      "targetPort": "dns"}]}})
    spec = svc["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"][0] == {"port": 80, "protocol": "TCP", "targetPort": 80}
    assert spec["ports"][1]["targetPort"] == "dns"
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["ipFamilies"] == ["IPv4"]
    assert "externalTrafficPolicy" not in spec


def test_service_load_balancer_and_client_ip():
    spec = defaulted("", "Service", {"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP",
                                              "ports": [{"port": 443}]}})["spec"]
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert spec["allocateLoadBalancerNodePorts"] is True
    assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_service_cluster_ips_kept_in_step():
    assert defaulted("", "Service", {"spec": {"clusterIP": "None"}})["spec"]["clusterIPs"] == ["None"]
    assert defaulted("", "Service", {"spec": {"clusterIPs": ["10.0.0.9"]}})["spec"]["clusterIP"] == "10.0.0.9"


def test_external_name_service_gets_no_ip_families():
    spec = defaulted("", "Service", {"spec": {"type": "ExternalName", "externalName": "example.com"}})["spec"]
    assert "ipFamilies" not in spec and "ipFamilyPolicy" not in spec and "internalTrafficPolicy" not in spec


def test_namespace_defaults_on_create():
    ns = defaulted("", "Namespace", {"metadata": {"name": "team-a"}})
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}


def test_namespace_finalizer_not_readded_after_finalize():
    ns = {"metadata": {"name": "team-a"}, "spec": {"finalizers": []}, "status": {"phase": "Terminating"}}
    out = defaulted("", "Namespace", ns)
    assert out["spec"]["finalizers"] == []
    assert out["status"]["phase"] == "Terminating"


def test_secret_defaults_and_string_data():
    sec = defaulted("", "Secret", {"metadata": {"name": "s"}, "data": {"a": "YQ=="}, "stringData": {"b": "hello"}})
    assert sec["type"] == "Opaque"
    assert sec["data"] == {"a": "YQ==", "b": "aGVsbG8="}
    assert "stringData" not in sec


def test_config_map_and_service_account_untouched():
    cm = {"metadata": {"name": "c"}, "data": {"k": "v"}}
    assert defaulted("", "ConfigMap", cm) == cm
    sa = {"metadata": {"name": "s"}}
    assert defaulted("", "ServiceAccount", sa) == sa


def test_pvc_defaults():
    pvc = defaulted("", "PersistentVolumeClaim", {"spec": {"accessModes": ["ReadWriteOnce"],
                                                          "resources": {"requests": {"storage": "0.5Gi"}}}})
    assert pvc["spec"]["volumeMode"] == "Filesystem"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "512Mi"
    assert pvc["status"] == {"phase": "Pending"}


def test_limit_range_container_defaults():
    lr = defaulted("", "LimitRange", {"spec": {"limits": [
        {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}, "default": {"memory": "256Mi"}}]}})
    item = lr["spec"]["limits"][0]
    assert item["default"] == {"memory": "256Mi", "cpu": "2"}
    assert item["defaultRequest"] == {"memory": "256Mi", "cpu": "2"}


def test_endpoints_and_slices():
    ep = defaulted("", "Endpoints", {"subsets": [{"ports": [{"port": 80}]}]})
    assert ep["subsets"][0]["ports"][0]["protocol"] == "TCP"
    eps = defaulted("discovery.k8s.io", "EndpointSlice", {"ports": [{"port": 80}]})
    assert eps["ports"][0] == {"port": 80, "name": "", "protocol": "TCP"}


def test_rbac_binding_api_groups():
    rb = defaulted("rbac.authorization.k8s.io", "RoleBinding", {
        "roleRef": {"kind": "Role", "name": "r"},
        "subjects": [{"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "s", "namespace": "d"}]})
    assert rb["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
    assert rb["subjects"][0]["apiGroup"] == "rbac.authorization.k8s.io"
    assert "apiGroup" not in rb["subjects"][1]


def test_node_allocatable_from_capacity():
    node = defaulted("", "Node", {"status": {"capacity": {"cpu": "4", "memory": "8Gi"}}})
    assert node["status"]["allocatable"] == {"cpu": "4", "memory": "8Gi"}


def test_custom_resources_left_alone():
    from skube.api.registry import ResourceInfo
    cr = ResourceInfo("example.com", "v1", "Widget", "widgets", "widget", True, custom=True)
    obj = {"spec": {"replicas": None}}
    apply_defaults(cr, obj)
    assert obj == {"spec": {"replicas": None}}


def test_malformed_objects_do_not_crash():
    for group, kind in (("", "Pod"), ("apps", "Deployment"), ("", "Service"), ("batch", "Job"),
                        ("", "Namespace"), ("apps", "StatefulSet")):
        for bad in ({}, {"spec": None}, {"spec": {"containers": "x", "template": 3}}, {"metadata": []}):
            apply_defaults(info(group, kind), copy.deepcopy(bad))


def test_module_exports():
    for name in defaults.__all__:
        assert hasattr(defaults, name)
