"""The canvas compiles chains, groups and chords into one workflow body."""

from __future__ import annotations

from typing import Any

import pytest

from raftq.client.canvas import build, chain, chord, group
from raftq.client.task import Registry, task
from raftq.errors import InvalidRequest
from raftq.server.workflows_api import order, split_deps
from raftq.worker.outbox import parents_argument

registry = Registry()


@task(registry=registry)
def add(x: int, y: int) -> int:
    return x + y


@task(registry=registry, queue="slow", max_attempts=5)
def tsum(values: list[int]) -> int:
    return sum(values)


def shape(tasks: list[dict[str, Any]]) -> list[tuple[str, str, list[str], str, bool]]:
    return [(t["key"], t["name"], t.get("depends_on", []), t.get("run_when", "success"),
             t.get("pass_results", False)) for t in tasks]


def test_a_chain_is_a_line_that_passes_results() -> None:
    tasks, tails, many = build(chain(add.s(1, 2), add.s(3), add.s(4)))
    assert shape(tasks) == [
        ("t0", "add", [], "success", False),
        ("t1", "add", ["t0"], "success", True),
        ("t2", "add", ["t1"], "success", True),
    ]
    assert [t["args"] for t in tasks] == [[1, 2], [3], [4]]
    assert (tails, many) == (["t2"], False)
    # only what differs from the node's defaults: 10,000 tasks fit in one request
    assert tasks[0] == {"name": "add", "args": [1, 2], "key": "t0"}


def test_a_chord_fans_in_and_keeps_the_tasks_options() -> None:
    tasks, tails, many = build(chord(group(add.s(i, i) for i in range(3)), tsum.s()))
    assert shape(tasks)[-1] == ("t3", "tsum", ["t0", "t1", "t2"], "success", True)
    assert (tasks[-1]["queue"], tasks[-1]["max_attempts"]) == ("slow", 5)
    assert (tails, many) == (["t3"], False)


def test_a_group_after_a_task_and_a_chain_after_a_group() -> None:
    tasks, tails, many = build(group(chain(add.s(1, 1), add.s(2)), add.s(5, 5)))
    assert (tails, many) == (["t1", "t2"], True)
    tasks, tails, _ = build(chain(add.s(0, 1), group(add.s(1), add.s(2)), tsum.s()))
    assert shape(tasks)[1:] == [
        ("t1", "add", ["t0"], "success", True),
        ("t2", "add", ["t0"], "success", True),
        ("t3", "tsum", ["t1", "t2"], "success", True),
    ]


def test_callbacks_hang_off_their_task() -> None:
    sig = add.s(1, 2).on_success(add.s(10)).on_failure(tsum.s().set(queue="errors"))
    tasks, tails, _ = build(chain(sig, add.s(100)))
    assert shape(tasks) == [
        ("t0", "add", [], "success", False),
        ("t1", "add", ["t0"], "success", True),
        ("t2", "tsum", ["t0"], "failure", True),
        ("t3", "add", ["t0"], "success", True),
    ]
    assert tasks[2]["queue"] == "errors"
    assert tails == ["t3"]


def test_the_edge_orders_parents_first_and_names_a_cycle() -> None:
    assert order(["a", "b", "c"], [["c"], [], ["b", "outside"]]) == [1, 2, 0]
    with pytest.raises(InvalidRequest, match="a, b form a cycle"):
        order(["a", "b", "c"], [["b"], ["a"], []])


def test_dependency_fields_are_split_off_and_checked() -> None:
    rest, deps = split_deps({"name": "x", "depends_on": ["p"], "pass_results": True}, "")
    assert rest == {"name": "x"} and deps is not None and deps.parents == ["p"]
    assert split_deps({"name": "x"}, "") == ({"name": "x"}, None)
    for bad, field in [({"depends_on": "p"}, "tasks[2].depends_on"),
                       ({"depends_on": ["p", "p"]}, "tasks[2].depends_on"),
                       ({"depends_on": ["p"], "delay_ms": 5}, "tasks[2].depends_on"),
                       ({"on_parent_failure": "x"}, "tasks[2].on_parent_failure"),
                       ({"pass_results": 1}, "tasks[2].pass_results")]:
        with pytest.raises(InvalidRequest) as err:
            split_deps({"name": "x", **bad}, "tasks[2]")
        assert err.value.field == field


def test_the_worker_passes_one_result_or_a_list() -> None:
    ok = {"id": "a", "status": "succeeded", "result": 5, "error": None}
    dead = {"id": "b", "status": "dead", "result": None, "error": {"message": "boom"}}
    assert parents_argument([ok]) == 5
    assert parents_argument([ok, dead]) == [5, {"id": "b", "status": "dead",
                                                "error": {"message": "boom"}}]


def test_raftq_workflow_show_draws_a_tree() -> None:
    from raftq.cli.workflows import tree_lines

    view = {"id": "w", "status": "running", "tasks": [
        {"key": "a", "id": "1", "name": "add", "status": "succeeded", "depends_on": []},
        {"key": "b", "id": "2", "name": "add", "status": "queued", "depends_on": ["1"]},
        {"key": "c", "id": "3", "name": "add", "status": "queued", "depends_on": ["1"]},
        {"key": "d", "id": "4", "name": "tsum", "status": "waiting", "depends_on": ["2", "3"]},
        {"key": "e", "id": "5", "name": "alert", "status": "waiting", "depends_on": ["1"],
         "run_when": "failure"},
    ]}
    assert tree_lines(view) == [
        "a  add  succeeded  1",
        "  b  add  queued  2",
        "    d  tsum  waiting  4  (after b, c)",
        "  c  add  queued  3",
        "  e  alert  waiting [failure]  5",
    ]


def test_raftq_status_names_a_tasks_parents_and_children() -> None:
    from raftq.cli.tasks import status_lines

    task = {"id": "c", "name": "tsum", "queue": "default", "priority": 128, "status": "waiting",
            "attempts": 0, "max_attempts": 3, "created_ms": 0, "depends_on": ["a", "b"],
            "children": ["d"], "run_when": "always", "workflow_id": "w1"}
    lines = status_lines(task, 1_000)
    assert " workflow: w1" in lines
    assert "  parents: a, b (runs on always)" in lines
    assert " children: d" in lines
