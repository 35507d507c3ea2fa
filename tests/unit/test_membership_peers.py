"""PySyncObj's peers follow the replicated membership (raftq.raft.membership), on a
stand-in for SyncObj that records the changes it is asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pysyncobj.node import TCPNode

from raftq.raft import membership
from raftq.raft.durable import CorruptDataError, StorageFullError
from raftq.raft.membership import Membership, PeerSet


class FakeSyncObj:
    def __init__(self, peers: list[str], leader: bool = False) -> None:
        self._SyncObj__otherNodes = {TCPNode(a) for a in peers}
        self.leader = leader
        self.changes: list[tuple[str, str]] = []

    def _isLeader(self) -> bool:  # noqa: N802 - PySyncObj's name
        return self.leader

    def _SyncObj__doChangeCluster(self, request: list[Any]) -> bool:  # noqa: N802
        kind, address, node = request
        self.changes.append((kind, address))
        if kind == "add":
            self._SyncObj__otherNodes.add(node)
        else:
            self._SyncObj__otherNodes.discard(node)
        return True

    @property
    def peers(self) -> list[str]:
        return sorted(n.address for n in self._SyncObj__otherNodes)


def members(*ids: int) -> dict[str, list[str]]:
    return {f"n{i}": [f"10.0.0.{i}:7101", f"http://10.0.0.{i}:8101"] for i in ids}


def test_the_peers_follow_the_membership_and_it_is_saved(tmp_path: Path) -> None:
    machine = FakeSyncObj(["10.0.0.2:7101", "10.0.0.3:7101"])
    peers = PeerSet("n1", "10.0.0.1:7101", str(tmp_path))
    peers.follow(machine, members(1, 2, 3, 4), 2)
    assert machine.peers == ["10.0.0.2:7101", "10.0.0.3:7101", "10.0.0.4:7101"]
    peers.follow(machine, members(1, 3, 4), 3)  # a follower drops a removed peer at once
    assert machine.peers == ["10.0.0.3:7101", "10.0.0.4:7101"]
    saved = membership.load(str(tmp_path))
    assert saved is not None and saved.epoch == 3 and [m[0] for m in saved.members] == [
        "n1", "n3", "n4"]


def test_a_replayed_older_membership_does_not_move_the_peers_back(tmp_path: Path) -> None:
    # A node that joined at epoch 5 replays the log from the start: the seed's
    # membership (epoch 1) lacks the members it catches up from.
    machine = FakeSyncObj(["10.0.0.4:7101", "10.0.0.5:7101"])
    peers = PeerSet("n6", "10.0.0.6:7101", str(tmp_path), joined_epoch=5, known_epoch=5)
    peers.follow(machine, members(1, 2, 3), 1)
    assert machine.changes == [] and not peers.removed
    peers.follow(machine, members(4, 5, 6), 5)
    assert machine.peers == ["10.0.0.4:7101", "10.0.0.5:7101"]


def test_the_leader_keeps_a_removed_peer_for_a_moment(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(membership.time, "monotonic", lambda: now[0])
    machine = FakeSyncObj(["10.0.0.2:7101", "10.0.0.3:7101"], leader=True)
    peers = PeerSet("n1", "10.0.0.1:7101", str(tmp_path))
    peers.follow(machine, members(1, 2), 2)
    assert machine.peers == ["10.0.0.2:7101", "10.0.0.3:7101"]  # n3 still hears its removal
    now[0] += membership.LEAVING_GRACE_S + 0.1
    peers.settle(machine)
    assert machine.peers == ["10.0.0.2:7101"]


def test_a_node_notices_its_own_removal_only_after_it_joined(tmp_path: Path) -> None:
    removed: list[bool] = []
    machine = FakeSyncObj(["10.0.0.1:7101"])
    peers = PeerSet("n3", "10.0.0.3:7101", str(tmp_path), joined_epoch=4, known_epoch=4,
                    on_removed=lambda: removed.append(True))
    peers.follow(machine, members(1, 2, 3), 4)
    assert not removed
    peers.follow(machine, members(1, 2), 5)
    assert removed == [True] and peers.removed


def test_a_damaged_membership_file_stops_the_node(tmp_path: Path) -> None:
    membership.save(str(tmp_path), Membership([("n1", "a:1", "http://a:2")], 1))
    path = tmp_path / membership.MEMBERS_FILE
    path.write_bytes(path.read_bytes()[:-1] + b"x")
    with pytest.raises(CorruptDataError):
        membership.load(str(tmp_path))


def test_pysyncobj_membership_is_ours_and_peer_names_are_cached_seconds_only(
        tmp_path: Path) -> None:
    from raftq.raft.storage import NodeStorage
    from raftq.raft.tuning import RaftTuning, syncobj_conf

    conf = syncobj_conf(RaftTuning(), "s", NodeStorage(str(tmp_path)),
                        serializer=lambda *_: None, serialize_checker=lambda: 0,
                        deserializer=lambda _: None)
    # PySyncObj's own changes stay off (its dump's topology would override ours).
    assert conf.dynamicMembershipChange is False
    assert conf.dnsCacheTime <= 5.0 and conf.dnsFailCacheTime <= 1.0  # not 600 s and 30 s


def test_a_membership_that_cannot_be_saved_is_retried_and_never_stops_the_node(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A full disk: the save raises; applying the change must go on (the peers
    # follow it), and the save is retried on the ticks until it succeeds.
    real_save, calls = membership.save, []

    def full(*args: Any, **kwargs: Any) -> None:
        calls.append(args[1].epoch)
        if len(calls) == 1:  # what write_framed raises for ENOSPC
            raise StorageFullError(str(tmp_path / "members"), "writing it")
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        real_save(*args, **kwargs)

    monkeypatch.setattr(membership, "save", full)
    machine = FakeSyncObj(["10.0.0.2:7101", "10.0.0.3:7101"])
    peers = PeerSet("n1", "10.0.0.1:7101", str(tmp_path))
    peers.follow(machine, members(1, 2, 3, 4), 2)  # does not raise
    assert machine.peers == ["10.0.0.2:7101", "10.0.0.3:7101", "10.0.0.4:7101"]
    assert membership.load(str(tmp_path)) is None
    peers.settle(machine)  # a tick: still full
    assert membership.load(str(tmp_path)) is None
    peers.settle(machine)  # space again
    saved = membership.load(str(tmp_path))
    assert saved is not None and saved.epoch == 2
    peers.settle(machine)
    assert calls == [2, 2, 2]  # saved once, then left alone
