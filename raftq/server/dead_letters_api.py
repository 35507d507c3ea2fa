"""Handlers of dead letters (list, requeue, purge one or all) and of running a
waiting retry now."""

from __future__ import annotations

from raftq.errors import InvalidRequest
from raftq.server import validate as v
from raftq.server.answers import raise_for
from raftq.server.api_base import ApiBase
from raftq.server.http import Request, Response, json_response
from raftq.server.views import task_json
from raftq.state.commands import Purge, Requeue, RetryNow
from raftq.state.model import Status


class DeadLettersApi(ApiBase):
    async def dead_letters(self, request: Request) -> Response:
        limit = v.wait_ms(request.query.get("limit", "100"), "limit")
        if not 1 <= limit <= 1000:
            raise InvalidRequest("limit must be 1-1000", field="limit")
        await self.maybe_barrier(request)
        state = self.replica.state
        ids = state.list_ids(Status.DEAD, request.query.get("queue"), limit)
        tasks = [task_json(state.tasks[i]) for i in ids]
        return json_response({"tasks": tasks})

    async def requeue(self, request: Request) -> Response:
        task_id = request.match_info["id"]
        raise_for(await self.propose(request, Requeue(task_id, request.actor)))
        return json_response({"task": self.task_view(task_id)})

    async def retry_now(self, request: Request) -> Response:
        task_id = request.match_info["id"]
        raise_for(await self.propose(request, RetryNow(task_id, request.actor)))
        return json_response({"task": self.task_view(task_id)})

    async def purge_one(self, request: Request) -> Response:
        task_id = request.match_info["id"]
        raise_for(await self.propose(request, Purge(task_id, None, request.actor)))
        return json_response({"id": task_id, "purged": 1})

    async def purge_all(self, request: Request) -> Response:
        purge = Purge(None, request.query.get("queue"), request.actor)
        result = raise_for(await self.propose(request, purge))
        return json_response({"purged": result["purged"]})
