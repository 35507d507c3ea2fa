"""HTTP handlers for schedules: ``/v1/schedules`` and ``/v1/schedules/{id}``.

PUT creates or updates a schedule (an identical PUT changes nothing, so
schedules declared in code can be re-applied at every deploy), GET lists or
shows them with their next fire times and last fires, DELETE removes one, and
``/pause``, ``/resume`` and ``/trigger`` (one run now) act on one. The cron
expression and time zone are checked here, at the edge (``raftq.server.cron``);
the state machine never parses them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from raftq.errors import Conflict, InvalidRequest, NotFound
from raftq.server import cron
from raftq.server import validate as v
from raftq.server.http import Handler, Request, Response, json_response
from raftq.server.schedule_timer import fire_for
from raftq.server.views import task_json, unpack
from raftq.state.commands import (
    Command,
    DeleteSchedule,
    PauseSchedule,
    PutSchedule,
    ScheduleSpec,
    TaskSpec,
)
from raftq.state.schedules import CATCHUPS, OVERLAPS, Schedule

if TYPE_CHECKING:
    from raftq.server.api import Api

SCHEDULE_ID_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,200}$")
SCHEDULE_FIELDS = frozenset({
    "task", "cron", "every_ms", "timezone", "overlap", "catchup", "catchup_window_ms",
    "jitter_ms", "start_ms", "end_ms", "paused",
})
# A schedule's task is a task spec without what each fire decides.
TASK_FIELDS = v.TASK_FIELDS - {"id", "delay_ms", "eta_ms"}
MIN_EVERY_MS = 100
NEXT_FIRES = 5


def schedule_id(request: Request) -> str:
    sid = request.match_info["id"]
    if not SCHEDULE_ID_RE.match(sid):
        raise InvalidRequest("a schedule id is 1-200 letters, digits and _.:-", field="id")
    return sid


def schedule_spec(body: Any, sid: str, *, result_ttl_ms: int,
                  max_payload: int) -> tuple[ScheduleSpec, bool | None]:
    """The spec of a PUT body and its ``paused`` (None when not given)."""
    body = v.obj(body, SCHEDULE_FIELDS)
    if "task" not in body:
        raise InvalidRequest("task is required", field="task")
    v.obj(body["task"], TASK_FIELDS, "task")
    task: TaskSpec = v.task_spec(body["task"], where="task", new_id=lambda: "",
                                 result_ttl_ms=result_ttl_ms, max_payload=max_payload)
    has_cron, has_every = body.get("cron") is not None, body.get("every_ms") is not None
    if has_cron == has_every:
        raise InvalidRequest("give cron or every_ms (exactly one)",
                             field="every_ms" if has_cron else "cron")
    timezone = v.string(body, "timezone", default="UTC", max_len=100)
    expr = ""
    if has_cron:
        expr = v.string(body, "cron", max_len=200)
    try:
        cron.zone(timezone)
        if expr:
            cron.check(expr, timezone)
    except cron.BadSchedule as exc:
        raise InvalidRequest(str(exc), field=exc.field) from None
    every = v.integer(body, "every_ms", lo=MIN_EVERY_MS, hi=366 * v.DAY_MS) if has_every else 0
    start = v.integer(body, "start_ms", default=0)
    end = v.integer(body, "end_ms", default=0)
    if end and end <= start:
        raise InvalidRequest("end_ms must be after start_ms", field="end_ms")
    paused = body.get("paused")
    if paused is not None and not isinstance(paused, bool):
        raise InvalidRequest("paused must be true or false", field="paused")
    spec = ScheduleSpec(
        id=sid, task=task, cron=expr, every_ms=every, timezone=timezone,
        overlap=_choice(body, "overlap", OVERLAPS, "skip"),
        catchup=_choice(body, "catchup", CATCHUPS, "latest"),
        catchup_window_ms=v.integer(body, "catchup_window_ms", default=3_600_000,
                                    hi=31 * v.DAY_MS),
        jitter_ms=v.integer(body, "jitter_ms", default=0, hi=v.DAY_MS),
        start_ms=start, end_ms=end,
    )
    return spec, paused


def _choice(body: dict[str, Any], key: str, choices: tuple[str, ...], default: str) -> str:
    value = body.get(key, default)
    if value not in choices:
        raise InvalidRequest(f"{key} must be one of {', '.join(choices)}", field=key)
    return str(value)


def task_template_json(task: TaskSpec) -> dict[str, Any]:
    args, kwargs = unpack(task.payload)
    out = {"name": task.name, "args": args, "kwargs": kwargs, "queue": task.queue,
           "priority": task.priority, "max_attempts": task.max_attempts,
           "timeout_ms": task.timeout_ms, "retry_backoff_ms": task.retry_backoff_ms,
           "result_ttl_ms": task.result_ttl_ms}
    if task.expires_ms:
        out["expires_ms"] = task.expires_ms
    return out


class SchedulesApi:
    def __init__(self, api: Api) -> None:
        self.api = api

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/v1/schedules", self.list_schedules),
            ("PUT", "/v1/schedules/{id}", self.put),
            ("GET", "/v1/schedules/{id}", self.get),
            ("DELETE", "/v1/schedules/{id}", self.delete),
            ("POST", "/v1/schedules/{id}/pause", self.pause),
            ("POST", "/v1/schedules/{id}/resume", self.resume),
            ("POST", "/v1/schedules/{id}/trigger", self.trigger),
        ]

    def view(self, sched: Schedule, full: bool = True) -> dict[str, Any]:
        spec, state = sched.spec, self.api.replica.state
        out: dict[str, Any] = {"id": spec.id, "task": task_template_json(spec.task)}
        out |= {"cron": spec.cron, "timezone": spec.timezone} if spec.cron else {
            "every_ms": spec.every_ms}
        out |= {
            "overlap": spec.overlap, "catchup": spec.catchup,
            "catchup_window_ms": spec.catchup_window_ms, "jitter_ms": spec.jitter_ms,
            "start_ms": spec.start_ms, "end_ms": spec.end_ms, "paused": sched.paused,
            "generation": sched.generation, "last_tick_ms": sched.cursor_ms,
            "fired": sched.fired, "skipped": sched.skipped,
            "buffered_task_id": sched.buffered.id if sched.buffered is not None else None,
            "created_ms": sched.created_ms, "updated_ms": sched.updated_ms,
        }
        if full:
            now = self.api.clock.wall_ms()
            after = max(sched.cursor_ms, now)
            out["next_fires_ms"] = [] if sched.paused else cron.next_ticks(
                spec, after, NEXT_FIRES, after + 400 * v.DAY_MS)
            out["fires"] = state.schedule_fires(sched)
        return out

    def _get(self, sid: str) -> Schedule:
        sched = self.api.replica.state.schedules.get(sid)
        if sched is None:
            raise NotFound(f"no schedule {sid}")
        return sched

    async def list_schedules(self, request: Request) -> Response:
        await self.api.maybe_barrier(request)
        schedules = self.api.replica.state.schedules.values()
        return json_response({"schedules": [self.view(s, full=False) for s in schedules]})

    async def get(self, request: Request) -> Response:
        sid = schedule_id(request)
        await self.api.maybe_barrier(request)
        return json_response({"schedule": self.view(self._get(sid))})

    async def put(self, request: Request) -> Response:
        sid = schedule_id(request)
        spec, paused = schedule_spec(self.api.body(request), sid,
                                     result_ttl_ms=self.api.config.result_ttl_ms,
                                     max_payload=self.api.config.max_payload_bytes)
        result = await self.api.propose(request, PutSchedule(spec, paused))
        out = {"schedule": self.view(self._get(sid)), "created": result["created"],
               "changed": result["changed"]}
        return json_response(out, status=201 if result["created"] else 200)

    async def delete(self, request: Request) -> Response:
        sid = schedule_id(request)
        result = await self.api.propose(request, DeleteSchedule(sid))
        if "error" in result:
            raise NotFound(f"no schedule {sid}")
        return json_response({"id": sid, "deleted": True})

    async def _pause(self, request: Request, paused: bool) -> Response:
        sid = schedule_id(request)
        result = await self.api.propose(request, PauseSchedule(sid, paused))
        if "error" in result:
            raise NotFound(f"no schedule {sid}")
        return json_response({"schedule": self.view(self._get(sid))})

    async def pause(self, request: Request) -> Response:
        return await self._pause(request, True)

    async def resume(self, request: Request) -> Response:
        return await self._pause(request, False)

    async def trigger(self, request: Request) -> Response:
        sid = schedule_id(request)
        if sid not in self.api.replica.state.schedules:
            # This node may not have applied the schedule's creation yet (a
            # client that just made it on another node): catch up first.
            await self.api.barrier()
        request_id, now = self.api.stamp(request)
        fire = fire_for(self._get(sid), now, manual=True)
        result = await self.api.replica.propose(Command(fire, request_id, now))
        if result.get("error") == "not_found":
            raise NotFound(f"no schedule {sid}")
        if "error" in result:  # changed while the trigger was on its way
            raise Conflict(f"schedule {sid} changed; trigger again ({result['message']})")
        task = self.api.replica.state.tasks.get(result["task_id"])
        return json_response({"task": task_json(task) if task is not None else
                              {"id": result["task_id"], "status": result.get("status")}},
                             status=201)
