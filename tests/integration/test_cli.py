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


def test_list_is_newest_first_with_name_limit_and_a_cursor(cluster: LocalCluster) -> None:
    """After 1,100 tasks the newest is on the first page, and the cursor reaches all."""
    url = cluster.http_urls[1]
    for start in (0, 550):
        batch = [{"id": f"old-{i}", "name": "mail" if i % 10 == 0 else "add", "args": [i]}
                 for i in range(start, start + 550)]
        status, _ = http(url + "/v1/tasks/batch", "POST", {"tasks": batch}, timeout=30)
        assert status == 200
    assert raftq(cluster, "submit", "add", "--id", "newest").returncode == 0

    out = raftq(cluster, "list", "--limit", "3", "--output", "json")
    assert [t["id"] for t in json.loads(out.stdout)] == ["newest", "old-1099", "old-1098"]
    assert "more: raftq list --cursor" in out.stderr

    out = raftq(cluster, "list", "--name", "mail", "--limit", "1000", "--output", "json")
    mail = [t["id"] for t in json.loads(out.stdout)]
    assert mail == [f"old-{i}" for i in range(1090, -1, -10)]
    assert "more:" not in out.stderr

    seen: list[str] = []
    cursor: list[str] = []
    while True:
        out = raftq(cluster, "list", "--limit", "400", "--output", "json", *cursor)
        assert out.returncode == 0, out.stderr
        seen += [t["id"] for t in json.loads(out.stdout)]
        if "more:" not in out.stderr:
            break
        cursor = ["--cursor", out.stderr.split("--cursor ")[1].split(" ")[0].strip("'")]
    assert len(seen) == 1101 and len(set(seen)) == 1101 and seen[0] == "newest"
    assert seen[-1] == "old-0"

    table = raftq(cluster, "list", "--limit", "2").stdout.splitlines()
    assert table[0].split() == ["ID", "NAME", "QUEUE", "PRIORITY", "STATUS", "ATTEMPTS",
                                "CREATED"]
    assert table[1].split()[:5] == ["newest", "add", "default", "normal", "queued"]
    out = raftq(cluster, "list", "--cursor", "garbage")
    assert out.returncode == 1 and out.stderr.startswith("error: --cursor: "), out.stderr
