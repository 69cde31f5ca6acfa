"""networking.k8s.io/v1 NetworkPolicy in the API machinery: registry, defaulting,
validation with upstream's field paths and messages, and the table kubectl prints."""
from __future__ import annotations

import copy

import pytest

from skube.api import defaults, validation
from skube.api.errors import APIError
from skube.api.registry import Registry

INFO = Registry().get("networking.k8s.io", "v1", "networkpolicies")


def policy(spec: dict) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "p", "namespace": "default"}, "spec": spec}


def causes(spec: dict) -> list[tuple[str, str]]:
    obj = policy(copy.deepcopy(spec))
    defaults.apply_defaults(INFO, obj)
    return [(c["field"], c["message"]) for c in validation.causes_for_create(INFO, obj)]


def test_registered_namespaced_with_short_name():
    assert INFO is not None and INFO.namespaced and INFO.kind == "NetworkPolicy"
    assert "netpol" in INFO.short_names


@pytest.mark.parametrize("spec,types", [
    ({"podSelector": {}}, ["Ingress"]),
    ({"podSelector": {}, "ingress": [{}]}, ["Ingress"]),
    ({"podSelector": {}, "egress": [{}]}, ["Ingress", "Egress"]),
    ({"podSelector": {}, "egress": [{}], "policyTypes": ["Egress"]}, ["Egress"]),
])
def test_policy_types_default_as_upstream(spec, types):
    obj = policy(spec)
    defaults.apply_defaults(INFO, obj)
    assert obj["spec"]["policyTypes"] == types


def test_port_protocol_defaults_to_tcp():
    obj = policy({"podSelector": {}, "ingress": [{"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}]})
    defaults.apply_defaults(INFO, obj)
    assert [p["protocol"] for p in obj["spec"]["ingress"][0]["ports"]] == ["TCP", "UDP"]


def test_a_valid_policy_has_no_causes():
    assert causes({"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress", "Egress"],
                   "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"a": "b"}}},
                                         {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                                "ports": [{"port": "http"}, {"port": 8000, "endPort": 8080}, {"protocol": "SCTP"}]}],
                   "egress": [{}]}) == []


@pytest.mark.parametrize("spec,expected", [
    ({"ingress": [{"ports": [{"port": 0}]}]},
     ("spec.ingress[0].ports[0].port", "Invalid value: 0: must be between 1 and 65535, inclusive")),
    ({"ingress": [{"ports": [{"port": 80, "protocol": "ICMP"}]}]},
     ("spec.ingress[0].ports[0].protocol", 'Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"')),
    ({"egress": [{"ports": [{"port": 90, "endPort": 80}]}]},
     ("spec.egress[0].ports[0].endPort", "Invalid value: 90: must be greater than or equal to `port`")),
    ({"egress": [{"ports": [{"port": "http", "endPort": 80}]}]},
     ("spec.egress[0].ports[0].endPort", "Invalid value: 80: may not be specified when `port` is non-numeric")),
    ({"egress": [{"ports": [{"endPort": 80}]}]},
     ("spec.egress[0].ports[0].endPort", "Invalid value: 80: may not be specified when `port` is not specified")),
    ({"ingress": [{"ports": [{"port": "Http_1"}]}]},
     ("spec.ingress[0].ports[0].port",
      'Invalid value: "Http_1": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)')),
    ({"ingress": [{"from": [{}]}]}, ("spec.ingress[0].from[0]", "Required value: must specify a peer")),
    ({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]},
     ("spec.egress[0].to[0]", "Forbidden: may not specify both ipBlock and another peer")),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}]},
     ("spec.ingress[0].from[0].ipBlock.cidr",
      'Invalid value: "10.0.0.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)')),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.0.0/16"]}}]}]},
     ("spec.ingress[0].from[0].ipBlock.except[0]", 'Invalid value: "10.0.0.0/16": must be a strict subset of `cidr`')),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["192.168.0.0/24"]}}]}]},
     ("spec.ingress[0].from[0].ipBlock.except[0]",
      'Invalid value: "192.168.0.0/24": must be a strict subset of `cidr`')),
    ({"policyTypes": ["Ingress", "Sideways"]},
     ("spec.policyTypes[1]", 'Unsupported value: "Sideways": supported values: "Ingress", "Egress"')),
    ({"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}},
     ("spec.podSelector.matchExpressions[0].values",
      "Required value: must be specified when `operator` is 'In' or 'NotIn'")),
])
def test_invalid_policies_get_upstreams_causes(spec, expected):
    assert expected in causes({"podSelector": {}, **spec})


def test_create_raises_422_naming_the_object():
    obj = policy({"podSelector": {}, "ingress": [{"from": [{}]}]})
    defaults.apply_defaults(INFO, obj)
    with pytest.raises(APIError) as e:
        validation.validate_create(INFO, obj)
    assert e.value.code == 422 and e.value.reason == "Invalid"
    assert e.value.message.startswith('NetworkPolicy.networking.k8s.io "p" is invalid: spec.ingress[0].from[0]')
