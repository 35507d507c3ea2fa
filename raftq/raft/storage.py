"""A node's Raft data on disk and its health: the journal, the snapshot, and
what their errors mean for the node.

Contract:

- ``open`` verifies the data directory before PySyncObj sees it: a snapshot
  that fails its checksum, a journal that fails its scan, or a journal that
  starts after entry 1 with no snapshot to hold what came before, raise
  ``CorruptDataError`` (the node must not start; ``raftq node --rejoin``).
- ``sync`` makes the journal durable; the replica calls it before every tick
  (the leader counts its own copy there) and after sending AppendEntries.
- ``check`` raises the error that must stop the node, if one happened: a
  snapshot that failed to load (PySyncObj would carry on with whatever state
  it had) or a failed fdatasync (the kernel may have dropped the pages).
- ``problem`` says, in words, why client writes are refused with 507 (a full
  or nearly full disk under the journal, or a snapshot that could not be
  written for lack of space); None when the node writes normally. ``watch``
  logs one line when the node enters that state and one when it leaves it.
  Meanwhile ``keep_out_of_leadership`` (before every tick) makes the node
  start no election and, if it leads, hand the leadership to a follower:
  a leader that cannot write cannot take writes, nor its followers'.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from raftq.errors import CorruptData
from raftq.raft.durable import (
    CorruptDataError,
    Durability,
    SnapshotGuard,
    StorageFullError,
    check_snapshot_file,
)
from raftq.raft.journal import RaftJournal
from raftq.raft.snapshots import SnapshotWriter

log = logging.getLogger(__name__)

JOURNAL_FILE = "raft.journal"
SNAPSHOT_FILE = "raft.snapshot"


class NodeStorage:
    def __init__(self, data_dir: str, durability: Durability = "fsync") -> None:
        self.data_dir = data_dir
        self.durability = durability
        self.journal_path = os.path.join(data_dir, JOURNAL_FILE)
        self.snapshot_path = os.path.join(data_dir, SNAPSHOT_FILE)
        self.guard = SnapshotGuard()
        self.snapshots = SnapshotWriter(durability)
        self._journal: RaftJournal | None = None
        self._reported: str | None = None
        self._handed_over_at = 0.0

    @property
    def journal(self) -> RaftJournal:
        assert self._journal is not None, "NodeStorage.open() first"
        return self._journal

    def open(self) -> RaftJournal:
        os.makedirs(self.data_dir, exist_ok=True)
        has_snapshot = check_snapshot_file(self.snapshot_path)
        journal = RaftJournal(self.journal_path, durability=self.durability,
                              snapshot_path=self.snapshot_path)
        if not has_snapshot and len(journal) and journal[0][1] > 1:
            first = journal[0][1]
            journal._destroy()
            raise CorruptDataError(
                self.snapshot_path, f"is missing, and the Raft log starts at entry {first}: "
                "the entries before it exist only in that snapshot")
        self._journal = journal
        return journal

    def close(self) -> None:
        if self._journal is not None:
            self._journal._destroy()
            self._journal = None

    def sync(self) -> None:
        self.journal.sync()

    def check(self) -> None:
        self.guard.raise_if_failed()
        failed = self.journal.failed
        if failed is not None:
            raise OSError(failed.errno, f"{self.journal_path}: fdatasync failed ({failed}); "
                          "the node stops because the kernel may have dropped the data; "
                          "restart it")

    @property
    def problem(self) -> str | None:
        if self._journal is None:
            return None
        return self._journal.space_problem or self.snapshots.storage_full

    def is_fatal(self, exc: BaseException) -> bool:
        """Whether ``exc`` (out of a tick or a peer message) must stop the node."""
        return isinstance(exc, CorruptData) or (
            self._journal is not None and self._journal.failed is not None)

    def is_full(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a write refused for lack of space (logged once here)."""
        if not isinstance(exc, StorageFullError):
            return False
        if self._reported is None:
            log.error("storage: %s; refusing client writes (507) until space is freed", exc)
            self._reported = str(exc)
        return True

    def keep_out_of_leadership(self, machine: Any, election_timeout_s: float) -> None:
        """While ``problem``: start no election; a leader hands over to a caught-up
        follower (tried at most every half second, until one is caught up)."""
        if self.problem is None:
            return
        if not machine._isLeader():
            machine._SyncObj__raftElectionDeadline = time.monotonic() + election_timeout_s
            return
        now = time.monotonic()
        if now - self._handed_over_at >= 0.5:
            self._handed_over_at = now
            log.warning("storage: handing the leadership over: this node cannot write")
            machine.transferLeadership()

    def watch(self) -> None:
        """Log the moments the node starts and stops refusing writes."""
        problem = self.problem
        if problem is not None and self._reported is None:
            log.error("storage: %s; refusing client writes (507) until space is freed",
                      problem)
            self._reported = problem
        elif problem is None and self._reported is not None:
            log.warning("storage: space is available again; accepting client writes")
            self._reported = None
