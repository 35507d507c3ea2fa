"""The CLI against a real cluster: submit, status, list, cancel, dlq, stats."""

from __future__ import annotations

import json
import subprocess
import sys

from clusterkit import http

from raftq.local.cluster import LocalCluster


def raftq(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "raftq", *args,
                           "--nodes", ",".join(cluster.http_urls)],
                          capture_output=True, text=True, timeout=60)


def test_cli_task_lifecycle(cluster: LocalCluster) -> None:
    out = raftq(cluster, "submit", "add", "--args", "2", "3", "--priority", "high",
                "--kwargs", '{"z": "w"}', "--id", "t-cli-1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "t-cli-1"
    out = raftq(cluster, "status", "t-cli-1", "--output", "json")
    task = json.loads(out.stdout)
    assert task["args"] == [2, 3] and task["kwargs"] == {"z": "w"} and task["priority"] == 192

    assert raftq(cluster, "submit", "later", "--delay", "60", "--id", "t-cli-2").returncode == 0
    out = raftq(cluster, "list", "--status", "scheduled", "--output", "json")
    assert [t["id"] for t in json.loads(out.stdout)] == ["t-cli-2"]
    out = raftq(cluster, "cancel", "t-cli-2")
    assert out.returncode == 0 and "cancelled" in out.stdout

    # Dead-letter t-cli-1 through the HTTP API, then requeue and purge with the CLI.
    url = cluster.http_urls[0]
    _, claimed = http(url + "/v1/claims", "POST", {"worker_id": "w", "max": 1})
    (lease,) = claimed["tasks"]
    status, _ = http(f"{url}/v1/tasks/t-cli-1/fail", "POST",
                     {"lease_token": lease["lease_token"], "error": "boom", "retry": False})
    assert status == 200
    out = raftq(cluster, "dlq", "list")
    assert "t-cli-1" in out.stdout and "boom" in out.stdout
    assert raftq(cluster, "dlq", "requeue", "t-cli-1").returncode == 0
    out = raftq(cluster, "stats", "--output", "json")
    assert json.loads(out.stdout)["default"]["queued"] == 1
    _, claimed = http(url + "/v1/claims", "POST", {"worker_id": "w", "max": 1})
    (lease,) = claimed["tasks"]
    http(f"{url}/v1/tasks/t-cli-1/fail", "POST",
         {"lease_token": lease["lease_token"], "error": "again", "retry": False})
    out = raftq(cluster, "dlq", "purge", "--all")
    assert out.returncode == 0 and "purged 1" in out.stdout


def test_cli_bad_input_names_the_flag(cluster: LocalCluster) -> None:
    out = raftq(cluster, "submit", "add", "--priority", "urgent")
    assert out.returncode != 0 and "--priority" in out.stderr and "Traceback" not in out.stderr
    out = raftq(cluster, "submit", "add", "--kwargs", "[1")
    assert out.returncode != 0 and "--kwargs" in out.stderr
    out = raftq(cluster, "status", "no-such-task")
    assert out.returncode != 0 and "no task" in out.stderr and "Traceback" not in out.stderr
    out = raftq(cluster, "list", "--status", "weird")
    assert out.returncode != 0 and "--status" in out.stderr
