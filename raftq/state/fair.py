"""Fair turns between tenants within one lane (a queue and a task name) and priority.

A ``Level`` (one lane, one priority) keeps a ``Line`` per tenant: its ready
tasks, oldest first (FIFO within a tenant; tasks without a tenant share the
line of tenant ``""``), linked through the tasks themselves (``Task.line``,
``nxt``, ``prv``): a claim reads the task it takes and the line, and no
per-tenant container, which with 10,000 tenants taking turns is never in the
cache (docs/performance.md, "Fairness: what tenants cost"). The tenants whose turn
comes wait in the level's ``ring``, front first: deficit round robin at a
cost of one per task. The front tenant takes up to its weight of claims in a
row (1 unless the queue's ``tenant_weights`` say otherwise), then goes to the
back. A tenant that gets its first task joins at the back. So between two
claims of a tenant of weight 1, every other tenant in the ring gets its turn,
and a tenant's first task waits for at most one turn of each tenant ahead of
it. Every step is O(1): no claim looks at more than the front of the ring.

A line holds exactly its queued tasks: a task leaving it (claimed, set aside
by a limit, cancelled, expired, dropped) is unlinked at once, and a line left
empty is deleted. The ring's entries are deleted lazily, as everywhere in
``raftq.state``: it may hold entries of lines that left it (a line counts
them in ``stale``; its turn is its last entry). So what a line, a ring or a level
holds that counts is exactly what a snapshot restores
(``raftq.state.snapshot``).
"""

from __future__ import annotations

from collections import deque

from raftq.state.model import Task

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
    """One tenant's ready tasks in one level, oldest first (``seq`` ascending): each
    task's ``nxt`` and ``prv`` are the tasks after and before it, or None."""

    __slots__ = ("tenant", "level", "head", "tail", "in_ring", "stale", "gate")

    def __init__(self, level: Level, tenant: str) -> None:
        self.tenant = tenant
        self.level = level
        self.head: Task | None = None  # None: empty (then it is deleted)
        self.tail: Task | None = None
        self.in_ring = False  # it takes turns: its last entry in the ring is its turn
        self.stale = 0  # its entries in the ring that are not its turn (skipped at the front)
        self.gate = ""  # the limit key it waits on as a whole (raftq.state.flow); "": none

    def push(self, task: Task) -> None:
        """``task`` joins at the back."""
        task.line, task.nxt, tail = self, None, self.tail
        if tail is None:
            self.head, task.prv = task, None
        else:
            tail.nxt, task.prv = task, tail
        self.tail = task

    def remove(self, task: Task) -> None:
        """``task`` leaves the line."""
        nxt = task.nxt
        if task is self.head:
            self.head = nxt
            if nxt is None:
                self.tail = None
            else:
                nxt.prv = None
        else:
            prv = task.prv
            if prv is not None:
                prv.nxt = nxt
            if nxt is None:
                self.tail = prv
            else:
                nxt.prv = prv
        task.line = task.nxt = task.prv = None

    def put_back(self, task: Task) -> None:
        """A task that was set aside returns to its place (seq order)."""
        seq, task.line = task.seq, self
        before, after = None, self.head
        while after is not None and after.seq < seq:  # behind the few set aside and back
            before, after = after, after.nxt
        task.prv, task.nxt = before, after
        if before is None:
            self.head = task
        else:
            before.nxt = task
        if after is None:
            self.tail = task
        else:
            after.prv = task


class Level:
    """The tenants' lines of one queue and priority, and the ring of their turns."""

    __slots__ = ("queue", "priority", "lines", "ring", "used", "active")
    # A claim from the front line counts in ``used``; at the line's weight its turn
    # ends and it goes to the back (``Turns._pop_ready``). A line alone takes no turns.

    def __init__(self, queue: str, priority: int) -> None:
        self.queue = queue
        self.priority = priority
        self.lines: dict[str, Line] = {}
        self.ring: deque[Line] = deque()
        self.used = 0  # claims the front line took in its current turn
        self.active = 0  # lines in the ring

    def join(self, line: Line) -> None:
        self.ring.append(line)
        line.in_ring = True
        self.active += 1

    def leave(self, line: Line) -> None:
        line.in_ring = False
        line.stale += 1  # its ring entry is skipped when it comes to the front
        self.active -= 1

    def front(self) -> Line:
        """The line whose turn it is (call only while ``active``). The front entry is a
        line's turn when the line has no stale entry: those come before its turn."""
        ring = self.ring
        while True:
            line = ring[0]
            if not line.stale:
                return line
            ring.popleft()
            line.stale -= 1
            self.used = 0

    def turn_order(self) -> list[Line]:
        """The lines in the ring, front first (a read: for snapshots and explain)."""
        turns: dict[Line, None] = {}
        for line in reversed(self.ring):
            if line.in_ring and line not in turns:
                turns[line] = None
        return list(reversed(turns))


class Turns:
    """The ready tasks of every queue in levels, lines and rings, and the claim's pick.

    Mixed into ``raftq.state.indexes.Indexes``, which owns the data it names."""

    tasks: dict[str, Task]
    ready_counts: dict[tuple[str, int], int]
    name_ready: dict[tuple[str, str], int]
    levels: dict[tuple[str, int], Level]
    ready: dict[str, dict[int, Level]]
    lanes: dict[str, dict[str, None]]
    paused_queues: dict[str, None]
    tenant_weights: dict[str, dict[str, int]]
    held: dict[str, str]
    limits_on: bool
    budget: int

    def _level(self, queue: str, prio: int) -> Level:
        """The level of ``queue`` (a lane) and ``prio``, made if new."""
        level = self.levels.get((queue, prio))
        if level is None:
            level = self.levels[(queue, prio)] = Level(queue, prio)
        return level

    def _line(self, queue: str, prio: int, tenant: str) -> tuple[Level, Line]:
        """The level of ``queue`` and ``prio`` and its line of ``tenant``, made if new."""
        level = self._level(queue, prio)
        line = level.lines.get(tenant)
        if line is None:
            line = level.lines[tenant] = Line(level, tenant)
        return level, line

    def _new_line(self, level: Level, tenant: str) -> Line:
        """A new line of ``tenant`` in ``level``, in the ring already: for a task that
        joins it at once (its turn is the same as if it joined the ring after it)."""
        line = level.lines[tenant] = Line(level, tenant)
        self._join_ring(level, line)
        return line

    def _grew(self, level: Level, line: Line) -> None:
        """Tasks were added to ``line``: a line that was not waiting joins the ring."""
        if not line.in_ring and not line.gate and line.head is not None:
            self._join_ring(level, line)

    def _join_ring(self, level: Level, line: Line) -> None:
        level.join(line)
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

    def _unline(self, task: Task, line: Line) -> None:
        """``task`` leaves ``line`` (claimed, set aside, cancelled, expired, dropped); a
        line left empty is deleted. Taking the head, as a claim does, is the quick way."""
        nxt = task.nxt
        if task is line.head and nxt is not None:
            line.head = nxt
            nxt.prv = None  # (the next task is touched anyway, by its new reference)
            task.line = task.nxt = None
            return
        line.remove(task)
        if line.head is None:
            level = line.level
            del level.lines[line.tenant]
            if line.in_ring:
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
        in its turn (see ``Level``); the task stays the head of its line until the claim
        moves it (``_ready_gone``). It costs O(lanes), whatever else is queued."""
        ready = self.ready
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
                front = here.ring[0]
                if front.stale:
                    front = here.front()
                head = front.head
                if head is None:  # never: a line in the ring has tasks
                    continue
                seq = head.seq
                if level is None or prio > best_prio or seq < best_seq:
                    level, line, task, best_prio, best_seq = here, front, head, prio, seq
            if level is None or line is None or task is None:
                return None
            if self.limits_on and self._blocked(task, level, line):
                if self.budget <= 0:
                    return None
                self.budget -= 1
                continue
            if level.active > 1:
                ring = level.ring
                if self.tenant_weights:
                    weights = self.tenant_weights.get(lane_queue(level.queue))
                    used = level.used + 1
                    if used >= (weights.get(line.tenant, 1) if weights else 1):
                        ring.append(ring.popleft())
                        used = 0
                    level.used = used
                else:
                    ring.append(ring.popleft())
                    level.used = 0
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
        line = task.line
        if line is None:  # set aside by a limit: not in a line
            self.held.pop(task.id, None)
        else:
            self._unline(task, line)

    def claimable(self, queues: list[str], names: list[str] | None = None) -> bool:
        """Whether a claim on ``queues`` (for ``names``; None: any) may find a task: a lane
        of a queue not paused has a tenant whose turn can come (tasks held back by limits
        do not count)."""
        ready = self.ready
        return any(key in ready for key in self._lanes_of(queues, names))

