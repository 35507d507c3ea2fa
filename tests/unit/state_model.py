"""A simple reference model of the queue state machine, for the stateful test.

No indexes, heaps or lazy deletion: every question is answered by scanning
all tasks. It predicts the full result of each command, in the shape
``normalize`` turns a real result into (errors reduced to their code).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from state_model_flow import FlowModel
from state_model_schedules import ScheduleModel
from state_model_workers import WorkerModel

from raftq.state import commands as c
from raftq.state.model import (
    EXPIRING,
    TERMINAL,
    TRANSITIONS,
    WALL_SLEW_RATIO,
    Status,
)
from raftq.state.retries import backoff_ms


def normalize(result: Any) -> Any:
    """A result with every error reduced to ``{"error": code}``."""
    if isinstance(result, dict):
        if "error" in result:
            return {"error": result["error"]}
        return {k: normalize(v) for k, v in result.items()}
    if isinstance(result, list):
        return [normalize(x) for x in result]
    return result


@dataclass
class ModelTask:
    id: str
    queue: str
    priority: int
    max_attempts: int
    backoff_ms: int
    ttl_ms: int
    status: Status | None = None
    attempts: int = 0
    token: int = 0
    worker: str = ""
    lease_expires_ms: int = 0
    ready_at_ms: int | None = None
    order: int = 0
    finished_ms: int | None = None
    errors: int = 0
    expires_at_ms: int | None = None
    name: str = "job"
    tenant: str = ""
    rate_key: str = ""
    conc_key: str = ""
    unique_key: str = ""
    held: str = ""  # the limit key it waits on
    expired_leases: list[str] = field(default_factory=list)  # their error types


class Model(ScheduleModel, FlowModel, WorkerModel):
    def __init__(self) -> None:
        ScheduleModel.__init__(self)
        FlowModel.__init__(self)
        WorkerModel.__init__(self)
        self.clock_ms = 0
        self.ticks = 0
        self.wall_offset_ms = 0
        self.horizon_ms = 0
        self.next_order = 1
        self.next_token = 1
        self.tasks: dict[str, ModelTask] = {}
        self.gone: dict[str, str] = {}  # id -> why it left the state: "ttl" or "purge"
        self.submitted: set[str] = set()

    # -- moves, each checked against the table

    def _move(self, task: ModelTask, new: Status) -> None:
        assert new in TRANSITIONS[task.status], f"model bug: {task.status} -> {new}"
        old, task.status = task.status, new
        if old is Status.QUEUED:
            if task.held:
                task.held = ""
            else:
                self.left(task)
        elif old is Status.LEASED:
            self.lease_ended(task)

    def _past_expiry(self, task: ModelTask) -> bool:
        if task.expires_at_ms is None or task.expires_at_ms > self.horizon_ms:
            return False
        self._finish(task, Status.EXPIRED)
        return True

    def _enqueue(self, task: ModelTask) -> None:
        if self._past_expiry(task):
            return
        self._move(task, Status.QUEUED)
        task.order, self.next_order = self.next_order, self.next_order + 1
        task.ready_at_ms = None
        self.joined(task)

    def _schedule(self, task: ModelTask, at_ms: int) -> None:
        if self._past_expiry(task):
            return
        self._move(task, Status.SCHEDULED)
        task.order, self.next_order = self.next_order, self.next_order + 1
        task.ready_at_ms = at_ms

    def _finish(self, task: ModelTask, new: Status) -> None:
        self._move(task, new)
        task.finished_ms = self.clock_ms
        task.ready_at_ms = None

    def _unlease(self, task: ModelTask) -> None:
        task.worker = ""
        task.lease_expires_ms = 0

    def _drop(self, task: ModelTask, why: str) -> None:
        self.unique_dropped(task)
        del self.tasks[task.id]
        self.gone[task.id] = why

    def running(self, worker_id: str) -> int:
        return sum(
            1 for t in self.tasks.values() if t.status is Status.LEASED and t.worker == worker_id
        )

    def _leased(self, task_id: str, token: int) -> ModelTask | None:
        task = self.tasks.get(task_id)
        if task is None or task.status is not Status.LEASED or task.token != token:
            return None
        return task

    # -- time

    def pass_time(self, tick: c.Tick) -> bool:
        if tick.after != self.ticks:
            return False
        self.ticks += 1
        self.horizon_ms = self.clock_ms
        step = max(tick.elapsed_ms, 0)
        self.clock_ms += step
        error = tick.wall_ms - self.clock_ms - self.wall_offset_ms
        self.wall_offset_ms += max(-(step // WALL_SLEW_RATIO), min(step // WALL_SLEW_RATIO, error))
        return True

    def advance(self) -> None:
        self.rates_due()
        now = self.horizon_ms
        tasks = list(self.tasks.values())
        due = [t for t in tasks if t.status is Status.SCHEDULED and t.ready_at_ms is not None
               and t.ready_at_ms <= now]
        for task in sorted(due, key=lambda t: (t.ready_at_ms, t.order)):
            self._enqueue(task)
        expired = [t for t in tasks if t.status is Status.LEASED and t.lease_expires_ms <= now]
        for task in sorted(expired, key=lambda t: (t.lease_expires_ms, t.token)):
            task.errors += 1
            task.expired_leases.append(
                "LeaseExpired" if self.silent(task.worker) is None else "WorkerDied")
            self._unlease(task)
            if task.attempts >= task.max_attempts:
                self._finish(task, Status.DEAD)
            else:
                self._enqueue(task)
        self.expire_waiting()
        for task in tasks:
            if (task.status in EXPIRING and task.finished_ms is not None
                    and task.finished_ms + task.ttl_ms <= now):
                self._drop(task, "ttl")

    def expire_waiting(self) -> None:
        waiting = [t for t in self.tasks.values() if t.status in (Status.QUEUED, Status.SCHEDULED)
                   and t.expires_at_ms is not None and t.expires_at_ms <= self.horizon_ms]
        for task in waiting:
            self._finish(task, Status.EXPIRED)

    # -- commands

    def apply(self, cmd: c.Command) -> Any:
        if self.clock_ms == 0:
            self.clock_ms = self.horizon_ms = max(cmd.now_ms, 0)
        self.advance()
        body = cmd.body
        advanced = False
        if isinstance(body, c.Tick):
            advanced = self.pass_time(body)
            self.advance()
        if isinstance(body, c.Submit):
            return self.queue_full(body.tasks) or self.submit_all(body.tasks)
        if isinstance(body, c.PutRateLimit | c.PutConcurrency | c.DeleteLimit | c.PutQueue):
            return self.apply_flow(body)
        if isinstance(body, c.Claim):
            return self.claim(body)
        if isinstance(body, c.Extend):
            self._touch(body.worker_id)
            return {"leases": [self.extend(i, t, body.lease_ms) for i, t in body.leases]}
        if isinstance(body, c.Release):
            self._touch(body.worker_id)
            return {"leases": [self.release(i, t) for i, t in body.leases]}
        if isinstance(body, c.Finish):
            self._touch(body.worker_id)
            return [self.finish(o) for o in body.items]
        if isinstance(body, c.Cancel):
            return self.cancel(body.id)
        if isinstance(body, c.Requeue):
            return self.requeue(body.id)
        if isinstance(body, c.RetryNow):
            return self.retry_now(body.id)
        if isinstance(body, c.Purge):
            return self.purge(body.id, body.queue)
        if isinstance(body, c.Tick):
            self.forget_workers()  # on ticks only
            self.release_buffered()
            return {"clock_ms": self.clock_ms, "advanced": advanced}
        if isinstance(body, c.Barrier):
            return {"clock_ms": self.clock_ms}
        if isinstance(body, c.WorkerBeat):
            return self.beat(body)
        if isinstance(body, c.WorkerControl):
            return self.control(body)
        if isinstance(body, c.Leave):
            return self.leave(body.worker_id)
        return self.apply_schedule(body, cmd.now_ms)

    def submit_all(self, specs: list[c.TaskSpec]) -> Any:
        out = [self.submit(spec) for spec in specs]
        self.expire_waiting()  # those that expired on arrival
        return [{**o, "status": str(self.tasks[o["id"]].status)} for o in out]

    def submit(self, spec: c.TaskSpec) -> Any:
        if spec.id in self.tasks:
            return {"id": spec.id, "created": False, "status": str(self.tasks[spec.id].status)}
        holder = self.unique_holder(spec.unique_key) if spec.unique_key else None
        if holder is not None:
            return {"id": holder.id, "created": False, "status": str(holder.status)}
        self.submitted.add(spec.id)
        task = ModelTask(spec.id, spec.queue, spec.priority, spec.max_attempts,
                         spec.retry_backoff_ms, spec.result_ttl_ms, name=spec.name,
                         tenant=spec.tenant, rate_key=spec.rate_key,
                         conc_key=spec.concurrency_key, unique_key=spec.unique_key)
        self.tasks[spec.id] = task
        if spec.unique_key:
            self.unique[spec.unique_key] = (spec.id, self.clock_ms + spec.unique_for_ms)
        self.gone.pop(spec.id, None)
        ready_at = self.clock_ms + spec.delay_ms
        if spec.eta_ms:
            ready_at = max(ready_at, spec.eta_ms - self.wall_offset_ms)
        if ready_at > self.clock_ms:
            self._schedule(task, ready_at)
        else:
            self._enqueue(task)
        # set after it is queued: one that expired on arrival is expired by submit_all
        limits = ([self.clock_ms + spec.expires_ms] if spec.expires_ms else []) + (
            [spec.expires_at_ms - self.wall_offset_ms] if spec.expires_at_ms else [])
        task.expires_at_ms = min(limits) if limits else None
        return {"id": spec.id, "created": True, "status": str(task.status)}

    def claim(self, claim: c.Claim) -> Any:
        self._touch(claim.worker_id)
        out: list[Any] = []
        self.budget = 1_000
        while len(out) < claim.max:
            task = self.pick(claim.queues, claim.names)
            if task is None and claim.steal_from:
                task = self.pick(claim.steal_from, claim.names)
            if task is None:
                break
            self._move(task, Status.LEASED)
            task.attempts += 1
            task.token, self.next_token = self.next_token, self.next_token + 1
            task.worker = claim.worker_id
            task.lease_expires_ms = self.clock_ms + claim.lease_ms
            self.lease_started(task)
            out.append({"id": task.id, "lease_token": task.token,
                        "lease_expires_ms": task.lease_expires_ms, "attempt": task.attempts})
        return {"tasks": out}

    def extend(self, task_id: str, token: int, lease_ms: int) -> Any:
        task = self._leased(task_id, token)
        if task is None:
            return {"id": task_id, "ok": False, "code": "stale_lease"}
        task.lease_expires_ms = self.clock_ms + lease_ms
        return {"id": task_id, "ok": True, "lease_expires_ms": task.lease_expires_ms}

    def release(self, task_id: str, token: int) -> Any:
        task = self._leased(task_id, token)
        if task is None:
            return {"id": task_id, "ok": False, "code": "stale_lease"}
        task.attempts -= 1
        self._unlease(task)
        self._enqueue(task)
        return {"id": task_id, "ok": True}

    def finish(self, o: c.Outcome) -> Any:
        task = self.tasks.get(o.id)
        if task is None:
            return {"error": "not_found"}
        if task.status in TERMINAL:
            return {"error": "already_finished"}
        if self._leased(o.id, o.lease_token) is None:
            return {"error": "stale_lease"}
        self._unlease(task)
        if o.error is None:
            self._finish(task, Status.SUCCEEDED)
        else:
            task.errors += 1
            if o.retry and task.attempts < task.max_attempts:
                delay = backoff_ms(task.id, task.attempts, task.backoff_ms)
                self._schedule(task, self.clock_ms + delay)
            else:
                self._finish(task, Status.DEAD)
        return {"id": o.id, "ok": True, "status": str(task.status)}

    def cancel(self, task_id: str) -> Any:
        task = self.tasks.get(task_id)
        if task is None:
            return {"error": "not_found"}
        if task.status in (Status.QUEUED, Status.SCHEDULED):
            self._finish(task, Status.CANCELLED)
        elif task.status is not Status.CANCELLED:
            return {"error": "conflict"}
        return {"id": task_id, "status": "cancelled"}

    def requeue(self, task_id: str) -> Any:
        task = self.tasks.get(task_id)
        if task is None or task.status is not Status.DEAD:
            return {"error": "not_found"}
        task.attempts = 0
        task.finished_ms = None
        self._enqueue(task)
        return {"id": task_id, "status": str(task.status)}

    def retry_now(self, task_id: str) -> Any:
        task = self.tasks.get(task_id)
        if task is None:
            return {"error": "not_found"}
        if task.status is not Status.SCHEDULED or not task.attempts:
            return {"error": "conflict"}  # not in a retry's backoff
        self._enqueue(task)
        return {"id": task_id, "status": str(task.status)}

    def purge(self, task_id: str | None, queue: str | None) -> Any:
        if task_id is not None:
            task = self.tasks.get(task_id)
            if task is None or task.status is not Status.DEAD:
                return {"error": "not_found"}
            self._drop(task, "purge")
            return {"purged": 1}
        dead = [t for t in self.tasks.values() if t.status is Status.DEAD
                and (queue is None or t.queue == queue)]
        for task in dead:
            self._drop(task, "purge")
        return {"purged": len(dead)}
