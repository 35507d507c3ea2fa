"""Progress reported by running tasks (``current_task().progress``) reaches the task view
and the event stream, from a thread pool and from a process pool."""

from __future__ import annotations

import pytest
from workerkit import Workers, shared_cluster, shared_workers, wait_for  # noqa: F401

from raftq import Client
from raftq.local.cluster import LocalCluster


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_progress_shows_in_the_task_and_the_events(
        pool: str, shared_cluster: LocalCluster, shared_workers: Workers,  # noqa: F811
) -> None:
    client = Client(shared_cluster.http_urls)
    queue = f"progress-{pool}"
    start = client.node()["applied_index"]
    shared_workers.start("--queues", queue, "--pool", pool, "--concurrency", "1")
    handle = client.submit("stepped", args=[3], queue=queue, id=f"p-{pool}")
    # Seen while it runs, not only at the end.
    running = wait_for(lambda: (t := client.get(handle.id)).get("progress") and
                       t["status"] == "leased" and t, what="progress while running")
    assert 0 < running["progress"]["fraction"] <= 1
    assert handle.result(timeout=30) == 3
    final = client.get(handle.id)["progress"]
    assert final["fraction"] == 1.0 and final["message"] == "step 3 of 3 (attempt 1)"
    changes = list(client.events(since=start, task=handle.id, follow=False))
    reports = [c["progress"] for c in changes if c["type"] == "progress"]
    assert reports and reports[-1] == {"fraction": 1.0, "message": "step 3 of 3 (attempt 1)"}
    assert [c["type"] for c in changes if c["type"] != "progress"] == [
        "submitted", "leased", "succeeded"]
