"""The chaos checker's judgement of timers and isolated nodes, on synthetic histories."""

from __future__ import annotations

from typing import Any

from raftq.chaos.timecheck import check_time


def timer(kind: str, due: float, seen: float, window: float = 10.0) -> dict[str, Any]:
    return {"type": "timer", "kind": kind, "task_id": "t", "due_lo": due,
            "due_hi": due + window, "seen": seen, "seen_sent": seen - 5}


def test_timers_on_time_pass_and_report_their_spread() -> None:
    v = check_time([timer("delay", 1000, 1100), timer("delay", 5000, 5390),
                    timer("lease", 9000, 9020)], tick_ms=200)
    assert v.failures == []
    assert v.expectations["delay within 2 ticks"] == {"held": 2, "failed": 0}
    assert v.timers["delay"] == {"count": 2, "max_early_ms": -100, "max_late_ms": 380,
                                 "late_limit_ms": 500}
    assert v.timers["lease"]["count"] == 1


def test_a_timer_seen_before_it_was_due_fired_early() -> None:
    v = check_time([timer("lease", 31_000, 1_200)], tick_ms=200)
    assert v.failures == ["lease of t fired 29800 ms early"]
    assert v.expectations["lease not early"] == {"held": 0, "failed": 1}


def test_a_timer_seen_past_two_ticks_and_the_slack_fired_late() -> None:
    v = check_time([timer("delay", 1000, 1000 + 10 + 501)], tick_ms=200)
    assert v.failures == ["delay of t fired 501 ms late (limit 500 ms)"]


def isolation(node: str, t_cut: float, not_ready_ms: int | None, status: int | None,
              code: str | None, write_ms: int) -> dict[str, Any]:
    return {"type": "isolation", "node": node, "t_cut": t_cut, "not_ready_ms": not_ready_ms,
            "write_status": status, "write_code": code, "write_ms": write_ms,
            "no_leader_ms": None if not_ready_ms is None else not_ready_ms + write_ms,
            "reason": "no leader"}


def heal(t: float) -> dict[str, Any]:
    return {"type": "fault", "phase": "heal", "fault": "isolate-node", "targets": ["n2"], "t": t}


def rejoin(node: str, t_heal: float, write_ok_ms: int | None) -> dict[str, Any]:
    return {"type": "rejoin", "node": node, "t_heal": t_heal, "ready_ms": 300,
            "write_ok_ms": write_ok_ms}


def test_an_isolated_node_that_says_so_quickly_and_rejoins_passes() -> None:
    v = check_time([isolation("n2", 0, 900, 503, "no_leader", 3), heal(8_000),
                    rejoin("n2", 8_000, 1_500)], tick_ms=200)
    assert v.failures == []
    assert v.isolations == [{"node": "n2", "not_ready_ms": 900, "no_leader_ms": 903,
                             "write_ms": 3, "write": "503 no_leader", "rejoin_ready_ms": 300,
                             "rejoin_write_ms": 1_500}]


def test_an_isolated_node_still_ready_waiting_or_not_rejoining_fails() -> None:
    v = check_time([
        isolation("n1", 0, None, None, None, 0), heal(5_000), rejoin("n1", 5_000, None),
        isolation("n2", 10_000, 800, 503, "outcome_unknown", 5_000), heal(15_000),
        rejoin("n2", 15_000, 900),
    ], tick_ms=200)
    assert len(v.failures) == 4
    assert "still ready" in v.failures[0] and "not rejoined" in v.failures[2]
    assert "503 outcome_unknown after 5000 ms" in v.failures[3]
