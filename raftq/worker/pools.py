"""Where a worker runs task functions: thread, async and process pools.

A pool turns a claimed ``Job`` into an ``Outcome`` (a JSON-serialisable
result, or an error with type, message and traceback and whether to retry)
and enforces the job's timeout in the way its kind allows:

- ``ThreadPool`` reports a timed-out task at once, but a Python thread cannot
  be stopped: the slot stays busy until the function returns, so the worker
  never runs more threads than its concurrency.
- ``AsyncPool`` awaits ``async def`` tasks on the worker's loop (a timeout
  cancels them) and runs plain functions in threads as ``ThreadPool`` does.
- ``ProcessPool`` runs each task in a child process that imports the app; a
  task past its timeout has its process killed and replaced, and so is a child
  that has run ``max_tasks_per_child`` tasks or grown past
  ``max_memory_per_child`` KiB of resident memory (checked after each task, so
  a leaking task costs at most one run's growth).

Jobs and outcomes cross the process boundary as JSON (no pickle). ``busy``
counts occupied slots; ``on_free`` is called on the loop whenever one frees.
``resize`` changes the concurrency of a running pool (``raftq workers
set-concurrency``).

``make_pool`` picks the kind. Each part lives by what it does and is
importable from here too: ``Job``, ``Outcome``, ``execute`` and the ``Pool``
interface (``raftq.worker.jobs``), ``ThreadPool`` and ``AsyncPool``
(``raftq.worker.threads``), ``ProcessPool`` (``raftq.worker.processes``).
"""

from __future__ import annotations

from collections.abc import Sequence

from raftq import errors
from raftq.client.task import Registry
from raftq.worker.jobs import (
    NOT_SERIALIZABLE,
    PROCESS_DIED,
    TIMEOUT,
    UNKNOWN_TASK,
    Job,
    Outcome,
    Pool,
    execute,
    unknown,
)
from raftq.worker.processes import ProcessPool
from raftq.worker.threads import AsyncPool, ThreadPool

__all__ = [
    "NOT_SERIALIZABLE", "PROCESS_DIED", "TIMEOUT", "UNKNOWN_TASK", "AsyncPool", "Job", "Outcome",
    "Pool", "ProcessPool", "ThreadPool", "execute", "make_pool", "unknown",
]


def make_pool(kind: str, concurrency: int, registry: Registry, modules: Sequence[str],
              max_tasks_per_child: int = 0, max_memory_per_child: int = 0) -> Pool:
    if kind == "thread":
        return ThreadPool(concurrency, registry)
    if kind == "async":
        return AsyncPool(concurrency, registry)
    if kind == "process":
        return ProcessPool(concurrency, registry, modules,
                           max_tasks_per_child=max_tasks_per_child,
                           max_memory_per_child=max_memory_per_child)
    raise errors.ConfigError(f"--pool must be thread, async or process, not {kind!r}")
