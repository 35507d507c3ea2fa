"""HTTP for dependencies and workflows: thin, like ``raftq.server.api``.

``POST /v1/workflows`` takes ``{"id"?, "tasks": [{"key", ...task spec...,
"depends_on": [key or task id, ...], "on_parent_failure", "run_when",
"pass_results"}]}``, orders the tasks so every parent comes before its
children (a cycle or a repeated key is a 400 naming the keys), and proposes
one ``Linked`` entry: every task is created, or none. ``GET`` shows the
workflow (``?wait_ms`` waits for it to end), ``DELETE`` cancels what has not
started; ``GET /v1/workflows`` lists them newest first, a page at a time. The
dependency fields of a single task spec (``POST /v1/tasks`` and batches) are
split off here too (``split_deps``). The rules are the state's
(``raftq.state.workflows``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from raftq.errors import Conflict, InvalidRequest, NotFound
from raftq.server import validate as v
from raftq.server.contract import WORKFLOWS_QUERY
from raftq.server.http import Request, Response, json_response
from raftq.server.schema import query
from raftq.server.views import unpack
from raftq.state import listing
from raftq.state.commands import CancelWorkflow, Command, Deps, Linked, Submit, TaskSpec
from raftq.state.graph import ON_PARENT_FAILURE, RUN_WHEN
from raftq.state.workflows import MAX_WORKFLOW_TASKS

if TYPE_CHECKING:
    from raftq.server.api import Api

DEPS_FIELDS = frozenset({"depends_on", "on_parent_failure", "run_when", "pass_results"})
MAX_PARENTS = 10_000


def split_deps(body: Any, where: str) -> tuple[Any, Deps | None]:
    """The task spec without its dependency fields, and those as ``Deps`` (None
    when it has none). A spec with parents may not also have a delay or eta."""
    if not isinstance(body, dict) or not DEPS_FIELDS & body.keys():
        return body, None
    rest = {k: x for k, x in body.items() if k not in DEPS_FIELDS}
    deps = _deps(body, where)
    if deps.parents and ("delay_ms" in rest or "eta_ms" in rest):
        name = v._f(where, "depends_on")
        raise InvalidRequest(f"{name} cannot be combined with delay_ms or eta_ms", field=name)
    return rest, deps


def _deps(body: dict[str, Any], where: str) -> Deps:
    name = v._f(where, "depends_on")
    parents = body.get("depends_on", [])
    if (not isinstance(parents, list) or len(parents) > MAX_PARENTS
            or not all(isinstance(p, str) and 0 < len(p) <= v.MAX_ID_LEN for p in parents)):
        raise InvalidRequest(f"{name} must be a list of at most {MAX_PARENTS} task ids",
                             field=name)
    if len(set(parents)) != len(parents):
        raise InvalidRequest(f"{name} names a task twice", field=name)
    on_failure = body.get("on_parent_failure", "cancel")
    if on_failure not in ON_PARENT_FAILURE:
        field = v._f(where, "on_parent_failure")
        raise InvalidRequest(f"{field} must be one of {', '.join(ON_PARENT_FAILURE)}",
                             field=field)
    run_when = body.get("run_when", "success")
    if run_when not in RUN_WHEN:
        field = v._f(where, "run_when")
        raise InvalidRequest(f"{field} must be one of {', '.join(RUN_WHEN)}", field=field)
    pass_results = body.get("pass_results", False)
    if not isinstance(pass_results, bool):
        field = v._f(where, "pass_results")
        raise InvalidRequest(f"{field} must be true or false", field=field)
    return Deps(list(parents), on_failure, run_when, pass_results)


def linked_or_submit(specs: list[TaskSpec], deps: list[Deps | None]) -> Submit | Linked:
    """A plain ``Submit`` unless some spec has dependency fields."""
    if all(d is None for d in deps):
        return Submit(specs)
    return Linked(specs, [d or Deps([]) for d in deps])


def refused(result: Any, linked: Submit | Linked, places: list[str]) -> None:
    """Raise the 4xx for a rejection of a ``Linked`` entry; ``places[i]`` is where
    ``linked.tasks[i]`` was in the request."""
    if not (isinstance(linked, Linked) and isinstance(result, dict) and "error" in result):
        return
    code, message = result["error"], str(result.get("message", result["error"]))
    ids = [s.id for s in linked.tasks]
    place = places[ids.index(result["id"])] if result.get("id") in ids else ""
    if code == "conflict":
        raise Conflict(message, field=v._f(place, "id"))
    raise InvalidRequest(message, field=v._f(place, "depends_on"))


def order(keys: list[str], parents: list[list[str]], names: list[str] | None = None) -> list[int]:
    """Indexes of the tasks (``keys``; ``parents`` name them) with every parent before
    its children, otherwise in the order given; a cycle is a 400 naming the tasks on
    it (by ``names``, if given)."""
    index = {k: i for i, k in enumerate(keys)}
    waiting = [sum(1 for p in ps if p in index) for ps in parents]
    children: list[list[int]] = [[] for _ in keys]
    for i, ps in enumerate(parents):
        for p in ps:
            if p in index:
                children[index[p]].append(i)
    out = [i for i, n in enumerate(waiting) if n == 0]
    at = 0
    while at < len(out):
        for child in children[out[at]]:
            waiting[child] -= 1
            if waiting[child] == 0:
                out.append(child)
        at += 1
    if len(out) < len(keys):
        stuck = [(names or keys)[i] for i, n in enumerate(waiting) if n > 0]
        raise InvalidRequest(f"the dependencies of tasks {', '.join(stuck[:20])} form a cycle",
                             field="tasks")
    return out


class WorkflowsApi:
    def __init__(self, api: Api) -> None:
        self.api = api

    def parse(self, body: Any) -> tuple[str, Linked, list[str]]:
        """The ``Linked`` command of a workflow body, and each task's place in it."""
        api = self.api
        body = v.obj(body, {"id", "tasks"})
        wid = v.string(body, "id", default=api.new_id(), pattern=v.NAME_RE)
        rows = body.get("tasks")
        if not isinstance(rows, list) or not 0 < len(rows) <= MAX_WORKFLOW_TASKS:
            raise InvalidRequest(f"tasks must be a list of 1-{MAX_WORKFLOW_TASKS} task specs",
                                 field="tasks")
        keys: list[str] = []
        specs: list[TaskSpec] = []
        deps: list[Deps] = []
        for i, row in enumerate(rows):
            where = f"tasks[{i}]"
            if not isinstance(row, dict):
                raise InvalidRequest(f"{where} must be a JSON object", field=where)
            keys.append(v.string(row, "key", where))
            rest, dep = split_deps({k: x for k, x in row.items() if k != "key"}, where)
            specs.append(api.spec(rest, where))
            deps.append(dep or Deps([]))
        first: dict[str, int] = {}
        for i, key in enumerate(keys):
            if first.setdefault(key, i) != i:
                raise InvalidRequest(f"tasks[{i}].key {key!r} is used by tasks[{first[key]}] too",
                                     field=f"tasks[{i}].key")
        if len({s.id for s in specs}) != len(specs):
            raise InvalidRequest("task ids in a workflow must be unique", field="tasks")
        id_of = {k: s.id for k, s in zip(keys, specs, strict=True)}
        for dep in deps:  # a key names a task of this workflow; anything else, a task id
            dep.parents = [id_of.get(p, p) for p in dep.parents]
        at = order([s.id for s in specs], [d.parents for d in deps], keys)
        places = [f"tasks[{i}]" for i in at]
        tasks, ours = api.replica.state.tasks, set(id_of.values())
        for i, dep in enumerate(deps):
            for parent in dep.parents:
                if parent not in ours and parent not in tasks:  # apply decides; this
                    raise InvalidRequest(  # is the quick answer
                        f"tasks[{i}].depends_on names {parent!r}: no key of this workflow "
                        "and no task", field=f"tasks[{i}].depends_on")
        linked = Linked([specs[i] for i in at], [deps[i] for i in at], wid,
                        [keys[i] for i in at])
        return wid, linked, places

    async def create(self, request: Request) -> Response:
        api = self.api
        request_id, stamp = api.stamp(request)
        wid, linked, places = self.parse(api.body(request))
        result = await api.replica.propose(Command(linked, request_id, stamp))
        refused(result, linked, places)
        api.metrics.submitted(len(linked.tasks) if result.get("created") else 0)
        view = self.view(wid)
        return json_response({"workflow": view, "created": bool(result.get("created"))},
                             status=201 if result.get("created") else 200)

    def view(self, wid: str) -> dict[str, Any]:
        state = self.api.replica.state
        flow = state.flows.get(wid)
        if flow is None:
            raise NotFound(f"no workflow {wid}")
        tasks = []
        for i, task_id in enumerate(flow.ids):
            task = state.tasks.get(task_id)
            link = state.links.get(task_id)
            row: dict[str, Any] = {
                "key": flow.keys[i] if i < len(flow.keys) else task_id,
                "id": task_id,
                "status": "gone" if task is None else str(task.status),
            }
            if task is not None:
                row["name"] = task.name
                row["result"] = unpack(task.result)
                row["error"] = task.errors[-1][2] if task.errors else None
            if link is not None:
                row["depends_on"] = list(link.parents)
                row["run_when"] = link.run_when
                row["on_parent_failure"] = link.on_parent_failure
                row["pass_results"] = link.pass_results
            tasks.append(row)
        return {"id": wid, "status": state.workflow_status(wid), "created_ms": flow.created_ms,
                "tasks": tasks}

    async def list_workflows(self, request: Request) -> Response:
        """Workflows newest first, a page at a time: ``next_cursor`` asks for the next."""
        q = query(WORKFLOWS_QUERY, request.query)
        await self.api.maybe_barrier(request)
        state = self.api.replica.state
        try:
            ids, next_cursor = listing.workflow_page(
                state, status=q.get("status"), limit=q.get("limit", 100), cursor=q.get("cursor"))
        except listing.BadCursor:
            raise InvalidRequest("cursor must be the next_cursor of an earlier page",
                                 field="cursor") from None
        rows = [{"id": wid, "status": state.workflow_status(wid),
                 "created_ms": state.flows[wid].created_ms, "tasks": len(state.flows[wid].ids),
                 "open": state.flows[wid].open} for wid in ids]
        return json_response({"workflows": rows, "next_cursor": next_cursor})

    async def show(self, request: Request) -> Response:
        api, wid = self.api, request.match_info["id"]
        wait = v.wait_ms(request.query.get("wait_ms"))
        await api.maybe_barrier(request)
        deadline = time.monotonic() + wait / 1000
        while True:
            remaining = deadline - time.monotonic()
            flow = api.replica.state.flows.get(wid)
            if flow is None and remaining <= 0:
                raise NotFound(f"no workflow {wid}")
            if flow is not None and (flow.open == 0 or remaining <= 0):
                return json_response({"workflow": self.view(wid)})
            await api.replica.wait_changed(remaining)

    async def cancel(self, request: Request) -> Response:
        wid = request.match_info["id"]
        result = await self.api.propose(request, CancelWorkflow(wid, request.actor))
        if isinstance(result, dict) and result.get("error") == "not_found":
            raise NotFound(str(result.get("message")))
        return json_response({"workflow": self.view(wid), "cancelled": result["cancelled"]})
