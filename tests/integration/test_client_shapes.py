"""What the client's calls return against a real cluster has the documented shape
(issue 10 item 14; the annotations themselves are checked in tests/unit)."""

from __future__ import annotations

from typing import Any

from raftq.client import types
from raftq.client.sync import Client
from raftq.local.cluster import LocalCluster


def has_shape(value: Any, typed: Any) -> bool:
    return isinstance(value, dict) and typed.__required_keys__ <= value.keys()


def test_every_call_returns_its_documented_shape(cluster: LocalCluster) -> None:
    with Client(cluster.http_urls) as client:
        handle = client.submit("add", [1, 2], id="shape-1", max_attempts=1)
        assert handle.created and handle.id == "shape-1"
        assert has_shape(client.get("shape-1"), types.TaskInfo)
        tasks = client.list()
        assert isinstance(tasks, list) and all(has_shape(t, types.TaskInfo) for t in tasks)
        page = client.list_page(limit=1)
        assert has_shape(page, types.TaskPage) and page["next_cursor"] is None

        (claimed,) = client.claim("w-shape", max=1, host="h", pid=7)
        client.fail("shape-1", claimed["lease_token"], "boom", retry=False)
        workers = client.workers()
        assert isinstance(workers, list) and has_shape(workers[0], types.WorkerInfo)
        dead = client.dead_letters()
        assert [t["id"] for t in dead] == ["shape-1"] and has_shape(dead[0], types.TaskInfo)
        queues = client.queues()
        assert isinstance(queues, dict) and has_shape(queues["default"], types.QueueCounts)
        assert has_shape(client.requeue("shape-1"), types.TaskInfo)
        (claimed,) = client.claim("w-shape", max=1)
        client.fail("shape-1", claimed["lease_token"], "boom", retry=False)
        assert client.purge("shape-1") == {"id": "shape-1", "purged": 1}
        assert client.purge() == {"purged": 0}

        client.submit("later", delay=60, id="shape-2")
        assert has_shape(client.cancel("shape-2"), types.TaskInfo)
