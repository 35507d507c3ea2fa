"""The replicated membership (raftq.state.members): seeding, one change per epoch,
the refusals, and replay and snapshot determinism."""

from __future__ import annotations

from raftq.state import snapshot
from raftq.state.commands import (
    AddMember,
    Command,
    Member,
    MemberReady,
    RemoveMember,
    SeedMembers,
)
from raftq.state.encoding import decode, encode
from raftq.state.machine import State


def m(i: int) -> Member:
    return Member(f"n{i}", f"10.0.0.{i}:7101", f"http://10.0.0.{i}:8101")


def run(state: State, body: object, rid: str = "") -> object:
    return state.apply(decode(encode(Command(body, rid, 1_000))))  # type: ignore[arg-type]


def seeded() -> State:
    state = State()
    run(state, SeedMembers([m(1), m(2), m(3)]))
    return state


def test_the_first_seed_is_the_membership_and_later_ones_change_nothing() -> None:
    state = seeded()
    assert list(state.members) == ["n1", "n2", "n3"] and state.member_epoch == 1
    again = run(state, SeedMembers([m(7)]))
    assert [x["id"] for x in again["members"]] == ["n1", "n2", "n3"]  # type: ignore[index]
    assert state.member_epoch == 1


def test_a_change_applies_only_on_the_epoch_it_was_decided_on() -> None:
    state = seeded()
    first = run(state, AddMember(m(4), 1, "admin"))
    assert state.member_epoch == 2 and state.last_added == "n4", first
    second = run(state, AddMember(m(5), 1, "admin"))  # decided on epoch 1 too
    assert second["error"] == "conflict" and "n5" not in state.members  # type: ignore[index]
    removed = run(state, RemoveMember("n1", 2, "admin"))
    assert list(state.members) == ["n2", "n3", "n4"] and state.member_epoch == 3, removed
    assert [e["action"] for e in state.audit_view()][-2:] == ["add_node", "remove_node"]


def test_refusals_change_nothing() -> None:
    state = seeded()
    before = snapshot.digest(state)
    assert run(state, AddMember(m(2), 1))["error"] == "conflict"  # type: ignore[index]
    same_address = Member("other", m(3).raft_address, "http://x:1")
    assert run(state, AddMember(same_address, 1))["error"] == "conflict"  # type: ignore[index]
    assert run(state, RemoveMember("nope", 1))["error"] == "not_found"  # type: ignore[index]
    assert run(State(), AddMember(m(1), 0))["error"] == "unavailable"  # type: ignore[index]
    assert snapshot.digest(state) == before
    lone = State()
    run(lone, SeedMembers([m(1)]))
    assert run(lone, RemoveMember("n1", 1))["error"] == "invalid"  # type: ignore[index]


def test_replay_and_snapshot_give_the_same_membership() -> None:
    log = [SeedMembers([m(1), m(2), m(3)]), AddMember(m(4), 1), RemoveMember("n2", 2),
           AddMember(m(5), 3), RemoveMember("n5", 4)]
    a, b = State(), State()
    for i, body in enumerate(log):
        run(a, body, f"r{i}")
        run(b, body, f"r{i}")
    assert snapshot.digest(a) == snapshot.digest(b)
    restored = snapshot.loads(snapshot.dumps(a))
    assert restored.members == a.members and restored.member_epoch == 5
    assert restored.last_added == "" and snapshot.digest(restored) == snapshot.digest(a)
    old = snapshot.to_plain(a)
    for key in ("members", "member_epoch", "last_added"):
        del old[key]  # a snapshot from before membership changes
    assert snapshot.from_plain(old).members == {}


def test_an_added_node_is_the_change_under_way_until_it_says_it_caught_up() -> None:
    state = seeded()
    run(state, AddMember(m(4), 1))
    run(state, MemberReady("n3"))  # not the added node: changes nothing
    assert state.last_added == "n4"
    run(state, MemberReady("n4"))
    assert state.last_added == "" and state.audit_view()[-1]["action"] == "node_ready"
