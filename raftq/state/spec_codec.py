"""The msgpack form of a task spec (``raftq.state.commands.TaskSpec``), in every shape
it has had: 10 fields (version 1's, ``_legacy_specs``), 11, 13 with an expiry, 14
with a tenant, 18 with limit and uniqueness keys. Used by ``raftq.state.encoding``."""

from __future__ import annotations

from typing import Any

from raftq.state.commands import TaskSpec
from raftq.state.plain import DecodeError, _int, _list, _str


def spec_to_plain(t: TaskSpec) -> list[Any]:
    if t.rate_key or t.concurrency_key or t.unique_key or t.unique_for_ms:
        return [t.id, t.name, t.queue, t.priority, t.payload, t.delay_ms, t.eta_ms,
                t.max_attempts, t.timeout_ms, t.retry_backoff_ms, t.result_ttl_ms,
                t.expires_ms, t.expires_at_ms, t.tenant, t.rate_key, t.concurrency_key,
                t.unique_key, t.unique_for_ms]
    if t.tenant:
        return [t.id, t.name, t.queue, t.priority, t.payload, t.delay_ms, t.eta_ms,
                t.max_attempts, t.timeout_ms, t.retry_backoff_ms, t.result_ttl_ms,
                t.expires_ms, t.expires_at_ms, t.tenant]
    if t.expires_ms or t.expires_at_ms:
        return [t.id, t.name, t.queue, t.priority, t.payload, t.delay_ms, t.eta_ms,
                t.max_attempts, t.timeout_ms, t.retry_backoff_ms, t.result_ttl_ms,
                t.expires_ms, t.expires_at_ms]
    return [t.id, t.name, t.queue, t.priority, t.payload, t.delay_ms, t.eta_ms,
            t.max_attempts, t.timeout_ms, t.retry_backoff_ms, t.result_ttl_ms]


def _specs(rows: Any) -> list[TaskSpec]:
    """The specs of a Submit. Rows of the usual shape are checked in one expression
    (every node decodes every task); any other row goes through ``spec_from_plain``, which
    accepts it or raises the precise error."""
    out: list[TaskSpec] = []
    append = out.append
    for row in _list(rows):
        n = len(row) if type(row) is list else 0
        if n == 11 or n == 14 and type(row[13]) is str and type(row[11]) is int \
                and type(row[12]) is int and (row[11] | row[12]) >> 53 == 0 \
                or n == 18 and _plain_flow(row):
            id, name, queue, prio, payload, delay, eta, attempts, timeout, backoff, ttl = row[:11]
            if (
                type(id) is str and type(name) is str and type(queue) is str
                and type(payload) is bytes
                and type(prio) is int and type(delay) is int and type(eta) is int
                and type(attempts) is int
                and type(timeout) is int and type(backoff) is int and type(ttl) is int
                # all in [0, 2**53): negative ones and 2**53 itself take the long way
                and (prio | delay | eta | attempts | timeout | backoff | ttl) >> 53 == 0
            ):
                if n == 11:
                    append(TaskSpec(id, name, queue, prio, payload, delay, eta, attempts,
                                    timeout, backoff, ttl))
                elif n == 14:
                    append(TaskSpec(id, name, queue, prio, payload, delay, eta, attempts,
                                    timeout, backoff, ttl, row[11], row[12], row[13]))
                else:
                    append(TaskSpec(id, name, queue, prio, payload, delay, eta, attempts,
                                    timeout, backoff, ttl, *row[11:]))
                continue
        append(spec_from_plain(row))
    return out


def _plain_flow(row: list[Any]) -> bool:
    """The 7 last fields of an 18-field spec have their usual types (and are >= 0)."""
    expires, expires_at, tenant, rate_key, conc_key, unique_key, unique_for = row[11:]
    return (type(expires) is int and type(expires_at) is int and type(unique_for) is int
            and type(tenant) is str and type(rate_key) is str and type(conc_key) is str
            and type(unique_key) is str and (expires | expires_at | unique_for) >> 53 == 0)


def spec_from_plain(v: Any) -> TaskSpec:
    row = _list(v)
    if len(row) not in (11, 13, 14, 18):
        raise DecodeError(f"a task spec has 11, 13, 14 or 18 fields, not {len(row)}")
    id, name, queue, prio, payload, delay, eta, attempts, timeout, backoff, ttl = row[:11]
    expires, expires_at = row[11:13] or (0, 0)
    tenant, rate_key, concurrency_key, unique_key, unique_for = (
        row[13:] if len(row) == 18 else [*row[13:14], "", "", "", 0] if len(row) == 14
        else ("", "", "", "", 0))
    if not isinstance(payload, bytes):
        raise DecodeError("a task payload must be bytes")
    return TaskSpec(
        _str(id), _str(name), _str(queue), _int(prio), payload, _int(delay), _int(eta),
        _int(attempts), _int(timeout), _int(backoff), _int(ttl), _int(expires), _int(expires_at),
        _str(tenant), _str(rate_key), _str(concurrency_key), _str(unique_key), _int(unique_for),
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
