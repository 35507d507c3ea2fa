"""What the console's pages call, against a real node: tasks searched by tenant."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from clusterkit import http, port_block

from raftq import Client
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
