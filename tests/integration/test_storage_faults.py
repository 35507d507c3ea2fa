"""A node's storage failing, on real node processes: a full disk (507, no crash,
writes through the others, back by itself once space is freed, nothing
acknowledged lost) and a damaged file at start (refused with one line naming
the file; ``--rejoin`` brings the node back)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from clusterkit import http, metrics, wait_for

from raftq.local.cluster import LocalCluster, LocalNode

MakeCluster = Callable[..., LocalCluster]


@pytest.fixture
def small_disk() -> Iterator[Callable[[Path, str], None]]:
    """Mounts a tmpfs of a given size on a directory (root only); unmounts after."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mounted: list[Path] = []

    def mount(path: Path, size: str) -> None:
        path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(path)

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> None:
    """Write ``path`` until the file system is full."""
    block = b"\xa5" * (1 << 20)
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                f.write(block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
    with open(path, "ab", buffering=0) as f:  # the last partial block
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    f.write(b"\xa5" * size)
            except OSError:
                continue


class Tasks:
    """Submits through a given node and remembers what was acknowledged."""

    def __init__(self) -> None:
        self.acked: list[str] = []

    def submit(self, node: LocalNode) -> tuple[int, Any]:
        status, body = http(node.url + "/v1/tasks", "POST",
                            {"name": "job", "args": [len(self.acked)]})
        if status == 201:
            self.acked.append(body["task"]["id"])
        return status, body

    def all_on(self, node: LocalNode) -> bool:
        return all(http(f"{node.url}/v1/tasks/{task_id}")[0] == 200 for task_id in self.acked)


def _metrics(node: LocalNode) -> str:
    return metrics(node.url)


def test_a_full_disk_refuses_writes_with_507_and_recovers_by_itself(
        small_disk: Callable[[Path, str], None], make_cluster: MakeCluster) -> None:
    def on_small_disks(cluster: LocalCluster) -> None:
        # 64 MiB: the journal preallocates 32 MiB, and less than 16 MiB free is "full".
        for node in cluster.nodes:
            small_disk(cluster.base_dir / f"{node.node_id}-data", "64m")

    cluster = make_cluster(prepare=on_small_disks)
    leader = cluster.wait_ready()
    full = cluster.nodes[leader]  # the leader: it must hand over its leadership
    others = [n for n in cluster.nodes if n is not full]
    tasks = Tasks()
    for node in cluster.nodes:
        assert tasks.submit(node)[0] == 201

    filler = cluster.base_dir / f"{full.node_id}-data" / "filler"
    fill(filler)

    def refused() -> Any:
        status, body = tasks.submit(full)
        return body if status == 507 else None

    body = wait_for(refused, timeout=10, what="507 from the node on the full disk")
    assert body["error"]["code"] == "insufficient_storage"
    status, ready = http(full.url + "/readyz")
    assert status == 503 and "full" in ready["reason"], ready
    assert "raftq_storage_writable 0.0" in _metrics(full)
    wait_for(lambda: cluster.leader_index() not in (None, leader), timeout=15,
             what="another node to take over the leadership")
    for node in others:  # the cluster takes writes through the other nodes
        assert tasks.submit(node)[0] == 201
    assert tasks.all_on(full)  # and the full node still answers reads
    assert full.alive

    filler.unlink()
    wait_for(lambda: tasks.submit(full)[0] == 201, timeout=10, what="writes accepted again")
    wait_for(lambda: http(full.url + "/readyz")[0] == 200, timeout=10, what="ready again")
    assert "raftq_storage_writable 1.0" in _metrics(full)
    for node in cluster.nodes:  # nothing acknowledged lost, anywhere
        wait_for(lambda node=node: tasks.all_on(node), timeout=10,
                 what=f"every acknowledged task on {node.node_id}")
    assert all(node.alive for node in cluster.nodes)
    log = full.log_path.read_text()
    assert log.count("refusing client writes (507)") == 1, log
    assert "storage: space is available again" in log


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x20
    path.write_bytes(bytes(data))


def _damage(path: Path, how: str) -> None:
    if how == "flip a snapshot byte":
        _flip(path, path.stat().st_size // 2)
    elif how == "truncate the snapshot":
        path.write_bytes(path.read_bytes()[:-7])
    else:  # a byte in the first record of the journal, which later records follow
        _flip(path, 12 + 16 + 3)


@pytest.mark.parametrize("how", ["flip a snapshot byte", "truncate the snapshot",
                                 "flip a journal byte"])
def test_a_damaged_file_stops_the_node_at_start_and_rejoin_brings_it_back(
        make_cluster: MakeCluster, how: str) -> None:
    snapshot = "snapshot" in how
    # Compacting often makes every node write a snapshot; without it the journal
    # keeps every record since the start.
    settings = {"log_compaction_min_entries": 50, "log_compaction_min_time_ms": 2000}
    cluster = make_cluster(**(settings if snapshot else {}))
    leader = cluster.wait_ready()
    tasks = Tasks()
    for i in range(60 if snapshot else 10):
        assert tasks.submit(cluster.nodes[i % 3])[0] == 201
    victim_i = (leader + 1) % 3
    victim = cluster.nodes[victim_i]
    data_dir = cluster.base_dir / f"{victim.node_id}-data"
    target = data_dir / ("raft.snapshot" if snapshot else "raft.journal")
    wait_for(lambda: target.exists() and tasks.all_on(victim), timeout=20,
             what=f"{target.name} written and every task on {victim.node_id}")
    cluster.kill(victim_i, signal.SIGTERM)
    _damage(target, how)

    cluster.start_node(victim_i)
    assert victim.process is not None and victim.process.wait(timeout=30) == 2
    lines = victim.log_path.read_text().splitlines()
    refusal = [line for line in lines if "refusing to start" in line]
    assert len(refusal) == 1 and str(target) in refusal[0] and "--rejoin" in refusal[0], lines
    assert not any("Traceback" in line for line in lines), lines

    if how == "flip a snapshot byte":  # --rejoin is refused while the rest has no quorum
        other = 3 - leader - victim_i
        cluster.kill(other)
        done = subprocess.run(
            [sys.executable, "-m", "raftq", "node", "--config", str(victim.config_path),
             "--rejoin"], capture_output=True, text=True, timeout=30)
        assert done.returncode == 1, done
        assert "--rejoin: the rest of the cluster has no leader with a quorum" in done.stderr
        assert target.exists() and not list(data_dir.glob("moved-aside-*"))
        cluster.start_node(other)
        cluster.wait_ready(timeout=30, indexes=[leader, other])

    for _ in range(5):  # the cluster moves on while the node is down
        assert tasks.submit(cluster.nodes[leader])[0] == 201
    cluster.start_node(victim_i, args=["--rejoin"])
    cluster.wait_ready(timeout=30)
    for node in cluster.nodes:
        wait_for(lambda node=node: tasks.all_on(node), timeout=20,
                 what=f"every acknowledged task on {node.node_id}")
    digests = wait_for(lambda: (d := {http(n.url + "/v1/node?digest=1")[1]["digest"]
                                      for n in cluster.nodes}) and len(d) == 1 and d,
                       timeout=20, what="equal digests")
    assert len(digests) == 1
    (aside,) = data_dir.glob("moved-aside-*")
    assert (aside / target.name).exists()  # the damaged data is kept for a post-mortem
