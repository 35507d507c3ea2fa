"""When a node compacts its Raft log: writes a snapshot and drops the entries it covers.

PySyncObj 0.3.17 compacts when its log holds more than ``logCompactionMinEntries``
entries or ``logCompactionMinTime`` has passed since the last compaction, and with
``logCompactionSplit`` only inside the node's own slot of that period (the first
30 % of its 1/n share), so that the nodes of a cluster do not all fork and write
at once. It counts entries, not bytes: one entry may carry a single command or
thousands of tasks (group commit, batch submits). A million tasks loaded in
batches of 500 are some 2,000 entries, about 300 MB that the journal keeps in
memory and that a restarted node replays task by task, and no compaction came
for up to 300 s; a forced compaction (``forceLogCompaction``) still waits for
the node's slot.

So raftq decides and PySyncObj only carries it out (``forceLogCompaction``, with
its own thresholds out of reach and no split; see ``raftq.raft.tuning``). A
compaction is due:

- as PySyncObj decided it: more than ``min_entries`` entries, or ``min_time_s``
  since the last compaction, inside the node's slot;
- by size, at once: the log's commands hold more than ``size_limit`` bytes, which is
  ``min_bytes`` or half the last snapshot's size, whichever is more (a big state
  is not rewritten for a small log: the snapshots written stay proportional to
  what is appended), times ``1 + rank / 2n`` for the node of rank ``rank`` of
  ``n`` (the nodes of a cluster, whose logs grow alike, reach it one after the
  other). A leader waits while a
  follower lags (``followers_lag``: a node restarting after kill -9 catches up
  from the log, not from a snapshot sent over), up to ``LAG_CAP`` times the limit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

# Bytes of commands in the log past which a compaction is due (times the node's stagger).
DEFAULT_MIN_BYTES = 64 << 20
# A leader defers a compaction by size while a follower lags, up to this many times
# the size limit.
LAG_CAP = 4
# A follower lags when its match index is more than this many entries behind the
# leader's commit index (or it is not connected).
LAG_ENTRIES = 100
# PySyncObj's share of its slot (``logCompactionSplit``): the first 30 %.
_SLOT_SHARE = 0.3


@dataclass(slots=True)
class Compaction:
    """The rule; ``last_s`` is when the last compaction was asked for (or the node started)."""

    min_entries: int
    min_time_s: float
    min_bytes: int = DEFAULT_MIN_BYTES
    last_s: float = 0.0

    def size_limit(self, snapshot_bytes: int, rank: int, nodes: int) -> int:
        base = max(self.min_bytes, snapshot_bytes // 2)
        return base + base * rank // (2 * max(nodes, 1))

    def in_slot(self, now_s: float, rank: int, nodes: int) -> bool:
        """PySyncObj's split: each node compacts in its own part of each period."""
        period = self.min_time_s
        share = period / max(nodes, 1)
        start = int(now_s / period) * period + rank * share
        return start <= now_s < start + _SLOT_SHARE * share

    def due(self, now_s: float, *, entries: int, log_bytes: int, snapshot_bytes: int,
            rank: int, nodes: int, lagging: bool = False) -> bool:
        limit = self.size_limit(snapshot_bytes, rank, nodes)
        if log_bytes > limit and (not lagging or log_bytes > LAG_CAP * limit):
            return True
        if entries <= self.min_entries and now_s - self.last_s <= self.min_time_s:
            return False
        return self.in_slot(now_s, rank, nodes)

    def force_if_due(self, machine: Any, journal: Any, snapshot_bytes: int) -> None:
        """Ask PySyncObj (``machine``, a SyncObj, with ``journal`` its log) for a
        compaction if one is due. Call it only while no snapshot is being written."""
        now = time.monotonic()
        me = machine._SyncObj__selfNode
        ids = sorted(n.id for n in machine._SyncObj__otherNodes | {me})
        if self.due(now, entries=len(journal), log_bytes=journal.command_bytes,
                    snapshot_bytes=snapshot_bytes, rank=ids.index(me.id), nodes=len(ids),
                    lagging=followers_lag(machine)):
            self.last_s = now
            machine.forceLogCompaction()


def followers_lag(machine: Any) -> bool:
    """This node leads and a follower is not connected or is behind its commit index:
    a compaction now might drop entries it still needs, and PySyncObj would then send
    it the whole snapshot instead (slowly, and started over on every disconnection)."""
    if not machine._isLeader():
        return False
    connected = machine._SyncObj__connectedNodes
    match: dict[Any, int] = machine._SyncObj__raftMatchIndex
    floor = machine._SyncObj__raftCommitIndex - LAG_ENTRIES
    return any(node not in connected or match.get(node, 0) < floor
               for node in machine._SyncObj__otherNodes)
