"""How both clients read a node's answer: the body as JSON, ``Retry-After``,
which statuses mean "try again (on another node)", the membership header,
and the error for a node that did not answer.
"""

from __future__ import annotations

import json
from typing import Any

from raftq import errors

# The header in which every node announces the cluster's membership epoch
# (lower case, as the transports keep header names).
MEMBERS_HEADER = "x-raftq-members"
# HTTP statuses after which the same call is tried again (on another node).
RETRY_STATUSES = frozenset({502, 503, 504, 507})


def decode_body(raw: bytes) -> Any:
    """A response body as JSON; a non-JSON one (a proxy's error page) as an error body."""
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return {"error": {"code": "error", "message": raw[:200].decode(errors="replace")}}


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def unreachable(node: str, exc: BaseException) -> errors.Unavailable:
    return errors.Unavailable(f"node {node} did not answer: {type(exc).__name__}: {exc}")
