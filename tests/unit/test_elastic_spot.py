"""Spot reclaim settings and the status of a reclaimed instance (skube.providers.spot)."""
from __future__ import annotations

import pytest

from skube.providers.spot import RECLAIM_AFTER_ANNOTATION, SpotConfig, reclaimed_status


def test_when_a_spot_instance_is_reclaimed():
    assert SpotConfig(None).reclaim_delay({}) is None                      # never, by default
    assert SpotConfig({"reclaimAfterSeconds": 600}).reclaim_delay({}) == 600
    assert SpotConfig({"reclaimAfterSeconds": 600}).reclaim_delay({RECLAIM_AFTER_ANNOTATION: "5"}) == 5
    cfg = SpotConfig({"reclaimRate": 2, "protectionSeconds": 3600, "seed": 7})
    delays = [cfg.reclaim_delay({}) for _ in range(2000)]
    assert min(delays) >= 3600                                              # the protection period
    mean = sum(d - 3600 for d in delays) / len(delays)
    assert 1500 < mean < 2100                                               # 2 per hour: 1800 s on average


@pytest.mark.parametrize("doc, message", [
    ({"reclaimAfterSeconds": -1}, "spot.reclaimAfterSeconds: must be a non-negative number"),
    ({"warningSeconds": "soon"}, "spot.warningSeconds: must be a non-negative number"),
    ({"reclaimRate": -0.5}, "spot.reclaimRate: must be a non-negative number per hour"),
    ([1], "spot: expected a mapping"),
])
def test_bad_spot_settings(doc, message):
    with pytest.raises(ValueError, match=message):
        SpotConfig(doc)


def test_reclaimed_status_reads_like_a_kubelet_termination():
    running = {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}],
               "conditions": [{"type": "Ready", "status": "True"}],
               "containerStatuses": [{"name": "c", "ready": True, "started": True,
                                      "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}
    st = reclaimed_status(running, "2026-01-01T01:00:00Z")
    assert st["phase"] == "Failed" and st["reason"] == "Terminated" and "podIP" not in st
    assert {"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet"}.items() <= \
        next(c for c in st["conditions"] if c["type"] == "DisruptionTarget").items()
    term = st["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 137 and term["startedAt"] == "2026-01-01T00:00:00Z"
    assert st["containerStatuses"][0]["ready"] is False
    assert running["phase"] == "Running"                                   # the input is left alone
