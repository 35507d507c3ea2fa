"""The leader's schedule timer: proposes the fires that are due.

Every ``PERIOD_S`` the leader reads its wall clock (``raftq.server.clock``),
asks ``raftq.server.cron`` which ticks of each schedule are due after the
schedule's replicated cursor, and proposes one ``Fire`` per tick with the task
it submits (id ``{schedule_id}@{tick_ms}``, delayed by the schedule's jitter).
The timer keeps no state of its own that matters: a new leader starts from the
replicated cursors, and whatever a deposed leader still proposes is refused in
``apply`` (a tick not after the cursor changes nothing). It remembers, per
schedule, the next tick after the cursor, so a round costs one comparison per
schedule that is not due.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from raftq.errors import RaftqError
from raftq.raft.replica import Replica
from raftq.server import cron
from raftq.server.clock import Clock
from raftq.state.commands import Command, Fire
from raftq.state.schedules import Schedule, fire_task_id, jitter_ms

log = logging.getLogger(__name__)

PERIOD_S = 0.2
# Fires proposed at once (the replica coalesces them into entries).
BATCH = 500
DELAY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10,
                 30, 60)
ROUND_BUCKETS = (0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)


def fire_for(sched: Schedule, tick_ms: int, manual: bool = False) -> Fire:
    """The fire of ``sched`` at ``tick_ms``: its task built from the schedule's template."""
    spec = sched.spec
    task = dataclasses.replace(spec.task, id=fire_task_id(spec.id, tick_ms, manual),
                               delay_ms=jitter_ms(spec.id, tick_ms, spec.jitter_ms))
    return Fire(spec.id, tick_ms, sched.generation, task, manual)


class ScheduleTimer:
    def __init__(self, replica: Replica, clock: Clock,
                 registry: CollectorRegistry | None = None) -> None:
        self.replica = replica
        self.clock = clock
        # schedule id -> ((generation, cursor_ms), the first tick after the cursor or None)
        self._next: dict[str, tuple[tuple[int, int], int | None]] = {}
        self.proposed = 0  # fires proposed here (for tests and metrics)
        registry = registry if registry is not None else CollectorRegistry()
        self.fire_delay = Histogram(
            "raftq_schedule_fire_delay_seconds", "From a tick's time to its task committed, "
            "for the fires this node proposed as leader", buckets=DELAY_BUCKETS,
            registry=registry)
        self.round_seconds = Histogram(
            "raftq_schedule_round_seconds", "The leader's time to find the due fires of "
            "every schedule, per round", buckets=ROUND_BUCKETS, registry=registry)
        self.outcomes = Counter("raftq_schedule_fires", "Fires this node proposed, by outcome "
                                "(fired, skipped, buffered, or why apply refused it)",
                                ["outcome"], registry=registry)

    def due_fires(self, now_ms: int) -> list[Fire]:
        fires: list[Fire] = []
        schedules = self.replica.state.schedules
        for sid in [s for s in self._next if s not in schedules]:
            del self._next[sid]
        for sid, sched in schedules.items():
            if sched.paused:
                continue
            key = (sched.generation, sched.cursor_ms)
            known = self._next.get(sid)
            if known is None or known[0] != key:
                nxt = cron.ticks_after(sched.spec, sched.cursor_ms, 2**53, 1)
                known = self._next[sid] = (key, nxt[0] if nxt else None)
            if known[1] is None or known[1] > now_ms:
                continue
            fires.extend(fire_for(sched, tick) for tick in cron.due(sched.spec,
                                                                     sched.cursor_ms, now_ms))
        return fires

    async def run_once(self) -> int:
        """Propose what is due now, if this node leads; the number of fires proposed."""
        if not self.replica.is_leader():
            return 0
        now = self.clock.wall_ms()
        started = time.perf_counter()
        fires = self.due_fires(now)
        self.round_seconds.observe(time.perf_counter() - started)
        for i in range(0, len(fires), BATCH):
            chunk = fires[i:i + BATCH]
            results = await asyncio.gather(
                *(self.replica.propose(Command(f, "", now), timeout_s=5.0) for f in chunk),
                return_exceptions=True)
            self._note(chunk, results)
        self.proposed += len(fires)
        return len(fires)

    def _note(self, fires: list[Fire], results: list[Any]) -> None:
        now = self.clock.wall_ms()
        for fire, result in zip(fires, results, strict=True):
            if isinstance(result, RaftqError):
                log.debug("fire %s@%d not committed: %s", fire.schedule_id, fire.tick_ms, result)
                self.outcomes.labels("not_committed").inc()
            elif isinstance(result, BaseException):
                raise result
            elif isinstance(result, dict) and "error" in result:
                log.info("fire %s@%d refused: %s", fire.schedule_id, fire.tick_ms,
                         result.get("message"))
                self.outcomes.labels(str(result["error"])).inc()
            elif isinstance(result, dict):
                self.outcomes.labels(str(result.get("outcome"))).inc()
                if result.get("outcome") == "fired":
                    self.fire_delay.observe(max(now - fire.tick_ms, 0) / 1000)

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self.run_once()
            except Exception:  # the timer must outlive one bad round
                log.exception("schedule timer round failed")
            try:
                await asyncio.wait_for(stopping.wait(), PERIOD_S)
            except TimeoutError:
                pass
