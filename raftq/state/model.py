"""The task model: statuses, the allowed-transition table, priorities, defaults.

A ``Task`` is a slotted record owned by the state machine. It holds its
arguments as opaque msgpack bytes so the state never decodes user data.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from enum import StrEnum
from operator import attrgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from raftq.state.fair import Line


class Status(StrEnum):
    QUEUED = "queued"
    WAITING = "waiting"  # for its parents (raftq.state.workflows)
    SCHEDULED = "scheduled"
    LEASED = "leased"
    SUCCEEDED = "succeeded"
    DEAD = "dead"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # not started before its expiry (a spec's expires_ms / expires_at_ms)


# Every status change the state machine may make. Anything else is a bug, and
# the state machine checks each change against this table (see State._move).
# A task waiting to run (queued, scheduled or waiting for its parents; first attempt
# or a retry) whose expiry passes is expired; so is one that would wait again after
# it (a lost lease, a retry, a requeued dead letter). A running task is never
# interrupted.
TRANSITIONS: dict[Status | None, frozenset[Status]] = {
    None: frozenset({Status.QUEUED, Status.SCHEDULED, Status.WAITING}),
    Status.WAITING: frozenset({Status.QUEUED, Status.CANCELLED, Status.EXPIRED}),
    Status.QUEUED: frozenset({Status.LEASED, Status.CANCELLED, Status.EXPIRED}),
    Status.SCHEDULED: frozenset({Status.QUEUED, Status.CANCELLED, Status.EXPIRED}),
    Status.LEASED: frozenset({Status.SUCCEEDED, Status.QUEUED, Status.SCHEDULED, Status.DEAD,
                              Status.EXPIRED}),
    Status.DEAD: frozenset({Status.QUEUED, Status.EXPIRED}),
    Status.SUCCEEDED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.EXPIRED: frozenset(),
}

TERMINAL = frozenset({Status.SUCCEEDED, Status.DEAD, Status.CANCELLED, Status.EXPIRED})
# Terminal statuses whose tasks are dropped after their result TTL. Dead
# letters stay until requeued or purged.
EXPIRING = frozenset({Status.SUCCEEDED, Status.CANCELLED, Status.EXPIRED})

PRIORITY_NAMES: dict[str, int] = {"critical": 255, "high": 192, "normal": 128, "low": 64}
DEFAULT_PRIORITY = PRIORITY_NAMES["normal"]
DEFAULT_QUEUE = "default"
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_TIMEOUT_MS = 300_000
DEFAULT_RETRY_BACKOFF_MS = 1_000
MAX_RETRY_BACKOFF_MS = 3_600_000
DEFAULT_RESULT_TTL_MS = 86_400_000
DEFAULT_LEASE_MS = 30_000
# Workers not seen for this long are forgotten by the registry.
WORKER_FORGET_MS = 300_000
# Request ids remembered for at-most-once application.
DEDUPE_CAPACITY = 20_000
# The replicated wall offset moves toward the leader's wall clock by at most
# 1 ms per this many ms of elapsed time: a leader whose clock is off, or steps,
# shifts eta times by 1/10 of the time passing, never at once.
WALL_SLEW_RATIO = 10


class Task:
    """One task as the state machine holds it."""

    # Field order of the plain (snapshot) form; the digest depends on it.
    FIELDS = (
        "id",
        "name",
        "queue",
        "priority",
        "payload",
        "status",
        "attempts",
        "max_attempts",
        "timeout_ms",
        "retry_backoff_ms",
        "result_ttl_ms",
        "created_ms",
        "updated_ms",
        "ready_at_ms",
        "seq",
        "lease_token",
        "lease_worker",
        "lease_expires_ms",
        "result",
        "errors",
        "finished_ms",
        "expires_at_ms",
        "tenant",
        "flow_keys",
    )
    # Where a queued task waits (raftq.state.fair): its tenant's line and its neighbours
    # there. Derived, like every index: not in the plain form.
    __slots__ = (*FIELDS, "line", "nxt", "prv")

    def __init__(
        self,
        id: str,
        name: str,
        queue: str,
        priority: int,
        payload: bytes,
        max_attempts: int,
        timeout_ms: int,
        retry_backoff_ms: int,
        result_ttl_ms: int,
        created_ms: int,
    ) -> None:
        self.id = id
        self.name = name
        self.queue = queue
        self.priority = priority
        self.payload = payload
        self.status: Status | None = None
        self.attempts = 0
        self.max_attempts = max_attempts
        self.timeout_ms = timeout_ms
        self.retry_backoff_ms = retry_backoff_ms
        self.result_ttl_ms = result_ttl_ms
        self.created_ms = created_ms
        self.updated_ms = created_ms
        self.ready_at_ms: int | None = None
        self.seq = 0
        self.lease_token = 0
        self.lease_worker = ""
        self.lease_expires_ms = 0
        self.result: bytes | None = None
        # [attempt, at_ms, {"type","message","traceback"}] per failed attempt; a shared
        # empty tuple until the first one (most tasks never fail, and it packs as [])
        self.errors: Sequence[list[Any]] = ()
        self.finished_ms: int | None = None
        self.expires_at_ms: int | None = None  # on the replicated clock
        self.tenant = ""  # whose task it is: fair turns in its queue (raftq.state.fair)
        # [rate_key, concurrency_key, unique_key] when any is set (raftq.state.flow)
        self.flow_keys: list[str] | None = None
        self.line: Line | None = None
        self.nxt: Task | None = None
        self.prv: Task | None = None

    def to_plain(self) -> list[Any]:
        row = list(_get_fields(self))
        row[_STATUS] = str(self.status)
        return row

    @classmethod
    def restore(cls, rows: Iterable[Sequence[Any]]) -> Iterator[Task]:
        """Tasks from rows of their fields in ``FIELDS`` order, the status a ``Status``:
        the fast way, for a snapshot's million tasks (one unpacking per task; a
        test checks the order against ``FIELDS``)."""
        new = cls.__new__
        for row in rows:
            t = new(cls)
            (t.id, t.name, t.queue, t.priority, t.payload, t.status, t.attempts,
             t.max_attempts, t.timeout_ms, t.retry_backoff_ms, t.result_ttl_ms, t.created_ms,
             t.updated_ms, t.ready_at_ms, t.seq, t.lease_token, t.lease_worker,
             t.lease_expires_ms, t.result, t.errors, t.finished_ms, t.expires_at_ms, t.tenant,
             t.flow_keys) = row
            t.line = t.nxt = t.prv = None
            yield t

    @classmethod
    def from_plain(cls, row: list[Any]) -> Task:
        task = cls.__new__(cls)
        for field, value in zip(cls.FIELDS, row, strict=True):
            setattr(task, field, value)
        task.status = Status(str(task.status))
        task.line = task.nxt = task.prv = None
        return task


_get_fields = attrgetter(*Task.FIELDS)
_STATUS = Task.FIELDS.index("status")


# An announced worker counts as lost once silent for this many of its heartbeats.
LOST_AFTER_BEATS = 3


class Presence:
    """What an announced worker said with its latest heartbeat, and the control
    an operator set for it (see ``raftq.state.workers``)."""

    __slots__ = (
        "names",  # the task names it runs
        "heartbeat_ms",
        "forget_ms",
        "concurrency",
        "pool",
        "mode",  # running | paused | draining, as the worker last said
        "cpu_permille",
        "rss_kb",
        "beat_ms",  # the replicated clock at its latest heartbeat
        "acted",  # the newest control version it has acted on
        "paused",  # the control: what the worker is asked to do
        "draining",
        "want_concurrency",  # 0: as it was started
        "control_version",
    )

    FIELDS = __slots__

    def __init__(self) -> None:
        self.names: list[str] = []
        self.heartbeat_ms = 0
        self.forget_ms = 0
        self.concurrency = 0
        self.pool = ""
        self.mode = ""
        self.cpu_permille = 0
        self.rss_kb = 0
        self.beat_ms = 0
        self.acted = 0
        self.paused = False
        self.draining = False
        self.want_concurrency = 0
        self.control_version = 0

    def to_plain(self) -> list[Any]:
        return [getattr(self, f) for f in self.FIELDS]

    @classmethod
    def from_plain(cls, row: list[Any]) -> Presence:
        record = cls()
        for field, value in zip(cls.FIELDS, row, strict=True):
            setattr(record, field, value)
        return record
