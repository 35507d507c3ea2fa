"""The workers' HTTP edge: heartbeat and claim bodies, and the registered defaults a
submission by name gets (``raftq.server.workers_api``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from state_helpers import Harness

from raftq.errors import InvalidRequest
from raftq.server.workers_api import WorkersApi, task_names, worker_beat
from raftq.state import commands as c


def test_a_heartbeat_body_becomes_a_command_with_the_nodes_forget_time() -> None:
    beat = worker_beat({"host": "box", "pid": 9, "queues": ["q"], "heartbeat_ms": 500,
                        "concurrency": 4, "pool": "process", "mode": "paused", "cpu_pct": 12.34,
                        "rss_kb": 2048, "acted": 3,
                        "tasks": [{"name": "slow", "queue": "q", "priority": "high",
                                   "timeout_ms": 1000}, {"name": "add"}]}, "w1", 60_000)
    assert beat == c.WorkerBeat("w1", "box", 9, ["q"], [
        c.TaskDef("slow", "q", 192, None, 1000, None), c.TaskDef("add", "default", 128)],
        500, 60_000, 4, "process", "paused", 123, 2048, 3)


@pytest.mark.parametrize(("body", "field"), [
    ({"tasks": "add"}, "tasks"),
    ({"tasks": [{"name": "a b"}]}, "tasks[0].name"),
    ({"tasks": [{"name": "a", "priority": "urgent"}]}, "tasks[0].priority"),
    ({"tasks": [{"name": "a", "timeout_ms": 0}]}, "tasks[0].timeout_ms"),
    ({"tasks": [{"name": "a", "colour": 1}]}, "tasks[0].colour"),
    ({"mode": "asleep"}, "mode"),
    ({"cpu_pct": "lots"}, "cpu_pct"),
    ({"heartbeat_ms": 5}, "heartbeat_ms"),
    ({"concurrency": 0}, "concurrency"),
    ({"pool": "Thread Pool"}, "pool"),
    ({"queues": []}, "queues"),
])
def test_a_bad_heartbeat_names_its_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        worker_beat(body, "w1", 1)
    assert err.value.field == field


def test_claim_names() -> None:
    assert task_names({}) is None
    assert task_names({"names": ["a", "b", "a"]}) == ["a", "b"]
    for bad in ("a", [1], ["a b"]):
        with pytest.raises(InvalidRequest, match="names"):
            task_names({"names": bad})


def test_a_submission_by_name_gets_what_it_leaves_out_from_the_definition() -> None:
    h = Harness()
    h.run(c.WorkerBeat("w1", "h", 1, ["q"], [c.TaskDef("slow", "slowq", 192, 1, 1000, None)],
                       1000, 60_000, 1))
    api = WorkersApi(SimpleNamespace(replica=SimpleNamespace(state=h.state)),  # type: ignore[arg-type]
                     lambda r: r)
    assert api.with_defaults({"name": "slow", "args": [3]}) == {
        "name": "slow", "args": [3], "queue": "slowq", "priority": 192, "max_attempts": 1,
        "timeout_ms": 1000}
    assert api.with_defaults({"name": "slow", "queue": "other", "timeout_ms": 5}) == {
        "name": "slow", "queue": "other", "timeout_ms": 5, "priority": 192, "max_attempts": 1}
    assert api.with_defaults({"name": "unknown"}) == {"name": "unknown"}
    assert api.with_defaults([1]) == [1] and api.with_defaults({"name": 3}) == {"name": 3}
