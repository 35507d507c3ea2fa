"""Failing, stuck and killed tasks with real workers: retries, dead letters, timeouts, fencing."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from workerkit import Workers, shared_cluster, shared_workers, wait_for  # noqa: F401

from raftq import Client, TaskFailed, errors
from raftq.local.cluster import LocalCluster


def test_a_raising_task_backs_off_dies_with_every_error_and_runs_again_when_requeued(
    shared_cluster: LocalCluster, shared_workers: Workers  # noqa: F811
) -> None:
    client = Client(shared_cluster.http_urls)
    shared_workers.start("--queues", "failing")
    handle = client.submit("fails_until_fixed", ["k1"], queue="failing", max_attempts=3,
                           retry_backoff=1.0)
    with pytest.raises(TaskFailed) as info:
        handle.result(timeout=60)
    assert info.value.task_status == "dead"
    assert "ValueError" in str(info.value) and "broken on purpose" in info.value.remote_traceback

    task = client.get(handle.id)
    assert task["attempts"] == 3 and [e["attempt"] for e in task["errors"]] == [1, 2, 3]
    for entry in task["errors"]:
        assert entry["error"]["type"] == "ValueError"
        assert "in fails_until_fixed" in entry["error"]["traceback"]
    at = [e["at_ms"] for e in task["errors"]]
    first_gap, second_gap = at[1] - at[0], at[2] - at[1]
    # Backoff 1 s then 2 s, each with jitter in [0.75, 1.25).
    assert first_gap >= 750 and second_gap >= 1500 and second_gap > first_gap, at
    assert [t["id"] for t in client.dead_letters(queue="failing")] == [handle.id]
    assert shared_workers.run_counts()["k1"] == 3

    Path(str(shared_workers.log) + ".fixed").touch()
    requeued = client.requeue(handle.id)
    assert requeued["status"] in ("queued", "leased", "succeeded")
    assert client.result(handle.id, timeout=30) == "fixed"
    task = client.get(handle.id)
    assert task["attempts"] == 1 and len(task["errors"]) == 3
    assert shared_workers.run_counts()["k1"] == 4
    assert client.dead_letters(queue="failing") == []


def test_a_task_no_worker_runs_stays_queued_and_says_so(
    shared_cluster: LocalCluster, shared_workers: Workers  # noqa: F811
) -> None:
    """A worker claims only the task names it has: one it lacks is never leased to
    it (before workers announced their tasks it was dead-lettered as UnknownTask)."""
    client = Client(shared_cluster.http_urls)
    proc = shared_workers.start("--queues", "unknown")
    handle = client.submit("no_such_task", [1], queue="unknown", max_attempts=5)
    assert client.submit("record", ["after"], queue="unknown").result(timeout=30) == "after"
    task = client.get(handle.id)
    assert (task["status"], task["attempts"], task["note"]) == (
        "queued", 0, "no worker runs 'no_such_task'")
    client.cancel(handle.id)
    assert proc.poll() is None


def test_process_pool_kills_a_task_past_its_timeout_and_the_retry_runs(
    shared_cluster: LocalCluster, shared_workers: Workers  # noqa: F811
) -> None:
    client = Client(shared_cluster.http_urls)
    shared_workers.start("--queues", "stuck", "--pool", "process", "--concurrency", "2")
    handle = client.submit("stuck_first_time", ["s1"], queue="stuck", timeout=2.0,
                           max_attempts=3, retry_backoff=0.1)
    second_pid = handle.result(timeout=90)
    task = client.get(handle.id)
    assert task["attempts"] == 2
    assert [e["error"]["type"] for e in task["errors"]] == ["TimeoutError"]
    assert "killed" in task["errors"][0]["error"]["message"]
    runs = [(pid, event) for key, pid, event in shared_workers.runs() if key == "s1"]
    assert len(runs) == 2 and runs[1][0] == second_pid and runs[0][0] != second_pid
    with pytest.raises(ProcessLookupError):  # the stuck run's process is gone
        os.kill(runs[0][0], 0)


def test_a_killed_workers_tasks_go_to_another_worker_and_its_late_completion_is_refused(
    shared_cluster: LocalCluster, shared_workers: Workers  # noqa: F811
) -> None:
    client = Client(shared_cluster.http_urls)
    slow = shared_workers.start("--queues", "killed", "--concurrency", "4", "--lease-ms", "3000",
                                "--worker-id", "doomed", env={"RAFTQ_TEST_EXTRA_SLEEP": "120"})
    handles = [client.submit("record", [f"kill-{i}"], queue="killed") for i in range(4)]
    wait_for(lambda: len(shared_workers.run_counts()) == 4, what="the doomed worker runs all 4")
    assert all(client.get(h.id)["lease"]["worker_id"] == "doomed" for h in handles)
    slow.send_signal(signal.SIGKILL)
    slow.wait(10)
    old = {h.id: client.get(h.id)["lease"] for h in handles}

    shared_workers.start("--queues", "killed", "--concurrency", "4", "--lease-ms", "3000",
                         "--worker-id", "rescuer")
    assert [client.result(h.id, timeout=60) for h in handles] == [f"kill-{i}" for i in range(4)]

    timed = shared_workers.timed_runs()
    for i, h in enumerate(handles):
        task = client.get(h.id)
        assert task["attempts"] == 2 and task["status"] == "succeeded", task["errors"]
        runs = [(pid, at) for key, pid, event, at in timed if key == f"kill-{i}" and event == "run"]
        assert len(runs) == 2 and runs[0][0] == slow.pid and runs[1][0] != slow.pid
        # The second run began only after the first run's lease had expired.
        assert runs[1][1] * 1000 >= old[h.id]["expires_ms"], (runs, old[h.id])

        # The killed attempt, completing late, is refused: the task is finished.
        # (Views never show a lease token; the first claim's was the lower one.)
        assert "lease_token" not in str(task) and "lease_token" not in str(old[h.id])
        token = 1
        with pytest.raises(errors.AlreadyFinished):
            client.complete(h.id, token, "late")
        with pytest.raises(errors.AlreadyFinished):
            client.fail(h.id, token, {"type": "E", "message": "late", "traceback": ""})
        (answer,) = client.complete_many("doomed", [{"id": h.id, "lease_token": token,
                                                     "result": "late"}])
        assert answer["ok"] is False and answer["code"] == "already_finished"
        assert client.get(h.id)["result"] == f"kill-{i}"


def test_a_result_the_node_refuses_as_too_large_becomes_the_tasks_failure(
    shared_cluster: LocalCluster, shared_workers: Workers  # noqa: F811
) -> None:
    client = Client(shared_cluster.http_urls)
    shared_workers.start("--queues", "big")
    small = client.submit("big_result", [10], queue="big")
    big = client.submit("big_result", [3 * 1024 * 1024], queue="big", max_attempts=3)
    assert small.result(timeout=30) == "x" * 10
    with pytest.raises(TaskFailed, match="ResultRejected") as info:
        big.result(timeout=60)
    assert len(info.value.errors) == 1  # not retried: it would be refused again
    assert shared_workers.run_counts()[f"big-{3 * 1024 * 1024}"] == 1
