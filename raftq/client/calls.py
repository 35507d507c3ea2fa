"""The v1 HTTP calls as plain data, and the failover policy, shared by both clients.

``Client`` (sync) and ``AsyncClient`` differ only in how they send bytes and
how they sleep. Everything else lives here and is pure: which method, path,
query and body each API call uses, which calls carry an ``Idempotency-Key``
(minted once per logical call, so every retry of it presents the same key),
how a submission spec is turned into the wire form (seconds to ``_ms``, a
client-made task id so a retried submission never creates a second task), how
a finished task becomes a result or a ``TaskFailed``, and the order in which
nodes are tried and how long to wait between rounds.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from raftq import errors

Json = dict[str, Any]
JsonList = list[Json]

DEFAULT_NODES = ("http://127.0.0.1:8101", "http://127.0.0.1:8102", "http://127.0.0.1:8103")
NODES_ENV = "RAFTQ_NODES"
TERMINAL = frozenset({"succeeded", "dead", "cancelled", "expired"})
MAX_WAIT_MS = 60_000
MAX_BATCH = 1000
# The header in which every node announces the cluster's membership epoch
# (lower case, as the transports keep header names).
MEMBERS_HEADER = "x-raftq-members"
# HTTP statuses after which the same call is tried again (on another node).
RETRY_STATUSES = frozenset({502, 503, 504, 507})


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP request of the API; ``unwrap`` names the body key the caller wants."""

    method: str
    path: str
    query: Mapping[str, Any] = field(default_factory=dict)
    body: Any = None
    idempotency_key: str | None = None
    unwrap: str | None = None
    wait_s: float = 0.0  # server-side long-poll time, added to the socket timeout

    @property
    def target(self) -> str:
        query = {k: v for k, v in self.query.items() if v is not None}
        return self.path + ("?" + urlencode(query) if query else "")

    def headers(self, api_key: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        if self.body is not None:
            headers["Content-Type"] = "application/json"
        if self.idempotency_key is not None:
            headers["Idempotency-Key"] = self.idempotency_key
        return headers

    def pick(self, body: Any) -> Any:
        if self.unwrap is None:
            return body
        if not isinstance(body, dict) or self.unwrap not in body:
            raise errors.RaftqError(f"{self.method} {self.path}: answer has no {self.unwrap!r}")
        return body[self.unwrap]


def resolve_nodes(nodes: Sequence[str] | str | None, environ: Mapping[str, str]) -> list[str]:
    """The node URLs to use: given ones, else ``RAFTQ_NODES``, else the local defaults.

    A node may be given as ``host:port`` (plain HTTP) or as a full URL."""
    if nodes is None:
        nodes = environ.get(NODES_ENV) or list(DEFAULT_NODES)
    if isinstance(nodes, str):
        nodes = nodes.split(",")
    urls = [_node_url(n.strip().rstrip("/")) for n in nodes if n.strip()]
    if not urls:
        raise errors.ConfigError("no raftq node URLs given (pass nodes= or set RAFTQ_NODES)")
    return urls


def _node_url(node: str) -> str:
    """``host:port`` means ``http://host:port``; any other scheme is refused."""
    if "://" not in node:
        node = "http://" + node
    if not node.startswith(("http://", "https://")):
        raise errors.ConfigError(f"node URL {node!r} must be host:port, http://host:port "
                                 "or https://host:port")
    try:
        parts = urlsplit(node)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise errors.ConfigError(f"node URL {node!r} is not valid: {exc}") from None
    if not parts.hostname:
        raise errors.ConfigError(f"node URL {node!r} has no host")
    return node


# -- task specs ---------------------------------------------------------------

_SECONDS_FIELDS = {
    "delay": "delay_ms",
    "timeout": "timeout_ms",
    "retry_backoff": "retry_backoff_ms",
    "result_ttl": "result_ttl_ms",
    "expires": "expires_ms",
    "unique_for": "unique_for_ms",
}


def _ms(seconds: float, name: str) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise errors.InvalidRequest(f"{name} must be a number of seconds", field=name)
    return round(seconds * 1000)


def eta_ms(eta: dt.datetime | float) -> int:
    """Epoch milliseconds of an ETA given as a datetime (naive means local) or epoch seconds."""
    if isinstance(eta, dt.datetime):
        return round(eta.timestamp() * 1000)
    return _ms(eta, "eta")


def task_spec(spec: Mapping[str, Any]) -> Json:
    """The wire form of one submission.

    Accepts the keyword names of ``Client.submit`` (``delay``, ``timeout``,
    ``retry_backoff``, ``result_ttl`` and ``expires`` in seconds, ``eta`` and
    ``expires_at`` as a datetime or epoch seconds) as well as the API's own ``_ms``
    fields, which pass through.
    Always sets ``id``: a retried submission must present the same one.
    """
    out: Json = {}
    for key, value in spec.items():
        if value is None:
            continue
        if key in _SECONDS_FIELDS:
            out[_SECONDS_FIELDS[key]] = _ms(value, key)
        elif key in ("eta", "expires_at"):
            out[f"{key}_ms"] = eta_ms(value)
        elif key == "args":
            out["args"] = list(value)
        else:
            out[key] = value
    if "name" not in out:
        raise errors.InvalidRequest("a task spec needs a name", field="name")
    out.setdefault("id", new_id())
    return out


# -- results ------------------------------------------------------------------


def outcome(task: Json) -> Any:
    """The result of a terminal task, or ``TaskFailed`` for a dead, cancelled or expired
    one."""
    status = task.get("status")
    if status == "succeeded":
        return task.get("result")
    task_errors = list(task.get("errors") or [])
    what = f"task {task.get('id')} ({task.get('name')}) is {status}"
    if task_errors:
        last = task_errors[-1].get("error") or {}
        if isinstance(last, dict):
            what += f" after {len(task_errors)} failed attempt(s): {last.get('type', 'Error')}"
            what += f": {last.get('message', '')}"
        else:
            what += f": {last}"
    raise errors.TaskFailed(
        what, task_id=str(task.get("id", "")), status=str(status), errors=task_errors
    )


def batch_view(result: Json) -> Json:
    """What a batch submission tells of one task (``id`` and ``status``; older nodes: the task)."""
    task = result.get("task")
    if isinstance(task, dict):
        return task
    return {k: v for k, v in result.items() if k != "created"}


def wait_ms_for(deadline: float | None, now: float) -> int:
    if deadline is None:
        return MAX_WAIT_MS
    return max(0, min(MAX_WAIT_MS, int((deadline - now) * 1000)))


def not_done(task_id: str, status: str, timeout: float | None) -> TimeoutError:
    return TimeoutError(f"task {task_id} is still {status} after {timeout}s")


# -- the calls ----------------------------------------------------------------


def _key() -> str:
    return new_id()


def submit(spec: Json) -> Call:
    return Call("POST", "/v1/tasks", body=spec)


def submit_batch(specs: JsonList) -> Call:
    return Call("POST", "/v1/tasks/batch", body={"tasks": specs}, unwrap="results")


def get_task(task_id: str, wait_ms: int = 0) -> Call:
    query = {"wait_ms": wait_ms} if wait_ms > 0 else {}
    return Call("GET", f"/v1/tasks/{quote(task_id, safe='')}", query, unwrap="task",
                wait_s=wait_ms / 1000)


def list_tasks(status: str | None, queue: str | None, limit: int, name: str | None = None,
               cursor: str | None = None, tenant: str | None = None) -> Call:
    """One page, newest first: ``{"tasks": [...], "next_cursor": ...}``."""
    query = {"status": status, "queue": queue, "name": name, "tenant": tenant, "limit": limit,
             "cursor": cursor}
    return Call("GET", "/v1/tasks", query)


def cancel(task_id: str) -> Call:
    return Call("DELETE", f"/v1/tasks/{quote(task_id, safe='')}", idempotency_key=_key(),
                unwrap="task")


def dead_letters(queue: str | None, limit: int) -> Call:
    return Call("GET", "/v1/dead-letters", {"queue": queue, "limit": limit}, unwrap="tasks")


def requeue(task_id: str) -> Call:
    path = f"/v1/dead-letters/{quote(task_id, safe='')}/requeue"
    return Call("POST", path, body={}, idempotency_key=_key(), unwrap="task")


def retry_now(task_id: str) -> Call:
    path = f"/v1/tasks/{quote(task_id, safe='')}/retry-now"
    return Call("POST", path, body={}, idempotency_key=_key(), unwrap="task")


def purge(task_id: str | None, queue: str | None) -> Call:
    if task_id is not None:
        path = f"/v1/dead-letters/{quote(task_id, safe='')}"
        return Call("DELETE", path, idempotency_key=_key())
    return Call("DELETE", "/v1/dead-letters", {"queue": queue}, idempotency_key=_key())


def put_schedule(schedule_id: str, body: Json) -> Call:
    # No Idempotency-Key: a repeated PUT is a no-op by itself.
    return Call("PUT", f"/v1/schedules/{quote(schedule_id, safe='')}", body=body)


def schedules() -> Call:
    return Call("GET", "/v1/schedules", unwrap="schedules")


def get_schedule(schedule_id: str) -> Call:
    return Call("GET", f"/v1/schedules/{quote(schedule_id, safe='')}", unwrap="schedule")


def delete_schedule(schedule_id: str) -> Call:
    return Call("DELETE", f"/v1/schedules/{quote(schedule_id, safe='')}",
                idempotency_key=_key())


def schedule_action(schedule_id: str, action: str) -> Call:
    """``pause``, ``resume`` (answer: the schedule) or ``trigger`` (answer: the task)."""
    path = f"/v1/schedules/{quote(schedule_id, safe='')}/{action}"
    return Call("POST", path, body={}, idempotency_key=_key(),
                unwrap="task" if action == "trigger" else "schedule")


def queues() -> Call:
    return Call("GET", "/v1/queues", unwrap="queues")


def explain(task_id: str) -> Call:
    """Why the task waits: ``{"id", "status", "reasons": [...], "limits": [...]}``."""
    return Call("GET", f"/v1/tasks/{quote(task_id, safe='')}/explain",
                {"consistency": "leader"})


def put_limit(kind: str, key: str, body: Json) -> Call:
    """``kind``: ``limits`` (a rate limit) or ``concurrency``; answer: the limit."""
    return Call("PUT", f"/v1/{kind}/{quote(key, safe='')}", body=body, unwrap="limit")


def limits(kind: str) -> Call:
    return Call("GET", f"/v1/{kind}", unwrap="limits")


def delete_limit(kind: str, key: str) -> Call:
    return Call("DELETE", f"/v1/{kind}/{quote(key, safe='')}", idempotency_key=_key())


def put_queue(name: str, body: Json) -> Call:
    return Call("PUT", f"/v1/queues/{quote(name, safe='')}", body=body, unwrap="queue")


def workers() -> Call:
    return Call("GET", "/v1/workers", unwrap="workers")


def leave(worker_id: str) -> Call:
    return Call("DELETE", f"/v1/workers/{quote(worker_id, safe='')}", idempotency_key=_key())


def heartbeat(worker_id: str, body: Json) -> Call:
    return Call("POST", f"/v1/workers/{quote(worker_id, safe='')}/heartbeat", body=body,
                idempotency_key=_key())


def control_worker(worker_id: str, action: str, concurrency: int | None = None) -> Call:
    """pause | resume | drain | concurrency (to ``concurrency``) a worker."""
    body = {"concurrency": concurrency} if action == "concurrency" else None
    return Call("POST", f"/v1/workers/{quote(worker_id, safe='')}/{action}", body=body,
                idempotency_key=_key())


def cluster() -> Call:
    return Call("GET", "/v1/cluster")


def node() -> Call:
    return Call("GET", "/v1/node")


def members() -> Call:
    return Call("GET", "/v1/cluster/members")


def add_node(node_id: str, raft_address: str, http_url: str) -> Call:
    body = {"id": node_id, "raft_address": raft_address, "http_url": http_url}
    return Call("POST", "/v1/cluster/nodes", body=body, idempotency_key=_key())


def remove_node(node_id: str) -> Call:
    return Call("DELETE", f"/v1/cluster/nodes/{quote(node_id, safe='')}",
                idempotency_key=_key())


def claim(
    worker_id: str,
    queues: Sequence[str],
    max: int,
    lease_ms: int,
    wait_ms: int,
    host: str,
    pid: int,
    names: Sequence[str] | None = None,
) -> Call:
    body: Json = {"worker_id": worker_id, "queues": list(queues), "max": max,
                  "lease_ms": lease_ms, "wait_ms": wait_ms, "host": host, "pid": pid}
    if names is not None:
        body["names"] = list(names)
    # The key makes a retried claim replay the leases the lost answer carried
    # (the node derives one request id per proposal of its long-poll from it).
    return Call("POST", "/v1/claims", body=body, idempotency_key=_key(), unwrap="tasks",
                wait_s=wait_ms / 1000)


def leases(pairs: Sequence[tuple[str, int]]) -> JsonList:
    return [{"id": task_id, "lease_token": token} for task_id, token in pairs]


def extend(worker_id: str, pairs: Sequence[tuple[str, int]], lease_ms: int) -> Call:
    body = {"worker_id": worker_id, "leases": leases(pairs), "lease_ms": lease_ms}
    return Call("POST", "/v1/leases/extend", body=body, idempotency_key=_key(), unwrap="leases")


def release(worker_id: str, pairs: Sequence[tuple[str, int]]) -> Call:
    body = {"worker_id": worker_id, "leases": leases(pairs)}
    return Call("POST", "/v1/leases/release", body=body, idempotency_key=_key(), unwrap="leases")


def complete(task_id: str, lease_token: int, result: Any) -> Call:
    path = f"/v1/tasks/{quote(task_id, safe='')}/complete"
    body = {"lease_token": lease_token, "result": result}
    return Call("POST", path, body=body, idempotency_key=_key(), unwrap="task")


def fail(task_id: str, lease_token: int, error: Json | str, retry: bool) -> Call:
    path = f"/v1/tasks/{quote(task_id, safe='')}/fail"
    body = {"lease_token": lease_token, "error": error, "retry": retry}
    return Call("POST", path, body=body, idempotency_key=_key(), unwrap="task")


def complete_many(worker_id: str, items: JsonList) -> Call:
    body = {"worker_id": worker_id, "items": items}
    return Call("POST", "/v1/completions", body=body, idempotency_key=_key(), unwrap="results")


def progress(worker_id: str, items: JsonList) -> Call:
    """Items ``{"id", "lease_token", "fraction", "message"}``; one result per item."""
    body = {"worker_id": worker_id, "items": items}
    return Call("POST", "/v1/progress", body=body, idempotency_key=_key(), unwrap="results")


# -- answers ------------------------------------------------------------------


def decode_body(raw: bytes) -> Any:
    """A response body as JSON; a non-JSON one (a proxy's error page) as an error body."""
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return {"error": {"code": "error", "message": raw[:200].decode(errors="replace")}}


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def unreachable(node: str, exc: BaseException) -> errors.Unavailable:
    return errors.Unavailable(f"node {node} did not answer: {type(exc).__name__}: {exc}")
