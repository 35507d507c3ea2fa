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
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from raftq import errors
from raftq.client.context import TaskContext, ignore, running
from raftq.client.task import Registry, default_registry

log = logging.getLogger("raftq.worker")

# The error types a worker reports for failures that are not the task's own.
UNKNOWN_TASK = "UnknownTask"
TIMEOUT = "TimeoutError"
NOT_SERIALIZABLE = "ResultNotSerializable"
PROCESS_DIED = "WorkerProcessDied"
# Frames of the worker's own machinery, left out of a task's traceback.
_OWN_FRAMES = (__file__, os.path.dirname(asyncio.__file__))


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


class ThreadPool(Pool):
    def __init__(self, concurrency: int, registry: Registry) -> None:
        super().__init__(concurrency, registry)
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="raftq-task")

    async def run(self, job: Job) -> Outcome:
        return await self._in_thread(job)

    def resize(self, concurrency: int) -> None:
        super().resize(concurrency)
        if concurrency > self._executor._max_workers:
            # Threads cannot be added to an executor: a larger one takes the new jobs,
            # the old one's threads finish what they run.
            old = self._executor
            self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="raftq-task")
            old.shutdown(wait=False)

    async def _in_thread(self, job: Job) -> Outcome:
        self.busy += 1
        future = asyncio.get_running_loop().run_in_executor(
            self._executor, execute, self.registry, job)
        future.add_done_callback(lambda _: self._freed())
        try:
            return await asyncio.wait_for(asyncio.shield(future), job.timeout_s)
        except TimeoutError:
            return Outcome.timeout(job.timeout_s, "its thread cannot be stopped and runs on")

    async def close(self, kill: bool = False) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class AsyncPool(ThreadPool):
    async def run(self, job: Job) -> Outcome:
        fn = self.registry.get(job.name)
        if fn is None:
            return unknown(job.name, self.registry)
        if not fn.is_async:
            return await self._in_thread(job)
        self.busy += 1
        # asyncio.timeout runs the coroutine in the caller's task (wait_for
        # would start another one per job), and tells our deadline apart from
        # a TimeoutError the task raised itself.
        deadline = asyncio.timeout(job.timeout_s)
        try:
            async with deadline:
                with running(job.context()):
                    result = await fn.fn(*job.args, **job.kwargs)
        except Exception as exc:
            if deadline.expired():
                return Outcome.timeout(job.timeout_s, "it was cancelled")
            return Outcome.from_exception(exc)
        finally:
            self._freed()
        return Outcome.success(result)


def _child_main(modules: Sequence[str], conn: multiprocessing.connection.Connection) -> None:
    """A process pool child: import the app, then run jobs sent as JSON until EOF."""
    # Ctrl-C reaches the whole process group; only the parent decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for module in modules:
            importlib.import_module(module)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        conn.send_bytes(json.dumps({"ready": False, "error": repr(exc)}).encode())
        return
    conn.send_bytes(json.dumps({"ready": True}).encode())
    while True:
        try:
            data = json.loads(conn.recv_bytes())
        except EOFError:
            return
        job = Job(data["id"], data["name"], data["args"], data["kwargs"],
                  attempt=data.get("attempt", 0), report=_piped(conn))
        answer = execute(default_registry, job).to_json()
        answer["rss_kb"] = _own_rss_kb()  # after the task: the parent retires a child grown too big
        conn.send_bytes(json.dumps(answer).encode())


def _own_rss_kb() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, ValueError, IndexError):
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _piped(conn: multiprocessing.connection.Connection) -> Callable[[float, str], None]:
    """A child's progress reports go to the parent over the job's pipe."""
    def report(fraction: float, message: str) -> None:
        conn.send_bytes(json.dumps({"progress": [fraction, message]}).encode())
    return report


class _Child:
    def __init__(self, ctx: Any, modules: Sequence[str], start_timeout: float) -> None:
        parent, child = ctx.Pipe()
        self.conn: multiprocessing.connection.Connection = parent
        self.process = ctx.Process(target=_child_main, args=(list(modules), child), daemon=True)
        self.process.start()
        child.close()
        if not self.conn.poll(start_timeout):
            self.kill()
            raise errors.ConfigError(f"worker process did not start in {start_timeout}s")
        try:
            hello = json.loads(self.conn.recv_bytes())
        except EOFError:
            hello = {"ready": False, "error": "the process exited"}
        if not hello.get("ready"):
            self.kill()
            raise errors.ConfigError(f"worker process could not import the app: {hello['error']}")
        self.tasks = 0  # jobs run
        self.rss_kb = 0  # after the latest
    def call(self, job: Job) -> tuple[Outcome, bool]:
        """Run one job; the outcome and whether this child can be reused."""
        deadline = None if job.timeout_s is None else time.monotonic() + job.timeout_s
        try:
            self.conn.send_bytes(json.dumps(
                {"id": job.id, "name": job.name, "args": job.args, "kwargs": job.kwargs,
                 "attempt": job.attempt}).encode())
            while self.conn.poll(None if deadline is None
                                 else max(0.0, deadline - time.monotonic())):
                answer = json.loads(self.conn.recv_bytes())
                if "progress" in answer:
                    job.report(*answer["progress"])
                    continue
                self.tasks += 1
                self.rss_kb = int(answer.get("rss_kb") or 0)
                return Outcome.from_json(answer), True
        except (EOFError, OSError):
            code = self.process.exitcode
            self.kill()
            return Outcome.failure(PROCESS_DIED, f"the task's process exited (code {code})"), False
        self.kill()
        return Outcome.timeout(job.timeout_s, "its process was killed"), False

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()

    def retire(self) -> None:
        """Stop between jobs: closing its pipe ends its loop (it is killed if it lingers)."""
        self.conn.close()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


class ProcessPool(Pool):
    def __init__(self, concurrency: int, registry: Registry, modules: Sequence[str],
                 start_timeout: float = 60.0, max_tasks_per_child: int = 0,
                 max_memory_per_child: int = 0) -> None:
        super().__init__(concurrency, registry)
        self.modules = list(modules)
        self.start_timeout = start_timeout
        self.max_tasks_per_child = max_tasks_per_child  # 0: no limit
        self.max_memory_per_child = max_memory_per_child  # KiB; 0: no limit
        self.recycled = 0  # children replaced for their task count or memory
        self._ctx = multiprocessing.get_context("spawn")
        self._idle: list[_Child] = []
        self._all: set[_Child] = set()
        # Threads that wait on the children's pipes (and start children).
        self._waiters = ThreadPoolExecutor(concurrency + 1, thread_name_prefix="raftq-proc")

    def _spawn(self) -> _Child:
        child = _Child(self._ctx, self.modules, self.start_timeout)
        self._all.add(child)
        return child

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        children = await asyncio.gather(
            *(loop.run_in_executor(self._waiters, self._spawn) for _ in range(self.concurrency)))
        self._idle.extend(children)

    async def run(self, job: Job) -> Outcome:
        loop = asyncio.get_running_loop()
        self.busy += 1
        try:
            child = self._idle.pop() if self._idle else None
            if child is None or not child.process.is_alive():
                if child is not None:
                    self._all.discard(child)
                child = await loop.run_in_executor(self._waiters, self._spawn)
            outcome, reusable = await loop.run_in_executor(self._waiters, child.call, job)
            why = self._worn_out(child) if reusable else None
            if why is not None:
                log.info("replacing worker process %d: %s", child.process.pid, why)
                self.recycled += 1
                self._all.discard(child)
                child.retire()
                # Its replacement starts now, between tasks, rather than in the next
                # job's time.
                self._idle.append(await loop.run_in_executor(self._waiters, self._spawn))
            elif reusable:
                self._idle.append(child)
            else:
                self._all.discard(child)
            return outcome
        finally:
            self._freed()

    def _worn_out(self, child: _Child) -> str | None:
        if self.max_tasks_per_child and child.tasks >= self.max_tasks_per_child:
            return f"it ran {child.tasks} tasks (--max-tasks-per-child)"
        if self.max_memory_per_child and child.rss_kb > self.max_memory_per_child:
            return (f"it holds {child.rss_kb} KiB, over {self.max_memory_per_child} KiB "
                    "(--max-memory-per-child)")
        return None

    def resize(self, concurrency: int) -> None:
        super().resize(concurrency)
        if concurrency + 1 > self._waiters._max_workers:
            old = self._waiters
            self._waiters = ThreadPoolExecutor(concurrency + 1, thread_name_prefix="raftq-proc")
            old.shutdown(wait=False)
        while len(self._idle) > concurrency:  # new children start when needed
            child = self._idle.pop(0)
            self._all.discard(child)
            child.retire()

    def child_pids(self) -> list[int]:
        return [c.process.pid for c in list(self._all) if c.process.pid is not None]

    async def close(self, kill: bool = False) -> None:
        for child in list(self._all):
            child.kill()
        self._all.clear()
        self._idle.clear()
        self._waiters.shutdown(wait=False, cancel_futures=True)


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
