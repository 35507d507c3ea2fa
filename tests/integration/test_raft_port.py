"""The raft port against strangers without the secret: the leader and the
writes must survive an oversized frame stream, 2,000 silent connections and
running out of file descriptors (DESIGN.md, PySyncObj hazards)."""

from __future__ import annotations

import os
import resource
import socket
import time
from typing import Any

import pytest
import raftkit
from clusterkit import http, wait_for

from raftq.local.cluster import LocalCluster

HANDSHAKE_S = 3.0  # PortLimits.handshake_timeout_s
SWEEP_S = 0.25  # raftq.raft.port.SWEEP_PERIOD_S


def leader_address(cluster: LocalCluster) -> tuple[int, str]:
    i = cluster.wait_ready(timeout=30)
    return i, f"127.0.0.1:{cluster.nodes[i].raft_port}"


def report(name: str, figures: dict[str, Any]) -> None:
    print(f"\n{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


def test_the_raft_port_listens_on_the_configured_address_only(cluster: LocalCluster) -> None:
    port = cluster.nodes[0].raft_port
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    # Another loopback address of this host: PySyncObj's 0.0.0.0 would accept it.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", port), timeout=2).close()


def test_an_oversized_frame_stream_costs_neither_the_leader_nor_writes(
        cluster: LocalCluster) -> None:
    i, address = leader_address(cluster)
    with raftkit.Watch(cluster.http_urls) as watch:
        time.sleep(0.5)
        started = time.monotonic()
        abuse = raftkit.oversized_frames(address, seconds=5.0, streams=4)
        ended = time.monotonic()
        time.sleep(0.5)
    figures = {**abuse, **watch.figures(started, ended)}
    report("oversized frames (0x7fffffff then zeros, 4 streams, 5 s)", figures)
    assert abuse["closed_by_node"] > 0
    assert abuse["longest_open_s"] < 1.0  # closed once the 4-byte length arrived
    assert figures["leader_changes"] == 0 and figures["leaders"] == [cluster.nodes[i].node_id]
    assert figures["writes_failed"] == 0 and figures["writes_ok"] > 0
    assert figures["longest_write_gap_s"] < 1.0
    assert raftkit.peer_status(address, cluster.secret)["state"] == 2  # still leads, serves


def test_2000_silent_connections_are_closed_and_cost_neither_leader_nor_writes(
        cluster: LocalCluster) -> None:
    i, address = leader_address(cluster)
    with raftkit.Watch(cluster.http_urls) as watch:
        time.sleep(0.5)
        started = time.monotonic()
        silent = raftkit.open_silent(address, 2000)
        opened = time.monotonic()
        closed_at: dict[socket.socket, float] = {}
        while len(closed_at) < len(silent) and time.monotonic() < opened + HANDSHAKE_S + 3:
            for sock in silent:
                if sock not in closed_at and raftkit.closed_by_peer(sock):
                    closed_at[sock] = time.monotonic() - started
            time.sleep(0.05)
        ended = time.monotonic()
        for sock in silent:
            sock.close()
        time.sleep(0.5)
    figures = {"connected": len(silent), "open_s": round(opened - started, 2),
               "closed_by_node": len(closed_at),
               "last_closed_s": round(max(closed_at.values(), default=0.0), 2),
               **watch.figures(started, ended)}
    report("2,000 silent connections to the leader's raft port", figures)
    assert len(silent) == 2000
    assert len(closed_at) == 2000  # every one, none left open
    assert max(closed_at.values()) <= opened - started + HANDSHAKE_S + SWEEP_S + 1.0
    assert figures["leader_changes"] == 0 and figures["leaders"] == [cluster.nodes[i].node_id]
    assert figures["writes_failed"] == 0 and figures["writes_ok"] > 0
    assert raftkit.peer_status(address, cluster.secret)["state"] == 2
    closed = raftkit.port_closed(cluster.nodes[i].url)
    report("closed by the guard", closed)
    assert closed.get("unverified_cap", 0) + closed.get("handshake", 0) >= 2000


def test_running_out_of_descriptors_does_not_lose_the_listener(cluster: LocalCluster) -> None:
    i, address = leader_address(cluster)
    victim = cluster.nodes[i]
    others = [n.url for n in cluster.nodes if n is not victim]
    assert victim.process is not None
    pid = victim.process.pid
    in_use = len(os.listdir(f"/proc/{pid}/fd"))
    _, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    limit = in_use + 30
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, hard))
    with raftkit.Watch(cluster.http_urls) as watch:
        time.sleep(0.5)
        started = time.monotonic()
        silent = raftkit.open_silent(address, 300)
        wait_for(lambda: len(os.listdir(f"/proc/{pid}/fd")) >= limit - 2,
                 timeout=10, what="the victim to run out of descriptors")
        time.sleep(HANDSHAKE_S + 1)  # several rounds of closing the unproven
        for sock in silent:
            sock.close()
        released = time.monotonic()
        status = wait_for(lambda: raftkit.peer_status(address, cluster.secret, timeout=1),
                          timeout=10, what="the raft port to serve a peer again")
        recovered = time.monotonic()
        wait_for(lambda: http(f"{victim.url}/v1/tasks", "POST", {"name": "after"},
                              timeout=2)[0] == 201, timeout=10, what="writes through the victim")
        time.sleep(0.5)
    figures = {"fd_limit": limit, "connected": len(silent),
               "raft_port_back_after_s": round(recovered - released, 2),
               **watch.figures(started, released, urls=others)}
    through_victim = watch.figures(started, released, urls=[victim.url])
    figures["victim_writes_ok"] = through_victim["writes_ok"]
    figures["victim_writes_failed"] = through_victim["writes_failed"]
    report("descriptor exhaustion on the leader (300 silent connections)", figures)
    assert status["state"] == 2  # still the leader
    assert figures["leader_changes"] == 0 and figures["leaders"] == [victim.node_id]
    assert figures["writes_failed"] == 0 and figures["writes_ok"] > 0  # through the others
    assert figures["raft_port_back_after_s"] < 5.0
    assert "cannot accept a connection (Too many open files)" in victim.log_path.read_text()
    assert raftkit.metric(victim.url, "raftq_raft_port_accept_pauses_total") >= 1
