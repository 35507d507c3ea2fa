"""The pool that runs each task in a child process: ``ProcessPool``.

A child imports the app, then runs the jobs sent to it over its pipe; jobs and
outcomes cross the process boundary as JSON (no pickle), and so do a task's
progress reports. A task past its timeout has its process killed and replaced,
and so is a child that has run ``max_tasks_per_child`` tasks or grown past
``max_memory_per_child`` KiB of resident memory (checked after each task, so a
leaking task costs at most one run's growth).
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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from raftq import errors
from raftq.client.task import Registry, default_registry
from raftq.worker.jobs import PROCESS_DIED, Job, Outcome, Pool, execute

log = logging.getLogger("raftq.worker")


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
