"""Task specs from JSON task objects: ``POST /v1/tasks``, its batch form, and
the tasks of workflows and schedules.

A batch is checked on the receiving node task by task, so the common shape
takes a one-pass path (``_plain_task_spec``); anything else goes field by
field (``_task_spec``), which names the bad field. The fields and their
limits are the API contract's (``raftq.server.contract``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import msgpack

from raftq.errors import InvalidRequest, PayloadTooLarge
from raftq.server import contract as c
from raftq.server.fields import (
    DAY_MS,
    KEY_RE,
    MAX_ID_LEN,
    NAME_RE,
    _f,
    integer,
    obj,
    pack,
    priority,
    string,
)
from raftq.state.commands import TaskSpec
from raftq.state.model import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    DEFAULT_RETRY_BACKOFF_MS,
    DEFAULT_TIMEOUT_MS,
    PRIORITY_NAMES,
)

TASK_FIELDS = frozenset(c.TASK_FIELDS)
_ATTEMPTS, _TIMEOUT, _BACKOFF = c.MAX_ATTEMPTS, c.TIMEOUT_MS, c.RETRY_BACKOFF_MS
_TTL, _DELAY, _EXPIRES = c.RESULT_TTL_MS, c.DELAY_MS, c.EXPIRES_MS


def task_spec(
    body: Any, *, where: str, new_id: Callable[[], str], result_ttl_ms: int, max_payload: int,
) -> TaskSpec:
    """A task spec from a JSON task object; ``InvalidRequest`` names the bad field.

    ``delay_ms`` and ``eta_ms`` travel as given: the state machine turns them into
    a time on the replicated clock when it applies the submit."""
    if type(body) is dict and body.keys() <= TASK_FIELDS:
        spec = _plain_task_spec(body, new_id, result_ttl_ms, max_payload)
        if spec is not None:
            return spec
    return _task_spec(body, where=where, new_id=new_id, result_ttl_ms=result_ttl_ms,
                      max_payload=max_payload)


def task_specs(
    bodies: list[Any], *, new_id: Callable[[], str], result_ttl_ms: int, max_payload: int,
) -> list[TaskSpec]:
    """The specs of a batch's ``tasks`` (errors name ``tasks[i]``); their ids must be unique."""
    specs: list[TaskSpec] = []
    for i, body in enumerate(bodies):
        spec = None
        if type(body) is dict and body.keys() <= TASK_FIELDS:
            spec = _plain_task_spec(body, new_id, result_ttl_ms, max_payload)
        if spec is None:
            spec = _task_spec(body, where=f"tasks[{i}]", new_id=new_id,
                              result_ttl_ms=result_ttl_ms, max_payload=max_payload)
        specs.append(spec)
    if len({spec.id for spec in specs}) != len(specs):
        raise InvalidRequest("task ids in a batch must be unique", field="tasks")
    return specs


# msgpack of ``[[], {}]``: the payload of a task without arguments.
_NO_ARGS = b"\x92\x90\x80"
_packer = msgpack.Packer(use_bin_type=True)


@lru_cache(maxsize=1024)  # a batch names the same task and queue over and over
def _good_name(value: str) -> bool:
    return len(value) <= MAX_ID_LEN and NAME_RE.match(value) is not None


@lru_cache(maxsize=4096)
def _good_key(value: str) -> bool:
    return KEY_RE.match(value) is not None


def _plain_task_spec(
    body: dict[str, Any], new_id: Callable[[], str], result_ttl_ms: int, max_payload: int,
) -> TaskSpec | None:
    """The spec of a valid task without a delay, checked in one pass; None for anything else.

    Batch submits validate every task on the receiving node, so the common
    shape gets this path; whatever it does not accept goes through
    ``_task_spec``, which accepts or rejects it field by field. Both must give
    the same spec for a body this one accepts (a unit test compares them).
    """
    get = body.get
    name: Any = get("name")
    queue = get("queue", DEFAULT_QUEUE)
    args = get("args", [])
    kwargs = get("kwargs", {})
    prio = get("priority")
    tenant = get("tenant", "")
    attempts = get("max_attempts", DEFAULT_MAX_ATTEMPTS)
    timeout = get("timeout_ms", DEFAULT_TIMEOUT_MS)
    backoff = get("retry_backoff_ms", DEFAULT_RETRY_BACKOFF_MS)
    ttl = get("result_ttl_ms", result_ttl_ms)
    if prio is None:
        prio = DEFAULT_PRIORITY
    elif type(prio) is str:
        prio = PRIORITY_NAMES.get(prio)
    if not (
        type(name) is str and _good_name(name) and type(queue) is str and _good_name(queue)
        and type(args) is list and type(kwargs) is dict
        and type(prio) is int and 0 <= prio <= 255
        and type(attempts) is int and _ATTEMPTS.lo <= attempts <= _ATTEMPTS.hi
        and type(timeout) is int and _TIMEOUT.lo <= timeout <= _TIMEOUT.hi
        and type(backoff) is int and _BACKOFF.lo <= backoff <= _BACKOFF.hi
        and type(ttl) is int and _TTL.lo <= ttl <= _TTL.hi
        and "delay_ms" not in body and "eta_ms" not in body
        and "expires_ms" not in body and "expires_at_ms" not in body
        and (tenant == "" or type(tenant) is str and _good_key(tenant))
        and "rate_key" not in body and "concurrency_key" not in body and "unique_key" not in body
        and "unique_for_ms" not in body
    ):
        return None
    if args or kwargs:
        try:
            payload = _packer.pack([args, kwargs])
        except (OverflowError, ValueError, TypeError):
            return None
        if len(payload) > max_payload:
            return None
    else:
        payload = _NO_ARGS
    if "id" in body:
        task_id = body["id"]
        if type(task_id) is not str or not 0 < len(task_id) <= MAX_ID_LEN:
            return None
    else:
        task_id = new_id()
    return TaskSpec(task_id, name, queue, prio, payload, 0, 0, attempts, timeout, backoff, ttl,
                    0, 0, tenant)


def _task_spec(
    body: Any, *, where: str, new_id: Callable[[], str], result_ttl_ms: int, max_payload: int,
) -> TaskSpec:
    body = obj(body, TASK_FIELDS, where)
    name = string(body, "name", where, pattern=NAME_RE)
    task_id = string(body, "id", where) if "id" in body else new_id()
    args = body.get("args", [])
    if not isinstance(args, list):
        raise InvalidRequest(f"{_f(where, 'args')} must be a list", field=_f(where, "args"))
    kwargs = body.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise InvalidRequest(f"{_f(where, 'kwargs')} must be an object", field=_f(where, "kwargs"))
    payload = pack([args, kwargs], _f(where, "args"))
    if len(payload) > max_payload:
        raise PayloadTooLarge(
            f"{_f(where, 'args')}/kwargs encode to {len(payload)} bytes, over the limit of "
            f"{max_payload}", field=_f(where, "args"),
        )
    if "delay_ms" in body and "eta_ms" in body:
        raise InvalidRequest("give delay_ms or eta_ms, not both", field=_f(where, "eta_ms"))
    delay = eta = 0
    if "delay_ms" in body:
        delay = integer(body, "delay_ms", where, lo=_DELAY.lo, hi=_DELAY.hi)
    elif body.get("eta_ms") is not None:
        eta = integer(body, "eta_ms", where)
    return TaskSpec(
        id=task_id,
        name=name,
        queue=string(body, "queue", where, default=DEFAULT_QUEUE, pattern=NAME_RE),
        priority=priority(body.get("priority"), _f(where, "priority")),
        payload=payload,
        delay_ms=delay,
        eta_ms=eta,
        max_attempts=integer(body, "max_attempts", where, default=DEFAULT_MAX_ATTEMPTS,
                             lo=_ATTEMPTS.lo, hi=_ATTEMPTS.hi),
        timeout_ms=integer(body, "timeout_ms", where, default=DEFAULT_TIMEOUT_MS,
                           lo=_TIMEOUT.lo, hi=_TIMEOUT.hi),
        retry_backoff_ms=integer(body, "retry_backoff_ms", where,
                                 default=DEFAULT_RETRY_BACKOFF_MS, lo=_BACKOFF.lo,
                                 hi=_BACKOFF.hi),
        result_ttl_ms=integer(body, "result_ttl_ms", where, default=result_ttl_ms,
                              lo=_TTL.lo, hi=_TTL.hi),
        expires_ms=integer(body, "expires_ms", where, default=0, lo=_EXPIRES.lo,
                           hi=_EXPIRES.hi)
        if body.get("expires_ms") is not None else 0,
        expires_at_ms=integer(body, "expires_at_ms", where, lo=1)
        if body.get("expires_at_ms") is not None else 0,
        **_flow_fields(body, where),
    )


def _flow_fields(body: dict[str, Any], where: str) -> dict[str, Any]:
    """A task's tenant, limit keys and uniqueness (raftq.state.flow, raftq.state.unique)."""
    out: dict[str, Any] = {k: string(body, k, where, pattern=KEY_RE)
                           for k in ("tenant", "rate_key", "concurrency_key", "unique_key")
                           if body.get(k) not in (None, "")}
    if body.get("unique_for_ms") is not None:
        if not out.get("unique_key"):
            raise InvalidRequest(f"{_f(where, 'unique_for_ms')} needs unique_key",
                                 field=_f(where, "unique_for_ms"))
        out["unique_for_ms"] = integer(body, "unique_for_ms", where, hi=365 * DAY_MS)
    return out
