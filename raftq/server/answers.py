"""What handlers answer with: state-machine rejections as exceptions, exceptions as
JSON error answers, and the ids the edge makes."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from raftq.errors import (
    AlreadyFinished,
    Conflict,
    InvalidRequest,
    NotFound,
    QueueFull,
    RaftqError,
    StaleLease,
    Unauthorized,
    Unavailable,
)
from raftq.server.messages import Response, json_response

_ERRORS: dict[str, type[RaftqError]] = {
    "not_found": NotFound,
    "stale_lease": StaleLease,
    "already_finished": AlreadyFinished,
    "conflict": Conflict,
    "invalid": InvalidRequest,
    "queue_full": QueueFull,
}


def raise_for(result: Any) -> Any:
    """Turn a state-machine rejection into the matching exception."""
    if isinstance(result, dict) and "error" in result:
        cls = _ERRORS.get(result["error"], RaftqError)
        raise cls(str(result.get("message", result["error"])))
    return result


def error_response(exc: RaftqError) -> Response:
    headers = None
    if isinstance(exc, Unavailable | QueueFull):
        headers = {"Retry-After": str(exc.retry_after_s)}
    elif isinstance(exc, Unauthorized):
        headers = {"WWW-Authenticate": 'Bearer realm="raftq"'}
    return json_response(exc.to_json(), status=exc.status, headers=headers)


class Ids:
    """Unique ids without a syscall each: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self.prefix = secrets.token_hex(12)
        self.counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):08x}"
