"""What every group of the API's handlers stands on (``raftq.server.api.Api`` is
made of them): the node's parts they use, and the plumbing between a request
and the replica.

The body decoded once, the request's id (its ``Idempotency-Key``) and time
stamped at the edge, proposing a command, the barrier that ``?consistency=leader``
asks for, and the task as the API shows it.
"""

from __future__ import annotations

from typing import Any

from raftq.errors import InvalidRequest
from raftq.raft.replica import Replica
from raftq.server import validate as v
from raftq.server.answers import Ids, raise_for
from raftq.server.clock import Clock
from raftq.server.config import NodeConfig
from raftq.server.http import UNREAD, Request
from raftq.server.metrics import Metrics
from raftq.server.parking import Parking
from raftq.server.views import task_json
from raftq.server.workers_api import WorkersApi
from raftq.state.commands import Barrier, Body, Command


class ApiBase:
    """The parts and plumbing the handler groups share; ``Api.__init__`` sets the parts."""

    config: NodeConfig
    replica: Replica
    metrics: Metrics
    clock: Clock
    new_id: Ids
    worker_api: WorkersApi
    parking: Parking

    def body(self, request: Request) -> Any:
        """The request's JSON body, decoded once."""
        if request.data is not UNREAD:
            return request.data
        if request.content_type not in ("application/json", "", "application/octet-stream"):
            raise InvalidRequest(f"Content-Type must be application/json, not "
                                 f"{request.content_type}", field="Content-Type")
        request.data = v.json_body(request.body)
        return request.data

    raise_for = staticmethod(raise_for)

    def stamp(self, request: Request) -> tuple[str, int]:
        """The request id (the Idempotency-Key, else a new one) and the time."""
        key = request.headers.get("idempotency-key", "")
        if len(key) > 200:
            raise InvalidRequest("Idempotency-Key must be at most 200 characters",
                                 field="Idempotency-Key")
        return key or self.new_id(), self.clock.wall_ms()

    def command(self, request: Request, body: Body) -> Command:
        return Command(body, *self.stamp(request))

    async def propose(self, request: Request, body: Body) -> Any:
        return await self.replica.propose(self.command(request, body))

    def task_view(self, task_id: str) -> dict[str, Any] | None:
        state = self.replica.state
        task = state.tasks.get(task_id)
        if task is None:
            return None
        return self.worker_api.note(task, task_json(task) | state.graph_view(task_id) | {
            "progress": state.progress_view(task_id)})

    async def maybe_barrier(self, request: Request) -> None:
        consistency = request.query.get("consistency", "local")
        if consistency not in ("local", "leader"):
            raise InvalidRequest("consistency must be local or leader", field="consistency")
        if consistency == "leader":
            await self.barrier()

    async def barrier(self) -> None:
        """Return once this node has applied everything committed before now. The
        barrier has no request id: an Idempotency-Key the request carries belongs to
        the request's own command, which a barrier under it would shadow."""
        await self.replica.propose(Command(Barrier(), "", self.clock.wall_ms()))
