"""Submitting and cancelling tasks.

A submission creates each task once: a spec whose id exists already changes
nothing and reports the existing task (``created: False``), and so does one
whose ``unique_key`` another task holds (``raftq.state.unique``). A task due now is
queued; one with a ``delay_ms``, or an ``eta_ms`` later than the replicated
clock's wall time, waits in the delayed heap until the replicated clock passes
it. Both are turned into a time on the replicated clock here, when the submit
is applied, never from the wall clock of the node that took the request. Only
a queued, scheduled or waiting task can be cancelled (a waiting task's
children then follow their policy, see ``raftq.state.workflows``).
"""

from __future__ import annotations

from typing import Any

from raftq.state.commands import TaskSpec
from raftq.state.indexes import CANCELLED, QUEUED, SCHEDULED, WAITING, Result, reject
from raftq.state.model import Task
from raftq.state.unique import Unique


class Tasks(Unique):
    def _submit(self, specs: list[TaskSpec]) -> list[dict[str, Any]]:
        tasks, clock, wall_offset = self.tasks, self.clock_ms, self.wall_offset_ms
        texts, numbers = self.shared.texts, self.shared.numbers
        out: list[dict[str, Any]] = []
        ready_now: list[Task] = []  # new tasks due now, queued together by _enqueue_new
        for spec in specs:
            task_id = spec.id
            existing = tasks.get(task_id)
            if existing is None and spec.unique_key:
                existing = self._unique_holder(spec.unique_key)
                if existing is not None:
                    task_id = existing.id
            if existing is None:
                task = tasks[task_id] = Task(
                    task_id, texts.setdefault(spec.name, spec.name),
                    texts.setdefault(spec.queue, spec.queue), spec.priority, spec.payload,
                    spec.max_attempts, numbers.setdefault(spec.timeout_ms, spec.timeout_ms),
                    numbers.setdefault(spec.retry_backoff_ms, spec.retry_backoff_ms),
                    numbers.setdefault(spec.result_ttl_ms, spec.result_ttl_ms), clock,
                )
                task.tenant = spec.tenant
                if spec.rate_key or spec.concurrency_key or spec.unique_key:
                    self._flow_fields(task, spec)
                    if spec.unique_key:
                        self._unique_hold(task, spec)
                ready_at = clock + spec.delay_ms
                if spec.eta_ms:
                    ready_at = max(ready_at, spec.eta_ms - wall_offset)
                if spec.expires_ms or spec.expires_at_ms:
                    self._set_expiry(task, spec)
                if ready_at <= clock:
                    ready_now.append(task)
                    out.append({"id": task_id, "created": True, "status": "queued"})
                    continue
            # Anything else queues the new tasks before it first: sequence numbers
            # follow the specs' order, and an existing task may be one of them.
            self._enqueue_new(ready_now)
            ready_now = []
            if existing is None:
                self._schedule(task, ready_at)
            else:
                task = existing
            out.append({"id": task_id, "created": existing is None, "status": str(task.status)})
        self._enqueue_new(ready_now)
        self.shared.trim()
        if self.deadline_heap and self.deadline_heap[0][0] <= self.horizon_ms:  # already past
            self._expire_due()
            for o in out:
                o["status"] = str(tasks[o["id"]].status)
        return out

    def _cancel(self, task_id: str) -> Result:
        task = self.tasks.get(task_id)
        if task is None:
            return reject("not_found", f"no task {task_id}")
        if task.status is CANCELLED:
            return {"id": task_id, "status": str(task.status)}
        if task.status not in (QUEUED, SCHEDULED, WAITING):
            return reject("conflict", f"task {task_id} is {task.status} and cannot be cancelled")
        self._move(task, CANCELLED)
        return {"id": task_id, "status": str(task.status)}
