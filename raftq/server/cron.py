"""When a schedule's ticks fall: cron expressions, time zones, DST, intervals.

This is the edge's half of schedules (the log's half, which fires are accepted,
is ``raftq.state.schedules``): it runs on the leader, which proposes the due
ticks, and on any node that shows a schedule's next fires. Cron is evaluated
with cronsim: a small, typed library without dependencies, maintained with
the Healthchecks.io service that runs it on millions of checks, and which
follows Debian cron on DST: a job at a fixed local time that falls into a
spring-forward gap runs at the first minute after it, and one in a fall-back
hour runs once (at its first occurrence). Expressions have 5 fields, or 6 with
seconds first. ``every_ms`` ticks are ``start_ms + k * every_ms`` (from the
epoch when there is no ``start_ms``), so every node and every leader computes
the same ones.

Which due ticks are proposed follows the catch-up policy: a tick at most
``ON_TIME_MS`` old is on time and always proposed; of older (missed) ticks
within ``catchup_window_ms``, ``all`` proposes each, ``latest`` only the newest
and ``none`` none.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from raftq.state.commands import ScheduleSpec
from raftq.state.schedules import ON_TIME_MS

# Ticks looked at per schedule in one computation: a schedule far behind is
# caught up over several rounds (its cursor moves with each fire).
MAX_TICKS = 1000


class BadSchedule(ValueError):
    """A cron expression or time zone that cannot be used; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadSchedule("timezone", f"unknown time zone {name!r:.80}") from None


def check(cron: str, timezone: str) -> None:
    """Raise ``BadSchedule`` unless ``cron`` in ``timezone`` can be evaluated."""
    tz = zone(timezone)
    try:
        next(CronSim(cron, datetime.now(tz)))
    except (CronSimError, StopIteration, ValueError, IndexError) as exc:
        raise BadSchedule("cron", f"cron {cron!r:.80} is not valid: {exc}") from None


def ticks_after(spec: ScheduleSpec, after_ms: int, until_ms: int,
                limit: int = MAX_TICKS) -> list[int]:
    """The schedule's ticks in (after_ms, until_ms], inside start/end, oldest first."""
    lo = max(after_ms, spec.start_ms - 1)
    hi = min(until_ms, spec.end_ms) if spec.end_ms else until_ms
    if hi <= lo:
        return []
    if spec.every_ms:
        k = (lo - spec.start_ms) // spec.every_ms + 1
        first = spec.start_ms + k * spec.every_ms
        return list(range(first, hi + 1, spec.every_ms)[:limit])
    return _cron_ticks(spec.cron, spec.timezone, lo, hi, limit)


def _cron_ticks(cron: str, timezone: str, lo: int, hi: int, limit: int) -> list[int]:
    tz = zone(timezone)
    start = datetime.fromtimestamp(lo // 1000, UTC).astimezone(tz)  # whole seconds
    out: list[int] = []
    for dt in CronSim(cron, start):
        tick = int(dt.timestamp()) * 1000
        if tick > hi or len(out) >= limit:
            break
        if tick > lo and (not out or tick > out[-1]):
            out.append(tick)
    return out


def next_ticks(spec: ScheduleSpec, after_ms: int, n: int, horizon_ms: int) -> list[int]:
    """Up to ``n`` ticks after ``after_ms`` and before ``horizon_ms``."""
    return ticks_after(spec, after_ms, horizon_ms, n)


def due(spec: ScheduleSpec, cursor_ms: int, now_ms: int) -> list[int]:
    """The ticks to propose at ``now_ms`` for a schedule decided up to ``cursor_ms``."""
    window = ON_TIME_MS if spec.catchup == "none" else max(spec.catchup_window_ms, ON_TIME_MS)
    ticks = ticks_after(spec, max(cursor_ms, now_ms - window - 1), now_ms,
                        limit=MAX_TICKS if spec.catchup == "all" else 10 * MAX_TICKS)
    missed = [t for t in ticks if now_ms - t > ON_TIME_MS]
    on_time = ticks[len(missed):]
    if spec.catchup == "all":
        return ticks
    if spec.catchup == "latest" and missed:
        return [missed[-1], *on_time]
    return on_time
