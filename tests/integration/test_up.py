"""`raftq up`: three nodes and a worker from a config directory; a dead node is
restarted while the others serve; busy ports are refused; Ctrl-C stops it all fast."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from clusterkit import http, wait_for
from upkit import Up, write_configs

from raftq.client.sync import Client


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie is gone for our purposes: it no longer runs.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
    except OSError:
        return True


def answers(url: str) -> bool:
    try:
        http(url + "/healthz", timeout=1)
    except OSError:
        return False
    return True


def test_up_runs_a_cluster_and_a_worker_and_stops_on_ctrl_c(tmp_path: Path,
                                                             port_block: int) -> None:
    urls = write_configs(tmp_path / "config", port_block, port_block + 1000,
                         preset_admin_key=False)
    up = Up(tmp_path)
    try:
        up.wait_line("Ctrl-C stops everything")
        assert "console:" in up.output and "submit one:" in up.output, up.output
        secret = tmp_path / "nodes" / "cluster.secret"
        assert secret.exists() and len(secret.read_text().strip()) >= 32
        # raftq up made an admin and a worker key, and says how to use the admin key.
        key_file = tmp_path / "nodes" / "admin.key"
        key = key_file.read_text().strip()
        assert f"RAFTQ_API_KEY=$(cat {key_file})" in up.output, up.output
        assert (tmp_path / "nodes" / "worker.key").read_text().startswith("rq_")
        assert http(urls[1] + "/v1/queues", api_key="")[0] == 401
        status, body = http(urls[1] + "/v1/tasks", "POST", {"name": "add", "args": [2, 3]},
                            api_key=key)
        assert status == 201
        task_id = body["task"]["id"]

        def finished() -> dict[str, object] | None:
            _, answer = http(f"{urls[2]}/v1/tasks/{task_id}?wait_ms=1000", api_key=key)
            return answer["task"] if answer["task"]["status"] == "succeeded" else None

        done = wait_for(finished, timeout=30, what="the example worker to run the task")
        assert done["result"] == 5
        up.proc.send_signal(signal.SIGINT)
        assert up.proc.wait(timeout=20) == 0
    finally:
        up.close()
    # Every node and the worker are gone with it.
    for url in urls:
        assert not answers(url), f"{url} still answers after raftq up stopped"


def test_a_killed_node_is_named_the_others_serve_and_it_comes_back(tmp_path: Path,
                                                                    port_block: int) -> None:
    urls = write_configs(tmp_path / "config", port_block, port_block + 1000)
    up = Up(tmp_path, "--no-worker")
    try:
        pids = up.node_pids()
        assert f"kill {pids['node2']}" in up.output  # the hint a newcomer can follow
        os.kill(pids["node2"], signal.SIGKILL)
        up.wait_line(rf"node2 \(pid {pids['node2']}\) exited, killed by SIGKILL; "
                     "the other nodes keep serving", timeout=10)
        # The other two keep accepting and answering work meanwhile (if node2 led,
        # after an election, which the client rides out by retrying).
        with Client([urls[0], urls[2]], retry_for=20) as client:
            task_id = client.submit("add", [1, 1]).id
            assert client.get(task_id)["name"] == "add"
        restarted = up.wait_line(r"restarted node2 \(pid (\d+)\)", timeout=15)
        assert int(restarted.group(1)) != pids["node2"]
        up.wait_line(r"node2 is back and serving", timeout=30)
        # The restarted node caught up with what was written while it was down.
        wait_for(lambda: http(f"{urls[1]}/v1/tasks/{task_id}")[0] == 200, timeout=20,
                 what="node2 to have the task written while it was down")
        assert up.proc.poll() is None  # raftq up itself never stopped
        up.proc.send_signal(signal.SIGINT)
        assert up.proc.wait(timeout=20) == 0
    finally:
        up.close()


def test_up_stops_within_seconds_even_when_a_node_hangs(tmp_path: Path,
                                                        port_block: int) -> None:
    write_configs(tmp_path / "config", port_block, port_block + 1000)
    up = Up(tmp_path, "--no-worker")
    try:
        pids = up.node_pids()
        os.kill(pids["node3"], signal.SIGSTOP)  # it can no longer act on SIGTERM
        started = time.monotonic()
        up.proc.send_signal(signal.SIGINT)
        up.proc.wait(timeout=30)
        took = time.monotonic() - started
        assert took < 8, f"raftq up took {took:.1f}s to stop"
        assert "node3" in up.wait_line(r"did not stop; killing it").string
        for pid in pids.values():
            wait_for(lambda pid=pid: gone(pid), timeout=5, what=f"pid {pid} to be gone")
    finally:
        up.close()


def test_a_second_up_on_busy_ports_refuses_and_names_them(tmp_path: Path,
                                                          port_block: int) -> None:
    write_configs(tmp_path / "config", port_block, port_block + 1000)
    with socket.socket() as taken:  # stands in for the first cluster's node2
        taken.bind(("127.0.0.1", port_block + 1002))
        taken.listen()
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "raftq", "up", "--config-dir", str(tmp_path / "config")],
            capture_output=True, text=True, cwd=tmp_path, timeout=30,
        )
    assert time.monotonic() - started < 10
    assert done.returncode != 0
    assert f"127.0.0.1:{port_block + 1002} (node2 http)" in done.stderr, done.stderr
    assert "nodes up" not in done.stdout
    assert not (tmp_path / "nodes" / "node1.log").exists()  # nothing was started


def test_up_says_why_a_node_would_not_start(tmp_path: Path, port_block: int) -> None:
    write_configs(tmp_path / "config", port_block, port_block + 1000)
    old = tmp_path / "nodes" / "node1"
    old.mkdir(parents=True)
    (old / "raft.journal").write_bytes(b"PYSYNCOBJ" + bytes(40))  # from before raftq's journal
    done = subprocess.run(
        [sys.executable, "-m", "raftq", "up", "--config-dir", str(tmp_path / "config"),
         "--no-worker"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 1
    assert "node1 exited: raftq node node1: refusing to start: " in done.stderr, done.stderr
    assert f"{old / 'raft.journal'}: written by a raftq from before" in done.stderr
