"""`raftq up`: three nodes and a worker from a config directory, stopped by Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from clusterkit import http, wait_for


def write_configs(config_dir: Path, raft: int, port: int) -> list[str]:
    config_dir.mkdir()
    urls = []
    for i in range(1, 4):
        peers = "".join(
            f"  - {{id: node{j}, raft_address: 127.0.0.1:{raft + j}, "
            f"http_address: 127.0.0.1:{port + j}}}\n"
            for j in range(1, 4) if j != i
        )
        (config_dir / f"node{i}.yaml").write_text(
            f"node_id: node{i}\nraft_address: 127.0.0.1:{raft + i}\n"
            f"http_address: 127.0.0.1:{port + i}\ndata_dir: ../nodes/node{i}\n"
            f"secret_file: ../nodes/cluster.secret\npeers:\n{peers}"
        )
        urls.append(f"http://127.0.0.1:{port + i}")
    return urls


def test_up_runs_a_cluster_and_a_worker_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    # Ports from this run's base (RAFTQ_TEST_PORT_BASE), above the fixtures' range,
    # so two checkouts running the tests at once do not meet each other's nodes.
    base = int(os.environ.get("RAFTQ_TEST_PORT_BASE", "19100")) + 800
    urls = write_configs(tmp_path / "config", base, base + 1000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "raftq", "up", "--config-dir", str(tmp_path / "config")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Ctrl-C stops everything" in line or not line:
                break
        out = "".join(lines)
        assert "dashboard:" in out and "submit one:" in out, out
        secret = tmp_path / "nodes" / "cluster.secret"
        assert secret.exists() and len(secret.read_text().strip()) >= 32
        status, body = http(urls[1] + "/v1/tasks", "POST", {"name": "add", "args": [2, 3]})
        assert status == 201
        task_id = body["task"]["id"]

        def finished() -> dict[str, object] | None:
            _, answer = http(f"{urls[2]}/v1/tasks/{task_id}?wait_ms=1000")
            return answer["task"] if answer["task"]["status"] == "succeeded" else None

        done = wait_for(finished, timeout=30, what="the example worker to run the task")
        assert done["result"] == 5
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    # Every node and the worker are gone with it.
    for url in urls:
        try:
            http(url + "/healthz", timeout=1)
        except OSError:
            continue
        raise AssertionError(f"{url} still answers after raftq up stopped")
