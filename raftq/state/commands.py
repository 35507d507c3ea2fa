"""Typed commands: what a node proposes and every node applies.

A command is made at the edge (the HTTP handler) with its request id and the
time already stamped, encoded to bytes (``raftq.state.encoding``), replicated
through Raft, and decoded and applied on every node. Adding a command adds an
``Op``; it never renumbers the one replicated method PySyncObj knows about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from raftq.state.member_commands import AddMember as AddMember
from raftq.state.member_commands import Member as Member
from raftq.state.member_commands import MemberReady as MemberReady
from raftq.state.member_commands import RemoveMember as RemoveMember
from raftq.state.member_commands import SeedMembers as SeedMembers
from raftq.state.worker_commands import TaskDef as TaskDef
from raftq.state.worker_commands import WorkerBeat as WorkerBeat
from raftq.state.worker_commands import WorkerControl as WorkerControl

VERSION = 2
LEGACY_VERSION = 1  # decoded, never written


class Op(IntEnum):
    SUBMIT = 1
    CLAIM = 2
    EXTEND = 3
    RELEASE = 4
    FINISH = 5  # complete and fail, one or many
    CANCEL = 6
    REQUEUE = 7
    PURGE = 8
    TICK = 9
    BARRIER = 10
    GROUP = 11  # several commands coalesced into one Raft entry
    LEAVE = 12  # a worker that stops cleanly
    CREATE_KEY = 13
    REVOKE_KEY = 14
    PUT_SCHEDULE = 20
    DELETE_SCHEDULE = 21
    PAUSE_SCHEDULE = 22
    FIRE = 23
    # from 30: workflows (raftq.state.workflows)
    LINKED = 30  # tasks with dependencies, or a whole workflow, all or none
    CANCEL_WORKFLOW = 31
    # from 40: cluster membership (raftq.state.members)
    SEED_MEMBERS = 40
    ADD_MEMBER = 41
    REMOVE_MEMBER = 42
    MEMBER_READY = 43
    # from 50: flow control (raftq.state.flow)
    PUT_RATE_LIMIT = 50
    PUT_CONCURRENCY = 51
    DELETE_LIMIT = 52
    PUT_QUEUE = 53
    # 45-49: workers the cluster knows (raftq.state.workers)
    WORKER_BEAT = 45  # a worker's announcement and heartbeat: its tasks and its figures
    WORKER_CONTROL = 46  # pause, resume, drain or resize a worker
    # from 60: the console and the event stream (raftq.state.progress)
    PROGRESS = 60
    RETRY_NOW = 61


@dataclass(slots=True)
class TaskSpec:
    id: str
    name: str
    queue: str
    priority: int
    payload: bytes  # msgpack of [args, kwargs]
    delay_ms: int  # ready this long after it is applied, on the replicated clock
    eta_ms: int  # ready at this wall time (0: no eta); version 1's ready_at_ms
    max_attempts: int
    timeout_ms: int
    retry_backoff_ms: int
    result_ttl_ms: int
    # Not run unless started by then: this long after it is applied (on the replicated
    # clock), and at this wall time (converted like eta_ms); 0 for no limit. A spec
    # with neither is encoded as before (11 fields), with either as 13.
    expires_ms: int = 0
    expires_at_ms: int = 0
    # Flow control (raftq.state.flow): whose task it is (fair turns within a queue
    # and priority), the rate and concurrency limit keys it counts against besides
    # ``task:{name}`` and ``tenant:{tenant}``, and its uniqueness key and window. A
    # spec with a tenant and none of the others is encoded as 14 fields, with any
    # of the others as 18.
    tenant: str = ""
    rate_key: str = ""
    concurrency_key: str = ""
    unique_key: str = ""
    unique_for_ms: int = 0


@dataclass(slots=True)
class Submit:
    tasks: list[TaskSpec]


@dataclass(slots=True)
class Claim:
    worker_id: str
    queues: list[str]
    max: int
    lease_ms: int
    host: str = ""
    pid: int = 0
    # queues it takes from only when ``queues`` have nothing ready (work stealing)
    steal_from: list[str] = field(default_factory=list)
    # The task names the worker runs: only tasks of these names are leased. None (a
    # claim that names none, as before workers announced their tasks): any name.
    names: list[str] | None = None


@dataclass(slots=True)
class Extend:
    worker_id: str
    leases: list[tuple[str, int]]
    lease_ms: int


@dataclass(slots=True)
class Release:
    worker_id: str
    leases: list[tuple[str, int]]


@dataclass(slots=True)
class Outcome:
    """One completion (``error`` is None) or failure of a leased task."""

    id: str
    lease_token: int
    result: bytes | None = None
    error: dict[str, str] | None = None
    retry: bool = True


@dataclass(slots=True)
class Finish:
    worker_id: str
    items: list[Outcome]


@dataclass(slots=True)
class Progress:
    """How far running tasks are, as their worker reports it: ``(id, lease_token,
    permille 0-1000, message)`` each."""

    worker_id: str
    items: list[tuple[str, int, int, str]]


# ``actor``: the name of the API key that asked, for the audit log.


@dataclass(slots=True)
class Cancel:
    id: str
    actor: str = ""


@dataclass(slots=True)
class Requeue:
    id: str
    actor: str = ""


@dataclass(slots=True)
class RetryNow:
    """A task waiting out its retry backoff is due now; its attempts stand."""

    id: str
    actor: str = ""


@dataclass(slots=True)
class Purge:
    id: str | None = None  # None purges every dead letter (of ``queue``)
    queue: str | None = None
    actor: str = ""


@dataclass(slots=True)
class CreateKey:
    """Install an API key; ``key_hash`` is the SHA-256 of its token, made at the edge.

    A ``bootstrap`` key (from a node's config) is installed only if no key of
    that name ever existed."""

    name: str
    role: str
    key_hash: str
    actor: str = ""
    bootstrap: bool = False


@dataclass(slots=True)
class RevokeKey:
    name: str
    actor: str = ""


@dataclass(slots=True)
class Leave:
    """A worker stopping cleanly: forget it now unless it still holds leases."""

    worker_id: str


@dataclass(slots=True)
class Deps:
    """What a task waits for: ``parents`` (task ids, each created before it), what
    a parent's failure does (``on_parent_failure``: cancel | run), when it runs
    (``run_when``: success | failure | always) and whether it gets the parents'
    results (``pass_results``)."""

    parents: list[str]
    on_parent_failure: str = "cancel"
    run_when: str = "success"
    pass_results: bool = False


@dataclass(slots=True)
class Linked:
    """Tasks with dependencies, created all or none: ``deps[i]`` belongs to
    ``tasks[i]``, and a parent is a task that exists or one earlier in ``tasks``.
    With a ``workflow_id`` they form that workflow (``keys``: the client's name of
    each task); without one it is a plain submission whose tasks have parents."""

    tasks: list[TaskSpec]
    deps: list[Deps]
    workflow_id: str = ""
    keys: list[str] = field(default_factory=list)


@dataclass(slots=True)
class CancelWorkflow:
    id: str
    actor: str = ""


@dataclass(slots=True)
class Tick:
    """Time passes: the proposing leader's monotonic time since the tick ``after``
    counted, and its wall clock. A tick whose ``after`` is not the state's count of
    ticks was measured from an older one and moves nothing (two proposers cannot
    both count the same interval)."""

    elapsed_ms: int = 0
    wall_ms: int = 0
    after: int = 0
    by: str = ""  # the proposing node's id, for the record


@dataclass(slots=True)
class Barrier:
    pass


@dataclass(slots=True)
class ScheduleSpec:
    """A schedule as declared (see ``raftq.state.schedules``): when it fires (``cron``
    in ``timezone``, or ``every_ms``; computed at the edge) and the task each fire
    submits (``task``, whose id is made per fire)."""

    id: str
    task: TaskSpec
    cron: str = ""
    every_ms: int = 0
    timezone: str = "UTC"
    overlap: str = "skip"  # allow | skip | buffer_one
    catchup: str = "latest"  # latest | all | none
    catchup_window_ms: int = 3_600_000
    jitter_ms: int = 0
    start_ms: int = 0
    end_ms: int = 0  # 0: no end


@dataclass(slots=True)
class PutSchedule:
    spec: ScheduleSpec
    paused: bool | None = None  # None: a new schedule runs, an existing one keeps its state


@dataclass(slots=True)
class DeleteSchedule:
    id: str


@dataclass(slots=True)
class PauseSchedule:
    id: str
    paused: bool


@dataclass(slots=True)
class Fire:
    """One tick of a schedule, computed by the leader: the task it submits (id
    ``{schedule_id}@{tick_ms}``), for the schedule's ``generation`` (its spec at the
    time). ``manual`` is a trigger: one run now, outside the ticks."""

    schedule_id: str
    tick_ms: int
    generation: int
    task: TaskSpec
    manual: bool = False


@dataclass(slots=True)
class PutRateLimit:
    """At most ``rate`` starts per ``per_ms`` of the replicated clock for tasks counting
    against ``key``, with bursts of up to ``burst`` (GCRA, see ``raftq.state.limits``)."""

    key: str
    rate: int
    per_ms: int
    burst: int
    actor: str = ""


@dataclass(slots=True)
class PutConcurrency:
    """At most ``max`` tasks counting against ``key`` leased at once."""

    key: str
    max: int
    actor: str = ""


@dataclass(slots=True)
class DeleteLimit:
    kind: str  # rate | concurrency
    key: str
    actor: str = ""


@dataclass(slots=True)
class PutQueue:
    """A queue's settings; a field left None keeps its value. ``max_queued`` 0 is no cap;
    ``tenant_weights`` replaces the weights (``[tenant, weight]`` pairs)."""

    name: str
    max_queued: int | None = None
    paused: bool | None = None
    tenant_weights: list[tuple[str, int]] | None = None
    actor: str = ""


Body = (Submit | Claim | Extend | Release | Finish | Cancel | Requeue | RetryNow | Purge | Tick
        | Barrier | Leave | CreateKey | RevokeKey | Linked | CancelWorkflow
        | PutSchedule | DeleteSchedule | PauseSchedule | Fire
        | SeedMembers | AddMember | RemoveMember | MemberReady
        | PutRateLimit | PutConcurrency | DeleteLimit | PutQueue | WorkerBeat | WorkerControl
        | Progress)


@dataclass(slots=True)
class Command:
    body: Body
    request_id: str = ""
    now_ms: int = 0
    version: int = VERSION  # the envelope it was decoded from; LEGACY_VERSION moves the clock


@dataclass(slots=True)
class Group:
    commands: list[Command] = field(default_factory=list)
