"""The pure parts of the ServiceAccount admission: automount preference and mounting."""
from __future__ import annotations

import pytest

from skube.apiserver.serviceaccount_admission import TOKEN_MOUNT_PATH, mount_token, should_automount


def pod(**spec) -> dict:
    return {"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], **spec}}


@pytest.mark.parametrize("pod_pref,sa_pref,expected", [
    (None, None, True), (None, False, False), (None, True, True),
    (False, True, False), (True, False, True), (False, None, False)])
def test_pod_preference_wins_over_the_accounts(pod_pref, sa_pref, expected):
    p = pod() if pod_pref is None else pod(automountServiceAccountToken=pod_pref)
    sa = {} if sa_pref is None else {"automountServiceAccountToken": sa_pref}
    assert should_automount(sa, p) is expected


def test_an_existing_api_access_volume_is_reused_not_duplicated():
    p = pod(volumes=[{"name": "kube-api-access-abcde", "projected": {"sources": []}}])
    p["spec"]["containers"][0]["volumeMounts"] = [{"name": "kube-api-access-abcde", "mountPath": TOKEN_MOUNT_PATH}]
    mount_token(p)
    assert [v["name"] for v in p["spec"]["volumes"]] == ["kube-api-access-abcde"]
    assert p["spec"]["containers"][1]["volumeMounts"] == [
        {"name": "kube-api-access-abcde", "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}]
    assert len(p["spec"]["containers"][0]["volumeMounts"]) == 1


def test_no_volume_when_every_container_already_mounts_the_path():
    p = pod(volumes=[{"name": "own", "emptyDir": {}}])
    for c in p["spec"]["containers"]:
        c["volumeMounts"] = [{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]
    mount_token(p)
    assert [v["name"] for v in p["spec"]["volumes"]] == ["own"]


def test_projected_tokens_are_renewed_at_80_percent_of_their_ttl_or_after_a_day():
    from skube.providers.volumes import _Token
    hour = _Token("t", issued=1000.0, expiry=1000.0 + 3607)
    assert hour.fresh(1000.0 + 0.8 * 3607 - 1) and not hour.fresh(1000.0 + 0.8 * 3607 + 1)
    week = _Token("t", issued=0.0, expiry=7 * 86400.0)
    assert week.fresh(86400.0 - 1) and not week.fresh(86400.0 + 1)
