"""The v1 HTTP calls as plain data, shared by both clients.

``Client`` (sync) and ``AsyncClient`` differ only in how they send bytes and
how they sleep. Each function here says which method, path, query and body an
API call uses, and whether it carries an ``Idempotency-Key`` (minted once per
logical call, so every retry of it presents the same key).

The rest of what the clients share lives by what it does, and is importable
from here too: ``Call`` and the JSON shapes (``raftq.client.request``), how an
answer is read (``raftq.client.answers``), which nodes to use
(``raftq.client.nodes``), a submission's wire form (``raftq.client.specs``) and
a finished task's result (``raftq.client.results``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from raftq.client.answers import (
    MEMBERS_HEADER,
    RETRY_STATUSES,
    decode_body,
    retry_after_seconds,
    unreachable,
)
from raftq.client.nodes import DEFAULT_NODES, NODES_ENV, resolve_nodes
from raftq.client.request import Call, Json, JsonList, new_id
from raftq.client.results import MAX_WAIT_MS, TERMINAL, batch_view, not_done, outcome, wait_ms_for
from raftq.client.specs import eta_ms, task_spec

__all__ = [
    "DEFAULT_NODES", "MAX_BATCH", "MAX_WAIT_MS", "MEMBERS_HEADER", "NODES_ENV", "RETRY_STATUSES",
    "TERMINAL", "Call", "Json", "JsonList", "batch_view", "decode_body", "eta_ms", "new_id",
    "not_done", "outcome", "resolve_nodes", "retry_after_seconds", "task_spec", "unreachable",
    "wait_ms_for",
]

MAX_BATCH = 1000


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
