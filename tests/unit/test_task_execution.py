"""Unit tests of raftq.worker.pools: outcomes of running tasks, and timeouts per pool kind."""

from __future__ import annotations

import asyncio
import json
import time

from raftq.client.task import Registry, task
from raftq.worker.pools import (
    NOT_SERIALIZABLE,
    TIMEOUT,
    UNKNOWN_TASK,
    AsyncPool,
    Job,
    Outcome,
    ProcessPool,
    ThreadPool,
    execute,
)

reg = Registry()


@task(registry=reg)
def add(a: int, b: int) -> int:
    return a + b


@task(registry=reg)
def boom(message: str) -> None:
    raise ValueError(message)


@task(registry=reg)
def returns_a_set() -> set[int]:
    return {1}


@task(registry=reg)
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@task(registry=reg)
async def anap(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


@task(registry=reg)
async def own_timeout() -> None:
    await asyncio.wait_for(asyncio.sleep(5), 0.01)


def test_execute_outcomes() -> None:
    assert execute(reg, Job("1", "add", [2, 3])) == Outcome(result=5)
    failed = execute(reg, Job("1", "boom", ["no"]))
    assert failed.error is not None and failed.retry
    assert failed.error["type"] == "ValueError" and failed.error["message"] == "no"
    # The traceback starts at the task, not in the worker's machinery.
    assert "in boom" in failed.error["traceback"]
    assert "raftq/worker/" not in failed.error["traceback"]
    unknown = execute(reg, Job("1", "nope"))
    assert unknown.error is not None and unknown.error["type"] == UNKNOWN_TASK
    assert not unknown.retry and "'nope'" in unknown.error["message"]
    bad = execute(reg, Job("1", "returns_a_set"))
    assert bad.error is not None and bad.error["type"] == NOT_SERIALIZABLE and not bad.retry
    assert execute(reg, Job("1", "anap", [0])) == Outcome(result=0)


def test_outcome_items_are_completion_entries() -> None:
    assert Outcome(result=[1]).item("t", 3) == {"id": "t", "lease_token": 3, "result": [1]}
    item = Outcome.failure("E", "m", retry=False).item("t", 3)
    assert item["error"]["type"] == "E" and item["retry"] is False
    json.dumps(item)


def test_thread_pool_reports_a_timeout_but_keeps_the_slot_until_the_thread_ends() -> None:
    async def main() -> None:
        pool = ThreadPool(2, reg)
        freed = []
        pool.on_free = lambda: freed.append(1)
        outcome = await pool.run(Job("1", "nap", [0.6], timeout_s=0.1))
        assert outcome.error is not None and outcome.error["type"] == TIMEOUT
        assert pool.busy == 1 and not freed
        deadline = time.monotonic() + 5
        while pool.busy and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert pool.busy == 0 and freed == [1]
        assert await pool.run(Job("2", "add", [1, 1], timeout_s=1)) == Outcome(result=2)
        await pool.close()

    asyncio.run(main())


def test_async_pool_cancels_a_coroutine_past_its_timeout() -> None:
    async def main() -> None:
        pool = AsyncPool(4, reg)
        started = time.monotonic()
        outcome = await pool.run(Job("1", "anap", [5], timeout_s=0.1))
        assert outcome.error is not None and outcome.error["type"] == TIMEOUT
        assert time.monotonic() - started < 2 and pool.busy == 0
        results = await asyncio.gather(*(pool.run(Job(str(i), "anap", [0.05])) for i in range(4)))
        assert results == [Outcome(result=0.05)] * 4
        assert (await pool.run(Job("s", "add", [1, 2]))).result == 3
        # A TimeoutError of the task's own is its failure, not the worker's deadline.
        own = await pool.run(Job("o", "own_timeout", timeout_s=10))
        assert own.error is not None and "in own_timeout" in own.error["traceback"]
        assert "raftq/worker/" not in own.error["traceback"]
        assert "ran past its timeout" not in own.error["message"]
        await pool.close()

    asyncio.run(main())


def test_process_pool_kills_a_stuck_task_and_replaces_its_process() -> None:
    async def main() -> None:
        pool = ProcessPool(1, Registry(), ["raftq.local.examples"])
        await pool.start()
        try:
            first = next(iter(pool._all)).process
            started = time.monotonic()
            outcome = await pool.run(Job("1", "sleep", [30], timeout_s=0.5))
            assert outcome.error is not None and outcome.error["type"] == TIMEOUT
            assert "killed" in outcome.error["message"] and outcome.retry
            assert time.monotonic() - started < 10
            assert not first.is_alive()
            assert await pool.run(Job("2", "add", [2, 3], timeout_s=30)) == Outcome(result=5)
            unknown = await pool.run(Job("3", "nope", timeout_s=30))
            assert unknown.error is not None and unknown.error["type"] == UNKNOWN_TASK
            assert pool.busy == 0
        finally:
            await pool.close(kill=True)

    asyncio.run(main())
