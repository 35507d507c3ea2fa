"""Why is a task waiting? A read of the state, never part of ``apply``.

``explain`` names what holds a task, most decisive first: its status (scheduled
until T, waiting for parents, running, finished), then for a queued task a
paused queue, the limits that hold it back (a rate key with no room until T, a
concurrency key at its max: the one a claim set it aside for, or its tenant's
line for, and every other key of the task without room now on the replicated
clock, as a claim reaching it would find, whether or not one has yet),
tasks ahead of it at a higher priority in its queue, its tenant's turn (the
tenants ahead in the ring and its own tasks ahead in its line), and whether
a live worker runs its name from its queue (``raftq.state.workers.no_runner``).
"""

from __future__ import annotations

from typing import Any

from raftq.state.fair import lane
from raftq.state.model import Status, Task
from raftq.state.workers import no_runner

MAX_SCAN = 100_000  # tasks of a line looked at to count the tasks ahead


def _limit(state: Any, key: str) -> dict[str, Any]:
    out: dict[str, Any] = {"key": key, "room": min(state.room(key), 1 << 31)}
    rate = state.rates.get(key)
    if rate is not None:
        out["rate"] = {"rate": rate.rate, "per_ms": rate.per_ms, "burst": rate.burst,
                       "room_at_ms": max(rate.room_at_ms(), state.clock_ms)}
    conc = state.concurrency.get(key)
    if conc is not None:
        out["concurrency"] = {"max": conc[0], "running": conc[1]}
    return out


def _limit_reason(state: Any, key: str, whole_line: bool) -> dict[str, Any]:
    info = _limit(state, key)
    rate, conc = info.get("rate"), info.get("concurrency")
    if conc is not None and conc["running"] >= conc["max"]:
        text = f"concurrency key {key} is at its max ({conc['running']} of {conc['max']})"
        code = "concurrency_limit"
    elif rate is not None:
        text = f"rate key {key} has no room until {rate['room_at_ms']} (replicated clock)"
        code = "rate_limit"
    else:
        text, code = f"key {key} has no room", "limit"
    if whole_line:
        text = "its tenant's line waits: " + text
    return {"code": code, "message": text, "limit": info}


def _turn(state: Any, task: Task) -> dict[str, Any] | None:
    level = state.levels.get((lane(task.queue, task.name), task.priority))
    line = level.lines.get(task.tenant) if level is not None else None
    if level is None or line is None:
        return None
    order = level.turn_order()
    ahead_tenants = next((i for i, ln in enumerate(order) if ln is line), len(order))
    ahead, other = 0, line.head
    while other is not None and other is not task and ahead < MAX_SCAN:
        ahead += 1
        other = other.nxt
    who = f"tenant {task.tenant}" if task.tenant else "tasks without a tenant"
    return {"code": "turn", "tenants_ahead": ahead_tenants, "ahead_in_line": ahead,
            "message": f"{who}: {ahead_tenants} tenant(s) take their turn first, "
                       f"{ahead} of its own tasks are ahead of it"}


def explain(state: Any, task: Task) -> list[dict[str, Any]]:
    status, out = task.status, []
    if status is Status.SCHEDULED:
        at = task.ready_at_ms or 0
        out.append({"code": "scheduled", "ready_at_ms": at + state.wall_offset_ms,
                    "message": f"scheduled: ready at {at + state.wall_offset_ms} (wall ms)"})
    elif status is Status.WAITING:
        out.append({"code": "waiting", "message": "waiting for its parents to end"})
    elif status is Status.LEASED:
        out.append({"code": "running", "message": f"running on worker {task.lease_worker}"})
    elif status is not Status.QUEUED:
        out.append({"code": "finished", "message": f"it ended: {status}"})
    if status is not Status.QUEUED:
        return out
    if task.queue in state.paused_queues:
        out.append({"code": "paused", "message": f"queue {task.queue} is paused"})
    held = state.held.get(task.id)
    level = state.levels.get((lane(task.queue, task.name), task.priority))
    line = level.lines.get(task.tenant) if level is not None else None
    named = ""
    if held is not None:
        out.append(_limit_reason(state, held, False))
        named = held
    elif line is not None and line.gate:
        out.append(_limit_reason(state, line.gate, True))
        named = line.gate
    for key in state._keys_of(task):  # exhausted now: a claim reaching it would stop
        if key != named and state.room(key) <= 0:
            out.append(_limit_reason(state, key, False))
    higher = sum(n for (q, p), n in state.ready_counts.items()
                 if q == task.queue and p > task.priority)
    if higher:
        out.append({"code": "priority", "tasks_ahead": higher,
                    "message": f"{higher} task(s) of a higher priority are ahead of it"})
    if held is None:
        turn = _turn(state, task)
        if turn is not None:
            out.append(turn)
    why_not = no_runner(state, task.name, task.queue)
    if why_not is not None:
        out.append({"code": "no_worker", "message": why_not})
    return out


def limits_of(state: Any, task: Task) -> list[dict[str, Any]]:
    """The limits ``task`` counts against, with their room now."""
    return [_limit(state, key) for key in state._keys_of(task)]
