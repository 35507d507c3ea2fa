"""Typed commands and their versioned msgpack encoding.

A command is made at the edge (the HTTP handler) with its request id and the
time already stamped, encoded to bytes, replicated through Raft, and decoded
and applied on every node. The envelope is ``[version, op, request_id, now_ms,
body]``; adding a command adds an ``Op``, it never renumbers the one
replicated method PySyncObj knows about.

Versions. ``encode`` writes version 2; ``decode`` also reads version 1, so a
journal written before it still replays to the same state. In version 1 every
command's ``now_ms`` moved the replicated clock (``max(clock, now_ms)``), a task
spec carried an absolute ``ready_at_ms`` and a tick had no body. From version 2
the clock moves only by ticks (``Tick`` carries the leader's elapsed time and
wall clock), ``now_ms`` is the proposing node's wall clock kept for the record,
and a task spec carries ``delay_ms`` (from the replicated clock) and ``eta_ms``
(a wall time, converted by the replicated wall offset) instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import msgpack

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


Body = (Submit | Claim | Extend | Release | Finish | Cancel | Requeue | Purge | Tick | Barrier
        | Leave | CreateKey | RevokeKey)


@dataclass(slots=True)
class Command:
    body: Body
    request_id: str = ""
    now_ms: int = 0
    version: int = VERSION  # the envelope it was decoded from; LEGACY_VERSION moves the clock


@dataclass(slots=True)
class Group:
    commands: list[Command] = field(default_factory=list)


_OP_OF: dict[type, int] = {
    Submit: Op.SUBMIT,
    Claim: Op.CLAIM,
    Extend: Op.EXTEND,
    Release: Op.RELEASE,
    Finish: Op.FINISH,
    Cancel: Op.CANCEL,
    Requeue: Op.REQUEUE,
    Purge: Op.PURGE,
    Tick: Op.TICK,
    Barrier: Op.BARRIER,
    Leave: Op.LEAVE,
    CreateKey: Op.CREATE_KEY,
    RevokeKey: Op.REVOKE_KEY,
}


class DecodeError(ValueError):
    """Bytes that are not a command this version understands."""


def _body_to_plain(body: Body) -> list[Any]:
    if isinstance(body, Submit):
        return [
            [
                t.id, t.name, t.queue, t.priority, t.payload, t.delay_ms, t.eta_ms,
                t.max_attempts, t.timeout_ms, t.retry_backoff_ms, t.result_ttl_ms,
            ]
            for t in body.tasks
        ]
    if isinstance(body, Claim):
        return [body.worker_id, body.queues, body.max, body.lease_ms, body.host, body.pid]
    if isinstance(body, Extend):
        return [body.worker_id, [list(x) for x in body.leases], body.lease_ms]
    if isinstance(body, Release):
        return [body.worker_id, [list(x) for x in body.leases]]
    if isinstance(body, Finish):
        return [
            body.worker_id,
            [[o.id, o.lease_token, o.result, o.error, o.retry] for o in body.items],
        ]
    if isinstance(body, Cancel | Requeue):
        return [body.id, body.actor]
    if isinstance(body, Purge):
        return [body.id, body.queue, body.actor]
    if isinstance(body, Tick):
        return [body.elapsed_ms, body.wall_ms, body.after, body.by]
    if isinstance(body, Leave):
        return [body.worker_id]
    if isinstance(body, CreateKey):
        return [body.name, body.role, body.key_hash, body.actor, body.bootstrap]
    if isinstance(body, RevokeKey):
        return [body.name, body.actor]
    return []


# Integers on the wire stay within what JSON and msgpack carry exactly, so sums
# of times in the state never overflow a snapshot.
_MAX_INT = 2**53


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not -_MAX_INT <= v <= _MAX_INT:
        raise DecodeError(f"expected an integer, got {v!r:.40}")
    return v


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise DecodeError(f"expected a string, got {v!r:.40}")
    return v


def _list(v: Any, n: int | None = None) -> list[Any]:
    if not isinstance(v, list) or (n is not None and len(v) != n):
        raise DecodeError(f"expected a list of {n or 'any number of'} items, got {v!r:.40}")
    return v


def _lease(v: Any) -> tuple[str, int]:
    task_id, token = _list(v, 2)
    return _str(task_id), _int(token)


def _specs(rows: Any) -> list[TaskSpec]:
    """The specs of a Submit. Rows of the usual shape are checked in one expression
    (every node decodes every task); any other row goes through ``_spec``, which
    accepts it or raises the precise error."""
    out: list[TaskSpec] = []
    append = out.append
    for row in _list(rows):
        if type(row) is list and len(row) == 11:
            id, name, queue, prio, payload, delay, eta, attempts, timeout, backoff, ttl = row
            if (
                type(id) is str and type(name) is str and type(queue) is str
                and type(payload) is bytes
                and type(prio) is int and type(delay) is int and type(eta) is int
                and type(attempts) is int
                and type(timeout) is int and type(backoff) is int and type(ttl) is int
                # all in [0, 2**53): negative ones and 2**53 itself take the long way
                and (prio | delay | eta | attempts | timeout | backoff | ttl) >> 53 == 0
            ):
                append(TaskSpec(id, name, queue, prio, payload, delay, eta, attempts,
                                timeout, backoff, ttl))
                continue
        append(_spec(row))
    return out


def _spec(v: Any) -> TaskSpec:
    id, name, queue, prio, payload, delay, eta, attempts, timeout, backoff, ttl = _list(v, 11)
    if not isinstance(payload, bytes):
        raise DecodeError("a task payload must be bytes")
    return TaskSpec(
        _str(id), _str(name), _str(queue), _int(prio), payload, _int(delay), _int(eta),
        _int(attempts), _int(timeout), _int(backoff), _int(ttl),
    )


def _legacy_specs(rows: Any) -> list[TaskSpec]:
    """Version 1 specs: ``ready_at_ms`` was a time on the replicated clock, which then
    followed wall time; it becomes the eta (the wall offset is 0 until a version 2
    tick moves it)."""
    out: list[TaskSpec] = []
    for row in _list(rows):
        id, name, queue, prio, payload, ready_at, attempts, timeout, backoff, ttl = _list(row, 10)
        if not isinstance(payload, bytes):
            raise DecodeError("a task payload must be bytes")
        out.append(TaskSpec(
            _str(id), _str(name), _str(queue), _int(prio), payload, 0, _int(ready_at),
            _int(attempts), _int(timeout), _int(backoff), _int(ttl),
        ))
    return out


def _tick(p: Any) -> Tick:
    elapsed_ms, wall_ms, after, by = _list(p, 4)
    return Tick(_int(elapsed_ms), _int(wall_ms), _int(after), _str(by))


def _outcome(v: Any) -> Outcome:
    task_id, token, result, error, retry = _list(v, 5)
    if not (result is None or isinstance(result, bytes)):
        raise DecodeError("a result must be bytes or nil")
    if not (error is None or isinstance(error, dict)):
        raise DecodeError("an error must be a map or nil")
    if not isinstance(retry, bool):
        raise DecodeError("retry must be a boolean")
    return Outcome(_str(task_id), _int(token), result, error, retry)


def _optional_str(v: Any) -> str | None:
    return None if v is None else _str(v)


def _claim(p: Any) -> Claim:
    worker_id, queues, max_, lease_ms, host, pid = _list(p, 6)
    return Claim(
        _str(worker_id), [_str(q) for q in _list(queues)], _int(max_), _int(lease_ms),
        _str(host), _int(pid),
    )


def _extend(p: Any) -> Extend:
    worker_id, leases, lease_ms = _list(p, 3)
    return Extend(_str(worker_id), [_lease(x) for x in _list(leases)], _int(lease_ms))


def _release(p: Any) -> Release:
    worker_id, leases = _list(p, 2)
    return Release(_str(worker_id), [_lease(x) for x in _list(leases)])


def _finish(p: Any) -> Finish:
    worker_id, items = _list(p, 2)
    return Finish(_str(worker_id), [_outcome(row) for row in _list(items)])


def _with_actor(p: Any, n: int) -> list[Any]:
    """The ``n`` fields of a body whose last is the actor (entries written before
    the audit log have no actor)."""
    row = _list(p)
    return [*row, ""] if len(row) == n - 1 else _list(row, n)


def _purge(p: Any) -> Purge:
    task_id, queue, actor = _with_actor(p, 3)
    return Purge(_optional_str(task_id), _optional_str(queue), _str(actor))


def _id_actor(p: Any) -> tuple[str, str]:
    task_id, actor = _with_actor(p, 2)
    return _str(task_id), _str(actor)


def _create_key(p: Any) -> CreateKey:
    name, role, key_hash, actor, bootstrap = _list(p, 5)
    if not isinstance(bootstrap, bool):
        raise DecodeError("bootstrap must be a boolean")
    return CreateKey(_str(name), _str(role), _str(key_hash), _str(actor), bootstrap)


def _revoke_key(p: Any) -> RevokeKey:
    name, actor = _list(p, 2)
    return RevokeKey(_str(name), _str(actor))


# The typed body of each op; every field's type is checked, so ``apply`` never
# sees a wrong one. Keyed by the plain integer: no enum lookup per command.
_BODY_FROM_PLAIN: dict[int, Callable[[Any], Body]] = {
    Op.SUBMIT: lambda p: Submit(_specs(p)),
    Op.CLAIM: _claim,
    Op.EXTEND: _extend,
    Op.RELEASE: _release,
    Op.FINISH: _finish,
    Op.CANCEL: lambda p: Cancel(*_id_actor(p)),
    Op.REQUEUE: lambda p: Requeue(*_id_actor(p)),
    Op.PURGE: _purge,
    Op.TICK: _tick,
    Op.BARRIER: lambda p: Barrier(),
    Op.LEAVE: lambda p: Leave(_str(_list(p, 1)[0])),
    Op.CREATE_KEY: _create_key,
    Op.REVOKE_KEY: _revoke_key,
}

# Version 1 differs in the submit's specs and the tick's (empty) body.
_LEGACY_BODY_FROM_PLAIN: dict[int, Callable[[Any], Body]] = {
    **_BODY_FROM_PLAIN,
    Op.SUBMIT: lambda p: Submit(_legacy_specs(p)),
    Op.TICK: lambda p: Tick(*_list(p, 0)),
}
_TABLES = {VERSION: _BODY_FROM_PLAIN, LEGACY_VERSION: _LEGACY_BODY_FROM_PLAIN}


_GROUP = int(Op.GROUP)


def _to_plain(cmd: Command) -> list[Any]:
    return [_OP_OF[type(cmd.body)], cmd.request_id, cmd.now_ms, _body_to_plain(cmd.body)]


def encode(cmd: Command | Group) -> bytes:
    if isinstance(cmd, Group):
        plain = [VERSION, int(Op.GROUP), "", 0, [_to_plain(c) for c in cmd.commands]]
    else:
        plain = [VERSION, *_to_plain(cmd)]
    return bytes(msgpack.packb(plain, use_bin_type=True))


def _from_plain(row: Any, version: int) -> Command:
    op, request_id, now_ms, body = _list(row, 4)
    body_from_plain = _TABLES[version].get(op) if type(op) is int else None
    if body_from_plain is None:
        raise DecodeError(f"unknown op {op!r:.40}")
    return Command(body_from_plain(body), _str(request_id), _int(now_ms), version)


def decode(data: bytes) -> Command | Group:
    """Decode an entry of this version or the legacy one; raises ``DecodeError`` for
    anything malformed."""
    try:
        version, op, request_id, now_ms, body = msgpack.unpackb(data, raw=False)
        if type(version) is not int or version not in _TABLES:
            raise DecodeError(f"command version {version!r:.20} is not {VERSION} "
                              f"or {LEGACY_VERSION}")
        if op == _GROUP:
            return Group([_from_plain(row, version) for row in _list(body)])
        return _from_plain([op, request_id, now_ms, body], version)
    except DecodeError:
        raise
    except Exception as exc:  # any malformed shape
        raise DecodeError(str(exc)) from exc
