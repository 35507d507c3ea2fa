"""The schedule table and the rule for fires (raftq.state.schedules), by example."""

from __future__ import annotations

from typing import Any

from state_helpers import Harness, check_consistency, spec

from raftq.state import commands as c
from raftq.state import encoding, snapshot
from raftq.state.machine import State
from raftq.state.schedules import ON_TIME_MS, fire_task_id, jitter_ms

MIN = 60_000


def put(h: Harness, sid: str = "s", paused: bool | None = None, **kw: Any) -> Any:
    kw.setdefault("every_ms", MIN)
    return h.run(c.PutSchedule(c.ScheduleSpec(sid, spec(""), **kw), paused))


def fire(h: Harness, tick: int, sid: str = "s", *, late_ms: int = 0, manual: bool = False,
         generation: int | None = None) -> Any:
    sched = h.state.schedules[sid]
    gen = sched.generation if generation is None else generation
    task = spec(fire_task_id(sid, tick, manual))
    return h.run(c.Fire(sid, tick, gen, task, manual), now_ms=tick + late_ms)


def outcome(result: Any) -> str:
    return str(result.get("outcome") or result["error"])


def test_a_new_schedule_starts_at_its_creation_and_fires_each_tick_once() -> None:
    h = Harness()
    assert put(h) == {"id": "s", "created": True, "changed": True}
    assert h.state.schedules["s"].cursor_ms == h.now_ms
    assert outcome(fire(h, h.now_ms)) == "stale_fire"  # not after the creation
    t1 = h.now_ms + MIN
    assert fire(h, t1) == {"schedule_id": "s", "tick_ms": t1, "task_id": f"s@{t1}",
                           "outcome": "fired", "status": "queued"}
    assert outcome(fire(h, t1)) == "stale_fire"  # the same tick again, another request id
    assert [t for t in h.state.tasks if t.startswith("s@")] == [f"s@{t1}"]
    check_consistency(h.state)


def test_a_stale_fire_is_refused() -> None:
    h = Harness()
    put(h, overlap="allow")
    t = h.now_ms
    assert outcome(fire(h, t + 2 * MIN)) == "fired"
    assert outcome(fire(h, t + MIN)) == "stale_fire"  # a deposed leader's late proposal
    assert f"s@{t + MIN}" not in h.state.tasks
    assert outcome(fire(h, t + 3 * MIN, generation=99)) == "stale_fire"


def test_overlap_skip_skips_while_the_previous_task_waits_or_runs() -> None:
    h = Harness()
    put(h)  # skip is the default
    t = h.now_ms
    assert outcome(fire(h, t + MIN)) == "fired"
    assert outcome(fire(h, t + 2 * MIN)) == "skipped"
    token = h.claim_one()
    assert outcome(fire(h, t + 3 * MIN)) == "skipped"  # leased: still running
    h.complete(f"s@{t + MIN}", token)
    assert outcome(fire(h, t + 4 * MIN)) == "fired"
    sched = h.state.schedules["s"]
    assert (sched.fired, sched.skipped, sched.cursor_ms) == (2, 2, t + 4 * MIN)
    assert [f["outcome"] for f in h.state.schedule_fires(sched)] == [
        "fired", "skipped", "skipped", "fired"]


def test_overlap_allow_fires_whatever_runs() -> None:
    h = Harness()
    put(h, overlap="allow")
    t = h.now_ms
    assert [outcome(fire(h, t + i * MIN)) for i in (1, 2, 3)] == ["fired"] * 3
    assert h.state.ready_count(["default"]) == 3


def test_overlap_buffer_one_keeps_one_tick_until_the_previous_task_ends() -> None:
    h = Harness()
    put(h, overlap="buffer_one")
    t = h.now_ms
    assert outcome(fire(h, t + MIN)) == "fired"
    assert outcome(fire(h, t + 2 * MIN)) == "buffered"
    assert outcome(fire(h, t + 3 * MIN)) == "skipped"  # one is kept already
    assert f"s@{t + 2 * MIN}" not in h.state.tasks
    token = h.claim_one()
    h.tick(1)
    assert f"s@{t + 2 * MIN}" not in h.state.tasks  # the first still runs
    h.complete(f"s@{t + MIN}", token)
    h.tick(1)  # the buffered tick is submitted on the next tick
    assert h.status(f"s@{t + 2 * MIN}") == "queued"
    assert h.state.schedules["s"].last_task_id == f"s@{t + 2 * MIN}"
    assert h.state.buffered_schedules == {}
    check_consistency(h.state)


def test_catchup_none_fires_on_time_ticks_only() -> None:
    h = Harness()
    put(h, catchup="none")
    t = h.now_ms
    assert outcome(fire(h, t + MIN, late_ms=ON_TIME_MS + 1)) == "outside_window"
    assert outcome(fire(h, t + 2 * MIN, late_ms=ON_TIME_MS)) == "fired"


def test_catchup_latest_and_all_fire_missed_ticks_within_the_window() -> None:
    for catchup in ("latest", "all"):
        h = Harness()
        put(h, catchup=catchup, catchup_window_ms=10 * MIN, overlap="allow")
        t = h.now_ms
        assert outcome(fire(h, t + MIN, late_ms=10 * MIN + 1)) == "outside_window"
        assert outcome(fire(h, t + 2 * MIN, late_ms=10 * MIN)) == "fired"
        assert outcome(fire(h, t + 3 * MIN, late_ms=-1)) == "outside_window"  # from the future


def test_pause_refuses_fires_and_resume_skips_the_paused_ticks() -> None:
    h = Harness()
    put(h)
    t = h.now_ms
    assert h.run(c.PauseSchedule("s", True)) == {"id": "s", "paused": True}
    assert outcome(fire(h, t + MIN)) == "paused"
    h.run(c.PauseSchedule("s", False), now_ms=t + 5 * MIN)
    assert h.state.schedules["s"].cursor_ms == t + 5 * MIN
    assert outcome(fire(h, t + 5 * MIN)) == "stale_fire"  # fell in the pause
    assert outcome(fire(h, t + 6 * MIN)) == "fired"
    assert outcome(h.run(c.PauseSchedule("nope", True))) == "not_found"


def test_start_and_end_bound_the_ticks() -> None:
    h = Harness()
    t = h.now_ms
    put(h, start_ms=t + 2 * MIN, end_ms=t + 3 * MIN, overlap="allow")
    assert outcome(fire(h, t + MIN)) == "outside_window"
    assert outcome(fire(h, t + 2 * MIN)) == "fired"
    assert outcome(fire(h, t + 3 * MIN)) == "fired"
    assert outcome(fire(h, t + 4 * MIN)) == "outside_window"


def test_an_identical_put_changes_nothing_and_a_changed_one_refuses_old_fires() -> None:
    h = Harness()
    put(h)
    before = h.state.schedules["s"].to_plain()
    generation = h.state.schedules["s"].generation
    h.tick(1000)
    assert put(h) == {"id": "s", "created": False, "changed": False}
    assert h.state.schedules["s"].to_plain() == before
    assert put(h, every_ms=2 * MIN) == {"id": "s", "created": False, "changed": True}
    assert outcome(fire(h, h.now_ms + MIN, generation=generation)) == "stale_fire"
    # a PUT without "paused" keeps an operator's pause; one with it sets it
    h.run(c.PauseSchedule("s", True))
    assert put(h, every_ms=2 * MIN)["changed"] is False
    assert h.state.schedules["s"].paused
    assert put(h, every_ms=2 * MIN, paused=False)["changed"] is True


def test_delete_and_recreate_does_not_accept_the_old_generation() -> None:
    h = Harness()
    put(h)
    old = h.state.schedules["s"].generation
    assert h.run(c.DeleteSchedule("s")) == {"id": "s", "deleted": True}
    assert outcome(h.run(c.DeleteSchedule("s"))) == "not_found"
    put(h)
    assert h.state.schedules["s"].generation > old
    assert outcome(fire(h, h.now_ms + MIN, generation=old)) == "stale_fire"


def test_trigger_runs_once_now_whatever_the_cursor_pause_and_overlap() -> None:
    h = Harness()
    put(h, paused=True)
    t = h.now_ms
    assert outcome(fire(h, t, manual=True)) == "triggered"
    assert h.status(f"s@{t}:trigger") == "queued"
    assert h.state.schedules["s"].cursor_ms == t  # ticks are untouched
    bad = c.Fire("s", t, h.state.schedules["s"].generation, spec("other"), True)
    assert outcome(h.run(bad)) == "bad_fire"


def test_jitter_is_a_hash_of_the_schedule_and_the_tick() -> None:
    values = {jitter_ms("s", t, 1000) for t in range(0, 100 * MIN, MIN)}
    assert len(values) > 50 and all(0 <= v <= 1000 for v in values)
    assert jitter_ms("s", 5, 1000) == jitter_ms("s", 5, 1000)
    assert jitter_ms("s", 5, 0) == 0


def _busy_log() -> Harness:
    h = Harness()
    t = h.now_ms
    put(h, "a", overlap="buffer_one")
    put(h, "b", overlap="allow", cron="*/5 * * * *", every_ms=0, timezone="Europe/Berlin")
    put(h, "c", catchup="all")
    for i in range(1, 6):
        h.tick(MIN)
        for sid in ("a", "b", "c"):
            fire(h, t + i * MIN, sid)
        if i == 3:
            h.complete(f"a@{t + MIN}", h.claim_one())
    h.run(c.PauseSchedule("c", True))
    fire(h, t + 6 * MIN, "a")
    return h


def test_replay_and_snapshot_give_the_same_digest_with_schedules() -> None:
    h = _busy_log()
    replayed = State()
    for entry in h.log:
        replayed.apply(encoding.decode(entry))
    assert snapshot.digest(replayed) == snapshot.digest(h.state)
    restored = snapshot.loads(snapshot.dumps(h.state))
    assert snapshot.digest(restored) == snapshot.digest(h.state)
    assert restored.buffered_schedules == h.state.buffered_schedules != {}
    # the restored state goes on exactly like the original
    for state in (h.state, restored):
        state.apply(encoding.decode(encoding.encode(
            c.Command(c.Tick(1, h.now_ms, state.ticks, "l"), "", 0))))
    assert snapshot.digest(restored) == snapshot.digest(h.state)
    check_consistency(restored)


def test_a_snapshot_of_format_2_loads_without_schedules_or_expiry() -> None:
    h = Harness()
    h.submit(spec("a"))
    plain = snapshot.to_plain(h.state)
    plain["format"] = 2
    # rows, without expiry, tenant and flow keys
    plain["tasks"] = [t.to_plain()[:-3] for t in h.state.tasks.values()]
    del plain["schedules"], plain["schedule_generation"], plain["flow"]
    state = snapshot.from_plain(plain)
    assert state.tasks["a"].expires_at_ms is None and state.schedules == {}
