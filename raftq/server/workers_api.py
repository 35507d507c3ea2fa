"""HTTP handlers for workers: heartbeats, the list, and control.

``POST /v1/workers/{id}/heartbeat`` is a worker's announcement and heartbeat
(the task names it runs with their decorator defaults, its figures); the node
stamps its ``worker_forget_ms`` into the command. Its answer carries the
worker's control (paused, draining, concurrency and their version), which
``POST /v1/workers/{id}/pause``, ``/resume``, ``/drain`` and ``/concurrency``
set. ``GET /v1/workers`` lists them (``raftq.state.workers``), and
``DELETE /v1/workers/{id}`` is a worker's goodbye.

Submissions by name get the registered defaults here, at the edge: a field a
submission leaves out is filled from the latest announcement of its task name
that this node has applied, and the command carries the values, so every node
applies the same task. (A submission that reaches a node before the node has
applied the first announcement of its name gets the built-in defaults.)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from raftq.errors import InvalidRequest
from raftq.server import validate as v
from raftq.server.http import Request, Response, json_response
from raftq.state.commands import Leave, TaskDef, WorkerBeat, WorkerControl
from raftq.state.model import Task
from raftq.state.workers import MAX_CONCURRENCY, no_runner, task_defaults

if TYPE_CHECKING:
    from raftq.server.api import Api

MAX_NAMES = 1000
BEAT_FIELDS = frozenset({"host", "pid", "queues", "tasks", "heartbeat_ms", "concurrency", "pool",
                         "mode", "cpu_pct", "rss_kb", "acted"})
DEF_FIELDS = frozenset({"name", "queue", "priority", "max_attempts", "timeout_ms",
                        "retry_backoff_ms"})
MODES = ("running", "paused", "draining")
POOL_RE = re.compile(r"^[a-z]{1,20}$")


def task_names(body: dict[str, Any], key: str = "names") -> list[str] | None:
    """A claim's task names (None when absent: any name)."""
    value = body.get(key)
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) > MAX_NAMES
            or not all(isinstance(n, str) and v.NAME_RE.match(n) for n in value)):
        raise InvalidRequest(f"{key} must be a list of at most {MAX_NAMES} task names",
                             field=key)
    return list(dict.fromkeys(value))


def task_def(body: Any, where: str) -> TaskDef:
    body = v.obj(body, DEF_FIELDS, where)

    def optional(key: str, lo: int, hi: int) -> int | None:
        return None if body.get(key) is None else v.integer(body, key, where, lo=lo, hi=hi)

    return TaskDef(
        v.string(body, "name", where, pattern=v.NAME_RE),
        v.string(body, "queue", where, default="default", pattern=v.NAME_RE),
        v.priority(body.get("priority"), f"{where}.priority"),
        optional("max_attempts", 1, 1000), optional("timeout_ms", 1, 7 * v.DAY_MS),
        optional("retry_backoff_ms", 0, v.DAY_MS))


def worker_beat(body: Any, worker_id: str, forget_ms: int) -> WorkerBeat:
    body = v.obj(body, BEAT_FIELDS)
    tasks = body.get("tasks", [])
    if not isinstance(tasks, list) or len(tasks) > MAX_NAMES:
        raise InvalidRequest(f"tasks must be a list of at most {MAX_NAMES} task definitions",
                             field="tasks")
    cpu = body.get("cpu_pct", 0)
    if isinstance(cpu, bool) or not isinstance(cpu, int | float) or not 0 <= cpu <= 1e6:
        raise InvalidRequest("cpu_pct must be a number 0-1000000", field="cpu_pct")
    mode = body.get("mode", "running")
    if mode not in MODES:
        raise InvalidRequest(f"mode must be one of {', '.join(MODES)}", field="mode")
    pool = v.string(body, "pool", default="thread", pattern=POOL_RE, max_len=20)
    return WorkerBeat(
        worker_id, str(body.get("host", ""))[:200], v.integer(body, "pid", default=0),
        v.string_list(body, "queues", ["default"]),
        [task_def(t, f"tasks[{i}]") for i, t in enumerate(tasks)],
        v.integer(body, "heartbeat_ms", default=2_000, lo=100, hi=v.DAY_MS), forget_ms,
        v.integer(body, "concurrency", default=1, lo=1, hi=MAX_CONCURRENCY), pool, mode,
        round(cpu * 10), v.integer(body, "rss_kb", default=0), v.integer(body, "acted", default=0))


class WorkersApi:
    def __init__(self, api: Api, raise_for: Callable[[Any], Any]) -> None:
        self.api = api
        self.raise_for = raise_for

    def with_defaults(self, body: Any, cache: dict[str, dict[str, Any]] | None = None) -> Any:
        """A submission's body with its task name's registered defaults for the fields it
        leaves out (anything not a body with a name passes unchanged, for validation)."""
        if type(body) is not dict:
            return body
        name = body.get("name")
        if type(name) is not str:
            return body
        if cache is None or name not in cache:
            defaults = task_defaults(self.api.replica.state, name)
            if cache is not None:
                cache[name] = defaults
        else:
            defaults = cache[name]
        return {**defaults, **body} if defaults else body

    def note(self, task: Task, view: dict[str, Any]) -> dict[str, Any]:
        """A queued task's view, with ``note`` when no live worker runs it."""
        if view.get("status") == "queued":
            why = no_runner(self.api.replica.state, task.name, task.queue)
            if why is not None:
                view["note"] = why
        return view

    async def list(self, request: Request) -> Response:
        return json_response({"workers": self.api.replica.state.workers_view()})

    async def leave(self, request: Request) -> Response:
        """A worker stopping cleanly; it stays listed while it holds leases."""
        return json_response(await self.api.propose(request, Leave(request.match_info["id"])))

    async def heartbeat(self, request: Request) -> Response:
        worker_id = request.match_info["id"]
        if not worker_id or len(worker_id) > v.MAX_ID_LEN:
            raise InvalidRequest(f"a worker id is 1-{v.MAX_ID_LEN} characters", field="id")
        beat = worker_beat(self.api.body(request), worker_id, self.api.config.worker_forget_ms)
        return json_response(self.raise_for(await self.api.propose(request, beat)))

    async def _control(self, request: Request, action: str, concurrency: int = 0) -> Response:
        cmd = WorkerControl(request.match_info["id"], action, concurrency, request.actor)
        return json_response(self.raise_for(await self.api.propose(request, cmd)))

    async def pause(self, request: Request) -> Response:
        return await self._control(request, "pause")

    async def resume(self, request: Request) -> Response:
        return await self._control(request, "resume")

    async def drain(self, request: Request) -> Response:
        return await self._control(request, "drain")

    async def concurrency(self, request: Request) -> Response:
        body = v.obj(self.api.body(request), {"concurrency"})
        n = v.integer(body, "concurrency", lo=1, hi=MAX_CONCURRENCY)
        return await self._control(request, "concurrency", n)
