"""The Raft log on disk: PySyncObj's journal interface, checksummed, durable by default.

Contract:

- ``RaftJournal`` implements the interface of ``pysyncobj.journal.Journal``
  (0.3.17): ``add``, ``clear``, ``deleteEntriesFrom``, ``deleteEntriesTo``,
  ``[]``, ``len``, the term / vote / commit-index getters and setters,
  ``onOneSecondTimer``, ``flush``, ``_destroy``. Entries are
  ``(command, index, term)`` tuples, all kept in memory as in PySyncObj.
- ``add`` and ``deleteEntriesFrom`` change the entries at once and buffer the
  change for the disk. ``sync()`` writes the buffer as one frame and, with
  durability "fsync", makes it durable with one ``fdatasync`` (group commit).
  Nothing may claim an entry is stored before it is durable: a follower's
  answer to AppendEntries waits in ``when_durable`` (``syncing_transport``),
  and the leader counts its own copy toward the commit index only up to
  ``durable_index`` (``raftq.raft.plug``, around every ``doTick``).
  ``raftq.raft.plug`` puts the journal into SyncObj.
- After ``sync_in_background(notify)`` the ``fdatasync`` runs in a thread
  (``raftq.raft.journal_sync``): ``sync_soon()`` writes the buffer as a frame
  and starts its sync unless one is in flight, and returns at once; when
  ``notify`` fires (from the thread) the owner calls ``sync_finished()`` on
  its own thread, which releases the ``when_durable`` callbacks and starts
  the next sync for what was added meanwhile. Without it ``sync_soon()`` is
  ``sync()``.
- ``setCurrentTerm`` is durable when it returns: a vote is granted after it
  (``raftq.raft.journal_meta``: written in place, so it needs no new space).
  The commit index is not persistent state in Raft: ``onOneSecondTimer``
  writes it after a ``sync()``, and it is clamped to the log on load.
- ``clear`` and ``deleteEntriesTo`` (snapshot install, compaction) rewrite the
  file: ``<path>.new``, fsync, rename, fsync the directory. The snapshot file
  is fsynced first, so the log never drops entries that a durable snapshot
  does not cover.
- Space is preallocated in chunks (``posix_fallocate``; no mmap): a full disk
  fails ``add`` with ``StorageFullError`` and nothing added, never SIGBUS. The
  journal keeps ``reserve_bytes`` allocated ahead of the log; ``space_low``
  is true while it cannot, and adds still succeed from the reserve, so the
  replica can refuse client writes (507) while Raft's own entries fit.
  ``space_low`` is also true while the file system has less than
  ``low_water_bytes`` free (looked at every second): the snapshot and the
  compaction need space too, and an operator filling the disk should see
  507s before anything fails. Freed space is found by the next ``add`` or
  ``onOneSecondTimer``.
- A failed ``fdatasync`` leaves the journal unusable (the kernel may have
  dropped the dirty pages): every later call raises; restart the node.
- Durability "none" writes the same format without any fsync: it survives
  the crash of the process, not of the machine.

The file format and its verification are in ``raftq.raft.journal_format``:
one checksummed frame per ``sync()``; on load a torn last frame is cut off
with one warning, any other mismatch raises ``CorruptDataError``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, overload

from raftq.raft.durable import (
    DURABILITIES,
    Durability,
    FileOps,
    StorageFullError,
    directory_of,
    fsync_file_and_dir,
    is_full,
)
from raftq.raft.journal_format import (
    FRAME_OVERHEAD,
    Entry,
    encode_entry,
    file_header,
    frame,
    frames,
    scan,
)
from raftq.raft.journal_meta import MetaFile
from raftq.raft.journal_space import JournalSpace
from raftq.raft.journal_sync import GroupCommit, SyncTracker

log = logging.getLogger(__name__)



class RaftJournal(GroupCommit):
    """PySyncObj's journal on our own file format; see the module docstring.

    ``path`` is the log file (its meta file is ``<path>.meta``);
    ``snapshot_path`` PySyncObj's ``fullDumpFile``, fsynced before the log
    drops entries; ``chunk_bytes`` the preallocation step; ``reserve_bytes``
    (one chunk by default) what is kept allocated ahead (see ``space_low``);
    ``ops`` the file-system layer, which tests replace.
    """

    def __init__(
        self,
        path: str,
        *,
        durability: Durability = "fsync",
        snapshot_path: str | None = None,
        chunk_bytes: int = 16 << 20,
        reserve_bytes: int | None = None,
        low_water_bytes: int | None = None,
        ops: FileOps | None = None,
    ) -> None:
        if durability not in DURABILITIES:
            raise ValueError(f"durability must be one of {DURABILITIES}, not {durability!r}")
        self.path = path
        self.meta_path = path + ".meta"
        self.durability = durability
        self._durable = durability == "fsync"
        self._snapshot_path = snapshot_path
        self._ops = ops or FileOps()
        self._space = JournalSpace(
            path, self._ops, chunk=chunk_bytes,
            reserve=chunk_bytes if reserve_bytes is None else reserve_bytes,
            low_water=chunk_bytes if low_water_bytes is None else low_water_bytes)
        self._entries: list[Entry] = []
        self.command_bytes = 0  # of the entries' commands: what compaction by size counts
        # The lowest index a compaction keeps (raftq.raft.compaction.kept_from).
        self.keep_from: Callable[[], int] | None = None
        self._pending: list[bytes] = []  # msgpack records not yet written
        self._pending_bytes = 0
        self._truncate_from: int | None = None
        self._failed: OSError | None = None
        self._sync = SyncTracker()
        self._fd = -1
        self._end = self._scribbled = 0
        self._meta = MetaFile(self.meta_path, durable=self._durable, ops=self._ops)
        self._term, self._vote, self._commit = self._meta.load()
        self._saved_commit = self._commit
        self._ops.unlink(path + ".new")
        if self._ops.exists(path):
            self._load()
        else:
            self._rewrite([])
        self._sync.mark_durable(0, self._last_index())

    # ------------------------------------------------------------ group commit

    @property
    def space_low(self) -> bool:
        """Client writes should be refused: the disk is (nearly) full."""
        return self._space.low

    @property
    def space_problem(self) -> str | None:
        """Why ``space_low`` is true, in words for an operator; None when it is not."""
        return self._space.problem

    def _last_index(self) -> int:
        return self._entries[-1][1] if self._entries else 0

    def _write_frame(self) -> bool:
        """Write what is buffered as one frame (no sync); whether there was any."""
        if not self._pending and self._truncate_from is None:
            return False
        blob = frame(self._truncate_from, self._pending)
        padding = bytes(max(0, self._scribbled - self._end - len(blob)))
        try:
            self._ops.pwrite(self._fd, blob + padding, self._end)
        except OSError as exc:  # the buffer stays; a later sync rewrites the same spot
            self._scribbled = max(self._scribbled, self._end + len(blob))
            if is_full(exc):
                self._space.reserve_low = True
                raise StorageFullError(self.path, "writing the Raft log") from exc
            raise
        self._end += len(blob)
        self._scribbled = self._end
        self._pending.clear()
        self._pending_bytes = 0
        self._truncate_from = None
        return True

    def flush(self) -> None:
        self.sync()

    # ------------------------------------------------- PySyncObj's interface

    def add(self, command: bytes, idx: int, term: int) -> None:
        self._check_usable()
        if self._entries and idx != self._entries[-1][1] + 1:
            raise ValueError(f"{self.path}: entry {idx} does not follow {self._entries[-1][1]}")
        command = bytes(command)
        record = encode_entry(command, idx, term)
        self._reserve_space(len(record))
        self._pending.append(record)
        self._pending_bytes += len(record)
        self._entries.append((command, idx, term))
        self.command_bytes += len(command)
        self._sync.changed()

    def clear(self) -> None:
        self._check_usable()
        if self._entries:
            self._sync.truncated(self._entries[0][1])
        self._rewrite([])

    def deleteEntriesFrom(self, entryFrom: int) -> None:
        self._check_usable()
        if entryFrom < 0:
            raise ValueError(f"deleteEntriesFrom({entryFrom})")
        if entryFrom >= len(self._entries):
            return
        first_pending = len(self._entries) - len(self._pending)
        if entryFrom >= first_pending:  # only unwritten entries go: forget them
            cut = entryFrom - first_pending
            self._pending_bytes -= sum(len(r) for r in self._pending[cut:])
            del self._pending[cut:]
        else:
            self._reserve_space(0)
            idx = self._entries[entryFrom][1]
            if self._truncate_from is None or idx < self._truncate_from:
                self._truncate_from = idx
            self._pending.clear()
            self._pending_bytes = 0
        self._sync.truncated(self._entries[entryFrom][1])
        self.command_bytes -= sum(len(e[0]) for e in self._entries[entryFrom:])
        del self._entries[entryFrom:]

    def deleteEntriesTo(self, entryTo: int) -> None:
        self._check_usable()
        if self.keep_from is not None and self._entries:
            entryTo = min(entryTo, max(self.keep_from() - self._entries[0][1], 0))
        if entryTo >= len(self._entries) > 0:
            # The snapshot covers entries cut since it began (they come again from the
            # leader): keep the last one; PySyncObj cannot run on an empty log.
            log.warning("%s: compaction up to position %d of a log of %d entries; "
                        "keeping the last", self.path, entryTo, len(self._entries))
            entryTo = len(self._entries) - 1
        self._rewrite(self._entries[entryTo:])

    def align_to_snapshot(self, before_last: Entry, last: Entry) -> None:
        """Drop the entries a snapshot covers, if the log still holds them.

        PySyncObj compacts the log (``deleteEntriesTo``) one tick after the
        snapshot is in place; a crash in between leaves a log that starts
        before the snapshot, and at start-up PySyncObj then *clears* the log,
        entries after the snapshot included (entries this node may have
        acknowledged). Called while the snapshot loads, this makes the log
        start at the snapshot's last two entries, which PySyncObj keeps.
        """
        if not self._entries:
            return
        pos = before_last[1] - self._entries[0][1]  # indexes are consecutive
        if (0 < pos < len(self._entries) - 1 and self._entries[pos] == tuple(before_last)
                and self._entries[pos + 1] == tuple(last)):
            self.deleteEntriesTo(pos)

    @overload
    def __getitem__(self, item: int) -> Entry: ...
    @overload
    def __getitem__(self, item: slice) -> list[Entry]: ...
    def __getitem__(self, item: int | slice) -> Entry | list[Entry]:
        return self._entries[item]

    def __len__(self) -> int:
        return len(self._entries)

    def setRaftCommitIndex(self, raftCommitIndex: int) -> None:
        self._commit = raftCommitIndex

    def getRaftCommitIndex(self) -> int:
        if self._entries:
            return min(self._commit, self._entries[-1][1])
        return self._commit

    def setCurrentTerm(self, term: int, votedForNodeId: Any) -> None:
        self._check_usable()
        self._save_meta(term, votedForNodeId, self._saved_commit)
        self._term, self._vote = term, votedForNodeId

    def getCurrentTerm(self) -> int:
        return self._term

    def getVotedForNodeId(self) -> Any:
        return self._vote

    def onOneSecondTimer(self) -> None:
        """Write what is buffered, retry the reserve, save the commit index."""
        if self._failed is not None:
            return
        try:
            self._space.check_free_space()
            self._reserve_space(0)
            self.sync_soon()
            self._save_commit()
        except StorageFullError as exc:
            log.warning("%s", exc)

    def _destroy(self) -> None:
        if self._fd < 0:
            return
        try:
            if self._failed is None:
                self.sync()
                self._save_commit()
        except (OSError, StorageFullError):
            log.exception("closing the Raft journal %s", self.path)
        finally:
            self._sync.close()
            self._ops.close(self._fd)
            self._fd = -1
            self._meta.close()

    # ------------------------------------------------------------------ disk

    def _check_usable(self) -> None:
        if self._failed is not None:
            raise OSError(self._failed.errno, f"{self.path}: unusable after a failed "
                          f"fdatasync ({self._failed}); restart the node")
        if self._fd < 0:
            raise ValueError(f"{self.path}: the journal is closed")

    def mark_disk_low(self) -> None:
        """Something else failed for lack of space (a snapshot): ``space_low``
        until the next free-space check finds ``low_water_bytes`` free."""
        self._space.disk_low = True

    def _reserve_space(self, extra: int) -> None:
        """Make sure the next frame, ``extra`` bytes more, fits in allocated space."""
        need = max(self._end + FRAME_OVERHEAD + self._pending_bytes + extra, self._scribbled)
        self._space.ensure(self._fd, need)

    def _rewrite(self, entries: list[Entry]) -> None:
        """Replace the file by one holding ``entries`` (and nothing pending)."""
        self._finish_in_flight(wait=True)  # its fd is about to be closed
        if self._durable and self._snapshot_path and self._ops.exists(self._snapshot_path):
            fsync_file_and_dir(self._snapshot_path, self._ops)
        blob = file_header() + b"".join(frames(entries))
        tmp = self.path + ".new"
        fd = -1
        try:
            fd = self._ops.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
            self._ops.pwrite(fd, blob, 0)
            allocated = self._space.allocate_new(fd, len(blob))
            if self._durable:
                self._ops.fsync(fd)
            self._ops.replace(tmp, self.path)
        except OSError as exc:
            if fd >= 0:
                self._ops.close(fd)
            self._ops.unlink(tmp)
            if is_full(exc):
                raise StorageFullError(self.path, "rewriting the Raft log") from exc
            raise
        if self._fd >= 0:
            self._ops.close(self._fd)
        self._fd, self._end, self._scribbled = fd, len(blob), len(blob)
        self._space.replaced(len(blob), allocated)
        self._entries = list(entries)
        self.command_bytes = sum(len(e[0]) for e in entries)
        self._pending.clear()
        self._pending_bytes = 0
        self._truncate_from = None
        if self._durable:
            try:
                self._ops.fsync_dir(directory_of(self.path))
            except OSError as exc:
                self._failed = exc
                raise
        self._sync.changed()
        self._sync.mark_durable(self._sync.seq, self._last_index())
        self._release_waiters()

    def _load(self) -> None:
        data = self._ops.read_file(self.path)
        self._entries, self._end, torn_end = scan(self.path, data)
        self.command_bytes = sum(len(e[0]) for e in self._entries)
        self._fd = self._ops.open(self.path, os.O_RDWR)
        self._space.allocated = len(data)
        self._scribbled = self._end
        if torn_end > self._end:
            last = self._entries[-1][1] if self._entries else None
            log.warning("%s: cut off a torn write at the end (%d bytes at offset %d); the log "
                        "ends at index %s", self.path, torn_end - self._end, self._end, last)
            self._ops.pwrite(self._fd, bytes(torn_end - self._end), self._end)
            if self._durable:
                self._ops.fdatasync(self._fd)

    def _save_meta(self, term: int, vote: Any, commit: int) -> None:
        try:
            self._meta.save((term, vote, commit))
        except StorageFullError:
            self._space.disk_low = True
            raise
        except OSError as exc:  # a failed fdatasync: the file can no longer be trusted
            self._failed = exc
            raise

    def _save_commit(self) -> None:
        """Store the commit index, as far as the durable log covers it."""
        commit = self._commit
        if not self._sync.clean:
            commit = min(commit, self._sync.durable_index)
        if commit != self._saved_commit:
            self._save_meta(self._term, self._vote, commit)
            self._saved_commit = commit

