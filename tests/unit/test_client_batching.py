"""UNIT tests of submissions that travel as batches without the caller batching them:
``AsyncClient``'s coalescing, ``Client.pipeline()`` and ``delay_many``, against
``fake_node.FakeNode`` (tests/integration/test_producer_batching.py runs them on
a real cluster)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fake_node import FakeNode, dead_url

from raftq import AsyncClient, Client, errors
from raftq.client.task import Registry, TaskFunction, TaskOptions, task


def answer(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """What a node answers to a submission, single or batch."""
    if request["path"] == "/v1/tasks/batch":
        return 200, {"results": [{"id": t["id"], "status": "queued", "created": True}
                                 for t in request["body"]["tasks"]]}
    return 201, {"task": {"id": request["body"]["id"], "status": "queued"}, "created": True}


@pytest.fixture
def fake() -> Iterator[FakeNode]:
    node = FakeNode(default=answer)
    yield node
    node.close()


def paths(fake: FakeNode) -> list[tuple[str, int]]:
    return [(r["path"], len(r["body"]["tasks"]) if r["path"].endswith("batch") else 1)
            for r in fake.requests]


def test_concurrent_submits_travel_as_one_batch_and_each_gets_its_own_task(
        fake: FakeNode) -> None:
    async def main() -> list[Any]:
        async with AsyncClient([fake.url]) as client:
            return await asyncio.gather(*(client.submit("add", [i, 1]) for i in range(50)))

    handles = asyncio.run(main())
    assert paths(fake) == [("/v1/tasks/batch", 50)]
    sent = fake.requests[0]["body"]["tasks"]
    assert [t["args"] for t in sent] == [[i, 1] for i in range(50)]
    assert [h.id for h in handles] == [t["id"] for t in sent]
    assert all(h.task == {"id": h.id, "status": "queued"} and h.created for h in handles)


def test_a_lone_submit_still_goes_to_the_single_endpoint(fake: FakeNode) -> None:
    async def main() -> Any:
        async with AsyncClient([fake.url]) as client:
            return await client.submit("add", [1, 2])

    handle = asyncio.run(main())
    assert paths(fake) == [("/v1/tasks", 1)] and handle.task["id"] == handle.id


def test_submits_made_while_a_batch_is_on_the_wire_go_as_the_next_batch() -> None:
    release = threading.Event()

    def slow(request: dict[str, Any]) -> Any:
        release.wait(5)
        return answer(request)

    fake = FakeNode(default=slow)
    try:
        async def main() -> list[Any]:
            async with AsyncClient([fake.url]) as client:
                client._coalescer.max_in_flight = 1  # type: ignore[union-attr]
                first = asyncio.ensure_future(client.submit("add", [0]))
                while not fake.requests:
                    await asyncio.sleep(0.005)
                rest = [asyncio.ensure_future(client.submit("add", [i])) for i in range(1, 31)]
                await asyncio.sleep(0.05)
                # Not answered yet: none of them may have resolved.
                assert not first.done() and not any(f.done() for f in rest)
                release.set()
                return await asyncio.gather(first, *rest)

        handles = asyncio.run(main())
    finally:
        release.set()
        fake.close()
    assert paths(fake) == [("/v1/tasks", 1), ("/v1/tasks/batch", 30)]
    assert len({h.id for h in handles}) == 31


def test_a_refused_batch_is_resent_one_by_one_so_only_the_bad_spec_fails() -> None:
    def refuse_bad(request: dict[str, Any]) -> Any:
        specs = request["body"]["tasks"] if request["path"].endswith("batch") else [request["body"]]
        if any(s["name"] == "bad" for s in specs):
            return 400, {"error": {"code": "invalid_request", "message": "bad name",
                                   "field": "name"}}
        return answer(request)

    fake = FakeNode(default=refuse_bad)
    try:
        async def main() -> list[Any]:
            async with AsyncClient([fake.url]) as client:
                return await asyncio.gather(
                    *(client.submit("bad" if i == 2 else "add", [i]) for i in range(4)),
                    return_exceptions=True)

        results = asyncio.run(main())
    finally:
        fake.close()
    assert isinstance(results[2], errors.InvalidRequest)
    assert all(not isinstance(r, BaseException) for i, r in enumerate(results) if i != 2)
    assert paths(fake)[0] == ("/v1/tasks/batch", 4)
    assert sorted(paths(fake)[1:]) == [("/v1/tasks", 1)] * 4


def test_a_batch_that_cannot_be_delivered_fails_every_caller() -> None:
    async def main() -> list[Any]:
        async with AsyncClient([dead_url()], retry_for=0.2) as client:
            return await asyncio.gather(*(client.submit("add", [i]) for i in range(5)),
                                        return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, errors.Unavailable) for r in results)


def test_coalescing_can_be_turned_off(fake: FakeNode) -> None:
    async def main() -> None:
        async with AsyncClient([fake.url], coalesce=False) as client:
            await asyncio.gather(*(client.submit("add", [i]) for i in range(3)))

    asyncio.run(main())
    assert paths(fake) == [("/v1/tasks", 1)] * 3


def test_pipeline_sends_the_block_as_one_batch_when_it_ends(fake: FakeNode) -> None:
    client = Client([fake.url])
    with client.pipeline() as pipe:
        handles = [client.submit("add", [i]) for i in range(10)]
        assert fake.requests == [] and len(pipe) == 10
        assert all(h.pending and h.task == {} for h in handles)
    assert paths(fake) == [("/v1/tasks/batch", 10)]
    assert [h.id for h in handles] == [t["id"] for t in fake.requests[0]["body"]["tasks"]]
    assert all(not h.pending and h.task["status"] == "queued" for h in handles)


def test_pipeline_flushes_at_1000_and_reading_a_handle_sends_first(fake: FakeNode) -> None:
    fake_task = {"id": "x", "status": "succeeded", "result": 3}
    client = Client([fake.url])
    with client.pipeline():
        handles = [client.submit("add", [i]) for i in range(1001)]
        assert paths(fake) == [("/v1/tasks/batch", 1000)] and handles[999].created
        assert handles[1000].pending
        fake.replies = [answer, (200, {"task": fake_task})]
        assert handles[1000].result(timeout=1) == 3
        assert not handles[1000].pending
    assert paths(fake)[1] == ("/v1/tasks", 1) and len(fake.requests) == 3


def test_pipeline_is_per_thread_and_nests(fake: FakeNode) -> None:
    client = Client([fake.url])
    with client.pipeline() as outer:
        with client.pipeline() as inner:
            assert inner is outer
            client.submit("add", [1])
        assert fake.requests == []  # the inner block's end does not send
        other: list[Any] = []
        thread = threading.Thread(target=lambda: other.append(client.submit("add", [2])))
        thread.start()
        thread.join()
        assert not other[0].pending and paths(fake) == [("/v1/tasks", 1)]
    assert paths(fake) == [("/v1/tasks", 1), ("/v1/tasks", 1)]


def test_pipeline_sends_what_was_queued_when_the_block_raises(fake: FakeNode) -> None:
    client = Client([fake.url])
    with pytest.raises(RuntimeError), client.pipeline():
        client.submit("add", [1])
        client.submit("add", [2])
        raise RuntimeError("the loop failed")
    assert paths(fake) == [("/v1/tasks/batch", 2)]


def test_delay_many_uses_the_tasks_defaults_in_batches(fake: FakeNode) -> None:
    reg = Registry()

    @task(registry=reg, queue="q", priority="high", timeout=2)
    def add(a: int, b: int) -> int:
        return a + b

    assert isinstance(add, TaskFunction) and add.options == TaskOptions("q", "high", None, 2)
    client = Client([fake.url])
    handles = add.delay_many([(i, i) for i in range(1500)], client=client)
    assert paths(fake) == [("/v1/tasks/batch", 1000), ("/v1/tasks/batch", 500)]
    first = fake.requests[0]["body"]["tasks"][0]
    assert first["name"] == "add" and first["args"] == [0, 0] and first["queue"] == "q"
    assert first["priority"] == "high" and first["timeout_ms"] == 2000
    assert len(handles) == 1500 and all(h.created for h in handles)

    async def main() -> int:
        async with AsyncClient([fake.url]) as aclient:
            return len(await add.delay_many_async([(1, 2)] * 3, client=aclient))

    assert asyncio.run(main()) == 3
    assert paths(fake)[-1] == ("/v1/tasks/batch", 3)

