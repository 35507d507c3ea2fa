"""A node cut off from both its peers knows it has no leader.

Its peers are killed, so the node is connected to nobody: PySyncObj then starts
no election and keeps naming the leader it last heard from. Before raftq
checked for contact, /readyz stayed 200 and a write waited for the proposal
timeout and came back ``503 outcome_unknown``; now the node reports no leader
within the election timeout, refuses writes with ``503 no_leader`` at once, and
rejoins by itself when its peers come back.
"""

from __future__ import annotations

import subprocess
import sys
import time

from clusterkit import http, wait_for

from raftq.local.cluster import LocalCluster


def test_a_node_cut_off_from_both_peers_reports_no_leader_and_rejoins(
    cluster: LocalCluster,
) -> None:
    leader = cluster.wait_ready()
    lone = next(i for i in range(3) if i != leader)
    url = cluster.nodes[lone].url
    assert http(url + "/readyz")[0] == 200
    assert http(url + "/v1/tasks", "POST", {"name": "noop"})[0] == 201

    cut = time.monotonic()
    for i in range(3):
        if i != lone:
            cluster.kill(i)

    def not_ready() -> dict[str, object] | None:
        status, body = http(url + "/readyz", timeout=1)
        return body if status == 503 else None

    ready = wait_for(not_ready, timeout=5, what="/readyz to answer 503")
    noticed_s = time.monotonic() - cut
    assert noticed_s < 2.0, noticed_s
    assert ready["leader"] is None
    assert "no leader" in str(ready["reason"]) and "election timeout" in str(ready["reason"])

    started = time.monotonic()
    status, body = http(url + "/v1/tasks", "POST", {"name": "noop"}, timeout=10)
    took_s = time.monotonic() - started
    assert status == 503 and body["error"]["code"] == "no_leader", body
    assert took_s < 0.5, took_s  # at once, not after the proposal timeout
    node = http(url + "/v1/node")[1]
    assert node["leader"] is None and node["no_leader_reason"]

    cli = subprocess.run(
        [sys.executable, "-m", "raftq", "cluster-status", "--node", url],
        capture_output=True, text=True, timeout=30,
    )
    assert cli.returncode == 1  # no quorum
    assert f"warning: {cluster.nodes[lone].node_id} has no leader" in cli.stdout, cli.stdout

    for i in range(3):
        if i != lone:
            cluster.start_node(i)
    wait_for(lambda: http(url + "/readyz", timeout=1)[0] == 200, timeout=30,
             what="the node to be ready again")
    assert http(url + "/v1/tasks", "POST", {"name": "noop"})[0] == 201
