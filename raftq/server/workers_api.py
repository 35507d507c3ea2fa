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

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from raftq.errors import InvalidRequest
from raftq.server import validate as v
from raftq.server.contract import HEARTBEAT
from raftq.server.http import Request, Response, json_response
from raftq.state.commands import Leave, TaskDef, WorkerBeat, WorkerControl
from raftq.state.model import Task
from raftq.state.workers import no_runner, task_defaults

if TYPE_CHECKING:
    from raftq.server.api import Api

MAX_NAMES = 1000


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


def task_def(d: dict[str, Any]) -> TaskDef:
    """A task definition that ``contract.TASK_DEF`` checked."""
    return TaskDef(d["name"], d["queue"], v.priority(d["priority"]), d.get("max_attempts"),
                   d.get("timeout_ms"), d.get("retry_backoff_ms"))


def worker_beat(body: Any, worker_id: str, forget_ms: int) -> WorkerBeat:
    """The command of a heartbeat body, checked by ``contract.HEARTBEAT`` (which
    ``GET /openapi.json`` describes): a 400 names the field at fault."""
    b = HEARTBEAT.check(body, "")
    return WorkerBeat(
        worker_id, b["host"][:200], b["pid"], list(dict.fromkeys(b["queues"])),
        [task_def(t) for t in b["tasks"]], b["heartbeat_ms"], forget_ms, b["concurrency"],
        b["pool"], b["mode"], round(b["cpu_pct"] * 10), b["rss_kb"], b["acted"])


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
        # The route checked the body with contract.POOL_SIZE.
        return await self._control(request, "concurrency", self.api.body(request)["concurrency"])
