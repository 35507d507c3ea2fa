"""This node's clocks, and the ticks by which the leader makes time pass.

The replicated clock moves only by ticks (see ``raftq.state.machine``). The
leader's ``Timekeeper`` measures each tick's elapsed time on this process's
monotonic clock, from the previous tick that moved the state's clock: its own
proposal's measuring point when the previous tick was its own, else the moment
this node applied it (a new leader continues from the replicated value, and
never counts time it did not see pass). The same hook measures this node's
wall-clock offset from the leader's: a tick carries the leader's wall clock,
and the smallest difference over the last ``OFFSET_WINDOW_MS`` is the offset
plus the least replication delay seen.

``Clock`` is the one place the node reads the time. For fault tests the
environment variable ``RAFTQ_TIME_SHIM_FILE`` names a file holding a number of
milliseconds added to this node's wall clock, re-read by ``refresh`` (the tick
loop calls it every tick), so a test can step a running node's wall clock the
way NTP or a resumed VM does. The monotonic clock is not shifted: the kernel's
never steps, and a tick's elapsed time is capped at ``MAX_TICK_MS`` besides.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from typing import Any

from raftq.state.commands import Command, Group, Tick

log = logging.getLogger(__name__)

SHIM_ENV = "RAFTQ_TIME_SHIM_FILE"
# The most one tick moves the replicated clock: enough to carry a leader change
# (a new leader counts from when it applied the last tick: an election timeout
# and a little), little enough that a clock that misbehaves, or an event loop
# that stalled, moves it by no more than this at once.
MAX_TICK_MS = 2_000
OFFSET_WINDOW_MS = 3_000
MAX_PROPOSED = 64


class Clock:
    """Wall and monotonic time in milliseconds, with the optional test shim."""

    def __init__(self, shim_file: str | None = None) -> None:
        self.shim_file = shim_file
        self.shift_ms = 0

    @classmethod
    def from_env(cls) -> Clock:
        clock = cls(os.environ.get(SHIM_ENV) or None)
        clock.refresh()
        return clock

    def refresh(self) -> None:
        """Re-read the shim file, if there is one (a missing or empty file is 0)."""
        if self.shim_file is None:
            return
        try:
            with open(self.shim_file) as f:
                text = f.read().strip()
            shift = int(text) if text else 0
        except FileNotFoundError:
            shift = 0
        except (OSError, ValueError) as exc:
            log.warning("time shim %s unreadable, unchanged: %s", self.shim_file, exc)
            return
        if shift != self.shift_ms:
            log.warning("time shim: wall clock shifted by %+d ms", shift)
            self.shift_ms = shift

    def wall_ms(self) -> int:
        return int(time.time() * 1000) + self.shift_ms

    def mono_ms(self) -> float:
        return time.monotonic() * 1000


class Timekeeper:
    def __init__(self, node_id: str, clock: Clock) -> None:
        self.node_id = node_id
        self.clock = clock
        self._base_ms: float | None = None  # where the next tick's elapsed time counts from
        # (after, wall_ms) of each tick proposed here -> the base once it has applied
        self._proposed: dict[tuple[int, int], float] = {}
        self._offsets: deque[tuple[float, int]] = deque()  # (mono_ms, local wall - leader wall)

    def next_tick(self, ticks: int) -> Tick:
        """The tick to propose now, after the state's ``ticks`` ticks."""
        now, wall = self.clock.mono_ms(), self.clock.wall_ms()
        if self._base_ms is None:
            elapsed, base = 0, now  # nothing seen to measure from: no time passes
        else:
            raw = max(now - self._base_ms, 0.0)
            elapsed = int(min(raw, MAX_TICK_MS))
            # Whole milliseconds are counted; the fraction carries into the next tick.
            base = self._base_ms + elapsed if raw <= MAX_TICK_MS else now
        if len(self._proposed) >= MAX_PROPOSED:  # ticks that never applied (no leader)
            self._proposed.clear()
        self._proposed[(ticks, wall)] = base
        return Tick(elapsed, wall, ticks, self.node_id)

    def observe(self, cmd: Command | Group, result: Any) -> None:
        """Called with every entry this node applies, in log order, and its result."""
        if isinstance(cmd, Group):
            if isinstance(result, list):
                for member, one in zip(cmd.commands, result, strict=False):
                    if isinstance(member.body, Tick):
                        self._applied(member.body, one)
        elif isinstance(cmd.body, Tick):
            self._applied(cmd.body, result)

    def _applied(self, tick: Tick, result: Any) -> None:
        if not (isinstance(result, dict) and result.get("advanced")):
            return
        now = self.clock.mono_ms()
        mine = tick.by == self.node_id
        base = self._proposed.pop((tick.after, tick.wall_ms), None) if mine else None
        self._base_ms = now if base is None else base
        # proposals measured from an older tick can no longer move the clock
        self._proposed = {k: v for k, v in self._proposed.items() if k[0] > tick.after}
        self._offsets.append((now, 0 if mine else self.clock.wall_ms() - tick.wall_ms))
        while self._offsets and self._offsets[0][0] < now - OFFSET_WINDOW_MS:
            self._offsets.popleft()

    def offset_ms(self) -> int | None:
        """This node's wall clock minus the leader's; None without a recent tick."""
        horizon = self.clock.mono_ms() - OFFSET_WINDOW_MS
        recent = [offset for t, offset in self._offsets if t >= horizon]
        return min(recent) if recent else None
