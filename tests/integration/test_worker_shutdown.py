"""SIGTERM and a second signal against real worker processes: nothing lost, nothing twice."""

from __future__ import annotations

import re
import signal
import time

from workerkit import Workers, shared_cluster, shared_workers, wait_for  # noqa: F401

from raftq import Client
from raftq.local.cluster import LocalCluster


def test_sigterm_during_200_slow_tasks_loses_nothing_and_runs_nothing_twice(
    shared_cluster: LocalCluster, shared_workers: Workers  # noqa: F811
) -> None:
    client = Client(shared_cluster.http_urls)
    first = shared_workers.start("--queues", "sigterm", "--concurrency", "8", "--prefetch", "8",
                                 "--shutdown-timeout", "30")
    handles = client.submit_many(
        [{"name": "record", "args": [f"slow-{i}", 0.3], "queue": "sigterm"} for i in range(200)])
    wait_for(lambda: sum(1 for _, _, e in shared_workers.runs() if e == "done") >= 40,
             timeout=120, what="40 tasks done before the signal")
    first.send_signal(signal.SIGTERM)
    assert first.wait(60) == 0, shared_workers.output(0)
    out = shared_workers.output(0)
    handed_back = re.search(r"(\d+) handed back", out)
    assert "SIGTERM received" in out and handed_back is not None
    assert int(handed_back.group(1)) >= 1  # its prefetched, unstarted tasks

    mine = [(key, event) for key, pid, event in shared_workers.runs() if pid == first.pid]
    started = {key for key, event in mine if event == "run"}
    assert started == {key for key, event in mine if event == "done"}  # finished what it began
    assert 40 <= len(started) < 200

    shared_workers.start("--queues", "sigterm", "--concurrency", "8")
    wait_for(lambda: client.queues()["sigterm"]["succeeded"] == 200, timeout=180, interval=0.5,
             what="all 200 succeeded")
    counts = shared_workers.run_counts()
    assert len(counts) == 200 and set(counts.values()) == {1}, counts.most_common(3)
    for handle in handles:
        task = client.get(handle.id)
        # Handed-back tasks did not spend an attempt; no lease ran out.
        assert task["attempts"] == 1 and task["errors"] == [], task


def test_a_second_signal_stops_at_once_and_the_tasks_are_redelivered(
    shared_cluster: LocalCluster, shared_workers: Workers  # noqa: F811
) -> None:
    client = Client(shared_cluster.http_urls)
    first = shared_workers.start("--queues", "hard", "--concurrency", "2", "--lease-ms", "3000",
                                 env={"RAFTQ_TEST_EXTRA_SLEEP": "120"})
    handles = [client.submit("record", [f"hard-{i}"], queue="hard") for i in range(2)]
    wait_for(lambda: len(shared_workers.run_counts()) == 2, what="both tasks running")
    first.send_signal(signal.SIGTERM)
    wait_for(lambda: "SIGTERM received" in shared_workers.output(0), what="the first signal seen")
    started = time.monotonic()
    first.send_signal(signal.SIGINT)
    assert first.wait(15) != 0
    assert time.monotonic() - started < 10
    assert "stopping now" in shared_workers.output(0)

    shared_workers.start("--queues", "hard", "--concurrency", "2", "--lease-ms", "3000")
    assert [client.result(h.id, timeout=60) for h in handles] == ["hard-0", "hard-1"]
    for handle in handles:
        task = client.get(handle.id)
        assert task["attempts"] == 2
        assert [e["error"]["type"] for e in task["errors"]] == ["LeaseExpired"]


def test_a_worker_that_stops_cleanly_leaves_the_workers_list_at_once(
    shared_cluster: LocalCluster, shared_workers: Workers  # noqa: F811
) -> None:
    client = Client(shared_cluster.http_urls)

    def listed() -> set[str]:
        return {w["worker_id"] for w in client.workers()}

    clean = shared_workers.start("--queues", "goodbye", "--worker-id", "w-clean")
    killed = shared_workers.start("--queues", "goodbye", "--worker-id", "w-killed")
    wait_for(lambda: {"w-clean", "w-killed"} <= listed(), what="both workers listed")
    clean.send_signal(signal.SIGTERM)
    assert clean.wait(30) == 0
    assert "w-clean" not in listed()  # gone as soon as it exited, not minutes later
    killed.kill()  # no goodbye: it stays listed (and shows as lost) until forgotten
    killed.wait(10)
    assert "w-killed" in listed()
