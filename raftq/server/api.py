"""The node's HTTP API: the routes, each behind its key and contract checks,
and the middleware that maps errors to answers.

``Api`` is made of the handler groups: tasks (``raftq.server.tasks_api``), what
workers do with them (``raftq.server.claims_api``) and dead letters
(``raftq.server.dead_letters_api``), on the plumbing they share
(``raftq.server.api_base``), and holds the other APIs (keys, workflows,
schedules, members, flow, workers, events, status) as parts.

Handlers hold no queue logic. Writes are proposed through the local replica
(PySyncObj forwards a follower's command to the leader); reads come from the
local replica unless ``?consistency=leader`` asks to commit a barrier first.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from raftq.errors import RaftqError
from raftq.raft.replica import Replica
from raftq.server.answers import Ids as Ids
from raftq.server.answers import error_response as error_response
from raftq.server.answers import raise_for as raise_for
from raftq.server.auth import ROUTES, Auth, RouteSpec, roles_of
from raftq.server.claims_api import ClaimsApi
from raftq.server.clock import Clock
from raftq.server.config import NodeConfig
from raftq.server.console import Console
from raftq.server.dead_letters_api import DeadLettersApi
from raftq.server.events import EventLog, EventsApi
from raftq.server.flow_api import FlowApi
from raftq.server.http import Handler, Request, Response, json_response
from raftq.server.keys import KeysApi
from raftq.server.members_api import MembersApi
from raftq.server.metrics import Metrics
from raftq.server.openapi import OpenApi
from raftq.server.parking import Parking
from raftq.server.progress_api import ProgressApi
from raftq.server.schedules_api import SchedulesApi
from raftq.server.schema import query
from raftq.server.status import StatusApi
from raftq.server.tasks_api import TasksApi
from raftq.server.workers_api import WorkersApi
from raftq.server.workflows_api import WorkflowsApi

log = logging.getLogger(__name__)
Route = tuple[str, str, Handler]


class Api(TasksApi, ClaimsApi, DeadLettersApi):
    def __init__(self, config: NodeConfig, replica: Replica, metrics: Metrics, *,
                 clock: Clock | None = None) -> None:
        self.config = config
        self.replica = replica
        self.metrics = metrics
        self.clock = clock or Clock()
        self.new_id = Ids()
        self.status = StatusApi(config, replica, metrics)
        self.auth = Auth(config, replica)
        self.keys = KeysApi(replica, self.body, self.propose, raise_for)
        self.console = Console(config, self.auth)
        self.workflows = WorkflowsApi(self)
        self.parking = Parking(replica.add_to_next_entry, self.clock.wall_ms)
        replica.before_flush = self.parking.before_flush
        self.schedules = SchedulesApi(self)
        self.members = MembersApi(self)
        self.flow = FlowApi(self)
        self.event_log = EventLog(config.event_history)
        replica.on_changes = self.event_log.record
        replica.on_restored = self.event_log.restored
        self.events = EventsApi(self.event_log)
        self.worker_api = WorkersApi(self, raise_for)
        self.progress = ProgressApi(self)
        self.openapi = OpenApi(config)

    # ------------------------------------------------------------ plumbing

    def routes(self) -> list[Route]:
        """The routes of ``raftq.server.auth.ROUTES``, each behind its key check."""
        routes = []
        for spec in ROUTES:
            owner: Any = self
            for name in spec.handler.split("."):
                owner = getattr(owner, name)
            routes.append((spec.method, spec.path,
                           self.auth.guard(roles_of(spec, self.config),
                                           self.checked(spec, owner))))
        return routes

    def checked(self, spec: RouteSpec, handler: Handler) -> Handler:
        """``handler``, run once the request's query and body fit the route's contract."""
        body = spec.body if spec.check_body else None
        if spec.query is None and body is None:
            return handler
        params = spec.query

        async def run(request: Request) -> Response:
            if params is not None:
                query(params, request.query)
            if body is not None:
                body.check(self.body(request), "")
            return await handler(request)

        return run

    async def middleware(self, request: Request, handler: Handler) -> Response:
        started = time.perf_counter()
        try:
            response = await handler(request)
        except RaftqError as exc:
            response = error_response(exc)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            response = json_response(
                {"error": {"code": "internal", "message": "internal error; see the node log"}},
                status=500)
        self.metrics.observe_request(request.method, request.route, response.status,
                                     time.perf_counter() - started)
        # Clients learn the membership when this changes (raftq.client.failover).
        epoch = self.replica.state.member_epoch
        if epoch:
            response.headers = {**(response.headers or {}), "X-Raftq-Members": str(epoch)}
        return response
