"""Example tasks: what ``make up``'s worker runs and the README's examples submit.

Run them with ``raftq worker --app raftq.local.examples`` and submit with
``raftq submit add --args 2 3`` or ``add.delay(2, 3)``.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from raftq.client.task import task


@task
def add(a: float, b: float) -> float:
    """The hello world of task queues."""
    return a + b


@task
def mul(a: float, b: float) -> float:
    return a * b


@task
def noop() -> None:
    """Does nothing: what ``raftq bench`` measures the queue with."""


@task
def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


@task
def sleep(seconds: float = 1.0) -> float:
    """Hold a worker slot for a while (try a short --timeout on it)."""
    time.sleep(seconds)
    return seconds


@task(max_attempts=5, retry_backoff=0.5)
def fail_sometimes(p: float = 0.5) -> str:
    """Fails with probability ``p``: watch the retries, and the dead letters when unlucky."""
    if random.random() < p:
        raise RuntimeError(f"unlucky (p={p})")
    return "lucky"


@task(max_attempts=2, retry_backoff=0.5)
def always_fail(message: str = "this task always fails") -> None:
    """Ends in the dead letter queue, with every attempt's traceback."""
    raise ValueError(message)


@task
async def async_add(a: float, b: float, delay: float = 0.0) -> float:
    """An ``async def`` task; the async pool awaits it on the worker's loop."""
    await asyncio.sleep(delay)
    return a + b
