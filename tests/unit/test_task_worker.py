"""UNIT tests of the worker's bookkeeping against an in-memory fake of the node API.

The fake (``FakeApi``) hands out tasks and records what the worker sends; it
stands in for the AsyncClient only. The integration tests run real workers
against real nodes.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from raftq import errors
from raftq.client.task import Registry, task
from raftq.worker.pools import ThreadPool
from raftq.worker.runtime import Worker, WorkerConfig

reg = Registry()
finished: set[str] = set()
lock = threading.Lock()


@task(registry=reg)
def nap(key: str, seconds: float) -> str:
    time.sleep(seconds)
    with lock:
        finished.add(key)
    return key


class FakeApi:
    timeout = 1.0

    def __init__(self, n: int, seconds: float, slots: int) -> None:
        self.supply = [{"id": f"t{i}", "name": "nap", "args": [f"t{i}", seconds], "kwargs": {},
                        "lease_token": i + 1, "timeout_ms": 10_000} for i in range(n)]
        self.slots = slots
        self.claimed: list[str] = []
        self.over: list[tuple[int, int]] = []
        self.delivered: list[dict[str, Any]] = []
        self.released: list[tuple[str, int]] = []
        self.fail_deliveries = 0

    async def claim(self, worker_id: str, queues: Any, max: int, **kw: Any) -> list[Any]:
        with lock:
            unfinished = len(set(self.claimed) - finished)
        if unfinished + max > self.slots:
            self.over.append((unfinished, max))
        if not self.supply:
            await asyncio.sleep(kw["wait_ms"] / 1000)
            return []
        out, self.supply = self.supply[:max], self.supply[max:]
        self.claimed += [t["id"] for t in out]
        return out

    async def extend(self, worker_id: str, leases: Any, lease_ms: int) -> list[Any]:
        return [{"id": i, "ok": True} for i, _ in leases]

    async def release(self, worker_id: str, leases: Any) -> list[Any]:
        self.released += leases
        return [{"id": i, "ok": True} for i, _ in leases]

    async def complete_many(self, worker_id: str, items: list[Any]) -> list[Any]:
        await asyncio.sleep(0.01)
        if self.fail_deliveries:
            self.fail_deliveries -= 1
            raise errors.Unavailable("no node answered")
        self.delivered += items
        return [{"id": it["id"], "ok": True, "status": "succeeded"} for it in items]


def make(api: FakeApi, concurrency: int, prefetch: int = 0) -> Worker:
    config = WorkerConfig(concurrency=concurrency, prefetch=prefetch, claim_wait_ms=50,
                          lease_ms=3000, shutdown_timeout=10)
    return Worker(config, registry=reg, client=api,  # type: ignore[arg-type]
                  pool=ThreadPool(concurrency, reg))


async def until(predicate: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_never_claims_more_than_its_free_slots_and_delivers_each_outcome_once() -> None:
    api = FakeApi(60, 0.01, slots=5)
    api.fail_deliveries = 2  # the first deliveries find no node: kept and retried

    async def main() -> None:
        worker = make(api, concurrency=3, prefetch=2)
        run = asyncio.create_task(worker.run())
        await until(lambda: len(api.delivered) == 60)
        worker.stop()
        await asyncio.wait_for(run, 10)

    asyncio.run(main())
    assert api.over == []
    ids = [it["id"] for it in api.delivered]
    assert sorted(ids) == sorted(f"t{i}" for i in range(60)) and len(set(ids)) == 60
    assert all(it["result"] == it["id"] for it in api.delivered)


def test_stop_hands_back_unstarted_tasks_and_delivers_running_ones() -> None:
    api = FakeApi(6, 0.5, slots=6)

    async def main() -> Worker:
        worker = make(api, concurrency=2, prefetch=4)
        run = asyncio.create_task(worker.run())
        await until(lambda: len(api.claimed) == 6)
        worker.stop()
        await asyncio.wait_for(run, 10)
        return worker

    worker = asyncio.run(main())
    delivered = {it["id"] for it in api.delivered}
    released = {i for i, _ in api.released}
    assert len(delivered) == 2 and len(released) == 4
    assert delivered | released == {f"t{i}" for i in range(6)}
    assert worker.stats.released == 4 and not worker.held


class SlowClaims(FakeApi):
    """Claims that take ``delay`` seconds and then bring ``n`` tasks."""

    def __init__(self, n: int, delay: float) -> None:
        super().__init__(n, 0.01, slots=100)
        self.delay = delay
        self.claiming = asyncio.Event()

    async def claim(self, worker_id: str, queues: Any, max: int, **kw: Any) -> list[Any]:
        self.claiming.set()
        await asyncio.sleep(self.delay)
        out, self.supply = self.supply[:max], self.supply[max:]
        self.claimed += [t["id"] for t in out]
        return out


def test_a_claim_in_flight_at_stop_is_awaited_and_its_tasks_handed_back() -> None:
    api = SlowClaims(3, delay=0.5)

    async def main() -> None:
        worker = make(api, concurrency=3)
        run = asyncio.create_task(worker.run())
        await asyncio.wait_for(api.claiming.wait(), 5)  # the first claim is in flight
        worker.stop()
        await asyncio.wait_for(run, 10)

    asyncio.run(main())
    assert len(api.claimed) == 3 and sorted(i for i, _ in api.released) == sorted(api.claimed)
    assert api.delivered == []


def test_halt_does_not_wait_for_a_claim_in_flight() -> None:
    api = SlowClaims(3, delay=30)

    async def main() -> float:
        worker = make(api, concurrency=3)
        run = asyncio.create_task(worker.run())
        await asyncio.wait_for(api.claiming.wait(), 5)
        worker.stop()
        await asyncio.sleep(0)  # let the worker see the stop before the halt
        started = time.monotonic()
        worker.halt()
        await asyncio.wait_for(run, 10)
        return time.monotonic() - started

    assert asyncio.run(main()) < 2


class PickyApi(FakeApi):
    """Refuses any batch holding ``t1``'s result as invalid and fails on ``t2`` (a node bug)."""

    async def complete_many(self, worker_id: str, items: list[Any]) -> list[Any]:
        ids = {it["id"] for it in items}
        if "t1" in ids and "result" in next(it for it in items if it["id"] == "t1"):
            raise errors.PayloadTooLarge("items[0].result is over 1 MiB")
        if "t2" in ids:
            raise errors.InternalError("internal error; see the node log")
        return await super().complete_many(worker_id, items)


def test_a_refused_outcome_never_holds_up_the_others() -> None:
    api = PickyApi(8, 0.01, slots=8)

    async def main() -> Worker:
        worker = make(api, concurrency=8)
        run = asyncio.create_task(worker.run())
        await until(lambda: len(api.delivered) == 7 and not worker.outbox)
        worker.stop()
        await asyncio.wait_for(run, 10)
        return worker

    worker = asyncio.run(main())
    by_id = {it["id"]: it for it in api.delivered}
    assert sorted(by_id) == sorted(f"t{i}" for i in range(8) if i != 2)
    assert by_id["t1"]["error"]["type"] == "ResultRejected" and by_id["t1"]["retry"] is False
    assert by_id["t0"]["result"] == "t0"
    assert worker.stats.rejected == 1  # t2: given up on, its lease will expire
