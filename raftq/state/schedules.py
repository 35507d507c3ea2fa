"""Schedules: the replicated table of periodic tasks, and the rule for their fires.

When a schedule is due is decided at the edge: the leader's timer
(``raftq.server.schedule_timer``) reads cron expressions, time zones and DST
with a cron library, never this module, and proposes one ``Fire`` per tick
carrying the tick's time and the task it submits (id ``{schedule_id}@{tick_ms}``).
Whether a fire happens is decided here, in the log, the same on every node:

- the tick must be later than the schedule's ``cursor_ms`` (the last tick
  decided; a new schedule starts at the wall time it was created, a resumed one
  at the wall time it was resumed), so a fire is applied once and a deposed
  leader's late or repeated proposals change nothing;
- the fire must be for the schedule's current ``generation`` (the spec it was
  computed from: a changed or re-created schedule refuses fires of the old one),
  inside ``start_ms`` / ``end_ms``, and the schedule not paused;
- the catch-up policy bounds how late a tick may be, measured by the proposing
  leader's wall clock stamped in the fire (``now_ms``): ``none`` accepts on-time
  ticks only (``ON_TIME_MS``), ``latest`` and ``all`` ticks within
  ``catchup_window_ms`` (which of the missed ticks are proposed is the edge's
  choice: the latest one, or all of them);
- the overlap policy then decides, from the status of the schedule's previous
  task: ``allow`` submits; ``skip`` skips the tick while that task is waiting or
  running; ``buffer_one`` keeps one tick to submit when it ends (ticks while one
  is kept are skipped). A skipped or buffered tick is decided all the same: the
  cursor moves past it.

A trigger (``Fire.manual``) runs the task once now, with id
``{schedule_id}@{tick_ms}:trigger``, whatever the cursor, pause and overlap.
Jitter is a delay derived from the schedule id and the tick (``jitter_ms``),
never random. As everywhere in ``raftq.state``: no clock, no I/O, no set
iteration, and ``apply`` never raises.
"""

from __future__ import annotations

import zlib
from typing import Any

from raftq.state.commands import (
    DeleteSchedule,
    Fire,
    PauseSchedule,
    PutSchedule,
    ScheduleSpec,
    TaskSpec,
)
from raftq.state.encoding import (
    schedule_spec_from_plain,
    schedule_spec_to_plain,
    spec_from_plain,
    spec_to_plain,
)
from raftq.state.indexes import LEASED, QUEUED, SCHEDULED, Result, reject
from raftq.state.tasks import Tasks

OVERLAPS = ("allow", "skip", "buffer_one")
CATCHUPS = ("latest", "all", "none")
# A tick proposed at most this late is on time (a leader's timer period, a
# commit, an election of a few seconds); a later one is a missed tick that only
# the catch-up policies latest and all fire.
ON_TIME_MS = 10_000
# The fires each schedule remembers (newest last), for GET /v1/schedules/{id}.
HISTORY = 20


def jitter_ms(schedule_id: str, tick_ms: int, max_ms: int) -> int:
    """The delay of a fire's task in [0, max_ms]: a hash of the schedule and the tick."""
    if max_ms <= 0:
        return 0
    return zlib.crc32(f"{schedule_id}@{tick_ms}".encode()) % (max_ms + 1)


def fire_task_id(schedule_id: str, tick_ms: int, manual: bool = False) -> str:
    return f"{schedule_id}@{tick_ms}" + (":trigger" if manual else "")


class Schedule:
    """One schedule as the state holds it: its spec and what its fires decided."""

    __slots__ = ("spec", "generation", "paused", "cursor_ms", "last_task_id", "buffered",
                 "history", "fired", "skipped", "created_ms", "updated_ms")

    def __init__(self, spec: ScheduleSpec, generation: int, cursor_ms: int, clock_ms: int) -> None:
        self.spec = spec
        self.generation = generation
        self.paused = False
        self.cursor_ms = cursor_ms  # ticks up to here are decided
        self.last_task_id = ""  # the task of the latest fire, for the overlap policy
        self.buffered: TaskSpec | None = None  # buffer_one: the tick kept for later
        self.history: list[list[Any]] = []  # [tick_ms, task_id, "fired"|"skipped"|...]
        self.fired = 0
        self.skipped = 0
        self.created_ms = clock_ms
        self.updated_ms = clock_ms

    def to_plain(self) -> list[Any]:
        return [
            schedule_spec_to_plain(self.spec), self.generation, self.paused, self.cursor_ms,
            self.last_task_id, None if self.buffered is None else spec_to_plain(self.buffered),
            self.history, self.fired, self.skipped, self.created_ms, self.updated_ms,
        ]

    @classmethod
    def from_plain(cls, row: list[Any]) -> Schedule:
        (spec, generation, paused, cursor_ms, last_task_id, buffered, history, fired, skipped,
         created_ms, updated_ms) = row
        s = cls(schedule_spec_from_plain(spec), generation, cursor_ms, created_ms)
        s.paused, s.last_task_id, s.history = paused, last_task_id, history
        s.buffered = None if buffered is None else spec_from_plain(buffered)
        s.fired, s.skipped, s.updated_ms = fired, skipped, updated_ms
        return s


class Schedules(Tasks):
    def __init__(self) -> None:
        super().__init__()
        self.schedules: dict[str, Schedule] = {}
        self.schedule_generation = 0  # the last generation given; never reused
        self.buffered_schedules: dict[str, None] = {}  # ids holding a buffered tick

    # --------------------------------------------------------------- the table

    def _put_schedule(self, put: PutSchedule, now_ms: int) -> Result:
        spec = put.spec
        existing = self.schedules.get(spec.id)
        if existing is None:
            self.schedule_generation += 1
            sched = Schedule(spec, self.schedule_generation, now_ms, self.clock_ms)
            sched.paused = bool(put.paused)
            self.schedules[spec.id] = sched
            return {"id": spec.id, "created": True, "changed": True}
        changed = existing.spec != spec
        if changed:
            self.schedule_generation += 1
            existing.spec, existing.generation = spec, self.schedule_generation
            self._unbuffer(existing)
        if put.paused is not None and put.paused != existing.paused:
            self._set_paused(existing, put.paused, now_ms)
            changed = True
        if changed:
            existing.updated_ms = self.clock_ms
        return {"id": spec.id, "created": False, "changed": changed}

    def _delete_schedule(self, cmd: DeleteSchedule) -> Result:
        sched = self.schedules.pop(cmd.id, None)
        if sched is None:
            return reject("not_found", f"no schedule {cmd.id}")
        self.buffered_schedules.pop(cmd.id, None)
        return {"id": cmd.id, "deleted": True}

    def _pause_schedule(self, cmd: PauseSchedule, now_ms: int) -> Result:
        sched = self.schedules.get(cmd.id)
        if sched is None:
            return reject("not_found", f"no schedule {cmd.id}")
        if sched.paused != cmd.paused:
            self._set_paused(sched, cmd.paused, now_ms)
            sched.updated_ms = self.clock_ms
        return {"id": cmd.id, "paused": sched.paused}

    def _set_paused(self, sched: Schedule, paused: bool, now_ms: int) -> None:
        sched.paused = paused
        if paused:
            self._unbuffer(sched)
        else:  # ticks that fell in the pause are not caught up
            sched.cursor_ms = max(sched.cursor_ms, now_ms)

    def _unbuffer(self, sched: Schedule) -> None:
        sched.buffered = None
        self.buffered_schedules.pop(sched.spec.id, None)

    # ------------------------------------------------------------------ fires

    def _fire(self, fire: Fire, now_ms: int) -> Result:
        sched = self.schedules.get(fire.schedule_id)
        refused = self._refusal(sched, fire, now_ms)
        if refused is not None:
            return refused
        assert sched is not None
        tick, task_id = fire.tick_ms, fire.task.id
        if fire.manual:
            return self._submit_fire(sched, fire.task, tick, "triggered")
        sched.cursor_ms = tick
        if sched.spec.overlap != "allow" and self._running(sched.last_task_id):
            if sched.spec.overlap == "buffer_one" and sched.buffered is None:
                sched.buffered = fire.task
                self.buffered_schedules[sched.spec.id] = None
                return self._note_fire(sched, tick, task_id, "buffered")
            sched.skipped += 1
            return self._note_fire(sched, tick, task_id, "skipped")
        return self._submit_fire(sched, fire.task, tick, "fired")

    def _refusal(self, sched: Schedule | None, fire: Fire, now_ms: int) -> Result | None:
        sid, tick = fire.schedule_id, fire.tick_ms
        if sched is None:
            return reject("not_found", f"no schedule {sid}")
        spec = sched.spec
        if fire.generation != sched.generation:
            return reject("stale_fire", f"fire of generation {fire.generation}, schedule {sid} "
                          f"is at {sched.generation}")
        if fire.task.id != fire_task_id(sid, tick, fire.manual):
            return reject("bad_fire", f"a fire of {sid} at {tick} names task {fire.task.id}")
        if fire.manual:
            return None
        if tick <= sched.cursor_ms:
            return reject("stale_fire", f"tick {tick} of {sid} is not after {sched.cursor_ms}")
        if sched.paused:
            return reject("paused", f"schedule {sid} is paused")
        if tick < spec.start_ms or (spec.end_ms and tick > spec.end_ms):
            return reject("outside_window", f"tick {tick} is outside the schedule's start/end")
        late = now_ms - tick
        limit = ON_TIME_MS if spec.catchup == "none" else max(spec.catchup_window_ms, ON_TIME_MS)
        if late < 0 or late > limit:
            return reject("outside_window", f"tick {tick} proposed {late} ms late; "
                          f"catch-up {spec.catchup} allows 0-{limit}")
        return None

    def _running(self, task_id: str) -> bool:
        task = self.tasks.get(task_id) if task_id else None
        return task is not None and task.status in (QUEUED, SCHEDULED, LEASED)

    def _submit_fire(self, sched: Schedule, spec: TaskSpec, tick: int, what: str) -> Result:
        (outcome,) = self._submit([spec])
        sched.last_task_id = spec.id
        sched.fired += 1
        return self._note_fire(sched, tick, spec.id, what, status=outcome["status"])

    def _note_fire(self, sched: Schedule, tick: int, task_id: str, what: str,
                status: str = "") -> Result:
        sched.history.append([tick, task_id, what])
        del sched.history[:-HISTORY]
        out = {"schedule_id": sched.spec.id, "tick_ms": tick, "task_id": task_id,
               "outcome": what}
        if status:
            out["status"] = status
        return out

    def _release_buffered(self) -> bool:
        """Submit each buffered tick whose schedule's previous task has ended (on ticks);
        True if any was."""
        released = False
        for sid in list(self.buffered_schedules):
            sched = self.schedules[sid]
            if sched.buffered is not None and not self._running(sched.last_task_id):
                spec = sched.buffered
                self._unbuffer(sched)
                self._submit_fire(sched, spec, int(spec.id.rsplit("@", 1)[1]), "fired")
                released = True
        return released

    # ------------------------------------------------------------------ reads

    def schedule_fires(self, sched: Schedule) -> list[dict[str, Any]]:
        """The remembered fires, newest first, with their tasks' statuses now."""
        out = []
        for tick, task_id, what in reversed(sched.history):
            task = self.tasks.get(task_id)
            status = str(task.status) if task is not None and what != "skipped" else None
            out.append({"tick_ms": tick, "task_id": task_id, "outcome": what,
                        "task_status": status})
        return out
