"""Outcomes, retries and dead letters.

A completion stores the result; a failure is recorded in the task's errors
and retried after an exponential backoff (with deterministic jitter) until
its attempts are spent, then the task is dead. A task waiting out its backoff
can be retried now (its attempts stand). Dead letters can be requeued
(attempts start again) or purged. Finishing a task that is already finished
is refused (``already_finished``); a retry of the request that finished it
gets its first answer from the dedupe table.
"""

from __future__ import annotations

import zlib

from raftq.state.commands import Outcome, Purge
from raftq.state.indexes import DEAD, LEASED, SCHEDULED, SUCCEEDED, Indexes, Result, reject
from raftq.state.model import MAX_RETRY_BACKOFF_MS, TERMINAL


def backoff_ms(task_id: str, attempt: int, base_ms: int) -> int:
    """Exponential backoff with deterministic jitter in [0.75, 1.25)."""
    raw = min(base_ms * (2 ** max(attempt - 1, 0)), MAX_RETRY_BACKOFF_MS)
    jitter = zlib.crc32(f"{task_id}:{attempt}".encode()) % 1000
    return int(raw * (750 + jitter // 2) // 1000)


class Retries(Indexes):
    def _finish(self, o: Outcome) -> Result:
        task = self.tasks.get(o.id)
        if task is None:
            return reject("not_found", f"no task {o.id}", id=o.id)
        if task.status in TERMINAL:
            # A retry of the request that finished it was answered from the dedupe
            # table before getting here: this is another request.
            return reject("already_finished", f"task {o.id} is already {task.status}", id=o.id)
        if task.status is not LEASED or task.lease_token != o.lease_token:
            return reject(
                "stale_lease",
                f"lease token {o.lease_token} is not current for task {o.id}",
                id=o.id,
            )
        self._clear_lease(task)
        if o.error is None:
            task.result = o.result
            self._move(task, SUCCEEDED)
            return {"id": o.id, "ok": True, "status": str(task.status)}
        task.errors = [*task.errors, [task.attempts, self.clock_ms, o.error]]
        if o.retry and task.attempts < task.max_attempts:
            delay = backoff_ms(task.id, task.attempts, task.retry_backoff_ms)
            self._schedule(task, self.clock_ms + delay)
        else:
            self._move(task, DEAD)
        return {"id": o.id, "ok": True, "status": str(task.status)}

    def _requeue(self, task_id: str) -> Result:
        task = self.tasks.get(task_id)
        if task is None or task.status is not DEAD:
            return reject("not_found", f"no dead letter {task_id}")
        task.attempts = 0
        task.finished_ms = None
        self._enqueue(task)
        return {"id": task_id, "status": str(task.status)}

    def _retry_now(self, task_id: str) -> Result:
        """Make a task waiting out its backoff after a failed attempt due now: it joins
        its queue by the replicated clock as if its backoff had passed (no time is read
        here). A delayed task that never ran is not waiting for a retry."""
        task = self.tasks.get(task_id)
        if task is None:
            return reject("not_found", f"no task {task_id}")
        if task.status is not SCHEDULED or not task.attempts:
            return reject("conflict", f"task {task_id} is {task.status}, not waiting for a "
                                      "retry")
        self._enqueue(task)
        return {"id": task_id, "status": str(task.status)}

    def _purge(self, purge: Purge) -> Result:
        if purge.id is not None:
            task = self.tasks.get(purge.id)
            if task is None or task.status is not DEAD:
                return reject("not_found", f"no dead letter {purge.id}")
            self._drop(task)
            return {"purged": 1}
        victims = [
            self.tasks[i]
            for i in self.by_status[DEAD]
            if purge.queue is None or self.tasks[i].queue == purge.queue
        ]
        for task in victims:
            self._drop(task)
        return {"purged": len(victims)}
