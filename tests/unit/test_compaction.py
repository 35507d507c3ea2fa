"""When a node compacts its Raft log (raftq.raft.compaction): PySyncObj's rule by
entries and time in the node's own slot, and raftq's by the log's size, staggered
between the nodes; a leader's compaction keeps what its followers still need."""

from __future__ import annotations

from typing import Any

from raftq.raft.compaction import NO_FLOOR, Compaction

MB = 1 << 20


def rule() -> Compaction:
    return Compaction(min_entries=20_000, min_time_s=300.0, min_bytes=64 * MB, last_s=0.0)


def due(c: Compaction, now_s: float = 10.0, entries: int = 100, log_bytes: int = 0,
        snapshot_bytes: int = 0, rank: int = 0, nodes: int = 3) -> bool:
    return c.due(now_s, entries=entries, log_bytes=log_bytes, snapshot_bytes=snapshot_bytes,
                 rank=rank, nodes=nodes)


def test_a_big_log_of_few_entries_is_compacted_at_once_outside_the_slot() -> None:
    c = rule()
    assert not c.in_slot(250.0, 0, 3)
    assert not due(c, now_s=250.0, entries=2_000, log_bytes=64 * MB)
    assert due(c, now_s=250.0, entries=2_000, log_bytes=64 * MB + 1)


def test_the_size_limit_grows_with_the_snapshot_and_is_staggered_by_rank() -> None:
    c = rule()
    assert c.size_limit(0, 0, 3) == 64 * MB
    assert c.size_limit(400 * MB, 0, 3) == 200 * MB  # half the last snapshot
    limits = [c.size_limit(0, rank, 3) for rank in range(3)]
    assert limits == sorted(set(limits))  # every node its own point, so never all at once
    assert not due(c, log_bytes=70 * MB, rank=1) and due(c, log_bytes=70 * MB, rank=0)


def test_entries_and_time_count_only_in_the_nodes_own_slot() -> None:
    c = rule()
    # rank 1 of 3: its slot is [100, 130) s of every 300 s period
    assert c.in_slot(100.0, 1, 3) and c.in_slot(429.0, 1, 3)
    assert not c.in_slot(131.0, 1, 3) and not c.in_slot(99.0, 1, 3)
    assert not due(c, now_s=110.0, entries=20_000, rank=1)  # not over the count yet
    assert due(c, now_s=110.0, entries=20_001, rank=1)
    assert not due(c, now_s=140.0, entries=20_001, rank=1)  # outside its slot
    assert due(c, now_s=400.0 + 10, entries=5, rank=1)  # 300 s since the last one
    c.last_s = 390.0
    assert not due(c, now_s=410.0, entries=5, rank=1)


class FakeNode:
    def __init__(self, name: str) -> None:
        self.id = name


class FakeMachine:
    """The SyncObj attributes the rule reads."""

    def __init__(self, leader: bool, match: dict[str, int], connected: list[str],
                 commit: int) -> None:
        self.nodes = {n: FakeNode(n) for n in ["a", "b", "c"]}
        self.leader = leader
        self._SyncObj__selfNode = self.nodes["a"]
        self._SyncObj__otherNodes = {self.nodes["b"], self.nodes["c"]}
        self._SyncObj__connectedNodes = {self.nodes[n] for n in connected}
        self._SyncObj__raftMatchIndex = {self.nodes[n]: i for n, i in match.items()}
        self._SyncObj__raftCommitIndex = commit
        self.forced = 0

    def _isLeader(self) -> bool:  # noqa: N802
        return self.leader

    def forceLogCompaction(self) -> None:  # noqa: N802
        self.forced += 1


class FakeList(list[Any]):
    """A log of entries, with the journal's count of their bytes."""

    @property
    def command_bytes(self) -> int:
        return sum(len(e[0]) for e in self)


def test_a_leader_keeps_what_its_followers_have_not_acknowledged() -> None:
    entries = [(b"x" * 10, i, 1) for i in range(100, 121)]  # 100..120, 10 bytes each
    wide = Compaction(min_entries=20_000, min_time_s=300.0, min_bytes=250)  # keeps 1,000
    leader = FakeMachine(True, {"b": 120, "c": 109}, ["b", "c"], 120)
    assert wide.kept(leader, entries) == (110, 110)  # c has up to 109
    narrow = Compaction(min_entries=20_000, min_time_s=300.0, min_bytes=13)  # keeps 52
    assert narrow.kept(leader, entries) == (116, 50)  # at most 5 entries
    gone = FakeMachine(True, {"b": 120}, ["b"], 120)  # c never acknowledged anything
    assert wide.kept(gone, entries) == (1, 210)  # everything
    follower = FakeMachine(False, {}, [], 120)
    assert wide.kept(follower, entries) == (NO_FLOOR, 0)


def test_what_a_leader_keeps_for_a_follower_does_not_count_toward_the_size() -> None:
    """Else a follower that is down would make the leader snapshot back to back."""
    c = Compaction(min_entries=20_000, min_time_s=1e9, min_bytes=100)  # keeps 400
    entries = [(b"x" * 10, i, 1) for i in range(1, 31)]  # 300 bytes
    down: Any = FakeMachine(True, {"b": 30, "c": 0}, ["b"], 30)
    c.force_if_due(down, FakeList(entries), 0)
    assert down.forced == 0  # all 300 bytes wait for c
    more = [(b"x" * 10, i, 1) for i in range(1, 61)]  # 600 bytes, 400 of them kept
    c.force_if_due(down, FakeList(more), 0)
    assert down.forced == 1


def test_force_if_due_asks_pysyncobj_once_due() -> None:
    c = Compaction(min_entries=20_000, min_time_s=1e9, min_bytes=MB, last_s=0.0)
    machine: Any = FakeMachine(True, {"b": 10, "c": 10}, ["b", "c"], 10)
    c.force_if_due(machine, FakeList([(b"x" * MB, 10, 1)]), 0)
    assert machine.forced == 0
    c.force_if_due(machine, FakeList([(b"x" * (MB + 1), 10, 1)]), 0)
    assert machine.forced == 1 and c.last_s > 0


def test_pysyncobj_sends_batch_submits_whole_and_never_compacts_by_itself(
        tmp_path: Any) -> None:
    """Entries of a few hundred tasks go as entries, not in pieces (raftq.raft.tuning),
    in messages that fit a frame; PySyncObj's own compaction rule never fires."""
    from raftq.raft.port import PortLimits
    from raftq.raft.storage import NodeStorage
    from raftq.raft.tuning import NEVER_ENTRIES, RaftTuning, syncobj_conf

    def conf(tuning: RaftTuning) -> Any:
        return syncobj_conf(tuning, "secret", NodeStorage(str(tmp_path)),
                            serializer=lambda *_: None, serialize_checker=lambda: 0,
                            deserializer=lambda _: None)

    c = conf(RaftTuning())
    assert c.appendEntriesBatchSizeBytes >= 1 << 20  # a 500-task batch is ~150 KB
    assert 2 * c.appendEntriesBatchSizeBytes <= PortLimits().max_frame_bytes
    small = conf(RaftTuning(port=PortLimits(max_frame_bytes=1 << 20)))
    assert small.appendEntriesBatchSizeBytes == 1 << 18
    assert c.logCompactionMinEntries == NEVER_ENTRIES and not c.logCompactionSplit
