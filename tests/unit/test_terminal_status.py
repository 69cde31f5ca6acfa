"""The status a node writes for a deleted pod before it removes it (skube.node.pods.terminal_status)."""
from __future__ import annotations

from skube.node.pods import terminal_status


def cs(name, **state):
    return {"name": name, "ready": True, "started": True, "state": state}


def test_all_zero_exits_succeed_any_other_fails():
    ok = terminal_status({"phase": "Running", "containerStatuses": [cs("a", terminated={"exitCode": 0}),
                                                                     cs("b", terminated={"exitCode": 0})]})
    assert ok["phase"] == "Succeeded" and not any(c["ready"] or c["started"] for c in ok["containerStatuses"])
    bad = terminal_status({"phase": "Running", "containerStatuses": [cs("a", terminated={"exitCode": 0}),
                                                                      cs("b", terminated={"exitCode": 143})]})
    assert bad["phase"] == "Failed"


def test_a_container_not_reported_stopped_could_not_be_located():
    st = terminal_status({"phase": "Pending",
                          "initContainerStatuses": [cs("init", waiting={"reason": "PodInitializing"})],
                          "containerStatuses": [cs("a", waiting={"reason": "ContainerCreating"})]})
    assert st["phase"] == "Failed"
    for c in st["initContainerStatuses"] + st["containerStatuses"]:
        t = c["state"]["terminated"]
        assert (t["exitCode"], t["reason"]) == (137, "ContainerStatusUnknown") and "waiting" not in c["state"]


def test_a_terminal_phase_stays():
    st = terminal_status({"phase": "Succeeded", "containerStatuses": [cs("a", running={})]})
    assert st["phase"] == "Succeeded"
