"""Fair turns between tenants within one lane (a queue and a task name) and priority.

A ``Level`` (one lane, one priority) keeps a ``Line`` per tenant: its ready
tasks as ``(seq, id)`` entries, oldest first (FIFO within a tenant; tasks
without a tenant share the line of tenant ``""``). The tenants whose turn
comes wait in the level's ``ring``, front first: deficit round robin at a
cost of one per task. The front tenant takes up to its weight of claims in a
row (1 unless the queue's ``tenant_weights`` say otherwise), then goes to the
back. A tenant that gets its first task joins at the back. So between two
claims of a tenant of weight 1, every other tenant in the ring gets its turn,
and a tenant's first task waits for at most one turn of each tenant ahead of
it. Every step is O(1): no claim looks at more than the front of the ring.

Entries are deleted lazily, as everywhere in ``raftq.state``: a line may hold
entries of tasks that left it (checked against the task's ``seq`` and
status), and the ring may hold entries of lines that left it (a line's valid
entry carries its current ``ticket``). ``live`` counts a line's real tasks;
a line with none is deleted at once, so what a line, a ring or a level holds
that counts is exactly what a snapshot restores (``raftq.state.snapshot``).
"""

from __future__ import annotations

from collections import deque

from raftq.state.model import Status, Task

QUEUED = Status.QUEUED
# The most tasks one claim sets aside for limits before it gives up (raftq.state.flow).
SET_ASIDE_PER_CLAIM = 1_000
# Ready tasks are kept per lane: a queue and a task name, so that a claim looks only at
# the names its worker runs (raftq.state.workers). A level's ``queue`` is its lane.
LANE_SEP = "\x1f"  # never in a queue or task name (the API allows neither)


def lane(queue: str, name: str) -> str:
    return f"{queue}{LANE_SEP}{name}"


def lane_queue(key: str) -> str:
    return key.partition(LANE_SEP)[0]


class Line:
    """One tenant's ready tasks in one level."""

    __slots__ = ("tenant", "entries", "live", "ticket", "gate")

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.entries: deque[tuple[int, str]] = deque()  # (seq, task id), seq ascending
        self.live = 0  # entries of tasks really in this line
        self.ticket = 0  # the ticket of its valid ring entry; 0: not in the ring
        self.gate = ""  # the limit key it waits on as a whole (raftq.state.flow); "": none

    def put_back(self, seq: int, task_id: str) -> None:
        """A task that was set aside returns to its place (seq order)."""
        entries = self.entries
        if not entries or entries[0][0] > seq:
            entries.appendleft((seq, task_id))
        else:  # behind others set aside and back already: few, at the front
            i = 1
            while i < len(entries) and entries[i][0] < seq:
                i += 1
            entries.insert(i, (seq, task_id))
        self.live += 1


class Level:
    """The tenants' lines of one queue and priority, and the ring of their turns."""

    __slots__ = ("queue", "priority", "lines", "ring", "used", "active")
    # A claim from the front line counts in ``used``; at the line's weight its turn
    # ends and it goes to the back (``Turns._pop_ready``). A line alone takes no turns.

    def __init__(self, queue: str, priority: int) -> None:
        self.queue = queue
        self.priority = priority
        self.lines: dict[str, Line] = {}
        self.ring: deque[tuple[int, Line]] = deque()
        self.used = 0  # claims the front line took in its current turn
        self.active = 0  # lines in the ring

    def join(self, line: Line, ticket: int) -> None:
        self.ring.append((ticket, line))
        line.ticket = ticket
        self.active += 1

    def leave(self, line: Line) -> None:
        line.ticket = 0  # its ring entry is skipped when it comes to the front
        self.active -= 1

    def front(self) -> Line:
        """The line whose turn it is (call only while ``active``)."""
        ring = self.ring
        while True:
            ticket, line = ring[0]
            if line.ticket == ticket:
                return line
            ring.popleft()
            self.used = 0

    def turn_order(self) -> list[Line]:
        """The lines in the ring, front first (a read: for snapshots and explain)."""
        return [line for ticket, line in self.ring if line.ticket == ticket]


class Turns:
    """The ready tasks of every queue in levels, lines and rings, and the claim's pick.

    Mixed into ``raftq.state.indexes.Indexes``, which owns the data it names."""

    tasks: dict[str, Task]
    ready_counts: dict[tuple[str, int], int]
    name_ready: dict[tuple[str, str], int]
    levels: dict[tuple[str, int], Level]
    ready: dict[str, dict[int, Level]]
    lanes: dict[str, dict[str, None]]
    next_ticket: int
    paused_queues: dict[str, None]
    tenant_weights: dict[str, dict[str, int]]
    held: dict[str, str]
    limits_on: bool
    budget: int

    def _line(self, queue: str, prio: int, tenant: str) -> tuple[Level, Line]:
        """The level of ``queue`` and ``prio`` and its line of ``tenant``, made if new."""
        level = self.levels.get((queue, prio))
        if level is None:
            level = self.levels[(queue, prio)] = Level(queue, prio)
        line = level.lines.get(tenant)
        if line is None:
            line = level.lines[tenant] = Line(tenant)
        return level, line

    def _grew(self, level: Level, line: Line, n: int) -> None:
        """``n`` tasks were added to ``line``: a line that was not waiting joins the ring."""
        line.live += n
        if not line.ticket and not line.gate and line.live:
            self._join_ring(level, line)

    def _join_ring(self, level: Level, line: Line) -> None:
        level.join(line, self.next_ticket)
        self.next_ticket += 1
        if level.active == 1:
            levels = self.ready.get(level.queue)
            if levels is None:
                levels = self.ready[level.queue] = {}
                self.lanes.setdefault(lane_queue(level.queue), {})[level.queue] = None
            levels[level.priority] = level

    def _leave_ring(self, level: Level, line: Line) -> None:
        """``line`` leaves the ring (emptied or gated); a level left with no turns is not
        ready, and one left with no lines is forgotten."""
        level.leave(line)
        if not level.active:
            levels = self.ready[level.queue]
            del levels[level.priority]
            if not levels:
                del self.ready[level.queue]
                queue = lane_queue(level.queue)
                lanes = self.lanes[queue]
                del lanes[level.queue]
                if not lanes:
                    del self.lanes[queue]
        if not level.lines:
            del self.levels[(level.queue, level.priority)]

    def _line_gone(self, level: Level, line: Line) -> None:
        """One task left ``line`` (claimed, set aside, cancelled, expired)."""
        line.live -= 1
        if not line.live:
            del level.lines[line.tenant]
            if line.ticket:
                self._leave_ring(level, line)
            elif not level.lines and not level.active:
                del self.levels[(level.queue, level.priority)]

    def _lanes_of(self, queues: list[str], names: list[str] | None) -> list[str]:
        """The lanes a claim looks at: of ``queues``, for ``names`` (None: every name)."""
        paused = self.paused_queues
        out: list[str] = []
        for queue in dict.fromkeys(queues):
            if queue in paused:
                continue
            if names is None:
                out += self.lanes.get(queue, ())
            else:
                out += [lane(queue, name) for name in dict.fromkeys(names)]
        return out

    def _pop_ready(self, lanes: list[str]) -> Task | None:
        """The next task across ``lanes`` (``_lanes_of`` a claim's queues and names):
        the highest priority first, then across the lanes the oldest of the tasks whose
        tenant's turn it is in each. A task a limit holds back is set aside on the way
        (``_blocked``), at most ``budget`` of them. The front line then counts the claim
        in its turn (see ``Level``). It costs O(lanes), whatever else is queued."""
        ready, tasks = self.ready, self.tasks
        while True:
            level = line = task = None
            best_prio = best_seq = 0
            for queue in lanes:
                levels = ready.get(queue)
                if not levels:
                    continue
                prio = max(levels)
                if level is not None and prio < best_prio:
                    continue
                here = levels[prio]
                ticket, front = here.ring[0]
                if front.ticket != ticket:
                    front = here.front()
                entries = front.entries
                while True:  # a live line has a live entry: drop the stale ones before it
                    seq, task_id = entries[0]
                    head = tasks.get(task_id)
                    if head is not None and head.status is QUEUED and head.seq == seq:
                        break
                    entries.popleft()
                if level is None or prio > best_prio or seq < best_seq:
                    level, line, task, best_prio, best_seq = here, front, head, prio, seq
            if level is None or line is None or task is None:
                return None
            if self.limits_on and self._blocked(task, level, line):
                if self.budget <= 0:
                    return None
                self.budget -= 1
                continue
            line.entries.popleft()
            if level.active > 1:
                weights = (self.tenant_weights.get(lane_queue(level.queue))
                           if self.tenant_weights else None)
                used = level.used + 1
                if used >= (weights.get(line.tenant, 1) if weights else 1):
                    ring = level.ring
                    ring.append(ring.popleft())
                    used = 0
                level.used = used
            else:
                level.used = 0
            return task

    # Hooks of flow control (``raftq.state.flow``), called only while a limit exists.

    def _blocked(self, task: Task, level: Level, line: Line) -> bool:
        """True when a limit holds ``task`` back (and it, or its line, was set aside)."""
        return False

    def _lease_started(self, task: Task) -> None:
        """A task was leased: it counts against its rate and concurrency limits."""

    def _lease_ended(self, task: Task) -> None:
        """A leased task stopped counting against its concurrency limits."""

    def _unique_dropped(self, task: Task) -> None:
        """A task with a uniqueness key is dropped."""

    def _ready_gone(self, task: Task) -> None:
        key = (task.queue, task.priority)
        n = self.ready_counts[key] - 1
        if n:
            self.ready_counts[key] = n
        else:
            del self.ready_counts[key]
        name_key = (task.queue, task.name)
        n = self.name_ready[name_key] - 1
        if n:
            self.name_ready[name_key] = n
        else:
            del self.name_ready[name_key]
        if self.held and self.held.pop(task.id, None) is not None:
            return  # set aside by a limit: not in a line
        level = self.levels[(lane(task.queue, task.name), task.priority)]
        self._line_gone(level, level.lines[task.tenant])

    def claimable(self, queues: list[str], names: list[str] | None = None) -> bool:
        """Whether a claim on ``queues`` (for ``names``; None: any) may find a task: a lane
        of a queue not paused has a tenant whose turn can come (tasks held back by limits
        do not count)."""
        ready = self.ready
        return any(key in ready for key in self._lanes_of(queues, names))

