"""Membership changes with real node processes: add (with `join`), remove, the
refusals (a second change while one is under way, a change that would lose the
quorum), a full restart after changes, and a removed node that comes back."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from clusterkit import http, metrics, wait_for
from workerkit import Workers

from raftq import Client
from raftq.local.cluster import LocalCluster, LocalNode


def raftq(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "raftq", *args,
                           "--nodes", ",".join(n.url for n in cluster.nodes if n.alive)],
                          capture_output=True, text=True, timeout=60)


def new_node(cluster: LocalCluster, join: str | None = None, **extra: Any) -> int:
    """Make node N+1 (its config joins the cluster at ``join``); its index."""
    i = len(cluster.nodes)
    node_id = f"node{i + 1}"
    node = LocalNode(node_id, cluster.raft_port + i, cluster.http_port + i,
                     cluster.base_dir / f"{node_id}.yaml", cluster.base_dir / f"{node_id}.log")
    config = {
        "node_id": node_id,
        "raft_address": f"127.0.0.1:{node.raft_port}",
        "http_address": f"127.0.0.1:{node.http_port}",
        "data_dir": f"{node_id}-data",
        "secret": cluster.secret,
        "admin_key_file": str(cluster.base_dir.resolve() / "admin.key"),
        **({"join": join} if join else {}),
        **cluster.extra_config, **extra,
    }
    node.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    cluster.nodes.append(node)
    return i


def add(cluster: LocalCluster, url: str, i: int) -> tuple[int, Any]:
    node = cluster.nodes[i]
    return http(url + "/v1/cluster/nodes", "POST", {
        "id": node.node_id, "raft_address": f"127.0.0.1:{node.raft_port}",
        "http_url": node.url}, timeout=20)


def members(url: str) -> list[str]:
    status, body = http(url + "/v1/cluster/members")
    assert status == 200, body
    return [m["id"] for m in body["members"]]


def live(cluster: LocalCluster) -> list[int]:
    return [i for i, n in enumerate(cluster.nodes) if n.alive]


def test_add_remove_and_the_refusals(make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster()
    urls = cluster.http_urls
    wait_for(lambda: members(urls[0]) == ["node1", "node2", "node3"], what="the seeded members")

    # With a follower dead, neither removing the other follower nor adding a
    # node may leave 1 of 2 (or 2 of 4) members answering.
    leader = cluster.wait_ready()
    dead, other = [i for i in range(3) if i != leader]
    cluster.kill(dead)
    status, body = http(f"{urls[leader]}/v1/cluster/nodes/{cluster.nodes[other].node_id}",
                        "DELETE", timeout=20)
    assert status == 409 and body["error"]["code"] == "would_lose_quorum", body
    four = new_node(cluster, join=urls[0])
    status, body = add(cluster, urls[other], four)
    assert status == 409 and body["error"]["code"] == "would_lose_quorum", body
    cluster.start_node(dead)
    cluster.wait_ready(timeout=30, indexes=[0, 1, 2])

    _, task = http(urls[2] + "/v1/tasks", "POST", {"name": "before", "id": "t-before"})
    done = raftq(cluster, "cluster", "add-node", "node4", "--raft",
                 f"127.0.0.1:{cluster.nodes[four].raft_port}", "--http", cluster.nodes[four].url)
    assert done.returncode == 0, done.stderr
    assert "node4" in done.stdout
    # node4 has not started: it is the change under way, and a second one waits.
    five = new_node(cluster, join=urls[0])
    status, body = add(cluster, urls[2], five)
    assert status == 409 and body["error"]["code"] == "change_in_progress", body
    assert "node4" in body["error"]["message"]
    refused = raftq(cluster, "cluster", "add-node", "node5", "--raft",
                    f"127.0.0.1:{cluster.nodes[five].raft_port}", "--http",
                    cluster.nodes[five].url)
    assert refused.returncode == 1 and "change_in_progress" in refused.stderr

    cluster.start_node(four)  # joins: learns the members and the state from the cluster
    wait_for(lambda: http(cluster.nodes[four].url + "/v1/tasks/t-before")[0] == 200,
             timeout=30, what="node4 has the task submitted before it joined")
    view = wait_for(lambda: (lambda b: b if all(n["reachable"] for n in b["nodes"])
                             and len(b["nodes"]) == 4 else None)(http(urls[0] + "/v1/cluster")[1]),
                    timeout=20, what="4 reachable members")
    assert [n["id"] for n in view["nodes"]] == ["node1", "node2", "node3", "node4"]
    shown = raftq(cluster, "cluster-status")
    assert shown.returncode == 0 and "node4" in shown.stdout, shown.stdout + shown.stderr

    # Remove node1 (when it leads, it hands over first); it stops. Not before
    # node4's catch-up is committed: until then a change is refused (above).
    for i in (0, 1, 2, four):
        wait_for(lambda u=cluster.nodes[i].url: http(u + "/v1/cluster/members")[1][
            "catching_up"] is None, timeout=30, what=f"node{i + 1}: node4 caught up")
    gone = raftq(cluster, "cluster", "remove-node", "node1")
    assert gone.returncode == 0, gone.stderr
    cluster.nodes[0].process.wait(timeout=20)  # type: ignore[union-attr]
    for i in (1, 2, four):
        wait_for(lambda u=cluster.nodes[i].url: members(u) == ["node2", "node3", "node4"],
                 what=f"node{i + 1} without node1")
    status, body = http(cluster.nodes[four].url + "/v1/tasks", "POST", {"name": "after"})
    assert status == 201, body
    _, audit = http(urls[1] + "/v1/audit")
    actions = [(e["action"], e["target"]) for e in audit["entries"]]
    assert ("add_node", "node4") in actions and ("remove_node", "node1") in actions
    del task


def test_full_restart_grown_cluster_and_a_removed_node_coming_back(
        make_cluster: Callable[..., LocalCluster]) -> None:
    # Small compaction thresholds: the snapshots (PySyncObj's fullDumpFile, with
    # its own topology) are taken before and after the changes.
    cluster = make_cluster(log_compaction_min_entries=30, log_compaction_min_time_ms=1000)
    urls = cluster.http_urls
    wait_for(lambda: len(members(urls[0])) == 3, what="the seeded members")
    for i in range(40):
        http(urls[i % 3] + "/v1/tasks", "POST", {"name": "t", "id": f"t{i}"})
    for _ in range(2):  # grow 3 -> 5, one at a time
        i = new_node(cluster, join=urls[0])
        status, body = wait_for(lambda i=i: (lambda r: r if r[0] != 409 else None)(
            add(cluster, urls[0], i)), timeout=30, what=f"node{i + 1} added")
        assert status == 200, body
        cluster.start_node(i)
    leader = cluster.wait_ready(timeout=30)
    wait_for(lambda: all(http(n.url + "/v1/tasks/t39")[0] == 200 for n in cluster.nodes),
             timeout=30, what="every node caught up")
    wait_for(lambda: http(urls[0] + "/v1/cluster/members")[1]["catching_up"] is None,
             what="node5 said it caught up")

    # PySyncObj issue 78: a grown cluster re-elects after losing its leader and
    # another node.
    other = max(i for i in range(5) if i != leader)  # node4 or node5
    for i in (leader, other):
        cluster.kill(i)
    # (in a list: the leader's index may be 0, which wait_for would not take)
    (new_leader,) = wait_for(lambda: (lambda i: [i] if i not in (None, leader, other) else None)(
        cluster.leader_index()), timeout=30, what="a new leader")
    status, _ = http(cluster.nodes[new_leader].url + "/v1/tasks", "POST", {"name": "after"})
    assert status == 201
    dead = [cluster.nodes[leader].node_id, cluster.nodes[other].node_id]
    alive = [i for i in range(5) if cluster.nodes[i].alive]
    for node_id in dead:  # remove both dead nodes, one at a time
        status, body = http(f"{cluster.nodes[alive[0]].url}/v1/cluster/nodes/{node_id}",
                            "DELETE", timeout=20)
        assert status == 200, body

    # A full restart keeps the replicated membership, not the configs' peers
    # nor the topology in the snapshots (PySyncObj issue 133).
    for i in alive:
        cluster.kill(i, signal.SIGTERM)
    for i in alive:
        cluster.start_node(i)
    leader = cluster.wait_ready(timeout=30, indexes=alive)
    expected = sorted(cluster.nodes[i].node_id for i in alive)
    for i in alive:
        # (a follower replays its log once the leader says how far is committed)
        wait_for(lambda i=i: members(cluster.nodes[i].url) == expected,
                 what=f"{cluster.nodes[i].node_id} replayed the membership")
        peers = sorted(n for n in expected if n != cluster.nodes[i].node_id)
        # Each node reconnects to the others (and drops the removed) as it applies the log.
        wait_for(lambda i=i, peers=peers: (view := cluster.node_status(i)) is not None
                 and sorted(view["peers_connected"]) == peers,
                 what=f"{cluster.nodes[i].node_id} connected to exactly {peers}")
    digests = wait_for(lambda: (lambda d: d if len(set(d)) == 1 else None)(
        [http(cluster.nodes[i].url + "/v1/node?digest=1")[1]["digest"] for i in alive]),
        what="equal digests")
    assert len(digests) == 3

    # A removed node comes back with its old data: the members refuse it (it
    # dials those with lower addresses), so it never hears from them and never
    # disturbs them; it asks them whether it is still a member, and stops.
    term = cluster.node_status(leader)["term"]  # type: ignore[index]
    returning = max(i for i in range(5) if cluster.nodes[i].node_id in dead)
    cluster.start_node(returning)
    wait_for(lambda: any("not_member" in metrics(cluster.nodes[i].url) for i in alive),
             timeout=20, what="the returning node refused")
    for _ in range(3):
        status, _ = http(cluster.nodes[alive[0]].url + "/v1/tasks", "POST", {"name": "x"})
        assert status == 201
    assert cluster.nodes[returning].process.wait(timeout=20) == 3  # type: ignore[union-attr]
    assert "no longer has this node" in cluster.nodes[returning].log_path.read_text()
    assert cluster.node_status(leader)["term"] == term  # type: ignore[index]
    assert cluster.wait_ready(timeout=5, indexes=alive) == leader


def test_a_client_and_a_worker_given_only_node1_carry_on_when_it_is_removed(
        make_cluster: Callable[..., LocalCluster], tmp_path: Path) -> None:
    cluster = make_cluster()
    node1 = cluster.http_urls[0]
    wait_for(lambda: len(members(node1)) == 3, what="the seeded members")
    workers = Workers(tmp_path, [node1])
    workers.start("--concurrency", "2")
    try:
        client = Client([node1], retry_for=30)
        for key in ("one", "two"):  # the first answer announces the membership
            assert client.submit("record", [key]).result(timeout=30) == key
        assert sorted(client._failover.nodes) == sorted(cluster.http_urls)

        status, body = http(f"{node1}/v1/cluster/nodes/node1", "DELETE", timeout=20)
        assert status == 200, body
        cluster.nodes[0].process.wait(timeout=20)  # type: ignore[union-attr]
        for key in ("three", "four"):
            assert client.submit("record", [key]).result(timeout=30) == key
        assert node1 not in client._failover.nodes
        assert {"three", "four"} <= set(workers.run_counts())
        assert workers.procs[0].poll() is None
    finally:
        workers.stop_all()
