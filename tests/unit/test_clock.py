"""Time that one bad clock cannot break: the replicated clock moves only by the
leader's ticks (elapsed monotonic time), never by a command's stamp; the leader's
Timekeeper measures those ticks; old journals still replay by their old rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack
import pytest
from state_helpers import PAYLOAD, Harness, check_consistency, spec

from raftq.server.clock import MAX_TICK_MS, OFFSET_WINDOW_MS, Clock, Timekeeper
from raftq.state import commands as c
from raftq.state import encoding, snapshot
from raftq.state.machine import State
from raftq.state.model import WALL_SLEW_RATIO

AHEAD = 30_000


# ------------------------------------------------------------ the state's clock


def test_a_new_clusters_first_command_starts_the_clock_and_no_later_one_moves_it() -> None:
    state = State()
    first = c.Submit([spec("a", delay_ms=1_500)])
    state.apply(c.Command(first, "r1", 1_700_000_000_000))  # before the first tick
    assert state.clock_ms == 1_700_000_000_000
    assert state.tasks["a"].ready_at_ms == 1_700_000_000_000 + 1_500
    state.apply(c.Command(c.Tick(0, 1_700_000_000_000 + AHEAD, 0, "n1"), "", 1_700_000_000_000))
    state.apply(c.Command(c.Cancel("x"), "r2", 1_700_000_000_000 + AHEAD))
    assert (state.clock_ms, state.ticks, state.wall_offset_ms) == (1_700_000_000_000, 1, 0)
    assert str(state.tasks["a"].status) == "scheduled"


def test_a_command_stamped_30_s_ahead_expires_nothing() -> None:
    """The bug this replaces: one request through a node 30 s ahead expired a valid
    20 s lease, and then the clock stood still for 30 s."""
    h = Harness()
    start = h.now_ms
    h.submit(spec("a"))
    token = h.claim("w1", lease_ms=20_000)[0]["lease_token"]
    h.run(c.Submit([spec("b")]), now_ms=start + AHEAD)  # through the skewed node
    h.run(c.Claim("w2", ["other"], 1, 1_000), now_ms=start + AHEAD)
    assert h.state.clock_ms == start
    assert h.status("a") == "leased"
    for _ in range(199):  # 19.9 s of 100 ms ticks
        h.tick(100)
    assert h.status("a") == "leased"
    h.tick(100)
    assert h.status("a") == "queued"  # at 20 s, not before and not 30 s later
    assert h.complete("a", token)["error"] == "stale_lease"


@pytest.mark.parametrize("skew_ms", [AHEAD, -AHEAD])
def test_a_leader_whose_wall_clock_is_off_moves_time_by_elapsed_only(skew_ms: int) -> None:
    h = Harness()
    h.submit(spec("a"), spec("later", delay_ms=5_000))
    h.claim("w1", lease_ms=3_000)
    for _ in range(29):
        h.tick(100, wall_ms=h.now_ms + 100 + skew_ms)
    assert (h.status("a"), h.status("later")) == ("leased", "scheduled")
    h.tick(100, wall_ms=h.now_ms + 100 + skew_ms)
    assert h.status("a") == "queued"
    for _ in range(20):
        h.tick(100, wall_ms=h.now_ms + 100 + skew_ms)
    assert h.status("later") == "queued"
    assert h.state.clock_ms == h.now_ms


def test_the_wall_offset_slews_toward_the_leaders_wall_clock() -> None:
    h = Harness()
    for _ in range(100):  # 10 s under a leader 30 s ahead
        h.tick(100, wall_ms=h.now_ms + 100 + AHEAD)
    assert h.state.wall_offset_ms == 10_000 // WALL_SLEW_RATIO
    for _ in range(100):  # and back: the offset returns as slowly
        h.tick(100)
    assert h.state.wall_offset_ms == 0


def test_an_eta_is_read_on_the_replicated_wall_time() -> None:
    h = Harness()
    for _ in range(50):
        h.tick(100, wall_ms=h.now_ms + 100 + AHEAD)
    offset = h.state.wall_offset_ms
    assert offset == 500
    h.submit(spec("a", eta_ms=h.now_ms + offset + 1_000), spec("past", eta_ms=h.now_ms - 5))
    assert h.task("a").ready_at_ms == h.now_ms + 1_000
    assert h.status("past") == "queued"


def test_a_lease_set_between_two_ticks_lasts_its_full_duration() -> None:
    """Between ticks the clock still says the earlier tick's time: a lease granted
    150 ms after a tick counts from that tick, so it may fire only once the clock
    before the latest tick has passed its expiry: at least 1 s after the grant."""
    h = Harness()
    granted_at = h.now_ms + 150  # real time; the state's clock still says h.now_ms
    h.submit(spec("a"))
    expires = h.claim("w1", lease_ms=1_000)[0]["lease_expires_ms"]
    assert expires == h.state.clock_ms + 1_000
    while h.status("a") == "leased":
        h.tick_once(200)
    assert h.now_ms - granted_at >= 1_000  # fired at least a full second after the grant
    assert h.now_ms - granted_at <= 1_000 + 2 * 200  # and within two ticks of it


def test_a_delay_counts_from_the_replicated_clock_not_the_stamp() -> None:
    h = Harness()
    h.run(c.Submit([spec("a", delay_ms=1_000)]), now_ms=h.now_ms + AHEAD)
    assert h.task("a").ready_at_ms == h.state.clock_ms + 1_000


def test_a_tick_from_another_than_the_latest_moves_nothing() -> None:
    h = Harness()
    before = (h.state.clock_ms, h.state.ticks)
    stale = c.Tick(500, h.now_ms, h.state.ticks - 1, "old-leader")
    assert h.run(stale, request_id="")["advanced"] is False
    ahead = c.Tick(500, h.now_ms, h.state.ticks + 1, "n2")
    assert h.run(ahead, request_id="")["advanced"] is False
    assert (h.state.clock_ms, h.state.ticks) == before
    # two proposers measured from the same tick: only the first one counts
    first = c.Tick(300, h.now_ms, h.state.ticks, "n1")
    second = c.Tick(300, h.now_ms, h.state.ticks, "n2")
    out = h.apply(c.Group([c.Command(first), c.Command(second)]))
    assert [r["advanced"] for r in out] == [True, False]
    assert h.state.clock_ms == before[0] + 300


def test_a_retry_backoff_counts_on_the_replicated_clock() -> None:
    h = Harness()
    h.submit(spec("a", retry_backoff_ms=1_000))
    h.fail("a", h.claim_one())
    due = h.task("a").ready_at_ms
    assert due is not None and 750 <= due - h.state.clock_ms < 1_250
    h.run(c.Claim("w1", ["default"], 1, 1_000), now_ms=due + AHEAD)
    assert h.status("a") == "scheduled"
    h.tick(due - h.now_ms)
    assert h.status("a") == "queued"


# ------------------------------------------------------------- old journals


def _v1(op: c.Op, now_ms: int, body: Any, request_id: str = "") -> bytes:
    return bytes(msgpack.packb([c.LEGACY_VERSION, int(op), request_id, now_ms, body],
                               use_bin_type=True))


def _v1_row(task_id: str, ready_at_ms: int) -> list[Any]:
    return [task_id, "job", "default", 128, PAYLOAD, ready_at_ms, 3, 60_000, 1_000, 86_400_000]


def test_a_version_1_journal_replays_by_its_own_rule() -> None:
    """Version 1: every command's stamp moved the clock; ready_at_ms was absolute."""
    log = [
        _v1(c.Op.TICK, 1_000_000, []),
        _v1(c.Op.SUBMIT, 1_000_010, [_v1_row("now", 0), _v1_row("later", 1_000_500)], "r1"),
        _v1(c.Op.CLAIM, 1_000_020, ["w1", ["default"], 1, 300, "h", 1], "r2"),
        _v1(c.Op.TICK, 1_000_400, []),
    ]
    state = State()
    results = [state.apply(encoding.decode(entry)) for entry in log]
    assert results[1] == [{"id": "now", "created": True, "status": "queued"},
                          {"id": "later", "created": True, "status": "scheduled"}]
    assert results[2]["tasks"][0]["lease_expires_ms"] == 1_000_320
    assert state.clock_ms == 1_000_400 and state.ticks == 0
    assert str(state.tasks["now"].status) == "queued"  # its lease expired at 1_000_320
    assert state.tasks["later"].ready_at_ms == 1_000_500
    check_consistency(state)
    # then a version 2 leader continues from the replicated value; timers fire by
    # the clock before the latest tick
    state.apply(c.Command(c.Tick(100, 1_000_500, 0, "n1")))
    assert state.clock_ms == 1_000_500 and str(state.tasks["later"].status) == "scheduled"
    state.apply(c.Command(c.Tick(100, 1_000_600, 1, "n1")))
    assert state.horizon_ms == 1_000_500 and str(state.tasks["later"].status) == "queued"


def test_a_version_1_group_decodes_as_version_1() -> None:
    data = msgpack.packb([c.LEGACY_VERSION, int(c.Op.GROUP), "", 0,
                          [[int(c.Op.TICK), "", 5, []], [int(c.Op.CANCEL), "r", 6, ["x"]]]],
                         use_bin_type=True)
    group = encoding.decode(data)
    assert isinstance(group, c.Group)
    assert [m.version for m in group.commands] == [c.LEGACY_VERSION] * 2


def test_a_format_1_snapshot_loads_with_no_ticks_and_no_offset() -> None:
    h = Harness()
    h.tick(100, wall_ms=h.now_ms + 100 + AHEAD)
    plain = snapshot.to_plain(h.state)
    assert (plain["ticks"], plain["wall_offset_ms"]) == (4, 10)
    assert snapshot.digest(snapshot.from_plain(plain)) == snapshot.digest(h.state)
    for key in ("ticks", "wall_offset_ms", "horizon_ms"):
        del plain[key]
    plain["format"] = 1
    plain["tasks"] = [t.to_plain()[:-3] for t in h.state.tasks.values()]  # rows, then
    old = snapshot.from_plain(plain)
    assert (old.clock_ms, old.ticks, old.wall_offset_ms) == (h.state.clock_ms, 0, 0)
    assert old.horizon_ms == old.clock_ms


# ------------------------------------------------------------ the timekeeper


class FakeClock(Clock):
    def __init__(self, wall_ms: int = 1_700_000_000_000) -> None:
        super().__init__()
        self.wall = wall_ms
        self.mono = 5_000.0

    def wall_ms(self) -> int:
        return self.wall

    def mono_ms(self) -> float:
        return self.mono

    def sleep(self, ms: float) -> None:
        self.mono += ms
        self.wall += int(ms)


def _leader(clock: FakeClock, node_id: str = "n1") -> tuple[Timekeeper, State]:
    return Timekeeper(node_id, clock), State()


def _tick(tk: Timekeeper, state: State) -> c.Tick:
    tick = tk.next_tick(state.ticks)
    cmd = c.Command(tick)
    tk.observe(cmd, state.apply(cmd))
    return tick


def test_a_leader_counts_elapsed_monotonic_time_and_carries_the_fraction() -> None:
    clock = FakeClock()
    tk, state = _leader(clock)
    assert _tick(tk, state).elapsed_ms == 0  # nothing seen yet to count from
    start = state.clock_ms
    for _ in range(100):
        clock.sleep(100.4)
        _tick(tk, state)
    assert 10_039 <= state.clock_ms - start <= 10_040  # no millisecond lost per tick


def test_one_tick_moves_the_clock_by_at_most_the_cap() -> None:
    clock = FakeClock()
    tk, state = _leader(clock)
    _tick(tk, state)
    start = state.clock_ms
    clock.mono += 30_000  # a clock that jumps, or a loop that stalled
    assert _tick(tk, state).elapsed_ms == MAX_TICK_MS
    clock.sleep(100)
    assert _tick(tk, state).elapsed_ms == 100  # counted from the jump, not before it
    assert state.clock_ms - start == MAX_TICK_MS + 100


def test_a_new_leader_continues_from_when_it_applied_the_last_tick() -> None:
    old_clock, new_clock = FakeClock(), FakeClock(wall_ms=1_700_000_000_000 + AHEAD)
    old, state = _leader(old_clock, "n1")
    new = Timekeeper("n2", new_clock)
    for _ in range(3):
        old_clock.sleep(100)
        new_clock.sleep(100)
        tick = old.next_tick(state.ticks)
        cmd = c.Command(tick)
        result = state.apply(cmd)
        old.observe(cmd, result)
        new_clock.sleep(7)  # the follower applies it a little later
        new.observe(cmd, result)
    before = state.clock_ms
    new_clock.sleep(1_200)  # the election
    assert _tick(new, state).elapsed_ms == 1_200
    assert state.clock_ms == before + 1_200


def test_a_stale_tick_does_not_move_the_base() -> None:
    clock = FakeClock()
    tk, state = _leader(clock)
    _tick(tk, state)
    clock.sleep(100)
    lost = tk.next_tick(state.ticks)  # its outcome unknown; another tick wins the slot
    state.apply(c.Command(c.Tick(100, clock.wall, state.ticks, "n2")))
    tk.observe(c.Command(c.Tick(100, clock.wall, state.ticks - 1, "n2")),
               {"clock_ms": state.clock_ms, "advanced": True})
    cmd = c.Command(lost)
    result = state.apply(cmd)
    assert result["advanced"] is False
    tk.observe(cmd, result)
    clock.sleep(100)
    assert _tick(tk, state).elapsed_ms == 100


def test_the_offset_from_the_leader_is_the_least_difference_seen_lately() -> None:
    leader_clock, my_clock = FakeClock(), FakeClock(wall_ms=1_700_000_000_000 + AHEAD)
    leader, state = _leader(leader_clock, "n1")
    me = Timekeeper("n2", my_clock)
    assert me.offset_ms() is None
    for delay in (40, 3, 25):
        leader_clock.sleep(100)
        my_clock.sleep(100)
        cmd = c.Command(leader.next_tick(state.ticks))
        result = state.apply(cmd)
        leader.observe(cmd, result)
        my_clock.wall += delay  # replication delay, seen as extra offset
        me.observe(cmd, result)
        my_clock.wall -= delay
    assert me.offset_ms() == AHEAD + 3
    assert leader.offset_ms() == 0
    my_clock.mono += OFFSET_WINDOW_MS + 1
    assert me.offset_ms() is None  # no leader heard from lately: unknown


def test_the_shim_file_shifts_the_wall_clock_when_refreshed(tmp_path: Path) -> None:
    shim = tmp_path / "shift"
    clock = Clock(str(shim))
    clock.refresh()
    assert clock.shift_ms == 0  # no file: no shift
    shim.write_text("30000\n")
    real = clock.wall_ms()
    clock.refresh()
    assert clock.wall_ms() - real >= AHEAD
    shim.write_text("not a number")
    clock.refresh()
    assert clock.shift_ms == AHEAD  # unreadable: unchanged
    shim.write_text("-30000")
    clock.refresh()
    assert clock.shift_ms == -AHEAD


def test_ticks_that_never_apply_are_not_remembered_forever() -> None:
    clock = FakeClock()
    tk = Timekeeper("n1", clock)
    for _ in range(1_000):  # a leader whose proposals all fail (it has no majority)
        clock.sleep(100)
        tk.next_tick(7)
    assert len(tk._proposed) <= 64
