"""UNIT tests of a worker's presence: what it announces, the control it obeys, and
the process pool's recycling and resizing. The integration tests run real workers
against real nodes (tests/integration/test_fleet.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from test_task_worker import FakeApi, make, reg, until

from raftq.client.task import Registry, task
from raftq.worker.pools import Job, ProcessPool, ThreadPool
from raftq.worker.presence import Meter, definitions


def test_definitions_carry_the_decorator_defaults_that_are_set() -> None:
    registry = Registry()

    @task(registry=registry, queue="q", priority="high", timeout=1.5, max_attempts=2,
          retry_backoff=0.25)
    def slow() -> None: ...

    @task(registry=registry)
    def plain() -> None: ...

    assert definitions(registry) == [
        {"name": "plain", "queue": "default", "priority": "normal"},
        {"name": "slow", "queue": "q", "priority": "high", "max_attempts": 2,
         "timeout_ms": 1500, "retry_backoff_ms": 250},
    ]


def test_the_meter_reads_cpu_and_memory() -> None:
    meter = Meter()
    end = time.monotonic() + 0.05
    while time.monotonic() < end:
        pass
    cpu, rss = meter.read()
    assert 10 < cpu <= 110 and rss > 1000  # busy for the whole interval, one thread


def test_the_first_reading_counts_only_the_cpu_spent_since_the_meter_began() -> None:
    end = time.process_time() + 0.3  # start-up work before the worker meters
    while time.process_time() < end:
        pass
    meter = Meter()
    cpu, _ = meter.read()  # a moment later, idle in between
    assert cpu <= 110, cpu


class ControlledApi(FakeApi):
    """The fake node, answering heartbeats with the control a test sets."""

    def __init__(self) -> None:
        super().__init__(0, 0.0, slots=100)
        self.control: dict[str, Any] = {"version": 0}
        self.beats: list[dict[str, Any]] = []
        self.claims = 0

    async def heartbeat(self, worker_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self.beats.append(body)
        return {"worker_id": worker_id, "control": dict(self.control)}

    async def claim(self, worker_id: str, queues: Any, max: int, **kw: Any) -> list[Any]:
        self.claims += 1
        assert kw["names"] == ["nap"]
        return await super().claim(worker_id, queues, max, **kw)

    async def leave(self, worker_id: str) -> dict[str, Any]:
        return {"removed": True}


def test_a_worker_announces_first_then_obeys_pause_resize_resume_and_drain() -> None:
    api = ControlledApi()

    async def main() -> None:
        worker = make(api, concurrency=1)
        worker.config.heartbeat_s = 0.05
        run = asyncio.create_task(worker.run())
        await until(lambda: api.claims > 0)
        first = api.beats[0]
        assert (first["mode"], first["tasks"][0]["name"], first["acted"]) == (
            "running", "nap", 0)
        api.control = {"paused": True, "draining": False, "concurrency": 4, "version": 2}
        await until(lambda: api.beats[-1]["acted"] == 2)
        assert (api.beats[-1]["mode"], api.beats[-1]["concurrency"]) == ("paused", 4)
        assert worker.pool.concurrency == worker.auto_prefetch.concurrency == 4
        claims = api.claims
        await asyncio.sleep(0.3)  # paused: no claim goes out (one in flight may end)
        assert api.claims <= claims + 1
        api.control = {"paused": False, "draining": False, "concurrency": 4, "version": 3}
        await until(lambda: api.claims > claims + 2)
        api.control = {"paused": False, "draining": True, "concurrency": 4, "version": 4}
        await asyncio.wait_for(run, 10)  # drained: run() returns
        assert worker.stopping

    asyncio.run(main())


def test_a_thread_pool_grows_when_resized() -> None:
    async def main() -> list[str]:
        pool = ThreadPool(1, reg)
        pool.resize(3)
        jobs = [pool.run(Job(f"r{i}", "nap", [f"r{i}", 0.3])) for i in range(3)]
        started = time.monotonic()
        outcomes = await asyncio.gather(*jobs)
        assert time.monotonic() - started < 0.8  # together, not one after another
        await pool.close()
        return [o.result for o in outcomes]

    assert asyncio.run(main()) == ["r0", "r1", "r2"]


def test_a_process_pool_replaces_a_child_after_max_tasks_per_child() -> None:
    async def main() -> tuple[list[int], int]:
        pool = ProcessPool(1, Registry(), ["pool_app"], max_tasks_per_child=2)
        await pool.start()
        try:
            pids = [(await pool.run(Job(f"p{i}", "pool_app.pid"))).result for i in range(5)]
        finally:
            await pool.close()
        return pids, pool.recycled

    pids, recycled = asyncio.run(main())
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]
    assert recycled == 2
