"""The pools that run tasks in the worker's own process: ``ThreadPool`` and ``AsyncPool``.

``ThreadPool`` reports a timed-out task at once, but a Python thread cannot be
stopped: the slot stays busy until the function returns, so the worker never
runs more threads than its concurrency. ``AsyncPool`` awaits ``async def``
tasks on the worker's loop (a timeout cancels them) and runs plain functions in
threads as ``ThreadPool`` does.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from raftq.client.context import running
from raftq.client.task import Registry
from raftq.worker.jobs import Job, Outcome, Pool, execute, unknown


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
