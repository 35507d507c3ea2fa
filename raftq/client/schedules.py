"""The schedule calls of both clients, and the body of ``PUT /v1/schedules/{id}`` from
Python-friendly arguments.

Durations are seconds (``every``, ``timeout``, ``retry_backoff``,
``result_ttl``, ``expires``, ``catchup_window``, ``jitter``), ``start`` and
``end`` a datetime or epoch seconds, like ``Client.submit``. Shared by both
clients, ``@task(cron=...)`` and ``raftq schedules``. ``ScheduleCalls`` and
``AsyncScheduleCalls`` are the calls themselves, mixed into ``Client`` and
``AsyncClient`` (whose ``_call`` sends them, with failover and retries).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from raftq import errors
from raftq.client import calls
from raftq.client.calls import Call, Json, JsonList, eta_ms

_TASK_SECONDS = {"timeout": "timeout_ms", "retry_backoff": "retry_backoff_ms",
                 "result_ttl": "result_ttl_ms", "expires": "expires_ms"}
_TASK_PLAIN = ("queue", "priority", "max_attempts")
_SCHEDULE_SECONDS = {"every": "every_ms", "catchup_window": "catchup_window_ms",
                     "jitter": "jitter_ms"}
_SCHEDULE_PLAIN = ("cron", "timezone", "overlap", "catchup", "paused")
OPTIONS = frozenset({*_TASK_SECONDS, *_TASK_PLAIN, *_SCHEDULE_SECONDS, *_SCHEDULE_PLAIN,
                     "start", "end"})


def _ms(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise errors.InvalidRequest(f"{name} must be a number of seconds", field=name)
    return round(value * 1000)


def schedule_body(name: str, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None,
                  **options: Any) -> Json:
    """The PUT body of a schedule running task ``name(*args, **kwargs)``; ``options`` are
    those of ``OPTIONS`` (None leaves the node's default)."""
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise TypeError(f"unknown schedule option {unknown[0]!r}")
    task: Json = {"name": name, "args": list(args), "kwargs": dict(kwargs or {})}
    body: Json = {"task": task}
    for key, value in options.items():
        if value is None:
            continue
        if key in _TASK_SECONDS:
            task[_TASK_SECONDS[key]] = _ms(value, key)
        elif key in _TASK_PLAIN:
            task[key] = value
        elif key in _SCHEDULE_SECONDS:
            body[_SCHEDULE_SECONDS[key]] = _ms(value, key)
        elif key in ("start", "end"):
            body[f"{key}_ms"] = eta_ms(value) if isinstance(value, dt.datetime) else _ms(value, key)
        else:
            body[key] = value
    return body


class ScheduleCalls:
    """The schedule calls of ``Client``."""

    def _call(self, call: Call, node: str | None = None) -> Any:
        raise NotImplementedError  # Client's

    def put_schedule(self, id: str, name: str, args: Sequence[Any] = (),
                     kwargs: Mapping[str, Any] | None = None, **options: Any) -> Json:
        """Create or update schedule ``id`` running task ``name``; ``options`` as for
        ``raftq.client.schedules.schedule_body`` (``cron=``/``every=``, ``timezone=``, ...).
        The answer: ``{"schedule", "created", "changed"}``."""
        body = schedule_body(name, args, kwargs, **options)
        out: Json = self._call(calls.put_schedule(id, body))
        return out

    def schedules(self) -> JsonList:
        out: JsonList = self._call(calls.schedules())
        return out

    def schedule(self, id: str) -> Json:
        out: Json = self._call(calls.get_schedule(id))
        return out

    def delete_schedule(self, id: str) -> Json:
        out: Json = self._call(calls.delete_schedule(id))
        return out

    def pause_schedule(self, id: str) -> Json:
        out: Json = self._call(calls.schedule_action(id, "pause"))
        return out

    def resume_schedule(self, id: str) -> Json:
        out: Json = self._call(calls.schedule_action(id, "resume"))
        return out

    def trigger_schedule(self, id: str) -> Json:
        """Run the schedule's task once now; the task."""
        out: Json = self._call(calls.schedule_action(id, "trigger"))
        return out


class AsyncScheduleCalls:
    """The schedule calls of ``AsyncClient``."""

    async def _call(self, call: Call, node: str | None = None) -> Any:
        raise NotImplementedError  # AsyncClient's

    async def put_schedule(self, id: str, name: str, args: Sequence[Any] = (),
                     kwargs: Mapping[str, Any] | None = None, **options: Any) -> Json:
        """Create or update schedule ``id`` running task ``name``; ``options`` as for
        ``raftq.client.schedules.schedule_body`` (``cron=``/``every=``, ``timezone=``, ...).
        The answer: ``{"schedule", "created", "changed"}``."""
        body = schedule_body(name, args, kwargs, **options)
        out: Json = await self._call(calls.put_schedule(id, body))
        return out

    async def schedules(self) -> JsonList:
        out: JsonList = await self._call(calls.schedules())
        return out

    async def schedule(self, id: str) -> Json:
        out: Json = await self._call(calls.get_schedule(id))
        return out

    async def delete_schedule(self, id: str) -> Json:
        out: Json = await self._call(calls.delete_schedule(id))
        return out

    async def pause_schedule(self, id: str) -> Json:
        out: Json = await self._call(calls.schedule_action(id, "pause"))
        return out

    async def resume_schedule(self, id: str) -> Json:
        out: Json = await self._call(calls.schedule_action(id, "resume"))
        return out

    async def trigger_schedule(self, id: str) -> Json:
        """Run the schedule's task once now; the task."""
        out: Json = await self._call(calls.schedule_action(id, "trigger"))
        return out
