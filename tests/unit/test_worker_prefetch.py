"""``--prefetch auto``: short tasks are claimed ahead, long ones are not."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from raftq.client.task import Registry, task
from raftq.worker.pools import ThreadPool
from raftq.worker.prefetch import MAX_PREFETCH, AutoPrefetch
from raftq.worker.runtime import Worker, WorkerConfig

reg = Registry()


@task(registry=reg)
def nap(seconds: float) -> None:
    time.sleep(seconds)


def test_the_prefetch_is_what_the_pool_finishes_in_two_round_trips() -> None:
    auto = AutoPrefetch(concurrency=8)
    assert auto.value == 0  # nothing measured yet
    auto.ran(0.001)
    auto.claimed(0.005, got=3, asked=8)  # a short answer may have waited for work
    assert auto.value == 0
    auto.claimed(0.005, got=8, asked=8)
    assert auto.value == 2 * 8 * 5
    for _ in range(50):
        auto.ran(0.000_01)
    assert auto.value == MAX_PREFETCH
    for _ in range(50):
        auto.ran(1.0)  # tasks far longer than a claim: none claimed ahead
    assert auto.value == 0


class Supply:
    """Claims that take ``claim_s`` and bring what is asked; records each ``max``."""

    timeout = 1.0

    def __init__(self, n: int, seconds: float, claim_s: float) -> None:
        self.supply = [{"id": f"t{i}", "name": "nap", "args": [seconds], "kwargs": {},
                        "lease_token": i + 1} for i in range(n)]
        self.claim_s = claim_s
        self.asked: list[int] = []
        self.delivered = 0

    async def claim(self, worker_id: str, queues: Any, max: int, **kw: Any) -> list[Any]:
        self.asked.append(max)
        await asyncio.sleep(self.claim_s)
        out, self.supply = self.supply[:max], self.supply[max:]
        return out

    async def extend(self, worker_id: str, leases: Any, lease_ms: int) -> list[Any]:
        return [{"id": i, "ok": True} for i, _ in leases]

    async def release(self, worker_id: str, leases: Any) -> list[Any]:
        return [{"id": i, "ok": True} for i, _ in leases]

    async def leave(self, worker_id: str) -> None:
        pass

    async def complete_many(self, worker_id: str, items: list[Any]) -> list[Any]:
        self.delivered += len(items)
        return [{"id": it["id"], "ok": True, "status": "succeeded"} for it in items]


def drain(api: Supply, n: int, prefetch: int | None) -> Worker:
    async def main() -> Worker:
        config = WorkerConfig(concurrency=4, prefetch=prefetch, claim_wait_ms=50,
                              lease_ms=3000, shutdown_timeout=10)
        worker = Worker(config, registry=reg, client=api,  # type: ignore[arg-type]
                        pool=ThreadPool(4, reg))
        run = asyncio.create_task(worker.run())
        deadline = time.monotonic() + 30
        while api.delivered < n:
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.01)
        worker.stop()
        await asyncio.wait_for(run, 10)
        return worker

    return asyncio.run(main())


def test_a_worker_claims_short_tasks_ahead_in_bigger_batches() -> None:
    api = Supply(600, seconds=0.0, claim_s=0.02)
    drain(api, 600, prefetch=None)
    assert api.asked[0] == 4 and max(api.asked) > 40


def test_a_worker_does_not_claim_long_tasks_ahead() -> None:
    api = Supply(12, seconds=0.2, claim_s=0.01)
    drain(api, 12, prefetch=None)
    assert max(api.asked) <= 4


def test_a_fixed_prefetch_is_kept() -> None:
    api = Supply(300, seconds=0.0, claim_s=0.02)
    drain(api, 300, prefetch=0)
    assert max(api.asked) == 4
