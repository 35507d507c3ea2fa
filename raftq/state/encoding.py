"""The versioned msgpack encoding of commands (``raftq.state.commands``).

The envelope is ``[version, op, request_id, now_ms, body]`` (a group of
commands coalesced into one Raft entry: ``[version, GROUP, "", 0, [rows]]``).
Every field's type is checked on decoding, so ``apply`` never sees a wrong one.

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
from typing import Any

import msgpack

from raftq.state import member_codec, worker_codec
from raftq.state.commands import (
    LEGACY_VERSION,
    VERSION,
    AddMember,
    Barrier,
    Body,
    Cancel,
    CancelWorkflow,
    Claim,
    Command,
    CreateKey,
    DeleteLimit,
    DeleteSchedule,
    Deps,
    Extend,
    Finish,
    Fire,
    Group,
    Leave,
    Linked,
    MemberReady,
    Op,
    Outcome,
    PauseSchedule,
    Progress,
    Purge,
    PutConcurrency,
    PutQueue,
    PutRateLimit,
    PutSchedule,
    Release,
    RemoveMember,
    Requeue,
    RetryNow,
    RevokeKey,
    ScheduleSpec,
    SeedMembers,
    Submit,
    TaskSpec,
    Tick,
    WorkerBeat,
    WorkerControl,
)
from raftq.state.flow_codec import FLOW_FROM_PLAIN, flow_to_plain
from raftq.state.plain import DecodeError, _bool, _int, _list, _optional_str, _str
from raftq.state.spec_codec import _legacy_specs, _specs, spec_from_plain, spec_to_plain

__all__ = ["DecodeError", "decode", "encode", "spec_from_plain", "spec_to_plain"]

_OP_OF: dict[type, int] = {
    Submit: Op.SUBMIT,
    Claim: Op.CLAIM,
    Extend: Op.EXTEND,
    Release: Op.RELEASE,
    Finish: Op.FINISH,
    Cancel: Op.CANCEL,
    Requeue: Op.REQUEUE,
    RetryNow: Op.RETRY_NOW,
    Purge: Op.PURGE,
    Tick: Op.TICK,
    Barrier: Op.BARRIER,
    Leave: Op.LEAVE,
    CreateKey: Op.CREATE_KEY,
    RevokeKey: Op.REVOKE_KEY,
    Linked: Op.LINKED,
    CancelWorkflow: Op.CANCEL_WORKFLOW,
    PutSchedule: Op.PUT_SCHEDULE,
    DeleteSchedule: Op.DELETE_SCHEDULE,
    PauseSchedule: Op.PAUSE_SCHEDULE,
    Fire: Op.FIRE,
    SeedMembers: Op.SEED_MEMBERS,
    AddMember: Op.ADD_MEMBER,
    RemoveMember: Op.REMOVE_MEMBER,
    MemberReady: Op.MEMBER_READY,
    PutRateLimit: Op.PUT_RATE_LIMIT,
    PutConcurrency: Op.PUT_CONCURRENCY,
    DeleteLimit: Op.DELETE_LIMIT,
    PutQueue: Op.PUT_QUEUE,
    WorkerBeat: Op.WORKER_BEAT,
    WorkerControl: Op.WORKER_CONTROL,
    Progress: Op.PROGRESS,
}


def _specs_to_plain(specs: list[TaskSpec]) -> list[Any]:
    return [spec_to_plain(t) for t in specs]


def _body_to_plain(body: Body) -> list[Any]:
    if isinstance(body, Submit):
        return _specs_to_plain(body.tasks)
    if isinstance(body, Linked):
        deps = [[d.parents, d.on_parent_failure, d.run_when, d.pass_results] for d in body.deps]
        return [_specs_to_plain(body.tasks), deps, body.workflow_id, body.keys]
    if isinstance(body, Claim):
        row = [body.worker_id, body.queues, body.max, body.lease_ms, body.host, body.pid]
        if body.names is not None:
            return [*row, body.steal_from, body.names]
        return [*row, body.steal_from] if body.steal_from else row
    if isinstance(body, Extend):
        return [body.worker_id, [list(x) for x in body.leases], body.lease_ms]
    if isinstance(body, Release):
        return [body.worker_id, [list(x) for x in body.leases]]
    if isinstance(body, Finish):
        return [
            body.worker_id,
            [[o.id, o.lease_token, o.result, o.error, o.retry] for o in body.items],
        ]
    if isinstance(body, Cancel | Requeue | RetryNow | CancelWorkflow):
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
    if isinstance(body, PutSchedule):
        return [*schedule_spec_to_plain(body.spec), body.paused]
    if isinstance(body, DeleteSchedule):
        return [body.id]
    if isinstance(body, PauseSchedule):
        return [body.id, body.paused]
    if isinstance(body, Progress):
        return [body.worker_id, [list(x) for x in body.items]]
    if isinstance(body, Fire):
        return [body.schedule_id, body.tick_ms, body.generation, spec_to_plain(body.task),
                body.manual]
    if isinstance(body, SeedMembers | AddMember | RemoveMember | MemberReady):
        return member_codec.to_plain(body)
    if isinstance(body, PutRateLimit | PutConcurrency | DeleteLimit | PutQueue):
        return flow_to_plain(body)
    if isinstance(body, WorkerBeat | WorkerControl):
        return worker_codec.to_plain(body)
    return []


def schedule_spec_to_plain(s: ScheduleSpec) -> list[Any]:
    return [s.id, spec_to_plain(s.task), s.cron, s.every_ms, s.timezone, s.overlap, s.catchup,
            s.catchup_window_ms, s.jitter_ms, s.start_ms, s.end_ms]


def _lease(v: Any) -> tuple[str, int]:
    task_id, token = _list(v, 2)
    return _str(task_id), _int(token)


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


def _deps(v: Any) -> Deps:
    parents, on_parent_failure, run_when, pass_results = _list(v, 4)
    if not isinstance(pass_results, bool):
        raise DecodeError("pass_results must be a boolean")
    return Deps([_str(p) for p in _list(parents)], _str(on_parent_failure), _str(run_when),
                pass_results)


def _linked(p: Any) -> Linked:
    specs, deps, workflow_id, keys = _list(p, 4)
    tasks = _specs(specs)
    links = [_deps(d) for d in _list(deps, len(tasks))]
    return Linked(tasks, links, _str(workflow_id), [_str(k) for k in _list(keys)])


def schedule_spec_from_plain(p: Any) -> ScheduleSpec:
    id, task, cron, every_ms, timezone, overlap, catchup, window, jitter, start, end = _list(p, 11)
    return ScheduleSpec(_str(id), spec_from_plain(task), _str(cron), _int(every_ms),
                        _str(timezone), _str(overlap), _str(catchup), _int(window), _int(jitter),
                        _int(start), _int(end))


def _put_schedule(p: Any) -> PutSchedule:
    row = _list(p, 12)
    return PutSchedule(schedule_spec_from_plain(row[:11]),
                       None if row[11] is None else _bool(row[11]))


def _fire(p: Any) -> Fire:
    schedule_id, tick_ms, generation, task, manual = _list(p, 5)
    return Fire(_str(schedule_id), _int(tick_ms), _int(generation), spec_from_plain(task),
                _bool(manual))


def _claim(p: Any) -> Claim:
    row = _list(p)
    if len(row) not in (6, 7, 8):  # 7: with steal_from; 8: and the task names
        raise DecodeError(f"a claim has 6 to 8 fields, not {len(row)}")
    worker_id, queues, max_, lease_ms, host, pid = row[:6]
    steal = [_str(q) for q in _list(row[6])] if len(row) >= 7 else []
    names = [_str(n) for n in _list(row[7])] if len(row) == 8 else None
    return Claim(
        _str(worker_id), [_str(q) for q in _list(queues)], _int(max_), _int(lease_ms),
        _str(host), _int(pid), steal, names,
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


def _progress(p: Any) -> Progress:
    worker_id, items = _list(p, 2)
    out = []
    for item in _list(items):
        task_id, token, permille, message = _list(item, 4)
        out.append((_str(task_id), _int(token), _int(permille), _str(message)))
    return Progress(_str(worker_id), out)


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
    Op.LINKED: _linked,
    Op.CANCEL_WORKFLOW: lambda p: CancelWorkflow(*_id_actor(p)),
    Op.PUT_SCHEDULE: _put_schedule,
    Op.DELETE_SCHEDULE: lambda p: DeleteSchedule(_str(_list(p, 1)[0])),
    Op.PAUSE_SCHEDULE: lambda p: PauseSchedule(_str(_list(p, 2)[0]), _bool(p[1])),
    Op.FIRE: _fire,
    Op.SEED_MEMBERS: member_codec.seed_members,
    Op.ADD_MEMBER: member_codec.add_member,
    Op.REMOVE_MEMBER: member_codec.remove_member,
    Op.MEMBER_READY: member_codec.member_ready,
    **FLOW_FROM_PLAIN,
    Op.WORKER_BEAT: worker_codec.beat,
    Op.WORKER_CONTROL: worker_codec.control,
    Op.PROGRESS: _progress,
    Op.RETRY_NOW: lambda p: RetryNow(*_id_actor(p)),
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
