"""Who may call what: the route table with each route's roles, and the key check.

A request presents an API key as ``Authorization: Bearer <key>``. The node
hashes it (SHA-256; keys are high-entropy random tokens, so a slow hash buys
nothing) and looks the hash up in the replicated key table; the stored hash
is compared with ``hmac.compare_digest``. Only hashes enter commands and the
state. The lookup's timing depends on the hash of what the caller sent,
which tells the caller nothing about any key.

``ROUTES`` is the one table of the API: each route's method, path, handler
and the roles allowed to call it (``OPEN``: no key needed). The node's router
is built from it, and the access tests are generated from it.

Nodes ask each other for their status (``raftq cluster-status`` asks one
node, which asks the others) with a token derived from the cluster secret,
which has the reader role.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from raftq.errors import Forbidden, NoLeader, Unauthorized, Unavailable
from raftq.raft.replica import Replica
from raftq.server import contract as c
from raftq.server.config import NodeConfig
from raftq.server.http import Handler, Request, Response
from raftq.server.schema import Int, Param, Schema, Str

ADMIN = frozenset({"admin"})
PRODUCE = frozenset({"producer", "admin"})
WORK = frozenset({"worker", "admin"})
READ = frozenset({"reader", "producer", "worker", "admin"})
OPEN: frozenset[str] = frozenset()

NODE_ACTOR = "node"


@dataclass(frozen=True, slots=True)
class RouteSpec:
    method: str
    path: str
    handler: str  # an attribute of the Api ("status.node": of its StatusApi)
    roles: frozenset[str]
    summary: str = ""
    # What it takes and answers (raftq.server.contract): checked before the handler
    # runs (a body only when ``check_body``; the submissions' task specs are checked
    # by raftq.server.task_specs' fast path with the same declarations, a heartbeat by
    # its handler, which builds the command from the checked body) and
    # described by GET /openapi.json.
    body: Schema | None = None
    query: tuple[Param, ...] | None = None  # None: no parameters are looked at
    reply: Schema | None = None
    status: int = 200
    check_body: bool = True
    content: str = "application/json"


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("POST", "/v1/tasks", "submit", PRODUCE, "Submit a task",
              c.TASK_WITH_DEPS, reply=c.SUBMITTED, status=201, check_body=False),
    RouteSpec("POST", "/v1/tasks/batch", "submit_batch", PRODUCE, "Submit up to 1,000 tasks",
              c.BATCH, reply=c.RESULTS, check_body=False),
    RouteSpec("GET", "/v1/tasks", "list_tasks", READ, "Tasks, newest first, a page at a time",
              query=c.LIST_QUERY, reply=c.TASK_PAGE),
    RouteSpec("GET", "/v1/tasks/{id}", "get_task", READ, "One task (long-poll: wait_ms)",
              query=(c.WAIT, c.CONSISTENCY), reply=c.ONE_TASK),
    RouteSpec("GET", "/v1/tasks/{id}/explain", "flow.explain", READ,
              "Why a task waits", query=(c.CONSISTENCY,), reply=c.ANY_OBJECT),
    RouteSpec("DELETE", "/v1/tasks/{id}", "cancel", PRODUCE, "Cancel a task that has not "
              "started", reply=c.ONE_TASK),
    RouteSpec("POST", "/v1/tasks/{id}/retry-now", "retry_now", ADMIN,
              "Make a task waiting out its retry backoff due now", reply=c.ONE_TASK),
    RouteSpec("POST", "/v1/tasks/{id}/complete", "complete", WORK, "Complete a leased task",
              c.COMPLETE, reply=c.ONE_TASK),
    RouteSpec("POST", "/v1/tasks/{id}/fail", "fail", WORK, "Fail a leased task", c.FAIL,
              reply=c.ONE_TASK),
    RouteSpec("POST", "/v1/completions", "completions", WORK, "Complete or fail many",
              c.COMPLETIONS, reply=c.RESULTS),
    RouteSpec("POST", "/v1/progress", "progress.report", WORK, "Report running tasks' progress",
              c.PROGRESS, reply=c.RESULTS),
    RouteSpec("POST", "/v1/claims", "claim", WORK, "Claim tasks (long-poll: wait_ms)",
              c.CLAIM, reply=c.CLAIMED),
    RouteSpec("POST", "/v1/leases/extend", "extend", WORK, "Extend leases", c.EXTEND,
              reply=c.LEASES),
    RouteSpec("POST", "/v1/leases/release", "release", WORK, "Hand back unstarted tasks",
              c.RELEASE, reply=c.LEASES),
    RouteSpec("GET", "/v1/dead-letters", "dead_letters", READ, "Dead letters",
              query=(c.LIMIT, Param("queue", c.NAME), c.CONSISTENCY), reply=c.TASKS),
    RouteSpec("POST", "/v1/dead-letters/{id}/requeue", "requeue", ADMIN,
              "Requeue a dead letter", reply=c.ONE_TASK),
    RouteSpec("DELETE", "/v1/dead-letters/{id}", "purge_one", ADMIN, "Purge a dead letter",
              reply=c.PURGED),
    RouteSpec("DELETE", "/v1/dead-letters", "purge_all", ADMIN,
              "Purge every dead letter (of a queue)", query=(Param("queue", c.NAME),),
              reply=c.PURGED),
    RouteSpec("GET", "/v1/queues", "queues", READ, "Task counts by queue and status",
              query=(c.CONSISTENCY,), reply=c.QUEUES_VIEW),
    RouteSpec("GET", "/v1/queues/{name}", "flow.get_queue", READ, "A queue's settings",
              query=(c.CONSISTENCY,), reply=c.ANY_OBJECT),
    RouteSpec("PUT", "/v1/queues/{name}", "flow.put_queue", ADMIN,
              "Change a queue's settings (cap, pause, tenant weights)", c.QUEUE_SETTINGS,
              reply=c.ANY_OBJECT),
    RouteSpec("GET", "/v1/limits", "flow.list_limits", READ, "Rate limits",
              query=(c.CONSISTENCY,), reply=c.ANY_OBJECT),
    RouteSpec("GET", "/v1/limits/{key}", "flow.get_limit", READ, "A rate limit",
              query=(c.CONSISTENCY,), reply=c.ANY_OBJECT),
    RouteSpec("PUT", "/v1/limits/{key}", "flow.put_limit", ADMIN, "Set a rate limit",
              c.RATE_LIMIT, reply=c.ANY_OBJECT),
    RouteSpec("DELETE", "/v1/limits/{key}", "flow.delete_limit", ADMIN, "Drop a rate limit",
              reply=c.ANY_OBJECT),
    RouteSpec("GET", "/v1/concurrency", "flow.list_concurrency", READ, "Concurrency limits",
              query=(c.CONSISTENCY,), reply=c.ANY_OBJECT),
    RouteSpec("GET", "/v1/concurrency/{key}", "flow.get_concurrency", READ,
              "A concurrency limit", query=(c.CONSISTENCY,), reply=c.ANY_OBJECT),
    RouteSpec("PUT", "/v1/concurrency/{key}", "flow.put_concurrency", ADMIN,
              "Set a concurrency limit", c.CONCURRENCY, reply=c.ANY_OBJECT),
    RouteSpec("DELETE", "/v1/concurrency/{key}", "flow.delete_concurrency", ADMIN,
              "Drop a concurrency limit", reply=c.ANY_OBJECT),
    RouteSpec("GET", "/v1/workers", "worker_api.list", READ, "Workers seen", reply=c.WORKERS),
    RouteSpec("DELETE", "/v1/workers/{id}", "worker_api.leave", WORK,
              "A worker stopping cleanly", reply=c.ANY_OBJECT),
    RouteSpec("POST", "/v1/workers/{id}/heartbeat", "worker_api.heartbeat", WORK,
              "A worker's announcement and heartbeat (see docs/workers.md)", c.HEARTBEAT,
              reply=c.ANY_OBJECT, check_body=False),
    RouteSpec("POST", "/v1/workers/{id}/pause", "worker_api.pause", ADMIN,
              "Pause a worker", reply=c.ANY_OBJECT),
    RouteSpec("POST", "/v1/workers/{id}/resume", "worker_api.resume", ADMIN,
              "Resume a worker", reply=c.ANY_OBJECT),
    RouteSpec("POST", "/v1/workers/{id}/drain", "worker_api.drain", ADMIN,
              "Drain a worker (finish, then exit)", reply=c.ANY_OBJECT),
    RouteSpec("POST", "/v1/workers/{id}/concurrency", "worker_api.concurrency", ADMIN,
              "Resize a worker's pool", c.POOL_SIZE, reply=c.ANY_OBJECT),
    RouteSpec("POST", "/v1/workflows", "workflows.create", PRODUCE, "Submit a workflow",
              c.WORKFLOW, reply=c.WORKFLOW_VIEW, status=201, check_body=False),
    RouteSpec("GET", "/v1/workflows", "workflows.list_workflows", READ,
              "Workflows, newest first, a page at a time", query=c.WORKFLOWS_QUERY,
              reply=c.WORKFLOW_PAGE),
    RouteSpec("GET", "/v1/workflows/{id}", "workflows.show", READ, "A workflow and its tasks",
              query=(c.WAIT, c.CONSISTENCY), reply=c.WORKFLOW_VIEW),
    RouteSpec("DELETE", "/v1/workflows/{id}", "workflows.cancel", PRODUCE,
              "Cancel a workflow's tasks that have not started", reply=c.WORKFLOW_VIEW),
    RouteSpec("GET", "/v1/schedules", "schedules.list_schedules", READ, "Schedules",
              query=(c.CONSISTENCY,), reply=c.SCHEDULES),
    RouteSpec("PUT", "/v1/schedules/{id}", "schedules.put", PRODUCE,
              "Create or update a schedule (201 when created)", c.SCHEDULE,
              reply=c.SCHEDULE_PUT, status=201, check_body=False),
    RouteSpec("GET", "/v1/schedules/{id}", "schedules.get", READ, "A schedule",
              query=(c.CONSISTENCY,), reply=c.ONE_SCHEDULE),
    RouteSpec("DELETE", "/v1/schedules/{id}", "schedules.delete", PRODUCE,
              "Delete a schedule", reply=c.ANY_OBJECT),
    RouteSpec("POST", "/v1/schedules/{id}/pause", "schedules.pause", PRODUCE,
              "Pause a schedule", reply=c.ONE_SCHEDULE),
    RouteSpec("POST", "/v1/schedules/{id}/resume", "schedules.resume", PRODUCE,
              "Resume a schedule", reply=c.ONE_SCHEDULE),
    RouteSpec("POST", "/v1/schedules/{id}/trigger", "schedules.trigger", PRODUCE,
              "Run a schedule's task now", reply=c.ONE_TASK, status=201),
    RouteSpec("POST", "/v1/keys", "keys.create", ADMIN, "Create an API key", c.NEW_KEY,
              reply=c.ANY_OBJECT, status=201),
    RouteSpec("GET", "/v1/keys", "keys.list", ADMIN, "API keys (never their tokens)",
              reply=c.ANY_OBJECT),
    RouteSpec("DELETE", "/v1/keys/{name}", "keys.revoke", ADMIN, "Revoke an API key",
              reply=c.ANY_OBJECT),
    RouteSpec("GET", "/v1/audit", "keys.audit", ADMIN, "The audit log",
              query=(Param("after", Int()), c.LIMIT), reply=c.ANY_OBJECT),
    RouteSpec("GET", "/v1/events", "events.stream", READ,
              "Every task change, with its Raft log index (Server-Sent Events)",
              query=c.EVENTS_QUERY, content="text/event-stream"),
    RouteSpec("GET", "/v1/rates", "events.rates", READ,
              "Task changes per second over 15 minutes", reply=c.ANY_OBJECT),
    RouteSpec("GET", "/v1/node", "status.node", READ, "This node's view",
              query=(Param("digest", Str(enum=("0", "1", "true", "false"))),),
              reply=c.ANY_OBJECT),
    RouteSpec("GET", "/v1/cluster", "status.cluster", READ, "Every node's view",
              reply=c.ANY_OBJECT),
    RouteSpec("GET", "/v1/cluster/members", "members.list", READ, "The replicated membership",
              reply=c.ANY_OBJECT),
    RouteSpec("POST", "/v1/cluster/nodes", "members.add", ADMIN, "Add a node", c.NEW_MEMBER,
              reply=c.ANY_OBJECT),
    RouteSpec("DELETE", "/v1/cluster/nodes/{id}", "members.remove", ADMIN, "Remove a node",
              reply=c.ANY_OBJECT),
    RouteSpec("GET", "/v1/whoami", "console.whoami", READ, "The calling key's name and role",
              reply=c.ANY_OBJECT),
    RouteSpec("GET", "/openapi.json", "openapi", OPEN, "This document", reply=c.ANY_OBJECT),
    # OPEN if metrics_public
    RouteSpec("GET", "/metrics", "status.metrics_page", READ, "Prometheus metrics",
              content="text/plain"),
    RouteSpec("GET", "/healthz", "status.healthz", OPEN, "The process is up",
              reply=c.ANY_OBJECT),
    RouteSpec("GET", "/readyz", "status.readyz", OPEN, "Ready to serve", reply=c.ANY_OBJECT),
    # The console's pages and assets hold no data; their script asks for a key and
    # sends it with every call.
    RouteSpec("GET", "/", "console.overview", OPEN, "The console", content="text/html"),
    RouteSpec("GET", "/ui/static/{name}", "console.asset", OPEN, "The console's assets",
              content="text/javascript"),
    RouteSpec("GET", "/ui/{page}", "console.page", OPEN, "A console page",
              content="text/html"),
)


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def node_token(secret: str) -> str:
    """The token nodes present to each other, derived from the cluster secret."""
    return hmac.new(secret.encode(), b"raftq node-to-node status", hashlib.sha256).hexdigest()


def roles_of(route: RouteSpec, config: NodeConfig) -> frozenset[str]:
    if route.path == "/metrics" and config.metrics_public:
        return OPEN
    return route.roles


class Auth:
    def __init__(self, config: NodeConfig, replica: Replica) -> None:
        self.replica = replica
        self.node_hash = hash_key(node_token(config.secret))
        self.bootstrap_names = [name for name, _, _ in config.bootstrap_keys]
        self.caught_up = False  # since this process started
        # The leader's commit index when this node first asked: applied, it has
        # caught up (a fixed mark: under load the leader's index moves on with
        # every entry, and a follower is always a moment behind it).
        self._catch_up_mark = 0

    def guard(self, roles: frozenset[str], handler: Handler) -> Handler:
        """``handler``, run only for a key whose role is in ``roles``; it finds the
        key's name in ``request.actor``."""
        if not roles:
            return handler

        async def guarded(request: Request) -> Response:
            request.actor = self.check(request, roles)
            return await handler(request)

        return guarded

    def check(self, request: Request, roles: frozenset[str]) -> str:
        """The name of the request's key; raises Unauthorized or Forbidden."""
        name, role = self.identify(request)
        if role not in roles:
            raise Forbidden(f"key {name} has role {role}; {request.method} {request.route} "
                            f"needs {' or '.join(sorted(roles))}")
        return name

    def identify(self, request: Request) -> tuple[str, str]:
        """The name and role of the request's key; raises Unauthorized."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("an API key is required: send Authorization: Bearer <key>")
        digest = hash_key(token)
        if hmac.compare_digest(digest, self.node_hash):
            name, role = NODE_ACTOR, "reader"
        else:
            found = self.replica.state.key_by_hash(digest)
            if found is None or not hmac.compare_digest(found[2], digest):
                self.check_current()
                raise Unauthorized("unknown or revoked API key")
            name, role, _ = found
        return name, role

    def check_current(self) -> None:
        """Raise 503 unless this node's key table can be trusted to hold every key,
        so that a key it does not know is really unknown. It must hear a leader, and
        since this process started it must once have applied what a leader had
        committed and hold the keys it bootstraps. A node that restarts or rejoins
        so answers "retry" rather than 401 while it replays, and a worker's held
        outcomes are not refused as unauthorized (the task would run twice). After
        that first catch-up it is as current as any follower (a key made a moment
        ago may be a replication delay away)."""
        s = self.replica.raft_status()
        if s["leader"] is None:
            raise NoLeader(f"this node has no leader right now ({s['no_leader_reason']}), "
                           "so it cannot check this API key; retry")
        if not self.caught_up:
            if not self._catch_up_mark:
                self._catch_up_mark = s["leader_commit_index"]
            keys = self.replica.state.keys
            self.caught_up = (0 < self._catch_up_mark <= s["applied_index"]
                              and all(name in keys for name in self.bootstrap_names))
            if not self.caught_up:
                raise Unavailable("this node is catching up with the cluster and cannot "
                                  "check this API key yet; retry")
