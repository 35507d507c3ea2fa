"""Checks of one field of a decoded request: each returns a typed value or
raises ``InvalidRequest`` naming the field.

Objects without unknown fields, strings, integers, booleans, priorities,
lists of queue names, ``wait_ms``, ``GET /v1/tasks``' query, and values that
must be storable as msgpack. The limits are the API contract's
(``raftq.server.contract``), which ``GET /openapi.json`` describes. Nothing
here touches the state.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any

import msgpack

from raftq.errors import InvalidRequest
from raftq.server import contract as c
from raftq.state import listing
from raftq.state.model import DEFAULT_PRIORITY, PRIORITY_NAMES, Status

MAX_BATCH = c.MAX_BATCH
MAX_CLAIM = c.MAX_CLAIM
MAX_WAIT_MS = c.MAX_WAIT_MS
MAX_ID_LEN = c.MAX_ID_LEN
NAME_RE = c.NAME_RE
DAY_MS = c.DAY_MS
KEY_RE = c.KEY_RE  # a limit key or tenant: no "/"


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


def pack(value: Any, name: str) -> bytes:
    try:
        return bytes(msgpack.packb(value, use_bin_type=True))
    except (OverflowError, ValueError, TypeError) as exc:
        raise InvalidRequest(f"{name} cannot be stored: {exc}", field=name) from None
