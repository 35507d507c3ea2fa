"""Handlers of tasks: submit (one, or a batch), read (long-poll), list, cancel;
and the queues' counts. Thin: validate, build the command, propose, answer."""

from __future__ import annotations

import time
from typing import Any

from raftq.errors import InvalidRequest, NotFound
from raftq.server import validate as v
from raftq.server.answers import raise_for
from raftq.server.api_base import ApiBase
from raftq.server.http import Request, Response, json_response
from raftq.server.views import task_json
from raftq.server.workflows_api import linked_or_submit, refused, split_deps
from raftq.state import listing
from raftq.state.commands import Cancel, Command
from raftq.state.model import TERMINAL
from raftq.state.workers import unrun


class TasksApi(ApiBase):
    def spec(self, body: Any, where: str) -> Any:
        body = self.worker_api.with_defaults(body)
        return v.task_spec(body, where=where, new_id=self.new_id,
                           result_ttl_ms=self.config.result_ttl_ms,
                           max_payload=self.config.max_payload_bytes)

    def submitted(self, outcome: dict[str, Any]) -> dict[str, Any]:
        task = self.task_view(outcome["id"])
        if task is None:  # dropped by its result TTL in the meantime
            task = {"id": outcome["id"], "status": outcome["status"]}
        return {"task": task, "created": outcome["created"]}

    async def submit(self, request: Request) -> Response:
        request_id, stamp = self.stamp(request)
        body, deps = split_deps(self.body(request), "")
        cmd = linked_or_submit([self.spec(body, "")], [deps])
        result = await self.replica.propose(Command(cmd, request_id, stamp))
        refused(result, cmd, [""])
        (outcome,) = raise_for(result)
        self.metrics.submitted(1 if outcome["created"] else 0)
        return json_response(self.submitted(outcome), status=201 if outcome["created"] else 200)

    async def submit_batch(self, request: Request) -> Response:
        body = v.obj(self.body(request), {"tasks"})
        tasks = body.get("tasks")
        if not isinstance(tasks, list) or not 0 < len(tasks) <= v.MAX_BATCH:
            raise InvalidRequest(f"tasks must be a list of 1-{v.MAX_BATCH} task specs",
                                 field="tasks")
        request_id, stamp = self.stamp(request)
        split = [split_deps(t, f"tasks[{i}]") for i, t in enumerate(tasks)]
        cache: dict[str, dict[str, Any]] = {}
        specs = v.task_specs([self.worker_api.with_defaults(t, cache) for t, _ in split],
                             new_id=self.new_id,
                             result_ttl_ms=self.config.result_ttl_ms,
                             max_payload=self.config.max_payload_bytes)
        cmd = linked_or_submit(specs, [d for _, d in split])
        result = await self.replica.propose(Command(cmd, request_id, stamp))
        refused(result, cmd, [f"tasks[{i}]" for i in range(len(specs))])
        outcomes = raise_for(result)
        self.metrics.submitted(sum(1 for o in outcomes if o["created"]))
        return json_response({"results": outcomes})

    async def get_task(self, request: Request) -> Response:
        task_id = request.match_info["id"]
        wait = v.wait_ms(request.query.get("wait_ms"))
        await self.maybe_barrier(request)
        deadline = time.monotonic() + wait / 1000
        while True:
            task = self.task_view(task_id)
            remaining = deadline - time.monotonic()
            if task is None and remaining <= 0:
                raise NotFound(f"no task {task_id}")
            if task is not None and (task["status"] in TERMINAL or remaining <= 0):
                return json_response({"task": task})
            await self.replica.wait_changed(remaining)

    async def list_tasks(self, request: Request) -> Response:
        """Tasks newest first, a page at a time: ``next_cursor`` asks for the next."""
        query = v.list_query(request.query)
        await self.maybe_barrier(request)
        state = self.replica.state
        ids, next_cursor = listing.page(state, **query)
        tasks = [self.worker_api.note(state.tasks[i], task_json(state.tasks[i])) for i in ids]
        return json_response({"tasks": tasks, "next_cursor": next_cursor})

    async def cancel(self, request: Request) -> Response:
        task_id = request.match_info["id"]
        raise_for(await self.propose(request, Cancel(task_id, request.actor)))
        return json_response({"task": self.task_view(task_id)})

    async def queues(self, request: Request) -> Response:
        await self.maybe_barrier(request)
        state = self.replica.state
        depths = state.depths()
        for queue, name, n in unrun(state):
            depths[queue].setdefault("no_worker", {})[name] = n
        return json_response({"queues": depths})
