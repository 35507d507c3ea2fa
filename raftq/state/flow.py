"""Flow control: rate and concurrency limits, and queue settings.

Limits are replicated settings keyed by a string. A task's keys are its
``rate_key`` and ``concurrency_key`` (when given), ``task:{name}`` and
``tenant:{tenant}`` (when it has a tenant); it counts against every limit,
rate or concurrency, on each of its keys. Both kinds are enforced when a claim leases
the task, on the replicated clock, so they hold cluster-wide:

- a rate limit counts starts (each lease of the task, retries included; see
  ``raftq.state.limits`` for the exact bound);
- a concurrency limit counts the tasks leased at once: a lease ends when the
  task is completed, failed, released or its lease expires.

A claim that meets a task with no room under one of its keys sets it aside
under that key and looks further: a task keeps its place in its tenant's line
and waits in the key's ``waiters`` (a task held by ``tenant:{tenant}`` takes
its whole line with it, so a tenant over its limit costs a claim one step).
When the key has room again (a lease ends, its rate's clock passes, a
setting changes) as many waiters as it has room for go back, oldest first.
At most ``SET_ASIDE_PER_CLAIM`` tasks are set aside by one claim.

Queue settings: ``paused`` (claims take nothing from it), ``max_queued``
(a submission that would make more tasks wait in the queue, queued or
scheduled, is refused whole: ``queue_full``; fires of schedules are not
refused) and ``tenant_weights`` (turns in ``raftq.state.fair``).
As everywhere in ``raftq.state``: no clock, no I/O, no set iteration.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any

from raftq.state.commands import DeleteLimit, PutConcurrency, PutQueue, PutRateLimit, TaskSpec
from raftq.state.fair import Level, Line, lane
from raftq.state.indexes import LEASED, QUEUED, SCHEDULED, Indexes, Result, reject
from raftq.state.limits import Rate
from raftq.state.model import Task

MANY = 1 << 62  # the room of a key without a limit
# A waiter: ("t", task id, seq, "") for a task, ("l", queue, priority, tenant) for a line.
Waiter = tuple[str, str, int, str]


class Flow(Indexes):
    def __init__(self) -> None:
        super().__init__()
        self.rates: dict[str, Rate] = {}
        self.concurrency: dict[str, list[int]] = {}  # key -> [max, leased now]
        self.waiters: dict[str, deque[Waiter]] = {}
        self.armed: dict[str, int] = {}  # rate key with waiters -> when it has room
        self.rate_timers: list[tuple[int, str]] = []  # (at_ms, key); stale unless armed
        self.max_queued: dict[str, int] = {}

    # ------------------------------------------------------------- settings

    def _put_rate_limit(self, cmd: PutRateLimit) -> Result:
        if cmd.rate < 1 or cmd.per_ms < 1 or cmd.burst < 1:
            return reject("invalid", "rate, per_ms and burst must be at least 1")
        rate = self.rates.get(cmd.key)
        if rate is None:
            self.rates[cmd.key] = Rate(cmd.rate, cmd.per_ms, cmd.burst)
        else:
            rate.retime(cmd.rate, cmd.per_ms, cmd.burst)
        self._limits_changed(cmd.key)
        return {"key": cmd.key, "rate": cmd.rate, "per_ms": cmd.per_ms, "burst": cmd.burst}

    def _put_concurrency(self, cmd: PutConcurrency) -> Result:
        if cmd.max < 1:
            return reject("invalid", "max must be at least 1")
        entry = self.concurrency.get(cmd.key)
        if entry is None:
            entry = self.concurrency[cmd.key] = [cmd.max, 0]
            leased = self.by_status[LEASED]
            entry[1] = sum(1 for i in leased if cmd.key in self._keys_of(self.tasks[i], True))
        else:
            entry[0] = cmd.max
        self._limits_changed(cmd.key)
        return {"key": cmd.key, "max": cmd.max}

    def _delete_limit(self, cmd: DeleteLimit) -> Result:
        table: dict[str, Any] = self.rates if cmd.kind == "rate" else self.concurrency
        if cmd.kind not in ("rate", "concurrency") or cmd.key not in table:
            return reject("not_found", f"no {cmd.kind} limit {cmd.key}")
        del table[cmd.key]
        self._limits_changed(cmd.key)
        return {"key": cmd.key, "deleted": True}

    def _limits_changed(self, key: str) -> None:
        self.limits_on = bool(self.rates or self.concurrency)
        self.armed.pop(key, None)
        self._wake(key)

    def _put_queue(self, cmd: PutQueue) -> Result:
        name = cmd.name
        if cmd.max_queued is not None:
            if cmd.max_queued:
                self.max_queued[name] = cmd.max_queued
            else:
                self.max_queued.pop(name, None)
        if cmd.paused is True:
            self.paused_queues[name] = None
        elif cmd.paused is False:
            self.paused_queues.pop(name, None)
        if cmd.tenant_weights is not None:
            weights = {t: w for t, w in cmd.tenant_weights if w != 1}
            if any(w < 1 for w in weights.values()):
                return reject("invalid", "tenant weights must be at least 1")
            if weights:
                self.tenant_weights[name] = weights
            else:
                self.tenant_weights.pop(name, None)
        return self.queue_settings(name)

    def queue_settings(self, name: str) -> dict[str, Any]:
        return {"name": name, "max_queued": self.max_queued.get(name, 0),
                "paused": name in self.paused_queues,
                "tenant_weights": dict(self.tenant_weights.get(name, {}))}

    def _queue_full(self, specs: list[TaskSpec]) -> Result | None:
        """The refusal of a submission that would pass a queue's ``max_queued``."""
        adding: dict[str, int] = {}
        for spec in specs:
            if spec.queue in self.max_queued and spec.id not in self.tasks:
                adding[spec.queue] = adding.get(spec.queue, 0) + 1
        for queue, n in adding.items():
            cap = self.max_queued[queue]
            waiting = (self.counts.get((queue, str(QUEUED)), 0)
                       + self.counts.get((queue, str(SCHEDULED)), 0))
            if waiting + n > cap:
                return reject("queue_full", f"queue {queue} holds {waiting} waiting tasks of "
                              f"at most {cap}", queue=queue, waiting=waiting, max_queued=cap)
        return None

    # --------------------------------------------------------------- claims

    def _keys_of(self, task: Task, concurrency_only: bool = False) -> list[str]:
        """The keys with a limit that ``task`` counts against (with a concurrency limit)."""
        flow = task.flow_keys
        keys = [flow[0], flow[1]] if flow is not None else []
        keys.append("task:" + task.name)
        if task.tenant:
            keys.append("tenant:" + task.tenant)
        out: list[str] = []
        for key in keys:
            if key and key not in out and (key in self.concurrency or (
                    not concurrency_only and key in self.rates)):
                out.append(key)
        return out

    def room(self, key: str) -> int:
        rate, conc = self.rates.get(key), self.concurrency.get(key)
        room = MANY if rate is None else rate.room(self.clock_ms, self.horizon_ms)
        return room if conc is None else min(room, conc[0] - conc[1])

    def _blocked(self, task: Task, level: Level, line: Line) -> bool:
        for key in self._keys_of(task):
            if self.room(key) <= 0:
                self._set_aside(task, level, line, key)
                return True
        return False

    def _set_aside(self, task: Task, level: Level, line: Line, key: str) -> None:
        waiters = self.waiters.get(key)
        if waiters is None:
            waiters = self.waiters[key] = deque()
        if task.tenant and key == "tenant:" + task.tenant:
            level.used = 0  # the line is at the front: its turn ends
            line.gate = key
            self._leave_ring(level, line)
            waiters.append(("l", level.queue, level.priority, line.tenant))
        else:
            self._unline(task, line)
            self.held[task.id] = key
            waiters.append(("t", task.id, task.seq, ""))
        self._arm(key)

    def _lease_started(self, task: Task) -> None:
        for key in self._keys_of(task):
            rate = self.rates.get(key)
            if rate is not None:
                rate.admit(self.horizon_ms)
                if key in self.waiters:
                    self._arm(key)
            conc = self.concurrency.get(key)
            if conc is not None:
                conc[1] += 1

    def _lease_ended(self, task: Task) -> None:
        for key in self._keys_of(task, True):
            self.concurrency[key][1] -= 1
            if key in self.waiters:
                self._wake(key)

    # -------------------------------------------------------------- waiters

    def _arm(self, key: str) -> None:
        """Have the clock wake ``key``'s waiters when its rate has room (at the next tick
        at the earliest: room it has now was given to the waiters sent back already)."""
        rate = self.rates.get(key)
        if rate is None or key not in self.waiters:
            return
        at = max(rate.room_at_ms(), self.clock_ms + 1)
        if self.armed.get(key) != at:
            self.armed[key] = at
            heapq.heappush(self.rate_timers, (at, key))

    def _rates_due(self) -> None:
        """Release the waiters of the rate keys whose time came, in key order."""
        due: dict[str, None] = {}
        timers, clock = self.rate_timers, self.clock_ms
        while timers and timers[0][0] <= clock:
            at, key = heapq.heappop(timers)
            if self.armed.get(key) == at:
                del self.armed[key]
                due[key] = None
        for key in sorted(due):
            self._wake(key)

    def _wake(self, key: str) -> None:
        """Send back as many of ``key``'s waiters as it has room for, oldest first."""
        waiters = self.waiters.get(key)
        if waiters is None:
            return
        room = self.room(key)
        while waiters and room > 0:
            kind, a, b, c = waiters.popleft()
            if kind == "t":
                task = self.tasks.get(a)
                if task is None or task.status is not QUEUED or task.seq != b \
                        or self.held.get(a) != key:
                    continue
                del self.held[a]
                level, line = self._line(lane(task.queue, task.name), task.priority,
                                         task.tenant)
                line.put_back(task)
                if not line.in_ring and not line.gate:
                    self._join_ring(level, line)
            else:
                found = self.levels.get((a, b))
                line_ = found.lines.get(c) if found is not None else None
                if found is None or line_ is None or line_.gate != key:
                    continue
                line_.gate = ""
                self._join_ring(found, line_)
            room -= 1
        if not waiters:
            del self.waiters[key]
            self.armed.pop(key, None)
        else:
            self._arm(key)
