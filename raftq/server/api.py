"""HTTP handlers: parse and validate, stamp the command, propose, map errors.

Handlers hold no queue logic. Writes are proposed through the local replica
(PySyncObj forwards a follower's command to the leader); reads come from the
local replica unless ``?consistency=leader`` asks to commit a barrier first.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from raftq.errors import (
    InvalidRequest,
    NotFound,
    RaftqError,
)
from raftq.raft.replica import Replica
from raftq.server import validate as v
from raftq.server.answers import Ids as Ids
from raftq.server.answers import error_response as error_response
from raftq.server.answers import raise_for as raise_for
from raftq.server.auth import ROUTES, Auth, RouteSpec, roles_of
from raftq.server.clock import Clock
from raftq.server.config import NodeConfig
from raftq.server.console import Console
from raftq.server.events import EventLog, EventsApi
from raftq.server.flow_api import FlowApi
from raftq.server.http import UNREAD, Handler, Request, Response, json_response
from raftq.server.keys import KeysApi
from raftq.server.members_api import MembersApi
from raftq.server.metrics import Metrics
from raftq.server.openapi import OpenApi
from raftq.server.parking import Parking
from raftq.server.progress_api import ProgressApi
from raftq.server.schedules_api import SchedulesApi
from raftq.server.schema import query
from raftq.server.status import StatusApi
from raftq.server.views import claimed_json, task_json
from raftq.server.workers_api import WorkersApi, task_names
from raftq.server.workflows_api import WorkflowsApi, linked_or_submit, refused, split_deps
from raftq.state import listing
from raftq.state.commands import (
    Barrier,
    Body,
    Cancel,
    Claim,
    Command,
    Extend,
    Finish,
    Purge,
    Release,
    Requeue,
    RetryNow,
)
from raftq.state.model import TERMINAL, Status
from raftq.state.workers import unrun

log = logging.getLogger(__name__)
Route = tuple[str, str, Handler]

class Api:
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

    def body(self, request: Request) -> Any:
        """The request's JSON body, decoded once."""
        if request.data is not UNREAD:
            return request.data
        if request.content_type not in ("application/json", "", "application/octet-stream"):
            raise InvalidRequest(f"Content-Type must be application/json, not "
                                 f"{request.content_type}", field="Content-Type")
        request.data = v.json_body(request.body)
        return request.data

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

    # -------------------------------------------------------------- tasks

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

    # ------------------------------------------------------------ workers

    async def claim(self, request: Request) -> Response:
        body = v.obj(self.body(request), {"worker_id", "queues", "max", "lease_ms", "wait_ms",
                                          "host", "pid", "steal_from", "names"})
        worker_id = v.string(body, "worker_id")
        queues = v.string_list(body, "queues", ["default"])
        steal = v.string_list(body, "steal_from", []) if body.get("steal_from") else []
        names = task_names(body)
        claim = Claim(worker_id, queues, v.integer(body, "max", default=1, lo=1, hi=v.MAX_CLAIM),
                      v.lease_ms(body), str(body.get("host", ""))[:200],
                      v.integer(body, "pid", default=0), steal, names)
        deadline = time.monotonic() + v.wait_ms(body.get("wait_ms")) / 1000
        # Each proposal of this long-poll gets its own request id derived from
        # the request's: a repeat of the request replays the same sequence,
        # and a second proposal is not mistaken for a repeat of the first.
        base, _ = self.stamp(request)
        attempt = 0
        while True:
            if request.gone:
                return json_response({"tasks": []})  # nobody to hand leases to
            remaining = deadline - time.monotonic()
            ready = self.replica.state.claimable(queues + steal, names)
            if ready or remaining <= 0:
                attempt += 1
                cmd = Command(claim, f"{base}:{attempt}", self.clock.wall_ms())
                result = raise_for(await self.replica.propose(cmd))
            else:
                # Wait, parked: a submit to one of our queues through this
                # node takes the claim along in its entry (raftq.server.parking).
                parked = self.parking.park(claim, f"{base}:{attempt + 1}",
                                           lambda: request.gone)
                try:
                    await self.replica.wait_changed(min(remaining, 1.0))
                finally:
                    self.parking.leave(parked)
                if parked.future is None:
                    continue
                attempt += 1
                result = raise_for(await parked.future)
            if result["tasks"] or deadline - time.monotonic() <= 0:
                break
        leases = [(t["id"], t["lease_token"]) for t in result["tasks"]]
        if leases and request.gone:
            # The worker left while its claim was in flight: hand the tasks back
            # now rather than leaving them leased until the lease expires.
            await self.propose(request, Release(worker_id, leases))
            return json_response({"tasks": []})
        state = self.replica.state
        tasks = state.tasks
        out = [claimed_json(tasks[t["id"]], t, state.parent_results(t["id"]))
               for t in result["tasks"] if t["id"] in tasks]
        self.metrics.claimed(len(out))
        return json_response({"tasks": out})

    async def extend(self, request: Request) -> Response:
        body = v.obj(self.body(request), {"worker_id", "leases", "lease_ms"})
        cmd = Extend(v.string(body, "worker_id"), v.leases(body), v.lease_ms(body))
        return json_response(raise_for(await self.propose(request, cmd)))

    async def release(self, request: Request) -> Response:
        body = v.obj(self.body(request), {"worker_id", "leases"})
        cmd = Release(v.string(body, "worker_id"), v.leases(body))
        return json_response(raise_for(await self.propose(request, cmd)))

    async def finish_one(self, request: Request, failed: bool) -> Response:
        task_id = request.match_info["id"]
        body = self.body(request)
        if isinstance(body, dict) and failed and "error" not in body:
            raise InvalidRequest("error is required", field="error")
        if isinstance(body, dict) and not failed and "error" in body:
            raise InvalidRequest("unknown field 'error' (use /fail)", field="error")
        outcome = v.outcome(body, "", self.config.max_payload_bytes, task_id)
        (result,) = await self.propose(request, Finish("", [outcome]))
        raise_for(result)
        self.metrics.finished(result["status"])
        return json_response({"task": self.task_view(task_id)})

    async def complete(self, request: Request) -> Response:
        return await self.finish_one(request, failed=False)

    async def fail(self, request: Request) -> Response:
        return await self.finish_one(request, failed=True)

    async def completions(self, request: Request) -> Response:
        body = v.obj(self.body(request), {"worker_id", "items"})
        items = body.get("items")
        if not isinstance(items, list) or not 0 < len(items) <= v.MAX_CLAIM:
            raise InvalidRequest(f"items must be a list of 1-{v.MAX_CLAIM}", field="items")
        outcomes = [v.outcome(it, f"items[{i}]", self.config.max_payload_bytes)
                    for i, it in enumerate(items)]
        worker_id = v.string(body, "worker_id", default="") if body.get("worker_id") else ""
        results = raise_for(await self.propose(request, Finish(worker_id, outcomes)))
        out = []
        for r in results:
            if "error" in r:
                out.append({"id": r.get("id"), "ok": False, "code": r["error"],
                            "message": r.get("message", "")})
            else:
                self.metrics.finished(r["status"])
                out.append({"id": r["id"], "ok": True, "status": r["status"]})
        return json_response({"results": out})

    # ------------------------------------------------------- dead letters

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

    # ------------------------------------------------------------- queues

    async def queues(self, request: Request) -> Response:
        await self.maybe_barrier(request)
        state = self.replica.state
        depths = state.depths()
        for queue, name, n in unrun(state):
            depths[queue].setdefault("no_worker", {})[name] = n
        return json_response({"queues": depths})
