"""Group commit in a thread: acknowledgements wait for the fdatasync that
covers them, one frame at a time is in flight, a truncation drops stale
acknowledgements, and the leader counts only its durable copy."""

from __future__ import annotations

import errno
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from raftq.raft.durable import FileOps
from raftq.raft.journal import RaftJournal
from raftq.raft.journal_sync import SLOW_SYNC_S
from raftq.raft.plug import own_copy_counted_when_durable


class GatedOps(FileOps):
    """An fdatasync that waits until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.syncs = 0
        self.fail = False

    def fdatasync(self, fd: int) -> None:
        assert self.gate.wait(10)
        self.syncs += 1
        if self.fail:
            raise OSError(errno.EIO, "Input/output error")
        super().fdatasync(fd)


def entry(i: int, term: int = 1) -> tuple[bytes, int, int]:
    return (f"command {i}".encode(), i, term)


class Background:
    def __init__(self, path: Path) -> None:
        self.ops = GatedOps()
        self.notified = threading.Event()
        self.journal = RaftJournal(str(path), chunk_bytes=4096, ops=self.ops)
        self.journal.sync_in_background(self.notified.set)

    def finish_one(self) -> None:
        """Let the sync in flight end and take its outcome, as the loop does."""
        self.ops.gate.set()
        assert self.notified.wait(10)
        self.notified.clear()
        self.ops.gate.clear()
        self.journal.sync_finished()


def test_an_acknowledgement_leaves_once_the_sync_covering_it_returned(tmp_path: Path) -> None:
    bg = Background(tmp_path / "raft.journal")
    journal, sent = bg.journal, []
    journal.add(*entry(1))
    journal.when_durable(lambda: sent.append(1))  # starts the sync, returns at once
    assert sent == [] and journal.durable_index == 0 and journal.dirty
    end = journal._end
    journal.add(*entry(2))
    journal.when_durable(lambda: sent.append(2))
    journal.sync_soon()
    assert journal._end == end  # one frame in flight: entry 2 waits in the buffer
    bg.finish_one()
    assert sent == [1] and journal.durable_index == 1  # and entry 2's sync started
    assert journal._end > end
    bg.finish_one()
    assert sent == [1, 2] and journal.durable_index == 2 and not journal.dirty
    assert bg.ops.syncs == 2
    journal.when_durable(lambda: sent.append(3))  # nothing pending: at once
    assert sent == [1, 2, 3]
    bg.ops.gate.set()
    journal._destroy()


def test_a_truncation_drops_the_acknowledgements_made_before_it(tmp_path: Path) -> None:
    bg = Background(tmp_path / "raft.journal")
    journal, sent = bg.journal, []
    for i in range(1, 4):
        journal.add(*entry(i))
    journal.when_durable(lambda: sent.append("stale"))
    journal.deleteEntriesFrom(1)  # a new leader replaces entries 2 and 3
    assert journal.durable_index == 0
    journal.add(*entry(2, term=2))
    journal.when_durable(lambda: sent.append("fresh"))
    bg.finish_one()
    assert journal.durable_index == 1  # of the in-flight frame, entry 1 is still ours
    bg.finish_one()
    assert sent == ["fresh"] and journal.durable_index == 2
    bg.ops.gate.set()
    journal._destroy()
    again = RaftJournal(str(tmp_path / "raft.journal"), chunk_bytes=4096)
    assert again[:] == [entry(1), entry(2, term=2)]


def test_a_failed_background_fdatasync_acknowledges_nothing(tmp_path: Path) -> None:
    bg = Background(tmp_path / "raft.journal")
    journal, sent = bg.journal, []
    journal.add(*entry(1))
    journal.when_durable(lambda: sent.append(1))
    bg.ops.fail = True
    with pytest.raises(OSError):
        bg.finish_one()
    assert sent == [] and journal.failed is not None and journal.durable_index == 0
    with pytest.raises(OSError, match="restart the node"):
        journal.add(*entry(2))
    bg.ops.gate.set()
    journal._destroy()


def test_a_follower_acknowledges_after_one_sync_on_its_own_thread_per_turn(
        tmp_path: Path) -> None:
    ops = FileOps()
    calls: list[str] = []

    class Counting(FileOps):
        def fdatasync(self, fd: int) -> None:
            calls.append("fdatasync")
            ops.fdatasync(fd)

    journal = RaftJournal(str(tmp_path / "raft.journal"), chunk_bytes=4096, ops=Counting())
    woken: list[int] = []
    journal.sync_in_background(lambda: calls.append("thread"), lambda: woken.append(1))
    journal.sync_on_loop(True)
    sent: list[int] = []
    for i in (1, 2, 3):  # three AppendEntries read in one turn of the loop
        journal.add(*entry(i))
        journal.when_durable(lambda i=i: sent.append(i))
    assert sent == [] and journal.dirty and woken  # held until the turn's sync
    journal.sync_soon()  # the tick that ends the turn
    assert sent == [1, 2, 3] and journal.durable_index == 3
    assert calls == ["fdatasync"]  # one sync for the turn, and no hand-off to the thread
    journal.when_durable(lambda: sent.append(4))  # nothing pending: at once
    assert sent == [1, 2, 3, 4]
    journal.sync_on_loop(False)  # leader again: the thread syncs
    journal.add(*entry(4))
    journal.when_durable(lambda: sent.append(5))
    journal._sync._future.result(10)  # type: ignore[union-attr]
    journal.sync_finished()
    assert sent[-1] == 5 and calls[-2:] == ["fdatasync", "thread"]
    journal._destroy()


def test_a_slow_disk_sends_the_syncs_to_the_thread_until_one_is_fast_again(
        tmp_path: Path) -> None:
    """A slow fdatasync on the loop would hold it (a leader's past the election
    timeout: no heartbeats, its followers elect another)."""
    delay = {"s": 0.0}
    calls: list[str] = []

    class Slow(FileOps):
        def fdatasync(self, fd: int) -> None:
            calls.append(threading.current_thread().name)
            time.sleep(delay["s"])
            super().fdatasync(fd)

    journal = RaftJournal(str(tmp_path / "raft.journal"), chunk_bytes=4096, ops=Slow())
    journal.sync_in_background(lambda: None, lambda: None)
    here = threading.current_thread().name

    def one_sync(i: int) -> str:
        journal.sync_on_loop(True)
        journal.add(*entry(i))
        journal.sync_soon()
        if journal._sync.in_flight:
            journal._sync._future.result(10)  # type: ignore[union-attr]
            journal.sync_finished()
        return "loop" if calls[-1] == here else "thread"

    assert one_sync(1) == "loop"
    delay["s"] = SLOW_SYNC_S * 2  # the disk gets busy: this sync is slow, on the loop
    assert one_sync(2) == "loop"
    assert one_sync(3) == "thread"  # and while it stays slow, the thread syncs
    delay["s"] = 0.0
    assert one_sync(4) == "thread"  # this one, in the thread, is fast again
    assert one_sync(5) == "loop"
    assert journal.durable_index == 5
    journal._destroy()


def test_a_follower_on_its_loop_drops_acknowledgements_a_truncation_made_stale(
        tmp_path: Path) -> None:
    journal = RaftJournal(str(tmp_path / "raft.journal"), chunk_bytes=4096)
    journal.sync_in_background(lambda: None, lambda: None)
    journal.sync_on_loop(True)
    sent: list[str] = []
    journal.add(*entry(1))
    journal.add(*entry(2))
    journal.when_durable(lambda: sent.append("stale"))
    journal.deleteEntriesFrom(1)  # a new leader replaces entry 2
    journal.add(*entry(2, term=2))
    journal.when_durable(lambda: sent.append("fresh"))
    journal.sync_soon()
    assert sent == ["fresh"] and journal.durable_index == 2
    journal._destroy()


class FakeLeader:
    """The attributes of PySyncObj's SyncObj that the leader's count reads."""

    def __init__(self, match: dict[str, int]) -> None:
        self._SyncObj__otherNodes = set(match)
        self._SyncObj__raftMatchIndex = dict(match)
        self._SyncObj__raftCurrentTerm = 1

    def _isLeader(self) -> bool:
        return True

    def commit_index(self, last: int) -> int:
        """PySyncObj's rule: the leader counts one for itself, always."""
        nodes = len(self._SyncObj__otherNodes) + 1
        commit = 0
        for idx in range(1, last + 1):
            count = 1 + sum(m >= idx for m in self._SyncObj__raftMatchIndex.values())
            if count > nodes / 2:
                commit = idx
        return commit


class FakeLog:
    def __init__(self, last: int, durable: int) -> None:
        self.entries = [entry(i) for i in range(1, last + 1)]
        self.durable_index = durable

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> Any:
        return self.entries[i]

    def sync(self) -> None:
        self.durable_index = len(self.entries)


def test_the_leader_counts_its_copy_only_up_to_what_it_synced() -> None:
    leader = FakeLeader({"a": 10, "b": 7})
    with own_copy_counted_when_durable(leader, FakeLog(last=10, durable=5)):
        # 6 and 7: on a and b (a majority without the leader); 8-10 on a alone
        assert leader.commit_index(10) == 7
    assert leader._SyncObj__raftMatchIndex == {"a": 10, "b": 7}
    assert leader.commit_index(10) == 10  # what PySyncObj alone would commit


def test_the_leaders_count_is_the_true_count_for_any_cluster() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        followers = rng.choice([2, 4, 6])
        last = rng.randint(1, 12)
        match = {f"n{i}": rng.randint(0, last) for i in range(followers)}
        durable = rng.randint(0, last)
        true_commit = 0
        for idx in range(1, last + 1):
            holders = sum(m >= idx for m in match.values()) + (idx <= durable)
            if holders > (followers + 1) / 2:
                true_commit = idx
        leader = FakeLeader(match)
        with own_copy_counted_when_durable(leader, FakeLog(last, durable)):
            assert leader.commit_index(last) == true_commit, (match, durable)
        assert leader._SyncObj__raftMatchIndex == match


def test_a_leader_alone_syncs_before_counting() -> None:
    leader, log = FakeLeader({}), FakeLog(last=3, durable=1)
    with own_copy_counted_when_durable(leader, log):
        assert log.durable_index == 3
