"""Producers that batch by themselves, on a real cluster: concurrent ``submit``s of
an ``AsyncClient``, ``Client.pipeline()`` and ``delay_many`` travel as batch
requests, and every handle that came back stands for a committed task."""

from __future__ import annotations

import asyncio
import re

import pytest
from clusterkit import metrics

from raftq import AsyncClient, Client, errors
from raftq.client.task import Registry, task
from raftq.local.cluster import LocalCluster


def batch_requests(cluster: LocalCluster) -> int:
    """``POST /v1/tasks/batch`` requests the cluster's nodes answered, in all."""
    total = 0
    for url in cluster.http_urls:
        for line in metrics(url).splitlines():
            if line.startswith("raftq_http_requests_total{") and 'route="/v1/tasks/batch"' in line:
                total += int(float(re.split(r"\s+", line)[-1]))
    return total


def test_concurrent_submits_coalesce_and_each_handle_is_committed(
        cluster: LocalCluster) -> None:
    async def main() -> list[str]:
        async with AsyncClient(cluster.http_urls) as client:
            handles = await asyncio.gather(*(client.submit("add", [i, 1]) for i in range(300)))
            # A refused spec among good ones fails alone.
            mixed = await asyncio.gather(
                *(client.submit("add", [i], priority="bogus" if i == 1 else "normal")
                  for i in range(3)), return_exceptions=True)
            assert isinstance(mixed[1], errors.InvalidRequest)
            assert not isinstance(mixed[0], BaseException)
            assert not isinstance(mixed[2], BaseException)
            return [h.id for h in handles]

    before = batch_requests(cluster)
    ids = asyncio.run(main())
    assert len(set(ids)) == 300
    assert 1 <= batch_requests(cluster) - before <= 10
    with Client(cluster.http_urls) as client:
        # Committed before the handle came back: every node that applied it has it.
        assert all(client.get(i)["status"] == "queued" for i in ids)
        assert client.queues()["default"]["queued"] == 302


def test_pipeline_and_delay_many_submit_in_order(cluster: LocalCluster) -> None:
    reg = Registry()

    @task(registry=reg, queue="batched")
    def add(a: int, b: int) -> int:
        return a + b

    with Client(cluster.http_urls) as client:
        before = batch_requests(cluster)
        with client.pipeline():
            piped = [add.submit((i, 0), client=client) for i in range(1500)]
            assert all(h.pending for h in piped[1000:])
        assert not any(h.pending for h in piped)
        many = add.delay_many([(i, 1) for i in range(1500, 2500)], client=client)
        assert batch_requests(cluster) - before == 3
        assert client.queues()["batched"]["queued"] == 2500
        # Claimed in the order they were submitted.
        claimed = []
        while len(claimed) < 2500:
            got = client.claim("w-order", ["batched"], max=500, lease_ms=60_000)
            assert got
            claimed.extend(t["id"] for t in got)
        assert claimed == [h.id for h in piped + many]


def test_a_pending_handle_is_sent_before_it_is_read(cluster: LocalCluster) -> None:
    with Client(cluster.http_urls) as client, client.pipeline():
        handle = client.submit("add", [1, 2], id="piped-1")
        assert handle.pending
        with pytest.raises(errors.NotFound):
            client.get("piped-1")  # not sent yet
        with pytest.raises(TimeoutError):
            handle.result(timeout=0)
        assert not handle.pending and handle.created
