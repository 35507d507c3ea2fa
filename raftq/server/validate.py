"""Validation of HTTP request bodies into commands' parts.

Each function takes decoded JSON and returns typed values or raises
``InvalidRequest`` naming the field. Nothing here touches the state.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from functools import lru_cache
from typing import Any

import msgpack

from raftq.errors import InvalidRequest, PayloadTooLarge
from raftq.server import contract as c
from raftq.state import listing
from raftq.state.commands import Outcome, TaskSpec
from raftq.state.model import (
    DEFAULT_LEASE_MS,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE,
    DEFAULT_RETRY_BACKOFF_MS,
    DEFAULT_TIMEOUT_MS,
    PRIORITY_NAMES,
    Status,
)

# The limits and the task spec's fields are the API contract's (raftq.server.contract),
# which GET /openapi.json describes.
MAX_BATCH = c.MAX_BATCH
MAX_CLAIM = c.MAX_CLAIM
MAX_WAIT_MS = c.MAX_WAIT_MS
MAX_ID_LEN = c.MAX_ID_LEN
NAME_RE = c.NAME_RE
DAY_MS = c.DAY_MS
TASK_FIELDS = frozenset(c.TASK_FIELDS)
_ATTEMPTS, _TIMEOUT, _BACKOFF = c.MAX_ATTEMPTS, c.TIMEOUT_MS, c.RETRY_BACKOFF_MS
_TTL, _DELAY, _EXPIRES = c.RESULT_TTL_MS, c.DELAY_MS, c.EXPIRES_MS
KEY_RE = c.KEY_RE  # a limit key or tenant: no "/"


class _NotFinite(ValueError):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _refuse_constant(text: str) -> Any:
    raise _NotFinite(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


class _Marked:
    """Where a non-finite number was, found again to name its field."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _mark_float(text: str) -> float | _Marked:
    value = float(text)
    return value if math.isfinite(value) else _Marked(text)


_STRICT = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
_MARKING = json.JSONDecoder(parse_constant=_Marked, parse_float=_mark_float)


def _find_marked(value: Any, path: str) -> tuple[str, str] | None:
    if isinstance(value, _Marked):
        return path, value.text
    items: Any = (value.items() if isinstance(value, dict)
                  else enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        found = _find_marked(item, f"{path}[{key}]" if isinstance(key, int) else _f(path, key))
        if found is not None:
            return found
    return None


def json_body(raw: bytes) -> Any:
    """The decoded body. JSON has no NaN or Infinity (Python's json reads them,
    and 1e999 as infinity, and orjson would later write them as null): a body
    holding one is refused, naming its field."""
    try:
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
        return _STRICT.decode(text)
    except _NotFinite as exc:
        found = _find_marked(_MARKING.decode(text), "")
        name, number = found if found is not None else ("", exc.text)
        raise InvalidRequest(f"{name or 'body'} is {number}: numbers must be finite "
                             "(no NaN, Infinity or out of range)", field=name or None) from None
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"body is not valid JSON: {exc}") from None


def obj(body: Any, allowed: AbstractSet[str], where: str = "") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest(f"{where or 'body'} must be a JSON object", field=where or None)
    unknown = sorted(set(body) - allowed)
    if unknown:
        name = f"{where}.{unknown[0]}" if where else unknown[0]
        raise InvalidRequest(f"unknown field {name!r}", field=name)
    return body


def _f(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def string(body: dict[str, Any], key: str, where: str = "", *, default: str | None = None,
           pattern: re.Pattern[str] | None = None, max_len: int = MAX_ID_LEN) -> str:
    value = body.get(key, default)
    name = _f(where, key)
    if value is None:
        raise InvalidRequest(f"{name} is required", field=name)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise InvalidRequest(f"{name} must be a non-empty string of at most {max_len} "
                             "characters", field=name)
    if pattern is not None and not pattern.match(value):
        chars = "_.:-" if pattern is KEY_RE else "_.:-/"
        raise InvalidRequest(f"{name} may only contain letters, digits and {chars}", field=name)
    return value


def integer(body: dict[str, Any], key: str, where: str = "", *, default: int | None = None,
            lo: int = 0, hi: int = 2**53) -> int:
    value = body.get(key, default)
    name = _f(where, key)
    if value is None:
        raise InvalidRequest(f"{name} is required", field=name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRequest(f"{name} must be an integer", field=name)
    if value < lo or value > hi:
        raise InvalidRequest(f"{name} must be between {lo} and {hi}", field=name)
    return value


def boolean(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise InvalidRequest(f"{key} must be true or false", field=key)
    return value


def priority(value: Any, name: str = "priority") -> int:
    if value is None:
        return DEFAULT_PRIORITY
    if isinstance(value, str) and value in PRIORITY_NAMES:
        return PRIORITY_NAMES[value]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255:
        return value
    raise InvalidRequest(
        f"{name} must be one of {', '.join(PRIORITY_NAMES)} or an integer 0-255", field=name
    )


def string_list(body: dict[str, Any], key: str, default: list[str]) -> list[str]:
    value = body.get(key, default)
    if (
        not isinstance(value, list)
        or not value
        or len(value) > 50
        or not all(isinstance(v, str) and NAME_RE.match(v) for v in value)
    ):
        raise InvalidRequest(f"{key} must be a non-empty list of queue names", field=key)
    return list(dict.fromkeys(value))


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


def lease_ms(body: dict[str, Any]) -> int:
    return integer(body, "lease_ms", default=DEFAULT_LEASE_MS, lo=100, hi=DAY_MS)


def wait_ms(value: Any, name: str = "wait_ms") -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        if not value.isdigit():
            raise InvalidRequest(f"{name} must be a non-negative integer", field=name)
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_WAIT_MS:
        raise InvalidRequest(f"{name} must be an integer 0-{MAX_WAIT_MS}", field=name)
    return value


def list_query(q: Mapping[str, str]) -> dict[str, Any]:
    """``GET /v1/tasks``'s query: the keyword arguments of ``listing.page``."""
    unknown = sorted(set(q) - {"status", "queue", "name", "tenant", "limit", "cursor",
                              "consistency"})
    if unknown:
        raise InvalidRequest(f"unknown query parameter {unknown[0]!r}", field=unknown[0])
    status = None
    if "status" in q:
        try:
            status = Status(q["status"])
        except ValueError:
            raise InvalidRequest(f"status must be one of {', '.join(Status)}",
                                 field="status") from None
    limit = wait_ms(q["limit"], "limit") if "limit" in q else 100
    if not 1 <= limit <= 1000:
        raise InvalidRequest("limit must be 1-1000", field="limit")
    cursor = q.get("cursor") or None
    if cursor is not None:
        try:
            listing.decode_cursor(cursor)
        except listing.BadCursor:
            raise InvalidRequest("cursor must be the next_cursor of an earlier page",
                                 field="cursor") from None
    return {"status": status, "queue": q.get("queue"), "name": q.get("name"),
            "tenant": q.get("tenant"), "limit": limit, "cursor": cursor}


def leases(body: dict[str, Any]) -> list[tuple[str, int]]:
    value = body.get("leases")
    if not isinstance(value, list) or len(value) > MAX_CLAIM:
        raise InvalidRequest(f"leases must be a list of at most {MAX_CLAIM}", field="leases")
    out = []
    for i, item in enumerate(value):
        where = f"leases[{i}]"
        item = obj(item, {"id", "lease_token"}, where)
        out.append((string(item, "id", where), integer(item, "lease_token", where, lo=1)))
    return out


def error_value(value: Any, name: str = "error") -> dict[str, str]:
    if isinstance(value, str):
        return {"type": "Error", "message": value[:10_000], "traceback": ""}
    if isinstance(value, dict):
        value = obj(value, {"type", "message", "traceback"}, name)
        out = {}
        for key in ("type", "message", "traceback"):
            v = value.get(key, "")
            if not isinstance(v, str):
                raise InvalidRequest(f"{name}.{key} must be a string", field=f"{name}.{key}")
            out[key] = v[:64_000]
        return out
    raise InvalidRequest(f"{name} must be a string or an object with type, message, traceback",
                         field=name)


def pack(value: Any, name: str) -> bytes:
    try:
        return bytes(msgpack.packb(value, use_bin_type=True))
    except (OverflowError, ValueError, TypeError) as exc:
        raise InvalidRequest(f"{name} cannot be stored: {exc}", field=name) from None


def result_bytes(value: Any, max_payload: int, name: str = "result") -> bytes:
    data = pack(value, name)
    if len(data) > max_payload:
        raise PayloadTooLarge(f"{name} encodes to {len(data)} bytes, over {max_payload}",
                              field=name)
    return data


def outcome(body: Any, where: str, max_payload: int, task_id: str | None = None) -> Outcome:
    allowed = {"lease_token", "result", "error", "retry"} | ({"id"} if task_id is None else set())
    body = obj(body, allowed, where)
    tid = task_id if task_id is not None else string(body, "id", where)
    token = integer(body, "lease_token", where, lo=1)
    if "error" in body:
        retry = body.get("retry", True)
        if not isinstance(retry, bool):
            raise InvalidRequest(f"{_f(where, 'retry')} must be true or false",
                                 field=_f(where, "retry"))
        return Outcome(tid, token, None, error_value(body["error"], _f(where, "error")), retry)
    if "retry" in body:
        raise InvalidRequest(f"{_f(where, 'retry')} only goes with error", field=_f(where, "retry"))
    return Outcome(tid, token, result_bytes(body.get("result"), max_payload,
                                            _f(where, "result")), None, True)
