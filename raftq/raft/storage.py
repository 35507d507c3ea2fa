"""A node's Raft data on disk and its health: the journal, the snapshot, and
what their errors mean for the node.

Contract:

- ``open`` verifies the data directory before PySyncObj sees it: a snapshot
  that fails its checksum, a journal that fails its scan, or a journal that
  starts after entry 1 with no snapshot to hold what came before, raise
  ``CorruptDataError`` (the node must not start; ``raftq node --rejoin``).
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
- ``move_aside`` (``raftq node --rejoin``) moves everything in the data
  directory into ``moved-aside-<time>/`` inside it and records the leader's
  commit index in ``raft.rejoin``: until the log reaches that index the node
  grants no vote (``may_vote``), since the entries it acknowledged before are
  gone; then the file is removed.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from raftq.errors import CorruptData
from raftq.raft.durable import (
    CorruptDataError,
    Durability,
    FileOps,
    SnapshotGuard,
    StorageFullError,
    fsync_file_and_dir,
    read_snapshot_file,
)
from raftq.raft.journal import RaftJournal
from raftq.raft.membership import MEMBERS_FILE
from raftq.raft.snapshots import SnapshotWriter

log = logging.getLogger(__name__)

JOURNAL_FILE = "raft.journal"
SNAPSHOT_FILE = "raft.snapshot"
REJOIN_FILE = "raft.rejoin"
MOVED_PREFIX = "moved-aside-"
STEP_DOWN_AFTER_S = 2.0
FOLLOWER = 0  # PySyncObj's _RAFT_STATE.FOLLOWER
# How an unframed msgpack snapshot (raftq before the durable journal) starts.
_MSGPACK_MAPS = (*range(0x80, 0x90), 0xDE, 0xDF)


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
        self._leading_full_since: float | None = None
        self.rejoin_path = os.path.join(data_dir, REJOIN_FILE)
        self.votes_after = 0  # the log index to reach before granting a vote
        self._verified: tuple[tuple[int, int, int], bytes] | None = None

    @property
    def journal(self) -> RaftJournal:
        assert self._journal is not None, "NodeStorage.open() first"
        return self._journal

    def open(self) -> RaftJournal:
        os.makedirs(self.data_dir, exist_ok=True)
        self._refuse_old_formats()
        has_snapshot = os.path.exists(self.snapshot_path)
        if has_snapshot:
            # Verified once: PySyncObj's load (``take_verified``) uses these bytes.
            self._verified = (_identity(self.snapshot_path),
                              read_snapshot_file(self.snapshot_path))
            self.snapshots.last_bytes = os.path.getsize(self.snapshot_path)
        journal = RaftJournal(self.journal_path, durability=self.durability,
                              snapshot_path=self.snapshot_path)
        if not has_snapshot and len(journal) and journal[0][1] > 1:
            first = journal[0][1]
            journal._destroy()
            raise CorruptDataError(
                self.snapshot_path, f"is missing, and the Raft log starts at entry {first}: "
                "the entries before it exist only in that snapshot")
        self._journal = journal
        self.votes_after = _read_index(self.rejoin_path)
        return journal

    def take_verified(self, path: str) -> bytes | None:
        """The payload ``open`` verified, if ``path`` is still that file (once)."""
        verified, self._verified = self._verified, None
        if verified is not None and verified[0] == _identity(path):
            return verified[1]
        return None

    def _refuse_old_formats(self) -> None:
        """Say plainly when the files are from before raftq's own formats."""
        for path, old in ((self.journal_path, (b"PYSYNCOBJ",)),
                          (self.snapshot_path, tuple(bytes([b]) for b in _MSGPACK_MAPS))):
            try:
                with open(path, "rb") as f:
                    head = f.read(16)
            except FileNotFoundError:
                continue
            if head.startswith(old):
                raise CorruptDataError(path, "written by a raftq from before the durable "
                                             "journal (an older format); see \"Upgrading\" in "
                                             "docs/operations.md")

    def close(self) -> None:
        if self._journal is not None:
            self._journal._destroy()
            self._journal = None

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
        return self._journal.space_problem

    def may_vote(self) -> bool:
        if not self.votes_after:
            return True
        journal = self.journal
        if not len(journal) or journal[-1][1] < self.votes_after:
            return False
        log.warning("rejoin: the log holds entry %d, the leader's commit index when the node "
                    "rejoined; it votes again", self.votes_after)
        self.votes_after = 0
        os.unlink(self.rejoin_path)
        return True

    def move_aside(self, stamp: str, leader_commit_index: int) -> Path:
        """Move the data directory's contents aside (``--rejoin``); where they went."""
        data = Path(self.data_dir)
        aside = data / f"{MOVED_PREFIX}{stamp}"
        aside.mkdir(parents=True)
        for item in sorted(data.iterdir()):
            # The membership stays: the node rejoins the cluster it was a member of.
            if item.name == MEMBERS_FILE:
                continue
            if item != aside and not item.name.startswith(MOVED_PREFIX):
                item.rename(aside / item.name)
        Path(self.rejoin_path).write_text(f"{leader_commit_index}\n")
        ops = FileOps()
        ops.fsync_dir(str(aside))
        fsync_file_and_dir(self.rejoin_path, ops)  # the data directory too
        return aside

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
        follower (tried every half second), and if none is caught up within
        ``STEP_DOWN_AFTER_S`` (a busy leader's followers rarely are: Raft's
        TimeoutNow wants one that is) it steps down as PySyncObj does when it
        loses its followers, and the others elect a leader among themselves."""
        if self.problem is None:
            self._leading_full_since = None
            return
        now = time.monotonic()
        if not machine._isLeader():
            self._leading_full_since = None
            machine._SyncObj__raftElectionDeadline = now + election_timeout_s
            return
        if self._leading_full_since is None:
            self._leading_full_since = now
            log.warning("storage: handing the leadership over: this node cannot write")
        if now - self._leading_full_since >= STEP_DOWN_AFTER_S:
            log.warning("storage: no follower caught up to take over; stepping down")
            machine._SyncObj__setState(FOLLOWER)
            machine._SyncObj__raftLeader = None
            machine._SyncObj__raftElectionDeadline = now + election_timeout_s
        elif now - self._handed_over_at >= 0.5:
            self._handed_over_at = now
            machine.transferLeadership()

    def watch(self) -> None:
        """Log the moments the node starts and stops refusing writes; end a
        rejoin's vote ban once the log is long enough."""
        if self.votes_after:
            self.may_vote()
        if self.snapshots.storage_full is not None and self._journal is not None:
            # A snapshot failed for space: refuse writes until the journal's
            # free-space check (every second) finds space again.
            self.snapshots.storage_full = None
            self._journal.mark_disk_low()
        problem = self.problem
        if problem is not None and self._reported is None:
            log.error("storage: %s; refusing client writes (507) until space is freed",
                      problem)
            self._reported = problem
        elif problem is None and self._reported is not None:
            log.warning("storage: space is available again; accepting client writes")
            self._reported = None


def _read_index(path: str) -> int:
    try:
        text = Path(path).read_text().strip()
    except FileNotFoundError:
        return 0
    if not text.isdigit():
        raise CorruptDataError(path, f"expected a log index, found {text[:40]!r}")
    return int(text)


def _identity(path: str) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns
