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
  other).

A leader's compaction keeps the entries its followers have not acknowledged yet
(``kept``, up to ``LAG_CAP`` times ``min_bytes`` of them): PySyncObj drops
every entry the snapshot covers, and a follower that lacks one (restarting
after kill -9, or slow under load) is then sent the whole snapshot instead
(in our tests slowly, and started over again and again). Those entries do not
count toward the size rule: a compaction could not drop them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

# Bytes of commands in the log past which a compaction is due (times the node's stagger).
DEFAULT_MIN_BYTES = 64 << 20
# A leader's compaction keeps up to this many times ``min_bytes`` of entries for
# followers that have not acknowledged them.
LAG_CAP = 4
NO_FLOOR = 1 << 62  # kept_from: nothing kept beyond what the snapshot covers
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
            rank: int, nodes: int) -> bool:
        if log_bytes > self.size_limit(snapshot_bytes, rank, nodes):
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
        rank, nodes = ids.index(me.id), len(ids)
        log_bytes = journal.command_bytes
        if log_bytes > self.size_limit(snapshot_bytes, rank, nodes):
            log_bytes -= self.kept(machine, journal)[1]
        if self.due(now, entries=len(journal), log_bytes=log_bytes,
                    snapshot_bytes=snapshot_bytes, rank=rank, nodes=nodes):
            self.last_s = now
            machine.forceLogCompaction()

    def kept(self, machine: Any, journal: Any) -> tuple[int, int]:
        """The lowest log index a compaction on ``machine`` (a SyncObj, ``journal`` its
        log) keeps, and the bytes of commands from there: on a leader, from the first
        entry a follower has not acknowledged, as long as that is at most ``LAG_CAP``
        times ``min_bytes``; ``(NO_FLOOR, 0)`` otherwise."""
        if machine is None or not machine._isLeader() or not len(journal):
            return NO_FLOOR, 0
        match: dict[Any, int] = machine._SyncObj__raftMatchIndex
        floor = min((match.get(node, 0) for node in machine._SyncObj__otherNodes),
                    default=NO_FLOOR - 1) + 1
        held, cap = 0, LAG_CAP * self.min_bytes
        for position in range(len(journal) - 1, -1, -1):
            command, index, _ = journal[position]
            if index < floor:
                break
            if held + len(command) > cap:
                return int(index) + 1, held
            held += len(command)
        return floor, held
