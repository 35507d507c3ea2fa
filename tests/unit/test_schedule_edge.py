"""The edge's half of schedules: cron and interval ticks, DST, catch-up, the leader's
timer, and the validation of a PUT body (raftq.server.cron, schedule_timer,
schedules_api)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from state_helpers import Harness, spec

from raftq.errors import InvalidRequest
from raftq.server import cron
from raftq.server.schedule_timer import ScheduleTimer, fire_for
from raftq.server.schedules_api import schedule_spec
from raftq.state import commands as c
from raftq.state.schedules import ON_TIME_MS, jitter_ms

MIN = 60_000


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def local(ticks: list[int], tz: str) -> list[str]:
    return [datetime.fromtimestamp(t / 1000, ZoneInfo(tz)).strftime("%m-%d %H:%M%z")
            for t in ticks]


def sched(**kw: Any) -> c.ScheduleSpec:
    return c.ScheduleSpec("s", spec(""), **kw)


# ----------------------------------------------------------------- DST, two zones


def test_a_fixed_time_in_the_spring_gap_runs_at_the_first_minute_after_it() -> None:
    berlin = sched(cron="30 2 * * *", timezone="Europe/Berlin")
    ticks = cron.ticks_after(berlin, ms("2026-03-27T12:00:00+00:00"),
                             ms("2026-03-30T12:00:00+00:00"))
    assert local(ticks, "Europe/Berlin") == [
        "03-28 02:30+0100", "03-29 03:00+0200", "03-30 02:30+0200"]
    new_york = sched(cron="0 2 * * *", timezone="America/New_York")
    ticks = cron.ticks_after(new_york, ms("2026-03-07T12:00:00+00:00"),
                             ms("2026-03-09T12:00:00+00:00"))
    assert local(ticks, "America/New_York") == ["03-08 03:00-0400", "03-09 02:00-0400"]


def test_a_fixed_time_in_the_repeated_autumn_hour_runs_once() -> None:
    berlin = sched(cron="30 2 * * *", timezone="Europe/Berlin")
    ticks = cron.ticks_after(berlin, ms("2026-10-24T12:00:00+00:00"),
                             ms("2026-10-26T12:00:00+00:00"))
    assert local(ticks, "Europe/Berlin") == ["10-25 02:30+0200", "10-26 02:30+0100"]
    new_york = sched(cron="30 1 * * *", timezone="America/New_York")
    ticks = cron.ticks_after(new_york, ms("2026-10-31T12:00:00+00:00"),
                             ms("2026-11-02T12:00:00+00:00"))
    assert local(ticks, "America/New_York") == ["11-01 01:30-0400", "11-02 01:30-0500"]


def test_an_interval_expression_keeps_real_time_across_both_transitions() -> None:
    every_half_hour = sched(cron="*/30 * * * *", timezone="Europe/Berlin")
    for start in ("2026-03-29T00:00:00+00:00", "2026-10-25T00:00:00+00:00"):
        ticks = cron.ticks_after(every_half_hour, ms(start), ms(start) + 3 * 3_600_000)
        assert [b - a for a, b in zip(ticks, ticks[1:], strict=False)] == [30 * MIN] * 5
    ticks = cron.ticks_after(every_half_hour, ms("2026-10-25T00:00:00+00:00"),
                             ms("2026-10-25T01:40:00+00:00"))
    assert local(ticks, "Europe/Berlin") == [
        "10-25 02:30+0200", "10-25 02:00+0100", "10-25 02:30+0100"]  # 02:xx twice


# ------------------------------------------------------------ */N, weekdays, every


def test_step_and_day_of_week_expressions() -> None:
    every_15 = sched(cron="*/15 * * * *")
    assert cron.ticks_after(every_15, ms("2026-11-30T10:07:00+00:00"),
                            ms("2026-11-30T11:00:00+00:00")) == [
        ms(f"2026-11-30T{t}:00+00:00") for t in ("10:15", "10:30", "10:45", "11:00")]
    weekdays = sched(cron="0 9 * * MON-FRI", timezone="America/New_York")
    ticks = cron.ticks_after(weekdays, ms("2026-11-27T00:00:00+00:00"),
                             ms("2026-12-02T23:00:00+00:00"))
    assert local(ticks, "America/New_York") == [
        "11-27 09:00-0500", "11-30 09:00-0500", "12-01 09:00-0500", "12-02 09:00-0500"]
    sundays = sched(cron="0 0 * * 0")
    ticks = cron.ticks_after(sundays, 0, 60 * 86_400_000)
    assert len(ticks) == 9
    assert all(datetime.fromtimestamp(t / 1000, UTC).isoweekday() == 7 for t in ticks)
    seconds = sched(cron="*/10 * * * * *")  # six fields: seconds first
    assert cron.ticks_after(seconds, 1_000, 35_000) == [10_000, 20_000, 30_000]


def test_interval_schedules_are_aligned_to_start_ms_or_the_epoch() -> None:
    assert cron.ticks_after(sched(every_ms=1000), 1_500, 4_000) == [2_000, 3_000, 4_000]
    assert cron.ticks_after(sched(every_ms=1000, start_ms=250), 1_500, 3_000) == [
        2_250]
    assert cron.ticks_after(sched(every_ms=1000, start_ms=5_000), 0, 7_000) == [
        5_000, 6_000, 7_000]


def test_end_ms_ends_the_ticks() -> None:
    s = sched(every_ms=1000, end_ms=3_000)
    assert cron.ticks_after(s, 0, 10_000) == [1_000, 2_000, 3_000]
    assert cron.ticks_after(s, 3_000, 10_000) == []


# ---------------------------------------------------------------------- catch-up


def test_catch_up_policies_choose_among_missed_ticks() -> None:
    now = 100 * MIN
    cursor = now - 30 * MIN  # the cluster had no leader for half an hour
    got = {p: cron.due(sched(every_ms=MIN, catchup=p, catchup_window_ms=10 * MIN), cursor, now)
           for p in ("all", "latest", "none")}
    assert got["all"] == list(range(now - 10 * MIN, now + 1, MIN))
    assert got["latest"] == [now - MIN, now]  # the newest missed tick, and the on-time one
    assert got["none"] == [now]
    assert cron.due(sched(every_ms=MIN, catchup="none"), cursor, now + ON_TIME_MS + 1) == []


# ------------------------------------------------------------------ the timer


class FakeReplica:
    def __init__(self, h: Harness) -> None:
        self.state = h.state


def test_the_timer_proposes_each_due_tick_once_and_skips_paused_schedules() -> None:
    h = Harness(now_ms=10 * MIN)
    for sid in ("a", "p"):
        h.run(c.PutSchedule(c.ScheduleSpec(sid, spec(""), every_ms=MIN, jitter_ms=500)))
    h.run(c.PauseSchedule("p", True))
    timer = ScheduleTimer(FakeReplica(h), SimpleNamespace())  # type: ignore[arg-type]
    assert timer.due_fires(10 * MIN + 59_999) == []
    fires = timer.due_fires(11 * MIN)
    assert [(f.schedule_id, f.tick_ms, f.task.id) for f in fires] == [
        ("a", 11 * MIN, f"a@{11 * MIN}")]
    assert fires[0].task.delay_ms == jitter_ms("a", 11 * MIN, 500)
    for f in fires:
        h.run(f, now_ms=11 * MIN)
    assert timer.due_fires(11 * MIN + 1000) == []  # the cursor moved: not proposed again
    h.run(c.PauseSchedule("p", False), now_ms=11 * MIN)
    assert [f.schedule_id for f in timer.due_fires(12 * MIN)] == ["a", "p"]
    h.run(c.DeleteSchedule("a"))
    assert [f.schedule_id for f in timer.due_fires(12 * MIN)] == ["p"]


def test_a_fire_from_the_timer_is_accepted_and_a_manual_one_has_its_own_id() -> None:
    h = Harness(now_ms=10 * MIN)
    h.run(c.PutSchedule(c.ScheduleSpec("a", spec(""), every_ms=MIN)))
    sched_a = h.state.schedules["a"]
    assert h.run(fire_for(sched_a, 11 * MIN), now_ms=11 * MIN)["outcome"] == "fired"
    manual = fire_for(sched_a, 11 * MIN, manual=True)
    assert manual.task.id == f"a@{11 * MIN}:trigger"
    assert h.run(manual, now_ms=11 * MIN)["outcome"] == "triggered"


# ------------------------------------------------------------------ validation


def put_body(**kw: Any) -> dict[str, Any]:
    return {"task": {"name": "report"}, **kw}


@pytest.mark.parametrize(("body", "field"), [
    (put_body(cron="* * *"), "cron"),
    (put_body(cron="61 * * * *"), "cron"),
    (put_body(cron="0 * * * *", timezone="Mars/Olympus"), "timezone"),
    (put_body(cron="0 * * * *", every_ms=1000), "every_ms"),
    (put_body(), "cron"),
    (put_body(every_ms=10), "every_ms"),
    (put_body(every_ms=1000, overlap="queue"), "overlap"),
    (put_body(every_ms=1000, catchup="some"), "catchup"),
    (put_body(every_ms=1000, start_ms=5, end_ms=5), "end_ms"),
    (put_body(every_ms=1000, paused="yes"), "paused"),
    (put_body(every_ms=1000, color="red"), "color"),
    ({"every_ms": 1000}, "task"),
    ({"every_ms": 1000, "task": {"name": "x", "delay_ms": 5}}, "task.delay_ms"),
    ({"every_ms": 1000, "task": {"name": "x", "id": "y"}}, "task.id"),
    ({"every_ms": 1000, "task": {"name": "x", "expires_ms": 0}}, "task.expires_ms"),
    ({"every_ms": 1000, "task": {}}, "task.name"),
])
def test_a_bad_put_names_its_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        schedule_spec(body, "s", result_ttl_ms=1000, max_payload=1000)
    assert info.value.field == field, info.value


def test_a_good_put_is_a_spec() -> None:
    spec_, paused = schedule_spec(
        put_body(cron="*/5 * * * *", timezone="Europe/Berlin", overlap="buffer_one",
                 catchup="all", jitter_ms=100, task={"name": "r", "args": [1],
                                                    "expires_ms": 5000}),
        "s", result_ttl_ms=1000, max_payload=1000)
    assert paused is None
    assert (spec_.cron, spec_.timezone, spec_.overlap, spec_.catchup) == (
        "*/5 * * * *", "Europe/Berlin", "buffer_one", "all")
    assert (spec_.task.id, spec_.task.name, spec_.task.expires_ms) == ("", "r", 5000)
