"""Leader contact: PySyncObj's leader counts only if heard from within the election
timeout; cluster-status turns the views into warnings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from raftq.cli.cluster import cluster_warnings
from raftq.raft.contact import leader_in_contact


@dataclass
class Peer:
    address: str


@dataclass
class FakeSyncObj:
    leader: Peer | None
    leading: bool = False
    deadline_in_s: float = 1.0
    answered_s_ago: dict[str, float] = field(default_factory=dict)

    def _getLeader(self) -> Peer | None:  # noqa: N802 - PySyncObj's names
        return self.leader

    def _isLeader(self) -> bool:  # noqa: N802
        return self.leading

    @property
    def _SyncObj__raftElectionDeadline(self) -> float:  # noqa: N802
        return time.monotonic() + self.deadline_in_s

    @property
    def _SyncObj__otherNodes(self) -> list[str]:  # noqa: N802
        return sorted(self.answered_s_ago)

    @property
    def _SyncObj__lastResponseTime(self) -> dict[str, float]:  # noqa: N802
        now = time.monotonic()
        return {n: now - ago for n, ago in self.answered_s_ago.items()}


def test_a_follower_has_its_leader_until_its_election_deadline_passes() -> None:
    leader = Peer("10.0.0.1:7000")
    assert leader_in_contact(FakeSyncObj(leader, deadline_in_s=0.5), 1.2) == (leader, None)
    found, why = leader_in_contact(FakeSyncObj(leader, deadline_in_s=-0.1), 1.2)
    assert found is None and why is not None and "10.0.0.1:7000" in why


def test_no_leader_elected() -> None:
    assert leader_in_contact(FakeSyncObj(None), 1.2) == (None, "no leader elected")


def test_a_leader_needs_a_majority_that_answered_lately() -> None:
    me = Peer("me")
    ok = FakeSyncObj(me, leading=True, answered_s_ago={"b": 0.1, "c": 30.0})
    assert leader_in_contact(ok, 1.2) == (me, None)
    cut = FakeSyncObj(me, leading=True, answered_s_ago={"b": 3.0, "c": 30.0})
    found, why = leader_in_contact(cut, 1.2)
    assert found is None and why is not None and "2 of 3" in why
    alone = FakeSyncObj(me, leading=True)  # a cluster of one
    assert leader_in_contact(alone, 1.2) == (me, None)


def _node(node_id: str, **view: Any) -> dict[str, Any]:
    return {"id": node_id, "reachable": True, "leader": "n1", "no_leader_reason": None,
            "clock_offset_ms": 0, **view}


def test_cluster_status_warns_of_no_leader_and_clocks_past_the_bound() -> None:
    nodes = [
        _node("n1"),
        _node("n2", clock_offset_ms=30_012),
        _node("n3", clock_offset_ms=-499),
        _node("n4", leader=None, no_leader_reason="no leader elected", clock_offset_ms=None),
        {"id": "n5", "reachable": False},
        _node("n6", clock_offset_ms=-700),
    ]
    assert cluster_warnings(nodes, 0.5) == [
        "n2's clock is 30.012 s ahead of the leader's (more than 0.5 s)",
        "n4 has no leader: no leader elected",
        "n6's clock is 0.700 s behind the leader's (more than 0.5 s)",
    ]
    assert cluster_warnings(nodes, 60) == ["n4 has no leader: no leader elected"]
