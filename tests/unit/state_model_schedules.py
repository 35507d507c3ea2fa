"""The reference model of schedules and fires, for the stateful test (a mixin of
``state_model.Model``): the acceptance rule of ``raftq.state.schedules`` written
as plainly as possible."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from raftq.state import commands as c
from raftq.state.model import Status
from raftq.state.schedules import ON_TIME_MS

RUNNING = (Status.QUEUED, Status.SCHEDULED, Status.LEASED)


@dataclass
class ModelSchedule:
    spec: c.ScheduleSpec
    generation: int
    cursor_ms: int
    paused: bool = False
    last_task_id: str = ""
    buffered: c.TaskSpec | None = None
    fired: int = 0
    skipped: int = 0
    history: list[list[Any]] = field(default_factory=list)


class ScheduleModel:
    tasks: dict[str, Any]

    def __init__(self) -> None:
        self.schedules: dict[str, ModelSchedule] = {}
        self.generations = 0
        self.buffered_ids: dict[str, None] = {}  # in the order their ticks were buffered

    def submit_all(self, specs: list[c.TaskSpec]) -> Any:
        raise NotImplementedError

    def apply_schedule(self, body: Any, now_ms: int) -> Any:
        if isinstance(body, c.PutSchedule):
            return self.put(body, now_ms)
        if isinstance(body, c.DeleteSchedule):
            if self.schedules.pop(body.id, None) is None:
                return {"error": "not_found"}
            self.buffered_ids.pop(body.id, None)
            return {"id": body.id, "deleted": True}
        if isinstance(body, c.PauseSchedule):
            sched = self.schedules.get(body.id)
            if sched is None:
                return {"error": "not_found"}
            self.set_paused(sched, body.paused, now_ms)
            return {"id": body.id, "paused": sched.paused}
        assert isinstance(body, c.Fire)
        return self.fire(body, now_ms)

    def put(self, put: c.PutSchedule, now_ms: int) -> Any:
        old = self.schedules.get(put.spec.id)
        if old is None:
            self.generations += 1
            self.schedules[put.spec.id] = ModelSchedule(put.spec, self.generations, now_ms,
                                                        paused=bool(put.paused))
            return {"id": put.spec.id, "created": True, "changed": True}
        changed = old.spec != put.spec
        if changed:
            self.generations += 1
            old.spec, old.generation = put.spec, self.generations
            self.unbuffer(old)
        if put.paused is not None and put.paused != old.paused:
            self.set_paused(old, put.paused, now_ms)
            changed = True
        return {"id": put.spec.id, "created": False, "changed": changed}

    def set_paused(self, sched: ModelSchedule, paused: bool, now_ms: int) -> None:
        if paused == sched.paused:
            return
        sched.paused = paused
        if paused:
            self.unbuffer(sched)
        else:
            sched.cursor_ms = max(sched.cursor_ms, now_ms)

    def unbuffer(self, sched: ModelSchedule) -> None:
        sched.buffered = None
        self.buffered_ids.pop(sched.spec.id, None)

    def task_running(self, task_id: str) -> bool:
        task = self.tasks.get(task_id)
        return task is not None and task.status in RUNNING

    def fire(self, fire: c.Fire, now_ms: int) -> Any:
        sched = self.schedules.get(fire.schedule_id)
        if sched is None:
            return {"error": "not_found"}
        if fire.generation != sched.generation:
            return {"error": "stale_fire"}
        suffix = ":trigger" if fire.manual else ""
        if fire.task.id != f"{fire.schedule_id}@{fire.tick_ms}{suffix}":
            return {"error": "bad_fire"}
        out = {"schedule_id": fire.schedule_id, "tick_ms": fire.tick_ms,
               "task_id": fire.task.id}
        if fire.manual:
            return {**out, **self.submit_fire(sched, fire.task, "triggered")}
        spec = sched.spec
        if fire.tick_ms <= sched.cursor_ms:
            return {"error": "stale_fire"}
        if sched.paused:
            return {"error": "paused"}
        if fire.tick_ms < spec.start_ms or (spec.end_ms and fire.tick_ms > spec.end_ms):
            return {"error": "outside_window"}
        limit = ON_TIME_MS if spec.catchup == "none" else max(spec.catchup_window_ms, ON_TIME_MS)
        if not 0 <= now_ms - fire.tick_ms <= limit:
            return {"error": "outside_window"}
        sched.cursor_ms = fire.tick_ms
        if spec.overlap != "allow" and self.task_running(sched.last_task_id):
            if spec.overlap == "buffer_one" and sched.buffered is None:
                sched.buffered = fire.task
                self.buffered_ids[sched.spec.id] = None
                sched.history.append([fire.tick_ms, fire.task.id, "buffered"])
                return {**out, "outcome": "buffered"}
            sched.skipped += 1
            sched.history.append([fire.tick_ms, fire.task.id, "skipped"])
            return {**out, "outcome": "skipped"}
        return {**out, **self.submit_fire(sched, fire.task, "fired")}

    def submit_fire(self, sched: ModelSchedule, task: c.TaskSpec, what: str) -> Any:
        (result,) = self.submit_all([task])
        sched.last_task_id = task.id
        sched.fired += 1
        sched.history.append([int(task.id.split("@")[1].split(":")[0]), task.id, what])
        return {"outcome": what, "status": result["status"]}

    def advance(self) -> None:
        raise NotImplementedError

    def release_buffered(self) -> None:
        released = False
        for sid in list(self.buffered_ids):
            sched = self.schedules[sid]
            if sched.buffered is not None and not self.task_running(sched.last_task_id):
                task = sched.buffered
                self.unbuffer(sched)
                self.submit_fire(sched, task, "fired")
                released = True
        if released:
            self.advance()
