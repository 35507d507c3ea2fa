"""The Raft journal: entries survive reopening, torn tails are cut, corruption is
refused, a full disk is survived, and group commit costs one fdatasync."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from raftq.raft.durable import CorruptDataError, FileOps, SnapshotGuard, StorageFullError
from raftq.raft.journal import RaftJournal
from raftq.raft.plug import journal_for_syncobj, syncing_transport

Entry = tuple[bytes, int, int]


class FaultyOps(FileOps):
    """Counts the syncs; fails allocations and writes with ENOSPC on demand."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.full = False  # fallocate fails
        self.short_write = False  # pwrite writes half, then fails
        self.fail_fdatasync = False
        self.fail_replace = False

    def fallocate(self, fd: int, offset: int, length: int) -> None:
        self.calls["fallocate"] += 1
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        super().fallocate(fd, offset, length)

    def pwrite(self, fd: int, data: bytes, offset: int) -> None:
        if self.short_write:
            super().pwrite(fd, data[: len(data) // 2], offset)
            raise OSError(errno.ENOSPC, "No space left on device")
        super().pwrite(fd, data, offset)

    def fdatasync(self, fd: int) -> None:
        self.calls["fdatasync"] += 1
        if self.fail_fdatasync:
            raise OSError(errno.EIO, "Input/output error")
        super().fdatasync(fd)

    def fsync(self, fd: int) -> None:
        self.calls["fsync"] += 1
        super().fsync(fd)

    def fsync_dir(self, path: str) -> None:
        self.calls["fsync_dir"] += 1
        super().fsync_dir(path)

    def replace(self, src: str, dst: str) -> None:
        if self.fail_replace:
            raise OSError(errno.EIO, "crash before the rename")
        super().replace(src, dst)


def entry(i: int, term: int = 1) -> Entry:
    return (b"\x01" + f"command {i}".encode() * (i % 5), i, term)


def open_journal(path: Path, **kwargs: Any) -> RaftJournal:
    kwargs.setdefault("chunk_bytes", 4096)
    return RaftJournal(str(path), **kwargs)


def reopen_copy(path: Path, tmp_path: Path, **kwargs: Any) -> RaftJournal:
    """What a node restarted right now would load (the original stays open)."""
    copy = tmp_path / "copy"
    copy.mkdir(exist_ok=True)
    for suffix in ("", ".meta"):
        if os.path.exists(str(path) + suffix):
            shutil.copyfile(str(path) + suffix, str(copy / path.name) + suffix)
    return open_journal(copy / path.name, **kwargs)


def write_frames(path: Path, per_sync: list[int]) -> tuple[list[Entry], list[int]]:
    """A journal written in syncs of ``per_sync`` entries; the entries and file ends."""
    journal = open_journal(path)
    entries: list[Entry] = []
    ends = [journal._end]
    for n in per_sync:
        for _ in range(n):
            e = entry(len(entries) + 1)
            journal.add(*e)
            entries.append(e)
        journal.sync()
        ends.append(journal._end)
    journal._destroy()
    return entries, ends


def test_entries_synced_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    journal = open_journal(path)
    expected = [entry(i, term=1 + i // 10) for i in range(1, 201)] + [(b"", 201, 20)]
    for e in expected:
        journal.add(*e)
    journal.sync()
    journal._destroy()
    again = open_journal(path)
    assert len(again) == len(expected)
    assert again[:] == expected
    assert again[0] == expected[0] and again[-1] == expected[-1]
    assert again[5:8] == expected[5:8]


def test_entries_never_synced_are_not_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    journal = open_journal(path)
    journal.add(*entry(1))
    journal.sync()
    journal.add(*entry(2))  # the process dies before the next sync
    assert reopen_copy(path, tmp_path)[:] == [entry(1)]


def test_a_tail_cut_at_any_byte_loses_only_the_unfinished_frames(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    entries, ends = write_frames(tmp_path / "full", [3, 1, 2, 1, 1])
    data = (tmp_path / "full").read_bytes()
    for cut in range(ends[-3], ends[-1] + 1):
        complete = sum(1 for end in ends[1:] if end <= cut)
        kept = sum([3, 1, 2, 1, 1][:complete])
        for tail in (b"", bytes(len(data) - cut)):  # truncated, or in preallocated zeros
            path = tmp_path / f"cut{cut}-{len(tail)}"
            path.write_bytes(data[:cut] + tail)
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="raftq.raft.journal"):
                journal = open_journal(path)
            assert journal[:] == entries[:kept], cut
            torn = cut not in ends
            assert len(caplog.records) == (1 if torn else 0), cut
            journal.add(*entry(kept + 1))  # the log goes on from the cut
            journal.sync()
            journal._destroy()
            assert open_journal(path)[:] == entries[:kept] + [entry(kept + 1)]


def test_a_torn_frame_whose_pages_landed_out_of_order_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    journal = open_journal(path)
    journal.add(*entry(1))
    journal.sync()
    start = journal._end
    for i in range(2, 200):
        journal.add(b"x" * 100, i, 1)
    journal.sync()  # one frame over several pages
    journal._destroy()
    data = bytearray(path.read_bytes())
    page = (start // 4096 + 1) * 4096
    data[page:page + 4096] = bytes(4096)  # the power went before this page was written
    path.write_bytes(bytes(data))
    assert open_journal(path)[:] == [entry(1)]


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_a_damaged_byte_in_a_middle_frame_is_refused(tmp_path: Path, mask: int) -> None:
    entries, ends = write_frames(tmp_path / "full", [2, 2, 2])
    data = (tmp_path / "full").read_bytes()
    for pos in range(ends[1], ends[2]):
        damaged = bytearray(data)
        damaged[pos] ^= mask
        path = tmp_path / "damaged"
        path.write_bytes(bytes(damaged))
        with pytest.raises(CorruptDataError) as info:
            open_journal(path)
        assert str(path) in str(info.value) and "--rejoin" in str(info.value)


@pytest.mark.parametrize("header", [b"", b"RAFTQLOG", b"XAFTQLOG" + bytes(8),
                                    b"PYSYNCOBJ" + bytes(40)])
def test_a_bad_header_is_refused(tmp_path: Path, header: bytes) -> None:
    path = tmp_path / "raft.journal"
    path.write_bytes(header)
    with pytest.raises(CorruptDataError, match="raft.journal"):
        open_journal(path)


def test_a_full_disk_fails_the_add_and_leaves_the_journal_consistent(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    ops = FaultyOps()
    journal = open_journal(path, reserve_bytes=0, ops=ops)
    synced: list[Entry] = []
    ops.full = True
    with pytest.raises(StorageFullError) as info:
        for i in range(1, 1000):
            journal.add(*entry(i))
            synced.append(entry(i))
            journal.sync()
    assert info.value.status == 507
    assert journal[:] == synced and journal.space_low
    assert reopen_copy(path, tmp_path)[:] == synced  # nothing acknowledged was lost
    ops.full = False  # space freed
    nxt = entry(len(synced) + 1)
    journal.add(*nxt)
    journal.sync()
    journal._destroy()
    assert open_journal(path)[:] == synced + [nxt]


def test_a_full_disk_during_the_write_keeps_the_buffer_for_a_later_sync(
        tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    ops = FaultyOps()
    journal = open_journal(path, ops=ops)
    journal.add(*entry(1))
    journal.sync()
    for i in range(2, 40):
        journal.add(*entry(i))
    ops.short_write = True
    with pytest.raises(StorageFullError):
        journal.sync()
    assert len(journal) == 39 and journal.dirty
    assert reopen_copy(path, tmp_path)[:] == [entry(1)]  # the half frame is a torn tail
    ops.short_write = False
    journal.deleteEntriesFrom(5)  # the next frame is shorter than the half written
    journal.sync()
    journal._destroy()
    assert open_journal(path)[:] == [entry(i) for i in range(1, 6)]


def test_space_runs_low_before_it_runs_out_and_comes_back(tmp_path: Path) -> None:
    ops = FaultyOps()
    journal = open_journal(tmp_path / "raft.journal", reserve_bytes=4096, ops=ops)
    ops.full = True
    i = 0
    while not journal.space_low:
        i += 1
        journal.add(*entry(i))  # still fits: the reserve
        journal.sync()
    assert len(journal) == i
    ops.full = False
    journal.onOneSecondTimer()
    assert not journal.space_low


def test_delete_entries_from_then_reopen(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    journal = open_journal(path)
    for i in range(1, 11):
        journal.add(*entry(i))
    journal.sync()
    journal.add(*entry(11))
    journal.deleteEntriesFrom(10)  # an unwritten entry only
    journal.deleteEntriesFrom(6)  # written ones: entries 7.. go
    assert reopen_copy(path, tmp_path)[:] == [entry(i) for i in range(1, 11)]  # not yet synced
    journal.add(*entry(7, term=2))
    journal.sync()
    assert reopen_copy(path, tmp_path)[:] == [entry(i) for i in range(1, 7)] + [entry(7, 2)]
    journal.deleteEntriesFrom(3)  # a truncation alone
    journal.sync()
    journal._destroy()
    assert open_journal(path)[:] == [entry(i) for i in range(1, 4)]


def test_delete_entries_to_compacts_atomically(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    snapshot = tmp_path / "raft.snapshot"
    snapshot.write_bytes(b"snap")
    ops = FaultyOps()
    journal = open_journal(path, snapshot_path=str(snapshot), ops=ops)
    for i in range(1, 21):
        journal.add(*entry(i))
    journal.sync()
    ops.fail_replace = True  # a crash before the rename: nothing changes
    with pytest.raises(OSError):
        journal.deleteEntriesTo(15)
    assert len(journal) == 20 and not os.path.exists(str(path) + ".new")
    ops.fail_replace = False
    fsyncs = ops.calls["fsync"]
    journal.add(*entry(21))
    journal.deleteEntriesTo(15)
    assert ops.calls["fsync"] == fsyncs + 2  # the snapshot, then the new log
    assert journal[0] == entry(16)
    journal.add(*entry(22))
    journal.sync()
    journal._destroy()
    assert open_journal(path)[:] == [entry(i) for i in range(16, 23)]


def test_clear_then_the_snapshot_entries(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    journal = open_journal(path)
    for i in range(1, 6):
        journal.add(*entry(i))
    journal.sync()
    journal.clear()
    journal.add(*entry(99))
    journal.add(*entry(100))
    journal.sync()
    journal._destroy()
    assert open_journal(path)[:] == [entry(99), entry(100)]


def test_term_vote_and_commit_index_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    ops = FaultyOps()
    journal = open_journal(path, ops=ops)
    assert (journal.getCurrentTerm(), journal.getVotedForNodeId()) == (0, None)
    for i in range(1, 6):
        journal.add(*entry(i))
    before = ops.calls["fdatasync"]
    journal.setCurrentTerm(5, "10.0.0.2:4321")
    assert ops.calls["fdatasync"] == before + 1  # written in place: no rename, no new space
    journal.setRaftCommitIndex(4)
    journal.onOneSecondTimer()
    again = reopen_copy(path, tmp_path)
    assert (again.getCurrentTerm(), again.getVotedForNodeId()) == (5, "10.0.0.2:4321")
    assert again.getRaftCommitIndex() == 4
    journal.deleteEntriesFrom(2)
    journal.sync()
    assert reopen_copy(path, tmp_path).getRaftCommitIndex() == 2  # clamped to the log


@pytest.mark.parametrize("damage", ["flip both records", "truncate"])
def test_a_damaged_meta_file_is_refused(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "raft.journal"
    journal = open_journal(path)
    journal.setCurrentTerm(3, None)
    journal.setCurrentTerm(4, None)
    journal._destroy()
    meta = tmp_path / "raft.journal.meta"
    data = bytearray(meta.read_bytes())
    if damage == "truncate":
        del data[-1:]
    else:
        data[30] ^= 0x10
        data[512 + 30] ^= 0x10
    meta.write_bytes(bytes(data))
    with pytest.raises(CorruptDataError, match="raft.journal.meta"):
        open_journal(path)


@pytest.mark.parametrize("byte", [0, 13, 22, 30, 100, 511])
def test_a_torn_meta_record_falls_back_to_the_one_before(
        tmp_path: Path, byte: int, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "raft.journal"
    journal = open_journal(path)
    journal.setCurrentTerm(3, "a:1")  # record 1 (second slot)
    journal.setCurrentTerm(4, "b:2")  # record 2 (first slot), torn below
    journal._destroy()
    meta = tmp_path / "raft.journal.meta"
    data = bytearray(meta.read_bytes())
    data[byte] ^= 0x04
    meta.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        again = open_journal(path)
    assert (again.getCurrentTerm(), again.getVotedForNodeId()) == (3, "a:1")
    assert "damaged" in caplog.text
    again.setCurrentTerm(5, None)  # overwrites the damaged slot
    again._destroy()
    assert open_journal(path).getCurrentTerm() == 5


def test_the_term_and_vote_are_saved_on_a_full_disk(tmp_path: Path) -> None:
    ops = FaultyOps()
    journal = open_journal(tmp_path / "raft.journal", ops=ops)
    ops.full = True
    ops.fail_replace = True  # nothing may be created or renamed
    journal.setCurrentTerm(7, "c:3")
    journal._destroy()
    ops.full = ops.fail_replace = False
    assert open_journal(tmp_path / "raft.journal").getCurrentTerm() == 7


def test_one_fdatasync_per_sync_however_many_adds(tmp_path: Path) -> None:
    ops = FaultyOps()
    journal = open_journal(tmp_path / "raft.journal", ops=ops)
    for i in range(1, 501):
        journal.add(*entry(i))
    assert ops.calls["fdatasync"] == 0
    journal.sync()
    journal.sync()  # nothing new
    assert ops.calls["fdatasync"] == 1


def test_durability_none_never_syncs(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    (tmp_path / "raft.snapshot").write_bytes(b"snap")
    ops = FaultyOps()
    journal = open_journal(path, durability="none", ops=ops,
                           snapshot_path=str(tmp_path / "raft.snapshot"))
    for i in range(1, 101):
        journal.add(*entry(i))
    journal.sync()
    journal.setCurrentTerm(2, "a:1")
    journal.deleteEntriesTo(50)
    journal.setRaftCommitIndex(60)
    journal.onOneSecondTimer()
    journal._destroy()
    assert not {"fdatasync", "fsync", "fsync_dir"} & set(ops.calls)
    assert open_journal(path, durability="none")[:] == [entry(i) for i in range(51, 101)]


def test_a_failed_fdatasync_makes_the_journal_unusable(tmp_path: Path) -> None:
    ops = FaultyOps()
    journal = open_journal(tmp_path / "raft.journal", ops=ops)
    journal.add(*entry(1))
    ops.fail_fdatasync = True
    with pytest.raises(OSError):
        journal.sync()
    ops.fail_fdatasync = False
    assert journal.failed is not None
    with pytest.raises(OSError, match="restart the node"):
        journal.add(*entry(2))


def test_an_entry_that_does_not_follow_is_refused(tmp_path: Path) -> None:
    journal = open_journal(tmp_path / "raft.journal")
    journal.add(*entry(1))
    with pytest.raises(ValueError):
        journal.add(*entry(3))


def test_acknowledgements_wait_for_the_sync(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from pysyncobj.transport import TCPTransport

    journal = open_journal(tmp_path / "raft.journal")
    seen: list[tuple[str, bool]] = []
    monkeypatch.setattr(TCPTransport, "send",
                        lambda self, node, message: seen.append((message["type"], journal.dirty)))
    transport = object.__new__(syncing_transport(journal))  # no sockets needed
    journal.add(*entry(1))
    transport.send(None, {"type": "append_entries"})
    transport.send(None, {"type": "next_node_idx"})
    assert seen == [("append_entries", True), ("next_node_idx", False)]

    guard = SnapshotGuard()
    guard.error = CorruptDataError("raft.snapshot", "checksum mismatch")
    guarded = object.__new__(syncing_transport(journal, guard))
    with pytest.raises(CorruptDataError):
        guarded.send(None, {"type": "next_node_idx"})  # no success after a failed install
    assert len(seen) == 2


def test_syncobj_runs_on_the_journal(tmp_path: Path) -> None:
    from pysyncobj import SyncObj, SyncObjConf, replicated

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"

    class Counter_(SyncObj):  # type: ignore[misc]
        def __init__(self, conf: SyncObjConf) -> None:
            super().__init__(address, [], conf)
            self.value = 0

        @replicated  # type: ignore[untyped-decorator]
        def incr(self) -> int:
            self.value += 1
            return self.value

    path = tmp_path / "raft.journal"
    for expected in (3, 6):
        journal = open_journal(path)
        with journal_for_syncobj(journal):
            node = Counter_(SyncObjConf(autoTick=False, journalFile=str(path),
                                        appendEntriesPeriod=0.01, raftMinTimeout=0.05,
                                        raftMaxTimeout=0.1))
        for _ in range(3):
            node.incr()
        deadline = time.monotonic() + 10
        while node.value != expected and time.monotonic() < deadline:
            journal.sync()  # before each tick: the leader counts its own copy there
            node.doTick(0.01)
        assert node.value == expected
        node._destroy()


def test_the_commands_bytes_follow_every_change(tmp_path: Path) -> None:
    """What compaction by size counts (raftq.raft.compaction): the bytes of the
    commands the log holds, through adds, truncations, compactions and a reopening."""
    path = tmp_path / "raft.journal"

    def held(j: RaftJournal) -> int:
        return sum(len(e[0]) for e in j[:])

    journal = open_journal(path)
    for i in range(1, 21):
        journal.add(b"x" * i, i, 1)
    journal.sync()
    assert journal.command_bytes == held(journal) == 210
    journal.add(b"y" * 100, 21, 1)
    journal.deleteEntriesFrom(20)  # unwritten
    journal.deleteEntriesFrom(15)  # written
    assert journal.command_bytes == held(journal) == 120
    journal.deleteEntriesTo(10)
    assert journal.command_bytes == held(journal) == 11 + 12 + 13 + 14 + 15
    journal.sync()
    journal._destroy()
    again = open_journal(path)
    assert again.command_bytes == held(again) == 65
    again.clear()
    assert again.command_bytes == 0


def test_a_compaction_past_the_end_keeps_the_last_entry(tmp_path: Path) -> None:
    """PySyncObj compacts up to the entry a snapshot began at; if the log was cut
    below it meanwhile, an empty log would wedge it (IndexError on every tick)."""
    journal = open_journal(tmp_path / "raft.journal")
    for i in range(1, 6):
        journal.add(*entry(i))
    journal.deleteEntriesTo(9)
    assert journal[:] == [entry(5)]
    journal.add(*entry(6))
    journal.sync()
    journal._destroy()
    assert open_journal(tmp_path / "raft.journal")[:] == [entry(5), entry(6)]


def test_a_compaction_keeps_the_entries_from_keep_from(tmp_path: Path) -> None:
    """A leader's log keeps what a follower has not acknowledged (raftq.raft.compaction)."""
    journal = open_journal(tmp_path / "raft.journal")
    for i in range(1, 11):
        journal.add(*entry(i))
    journal.keep_from = lambda: 4
    journal.deleteEntriesTo(7)  # PySyncObj's snapshot covers up to entry 8
    assert journal[0] == entry(4)
    journal.keep_from = lambda: 1 << 62  # a follower: no floor
    journal.deleteEntriesTo(3)
    assert journal[0] == entry(7)
