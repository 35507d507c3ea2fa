"""How the state machine indexes its tasks, and the reads built on the indexes.

``Indexes`` holds the authoritative data (tasks, the clock, counters, the
status index, the dedupe table, the worker registry and the task definitions
workers announce) and the derived indexes: the ready tasks per lane (a queue
and a task name) and priority in fair turns between tenants
(``raftq.state.fair``), the delayed heap, the lease heap, the expiry heap and
which workers run each task name.
Derived entries are deleted lazily (except a queued task's place in its
tenant's line, ``raftq.state.fair``): an entry is skipped when the task no
longer matches it (its ``seq``, token or expiry moved on).

Every status change goes through ``_move``, which checks it against
``TRANSITIONS`` and keeps the status index and the counters exact. The rules of
``raftq.state`` hold here too: no clock, no ids, no I/O, no set iteration.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from typing import Any

from raftq.state.commands import TaskDef, TaskSpec
from raftq.state.fair import Level, Turns, lane
from raftq.state.graph import Flow, Link
from raftq.state.model import (
    EXPIRING,
    LOST_AFTER_BEATS,
    TERMINAL,
    TRANSITIONS,
    WORKER_FORGET_MS,
    Presence,
    Status,
    Task,
)
from raftq.state.sharing import Shared

# Plain names for the statuses: enum member lookups are slow on Python 3.11,
# and apply runs them for every task on every node.
QUEUED, SCHEDULED, LEASED = Status.QUEUED, Status.SCHEDULED, Status.LEASED
SUCCEEDED, DEAD, CANCELLED = Status.SUCCEEDED, Status.DEAD, Status.CANCELLED
WAITING = Status.WAITING
EXPIRED = Status.EXPIRED


# What a command returns: plain data, the same on every node.
Result = Any


def reject(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The value ``apply`` returns for an operation it refuses (it never raises)."""
    return {"error": code, "message": message, **extra}


class Indexes(Turns):
    def __init__(self) -> None:
        self.clock_ms = 0
        self.ticks = 0  # ticks that moved the clock; a tick names the count it follows
        self.wall_offset_ms = 0  # the leader's wall clock minus clock_ms, slewed
        self.horizon_ms = 0  # timers up to here have fired: the clock before the latest tick
        self.next_seq = 1
        self.next_token = 1
        self.tasks: dict[str, Task] = {}
        # status -> ordered set of task ids, in the order they entered it
        self.by_status: dict[Status, dict[str, None]] = {s: {} for s in Status}
        self.counts: dict[tuple[str, str], int] = {}  # (queue, status) -> n
        self.ready_counts: dict[tuple[str, int], int] = {}  # (queue, priority) -> n
        self.name_ready: dict[tuple[str, str], int] = {}  # (queue, task name) -> n
        # every level with a line, and per lane the levels with a line in their ring
        # (a level's key is its lane and priority: raftq.state.fair), and per queue
        # the lanes in ``ready``
        self.levels: dict[tuple[str, int], Level] = {}
        self.ready: dict[str, dict[int, Level]] = {}
        self.lanes: dict[str, dict[str, None]] = {}
        # flow control (raftq.state.flow) as the claims see it: the queues not claimed
        # from, each queue's tenant weights, tasks set aside by a limit (id -> key)
        # and whether any limit exists
        self.paused_queues: dict[str, None] = {}
        self.tenant_weights: dict[str, dict[str, int]] = {}
        self.held: dict[str, str] = {}
        self.limits_on = False
        self.budget = 0  # tasks a claim may still set aside
        self.delayed: list[tuple[int, int, str]] = []  # (ready_at_ms, seq, id)
        self.lease_heap: list[tuple[int, int, str]] = []  # (expires_ms, token, id)
        self.expiry_heap: list[tuple[int, str]] = []  # (drop_at_ms, id)
        self.deadline_heap: list[tuple[int, str]] = []  # (expires_at_ms, id): not run after
        self.dedupe: OrderedDict[str, Any] = OrderedDict()  # see raftq.state.sharing
        self.shared = Shared()  # names, queues and limits: one object each
        # worker_id -> [host, pid, queues, last_seen_ms]
        self.workers: dict[str, list[Any]] = {}
        self.worker_leases: dict[str, dict[str, None]] = {}
        # what announced workers said (raftq.state.workers): worker_id -> Presence; task
        # name -> its definition (the latest announced); task name -> worker ids running it
        self.presence: dict[str, Presence] = {}
        self.task_defs: dict[str, TaskDef] = {}
        self.runners: dict[str, dict[str, None]] = {}
        # the dependency graph: its records in raftq.state.graph, its rules in
        # raftq.state.workflows (which overrides the two hooks below)
        self.links: dict[str, Link] = {}  # task id -> its parents and children
        self.flows: dict[str, Flow] = {}  # workflow id -> its tasks
        # task id -> [permille, message, at_ms]: the running attempt's last report
        # (raftq.state.progress)
        self.progress: dict[str, list[Any]] = {}
        # Status changes made by the entry being applied, when the edge asks for
        # them (it sets a list before ``apply`` and takes it after): ``(task,
        # old, new, attempts)`` each, in the order made. Not part of the state:
        # never snapshotted, None otherwise. Deterministic like everything here.
        self.changes: list[tuple[Task, Status | None, Status, int]] | None = None

    def _forget_workers(self) -> None:
        """Drop workers unseen for their forget time that hold no lease (on ticks only):
        an announced worker's ``forget_ms``, else WORKER_FORGET_MS."""
        clock, presence = self.clock_ms, self.presence
        stale = [w for w, info in self.workers.items()
                 if info[3] + (presence[w].forget_ms if w in presence else WORKER_FORGET_MS)
                 <= clock]
        for worker_id in stale:
            if not self.worker_leases.get(worker_id):
                self._drop_worker(worker_id)

    def _drop_worker(self, worker_id: str) -> bool:
        """Forget a worker and what it announced; False if it was not known."""
        known = self.workers.pop(worker_id, None) is not None
        self.worker_leases.pop(worker_id, None)
        gone = self.presence.pop(worker_id, None)
        if gone is not None:
            for name in gone.names:
                self._unrun(name, worker_id)
        return known

    def _silent_ms(self, worker_id: str) -> int | None:
        """How long an announced worker has been silent, if that makes it lost (three
        heartbeats); None for one that is not, or never announced itself."""
        presence, info = self.presence.get(worker_id), self.workers.get(worker_id)
        if presence is None or info is None:
            return None
        silent: int = self.clock_ms - info[3]
        return silent if silent > LOST_AFTER_BEATS * presence.heartbeat_ms else None

    def _unrun(self, name: str, worker_id: str) -> None:
        ids = self.runners.get(name)
        if ids is not None:
            ids.pop(worker_id, None)
            if not ids:
                del self.runners[name]

    # ------------------------------------------------------------ mutation

    def _leased(self, task_id: str, token: int) -> Task | None:
        task = self.tasks.get(task_id)
        if task is None or task.status is not LEASED or task.lease_token != token:
            return None
        return task

    def _touch_worker(
        self, worker_id: str, host: str = "", pid: int = 0, queues: list[str] | None = None
    ) -> None:
        if not worker_id:
            return
        info = self.workers.get(worker_id)
        if info is None:
            self.workers[worker_id] = [host, pid, list(queues or []), self.clock_ms]
            return
        if host:
            info[0], info[1] = host, pid
        if queues is not None:
            info[2] = list(queues)
        info[3] = self.clock_ms

    def _move(self, task: Task, new: Status) -> None:
        old = task.status
        if new not in TRANSITIONS[old]:
            raise AssertionError(f"illegal transition {old} -> {new} for {task.id}")
        task_id, queue, clock = task.id, task.queue, self.clock_ms
        by_status, counts = self.by_status, self.counts
        if old is not None:
            del by_status[old][task_id]
            self._count(queue, old, -1)
            if old is QUEUED:
                self._ready_gone(task)
            elif old is LEASED and self.limits_on:
                self._lease_ended(task)
        task.status = new
        task.updated_ms = clock
        by_status[new][task_id] = None
        key = (queue, str(new))
        counts[key] = counts.get(key, 0) + 1
        if new is QUEUED:
            ready_key = (queue, task.priority)
            self.ready_counts[ready_key] = self.ready_counts.get(ready_key, 0) + 1
            name_key = (queue, task.name)
            self.name_ready[name_key] = self.name_ready.get(name_key, 0) + 1
        elif new in TERMINAL:
            task.finished_ms = clock
            task.ready_at_ms = None
            if new in EXPIRING:
                heapq.heappush(self.expiry_heap, (clock + task.result_ttl_ms, task_id))
        if self.changes is not None:
            self.changes.append((task, old, new, task.attempts))
        if task_id in self.links:
            self._linked_moved(task, old)

    def _linked_moved(self, task: Task, old: Status | None) -> None:
        """A task with a link changed status (see ``raftq.state.workflows``)."""

    def _unlink(self, task: Task) -> None:
        """A task with a link is dropped (see ``raftq.state.workflows``)."""

    def _count(self, queue: str, status: Status, delta: int) -> None:
        key = (queue, str(status))
        n = self.counts.get(key, 0) + delta
        if n:
            self.counts[key] = n
        else:
            self.counts.pop(key, None)

    def _flow_fields(self, task: Task, spec: TaskSpec) -> None:
        """A new task's tenant and limit keys, from its spec's."""
        task.tenant = spec.tenant
        if spec.rate_key or spec.concurrency_key or spec.unique_key:
            task.flow_keys = [spec.rate_key, spec.concurrency_key, spec.unique_key]

    def _set_expiry(self, task: Task, spec: TaskSpec) -> None:
        """A new task's expiry on the replicated clock, from its spec's."""
        limits = []
        if spec.expires_ms:
            limits.append(self.clock_ms + spec.expires_ms)
        if spec.expires_at_ms:
            limits.append(spec.expires_at_ms - self.wall_offset_ms)
        task.expires_at_ms = min(limits)
        heapq.heappush(self.deadline_heap, (task.expires_at_ms, task.id))

    def _past_expiry(self, task: Task) -> bool:
        """True (and the task is expired) when it would wait to run again after its expiry,
        passed by ``horizon_ms`` like every timer (see ``raftq.state.machine``); a new
        task is queued first and the submit expires it."""
        if (task.expires_at_ms is None or task.expires_at_ms > self.horizon_ms
                or task.status is None):
            return False
        self._move(task, EXPIRED)
        return True

    def _expire_due(self) -> None:
        """Expire the waiting tasks whose expiry ``horizon_ms`` has passed."""
        heap, now = self.deadline_heap, self.horizon_ms
        while heap and heap[0][0] <= now:
            at, task_id = heapq.heappop(heap)
            task = self.tasks.get(task_id)
            if (task is not None and task.expires_at_ms == at
                    and (task.status is QUEUED or task.status is SCHEDULED
                         or task.status is WAITING)):
                self._move(task, EXPIRED)

    def _enqueue(self, task: Task) -> None:
        if task.status is QUEUED or self._past_expiry(task):
            return
        self._move(task, QUEUED)
        seq = task.seq = self.next_seq
        self.next_seq = seq + 1
        task.ready_at_ms = None
        level, line = self._line(lane(task.queue, task.name), task.priority, task.tenant)
        line.push(task)
        self._grew(level, line)

    def _enqueue_new(self, tasks: list[Task]) -> None:
        """``_enqueue`` for tasks just created, in order, as one batch submit makes them.

        Every task makes the same move, None -> QUEUED: the table is consulted
        once, each task is checked to be new, the counters are updated once per
        run of tasks with the same queue, name and priority, and the line's
        tail once per run with the same tenant too.
        """
        if not tasks:
            return
        if QUEUED not in TRANSITIONS[None]:
            raise AssertionError("illegal transition None -> queued")
        queued, clock, seq = self.by_status[QUEUED], self.clock_ms, self.next_seq
        first = tasks[0]
        queue, name, prio = first.queue, first.name, first.priority
        run = 0
        level = self._level(lane(queue, name), prio)
        lines = level.lines
        line = lines.get(first.tenant) or self._new_line(level, first.tenant)
        tenant = first.tenant = line.tenant
        tail = line.tail  # linked in here, as Line.push does, and stored at each change
        if self.changes is not None:
            self.changes.extend((task, None, QUEUED, 0) for task in tasks)
        for task in tasks:
            if task.status is not None:
                raise AssertionError(f"illegal transition {task.status} -> queued for {task.id}")
            who = task.tenant
            if who != tenant or task.queue != queue or task.priority != prio or task.name != name:
                line.tail = tail
                if task.queue != queue or task.priority != prio or task.name != name:
                    self._queued_run(queue, name, prio, run)
                    queue, name, prio, run = task.queue, task.name, task.priority, 0
                    level = self._level(lane(queue, name), prio)
                    lines = level.lines
                # a line with tasks is in the ring or waits on a limit: only a new one joins
                line = lines.get(who) or self._new_line(level, who)
                # the line's own string: one object per tenant, not one per task
                tenant = task.tenant = line.tenant
                tail = line.tail
            task.status = QUEUED
            task.updated_ms = clock
            task.ready_at_ms = None
            task.seq = seq
            task.line = line
            queued[task.id] = None
            if tail is None:
                line.head = task
            else:
                tail.nxt = task
                task.prv = tail
            tail = task
            seq += 1
            run += 1
        self._queued_run(queue, name, prio, run)
        line.tail = tail
        self.next_seq = seq

    def _queued_run(self, queue: str, name: str, prio: int, n: int) -> None:
        if n:
            key = (queue, str(QUEUED))
            self.counts[key] = self.counts.get(key, 0) + n
            self.ready_counts[(queue, prio)] = self.ready_counts.get((queue, prio), 0) + n
            self.name_ready[(queue, name)] = self.name_ready.get((queue, name), 0) + n

    def _schedule(self, task: Task, ready_at_ms: int) -> None:
        if self._past_expiry(task):
            return
        self._move(task, SCHEDULED)
        task.seq = self.next_seq
        self.next_seq += 1
        task.ready_at_ms = ready_at_ms
        heapq.heappush(self.delayed, (ready_at_ms, task.seq, task.id))

    def _clear_lease(self, task: Task) -> None:
        leases = self.worker_leases.get(task.lease_worker)
        if leases is not None:
            leases.pop(task.id, None)
        task.lease_worker = ""
        task.lease_expires_ms = 0

    def _drop(self, task: Task) -> None:
        if task.status is QUEUED:
            self._ready_gone(task)
        if task.flow_keys is not None and task.flow_keys[2]:
            self._unique_dropped(task)
        if task.status is not None:
            del self.by_status[task.status][task.id]
            self._count(task.queue, task.status, -1)
        del self.tasks[task.id]
        if self.progress:
            self.progress.pop(task.id, None)
        if task.id in self.links:
            self._unlink(task)

    # ------------------------------------------------------------------ reads

    def ready_count(self, queues: list[str]) -> int:
        return sum(n for (q, _), n in self.ready_counts.items() if q in queues)

    def depths(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for (queue, status), n in sorted(self.counts.items()):
            entry = out.setdefault(queue, {s.value: 0 for s in Status} | {"ready_by_priority": {}})
            entry[status] = n
        for (queue, prio), n in sorted(self.ready_counts.items()):
            entry = out.setdefault(queue, {s.value: 0 for s in Status} | {"ready_by_priority": {}})
            entry["ready_by_priority"][str(prio)] = n
        return out

    def list_ids(self, status: Status | None, queue: str | None, limit: int) -> list[str]:
        source = self.tasks if status is None else self.by_status[status]
        out: list[str] = []
        for task_id in source:
            if queue is None or self.tasks[task_id].queue == queue:
                out.append(task_id)
                if len(out) >= limit:
                    break
        return out
