"""What the console's pages call, against a real node: tasks searched by tenant, a task
in its retry backoff retried now, workflows listed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from clusterkit import http, port_block

from raftq import Client
from raftq.errors import Conflict
from raftq.local.cluster import LocalCluster


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One node is a whole cluster: these tests need a leader, not replication."""
    base = port_block()
    cluster = LocalCluster(tmp_path_factory.mktemp("console") / "cluster", size=1,
                           raft_port=base, http_port=base + 1000,
                           admin_key=os.environ["RAFTQ_API_KEY"])
    cluster.start()
    try:
        cluster.wait_ready(timeout=30)
        yield cluster
    finally:
        for i, n in enumerate(cluster.nodes):
            if n.alive:
                cluster.kill(i)


def raftq(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "raftq", *args,
                           "--nodes", ",".join(cluster.http_urls)],
                          capture_output=True, text=True, timeout=60)


def ids(answer: dict[str, list[dict[str, str]]]) -> list[str]:
    return [t["id"] for t in answer["tasks"]]


def test_tasks_are_searched_by_tenant_alone_and_with_status_and_queue(
        node: LocalCluster) -> None:
    url = node.http_urls[0]
    client = Client(node.http_urls)
    for i in range(6):
        client.submit("tenanted", id=f"ten-{i}", tenant=("acme", "zeta")[i % 2],
                      queue=("ten-a", "ten-b")[i % 3 == 0])
    client.cancel("ten-4")
    status, acme = http(url + "/v1/tasks?tenant=acme&consistency=leader")
    assert status == 200 and ids(acme) == ["ten-4", "ten-2", "ten-0"]
    assert {t["tenant"] for t in acme["tasks"]} == {"acme"}
    assert ids(http(url + "/v1/tasks?tenant=acme&queue=ten-b")[1]) == ["ten-0"]
    assert ids(http(url + "/v1/tasks?tenant=acme&status=queued")[1]) == ["ten-2", "ten-0"]
    assert ids(http(url + "/v1/tasks?tenant=zeta&status=queued&queue=ten-b")[1]) == ["ten-3"]
    assert [t["id"] for t in client.list(tenant="zeta")] == ["ten-5", "ten-3", "ten-1"]
    page = client.list_page(tenant="zeta", limit=2)
    assert [t["id"] for t in page["tasks"]] == ["ten-5", "ten-3"]
    rest = client.list_page(tenant="zeta", limit=2, cursor=page["next_cursor"])
    assert [t["id"] for t in rest["tasks"]] == ["ten-1"] and rest["next_cursor"] is None

    for bad in ("a/b", "", "x" * 201):
        status, answer = http(url + "/v1/tasks?tenant=" + bad)
        assert status == 400 and answer["error"]["field"] == "tenant", (bad, answer)

    out = raftq(node, "list", "--tenant", "acme", "--status", "queued", "-o", "json")
    assert out.returncode == 0, out.stderr
    assert '"ten-2"' in out.stdout and '"ten-0"' in out.stdout and "ten-4" not in out.stdout
    out = raftq(node, "list", "--tenant", "a/b")
    assert out.returncode != 0 and out.stderr.startswith("error: --tenant: "), out.stderr


def test_a_task_in_a_long_backoff_is_retried_now(node: LocalCluster) -> None:
    url = node.http_urls[0]
    client = Client(node.http_urls)
    client.submit("flaky", id="rn-1", queue="rn", retry_backoff=3600, max_attempts=3)
    client.submit("later", id="rn-delayed", queue="rn-other", delay=3600)
    (lease,) = client.claim("rn-worker", ["rn"])
    client.fail("rn-1", lease["lease_token"], "boom", retry=True)
    waiting = client.get("rn-1")
    assert waiting["status"] == "scheduled" and waiting["attempts"] == 1
    assert waiting["ready_at_ms"] - waiting["updated_ms"] > 2_000_000  # about an hour away
    assert client.claim("rn-worker", ["rn"]) == []

    status, answer = http(url + "/v1/tasks/rn-1/retry-now", "POST", {})
    assert status == 200 and answer["task"]["status"] == "queued", answer
    assert answer["task"]["attempts"] == 1 and len(answer["task"]["errors"]) == 1
    (again,) = client.claim("rn-worker", ["rn"])  # at once: no backoff left
    assert again["id"] == "rn-1" and again["attempt"] == 2

    # Running (leased), delayed but never run, no such task.
    for task_id, want, code in (("rn-1", 409, "conflict"), ("rn-delayed", 409, "conflict"),
                                ("rn-none", 404, "not_found")):
        status, answer = http(f"{url}/v1/tasks/{task_id}/retry-now", "POST", {})
        assert status == want and answer["error"]["code"] == code, (task_id, answer)
    assert client.get("rn-delayed")["status"] == "scheduled"
    assert client.audit()[-1]["action"] == "retry_now"
    with pytest.raises(Conflict, match="not waiting for a retry"):
        client.retry_now("rn-delayed")

    client.fail("rn-1", again["lease_token"], "boom again", retry=True)
    assert client.get("rn-1")["status"] == "scheduled"
    out = raftq(node, "retry-now", "rn-1")
    assert out.returncode == 0 and out.stdout.strip() == "rn-1: queued", out.stderr
    out = raftq(node, "retry-now", "rn-delayed")
    assert out.returncode == 1 and "not waiting for a retry" in out.stderr, out.stderr


def test_workflows_are_listed_newest_first_by_status_a_page_at_a_time(
        node: LocalCluster) -> None:
    url = node.http_urls[0]
    client = Client(node.http_urls)
    for i in range(5):
        status, _ = http(url + "/v1/workflows", "POST", {"id": f"wl-{i}", "tasks": [
            {"key": "a", "name": "step", "queue": "wl"},
            {"key": "b", "name": "step", "queue": "wl", "depends_on": ["a"]}]})
        assert status == 201
    assert http(url + "/v1/workflows/wl-1", "DELETE")[0] == 200
    page = client.workflows(limit=2)
    mine = [w for w in page["workflows"] if w["id"].startswith("wl-")]
    assert [w["id"] for w in mine] == ["wl-4", "wl-3"] and page["next_cursor"]
    assert mine[0] == {"id": "wl-4", "status": "running", "created_ms": mine[0]["created_ms"],
                       "tasks": 2, "open": 2}
    seen = [w["id"] for w in mine]
    cursor = page["next_cursor"]
    while cursor:
        page = client.workflows(limit=2, cursor=cursor)
        seen += [w["id"] for w in page["workflows"]]
        cursor = page["next_cursor"]
    assert seen == ["wl-4", "wl-3", "wl-2", "wl-1", "wl-0"]
    status, cancelled = http(url + "/v1/workflows?status=cancelled&consistency=leader")
    assert status == 200 and [w["id"] for w in cancelled["workflows"]] == ["wl-1"]
    assert cancelled["workflows"][0]["open"] == 0
    assert [w["id"] for w in client.workflows("running")["workflows"]] == [
        "wl-4", "wl-3", "wl-2", "wl-0"]

    for query, field in (("status=done", "status"), ("limit=0", "limit"),
                         ("cursor=nope", "cursor"), ("tenant=x", "tenant")):
        status, answer = http(url + "/v1/workflows?" + query)
        assert status == 400 and answer["error"]["field"] == field, (query, answer)

    out = raftq(node, "workflow", "list", "--status", "running", "--limit", "3")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "TASKS", "OPEN", "CREATED"]
    assert [line.split()[0] for line in lines[1:]] == ["wl-4", "wl-3", "wl-2"]
    assert "raftq workflow list --cursor" in out.stderr
    out = raftq(node, "workflow", "list", "--status", "done")
    assert out.returncode == 1 and out.stderr.startswith("error: --status: "), out.stderr
