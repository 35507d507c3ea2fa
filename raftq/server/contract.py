"""What each route of the API takes and answers, declared once.

The route table (``raftq.server.auth.ROUTES``) names, for each route, the
schemas here of its query parameters, its body and its answers. Requests are
checked with them before the handler runs (``Api.routes``), except the task
specs of submissions, which ``raftq.server.task_specs`` checks on its fast path
with the bounds and field names of ``TASK`` below; and ``GET /openapi.json``
is generated from the same objects (``raftq.server.openapi``).
"""

from __future__ import annotations

import re

from raftq.server.schema import (
    Anything,
    Arr,
    Bool,
    Int,
    Num,
    Obj,
    OneOf,
    Param,
    Schema,
    Str,
)
from raftq.state.graph import ON_PARENT_FAILURE, RUN_WHEN
from raftq.state.keys import ROLES
from raftq.state.model import (
    DEFAULT_LEASE_MS,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_QUEUE,
    DEFAULT_RETRY_BACKOFF_MS,
    DEFAULT_TIMEOUT_MS,
    PRIORITY_NAMES,
    Status,
)
from raftq.state.progress import MAX_MESSAGE
from raftq.state.schedules import CATCHUPS, OVERLAPS
from raftq.state.workers import MAX_CONCURRENCY
from raftq.state.workflows import WORKFLOW_STATUSES

DAY_MS = 86_400_000
MAX_ID_LEN = 200
MAX_BATCH = 1000
MAX_CLAIM = 1000
MAX_WAIT_MS = 60_000
NAME_RE = re.compile(r"^[A-Za-z0-9_.:\-/]{1,200}$")
NAME_SAYS = "letters, digits and _.:-/"
KEY_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,200}$")  # a limit key or tenant: no "/"
KEY = Str(pattern=KEY_RE, pattern_says="letters, digits and _.:-")

ID = Str(max_len=MAX_ID_LEN)
NAME = Str(pattern=NAME_RE, pattern_says=NAME_SAYS)
TOKEN = Int(lo=1, description="the lease token of the claim (fencing)")
PRIORITY = OneOf([Str(enum=tuple(PRIORITY_NAMES)), Int(0, 255)],
                 says=f"one of {', '.join(PRIORITY_NAMES)} or an integer 0-255")

# A task spec: what POST /v1/tasks takes (task_specs.task_spec checks it with these).
DELAY_MS = Int(0, 365 * DAY_MS, description="ready this long after it is applied")
MAX_ATTEMPTS = Int(1, 1000)
TIMEOUT_MS = Int(1, 7 * DAY_MS)
RETRY_BACKOFF_MS = Int(0, DAY_MS)
RESULT_TTL_MS = Int(1, 365 * DAY_MS)
EXPIRES_MS = Int(1, 365 * DAY_MS, description="not started this long after submission: "
                 "expired")
TASK_FIELDS: dict[str, Schema] = {
    "id": ID,
    "name": NAME,
    "args": Anything("array"),
    "kwargs": Anything("object"),
    "queue": NAME,
    "priority": PRIORITY,
    "delay_ms": DELAY_MS,
    "eta_ms": Int(description="ready at this wall time (epoch ms); not with delay_ms"),
    "max_attempts": MAX_ATTEMPTS,
    "timeout_ms": TIMEOUT_MS,
    "retry_backoff_ms": RETRY_BACKOFF_MS,
    "result_ttl_ms": RESULT_TTL_MS,
    "expires_ms": EXPIRES_MS,
    "expires_at_ms": Int(1, description="not started by this wall time: expired"),
    "tenant": KEY, "rate_key": KEY, "concurrency_key": KEY, "unique_key": KEY,
    "unique_for_ms": Int(0, 365 * DAY_MS, description="with unique_key: how long it holds"),
}
TASK_DEFAULTS = {"args": [], "kwargs": {}, "queue": DEFAULT_QUEUE, "priority": "normal",
                 "max_attempts": DEFAULT_MAX_ATTEMPTS, "timeout_ms": DEFAULT_TIMEOUT_MS,
                 "retry_backoff_ms": DEFAULT_RETRY_BACKOFF_MS}
TASK = Obj(TASK_FIELDS, frozenset({"name"}), defaults=TASK_DEFAULTS)
DEPS_FIELDS = {
    "depends_on": Arr(ID, max_items=10_000, description="parent task ids (or, in a "
                      "workflow, keys)"),
    "on_parent_failure": Str(enum=ON_PARENT_FAILURE),
    "run_when": Str(enum=RUN_WHEN),
    "pass_results": Bool(),
}
TASK_WITH_DEPS = Obj({**TASK_FIELDS, **DEPS_FIELDS}, frozenset({"name"}),
                     defaults=TASK_DEFAULTS)
BATCH = Obj({"tasks": Arr(TASK_WITH_DEPS, 1, MAX_BATCH)}, frozenset({"tasks"}))
WORKFLOW = Obj({"id": NAME, "tasks": Arr(Obj({"key": ID, **TASK_FIELDS, **DEPS_FIELDS},
                                             frozenset({"key", "name"})), 1, 10_000)},
               frozenset({"tasks"}))
SCHEDULE = Obj({
    "task": Obj({k: s for k, s in TASK_FIELDS.items() if k not in ("id", "delay_ms", "eta_ms")},
                frozenset({"name"})),
    "cron": Str(description="a cron expression (5 fields, or @hourly...); or every_ms"),
    "every_ms": Int(100, 366 * DAY_MS),
    "timezone": Str(max_len=100, description="an IANA time zone; UTC by default"),
    "overlap": Str(enum=OVERLAPS), "catchup": Str(enum=CATCHUPS),
    "catchup_window_ms": Int(0, 31 * DAY_MS), "jitter_ms": Int(0, DAY_MS),
    "start_ms": Int(), "end_ms": Int(), "paused": Bool(),
}, frozenset({"task"}))

ERROR_VALUE = OneOf([Str(min_len=0, max_len=1_000_000),
                     Obj({"type": Str(min_len=0, max_len=1_000_000),
                          "message": Str(min_len=0, max_len=1_000_000),
                          "traceback": Str(min_len=0, max_len=1_000_000)})],
                    says="a string or an object with type, message, traceback")
LEASE = Obj({"id": ID, "lease_token": TOKEN}, frozenset({"id", "lease_token"}))
QUEUES = Arr(NAME, 1, 50)
CLAIM = Obj({"worker_id": ID, "queues": QUEUES, "max": Int(1, MAX_CLAIM),
             "lease_ms": Int(100, DAY_MS), "wait_ms": Int(0, MAX_WAIT_MS),
             "host": Str(min_len=0, max_len=200), "pid": Int(),
             "steal_from": Arr(NAME, 0, 50),
             "names": Arr(NAME, 0, 1000, description="only tasks of these names (absent: any)")},
            frozenset({"worker_id"}),
            defaults={"queues": ["default"], "max": 1, "lease_ms": DEFAULT_LEASE_MS,
                      "wait_ms": 0, "host": "", "pid": 0})
# A worker's announcement and heartbeat (raftq.server.workers_api builds its command
# from what this answers), and the pool size an operator asks a worker for.
WORKER_MODES = ("running", "paused", "draining")
TASK_DEF = Obj({"name": NAME, "queue": NAME, "priority": PRIORITY, "max_attempts": MAX_ATTEMPTS,
                "timeout_ms": TIMEOUT_MS, "retry_backoff_ms": RETRY_BACKOFF_MS},
               frozenset({"name"}), defaults={"queue": DEFAULT_QUEUE, "priority": "normal"},
               description="a task the worker runs, with its decorator's defaults (absent: "
                           "not set there)")
HEARTBEAT = Obj({
    "host": Str(min_len=0, max_len=1000, description="kept to 200 characters"), "pid": Int(),
    "queues": QUEUES, "tasks": Arr(TASK_DEF, 0, 1000),
    "heartbeat_ms": Int(100, DAY_MS, description="the worker's beat: lost after 3 missed"),
    "concurrency": Int(1, MAX_CONCURRENCY),
    "pool": Str(max_len=20, pattern=re.compile(r"^[a-z]{1,20}$"),
                pattern_says="lower-case letters"),
    "mode": Str(enum=WORKER_MODES), "cpu_pct": Num(0, 1e6), "rss_kb": Int(),
    "acted": Int(description="the newest control version the worker has acted on"),
}, defaults={"host": "", "pid": 0, "queues": ["default"], "tasks": [], "heartbeat_ms": 2_000,
             "concurrency": 1, "pool": "thread", "mode": "running", "cpu_pct": 0, "rss_kb": 0,
             "acted": 0})
POOL_SIZE = Obj({"concurrency": Int(1, MAX_CONCURRENCY)}, frozenset({"concurrency"}))
EXTEND = Obj({"worker_id": ID, "leases": Arr(LEASE, 0, MAX_CLAIM),
              "lease_ms": Int(100, DAY_MS)}, frozenset({"worker_id", "leases"}),
             defaults={"lease_ms": DEFAULT_LEASE_MS})
RELEASE = Obj({"worker_id": ID, "leases": Arr(LEASE, 0, MAX_CLAIM)},
              frozenset({"worker_id", "leases"}))
COMPLETE = Obj({"lease_token": TOKEN, "result": Anything()}, frozenset({"lease_token"}))
FAIL = Obj({"lease_token": TOKEN, "error": ERROR_VALUE, "retry": Bool()},
           frozenset({"lease_token", "error"}))
OUTCOME = Obj({"id": ID, "lease_token": TOKEN, "result": Anything(), "error": ERROR_VALUE,
               "retry": Bool()}, frozenset({"id", "lease_token"}))
COMPLETIONS = Obj({"worker_id": Str(min_len=0), "items": Arr(OUTCOME, 1, MAX_CLAIM)},
                  frozenset({"items"}))
PROGRESS = Obj({"worker_id": ID, "items": Arr(Obj({
    "id": ID, "lease_token": TOKEN, "fraction": Num(0, 1),
    "message": Str(min_len=0, max_len=MAX_MESSAGE)}, frozenset({"id", "lease_token",
                                                             "fraction"})), 1, MAX_CLAIM)},
               frozenset({"worker_id", "items"}))
NEW_KEY = Obj({"name": Str(max_len=100, pattern=re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,99}$"),
                           pattern_says="letters, digits or _.:@- (starting with a letter or "
                                        "digit)"),
               "role": Str(enum=ROLES),
               "token": Str(min_len=32, max_len=256, pattern=re.compile(r"^[A-Za-z0-9_\-]+$"),
                            pattern_says="URL-safe characters")},
              frozenset({"name", "role"}))

MAX_RATE = 1_000_000
RATE_LIMIT = Obj({"rate": Int(1, MAX_RATE), "per_ms": Int(1, DAY_MS), "burst": Int(1, MAX_RATE)},
                 frozenset({"rate"}))
CONCURRENCY = Obj({"max": Int(1, MAX_RATE)}, frozenset({"max"}))
QUEUE_SETTINGS = Obj({"max_queued": Int(0, 100_000_000), "paused": Bool(),
                      "tenant_weights": Anything("object", description="tenant: weight 1-1000")})
NEW_MEMBER = Obj({"id": Str(), "raft_address": Str(max_len=300), "http_url": Str(max_len=500)},
                 frozenset({"id", "raft_address", "http_url"}))

# -- query parameters ----------------------------------------------------------

CONSISTENCY = Param("consistency", Str(enum=("local", "leader")),
                    "leader: commit a barrier first, so the read sees every acknowledged write")
LIMIT = Param("limit", Int(1, 1000))
WAIT = Param("wait_ms", Int(0, MAX_WAIT_MS), "wait up to this long for the task to finish")
CURSOR = Param("cursor", Str(max_len=400), "the next_cursor of the page before")
LIST_QUERY = (Param("status", Str(enum=tuple(Status))), Param("queue", NAME),
              Param("name", NAME), Param("tenant", KEY), LIMIT, CURSOR, CONSISTENCY)
WORKFLOWS_QUERY = (Param("status", Str(enum=WORKFLOW_STATUSES)), LIMIT, CURSOR, CONSISTENCY)
EVENTS_QUERY = (Param("since", Int(), "start after this log index (absent: from now)"),
                Param("queue", Str()), Param("name", Str()), Param("task", Str()),
                Param("follow", Bool(), "false: end once the backlog is out"))

# -- answers -------------------------------------------------------------------

_INT = Int(lo=-(2**63))
_MAYBE_INT = OneOf([_INT, Anything("null")])
TASK_VIEW = Obj({
    "id": Str(max_len=10_000), "name": Str(max_len=10_000), "queue": Str(max_len=10_000),
    "priority": Int(0, 255), "status": Str(enum=tuple(Status)), "args": Anything("array"),
    "kwargs": Anything("object"), "attempts": _INT, "max_attempts": _INT,
    "created_ms": _INT, "updated_ms": _INT, "ready_at_ms": _MAYBE_INT,
    "finished_ms": _MAYBE_INT, "expires_at_ms": _MAYBE_INT, "result": Anything(),
    "errors": Anything("array"), "lease": OneOf([Anything("object"), Anything("null")]),
    "tenant": Str(min_len=0, max_len=10_000, description="whose task it is (\"\": nobody's)"),
}, frozenset({"id", "name", "queue", "status"}), open=True)
ERROR = Obj({"error": Obj({"code": Str(max_len=100), "message": Str(min_len=0,
                                                                    max_len=1_000_000),
                           "field": Str(max_len=1000)}, frozenset({"code", "message"}),
                          open=True)}, frozenset({"error"}))
ANY_OBJECT = Anything("object")


def wrapped(key: str, schema: Schema) -> Obj:
    """``{key: schema}``, what most answers look like."""
    return Obj({key: schema}, frozenset({key}), open=True)


ONE_TASK = wrapped("task", TASK_VIEW)
TASKS = wrapped("tasks", Arr(TASK_VIEW, 0, 100_000))
RESULTS = wrapped("results", Anything("array"))
SUBMITTED = Obj({"task": TASK_VIEW, "created": Bool()}, frozenset({"task", "created"}),
                open=True)
TASK_PAGE = Obj({"tasks": Arr(TASK_VIEW, 0, 1000),
                 "next_cursor": OneOf([Str(max_len=400), Anything("null")])},
                frozenset({"tasks", "next_cursor"}), open=True)
CLAIMED = wrapped("tasks", Arr(Obj({"id": Str(max_len=10_000), "lease_token": _INT,
                                    "attempt": _INT}, frozenset({"id", "lease_token"}),
                                   open=True), 0, MAX_CLAIM))
LEASES = wrapped("leases", Anything("array"))
PURGED = Obj({"purged": _INT}, frozenset({"purged"}), open=True)
QUEUES_VIEW = wrapped("queues", ANY_OBJECT)
WORKERS = wrapped("workers", Anything("array"))
WORKFLOW_VIEW = wrapped("workflow", Obj({"id": Str(max_len=10_000), "status": Str(max_len=100),
                                         "tasks": Anything("array")},
                                        frozenset({"id", "status", "tasks"}), open=True))
WORKFLOW_PAGE = Obj({"workflows": Arr(Obj({
    "id": Str(max_len=10_000), "status": Str(enum=WORKFLOW_STATUSES), "created_ms": _INT,
    "tasks": _INT, "open": _INT}, frozenset({"id", "status", "created_ms", "tasks", "open"}),
    open=True), 0, 1000), "next_cursor": OneOf([Str(max_len=400), Anything("null")])},
    frozenset({"workflows", "next_cursor"}), open=True)
ONE_SCHEDULE = wrapped("schedule", ANY_OBJECT)
SCHEDULES = wrapped("schedules", Anything("array"))
SCHEDULE_PUT = Obj({"schedule": ANY_OBJECT, "created": Bool(), "changed": Bool()},
                   frozenset({"schedule"}), open=True)
