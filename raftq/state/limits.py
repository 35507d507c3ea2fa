"""Rate limits as GCRA on the replicated clock: the arithmetic, in integers.

A limit of ``rate`` starts per ``per_ms`` with bursts of ``burst`` gives each
start a slot; slots are ``per_ms / rate`` apart. A start is allowed when its
slot is at most ``(burst - 1)`` slot-widths after the clock, and a slot is
never earlier than ``horizon_ms``, the clock before the latest tick: the
replicated clock moves in steps (one per tick), and the starts its latest step
made room for may happen at once. Times are kept multiplied by ``rate`` (a
slot-width is then exactly ``per_ms``), so nothing is rounded.

So over any stretch of the replicated clock from ``t1`` to ``t2``, a key
admits at most ``burst + (t2 - h1) * rate / per_ms`` starts, where ``h1`` is
the horizon at ``t1`` (at most one tick before it); and a key with tasks
waiting admits exactly as many as that allows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Rate:
    rate: int
    per_ms: int
    burst: int
    tat: int = 0  # the next free slot, in ms * rate

    def room(self, clock_ms: int, horizon_ms: int) -> int:
        """How many starts are allowed now."""
        base = max(self.tat, horizon_ms * self.rate)
        return max(0, (clock_ms * self.rate + self.burst * self.per_ms - base) // self.per_ms)

    def admit(self, horizon_ms: int) -> None:
        self.tat = max(self.tat, horizon_ms * self.rate) + self.per_ms

    def room_at_ms(self) -> int:
        """The first clock time with room (the horizon only brings it earlier)."""
        need = self.tat - (self.burst - 1) * self.per_ms
        return -(-need // self.rate)  # ceiling

    def retime(self, rate: int, per_ms: int, burst: int) -> None:
        """New settings; the next free slot keeps its time."""
        self.tat = self.tat * rate // self.rate
        self.rate, self.per_ms, self.burst = rate, per_ms, burst
