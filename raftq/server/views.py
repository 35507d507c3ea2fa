"""JSON views of state objects for the HTTP API (read-only)."""

from __future__ import annotations

from typing import Any

import msgpack

from raftq.state.model import Task


def unpack(data: bytes | None) -> Any:
    if data is None:
        return None
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def task_json(task: Task) -> dict[str, Any]:
    args, kwargs = unpack(task.payload)
    lease = None
    if task.lease_worker:
        # Never the lease token: it is the worker's proof of its claim, and only
        # the claim's answer carries it (see ``claimed_json``).
        lease = {"worker_id": task.lease_worker, "expires_ms": task.lease_expires_ms}
    return {
        "id": task.id,
        "name": task.name,
        "queue": task.queue,
        "priority": task.priority,
        "status": str(task.status),
        "args": args,
        "kwargs": kwargs,
        "attempts": task.attempts,
        "max_attempts": task.max_attempts,
        "timeout_ms": task.timeout_ms,
        "retry_backoff_ms": task.retry_backoff_ms,
        "created_ms": task.created_ms,
        "updated_ms": task.updated_ms,
        "ready_at_ms": task.ready_at_ms,
        "lease": lease,
        "result": unpack(task.result),
        "errors": [{"attempt": a, "at_ms": at, "error": e} for a, at, e in task.errors],
        "finished_ms": task.finished_ms,
        "expires_at_ms": task.expires_at_ms,
        "tenant": task.tenant,
    }


def claimed_json(task: Task, lease: dict[str, Any],
                 parents: list[Any] | None = None) -> dict[str, Any]:
    """A leased task for its worker; ``parents`` (``[id, status, result, error]`` each,
    from ``State.parent_results``) for a task with ``pass_results``."""
    args, kwargs = unpack(task.payload)
    out = {
        "id": task.id,
        "name": task.name,
        "args": args,
        "kwargs": kwargs,
        "queue": task.queue,
        "priority": task.priority,
        "attempt": lease["attempt"],
        "max_attempts": task.max_attempts,
        "timeout_ms": task.timeout_ms,
        "lease_token": lease["lease_token"],
        "lease_expires_ms": lease["lease_expires_ms"],
    }
    if parents is not None:
        out["parent_results"] = [
            {"id": i, "status": status, "result": unpack(result), "error": error}
            for i, status, result, error in parents
        ]
    return out
