"""The event stream (GET /v1/events) on real nodes: exactly once across reconnects and a
leader kill, filters, and ``gone`` when a node no longer holds the changes asked for."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from clusterkit import http, settled, wait_for

from raftq import AsyncClient, Client
from raftq.errors import EventsGone, RaftqError
from raftq.local.cluster import LocalCluster

TASKS = 10_000


class Consumer(threading.Thread):
    """Follows the stream from index 0; every ``stop_every`` entries it drops its client
    (a consumer going away) and comes back with a new one from the last entry it
    finished, as a restarted process would."""

    def __init__(self, urls: list[str], stop_every: int) -> None:
        super().__init__(daemon=True)
        self.urls = urls
        self.stop_every = stop_every
        self.seen: list[dict[str, Any]] = []
        self.since = 0
        self.resumes = 0
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                self._session()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def _session(self) -> None:
        entries = 0
        with Client(self.urls, retry_for=60, prefer_leader=False) as client:
            stream = client.events(since=self.since)
            for change in stream:
                self.seen.append(change)
                if stream.since == change["index"]:  # the entry's last change
                    self.since = change["index"]
                    entries += 1
                    if entries >= self.stop_every or self.halt.is_set():
                        self.resumes += 1
                        stream.close()
                        return  # drop the connection between two entries


def _work(client: Client, worker: str, done: Callable[[], bool]) -> None:
    """Claim and complete until every task succeeded; short leases so the tasks of a
    claim whose answer was lost in the leader kill come back soon."""
    while not done():
        try:
            tasks = client.claim(worker, ["ev"], max=200, lease_ms=2000, wait_ms=1000)
            if tasks:
                client.complete_many(worker, [{"id": t["id"], "lease_token": t["lease_token"],
                                               "result": t["args"][0]} for t in tasks])
        except RaftqError:
            time.sleep(0.2)


def test_every_change_of_10k_tasks_exactly_once_across_resumes_and_a_leader_kill(
        cluster: LocalCluster) -> None:
    urls = cluster.http_urls
    consumer = Consumer(urls, stop_every=3)
    consumer.start()
    client = Client(urls, retry_for=60)
    for start in range(0, TASKS, 1000):
        client.submit_many([{"name": "ev.t", "queue": "ev", "args": [i], "id": f"ev-{i}"}
                            for i in range(start, start + 1000)])

    def all_done() -> bool:
        depths = client.queues().get("ev", {})
        return bool(depths.get("succeeded") == TASKS)

    worker = threading.Thread(target=_work, args=(client, "w1", all_done), daemon=True)
    worker.start()
    wait_for(lambda: len({c["task_id"] for c in consumer.seen if c["type"] == "succeeded"})
             > TASKS // 3, timeout=60, what="a third of the tasks done")
    leader = cluster.leader_index()
    assert leader is not None
    cluster.kill(leader)
    wait_for(all_done, timeout=90, what="every task succeeded after the leader kill")
    worker.join(30)
    wait_for(lambda: sum(c["type"] == "succeeded" for c in consumer.seen) >= TASKS,
             timeout=60, what="the consumer saw every success")
    consumer.halt.set()
    time.sleep(1.5)  # anything duplicated after the last success would arrive now
    assert consumer.error is None, consumer.error
    assert consumer.resumes >= 5

    seen = consumer.seen
    keys = Counter((c["index"], c["task_id"], c["type"], c["attempt"]) for c in seen)
    assert [k for k, n in keys.items() if n > 1] == []
    assert [c["index"] for c in seen] == sorted(c["index"] for c in seen)
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for change in seen:
        by_task[change["task_id"]].append(change)
    assert len(by_task) == TASKS
    for task_id, changes in by_task.items():
        # A complete history: submitted, then (leased, retried)*, leased, succeeded.
        types = [c["type"] for c in changes]
        assert types[0] == "submitted" and types[-1] == "succeeded", (task_id, types)
        middle = types[1:-1]
        assert middle[-1] == "leased" and all(
            t == ("leased" if i % 2 == 0 else "retried") for i, t in enumerate(middle)), \
            (task_id, types)
        assert [c["status"] for c in changes][-1] == "succeeded"


def test_filters_and_non_follow_end_at_the_backlog(cluster: LocalCluster) -> None:
    client = Client(cluster.http_urls)
    client.submit("f.a", queue="qa", id="fa")
    client.submit("f.b", queue="qb", id="fb")
    by_queue = list(client.events(since=0, queue="qb", follow=False))
    assert [(c["task_id"], c["type"]) for c in by_queue] == [("fb", "submitted")]
    by_name = list(client.events(since=0, name="f.a", follow=False))
    assert [(c["task_id"], c["status"]) for c in by_name] == [("fa", "queued")]
    client.cancel("fa")
    settled(cluster)  # the async client and the CLI may read from a follower
    one = list(client.events(since=0, task="fa", follow=False))
    assert [c["type"] for c in one] == ["submitted", "cancelled"]

    async def follow_async() -> list[dict[str, Any]]:
        async with AsyncClient(cluster.http_urls) as aclient:
            return [c async for c in aclient.events(since=0, queue="qa", follow=False)]

    assert [c["type"] for c in asyncio.run(follow_async())] == ["submitted", "cancelled"]
    out = subprocess.run([sys.executable, "-m", "raftq", "events", "--since", "0", "--queue",
                          "qa", "-o", "json", "--nodes", ",".join(cluster.http_urls)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert [json.loads(line)["type"] for line in out.stdout.splitlines()] == [
        "submitted", "cancelled"]
    status, body = http(cluster.http_urls[0] + "/v1/events?since=x")
    assert status == 400 and body["error"]["field"] == "since"
    status, body = http(cluster.http_urls[0] + "/v1/events?sinse=1")
    assert status == 400 and body["error"]["field"] == "sinse"


def test_a_node_that_no_longer_holds_the_index_says_gone(
        make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster(size=1, event_history=50)
    client = Client(cluster.http_urls)
    client.submit_many([{"name": "g", "id": f"g{i}"} for i in range(40)])
    client.submit_many([{"name": "g", "id": f"h{i}"} for i in range(40)])
    with pytest.raises(EventsGone) as caught:
        list(client.events(since=0, follow=False))
    assert caught.value.oldest > 0
    # From where it still holds: the second batch.
    later = list(client.events(since=caught.value.oldest, follow=False))
    assert sorted(c["task_id"] for c in later) == sorted(f"h{i}" for i in range(40))
