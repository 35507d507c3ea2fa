"""The workers' commands (ops 45-49; part of ``raftq.state.commands``, which exports them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TaskDef:
    """One task a worker runs, with its decorator's defaults (None: not set there)."""

    name: str
    queue: str
    priority: int
    max_attempts: int | None = None
    timeout_ms: int | None = None
    retry_backoff_ms: int | None = None


@dataclass(slots=True)
class WorkerBeat:
    """A worker announcing itself (at start) and its heartbeat (every ``heartbeat_ms``):
    the tasks it runs, what it is doing and its process's figures, measured at the
    worker (``cpu_permille``: tenths of a percent of one core over the last beat;
    ``rss_kb``: resident memory). ``forget_ms`` is stamped by the node that takes the
    beat, from its config: how long a silent worker stays listed. ``acted`` is the
    newest control version the worker has acted on."""

    worker_id: str
    host: str
    pid: int
    queues: list[str]
    tasks: list[TaskDef]
    heartbeat_ms: int
    forget_ms: int
    concurrency: int
    pool: str = "thread"
    mode: str = "running"  # running | paused | draining: what the worker does now
    cpu_permille: int = 0
    rss_kb: int = 0
    acted: int = 0


@dataclass(slots=True)
class WorkerControl:
    """An operator's order to a worker, picked up with its next heartbeat:
    ``action`` pause | resume | drain | concurrency (to ``concurrency``)."""

    worker_id: str
    action: str
    concurrency: int = 0
    actor: str = ""
