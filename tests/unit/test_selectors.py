"""Label and field selectors: grammar, matching and upstream's error texts."""
from __future__ import annotations

import time

import pytest

from skube.api.errors import APIError
from skube.api.selectors import (
    format_label_selector, format_labels, go_quote, label_selector_from_dict,
    label_selector_to_string, parse_field_selector, parse_label_selector, supported_fields,
)

LABELS = {"app": "web", "tier": "frontend", "env": "prod", "version": "3", "empty": ""}


# --- label selectors: matching -------------------------------------------------

@pytest.mark.parametrize("selector,expected", [
    ("", True),
    ("   ", True),
    ("app=web", True),
    ("app==web", True),
    ("app = web", True),
    ("app=db", False),
    ("app!=db", True),
    ("app!=web", False),
    ("missing!=x", True),            # != matches when the key is absent
    ("app", True),
    ("missing", False),
    ("!missing", True),
    ("!app", False),
    ("tier in (frontend, backend)", True),
    ("tier in (backend)", False),
    ("missing in (a)", False),
    ("tier notin (backend)", True),
    ("tier notin (frontend)", False),
    ("missing notin (a)", True),     # notin matches when the key is absent
    ("app=web,tier=frontend", True),
    ("app=web,tier=backend", False),
    ("app=web, !missing, env in (prod,staging)", True),
    ("empty=", True),                # "key=" requires an empty value
    ("empty in ()", True),           # "()" is the set {""}
    ("app in (,web)", True),
    ("version>2", True),
    ("version>3", False),
    ("version<4", True),
    ("app>1", False),                # non-integer label value never matches gt/lt
    ("missing<4", False),
    ("in in (in)", False),           # 'in' is a valid key and value
    ("app\tin\t(web)", True),
    ("app=web\n", True),
])
def test_label_selector_matches(selector, expected):
    assert parse_label_selector(selector).matches(LABELS) is expected


def test_label_selector_none_labels_and_empty():
    sel = parse_label_selector("!a")
    assert sel.matches(None)
    assert not parse_label_selector("a=b").matches(None)
    assert parse_label_selector(None).empty
    assert parse_label_selector("").empty
    assert not parse_label_selector("a").empty


@pytest.mark.parametrize("selector,canonical", [
    ("b=2,a=1", "a=1,b=2"),
    ("x in (c,a,b)", "x in (a,b,c)"),
    ("x notin (b, a)", "x notin (a,b)"),
    ("!x,y", "!x,y"),
    ("a==b", "a==b"),
    ("a!=b", "a!=b"),
    ("a>1", "a>1"),
    ("a<1", "a<1"),
])
def test_label_selector_string(selector, canonical):
    assert str(parse_label_selector(selector)) == canonical


def test_requires_exact_match():
    sel = parse_label_selector("app=web,tier in (fe),env in (a,b),x!=y")
    assert sel.requires_exact_match("app") == "web"
    assert sel.requires_exact_match("tier") == "fe"
    assert sel.requires_exact_match("env") is None
    assert sel.requires_exact_match("x") is None
    assert sel.requires_exact_match("nope") is None


_NAME_ERR = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must "
             "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
             "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
_VALUE_ERR = ("a valid label must be an empty string or consist of alphanumeric characters, "
              "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
              "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
              "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")


@pytest.mark.parametrize("selector,message", [
    ("app:monolith", 'unable to parse requirement: <nil>: Invalid value: "app:monolith": ' + _NAME_ERR),
    ("x y", "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, gt, lt"),
    (",", "found ',', expected: !, identifier, or 'end of string'"),
    ("x,", "found '', expected: identifier after ','"),
    ("x=a b", "found 'b', expected: ',' or 'end of string'"),
    ("!x=a", "found '=', expected: ',' or 'end of string'"),
    ("x in (a", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("x in a", "unable to parse requirement: found 'a' expected: '('"),
    ("x in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'"),
    ("x=(a)", "unable to parse requirement: found '(', expected: identifier"),
    ("x in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
    ("x=a||y", 'unable to parse requirement: values[0][x]: Invalid value: "a||y": ' + _VALUE_ERR),
    ("x>a", 'unable to parse requirement: values[0]: Invalid value: "a": '
            "for 'Gt', 'Lt' operators, the value must be an integer"),
    ("x" * 64, f'unable to parse requirement: <nil>: Invalid value: "{"x" * 64}": '
               "name part must be no more than 63 characters"),
    ("Example.com/x", 'unable to parse requirement: <nil>: Invalid value: "Example.com/x": '
                      "prefix part a lowercase RFC 1123 subdomain must consist of lower case "
                      "alphanumeric characters, '-' or '.', and must start and end with an "
                      "alphanumeric character (e.g. 'example.com', regex used for validation is "
                      "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
])
def test_label_selector_errors(selector, message):
    with pytest.raises(APIError) as exc:
        parse_label_selector(selector)
    assert exc.value.code == 400
    assert exc.value.reason == "BadRequest"
    assert exc.value.message == message


def test_label_selector_multiple_value_errors_aggregate():
    with pytest.raises(APIError) as exc:
        parse_label_selector("x in (a$,b$)")
    msg = exc.value.message
    assert msg.startswith('unable to parse requirement: [values[0][x]: Invalid value: "a$"')
    assert 'values[1][x]: Invalid value: "b$"' in msg and msg.endswith("]")


# --- metav1.LabelSelector -------------------------------------------------------

@pytest.mark.parametrize("sel,labels,expected", [
    (None, {"a": "b"}, False),                       # nil selects nothing
    ({}, {"a": "b"}, True),                          # empty selects everything
    ({"matchLabels": {}, "matchExpressions": []}, {}, True),
    ({"matchLabels": {"app": "web"}}, LABELS, True),
    ({"matchLabels": {"app": "db"}}, LABELS, False),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["frontend"]}]}, LABELS, True),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["frontend"]}]}, LABELS, False),
    ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, LABELS, True),
    ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, LABELS, False),
    ({"matchLabels": {"app": "web"},
      "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "qa"]}]}, LABELS, True),
])
def test_label_selector_from_dict(sel, labels, expected):
    assert label_selector_from_dict(sel).matches(labels) is expected


def test_label_selector_from_dict_states():
    assert label_selector_from_dict({}).empty
    nothing = label_selector_from_dict(None)
    assert not nothing.empty and not nothing.matches({})


@pytest.mark.parametrize("sel,text", [
    ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
    ({"matchLabels": {"app": "web"},
      "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["qa", "dev"]},
                           {"key": "canary", "operator": "DoesNotExist"}]},
     "app=web,!canary,env notin (dev,qa)"),
    ({}, ""),
    (None, ""),
])
def test_label_selector_to_string(sel, text):
    assert label_selector_to_string(sel) == text


def test_format_helpers():
    assert format_label_selector(None) == "<none>"
    assert format_label_selector({}) == "<none>"
    assert format_label_selector({"matchLabels": {"app": "x"}}) == "app=x"
    assert format_label_selector({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}) == "<error>"
    assert format_labels({}) == "<none>"
    assert format_labels({"b": "2", "a": "1"}) == "a=1,b=2"


@pytest.mark.parametrize("sel,message", [
    ({"matchExpressions": [{"key": "a", "operator": "Bogus"}]},
     '"Bogus" is not a valid label selector operator'),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
     "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
     'values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist'),
    ({"matchLabels": {"bad key": "v"}}, 'key: Invalid value: "bad key": ' + _NAME_ERR),
])
def test_label_selector_from_dict_errors(sel, message):
    with pytest.raises(APIError) as exc:
        label_selector_from_dict(sel)
    assert exc.value.message == message


# --- field selectors ------------------------------------------------------------

POD = {
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {"nodeName": "node-1", "restartPolicy": "Always", "schedulerName": "default-scheduler",
             "serviceAccountName": "default"},
    "status": {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}]},
}


@pytest.mark.parametrize("selector,expected", [
    ("", True),
    ("metadata.name=web-1", True),
    ("metadata.name==web-1", True),
    ("metadata.name!=web-1", False),
    ("metadata.namespace=default", True),
    ("spec.nodeName=node-1,status.phase=Running", True),
    ("spec.nodeName=node-1,status.phase!=Running", False),
    ("spec.nodeName=", False),
    ("status.nominatedNodeName=", True),       # absent field compares as ""
    ("spec.hostNetwork=false", True),          # unset bool compares as "false"
    ("spec.hostNetwork=true", False),
    ("status.podIP=10.0.0.5", True),
    ("spec.restartPolicy=Always,spec.schedulerName=default-scheduler", True),
    ("spec.serviceAccountName=default", True),
    ("spec.host=node-1", True),                # legacy alias of spec.nodeName
    (",metadata.name=web-1,", True),           # empty terms are skipped
])
def test_field_selector_pods(selector, expected):
    assert parse_field_selector(selector, "", "Pod").matches(POD) is expected


def test_field_selector_requirement_and_escaping():
    sel = parse_field_selector("spec.nodeName=node-1,metadata.name!=x", "", "Pod")
    assert sel.requirement("spec.nodeName") == "node-1"
    assert sel.requirement("metadata.name") is None
    assert not sel.empty and parse_field_selector(None, "", "Pod").empty
    esc = parse_field_selector(r"metadata.name=a\,b\=c\\d", "", "ConfigMap")
    assert esc.requirement("metadata.name") == "a,b=c\\d"
    assert esc.matches({"metadata": {"name": "a,b=c\\d"}})
    assert str(esc) == r"metadata.name=a\,b\=c\\d"
    assert parse_field_selector("metadata.name=x", "", "ConfigMap").matches({"metadata": {"name": "x"}})


@pytest.mark.parametrize("group,kind,obj,selector,expected", [
    ("", "Node", {"metadata": {"name": "n"}, "spec": {"unschedulable": True}}, "spec.unschedulable=true", True),
    ("", "Node", {"metadata": {"name": "n"}, "spec": {}}, "spec.unschedulable=false", True),
    ("", "Namespace", {"metadata": {"name": "ns"}, "status": {"phase": "Terminating"}},
     "status.phase=Terminating", True),
    ("", "Secret", {"metadata": {"name": "s"}, "type": "kubernetes.io/tls"}, "type=kubernetes.io/tls", True),
    ("", "Service", {"metadata": {"name": "s"}, "spec": {"type": "NodePort", "clusterIP": "10.96.0.9"}},
     "spec.type=NodePort,spec.clusterIP=10.96.0.9", True),
    ("batch", "Job", {"metadata": {"name": "j"}, "status": {"succeeded": 1}}, "status.successful=1", True),
    ("batch", "Job", {"metadata": {"name": "j"}, "status": {}}, "status.successful=0", True),
    ("", "Event", {"metadata": {"name": "e", "namespace": "default"},
                   "involvedObject": {"kind": "Pod", "name": "web-1", "uid": "u1"},
                   "reason": "Scheduled", "type": "Normal", "source": {"component": "sched"},
                   "reportingComponent": "sched"},
     "involvedObject.kind=Pod,involvedObject.name=web-1,involvedObject.uid=u1,reason=Scheduled,"
     "type=Normal,source=sched,reportingComponent=sched", True),
    ("", "Event", {"metadata": {"name": "e"}, "reportingComponent": "kubelet"}, "source=kubelet", True),
    ("", "ReplicationController", {"metadata": {"name": "rc"}, "status": {"replicas": 2}},
     "status.replicas=2", True),
])
def test_field_selector_kinds(group, kind, obj, selector, expected):
    assert parse_field_selector(selector, group, kind).matches(obj) is expected


@pytest.mark.parametrize("selector,group,kind,message", [
    ("a", "", "Pod", "invalid selector: 'a'; can't understand 'a'"),
    ("metadata.name=a=b", "", "Pod", "invalid field selector: unescaped character in value: 61"),
    ("metadata.name=a,b", "", "Pod", "invalid selector: 'metadata.name=a,b'; can't understand 'b'"),
    ("metadata.name=a\\", "", "Pod", "invalid field selector: invalid escape sequence: \\"),
    ("metadata.name=a\\x", "", "Pod", "invalid field selector: invalid escape sequence: \\x"),
    ("spec.foo=x", "", "Pod", "field label not supported: spec.foo"),
    ("metadata.namespace=x", "", "Node", "field label not supported: metadata.namespace"),
    ("spec.foo=x", "", "ConfigMap",
     '"spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("status.replicas=0", "apps", "ReplicaSet",
     '"status.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("spec.foo=1", "batch", "Job", 'field label "spec.foo" not supported for Job'),
    ("reason=x", "events.k8s.io", "Event",
     '"reason" is not a known field selector: only "metadata.name", "metadata.namespace"'),
])
def test_field_selector_errors(selector, group, kind, message):
    with pytest.raises(APIError) as exc:
        parse_field_selector(selector, group, kind)
    assert exc.value.code == 400
    assert exc.value.message == message


def test_field_selector_custom_resource_selectable_fields():
    fields = {"spec.color": ".spec.color", "spec.size": ".spec.size", "spec.ready": ".spec.ready",
              "spec.count": ".spec.count"}
    shirt = {"metadata": {"name": "s1", "namespace": "ns"},
             "spec": {"color": "blue", "ready": True, "count": 3}}
    sel = parse_field_selector("spec.color=blue,spec.ready=true,spec.count=3,spec.size=",
                               "stable.example.com", "Shirt", fields)
    assert sel.matches(shirt)
    assert not parse_field_selector("spec.color=red", "stable.example.com", "Shirt", fields).matches(shirt)
    with pytest.raises(APIError) as exc:
        parse_field_selector("spec.other=x", "stable.example.com", "Shirt", fields)
    assert exc.value.message.startswith('"spec.other" is not a known field selector')
    alias = parse_field_selector("spec.color=blue", "stable.example.com", "Shirt", extra_fields=fields)
    assert alias.matches(shirt)
    assert supported_fields("stable.example.com", "Shirt", fields)[:2] == ["metadata.name", "metadata.namespace"]
    assert "spec.unschedulable" in supported_fields("", "Node")


def test_go_quote():
    assert go_quote('a"b\\c\n') == '"a\\"b\\\\c\\n"'
    assert go_quote("\x01é") == '"\\x01é"'


# --- speed ----------------------------------------------------------------------

def test_matching_is_fast():
    labels = {"app": "web", "tier": "frontend", "pod-template-hash": "abc123", "env": "prod"}
    eq = parse_label_selector("app=web,tier=frontend")
    sets = parse_label_selector("app in (web,api),env notin (dev),!canary")
    fsel = parse_field_selector("spec.nodeName=node-1,status.phase!=Failed", "", "Pod")
    n = 100_000
    for matcher, arg in ((eq.matches, labels), (sets.matches, labels), (fsel.matches, POD)):
        start = time.perf_counter()
        for _ in range(n):
            matcher(arg)
        elapsed = time.perf_counter() - start
        assert elapsed < 1.0, f"{n} matches took {elapsed:.2f}s"
