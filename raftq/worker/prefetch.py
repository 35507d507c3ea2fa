"""How many tasks a worker claims beyond its free slots when ``--prefetch auto``.

A worker has one claim in flight at a time. While it travels (a Raft commit
and two HTTP hops), the pool runs what the worker already holds; with
nothing held in reserve, a pool of short tasks sits idle for most of every
claim's round trip, and each claim brings only as many tasks as there are
free slots. Prefetching fixes that for short tasks and hurts long ones (a
worker holding long tasks it has not started keeps them from idle workers).

So the prefetch follows what the worker measures: the tasks its pool finishes
during one claim's round trip, ``concurrency * round_trip / task_time``,
twice over (claims go out when a quarter of the slots is free), at most
``MAX_PREFETCH``. Tasks that take longer than a round trip get none, as with
``--prefetch 0``; no-op tasks get the most. Until a claim has come back full
(the queue had more than asked for, so the claim did not wait for work) and
a task has finished, it is 0. Both figures are moving averages.
"""

from __future__ import annotations

MAX_PREFETCH = 200
_WEIGHT = 0.2  # of each new observation in the moving averages


class AutoPrefetch:
    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.round_trip_s: float | None = None
        self.task_s: float | None = None

    def claimed(self, seconds: float, got: int, asked: int) -> None:
        """A claim asked for ``asked`` tasks and brought ``got`` in ``seconds``."""
        if got >= asked > 0:  # a full answer did not wait for work: a round trip
            self.round_trip_s = _average(self.round_trip_s, seconds)

    def ran(self, seconds: float) -> None:
        """A task took ``seconds`` in the pool."""
        self.task_s = _average(self.task_s, seconds)

    @property
    def value(self) -> int:
        if self.round_trip_s is None or self.task_s is None:
            return 0
        finished = self.concurrency * self.round_trip_s / max(self.task_s, 1e-6)
        return min(MAX_PREFETCH, int(2 * finished))


def _average(old: float | None, new: float) -> float:
    return new if old is None else old + _WEIGHT * (new - old)
