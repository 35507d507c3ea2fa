"""The replicated queue state machine.

Contract (every node runs the same log through ``State.apply``):

- Deterministic. The same commands in the same order give the same state, byte
  for byte, on every node. Nothing here reads a clock, makes an id, draws a
  random number, does I/O or iterates a set: time and ids travel inside the
  commands. The state keeps its own clock, ``clock_ms``, which only moves
  forward (``max(clock_ms, command.now_ms)``); delayed tasks become ready and
  leases expire inside ``apply`` when that clock passes them.
- ``apply`` never raises. PySyncObj re-applies an entry that raised, forever,
  and the cluster wedges. Invalid operations return an error value
  (``{"error": code, "message": ...}``) and change nothing.
- At most once. A command with a request id that was already applied returns
  the first outcome and changes nothing (a bounded table of recent ids).
- Fenced leases. Every claim gets a new token from a counter; extend, release,
  complete and fail must present the task's current token.
- Snapshots are plain data (see ``raftq.state.snapshot``); restoring one and
  applying the rest of the log gives the same state as applying the whole log.

The data and its indexes live in ``raftq.state.indexes``; this module holds what
each command does to them.
"""

from __future__ import annotations

import heapq
import zlib
from typing import Any

from raftq.state.commands import (
    Barrier,
    Cancel,
    Claim,
    Command,
    Extend,
    Finish,
    Group,
    Outcome,
    Purge,
    Release,
    Requeue,
    Submit,
    TaskSpec,
    Tick,
)
from raftq.state.indexes import CANCELLED, DEAD, LEASED, QUEUED, SCHEDULED, SUCCEEDED, Indexes
from raftq.state.model import DEDUPE_CAPACITY, EXPIRING, MAX_RETRY_BACKOFF_MS, Task

Result = Any


def _err(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "message": message, **extra}


def backoff_ms(task_id: str, attempt: int, base_ms: int) -> int:
    """Exponential backoff with deterministic jitter in [0.75, 1.25)."""
    raw = min(base_ms * (2 ** max(attempt - 1, 0)), MAX_RETRY_BACKOFF_MS)
    jitter = zlib.crc32(f"{task_id}:{attempt}".encode()) % 1000
    return int(raw * (750 + jitter // 2) // 1000)


class State(Indexes):
    """The queue state machine: ``apply`` one log entry at a time."""

    # ------------------------------------------------------------------ apply

    def apply(self, cmd: Command | Group) -> Result:
        """Apply one log entry. Never raises."""
        try:
            if isinstance(cmd, Group):
                return [self._apply_one(c) for c in cmd.commands]
            return self._apply_one(cmd)
        except Exception as exc:  # a bug; the same on every node, so still deterministic
            return _err("internal", f"{type(exc).__name__}: {exc}")

    def _apply_one(self, cmd: Command) -> Result:
        rid = cmd.request_id
        if rid and rid in self.dedupe:
            return self.dedupe[rid]
        self.clock_ms = max(self.clock_ms, cmd.now_ms)
        self._advance()
        result = self._dispatch(cmd)
        if rid:
            self.dedupe[rid] = result
            while len(self.dedupe) > DEDUPE_CAPACITY:
                self.dedupe.popitem(last=False)
        return result

    def _dispatch(self, cmd: Command) -> Result:
        body = cmd.body
        if isinstance(body, Submit):
            return self._submit(body.tasks)
        if isinstance(body, Claim):
            return self._claim(body)
        if isinstance(body, Extend):
            return self._extend(body)
        if isinstance(body, Release):
            return self._release(body)
        if isinstance(body, Finish):
            self._touch_worker(body.worker_id)
            return [self._finish(o) for o in body.items]
        if isinstance(body, Cancel):
            return self._cancel(body.id)
        if isinstance(body, Requeue):
            return self._requeue(body.id)
        if isinstance(body, Purge):
            return self._purge(body)
        if isinstance(body, Tick):
            self._forget_workers()
            return {"clock_ms": self.clock_ms}
        if isinstance(body, Barrier):
            return {"clock_ms": self.clock_ms}
        return _err("bad_command", f"unknown command {type(body).__name__}")

    # ------------------------------------------------------------ time passes

    def _advance(self) -> None:
        now = self.clock_ms
        while self.delayed and self.delayed[0][0] <= now:
            _, seq, task_id = heapq.heappop(self.delayed)
            task = self.tasks.get(task_id)
            if task is not None and task.status is SCHEDULED and task.seq == seq:
                self._enqueue(task)
        while self.lease_heap and self.lease_heap[0][0] <= now:
            expires, token, task_id = heapq.heappop(self.lease_heap)
            task = self.tasks.get(task_id)
            if (
                task is not None
                and task.status is LEASED
                and task.lease_token == token
                and task.lease_expires_ms == expires
            ):
                self._lease_expired(task)
        while self.expiry_heap and self.expiry_heap[0][0] <= now:
            drop_at, task_id = heapq.heappop(self.expiry_heap)
            task = self.tasks.get(task_id)
            if (
                task is not None
                and task.status in EXPIRING
                and task.finished_ms is not None
                and task.finished_ms + task.result_ttl_ms == drop_at
            ):
                self._drop(task)

    def _lease_expired(self, task: Task) -> None:
        error = {
            "type": "LeaseExpired",
            "message": f"lease of worker {task.lease_worker} expired",
            "traceback": "",
        }
        task.errors = [*task.errors, [task.attempts, self.clock_ms, error]]
        self._clear_lease(task)
        if task.attempts >= task.max_attempts:
            self._move(task, DEAD)
        else:
            self._enqueue(task)

    # --------------------------------------------------------------- commands

    def _submit(self, specs: list[TaskSpec]) -> list[dict[str, Any]]:
        tasks, clock = self.tasks, self.clock_ms
        out: list[dict[str, Any]] = []
        ready_now: list[Task] = []  # new tasks due now, queued together by _enqueue_new
        for spec in specs:
            task_id = spec.id
            existing = tasks.get(task_id)
            if existing is None:
                task = tasks[task_id] = Task(
                    task_id, spec.name, spec.queue, spec.priority, spec.payload,
                    spec.max_attempts, spec.timeout_ms, spec.retry_backoff_ms,
                    spec.result_ttl_ms, clock,
                )
                if spec.ready_at_ms <= clock:
                    ready_now.append(task)
                    out.append({"id": task_id, "created": True, "status": "queued"})
                    continue
            # Anything else queues the new tasks before it first: sequence numbers
            # follow the specs' order, and an existing task may be one of them.
            self._enqueue_new(ready_now)
            ready_now = []
            if existing is None:
                self._schedule(task, spec.ready_at_ms)
            else:
                task = existing
            out.append({"id": task_id, "created": existing is None, "status": str(task.status)})
        self._enqueue_new(ready_now)
        return out

    def _claim(self, claim: Claim) -> Result:
        self._touch_worker(claim.worker_id, claim.host, claim.pid, claim.queues)
        leased: list[dict[str, Any]] = []
        while len(leased) < claim.max:
            task = self._pop_ready(claim.queues)
            if task is None:
                break
            token = self.next_token
            self.next_token += 1
            task.attempts += 1
            task.lease_token = token
            task.lease_worker = claim.worker_id
            task.lease_expires_ms = self.clock_ms + claim.lease_ms
            self._move(task, LEASED)
            heapq.heappush(self.lease_heap, (task.lease_expires_ms, token, task.id))
            self.worker_leases.setdefault(claim.worker_id, {})[task.id] = None
            leased.append(
                {
                    "id": task.id,
                    "lease_token": token,
                    "lease_expires_ms": task.lease_expires_ms,
                    "attempt": task.attempts,
                }
            )
        return {"tasks": leased}

    def _extend(self, ext: Extend) -> Result:
        self._touch_worker(ext.worker_id)
        out: list[dict[str, Any]] = []
        for task_id, token in ext.leases:
            task = self._leased(task_id, token)
            if task is None:
                out.append({"id": task_id, "ok": False, "code": "stale_lease"})
                continue
            task.lease_expires_ms = self.clock_ms + ext.lease_ms
            task.updated_ms = self.clock_ms
            heapq.heappush(self.lease_heap, (task.lease_expires_ms, token, task.id))
            out.append({"id": task_id, "ok": True, "lease_expires_ms": task.lease_expires_ms})
        return {"leases": out}

    def _release(self, rel: Release) -> Result:
        self._touch_worker(rel.worker_id)
        out: list[dict[str, Any]] = []
        for task_id, token in rel.leases:
            task = self._leased(task_id, token)
            if task is None:
                out.append({"id": task_id, "ok": False, "code": "stale_lease"})
                continue
            task.attempts -= 1  # it never ran: the attempt is not spent
            self._clear_lease(task)
            self._enqueue(task)
            out.append({"id": task_id, "ok": True})
        return {"leases": out}

    def _finish(self, o: Outcome) -> Result:
        task = self.tasks.get(o.id)
        if task is None:
            return _err("not_found", f"no task {o.id}", id=o.id)
        if task.status is not LEASED or task.lease_token != o.lease_token:
            if o.error is None and task.status is SUCCEEDED and (
                task.lease_token == o.lease_token
            ):
                return {"id": o.id, "ok": True, "status": str(task.status)}  # a repeat
            return _err(
                "stale_lease",
                f"lease token {o.lease_token} is not current for task {o.id}",
                id=o.id,
            )
        lease_token = task.lease_token
        self._clear_lease(task)
        if o.error is None:
            task.result = o.result
            task.lease_token = lease_token  # kept so a repeated completion is recognised
            self._move(task, SUCCEEDED)
            return {"id": o.id, "ok": True, "status": str(task.status)}
        task.errors = [*task.errors, [task.attempts, self.clock_ms, o.error]]
        if o.retry and task.attempts < task.max_attempts:
            delay = backoff_ms(task.id, task.attempts, task.retry_backoff_ms)
            self._schedule(task, self.clock_ms + delay)
        else:
            self._move(task, DEAD)
        return {"id": o.id, "ok": True, "status": str(task.status)}

    def _cancel(self, task_id: str) -> Result:
        task = self.tasks.get(task_id)
        if task is None:
            return _err("not_found", f"no task {task_id}")
        if task.status is CANCELLED:
            return {"id": task_id, "status": str(task.status)}
        if task.status not in (QUEUED, SCHEDULED):
            return _err("conflict", f"task {task_id} is {task.status} and cannot be cancelled")
        self._move(task, CANCELLED)
        return {"id": task_id, "status": str(task.status)}

    def _requeue(self, task_id: str) -> Result:
        task = self.tasks.get(task_id)
        if task is None or task.status is not DEAD:
            return _err("not_found", f"no dead letter {task_id}")
        task.attempts = 0
        task.finished_ms = None
        self._enqueue(task)
        return {"id": task_id, "status": str(task.status)}

    def _purge(self, purge: Purge) -> Result:
        if purge.id is not None:
            task = self.tasks.get(purge.id)
            if task is None or task.status is not DEAD:
                return _err("not_found", f"no dead letter {purge.id}")
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
