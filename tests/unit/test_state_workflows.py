"""Examples for dependencies and workflows (``raftq.state.workflows``)."""

from __future__ import annotations

from typing import Any

from state_helpers import Harness, check_consistency, spec

from raftq.state import commands as c
from raftq.state import encoding, snapshot
from raftq.state.model import Status


def linked(h: Harness, *tasks: tuple[str, list[str]] | tuple[str, list[str], dict[str, Any]],
           workflow_id: str = "", ttl_ms: int | None = None) -> Any:
    """Create tasks with parents: each ``(id, parents[, Deps fields])``."""
    specs, deps = [], []
    for row in tasks:
        extra: dict[str, Any] = row[2] if len(row) == 3 else {}  # type: ignore[misc]
        specs.append(spec(row[0]) if ttl_ms is None else spec(row[0], result_ttl_ms=ttl_ms))
        deps.append(c.Deps(list(row[1]), **extra))
    keys = [t[0] for t in tasks] if workflow_id else []
    return h.run(c.Linked(specs, deps, workflow_id, keys))


def run_one(h: Harness, task_id: str, ok: bool = True) -> None:
    """Claim the next task (it must be ``task_id``) and finish it."""
    leased = h.claim()
    assert [t["id"] for t in leased] == [task_id]
    token = leased[0]["lease_token"]
    if ok:
        h.complete(task_id, token, result=b"\xa3" + task_id[:3].ljust(3).encode())
    else:
        h.fail(task_id, token, retry=False)


def reason(h: Harness, task_id: str) -> str:
    message: str = h.task(task_id).errors[-1][2]["message"]
    return message


def test_child_waits_until_every_parent_succeeded_then_is_queued() -> None:
    h = Harness()
    h.submit(spec("a"), spec("b"))
    out = linked(h, ("c", ["a", "b"]))
    assert out == [{"id": "c", "created": True, "status": "waiting"}]
    assert h.task("c").ready_at_ms is None
    assert h.state.ready_count(["default"]) == 2  # "a" and "b"; "c" is not claimable
    run_one(h, "a")
    assert h.status("c") == "waiting"
    check_consistency(h.state)


def test_waiting_becomes_queued_in_the_apply_of_the_last_parents_success() -> None:
    h = Harness()
    h.submit(spec("a"), spec("b"))
    linked(h, ("c", ["a", "b"]))
    run_one(h, "a")
    assert h.status("c") == "waiting"
    leased = h.claim()
    assert [t["id"] for t in leased] == ["b"]
    h.complete("b", leased[0]["lease_token"])
    assert h.status("c") == "queued"
    assert h.state.ready_count(["default"]) == 1
    run_one(h, "c")
    check_consistency(h.state)


def test_a_dead_parent_cancels_the_descendants_naming_it() -> None:
    h = Harness()
    h.submit(spec("a"))
    linked(h, ("b", ["a"]), ("c", ["b"]), ("d", ["c"]))
    assert [h.status(i) for i in "bcd"] == ["waiting"] * 3
    run_one(h, "a", ok=False)
    assert [h.status(i) for i in "abcd"] == ["dead", "cancelled", "cancelled", "cancelled"]
    assert reason(h, "b") == "parent a ended dead"
    assert reason(h, "c") == "parent b ended cancelled"
    assert h.task("d").errors[-1][2]["type"] == "ParentFailed"
    check_consistency(h.state)


def test_on_parent_failure_run_queues_the_child_once_every_parent_ended() -> None:
    h = Harness()
    h.submit(spec("a"), spec("b"))
    linked(h, ("c", ["a", "b"], {"on_parent_failure": "run"}))
    run_one(h, "a", ok=False)
    assert h.status("c") == "waiting"
    run_one(h, "b")
    assert h.status("c") == "queued"


def test_run_when_failure_runs_only_after_a_dead_parent() -> None:
    h = Harness()
    h.submit(spec("a"), spec("b"))
    linked(h, ("on_a", ["a"], {"run_when": "failure"}), ("on_b", ["b"], {"run_when": "failure"}))
    run_one(h, "a", ok=False)
    assert h.status("on_a") == "queued"
    run_one(h, "b")
    assert h.status("on_b") == "cancelled"
    assert h.task("on_b").errors[-1][2]["type"] == "NotNeeded"


def test_run_when_always_runs_whatever_the_parents_did() -> None:
    h = Harness()
    h.submit(spec("a"), spec("b"))
    linked(h, ("c", ["a", "b"], {"run_when": "always"}))
    run_one(h, "a", ok=False)
    assert h.status("c") == "waiting"
    h.cancel("b")
    assert h.status("c") == "queued"


def test_a_parent_that_ended_already_counts_at_once() -> None:
    h = Harness()
    h.submit(spec("a"), spec("b"))
    run_one(h, "a")
    run_one(h, "b", ok=False)
    out = linked(h, ("after_a", ["a"]), ("after_b", ["b"]), ("always_b", ["b"],
                 {"run_when": "always"}))
    assert [r["status"] for r in out] == ["queued", "cancelled", "queued"]
    assert reason(h, "after_b") == "parent b ended dead"


def test_an_unknown_parent_is_rejected_and_nothing_is_created() -> None:
    h = Harness()
    h.submit(spec("a"))
    out = linked(h, ("b", ["a"]), ("c", ["nope"]))
    assert out["error"] == "unknown_parent"
    assert (out["id"], out["parent"]) == ("c", "nope")
    assert "nope" in out["message"]
    assert "b" not in h.state.tasks and "c" not in h.state.tasks
    # a parent must come before its child: no cycle can be built
    out = linked(h, ("x", ["y"]), ("y", ["x"]))
    assert (out["error"], out["parent"]) == ("unknown_parent", "y")
    assert linked(h, ("self", ["self"]))["error"] == "unknown_parent"


def test_bad_policies_are_rejected() -> None:
    h = Harness()
    h.submit(spec("a"))
    assert linked(h, ("b", ["a"], {"run_when": "sometimes"}))["error"] == "invalid"
    assert linked(h, ("b", ["a"], {"on_parent_failure": "x"}))["error"] == "invalid"
    assert "b" not in h.state.tasks


def test_cancelling_a_waiting_task_cascades() -> None:
    h = Harness()
    h.submit(spec("a"))
    linked(h, ("b", ["a"]), ("c", ["b"]), ("d", ["b"], {"run_when": "always"}))
    assert h.cancel("b")["status"] == "cancelled"
    assert [h.status(i) for i in "abcd"] == ["queued", "cancelled", "cancelled", "queued"]
    # the parent finishing later changes nothing for the cancelled child
    run_one(h, "a")
    assert h.status("b") == "cancelled"
    check_consistency(h.state)


def test_children_are_queued_in_the_order_they_were_created() -> None:
    h = Harness()
    h.submit(spec("root"))
    linked(h, *[(f"k{i}", ["root"]) for i in range(5)])
    run_one(h, "root")
    assert [t["id"] for t in h.claim(max=10)] == [f"k{i}" for i in range(5)]


def test_a_requeued_dead_parent_does_not_undo_or_repeat_its_childrens_decision() -> None:
    h = Harness()
    h.submit(spec("a"))
    linked(h, ("b", ["a"], {"run_when": "failure"}))
    run_one(h, "a", ok=False)
    assert h.status("b") == "queued"
    h.requeue("a")
    linked(h, ("late", ["a"]))  # created while "a" runs again: it waits for this run
    assert h.status("late") == "waiting"
    leased = h.claim(max=2)
    by_id = {t["id"]: t["lease_token"] for t in leased}
    h.complete("a", by_id["a"])
    assert h.status("late") == "queued"
    assert h.state.links["b"].waiting == 0


def test_a_long_chain_cancels_without_recursion() -> None:
    h = Harness()
    h.submit(spec("t0"))
    n = 5_000
    linked(h, *[(f"t{i}", [f"t{i - 1}"]) for i in range(1, n)])
    h.cancel("t0")
    assert h.status(f"t{n - 1}") == "cancelled"
    assert h.state.by_status[Status.WAITING] == {}


def test_results_are_kept_while_a_child_still_needs_them() -> None:
    h = Harness()
    h.submit(spec("a", result_ttl_ms=100), spec("b", result_ttl_ms=100))
    linked(h, ("c", ["a", "b"], {"pass_results": True}))
    run_one(h, "a")
    h.tick(1_000)
    assert h.status("a") == "succeeded"  # past its TTL, kept for "c"
    run_one(h, "b")
    assert h.state.parent_results("c") == [
        ["a", "succeeded", b"\xa3a  ", None], ["b", "succeeded", b"\xa3b  ", None]]
    run_one(h, "c")
    h.tick(50)
    assert h.status("a") is None  # dropped once "c" ended
    h.tick(100)
    assert h.status("b") is None
    assert "a" not in h.state.links and "b" not in h.state.links
    check_consistency(h.state)


def test_parent_results_carry_a_dead_parents_last_error() -> None:
    h = Harness()
    h.submit(spec("a"))
    linked(h, ("on_a", ["a"], {"run_when": "failure", "pass_results": True}), ("plain", ["a"],
           {"run_when": "always"}))
    run_one(h, "a", ok=False)
    (_, status, result, error), = h.state.parent_results("on_a") or []
    assert (status, result, error["message"]) == ("dead", None, "boom")
    assert h.state.parent_results("plain") is None


def test_a_workflow_is_created_once_and_reports_its_status() -> None:
    h = Harness()
    out = linked(h, ("a", []), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"]), workflow_id="w")
    assert out["created"] is True
    assert [t["status"] for t in out["tasks"]] == ["queued", "waiting", "waiting", "waiting"]
    assert h.state.workflow_status("w") == "running"
    again = linked(h, ("a", []), workflow_id="w")
    assert again["created"] is False and len(again["tasks"]) == 4
    for task_id in "abcd":
        run_one(h, task_id)
    assert h.state.workflow_status("w") == "succeeded"
    assert h.state.flows["w"].keys == ["a", "b", "c", "d"]


def test_a_workflow_whose_task_ids_exist_is_a_conflict() -> None:
    h = Harness()
    h.submit(spec("a"))
    out = linked(h, ("a", []), workflow_id="w")
    assert out["error"] == "conflict"
    assert "w" not in h.state.flows


def test_a_failed_workflow_and_its_results_kept_until_it_ends() -> None:
    h = Harness()
    linked(h, ("a", []), ("b", []), ("fin", ["a", "b"]), workflow_id="w", ttl_ms=10)
    run_one(h, "a")
    h.tick(1_000)
    assert h.status("a") == "succeeded"
    run_one(h, "b", ok=False)
    assert h.status("fin") == "cancelled"
    assert h.state.workflow_status("w") == "failed"
    h.tick(20)
    assert h.status("a") is None and h.status("fin") is None
    assert h.status("b") == "dead"  # a dead letter stays
    h.purge("b")
    assert "w" not in h.state.flows  # forgotten with its last task


def test_cancelling_a_workflow_cancels_what_has_not_started() -> None:
    h = Harness()
    linked(h, ("a", []), ("b", []), ("c", ["a"]), ("d", ["c"], {"run_when": "always"}),
           workflow_id="w")
    leased = h.claim()
    assert leased[0]["id"] == "a"
    out = h.run(c.CancelWorkflow("w"))
    assert out == {"workflow_id": "w", "cancelled": 3}  # b, c, and d after c
    assert [h.status(i) for i in "abcd"] == ["leased", "cancelled", "cancelled", "cancelled"]
    assert reason(h, "b") == "workflow w was cancelled"
    assert h.state.workflow_status("w") == "running"  # "a" still runs
    h.complete("a", leased[0]["lease_token"])
    assert h.state.workflow_status("w") == "cancelled"
    assert h.run(c.CancelWorkflow("nope"))["error"] == "not_found"


def test_replay_and_snapshot_agree_with_workflows_in_flight() -> None:
    h = Harness()
    linked(h, ("a", []), ("b", []), ("c", ["a", "b"], {"pass_results": True}),
           ("d", ["c"], {"run_when": "failure"}), workflow_id="w", ttl_ms=500)
    h.submit(spec("x"))
    linked(h, ("y", ["x", "a"], {"on_parent_failure": "run"}))
    run_one(h, "a")
    h.tick(1_000)
    mid = snapshot.loads(snapshot.dumps(h.state))
    assert snapshot.digest(mid) == snapshot.digest(h.state)
    split = len(h.log)
    run_one(h, "b", ok=False)
    run_one(h, "x")
    run_one(h, "y")
    h.tick(1_000)
    # the whole log again, and the snapshot plus the rest of the log
    from raftq.state.machine import State

    replayed = State()
    for entry in h.log:
        replayed.apply(encoding.decode(entry))
    for entry in h.log[split:]:
        mid.apply(encoding.decode(entry))
    assert snapshot.digest(replayed) == snapshot.digest(h.state) == snapshot.digest(mid)
    check_consistency(mid)


def test_linked_and_cancel_workflow_round_trip_the_wire() -> None:
    body = c.Linked([spec("a"), spec("b")], [c.Deps([]), c.Deps(["a"], "run", "always", True)],
                    "w", ["ka", "kb"])
    for cmd in (c.Command(body, "r1", 5), c.Command(c.CancelWorkflow("w"), "r2", 6)):
        assert encoding.decode(encoding.encode(cmd)) == cmd


def test_a_workflow_cancel_is_in_the_audit_log() -> None:
    h = Harness()
    linked(h, ("a", []), ("b", ["a"]), workflow_id="w")
    h.run(c.CancelWorkflow("w", "ops-key"))
    entry = h.state.audit[-1]
    assert entry[2:] == ["ops-key", "cancel_workflow", "w", {"cancelled": 2}]
