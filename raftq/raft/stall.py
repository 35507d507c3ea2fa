"""A node that was not running does not call an election for it.

PySyncObj starts an election when its election deadline has passed at a
tick. A follower whose process stood still (stopped, swapped out, its loop
blocked by a long apply, or loading a large snapshot: PySyncObj loads it in
its first tick, then checks the deadline set when it was constructed) finds
the deadline passed at its first tick after, before it has read the leader's
heartbeats waiting in its socket. It then asks for votes at a higher term,
which makes the leader step down: one paused follower cost a healthy cluster
its leader (three terms per 3 s pause, measured) and a restart with a large
state several elections. The time it was not running says nothing about the
leader, so it waits a new election timeout from the moment it runs again,
in which the heartbeats already sent arrive. A leader that is really gone
is noticed one timeout later than it would have been.
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger(__name__)

# At most one warning about stalls this often (the others are counted in it).
WARN_EVERY_S = 10.0


class StallGuard:
    """``before_tick`` / ``after_tick`` around each of a node's Raft ticks.

    ``stall_s``: a gap between ticks longer than this (the ticks run every
    10 ms) counts as a stall; half the minimum election timeout, so that a
    stall alone could not have used up a deadline."""

    def __init__(self, stall_s: float) -> None:
        self.stall_s = stall_s
        self.elections_started = 0  # by this node (shown in /v1/node)
        self._last_tick: float | None = None  # none yet: the first is no stall
        self._term = 0
        self._loading = False
        self._warned_at = -WARN_EVERY_S
        self._unwarned = 0

    def before_tick(self, machine: Any) -> None:
        now = time.monotonic()
        gap_s = 0.0 if self._last_tick is None else now - self._last_tick
        leader = machine._isLeader()
        self._loading = bool(machine._SyncObj__needLoadDumpFile)
        self._term = machine._SyncObj__raftCurrentTerm
        if gap_s > self.stall_s:
            self._warn(now, gap_s, leader)
        elif not self._loading:
            return
        if leader:
            return
        if self._loading:  # the load runs inside this tick: no election in it
            machine._SyncObj__raftElectionDeadline = float("inf")
        elif machine._SyncObj__raftElectionDeadline < now + self.stall_s:
            machine._SyncObj__raftElectionDeadline = (
                now + machine._SyncObj__generateRaftTimeout())

    def after_tick(self, machine: Any) -> None:
        now = time.monotonic()
        # Within a tick the term moves only when this node asks for votes (peer
        # messages are handled outside ticks).
        if machine._SyncObj__raftCurrentTerm > self._term:
            self.elections_started += 1
        if self._loading and machine._SyncObj__raftElectionDeadline == float("inf"):
            machine._SyncObj__raftElectionDeadline = (
                now + machine._SyncObj__generateRaftTimeout())
        self._loading = False
        self._last_tick = now

    def _warn(self, now: float, gap_s: float, leader: bool) -> None:
        """A stall is worth an operator's eye: a leader's lets the followers elect
        another; a follower's, if frequent, means the machine is short of CPU or
        memory."""
        if now - self._warned_at < WARN_EVERY_S:
            self._unwarned += 1
            return
        more = f" ({self._unwarned} more since the last warning)" if self._unwarned else ""
        log.warning("raft: this node stood still for %.2f s (stopped, swapping, or its loop "
                    "busy)%s; %s", gap_s, more,
                    "its followers may have elected another leader meanwhile" if leader else
                    "it calls no election for that time")
        self._warned_at, self._unwarned = now, 0

