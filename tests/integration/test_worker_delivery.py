"""1,000 tasks through two real workers and three real nodes: each runs exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

from workerkit import ROOT, Workers, fresh_cluster, wait_for, workers  # noqa: F401

from raftq import Client
from raftq.local.cluster import LocalCluster


def test_1000_tasks_submitted_across_nodes_run_once_each_on_two_workers(
    fresh_cluster: LocalCluster, workers: Workers  # noqa: F811
) -> None:
    urls = fresh_cluster.http_urls
    procs = [workers.start("--concurrency", "8", "--prefetch", "8"),
             workers.start("--concurrency", "16", "--prefetch", "16", "--pool", "async")]
    client = Client(urls)
    seen = wait_for(lambda: len({w["pid"] for w in client.workers()}) == 2 and client.workers(),
                    what="both workers in GET /v1/workers")
    assert {w["pid"] for w in seen} == {p.pid for p in procs}
    assert all(w["queues"] == ["default"] and w["host"] for w in seen)

    # Submit through each node in turn: single submissions and batches.
    handles = []
    for i in range(100):
        handles.append(Client([urls[i % 3]]).submit("record", [f"single-{i}"]))
    for n in range(9):
        name = "arecord" if n % 2 else "record"  # a coroutine task, awaited by either pool
        specs = [{"name": name, "args": [f"batch-{n}-{j}"]} for j in range(100)]
        handles += Client([urls[n % 3]]).submit_many(specs)
    assert len({h.id for h in handles}) == 1000

    def all_done() -> bool:
        depth = client.queues()["default"]
        return bool(depth["succeeded"] == 1000)

    wait_for(all_done, timeout=180, interval=0.5, what="1000 tasks succeeded")

    counts = workers.run_counts()
    assert len(counts) == 1000 and set(counts.values()) == {1}, counts.most_common(3)
    by_pid = Counter(pid for _, pid, event in workers.runs() if event == "run")
    assert set(by_pid) == {p.pid for p in procs}, by_pid

    # Every result, readable from every node, from the run that did it.
    for url in urls:
        node_client = Client([url])
        for handle in handles[::7]:
            task = node_client.get(handle.id)
            assert task["status"] == "succeeded" and task["attempts"] == 1
            assert task["result"] == task["args"][0]
    assert Client([urls[2]]).result(handles[-1].id, timeout=5) == "batch-8-99"

    # ``raftq workers`` lists both.
    out = subprocess.run(
        [sys.executable, "-m", "raftq", "workers", "--nodes", urls[1], "--output", "json"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stderr
    assert {w["pid"] for w in json.loads(out.stdout)} == {p.pid for p in procs}
    table = subprocess.run(
        [sys.executable, "-m", "raftq", "workers", "--nodes", urls[0]],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert table.returncode == 0 and "WORKER" in table.stdout and str(procs[0].pid) in table.stdout
