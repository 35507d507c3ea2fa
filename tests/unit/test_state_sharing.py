"""Values most tasks repeat are held once: a bulk submit's answer is kept in the
dedupe table as its ids, names, queues and limits are shared between tasks;
no answer changes."""

from __future__ import annotations

from typing import Any

import msgpack
from state_helpers import spec

from raftq.state import commands as c
from raftq.state import encoding, snapshot
from raftq.state.machine import State
from raftq.state.sharing import QUEUED_IDS


def apply(state: State, body: Any, rid: str, now_ms: int = 1_000) -> Any:
    return state.apply(encoding.decode(encoding.encode(c.Command(body, rid, now_ms))))


def reloaded(state: State) -> State:
    blob = msgpack.packb(snapshot.to_plain(state), use_bin_type=True)
    return snapshot.from_plain(msgpack.unpackb(blob, raw=False, strict_map_key=False))


def test_a_retried_bulk_submit_gets_its_first_answer_from_the_short_form() -> None:
    state = State()
    first = apply(state, c.Submit([spec(f"t{i}") for i in range(5)]), "bulk")
    assert first == [{"id": f"t{i}", "created": True, "status": "queued"} for i in range(5)]
    kept = state.dedupe["bulk"]
    assert kept == {QUEUED_IDS: [f"t{i}" for i in range(5)]}
    assert all(i is state.tasks[i].id for i in kept[QUEUED_IDS])  # the table's own strings
    assert apply(state, c.Submit([spec(f"t{i}") for i in range(5)]), "bulk") == first
    again = reloaded(state)
    assert again.dedupe["bulk"] == kept
    assert all(i is again.tasks[i].id for i in again.dedupe["bulk"][QUEUED_IDS])
    assert apply(again, c.Submit([spec(f"t{i}") for i in range(5)]), "bulk") == first
    assert len(again.tasks) == 5


def test_other_answers_are_kept_as_they_are() -> None:
    state = State()
    apply(state, c.Submit([spec("a")]), "one")
    mixed = apply(state, c.Submit([spec("a"), spec("b", delay_ms=60_000)]), "mixed")
    assert state.dedupe["one"] == [{"id": "a", "created": True, "status": "queued"}]
    assert state.dedupe["mixed"] == mixed and mixed[0]["created"] is False
    assert apply(state, c.Submit([spec("a"), spec("b")]), "mixed") == mixed


def test_names_queues_and_limits_are_one_object_across_submits() -> None:
    state = State()
    for n in range(3):
        apply(state, c.Submit([spec(f"{n}-{i}", name="job" + "x" * n, queue="q-1",
                                    timeout_ms=60_001) for i in range(2)]), f"r{n}")
    tasks = list(state.tasks.values())
    assert len({id(t.queue) for t in tasks}) == 1
    assert len({id(t.timeout_ms) for t in tasks}) == 1 and tasks[0].timeout_ms == 60_001
    assert len({id(t.name) for t in tasks}) == 3  # three names, each held once
