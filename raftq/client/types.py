"""What the clients' calls return: the API's JSON, typed.

``Client`` and ``AsyncClient`` hand back the decoded JSON of the answer (or
the part of it named in each call's docs), as these dicts and lists. Nodes
may add keys in later versions; the ones here are always present.
"""

from __future__ import annotations

from typing import Any, TypedDict


class TaskError(TypedDict):
    attempt: int
    at_ms: int
    error: dict[str, Any]  # type, message and traceback as the worker reported them


class Lease(TypedDict):
    worker_id: str
    lease_token: int
    expires_ms: int


class TaskInfo(TypedDict):
    """One task, as ``GET /v1/tasks/{id}`` answers it."""

    id: str
    name: str
    queue: str
    priority: int
    status: str
    args: list[Any]
    kwargs: dict[str, Any]
    attempts: int
    max_attempts: int
    timeout_ms: int
    retry_backoff_ms: int
    created_ms: int
    updated_ms: int
    ready_at_ms: int | None
    lease: Lease | None
    result: Any
    errors: list[TaskError]
    finished_ms: int | None
    expires_at_ms: int | None  # on the replicated clock; a task not started by then expires
    tenant: str  # whose task it is ("": nobody's)


class TaskPage(TypedDict):
    """One page of ``GET /v1/tasks``, newest first; pass ``next_cursor`` for the next."""

    tasks: list[TaskInfo]
    next_cursor: str | None


class WorkflowSummary(TypedDict):
    """One workflow in a list: ``tasks`` it has, ``open`` of them not ended."""

    id: str
    status: str  # running, succeeded, failed or cancelled
    created_ms: int
    tasks: int
    open: int


class WorkflowPage(TypedDict):
    """One page of ``GET /v1/workflows``, newest first; pass ``next_cursor`` for the next."""

    workflows: list[WorkflowSummary]
    next_cursor: str | None


class _WorkerSeen(TypedDict):
    worker_id: str
    host: str
    pid: int
    queues: list[str]
    running: int
    running_ids: list[str]
    last_seen_ms: int
    silent_ms: int
    state: str  # active | lost
    announced: bool


class WorkerInfo(_WorkerSeen, total=False):
    """A worker; the fields declared here are there only for one that announces
    itself (``raftq worker`` does)."""

    tasks: list[str]
    concurrency: int
    pool: str
    mode: str  # running | paused | draining
    cpu_pct: float
    rss_kb: int
    heartbeat_ms: int
    forget_ms: int
    last_heartbeat_ms: int
    control: dict[str, Any]
    acted: int


class QueueCounts(TypedDict):
    queued: int
    waiting: int  # for parents (workflows)
    scheduled: int
    leased: int
    succeeded: int
    dead: int
    cancelled: int
    expired: int
    ready_by_priority: dict[str, int]  # priority (0-255, as a string) -> queued tasks


class PurgeResult(TypedDict):
    purged: int


# queue name -> its counts by status
Queues = dict[str, QueueCounts]
TaskList = list[TaskInfo]
WorkerList = list[WorkerInfo]
