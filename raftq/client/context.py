"""What a running task knows about itself: ``raftq.current_task()``.

A worker sets the context around each task it runs (in the task's thread,
process or asyncio task); outside a task ``current_task()`` raises.
``progress()`` hands the report to the worker, which sends the latest of each
task's reports to the cluster a few times a second at most (a worker-role call:
``POST /v1/progress``), so calling it in a tight loop costs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

MAX_MESSAGE = 200


class TaskContext:
    """The task being run: its ``id``, ``name`` and ``attempt`` (1 for the first)."""

    __slots__ = ("id", "name", "attempt", "_report")

    def __init__(self, id: str, name: str, attempt: int,
                 report: Callable[[float, str], None]) -> None:
        self.id = id
        self.name = name
        self.attempt = attempt
        self._report = report

    def progress(self, fraction: float, message: str = "") -> None:
        """Say how far the task is: ``fraction`` from 0 to 1, and a short message
        (up to 200 characters), shown with the task and in the event stream."""
        if (isinstance(fraction, bool) or not isinstance(fraction, int | float)
                or not math.isfinite(fraction) or not 0 <= fraction <= 1):
            raise ValueError(f"progress fraction must be a number from 0 to 1, not {fraction!r}")
        self._report(float(fraction), str(message)[:MAX_MESSAGE])

    def __repr__(self) -> str:
        return f"TaskContext(id={self.id!r}, name={self.name!r}, attempt={self.attempt})"


_current: ContextVar[TaskContext | None] = ContextVar("raftq_current_task", default=None)


def current_task() -> TaskContext:
    """The task this code runs in (set by the worker); RuntimeError outside one."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("current_task() is only available inside a task run by a raftq "
                           "worker")
    return ctx


@contextmanager
def running(ctx: TaskContext) -> Iterator[None]:
    token = _current.set(ctx)
    try:
        yield
    finally:
        _current.reset(token)


def ignore(_fraction: float, _message: str) -> None:
    """The report of a task run where nobody listens (a plain call of the function)."""
