"""`raftq node` on an address already in use exits at once, naming the address."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from raftq.local.cluster import LocalCluster


def run_node(config: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "raftq", "node", "--config", str(config)],
                          capture_output=True, text=True, timeout=30)
    return done, time.monotonic() - started


def test_a_node_started_on_a_running_clusters_ports_exits_naming_the_address(
        cluster: LocalCluster, tmp_path: Path) -> None:
    raw = yaml.safe_load(cluster.nodes[0].config_path.read_text())
    raw["data_dir"] = str(tmp_path / "second-data")
    config = tmp_path / "second.yaml"
    config.write_text(yaml.safe_dump(raw))
    done, took = run_node(config)
    assert done.returncode == 1
    assert took < 10, f"took {took:.1f}s"
    assert done.stderr.count("\n") == 1, done.stderr  # one line, no traceback
    assert f"`http_address` {raw['http_address']} is already in use" in done.stderr


def test_a_busy_raft_port_is_named_too(cluster: LocalCluster, tmp_path: Path) -> None:
    raw = yaml.safe_load(cluster.nodes[1].config_path.read_text())
    raw["data_dir"] = str(tmp_path / "second-data")
    with socket.socket() as probe:  # a free port: only the raft port is taken
        probe.bind(("127.0.0.1", 0))
        raw["http_address"] = f"127.0.0.1:{probe.getsockname()[1]}"
    config = tmp_path / "second.yaml"
    config.write_text(yaml.safe_dump(raw))
    done, took = run_node(config)
    assert done.returncode == 1 and took < 10
    assert f"`raft_address` {raw['raft_address']} is already in use" in done.stderr, done.stderr
    # The cluster it collided with is unharmed.
    assert cluster.wait_ready(timeout=10) is not None
