"""A node's data directory as the replica opens it: what is refused at start,
the log aligned to a snapshot taken just before a crash, the `durability`
setting, and snapshot writes that fail for lack of space."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from pysyncobj.config import SERIALIZER_STATE

from raftq.errors import ConfigError, CorruptData
from raftq.raft import snapshots
from raftq.raft.durable import write_snapshot_file
from raftq.raft.journal import RaftJournal
from raftq.raft.snapshots import SnapshotWriter
from raftq.raft.storage import NodeStorage
from raftq.server import config


def entry(i: int, term: int = 1) -> tuple[bytes, int, int]:
    return (f"command {i}".encode(), i, term)


def test_a_log_that_needs_a_missing_snapshot_is_refused(tmp_path: Path) -> None:
    journal = RaftJournal(str(tmp_path / "raft.journal"), chunk_bytes=4096)
    for i in range(1, 6):
        journal.add(*entry(i))
    journal.deleteEntriesTo(2)  # compacted: entries 1-2 live only in a snapshot
    journal._destroy()
    with pytest.raises(CorruptData, match="raft.snapshot: is missing, and the Raft log "
                                          "starts at entry 3"):
        NodeStorage(str(tmp_path)).open()


def test_a_damaged_snapshot_is_refused_before_raft_starts(tmp_path: Path) -> None:
    path = tmp_path / "raft.snapshot"
    write_snapshot_file(str(path), b"state")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptData, match="checksum mismatch.*--rejoin"):
        NodeStorage(str(tmp_path)).open()


def test_the_log_is_aligned_to_a_snapshot_taken_just_before_a_crash(tmp_path: Path) -> None:
    journal = RaftJournal(str(tmp_path / "raft.journal"), chunk_bytes=4096)
    for i in range(1, 8):
        journal.add(*entry(i))
    journal.sync()
    # The snapshot covers up to entry 4; the crash came before the compaction.
    journal.align_to_snapshot(entry(3), entry(4))
    assert [e[1] for e in journal] == [3, 4, 5, 6, 7]
    journal._destroy()
    reopened = RaftJournal(str(tmp_path / "raft.journal"), chunk_bytes=4096)
    assert [e[1] for e in reopened] == [3, 4, 5, 6, 7]
    # A log that does not hold the snapshot's entries is left alone.
    reopened.align_to_snapshot(entry(4, term=2), entry(5, term=2))
    reopened.align_to_snapshot(entry(30), entry(31))
    assert [e[1] for e in reopened] == [3, 4, 5, 6, 7]


def test_a_snapshot_that_fails_for_space_is_retried_later_not_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = SnapshotWriter()
    pid = os.fork()
    if pid == 0:
        os._exit(snapshots.EXIT_STORAGE_FULL)
    writer._pid = pid
    deadline = time.monotonic() + 10
    while writer.storage_full is None and time.monotonic() < deadline:
        assert writer.status() == SERIALIZER_STATE.SERIALIZING  # held back, not FAILED
    assert writer.storage_full is not None
    assert writer.status() == SERIALIZER_STATE.SERIALIZING
    monkeypatch.setattr(snapshots, "RETRY_AFTER_FAILURE_S", 0.0)
    writer._retry_at = 0.0
    assert writer.status() == SERIALIZER_STATE.FAILED
    assert writer.status() == SERIALIZER_STATE.NOT_SERIALIZING


def _config(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "node.yaml"
    path.write_text("node_id: n1\nraft_address: 127.0.0.1:1\nhttp_address: 127.0.0.1:2\n"
                    "data_dir: d\nsecret: s\n" + extra)
    return path


def test_durability_defaults_to_fsync_and_is_validated(tmp_path: Path) -> None:
    assert config.load(_config(tmp_path, "")).durability == "fsync"
    assert config.load(_config(tmp_path, "durability: none\n")).durability == "none"
    with pytest.raises(ConfigError, match="`durability` must be one of fsync, none") as info:
        config.load(_config(tmp_path, "durability: always\n"))
    assert info.value.field == "durability"


def test_rejoin_moves_everything_aside_and_bans_votes_until_caught_up(tmp_path: Path) -> None:
    data = tmp_path / "data"
    storage = NodeStorage(str(data))
    storage.open().add(*entry(1))
    storage.close()
    (data / "raft.snapshot").write_bytes(b"damaged")
    aside = NodeStorage(str(data)).move_aside("20261128T000000Z", leader_commit_index=3)
    assert sorted(p.name for p in aside.iterdir()) == [
        "raft.journal", "raft.journal.meta", "raft.snapshot"]
    assert sorted(p.name for p in data.iterdir()) == [aside.name, "raft.rejoin"]

    storage = NodeStorage(str(data))
    journal = storage.open()  # empty: it starts from nothing
    assert storage.votes_after == 3 and not storage.may_vote()
    for i in range(1, 4):
        journal.add(*entry(i))
    assert storage.may_vote() and storage.votes_after == 0
    assert not (data / "raft.rejoin").exists()
    storage.close()
    # A second rejoin keeps the first one's files where they are.
    second = NodeStorage(str(data)).move_aside("20261128T000001Z", leader_commit_index=1)
    assert aside.exists() and (second / "raft.journal").exists()


def test_votes_are_held_back_while_the_storage_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pysyncobj.transport import TCPTransport

    from raftq.raft.plug import syncing_transport

    sent: list[str] = []
    monkeypatch.setattr(TCPTransport, "send", lambda self, node, m: sent.append(m["type"]))
    journal = RaftJournal(str(tmp_path / "raft.journal"), chunk_bytes=4096)
    allowed = False
    transport = object.__new__(syncing_transport(journal, may_vote=lambda: allowed))
    transport.send(None, {"type": "response_vote"})
    transport.send(None, {"type": "next_node_idx"})
    allowed = True
    transport.send(None, {"type": "response_vote"})
    assert sent == ["next_node_idx", "response_vote"]


def _log(tmp_path: Path, terms: list[int]) -> RaftJournal:
    journal = RaftJournal(str(tmp_path / "raft.journal"), chunk_bytes=4096)
    for i, term in enumerate(terms, start=1):
        journal.add(*entry(i, term))
    journal.setCurrentTerm(max(terms), None)
    return journal


def _append(prev: int, prev_term: int, term: int, entries: list[tuple[bytes, int, int]]
            ) -> dict[str, object]:
    return {"type": "append_entries", "term": term, "commit_index": 1, "prevLogIdx": prev,
            "prevLogTerm": prev_term, "entries": entries}


def test_a_resend_of_entries_the_follower_has_does_not_truncate_them(tmp_path: Path) -> None:
    from raftq.raft.plug import skip_known_entries

    journal = _log(tmp_path, [1, 2, 2, 2, 2])
    resend = _append(2, 2, 2, [entry(3, 2), entry(4, 2), entry(5, 2), entry(6, 2)])
    skip_known_entries(journal, resend)
    assert (resend["prevLogIdx"], resend["prevLogTerm"], resend["entries"]) == (
        5, 2, [entry(6, 2)])
    heartbeat = _append(3, 2, 2, [])  # an index the leader moved back
    skip_known_entries(journal, heartbeat)
    assert (heartbeat["prevLogIdx"], heartbeat["entries"]) == (5, [])


@pytest.mark.parametrize("message", [
    _append(2, 2, 3, []),  # a new leader: our tail is the old one's, it may be replaced
    _append(2, 2, 2, [entry(3, 2), entry(4, 3)]),  # conflicts with what we hold
    _append(2, 1, 2, []),  # the previous entry does not match: PySyncObj answers that
    _append(5, 2, 2, [entry(6, 2)]),  # nothing resent
    _append(0, 0, 2, []),  # before the log
    {"type": "append_entries", "term": 2, "commit_index": 1, "serialized": b""},
])
def test_anything_else_is_left_to_pysyncobj(tmp_path: Path, message: dict[str, object]) -> None:
    from raftq.raft.plug import skip_known_entries

    journal = _log(tmp_path, [1, 2, 2, 2, 2])
    before = dict(message)
    skip_known_entries(journal, message)
    assert message == before


class FakeLeader:
    """The parts of SyncObj that keep_out_of_leadership touches."""

    def __init__(self, transfer_works: bool) -> None:
        self.leader = True
        self.transfer_works = transfer_works
        self.transfers = 0
        self._SyncObj__raftElectionDeadline = 0.0
        self._SyncObj__raftLeader: object = "me"

    def _isLeader(self) -> bool:  # noqa: N802
        return self.leader

    def transferLeadership(self) -> None:  # noqa: N802
        self.transfers += 1
        if self.transfer_works:
            self.leader = False

    def _SyncObj__setState(self, state: int) -> None:  # noqa: N802
        self.leader = state == 2


@pytest.mark.parametrize("transfer_works", [True, False])
def test_a_leader_that_cannot_write_leaves_the_leadership(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transfer_works: bool) -> None:
    from raftq.raft import storage as storage_module

    storage = NodeStorage(str(tmp_path))
    journal = storage.open()
    machine = FakeLeader(transfer_works)
    storage.keep_out_of_leadership(machine, 1.0)
    assert machine.transfers == 0 and machine.leader  # the disk is fine
    journal.mark_disk_low()
    monkeypatch.setattr(storage_module, "STEP_DOWN_AFTER_S", 0.05)
    deadline = time.monotonic() + 5
    while machine.leader and time.monotonic() < deadline:
        storage.keep_out_of_leadership(machine, 1.0)
    assert not machine.leader and machine.transfers >= 1
    assert machine._SyncObj__raftLeader == ("me" if transfer_works else None)
    storage.keep_out_of_leadership(machine, 1.0)  # a follower: no election of its own
    assert machine._SyncObj__raftElectionDeadline > time.monotonic()


def test_a_snapshot_without_space_refuses_writes_until_space_is_found(tmp_path: Path) -> None:
    storage = NodeStorage(str(tmp_path))
    journal = storage.open()
    storage.snapshots.storage_full = "the last snapshot could not be written: the disk is full"
    storage.watch()
    assert storage.problem is not None and "nearly full" in storage.problem
    journal.onOneSecondTimer()  # the free-space check: this disk has room
    assert storage.problem is None


@pytest.mark.parametrize("name, head", [("raft.journal", b"PYSYNCOBJ\0\0\0"),
                                        ("raft.snapshot", b"\x83\xa5state")])
def test_data_from_before_the_durable_journal_is_refused_plainly(
        tmp_path: Path, name: str, head: bytes) -> None:
    (tmp_path / name).write_bytes(head + bytes(100))
    with pytest.raises(CorruptData, match=f"{name}: written by a raftq from before the "
                                          "durable journal.*Upgrading.*--rejoin"):
        NodeStorage(str(tmp_path)).open()
