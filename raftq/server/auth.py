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
from raftq.server.config import NodeConfig
from raftq.server.http import Handler, Request, Response

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


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("POST", "/v1/tasks", "submit", PRODUCE),
    RouteSpec("POST", "/v1/tasks/batch", "submit_batch", PRODUCE),
    RouteSpec("GET", "/v1/tasks", "list_tasks", READ),
    RouteSpec("GET", "/v1/tasks/{id}", "get_task", READ),
    RouteSpec("GET", "/v1/tasks/{id}/explain", "flow.explain", READ),
    RouteSpec("DELETE", "/v1/tasks/{id}", "cancel", PRODUCE),
    RouteSpec("POST", "/v1/tasks/{id}/complete", "complete", WORK),
    RouteSpec("POST", "/v1/tasks/{id}/fail", "fail", WORK),
    RouteSpec("POST", "/v1/completions", "completions", WORK),
    RouteSpec("POST", "/v1/progress", "progress.report", WORK),
    RouteSpec("POST", "/v1/claims", "claim", WORK),
    RouteSpec("POST", "/v1/leases/extend", "extend", WORK),
    RouteSpec("POST", "/v1/leases/release", "release", WORK),
    RouteSpec("GET", "/v1/dead-letters", "dead_letters", READ),
    RouteSpec("POST", "/v1/dead-letters/{id}/requeue", "requeue", ADMIN),
    RouteSpec("DELETE", "/v1/dead-letters/{id}", "purge_one", ADMIN),
    RouteSpec("DELETE", "/v1/dead-letters", "purge_all", ADMIN),
    RouteSpec("GET", "/v1/queues", "queues", READ),
    RouteSpec("GET", "/v1/queues/{name}", "flow.get_queue", READ),
    RouteSpec("PUT", "/v1/queues/{name}", "flow.put_queue", ADMIN),
    RouteSpec("GET", "/v1/limits", "flow.list_limits", READ),
    RouteSpec("GET", "/v1/limits/{key}", "flow.get_limit", READ),
    RouteSpec("PUT", "/v1/limits/{key}", "flow.put_limit", ADMIN),
    RouteSpec("DELETE", "/v1/limits/{key}", "flow.delete_limit", ADMIN),
    RouteSpec("GET", "/v1/concurrency", "flow.list_concurrency", READ),
    RouteSpec("GET", "/v1/concurrency/{key}", "flow.get_concurrency", READ),
    RouteSpec("PUT", "/v1/concurrency/{key}", "flow.put_concurrency", ADMIN),
    RouteSpec("DELETE", "/v1/concurrency/{key}", "flow.delete_concurrency", ADMIN),
    RouteSpec("GET", "/v1/workers", "worker_api.list", READ),
    RouteSpec("DELETE", "/v1/workers/{id}", "worker_api.leave", WORK),
    RouteSpec("POST", "/v1/workers/{id}/heartbeat", "worker_api.heartbeat", WORK),
    RouteSpec("POST", "/v1/workers/{id}/pause", "worker_api.pause", ADMIN),
    RouteSpec("POST", "/v1/workers/{id}/resume", "worker_api.resume", ADMIN),
    RouteSpec("POST", "/v1/workers/{id}/drain", "worker_api.drain", ADMIN),
    RouteSpec("POST", "/v1/workers/{id}/concurrency", "worker_api.concurrency", ADMIN),
    RouteSpec("POST", "/v1/workflows", "workflows.create", PRODUCE),
    RouteSpec("GET", "/v1/workflows/{id}", "workflows.show", READ),
    RouteSpec("DELETE", "/v1/workflows/{id}", "workflows.cancel", PRODUCE),
    RouteSpec("GET", "/v1/schedules", "schedules.list_schedules", READ),
    RouteSpec("PUT", "/v1/schedules/{id}", "schedules.put", PRODUCE),
    RouteSpec("GET", "/v1/schedules/{id}", "schedules.get", READ),
    RouteSpec("DELETE", "/v1/schedules/{id}", "schedules.delete", PRODUCE),
    RouteSpec("POST", "/v1/schedules/{id}/pause", "schedules.pause", PRODUCE),
    RouteSpec("POST", "/v1/schedules/{id}/resume", "schedules.resume", PRODUCE),
    RouteSpec("POST", "/v1/schedules/{id}/trigger", "schedules.trigger", PRODUCE),
    RouteSpec("POST", "/v1/keys", "keys.create", ADMIN),
    RouteSpec("GET", "/v1/keys", "keys.list", ADMIN),
    RouteSpec("DELETE", "/v1/keys/{name}", "keys.revoke", ADMIN),
    RouteSpec("GET", "/v1/audit", "keys.audit", ADMIN),
    RouteSpec("GET", "/v1/events", "events.stream", READ),
    RouteSpec("GET", "/v1/rates", "events.rates", READ),
    RouteSpec("GET", "/v1/node", "status.node", READ),
    RouteSpec("GET", "/v1/cluster", "status.cluster", READ),
    RouteSpec("GET", "/v1/cluster/members", "members.list", READ),
    RouteSpec("POST", "/v1/cluster/nodes", "members.add", ADMIN),
    RouteSpec("DELETE", "/v1/cluster/nodes/{id}", "members.remove", ADMIN),
    RouteSpec("GET", "/metrics", "status.metrics_page", READ),  # OPEN if metrics_public
    RouteSpec("GET", "/healthz", "status.healthz", OPEN),
    RouteSpec("GET", "/readyz", "status.readyz", OPEN),
    # A static page; its script asks for a key and sends it with every call.
    RouteSpec("GET", "/", "dashboard", OPEN),
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
        if role not in roles:
            raise Forbidden(f"key {name} has role {role}; {request.method} {request.route} "
                            f"needs {' or '.join(sorted(roles))}")
        return name

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
            keys = self.replica.state.keys
            self.caught_up = (s["applied_index"] >= s["leader_commit_index"]
                              and all(name in keys for name in self.bootstrap_names))
            if not self.caught_up:
                raise Unavailable("this node is catching up with the cluster and cannot "
                                  "check this API key yet; retry")
