"""Judging time and isolation from a run's history (pure, like the checker).

Timers (``timer`` records of ``raftq.chaos.probes.TimerProbe``): a delay or a
lease fired *early* when the answer that showed it arrived before the
earliest moment it could have been due (``seen < due_lo - tolerance``): the
cluster's clock ran ahead of this machine's. It fired *late* when that answer
came more than two ticks plus ``slack_ms`` after the latest moment it could
have been due (``seen > due_hi + 2 * tick_ms + slack_ms``); the slack covers
the observation itself (the long-poll claim waking, and its commit).

Isolation (``isolation`` and ``rejoin`` records of ``IsolationWatch``): the cut
node must stop being ready, and answer a write with ``503 no_leader``, within
``isolation_limit_ms`` of the cut, and that write must not wait (no longer than
``write_limit_ms``); after the heal it must be ready and accept a write again
within ``rejoin_limit_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from raftq.chaos.history import Op


@dataclass
class Expectations:
    """Checks counted per expectation (how often each held and how often not, like
    the checker's), with a line for each failure."""

    expectations: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def expect(self, what: str, held: bool, failure: str) -> None:
        counts = self.expectations.setdefault(what, {"held": 0, "failed": 0})
        counts["held" if held else "failed"] += 1
        if not held:
            self.failures.append(failure)


@dataclass
class TimeVerdict(Expectations):
    timers: dict[str, Any] = field(default_factory=dict)
    """Per kind: count, the earliest and the latest firing relative to the due window."""
    isolations: list[dict[str, Any]] = field(default_factory=list)
    offsets: dict[str, int] = field(default_factory=dict)
    """The least and the greatest clock offset from the leader the nodes reported."""


def check_time(
    ops: list[Op], *, tick_ms: float, tolerance_ms: float = 50.0, slack_ms: float = 100.0,
    isolation_limit_ms: float = 2000.0, write_limit_ms: float = 500.0,
    rejoin_limit_ms: float = 10_000.0,
) -> TimeVerdict:
    v = TimeVerdict()
    offsets = [op["clock_offset_ms"] for op in ops if op["type"] == "node_status"
               and isinstance(op.get("clock_offset_ms"), int)]
    if offsets:
        v.offsets = {"min_ms": min(offsets), "max_ms": max(offsets)}
    late_limit = 2 * tick_ms + slack_ms
    for kind in ("delay", "lease"):
        records = [op for op in ops if op["type"] == "timer" and op["kind"] == kind]
        if not records:
            continue
        early = [float(op["due_lo"]) - float(op["seen"]) for op in records]
        late = [float(op["seen"]) - float(op["due_hi"]) for op in records]
        v.timers[kind] = {"count": len(records), "max_early_ms": round(max(early)),
                          "max_late_ms": round(max(late)), "late_limit_ms": round(late_limit)}
        for op, e, x in zip(records, early, late, strict=True):
            v.expect(f"{kind} not early", e <= tolerance_ms,
                     f"{kind} of {op['task_id']} fired {e:.0f} ms early")
            v.expect(f"{kind} within 2 ticks", x <= late_limit,
                     f"{kind} of {op['task_id']} fired {x:.0f} ms late (limit "
                     f"{late_limit:.0f} ms)")
    rejoins = {(op["node"], op["t_heal"]): op for op in ops if op["type"] == "rejoin"}
    heals = sorted(float(op["t"]) for op in ops
                   if op["type"] == "fault" and op.get("phase") == "heal")
    for op in sorted((op for op in ops if op["type"] == "isolation"), key=lambda o: o["t_cut"]):
        heal = next((t for t in heals if t >= float(op["t_cut"])), None)
        rejoin = next((r for (node, t), r in rejoins.items()
                       if node == op["node"] and heal is not None and abs(t - heal) < 5_000),
                      None)
        entry = {
            "node": op["node"], "not_ready_ms": op["not_ready_ms"],
            "no_leader_ms": op["no_leader_ms"], "write_ms": op["write_ms"],
            "write": f"{op['write_status']} {op['write_code']}",
            "rejoin_ready_ms": None if rejoin is None else rejoin["ready_ms"],
            "rejoin_write_ms": None if rejoin is None else rejoin["write_ok_ms"],
        }
        v.isolations.append(entry)
        where = f"isolated {op['node']} at {op['t_cut']:.0f}"
        v.expect("isolated: not ready within 2 s",
                 op["not_ready_ms"] is not None and op["not_ready_ms"] <= isolation_limit_ms,
                 f"{where}: still ready after {isolation_limit_ms:.0f} ms "
                 f"(not ready after {op['not_ready_ms']} ms)")
        v.expect("isolated: 503 no_leader at once within 2 s",
                 op["write_status"] == 503 and op["write_code"] == "no_leader"
                 and op["no_leader_ms"] is not None and op["no_leader_ms"] <= isolation_limit_ms
                 and op["write_ms"] <= write_limit_ms,
                 f"{where}: a write got {entry['write']} after {op['write_ms']} ms, "
                 f"{op['no_leader_ms']} ms after the cut")
        if heal is not None:
            v.expect("isolated: rejoined by itself",
                     rejoin is not None and rejoin["write_ok_ms"] is not None
                     and rejoin["write_ok_ms"] <= rejoin_limit_ms,
                     f"{where}: not rejoined within {rejoin_limit_ms:.0f} ms of the heal "
                     f"({entry['rejoin_write_ms']} ms)")
    return v


def summary_lines(timing: dict[str, Any]) -> list[str]:
    """The summary's lines for a run's ``timing`` (timers, isolations, clock lag)."""
    lines = [f"   {kind}s timed {t['count']}: fired {-t['max_early_ms']:+d} ms to "
             f"{t['max_late_ms']:+d} ms from their time (limit +{t['late_limit_ms']} ms)"
             for kind, t in timing.get("timers", {}).items()]
    isolations = timing.get("isolations", [])
    if isolations:
        def worst(key: str) -> Any:
            return max((i[key] for i in isolations if i[key] is not None), default=None)
        lines.append(f"   isolations {len(isolations)}: not ready after <= "
                     f"{worst('not_ready_ms')} ms, 503 no_leader <= {worst('no_leader_ms')} ms "
                     f"after the cut (the write took <= {worst('write_ms')} ms); ready again "
                     f"<= {worst('rejoin_ready_ms')} ms, writing <= {worst('rejoin_write_ms')} ms "
                     "after the heal")
    offsets = timing.get("offsets")
    if offsets and (offsets["min_ms"] < -500 or offsets["max_ms"] > 500):
        lines.append(f"   clock offsets from the leader reported: {offsets['min_ms']:+d} ms to "
                     f"{offsets['max_ms']:+d} ms")
    if timing.get("clock_lag_ms") is not None:
        lines.append(f"   replicated clock {timing['clock_lag_ms']} ms behind this machine's "
                     "at the end")
    return lines
