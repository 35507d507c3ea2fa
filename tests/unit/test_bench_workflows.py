"""The bench section ``workflows``: its DAG's shape and the in-process apply cost."""

from __future__ import annotations

from raftq.bench.sections import SECTIONS
from raftq.bench.workflows import apply_cost, dag_body


def test_the_dag_is_one_root_a_fan_out_and_one_fan_in() -> None:
    tasks = dag_body("noop", "q", 6)["tasks"]
    assert [t["key"] for t in tasks] == ["root", "f0", "f1", "f2", "f3", "fin"]
    assert all(t["depends_on"] == ["root"] for t in tasks[1:-1])
    assert tasks[-1]["depends_on"] == ["f0", "f1", "f2", "f3"]
    assert "workflows" in SECTIONS


def test_apply_cost_runs_both_lifecycles_to_the_end() -> None:
    plain_us, dag_us, edges = apply_cost(200, rounds=1)
    assert plain_us > 0 and dag_us > 0 and edges == 396
