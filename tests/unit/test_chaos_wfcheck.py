"""The ``workflows`` scenario's checker on synthetic histories: a clean run
passes, a child granted before its parent's winning completion was sent is
caught, and so is a workflow that did not end; plus the DAG shapes it sends."""

from __future__ import annotations

import random
from typing import Any

from test_chaos_checker import claim, complete, drain, succeeded

from raftq.chaos.history import OK, UNKNOWN
from raftq.chaos.wfcheck import ENDS, ORDER, check_workflows
from raftq.chaos.workflows import shape

T0 = 1_700_000_000_000.0


def workflow(wid: str, parents: dict[str, list[str]], outcome: str = OK) -> list[dict[str, Any]]:
    return [{"type": "workflow", "id": wid, "parents": parents, "t": T0},
            {"type": "submit", "process": "workflows", "task_ids": list(parents), "batch": True,
             "node": "n1", "t_inv": T0, "t_done": T0 + 5, "outcome": outcome}]


DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


def clean() -> list[dict[str, Any]]:
    return [*workflow("wf1", DIAMOND),
            claim("w1", "a", 1, 100), complete("w1", "a", 1, 120),
            claim("w1", "b", 2, 130), claim("w2", "c", 3, 131),
            complete("w1", "b", 2, 150), complete("w2", "c", 3, 160),
            claim("w1", "d", 4, 170), complete("w1", "d", 4, 180)]


def all_succeeded() -> dict[str, dict[str, Any] | None]:
    return {"a": succeeded(1), "b": succeeded(2), "c": succeeded(3), "d": succeeded(4)}


def test_a_clean_diamond_passes() -> None:
    v = check_workflows(clean(), drain(all_succeeded()))
    assert v.failures == []
    assert v.expectations == {ORDER: {"held": 3, "failed": 0}, ENDS: {"held": 1, "failed": 0}}
    assert (v.workflows, v.acknowledged, v.tasks, v.edges) == (1, 1, 4, 4)


def test_a_child_granted_before_a_parents_success_was_sent_fails() -> None:
    ops = clean()
    ops[-2] = claim("w1", "d", 4, 146)  # answered at 151: b's success sent at 150, c's at 160
    v = check_workflows(ops, drain(all_succeeded()))
    assert v.expectations[ORDER] == {"held": 2, "failed": 1}
    assert "task d of workflow wf1" in v.failures[0] and "parents ['c']" in v.failures[0]


def test_the_winning_completion_counts_not_an_earlier_refused_one() -> None:
    ops = clean()
    # b was first leased with token 9 and completed (refused) at 128; the success
    # that counts is token 2's, sent at 150: d's claim answered at 145 is too early
    # although a completion of b had been sent before it.
    ops += [claim("w3", "b", 9, 121), complete("w3", "b", 9, 128, outcome="fail")]
    ops[7] = complete("w2", "c", 3, 135)
    ops[8] = claim("w1", "d", 4, 140)
    v = check_workflows(ops, drain(all_succeeded()))
    assert v.expectations[ORDER] == {"held": 2, "failed": 1}
    assert "parents ['b']" in v.failures[0]


def test_a_child_granted_although_its_parent_died_fails() -> None:
    tasks = all_succeeded()
    tasks["a"] = {"status": "dead", "result": None}
    v = check_workflows(clean(), drain(tasks))
    assert v.expectations[ORDER] == {"held": 1, "failed": 2}  # b and c; d's parents succeeded


def test_a_workflow_that_did_not_end_fails_and_an_unacknowledged_one_is_not_judged() -> None:
    tasks = all_succeeded()
    tasks["d"] = {"status": "waiting"}
    v = check_workflows(clean(), drain(tasks))
    assert v.expectations[ENDS] == {"held": 0, "failed": 1}
    assert "wf1 did not end succeeded" in v.failures[0]
    unacked = [*workflow("wf2", {"x": [], "y": ["x"]}, outcome=UNKNOWN)]
    v = check_workflows(unacked, drain({"x": None, "y": None}))
    assert ENDS not in v.expectations and v.acknowledged == 0


def test_no_workflows_no_verdict() -> None:
    assert check_workflows(clean()[2:], drain(all_succeeded())).expectations == {}


def test_the_shapes_are_dags_whose_parents_come_first() -> None:
    rng = random.Random(7)
    for n in range(2, 15):
        for _ in range(20):
            ids = [f"t{k}" for k in range(n)]
            parents = shape(rng, ids)
            assert list(parents) == ids
            for k, tid in enumerate(ids):
                assert all(ids.index(p) < k for p in parents[tid])
                assert parents[tid] == sorted(set(parents[tid]))
