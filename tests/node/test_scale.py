"""Many mock pods through one virtual node, and recovery after kill -9."""
from __future__ import annotations

from tests.conftest import wait_for
from tests.node.conftest import create_pods, delete_pods, kubelet_client, list_pods, pod_body, run, start_node


def phases(cluster, selector):
    out: dict[str, int] = {}
    for p in run(list_pods(cluster, selector)):
        ph = (p.get("status") or {}).get("phase", "")
        out[ph] = out.get(ph, 0) + 1
    return out


def labelled(name, node, group):
    b = pod_body(name, node)
    b["metadata"]["labels"] = {"group": group}
    return b


def test_thousand_pods_running_then_deleted(cluster, tmp_path):
    node = start_node(cluster, "vn-scale", tmp_path / "node")
    try:
        names = [f"s-{i:04d}" for i in range(1000)]
        run(create_pods(cluster, [labelled(n, "vn-scale", "scale") for n in names]))
        wait_for(lambda: phases(cluster, "group=scale").get("Running") == 1000, timeout=60, interval=0.5,
                 message="1000 pods Running")
        run(delete_pods(cluster, names))
        wait_for(lambda: not run(list_pods(cluster, "group=scale")), timeout=60, interval=0.5,
                 message="1000 pods gone")
        with kubelet_client(cluster) as c:
            stats = c.get(f"https://127.0.0.1:{node.kubelet_port}/stats/summary").json()
        assert [p for p in stats["pods"] if p["podRef"]["name"].startswith("s-")] == []
    finally:
        assert node.stop() == 0, node.log.read_text()[-3000:]


def journal_instances(node) -> dict[str, str]:
    """The mock provider's persisted instances (key -> uid), read from its journal."""
    from skube.providers.mock import Journal
    return {k: rec["uid"] for k, rec in Journal(node.data_dir / "mock" / "instances.jsonl").load().items()}


def test_kill9_mid_burst_recovers_exactly_once(cluster, tmp_path):
    data = tmp_path / "node"
    node = start_node(cluster, "vn-crash", data)
    # pods that will be force-deleted while the node is down: their instances are orphans
    doomed = [f"d-{i}" for i in range(20)]
    run(create_pods(cluster, [labelled(n, "vn-crash", "doomed") for n in doomed]))
    wait_for(lambda: phases(cluster, "group=doomed").get("Running") == 20, timeout=30, message="doomed Running")
    names = [f"k-{i:03d}" for i in range(500)]

    async def burst():
        import asyncio
        task = asyncio.ensure_future(create_pods(cluster, [labelled(n, "vn-crash", "burst") for n in names],
                                                 concurrency=16))
        # kill -9 once the node has started some of the burst, not all
        while len([k for k in journal_instances(node) if k.startswith("default/k-")]) < 100:
            await asyncio.sleep(0.01)
        node.kill9()
        await task
    run(burst())
    started = [k for k in journal_instances(node) if k.startswith("default/k-")]
    assert 100 <= len(started) < 500, len(started)
    run(delete_pods(cluster, doomed, grace_period_seconds=0))
    assert not run(list_pods(cluster, "group=doomed"))

    node = start_node(cluster, "vn-crash", data)
    try:
        wait_for(lambda: phases(cluster, "group=burst").get("Running") == 500, timeout=60, interval=0.5,
                 message="500 pods Running after restart")
        pods = run(list_pods(cluster, "group=burst"))
        api = {f"default/{p['metadata']['name']}": p["metadata"]["uid"] for p in pods}

        def consistent():
            inst = journal_instances(node)
            return inst == api and inst
        wait_for(consistent, timeout=20, message="instances == pods (no orphan, none missing)")
        for p in pods:
            cs = p["status"]["containerStatuses"][0]
            assert cs["restartCount"] == 0 and cs["state"].get("running"), p["metadata"]["name"]
        with kubelet_client(cluster) as c:
            stats = c.get(f"https://127.0.0.1:{node.kubelet_port}/stats/summary").json()
        uids = [p["podRef"]["uid"] for p in stats["pods"]]
        assert len(uids) == len(set(uids)) == 500
        assert set(uids) == set(api.values())
        # started before the crash: kept, not recreated (their start time predates the restart)
        run(delete_pods(cluster, names))
        wait_for(lambda: not run(list_pods(cluster, "group=burst")), timeout=60, interval=0.5,
                 message="burst deleted")
        wait_for(lambda: not journal_instances(node), timeout=20, message="no instances left")
    finally:
        assert node.stop() == 0, node.log.read_text()[-3000:]
