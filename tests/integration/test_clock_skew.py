"""A node whose wall clock is 30 s off changes no lease and no delay, and says so.

One follower runs with the time shim (``RAFTQ_TIME_SHIM_FILE``) and its wall
clock is stepped 30 s ahead while it runs. Requests through it carry its wall
time; before the replicated clock moved by ticks only, one of them expired a
valid lease at once and then the clock stood still for 30 s. Here a lease and a
delay fire on time (by the clock of this test) although requests went through
it meanwhile, and the node reports its offset: in ``/v1/cluster``, in
``raftq_clock_offset_seconds`` and as a warning of ``raftq cluster-status``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from clusterkit import http, wait_for

from raftq.local.cluster import LocalCluster

AHEAD_MS = 30_000
TICK_S = 0.1


def _status(url: str, task_id: str) -> str:
    return str(http(f"{url}/v1/tasks/{task_id}")[1]["task"]["status"])


def test_a_node_30_s_ahead_fires_leases_and_delays_on_time_and_reports_its_offset(
    make_cluster: Callable[..., LocalCluster], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = make_cluster()
    leader = cluster.wait_ready()
    skewed = next(i for i in range(3) if i != leader)
    shim = tmp_path / "shim"
    cluster.kill(skewed)
    monkeypatch.setenv("RAFTQ_TIME_SHIM_FILE", str(shim))
    cluster.start_node(skewed)
    monkeypatch.delenv("RAFTQ_TIME_SHIM_FILE")
    cluster.wait_ready()
    shim.write_text(str(AHEAD_MS))
    url, node_id = cluster.nodes[skewed].url, cluster.nodes[skewed].node_id

    def offset_seen() -> bool:
        nodes = http(cluster.nodes[leader].url + "/v1/cluster")[1]["nodes"]
        offset = next(n for n in nodes if n["id"] == node_id)["clock_offset_ms"]
        return offset is not None and abs(offset - AHEAD_MS) < 500

    wait_for(offset_seen, timeout=10, what="the skewed node's offset in /v1/cluster")
    auth = {"Authorization": f"Bearer {os.environ['RAFTQ_API_KEY']}"}
    with urllib.request.urlopen(urllib.request.Request(url + "/metrics", headers=auth),
                                timeout=5) as resp:
        metrics = resp.read().decode()
    assert "raftq_clock_offset_seconds 30." in metrics or "raftq_clock_offset_seconds 29.9" in \
        metrics, metrics
    cli = subprocess.run([sys.executable, "-m", "raftq", "cluster-status", "--node", url],
                         capture_output=True, text=True, timeout=30)
    assert cli.returncode == 0
    assert f"warning: {node_id}'s clock is 30." in cli.stdout or \
        f"warning: {node_id}'s clock is 29.9" in cli.stdout, cli.stdout

    # A lease and a delay taken through the leader, then requests through the
    # skewed node, which carry its wall time: neither may fire early or late.
    lurl = cluster.nodes[leader].url
    status, body = http(lurl + "/v1/tasks", "POST", {"name": "noop", "queue": "skew"})
    assert status == 201
    leased_id = body["task"]["id"]
    status, body = http(lurl + "/v1/claims", "POST",
                        {"worker_id": "w", "queues": ["skew"], "lease_ms": 3000})
    granted = time.monotonic()
    assert status == 200 and [t["id"] for t in body["tasks"]] == [leased_id]
    status, body = http(lurl + "/v1/tasks", "POST",
                        {"name": "noop", "queue": "later", "delay_ms": 2000})
    submitted = time.monotonic()
    delayed_id = body["task"]["id"]
    assert body["task"]["status"] == "scheduled"
    for _ in range(3):
        assert http(url + "/v1/tasks", "POST", {"name": "noop", "queue": "other"})[0] == 201
        assert http(url + "/v1/claims", "POST", {"worker_id": "w2", "queues": ["other"]})[0] == 200
    assert _status(url, leased_id) == "leased"
    assert _status(url, delayed_id) == "scheduled"

    wait_for(lambda: _status(url, delayed_id) == "queued", timeout=10,
             what="the delayed task to be queued")
    fired = time.monotonic() - submitted
    assert 2.0 - 0.1 <= fired <= 2.0 + 2 * TICK_S + 0.5, fired
    wait_for(lambda: _status(url, leased_id) == "queued", timeout=10,
             what="the lease to expire")
    expired = time.monotonic() - granted
    assert 3.0 - 0.1 <= expired <= 3.0 + 2 * TICK_S + 0.5, expired
