"""raftq.raft.stall: a node that was not running calls no election for it."""

from __future__ import annotations

import time
from typing import Any

from raftq.raft.stall import StallGuard

TIMEOUT_S = 1.0


class Machine:
    """The parts of a SyncObj the guard reads and sets."""

    def __init__(self, leader: bool = False, loading: bool = False) -> None:
        self.leader = leader
        self._SyncObj__needLoadDumpFile = loading
        self._SyncObj__raftElectionDeadline = time.monotonic() + TIMEOUT_S
        self._SyncObj__raftCurrentTerm = 1

    def _isLeader(self) -> bool:  # noqa: N802 - SyncObj's name
        return self.leader

    def _SyncObj__generateRaftTimeout(self) -> float:  # noqa: N802
        return TIMEOUT_S


def tick(guard: StallGuard, machine: Any, work: Any = None) -> None:
    guard.before_tick(machine)
    if work is not None:
        work(machine)
    guard.after_tick(machine)


def test_a_stall_puts_the_election_off_by_a_timeout_from_now() -> None:
    guard, machine = StallGuard(0.05), Machine()
    tick(guard, machine)
    machine._SyncObj__raftElectionDeadline = time.monotonic() + 0.01  # about to expire
    time.sleep(0.08)  # the process stood still longer than stall_s
    seen: list[float] = []
    tick(guard, machine, lambda m: seen.append(m._SyncObj__raftElectionDeadline))
    assert seen[0] > time.monotonic() + TIMEOUT_S * 0.9


def test_without_a_stall_the_deadline_is_left_alone() -> None:
    guard, machine = StallGuard(0.05), Machine()
    tick(guard, machine)
    deadline = machine._SyncObj__raftElectionDeadline = time.monotonic() - 0.001  # expired
    tick(guard, machine)  # at once: the leader really was silent; elect
    assert machine._SyncObj__raftElectionDeadline == deadline


def test_a_leader_is_left_alone() -> None:
    guard, machine = StallGuard(0.05), Machine(leader=True)
    tick(guard, machine)
    deadline = machine._SyncObj__raftElectionDeadline = time.monotonic() - 1
    time.sleep(0.08)
    tick(guard, machine)
    assert machine._SyncObj__raftElectionDeadline == deadline


def test_no_election_in_the_tick_that_loads_the_snapshot_and_one_timeout_after() -> None:
    guard, machine = StallGuard(0.05), Machine(loading=True)
    machine._SyncObj__raftElectionDeadline = time.monotonic() - 5  # set before a long load
    during: list[float] = []

    def load(m: Any) -> None:
        during.append(m._SyncObj__raftElectionDeadline)
        m._SyncObj__needLoadDumpFile = False

    tick(guard, machine, load)
    assert during == [float("inf")]
    assert machine._SyncObj__raftElectionDeadline > time.monotonic() + TIMEOUT_S * 0.9


def test_stalls_are_logged_at_most_once_per_interval(caplog: Any) -> None:
    guard, machine = StallGuard(0.02), Machine()
    tick(guard, machine)
    with caplog.at_level("WARNING", logger="raftq.raft.stall"):
        for _ in range(2):
            time.sleep(0.04)
            tick(guard, machine)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "stood still for 0.0" in warnings[0]
    assert "calls no election" in warnings[0]
    assert guard._unwarned == 1


def test_the_elections_this_node_starts_are_counted() -> None:
    guard, machine = StallGuard(0.05), Machine()

    def elect(m: Any) -> None:
        m._SyncObj__raftCurrentTerm += 1

    tick(guard, machine)
    tick(guard, machine, elect)
    machine._SyncObj__raftCurrentTerm = 5  # a peer's message, between ticks: not ours
    tick(guard, machine)
    assert guard.elections_started == 1
