"""The flow-control part of a snapshot (``raftq.state.snapshot``, format 4).

Settings and limits are written as they are. The tenants' turns are written
per level (its ring, front first, and the claims its front tenant took in
its turn) with the lines waiting on a limit; what waits on each limit key in
order; and each rate key's armed timer. Only what counts is written: ring
entries of lines that left, waiters that went away and timers of keys with
nobody waiting are left out, and the lines themselves are rebuilt from the
queued tasks in ``seq`` order, so a restored state gives the same snapshot
and makes the same choices as the one that was saved.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import TYPE_CHECKING, Any

from raftq.state.fair import LANE_SEP, lane
from raftq.state.limits import Rate
from raftq.state.model import Status, Task

if TYPE_CHECKING:
    from raftq.state.flow import Waiter
    from raftq.state.machine import State


def _valid(state: State, key: str, w: Waiter) -> bool:
    kind, a, b, c = w
    if kind == "t":
        task = state.tasks.get(a)
        return (task is not None and task.status is Status.QUEUED and task.seq == b
                and state.held.get(a) == key)
    level = state.levels.get((a, b))
    line = level.lines.get(c) if level is not None else None
    return line is not None and line.gate == key


def to_plain(state: State) -> dict[str, Any]:
    levels = []
    for level in state.levels.values():
        ring = level.ring
        used = level.used if ring and not ring[0].stale else 0
        gates = sorted([t, line.gate] for t, line in level.lines.items() if line.gate)
        levels.append([level.queue, level.priority, used,
                       [line.tenant for line in level.turn_order()], gates])
    waiters = []
    for key, entries in state.waiters.items():
        valid = [list(w) for w in entries if _valid(state, key, w)]
        if valid:
            waiters.append([key, valid])
    waiting = {key for key, _ in waiters}
    return {
        "rates": [[k, r.rate, r.per_ms, r.burst, r.tat] for k, r in state.rates.items()],
        "concurrency": [[k, c[0]] for k, c in state.concurrency.items()],
        "max_queued": [[q, n] for q, n in state.max_queued.items()],
        "paused": list(state.paused_queues),
        "tenant_weights": [[q, [[t, w] for t, w in ws.items()]]
                           for q, ws in state.tenant_weights.items()],
        "unique": [[k, i, until] for k, (i, until) in state.unique.items()],
        "levels": levels,
        "waiters": waiters,
        "armed": [[k, at] for k, at in state.armed.items() if k in waiting],
    }


def settings_from_plain(state: State, flow: dict[str, Any] | None) -> None:
    if not flow:
        return
    state.rates = {k: Rate(r, per, burst, tat) for k, r, per, burst, tat in flow["rates"]}
    state.concurrency = {k: [n, 0] for k, n in flow["concurrency"]}
    for task_id in state.by_status[Status.LEASED]:
        for key in state._keys_of(state.tasks[task_id], True):
            state.concurrency[key][1] += 1
    state.limits_on = bool(state.rates or state.concurrency)
    state.max_queued = {q: n for q, n in flow["max_queued"]}
    state.paused_queues = dict.fromkeys(flow["paused"])
    state.tenant_weights = {q: {t: w for t, w in ws} for q, ws in flow["tenant_weights"]}
    state.unique = {k: (i, until) for k, i, until in flow["unique"]}
    for key, entries in flow["waiters"]:
        state.waiters[key] = deque((kind, a, b, c) for kind, a, b, c in entries)
        for kind, a, _, _ in entries:
            if kind == "t":
                state.held[a] = key
    state.armed = {k: at for k, at in flow["armed"]}
    state.rate_timers = [(at, k) for k, at in state.armed.items()]
    heapq.heapify(state.rate_timers)


def turns_from_plain(state: State, flow: dict[str, Any] | None, queued: list[Task]) -> None:
    """The lines from the queued tasks (in seq order), then the rings and the gates."""
    # Levels are kept per lane (a queue and a task name); those of a snapshot made
    # before were per queue, and their turns start again from the tasks.
    stored = [row for row in (flow["levels"] if flow else []) if LANE_SEP in row[0]]
    for queue, prio, _, _, _ in stored:
        state._line(queue, prio, "")  # the levels in their order; an unused line goes below
    held, last, line = state.held, None, None
    for task in queued:  # in runs of tasks of one line (a bulk load is one run)
        if held and task.id in held:
            continue
        key = (task.queue, task.name, task.priority, task.tenant)
        if key != last or line is None:
            last, line = key, state._line(lane(task.queue, task.name), task.priority,
                                          task.tenant)[1]
        line.push(task)
    for level in list(state.levels.values()):
        for tenant in [t for t, line in level.lines.items() if line.head is None]:
            del level.lines[tenant]
    for queue, prio, used, ring, gates in stored:
        level = state.levels[(queue, prio)]
        for tenant, key in gates:
            level.lines[tenant].gate = key
        for tenant in ring:
            state._join_ring(level, level.lines[tenant])
        level.used = used
    for level in list(state.levels.values()):  # before format 4: by their oldest task
        for line in level.lines.values():
            if not line.in_ring and not line.gate:
                state._join_ring(level, line)
        if not level.lines:
            del state.levels[(level.queue, level.priority)]
