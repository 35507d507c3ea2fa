"""Determinism: the same log gives the same digest, with or without a snapshot midway."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from state_helpers import ERROR, PAYLOAD, Harness, check_consistency, internal_errors, spec

from raftq.state import commands as c
from raftq.state import encoding, snapshot
from raftq.state.machine import State

IDS = [f"t{i}" for i in range(8)]
QUEUES = ["a", "b"]
WORKERS = ["w1", "w2"]
tokens = st.integers(0, 16)  # tokens count up from 1, so these often are current ones


def _spec(task_id: str, queue: str, priority: int, delay_ms: int, attempts: int,
          backoff_ms: int, ttl_ms: int) -> c.TaskSpec:
    return c.TaskSpec(task_id, "job", queue, priority, PAYLOAD, delay_ms, 0, attempts, 1_000,
                      backoff_ms, ttl_ms)


specs = st.builds(
    _spec, st.sampled_from(IDS), st.sampled_from(QUEUES), st.sampled_from([0, 128, 255]),
    st.integers(0, 3_000), st.integers(1, 3), st.sampled_from([0, 100]),
    st.sampled_from([0, 500, 10_000]),
)
outcomes = st.builds(
    c.Outcome, st.sampled_from(IDS), tokens, st.just(b"\x01") | st.none(),
    st.none() | st.just(ERROR), st.booleans(),
)
leases = st.lists(st.tuples(st.sampled_from(IDS), tokens), max_size=3)
bodies: st.SearchStrategy[c.Body] = st.one_of(
    st.builds(c.Submit, st.lists(specs, min_size=1, max_size=3)),
    st.builds(c.Claim, st.sampled_from(WORKERS), st.lists(st.sampled_from(QUEUES), min_size=1),
              st.integers(0, 3), st.sampled_from([1, 400, 2_000])),
    st.builds(c.Extend, st.sampled_from(WORKERS), leases, st.sampled_from([1, 400, 2_000])),
    st.builds(c.Release, st.sampled_from(WORKERS), leases),
    st.builds(c.Finish, st.sampled_from(WORKERS), st.lists(outcomes, min_size=1, max_size=3)),
    st.builds(c.Cancel, st.sampled_from(IDS)),
    st.builds(c.Requeue, st.sampled_from(IDS)),
    st.builds(c.RetryNow, st.sampled_from(IDS)),
    st.builds(c.Purge, st.none() | st.sampled_from(IDS), st.none() | st.sampled_from(QUEUES)),
    st.just(c.Tick()),
    st.builds(
        c.Linked, st.lists(specs, min_size=1, max_size=3),
        st.lists(st.builds(c.Deps, st.lists(st.sampled_from(IDS), max_size=2),
                           st.sampled_from(["cancel", "run"]),
                           st.sampled_from(["success", "failure", "always"]), st.booleans()),
                 min_size=3, max_size=3),
        st.sampled_from(["", "", "wf1", "wf2"]),
    ).map(lambda b: c.Linked(b.tasks, b.deps[: len(b.tasks)], b.workflow_id)),
    st.builds(c.CancelWorkflow, st.sampled_from(["wf1", "wf2"])),
)


@st.composite
def command_logs(draw: st.DrawFn) -> list[bytes]:
    """Encoded entries with a mostly rising clock and some repeated request ids."""
    now = 0
    log: list[bytes] = []
    rids: list[str] = []
    for _ in range(draw(st.integers(1, 60))):
        now += draw(st.sampled_from([0, 0, 1, 50, 300, 1_000]))
        late = draw(st.sampled_from([0, 0, 0, 200]))
        if rids and draw(st.integers(0, 9)) == 0:
            rid = draw(st.sampled_from(rids))  # a redelivery
        else:
            rid = f"r{len(rids)}"
            rids.append(rid)
        cmd = c.Command(draw(bodies), rid, max(0, now - late))
        if draw(st.integers(0, 7)) == 0:
            log.append(encoding.encode(c.Group([cmd, c.Command(c.Tick(), "", now)])))
        else:
            log.append(encoding.encode(cmd))
    return log


def replay(entries: list[bytes], state: State | None = None) -> tuple[State, list[Any]]:
    state = State() if state is None else state
    results = [state.apply(encoding.decode(e)) for e in entries]
    return state, results


def _roundtrip(results: list[Any]) -> Any:
    """Results as they look after a trip through msgpack (a snapshot's dedupe table)."""
    return msgpack.unpackb(msgpack.packb(results, use_bin_type=True), raw=False)


def _scenario() -> list[bytes]:
    h = Harness()
    h.submit(spec("a"), spec("b", priority=255), spec("c", delay_ms=100),
             spec("d", max_attempts=1, result_ttl_ms=50))
    h.cancel("a")
    token = h.claim("w1", lease_ms=500)[0]["lease_token"]
    h.tick(200)
    h.fail("b", token, retry=True)
    d_token = h.claim("w2", max=3)[-1]["lease_token"]
    h.fail("d", d_token, retry=False)
    h.requeue("d")
    h.tick(5_000)
    h.claim("w1", max=5, lease_ms=100)
    h.tick(150)
    h.purge()
    return h.log


def test_replaying_a_log_gives_the_same_digest() -> None:
    log = _scenario()
    first, results = replay(log)
    second, again = replay(log)
    assert snapshot.digest(first) == snapshot.digest(second)
    assert results == again
    assert first.tasks  # the scenario leaves something to compare


@pytest.mark.parametrize("cut", range(0, 16, 3))
def test_snapshot_midway_gives_the_same_digest(cut: int) -> None:
    log = _scenario()
    whole, results = replay(log)
    half, _ = replay(log[:cut])
    restored, rest = replay(log[cut:], snapshot.loads(snapshot.dumps(half)))
    assert snapshot.digest(restored) == snapshot.digest(whole)
    assert rest == _roundtrip(results[cut:])
    check_consistency(restored)


def test_digest_changes_with_the_state() -> None:
    empty = snapshot.digest(State())
    h = Harness(now_ms=0)
    assert snapshot.digest(h.state) != empty  # a tick counted
    empty = snapshot.digest(h.state)
    h.submit(spec("a"))
    assert snapshot.digest(h.state) != empty


def test_restore_rebuilds_indexes_without_stale_entries() -> None:
    h = Harness()
    h.submit(*(spec(f"t{i}", priority=i % 2) for i in range(6)))
    h.cancel("t1")
    h.cancel("t4")
    restored = snapshot.loads(snapshot.dumps(h.state))
    check_consistency(restored)
    assert restored.ready_counts == h.state.ready_counts
    assert restored.counts == h.state.counts
    h.state = restored
    assert [t["id"] for t in h.claim(max=10)] == ["t3", "t5", "t0", "t2"]


def test_snapshot_is_msgpack_and_versioned() -> None:
    h = Harness()
    h.submit(spec("a"))
    plain = msgpack.unpackb(snapshot.dumps(h.state), raw=False)
    assert plain["format"] == snapshot.FORMAT
    plain["format"] = snapshot.FORMAT + 1
    with pytest.raises(ValueError, match="format"):
        snapshot.from_plain(plain)


@settings(max_examples=150, deadline=None)
@given(log=command_logs(), data=st.data())
def test_random_logs_replay_and_restore_to_the_same_digest(
    log: list[bytes], data: st.DataObject
) -> None:
    whole, results = replay(log)
    assert not internal_errors(results)
    check_consistency(whole)
    again, _ = replay(log)
    assert snapshot.digest(again) == snapshot.digest(whole)
    cut = data.draw(st.integers(0, len(log)))
    half, _ = replay(log[:cut])
    restored, rest = replay(log[cut:], snapshot.loads(snapshot.dumps(half)))
    assert snapshot.digest(restored) == snapshot.digest(whole)
    assert rest == _roundtrip(results[cut:])
