"""Rates of task changes over the last 15 minutes, per second, from the event stream.

Counted from the changes each applied entry made (``raftq.server.events``), at
the replicated wall time of the entry, so every node counts the same
cluster-wide rates, and a node replaying its log after a restart counts the
old changes at their own seconds (dropping those past the window).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

WINDOW_S = 900
SERIES = ("submitted", "started", "succeeded", "failed")
_COLUMN = {"submitted": 0, "leased": 1, "succeeded": 2, "failed": 3, "dead": 3}


class Rates:
    def __init__(self, window_s: int = WINDOW_S) -> None:
        self.window_s = window_s
        self.newest_s = 0
        self._buckets: dict[int, list[int]] = {}

    def count(self, at_ms: int, rows: Sequence[Sequence[Any]]) -> None:
        second = at_ms // 1000
        if second <= self.newest_s - self.window_s:
            return
        bucket = self._buckets.get(second)
        if bucket is None:
            bucket = self._buckets[second] = [0, 0, 0, 0]
            if second > self.newest_s:
                self.newest_s = second
                horizon = second - self.window_s
                for old in [s for s in self._buckets if s <= horizon]:
                    del self._buckets[old]
        column = _COLUMN.get
        for row in rows:
            i = column(row[0])
            if i is not None:
                bucket[i] += 1

    def series(self, now_s: int | None = None) -> dict[str, Any]:
        """Per-second counts for the window ending at ``now_s`` (default: the newest)."""
        end = max(now_s or 0, self.newest_s)
        start = end - self.window_s + 1
        out: dict[str, Any] = {"start_s": start, "step_s": 1}
        empty = (0, 0, 0, 0)
        rows = [self._buckets.get(s, empty) for s in range(start, end + 1)]
        for i, name in enumerate(SERIES):
            out[name] = [r[i] for r in rows]
        return out
