"""The replicated queue state machine.

Contract (every node runs the same log through ``State.apply``):

- Deterministic. The same commands in the same order give the same state, byte
  for byte, on every node. Nothing here reads a clock, makes an id, draws a
  random number, does I/O or iterates a set: time and ids travel inside the
  commands. The state keeps its own clock, ``clock_ms``, which only moves
  forward and only by ticks: the leader proposes a ``Tick`` carrying the
  monotonic time elapsed since the tick before (capped at the edge, see
  ``raftq.server.clock``), so no node's wall clock can move it. Delayed tasks
  become ready and leases expire inside ``apply`` once ``horizon_ms``, the
  clock as it was before the latest tick, passes them: between two ticks the
  clock still says the time of the earlier one, so a lease or delay set then
  counts from that earlier time, and firing it by the clock itself would cut
  it short by up to a tick. Each one lasts at least its duration and at most
  about two ticks more. Wall time (a task's
  ``eta_ms``) is converted with ``wall_offset_ms``, the leader's wall clock
  minus ``clock_ms``, which ticks move toward the leader's by a bounded slew.
  A new cluster's clock starts at the first command's ``now_ms``.
  Commands of version 1 (an old journal) keep their old rule:
  ``max(clock_ms, command.now_ms)``.
- ``apply`` never raises. PySyncObj re-applies an entry that raised, forever,
  and the cluster wedges. Invalid operations return an error value
  (``{"error": code, "message": ...}``) and change nothing.
- At most once. A command with a request id that was already applied returns
  the first outcome and changes nothing (a bounded table of recent ids).
- Fenced leases. Every claim gets a new token from a counter; extend, release,
  complete and fail must present the task's current token.
- Snapshots are plain data (see ``raftq.state.snapshot``); restoring one and
  applying the rest of the log gives the same state as applying the whole log.

The data and its indexes live in ``raftq.state.indexes``; each feature's
commands live in their own module (``tasks``: submit and cancel; ``leases``:
claim, extend, release, expiry; ``retries``: outcomes, backoff, dead letters;
``keys``: API keys and roles; ``audit``: the log of administrative actions;
``workflows``: dependencies and workflows; ``flow``: rate and concurrency
limits and queue settings; ``unique``: unique tasks;
``workflows``: dependencies and workflows; ``workers``: what workers announce,
their heartbeats and control;
``schedules``: the schedule table and the rule for fires; ``members``: the
cluster's membership; ``progress``: what running tasks report).
This module applies entries, dispatches commands and lets time pass.
"""

from __future__ import annotations

import heapq

from raftq.state.commands import (
    LEGACY_VERSION,
    AddMember,
    Barrier,
    Cancel,
    CancelWorkflow,
    Claim,
    Command,
    CreateKey,
    DeleteLimit,
    DeleteSchedule,
    Extend,
    Finish,
    Fire,
    Group,
    Leave,
    Linked,
    MemberReady,
    PauseSchedule,
    Progress,
    Purge,
    PutConcurrency,
    PutQueue,
    PutRateLimit,
    PutSchedule,
    Release,
    RemoveMember,
    Requeue,
    RetryNow,
    RevokeKey,
    SeedMembers,
    Submit,
    Tick,
    WorkerBeat,
    WorkerControl,
)
from raftq.state.flow import Flow
from raftq.state.indexes import LEASED, SCHEDULED, Result, reject
from raftq.state.keys import Keys
from raftq.state.leases import Leases
from raftq.state.members import Members
from raftq.state.model import DEDUPE_CAPACITY, EXPIRING, WALL_SLEW_RATIO
from raftq.state.progress import Reports
from raftq.state.retries import Retries
from raftq.state.schedules import Schedules
from raftq.state.sharing import recalled, remembered
from raftq.state.tasks import Tasks
from raftq.state.workers import Workers
from raftq.state.workflows import Workflows


class State(Schedules, Tasks, Leases, Retries, Keys, Workflows, Members, Flow, Workers,
            Reports):
    """The queue state machine: ``apply`` one log entry at a time."""

    # ------------------------------------------------------------------ apply

    def apply(self, cmd: Command | Group) -> Result:
        """Apply one log entry. Never raises."""
        try:
            if isinstance(cmd, Group):
                return [self._apply_one(c) for c in cmd.commands]
            return self._apply_one(cmd)
        except Exception as exc:  # a bug; the same on every node, so still deterministic
            return reject("internal", f"{type(exc).__name__}: {exc}")

    def _apply_one(self, cmd: Command) -> Result:
        rid = cmd.request_id
        if rid and rid in self.dedupe:
            return recalled(self.dedupe[rid])
        if cmd.version == LEGACY_VERSION or self.clock_ms == 0:
            # Version 1's rule; and a new cluster's first command starts its clock.
            self.clock_ms = self.horizon_ms = max(self.clock_ms, cmd.now_ms)
        self._advance()
        result = self._dispatch(cmd)
        if rid:
            self.dedupe[rid] = remembered(result)
            while len(self.dedupe) > DEDUPE_CAPACITY:
                self.dedupe.popitem(last=False)
        return result

    def _dispatch(self, cmd: Command) -> Result:
        body = cmd.body
        if isinstance(body, Submit):
            if self.max_queued and (full := self._queue_full(body.tasks)) is not None:
                return full
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
            return self._audited(body.actor, "cancel", body.id, self._cancel(body.id))
        if isinstance(body, Requeue):
            return self._audited(body.actor, "requeue", body.id, self._requeue(body.id))
        if isinstance(body, RetryNow):
            return self._audited(body.actor, "retry_now", body.id, self._retry_now(body.id))
        if isinstance(body, Purge):
            target = body.id if body.id is not None else f"queue:{body.queue or '*'}"
            return self._audited(body.actor, "purge", target, self._purge(body))
        if isinstance(body, CreateKey):
            return self._create_key(body)
        if isinstance(body, RevokeKey):
            return self._revoke_key(body)
        if isinstance(body, Leave):
            return self._leave(body)
        if isinstance(body, Linked):
            if self.max_queued and (full := self._queue_full(body.tasks)) is not None:
                return full
            return self._linked(body)
        if isinstance(body, CancelWorkflow):
            return self._audited(body.actor, "cancel_workflow", body.id,
                                 self._cancel_workflow(body))
        if isinstance(body, Tick):
            advanced = cmd.version != LEGACY_VERSION and self._pass_time(body)
            if advanced:
                self._advance()
            self._forget_workers()
            if self._release_buffered():
                self._advance()  # what they submitted is due like the rest of this tick
            return {"clock_ms": self.clock_ms, "advanced": advanced}
        if isinstance(body, Barrier):
            return {"clock_ms": self.clock_ms}
        if isinstance(body, WorkerBeat):
            return self._beat(body)
        if isinstance(body, WorkerControl):
            return self._audited(body.actor, f"worker_{body.action}", body.worker_id,
                                 self._control(body))
        if isinstance(body, Fire):
            return self._fire(body, cmd.now_ms)
        if isinstance(body, Progress):
            return self._progress(body)
        if isinstance(body, PutSchedule):
            return self._put_schedule(body, cmd.now_ms)
        if isinstance(body, PauseSchedule):
            return self._pause_schedule(body, cmd.now_ms)
        if isinstance(body, DeleteSchedule):
            return self._delete_schedule(body)
        if isinstance(body, SeedMembers):
            return self._seed_members(body)
        if isinstance(body, AddMember):
            return self._add_member(body)
        if isinstance(body, RemoveMember):
            return self._remove_member(body)
        if isinstance(body, MemberReady):
            return self._member_ready(body)
        if isinstance(body, PutRateLimit):
            return self._audited(body.actor, "put_rate_limit", body.key,
                                 self._put_rate_limit(body))
        if isinstance(body, PutConcurrency):
            return self._audited(body.actor, "put_concurrency", body.key,
                                 self._put_concurrency(body))
        if isinstance(body, DeleteLimit):
            return self._audited(body.actor, f"delete_{body.kind}_limit", body.key,
                                 self._delete_limit(body))
        if isinstance(body, PutQueue):
            return self._audited(body.actor, "put_queue", body.name, self._put_queue(body))
        return reject("bad_command", f"unknown command {type(body).__name__}")

    def _audited(self, actor: str, action: str, target: str, result: Result) -> Result:
        """Record an accepted administrative action in the audit log."""
        if not (isinstance(result, dict) and "error" in result):
            detail = {"purged": result["purged"]} if action == "purge" else (
                {"cancelled": result["cancelled"]} if action == "cancel_workflow" else {})
            self._record(actor, action, target, detail)
        return result

    # ------------------------------------------------------------ time passes

    def _pass_time(self, tick: Tick) -> bool:
        """Move the clock by the tick's elapsed time; False for a tick measured from
        another than the latest one (it moves nothing)."""
        if tick.after != self.ticks:
            return False
        self.ticks += 1
        step = max(tick.elapsed_ms, 0)
        self.horizon_ms = self.clock_ms
        self.clock_ms += step
        slew = step // WALL_SLEW_RATIO
        error = tick.wall_ms - self.clock_ms - self.wall_offset_ms
        self.wall_offset_ms += max(-slew, min(slew, error))
        return True

    def _advance(self) -> None:
        if self.rate_timers and self.rate_timers[0][0] <= self.clock_ms:
            self._rates_due()
        now = self.horizon_ms
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
        if self.deadline_heap and self.deadline_heap[0][0] <= now:
            self._expire_due()  # before the drops: one expired with no result TTL goes now
        while self.expiry_heap and self.expiry_heap[0][0] <= now:
            drop_at, task_id = heapq.heappop(self.expiry_heap)
            task = self.tasks.get(task_id)
            if (
                task is not None
                and task.status in EXPIRING
                and task.finished_ms is not None
                and task.finished_ms + task.result_ttl_ms == drop_at
                and not self._pinned(task)  # a workflow still needs it
            ):
                self._drop(task)
