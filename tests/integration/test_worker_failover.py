"""Losing nodes under running workers, and lost responses under a submitting client."""

from __future__ import annotations

from collections.abc import Callable

from workerkit import (  # noqa: F401
    DroppingProxy,
    Workers,
    fresh_cluster,
    wait_for,
    workers,
)

from raftq import Client
from raftq.client.sync import TaskHandle
from raftq.local.cluster import LocalCluster


def test_killing_the_leader_while_workers_run_loses_and_duplicates_nothing(
    fresh_cluster: LocalCluster, workers: Workers  # noqa: F811
) -> None:
    cluster = fresh_cluster
    client = Client(cluster.http_urls)
    for _ in range(2):
        workers.start("--concurrency", "8", "--lease-ms", "6000")

    def more(first: int, n: int) -> list[TaskHandle]:
        return client.submit_many(
            [{"name": "record", "args": [f"lk-{i}", 0.1]} for i in range(first, first + n)])

    handles = more(0, 600)

    def done() -> int:
        return sum(1 for _, _, e in workers.runs() if e == "done")

    def at_least(n: int) -> Callable[[], bool]:
        return lambda: done() >= n

    wait_for(lambda: done() >= 60, timeout=120, what="60 tasks done before the leader dies")
    leader = cluster.leader_index()
    assert leader is not None
    # The leader first, then every other node in turn, so that whichever node
    # each worker talks to dies under it at some point.
    # Each outage starts with 200 more tasks queued, so there is work to make
    # progress on however fast the first ones went.
    for k, victim in enumerate([leader] + [i for i in range(3) if i != leader]):
        handles += more(600 + 200 * k, 200)
        progressed = at_least(done() + 60)
        cluster.kill(victim)
        wait_for(progressed, timeout=120, what=f"progress with node {victim} down")
        cluster.start_node(victim)
        cluster.wait_ready(timeout=60)

    wait_for(lambda: client.queues()["default"]["succeeded"] == 1200, timeout=300,
             interval=0.5, what="all 1200 succeeded")
    counts = workers.run_counts()
    assert len(counts) == 1200 and set(counts.values()) == {1}, counts.most_common(3)
    for handle in handles[::5]:
        task = client.get(handle.id)
        assert task["status"] == "succeeded" and task["result"] == task["args"][0]
    assert all(p.poll() is None for p in workers.procs)
    for n in range(2):
        assert "did not answer" in workers.output(n)  # each worker lost its node at least once


def test_outcomes_wait_out_a_cluster_without_quorum_and_land_once_it_is_back(
    fresh_cluster: LocalCluster, workers: Workers  # noqa: F811
) -> None:
    client = Client(fresh_cluster.http_urls)
    workers.start("--concurrency", "4")
    handles = [client.submit("record", [f"nq-{i}", 3.0]) for i in range(4)]
    wait_for(lambda: len(workers.run_counts()) == 4, what="all 4 running")
    leader = fresh_cluster.leader_index()
    down = [i for i in range(3) if i != leader][:1] + [leader]
    for i in down:  # no quorum left: nothing can be delivered
        fresh_cluster.kill(i)
    wait_for(lambda: sum(1 for _, _, e in workers.runs() if e == "done") == 4, timeout=30,
             what="the tasks finish while the cluster is down")
    wait_for(lambda: "could not deliver" in workers.output(0), timeout=60,
             what="the worker failing to deliver")
    for i in down:
        fresh_cluster.start_node(i)
    fresh_cluster.wait_ready(timeout=60)
    assert [client.result(h.id, timeout=120) for h in handles] == [f"nq-{i}" for i in range(4)]
    for handle in handles:
        task = client.get(handle.id)
        assert task["attempts"] == 1 and task["errors"] == []
    assert set(workers.run_counts().values()) == {1}


def test_a_submission_whose_response_is_lost_is_retried_into_one_task(
    fresh_cluster: LocalCluster,  # noqa: F811
) -> None:
    proxy = DroppingProxy(fresh_cluster.http_urls[0], drop=1)
    try:
        client = Client([proxy.url], retry_for=20)
        handle = client.submit("record", ["once"], queue="dropped")
        assert proxy.forwarded == 2  # the node saw the submission twice...
        assert handle.created is False  # ...and the retry found the first one's task
        tasks = Client(fresh_cluster.http_urls).list(queue="dropped")
        assert [t["id"] for t in tasks] == [handle.id]

        proxy.drop = 1
        batch = client.submit_many([{"name": "record", "args": [i], "queue": "dropped-batch"}
                                    for i in range(50)])
        assert all(not h.created for h in batch)
        listed = Client(fresh_cluster.http_urls).list(queue="dropped-batch", limit=1000)
        assert sorted(t["id"] for t in listed) == sorted(h.id for h in batch)

        proxy.drop = 1
        cancelled = client.cancel(handle.id)  # retried under the same Idempotency-Key
        assert cancelled["status"] == "cancelled"
    finally:
        proxy.close()
