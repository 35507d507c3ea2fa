"""What a worker's pools run and what they give back, and what every pool kind shares.

A ``Job`` is a claimed task as a pool sees it; an ``Outcome`` is what running
it came to (a JSON-serialisable result, or an error with type, message and
traceback and whether to retry), with its JSON form for a child process's pipe
and its entry in a ``POST /v1/completions`` batch. ``execute`` runs a job in the
calling thread (a ``ThreadPool`` thread, or a ``ProcessPool`` child). ``Pool``
is the interface of the kinds (``raftq.worker.threads``,
``raftq.worker.processes``) and their slot accounting.
"""

from __future__ import annotations

import asyncio
import json
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from raftq.client.context import TaskContext, ignore, running
from raftq.client.task import Registry

# The error types a worker reports for failures that are not the task's own.
UNKNOWN_TASK = "UnknownTask"
TIMEOUT = "TimeoutError"
NOT_SERIALIZABLE = "ResultNotSerializable"
PROCESS_DIED = "WorkerProcessDied"
# Frames of the worker's own machinery, left out of a task's traceback: where a task
# is called (``execute`` here, ``AsyncPool.run`` in threads.py) and asyncio's.
_OWN_FRAMES = (__file__, os.path.join(os.path.dirname(__file__), "threads.py"),
               os.path.dirname(asyncio.__file__))


@dataclass(slots=True)
class Job:
    id: str
    name: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    timeout_s: float | None = None
    attempt: int = 0
    # Where the task's progress reports go (thread-safe); not sent to a child process,
    # which reports over its pipe.
    report: Callable[[float, str], None] = ignore

    def context(self) -> TaskContext:
        return TaskContext(self.id, self.name, self.attempt, self.report)


@dataclass(slots=True)
class Outcome:
    """What running a job came to; ``error`` is None on success."""

    result: Any = None
    error: dict[str, str] | None = None
    retry: bool = True

    @classmethod
    def failure(cls, type_: str, message: str, tb: str = "", retry: bool = True) -> Outcome:
        return cls(error={"type": type_, "message": message, "traceback": tb}, retry=retry)

    @classmethod
    def from_exception(cls, exc: BaseException) -> Outcome:
        """The failure ``exc`` is, its traceback starting at the task's own frames."""
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None and (
            tb.tb_frame.f_code.co_filename.startswith(_OWN_FRAMES)
        ):
            tb = tb.tb_next
        text = "".join(traceback.format_exception(type(exc), exc, tb))
        return cls.failure(type(exc).__qualname__, str(exc), text)

    @classmethod
    def success(cls, result: Any) -> Outcome:
        try:
            json.dumps(result, allow_nan=False)
        except (TypeError, ValueError) as exc:
            # Running it again would give the same value: no retry.
            return cls.failure(NOT_SERIALIZABLE, f"the task's result is not JSON: {exc}",
                               retry=False)
        return cls(result=result)

    @classmethod
    def timeout(cls, timeout_s: float | None, how: str) -> Outcome:
        return cls.failure(TIMEOUT, f"the task ran past its timeout of {timeout_s}s; {how}")

    def to_json(self) -> dict[str, Any]:
        return {"result": self.result, "error": self.error, "retry": self.retry}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        return cls(data.get("result"), data.get("error"), bool(data.get("retry", True)))

    def item(self, task_id: str, lease_token: int) -> dict[str, Any]:
        """The entry of a ``POST /v1/completions`` batch."""
        if self.error is None:
            return {"id": task_id, "lease_token": lease_token, "result": self.result}
        return {"id": task_id, "lease_token": lease_token, "error": self.error,
                "retry": self.retry}


def unknown(name: str, registry: Registry) -> Outcome:
    known = ", ".join(registry.names()) or "none"
    return Outcome.failure(
        UNKNOWN_TASK, f"no task named {name!r} is registered in this worker (it has: {known})",
        retry=False)


def execute(registry: Registry, job: Job) -> Outcome:
    """Run a job to its outcome in the calling thread; never raises."""
    fn = registry.get(job.name)
    if fn is None:
        return unknown(job.name, registry)
    try:
        with running(job.context()):
            if fn.is_async:
                result = asyncio.run(fn.fn(*job.args, **job.kwargs))
            else:
                result = fn.fn(*job.args, **job.kwargs)
    except BaseException as exc:  # noqa: BLE001 - a task's SystemExit is its failure too
        return Outcome.from_exception(exc)
    return Outcome.success(result)


class Pool:
    """Common slot accounting; subclasses implement ``run``."""

    def __init__(self, concurrency: int, registry: Registry) -> None:
        self.concurrency = concurrency
        self.registry = registry
        self.busy = 0
        self.on_free: Callable[[], None] = lambda: None

    async def start(self) -> None:
        """Get ready to run jobs (the process pool starts its children)."""

    def resize(self, concurrency: int) -> None:
        """Run up to ``concurrency`` jobs at once from now on (running ones go on)."""
        self.concurrency = concurrency

    def child_pids(self) -> list[int]:
        """The processes running jobs besides this one (their CPU and memory count)."""
        return []

    async def run(self, job: Job) -> Outcome:
        raise NotImplementedError

    async def close(self, kill: bool = False) -> None:
        """Let go of threads and processes (``kill``: stop running tasks if the kind can)."""

    def _freed(self) -> None:
        self.busy -= 1
        self.on_free()
