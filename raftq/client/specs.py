"""A submission's wire form: ``Client.submit``'s keywords (seconds, datetimes)
turned into the API's ``_ms`` fields, with a client-made task id so a retried
submission never creates a second task."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from raftq import errors
from raftq.client.request import Json, new_id

_SECONDS_FIELDS = {
    "delay": "delay_ms",
    "timeout": "timeout_ms",
    "retry_backoff": "retry_backoff_ms",
    "result_ttl": "result_ttl_ms",
    "expires": "expires_ms",
    "unique_for": "unique_for_ms",
}


def _ms(seconds: float, name: str) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise errors.InvalidRequest(f"{name} must be a number of seconds", field=name)
    return round(seconds * 1000)


def eta_ms(eta: dt.datetime | float) -> int:
    """Epoch milliseconds of an ETA given as a datetime (naive means local) or epoch seconds."""
    if isinstance(eta, dt.datetime):
        return round(eta.timestamp() * 1000)
    return _ms(eta, "eta")


def task_spec(spec: Mapping[str, Any]) -> Json:
    """The wire form of one submission.

    Accepts the keyword names of ``Client.submit`` (``delay``, ``timeout``,
    ``retry_backoff``, ``result_ttl`` and ``expires`` in seconds, ``eta`` and
    ``expires_at`` as a datetime or epoch seconds) as well as the API's own ``_ms``
    fields, which pass through.
    Always sets ``id``: a retried submission must present the same one.
    """
    out: Json = {}
    for key, value in spec.items():
        if value is None:
            continue
        if key in _SECONDS_FIELDS:
            out[_SECONDS_FIELDS[key]] = _ms(value, key)
        elif key in ("eta", "expires_at"):
            out[f"{key}_ms"] = eta_ms(value)
        elif key == "args":
            out["args"] = list(value)
        else:
            out[key] = value
    if "name" not in out:
        raise errors.InvalidRequest("a task spec needs a name", field="name")
    out.setdefault("id", new_id())
    return out
