"""What workers send about the tasks they hold: lease lengths, the leases they
extend or release, and the outcome of a task (a result or an error) they
report; each check raises ``InvalidRequest`` naming the field.
"""

from __future__ import annotations

from typing import Any

from raftq.errors import InvalidRequest, PayloadTooLarge
from raftq.server.fields import DAY_MS, MAX_CLAIM, _f, integer, obj, pack, string
from raftq.state.commands import Outcome
from raftq.state.model import DEFAULT_LEASE_MS


def lease_ms(body: dict[str, Any]) -> int:
    return integer(body, "lease_ms", default=DEFAULT_LEASE_MS, lo=100, hi=DAY_MS)


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
