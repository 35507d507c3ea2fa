"""Examples for every status transition of a task (see ``model.TRANSITIONS``)."""

from __future__ import annotations

import test_state_workflows
from state_helpers import ERROR, PAYLOAD, Harness, spec

from raftq.state import commands as c
from raftq.state.model import TRANSITIONS, Status
from raftq.state.retries import backoff_ms


def test_every_transition_in_the_table_has_an_example_below() -> None:
    # Keep this list in step with the tests of this module: a new transition
    # in the table needs a new example.
    covered = {
        (None, Status.QUEUED): "test_submit_ready_now_is_queued",
        (None, Status.SCHEDULED): "test_submit_in_the_future_is_scheduled",
        (Status.SCHEDULED, Status.QUEUED): "test_scheduled_becomes_queued_when_clock_passes",
        (Status.SCHEDULED, Status.CANCELLED): "test_cancel_queued_and_scheduled",
        (Status.QUEUED, Status.LEASED): "test_claim_leases_a_queued_task",
        (Status.QUEUED, Status.CANCELLED): "test_cancel_queued_and_scheduled",
        (Status.LEASED, Status.SUCCEEDED): "test_complete",
        (Status.LEASED, Status.SCHEDULED): "test_fail_with_retry_schedules_with_backoff",
        (Status.LEASED, Status.DEAD): "test_fail_without_retry_is_dead",
        (Status.LEASED, Status.QUEUED): "test_lease_expiry_requeues_and_spends_an_attempt",
        (Status.DEAD, Status.QUEUED): "test_requeue_resets_attempts",
        # dependencies: examples in test_state_workflows
        (None, Status.WAITING): "test_child_waits_until_every_parent_succeeded_then_is_queued",
        (Status.WAITING, Status.QUEUED):
            "test_waiting_becomes_queued_in_the_apply_of_the_last_parents_success",
        (Status.WAITING, Status.CANCELLED): "test_a_dead_parent_cancels_the_descendants_naming_it",
        (Status.QUEUED, Status.EXPIRED): "test_a_waiting_task_expires",
        (Status.SCHEDULED, Status.EXPIRED): "test_a_waiting_task_expires",
        (Status.LEASED, Status.EXPIRED): "test_a_task_that_would_wait_again_after_its_expiry",
        (Status.DEAD, Status.EXPIRED): "test_a_task_that_would_wait_again_after_its_expiry",
        (Status.WAITING, Status.EXPIRED): "test_a_task_waiting_for_its_parents_expires",
    }
    table = {(old, new) for old, news in TRANSITIONS.items() for new in news}
    assert table == set(covered)
    assert all(name in globals() or hasattr(test_state_workflows, name)
               for name in covered.values())


def test_submit_ready_now_is_queued() -> None:
    h = Harness()
    assert h.submit(spec("a")) == [{"id": "a", "created": True, "status": "queued"}]
    task = h.task("a")
    assert task.status is Status.QUEUED
    assert task.attempts == 0
    assert task.created_ms == h.now_ms
    assert h.state.ready_count(["default"]) == 1


def test_submit_in_the_future_is_scheduled() -> None:
    h = Harness()
    out = h.submit(spec("a", delay_ms=500), spec("b", eta_ms=h.now_ms))
    assert [r["status"] for r in out] == ["scheduled", "queued"]
    assert h.task("a").ready_at_ms == h.now_ms + 500
    assert h.claim(max=5)[0]["id"] == "b"
    assert h.claim() == []  # "a" is not ready


def test_scheduled_becomes_queued_when_clock_passes() -> None:
    h = Harness()
    h.submit(spec("a", delay_ms=500))
    h.tick(499)
    assert h.status("a") == "scheduled"
    h.tick(1)
    assert h.status("a") == "queued"
    assert h.task("a").ready_at_ms is None
    assert h.claim()[0]["id"] == "a"


def test_claim_leases_a_queued_task() -> None:
    h = Harness()
    h.submit(spec("a"), spec("b"))
    leased = h.claim("w1", max=1, lease_ms=5_000)
    assert leased == [
        {"id": "a", "lease_token": 1, "lease_expires_ms": h.now_ms + 5_000, "attempt": 1}
    ]
    task = h.task("a")
    assert task.status is Status.LEASED
    assert (task.lease_worker, task.lease_token, task.attempts) == ("w1", 1, 1)
    # the next claim gets the next task and a new token
    assert h.claim("w2")[0] | {"lease_expires_ms": 0} == {
        "id": "b", "lease_token": 2, "lease_expires_ms": 0, "attempt": 1
    }
    assert h.claim("w3") == []


def test_complete() -> None:
    h = Harness()
    h.submit(spec("a"))
    token = h.claim_one()
    assert h.complete("a", token, b"\x03") == {"id": "a", "ok": True, "status": "succeeded"}
    task = h.task("a")
    assert task.status is Status.SUCCEEDED
    assert task.result == b"\x03"
    assert task.finished_ms == h.now_ms
    assert task.lease_worker == ""


def test_fail_with_retry_schedules_with_backoff() -> None:
    h = Harness()
    h.submit(spec("a", max_attempts=5, retry_backoff_ms=1_000))
    delays = []
    for attempt in range(1, 5):
        token = h.claim_one()
        assert h.task("a").attempts == attempt
        assert h.fail("a", token, retry=True)["status"] == "scheduled"
        ready_at = h.task("a").ready_at_ms
        assert ready_at is not None
        delays.append(ready_at - h.now_ms)
        assert delays[-1] == backoff_ms("a", attempt, 1_000)
        h.tick(delays[-1] - 1)
        assert h.status("a") == "scheduled"
        h.tick(1)
        assert h.status("a") == "queued"
    # exponential, jittered into [0.75, 1.25) of the raw value
    for attempt, delay in enumerate(delays, start=1):
        raw = 1_000 * 2 ** (attempt - 1)
        assert 0.75 * raw <= delay < 1.25 * raw
    assert delays == sorted(delays)
    assert len(h.task("a").errors) == 4


def test_backoff_is_deterministic_jittered_and_capped() -> None:
    assert backoff_ms("x", 3, 500) == backoff_ms("x", 3, 500)
    # the jitter depends on the task and the attempt, not on anything else
    jittered = {backoff_ms(f"t{i}", 1, 10_000) for i in range(50)}
    assert len(jittered) > 10
    assert all(7_500 <= d < 12_500 for d in jittered)
    assert backoff_ms("x", 60, 1_000) < 1.25 * 3_600_000
    assert backoff_ms("x", 1, 0) == 0


def test_fail_without_retry_is_dead() -> None:
    h = Harness()
    h.submit(spec("a", max_attempts=5))
    token = h.claim_one()
    assert h.fail("a", token, retry=False) == {"id": "a", "ok": True, "status": "dead"}
    task = h.task("a")
    assert task.status is Status.DEAD
    assert task.finished_ms == h.now_ms
    assert task.errors == [[1, h.now_ms, ERROR]]


def test_fail_with_attempts_exhausted_is_dead_and_keeps_every_error() -> None:
    h = Harness()
    h.submit(spec("a", max_attempts=3, retry_backoff_ms=10))
    for _ in range(2):
        h.fail("a", h.claim_one(), retry=True)
        h.tick(100)
    assert h.fail("a", h.claim_one(), retry=True)["status"] == "dead"
    task = h.task("a")
    assert [e[0] for e in task.errors] == [1, 2, 3]
    assert all(e[2] == ERROR for e in task.errors)
    # a dead letter never expires by the result TTL
    h.tick(10 * task.result_ttl_ms)
    assert h.status("a") == "dead"


def test_lease_expiry_requeues_and_spends_an_attempt() -> None:
    h = Harness()
    h.submit(spec("a", max_attempts=3))
    token = h.claim("w1", lease_ms=1_000)[0]["lease_token"]
    h.tick(999)
    assert h.status("a") == "leased"
    h.tick(1)
    task = h.task("a")
    assert task.status is Status.QUEUED
    assert task.attempts == 1
    assert task.errors[-1][0] == 1
    assert task.errors[-1][2]["type"] == "LeaseExpired"
    # the expired lease's token is dead
    assert h.complete("a", token)["error"] == "stale_lease"
    assert h.claim("w2")[0]["attempt"] == 2


def test_lease_expiry_with_attempts_exhausted_is_dead() -> None:
    h = Harness()
    h.submit(spec("a", max_attempts=2))
    for _ in range(2):
        h.claim("w1", lease_ms=100)
        h.tick(100)
    task = h.task("a")
    assert task.status is Status.DEAD
    assert [e[2]["type"] for e in task.errors] == ["LeaseExpired", "LeaseExpired"]


def test_extended_lease_expires_later() -> None:
    h = Harness()
    h.submit(spec("a"))
    token = h.claim("w1", lease_ms=1_000)[0]["lease_token"]
    h.tick(900)
    assert h.extend("a", token, lease_ms=1_000) == {
        "id": "a", "ok": True, "lease_expires_ms": h.now_ms + 1_000
    }
    h.tick(999)
    assert h.status("a") == "leased"
    h.tick(1)
    assert h.status("a") == "queued"


def test_release_requeues_without_spending_an_attempt() -> None:
    h = Harness()
    h.submit(spec("a"), spec("b"))
    token = h.claim_one()
    assert h.release("a", token) == {"id": "a", "ok": True}
    task = h.task("a")
    assert (task.status, task.attempts, list(task.errors)) == (Status.QUEUED, 0, [])
    # released to the back of its level
    assert [t["id"] for t in h.claim(max=2)] == ["b", "a"]
    assert h.task("a").attempts == 1


def test_requeue_resets_attempts() -> None:
    h = Harness()
    h.submit(spec("a", max_attempts=1))
    h.fail("a", h.claim_one(), retry=True)
    assert h.status("a") == "dead"
    assert h.requeue("a") == {"id": "a", "status": "queued"}
    task = h.task("a")
    assert (task.attempts, task.finished_ms) == (0, None)
    assert len(task.errors) == 1  # history is kept
    assert h.claim()[0]["attempt"] == 1
    # only dead letters can be requeued
    assert h.requeue("a")["error"] == "not_found"
    assert h.requeue("nope")["error"] == "not_found"


def _dead(h: Harness, *specs_: str, queue: str = "default") -> None:
    h.submit(*(spec(i, queue=queue, max_attempts=1) for i in specs_))
    for task_id in specs_:
        token = h.claim("w1", [queue])[0]["lease_token"]
        h.fail(task_id, token, retry=False)


def test_purge_one_dead_letter() -> None:
    h = Harness()
    _dead(h, "a", "b")
    assert h.purge("a") == {"purged": 1}
    assert "a" not in h.state.tasks
    assert h.status("b") == "dead"
    assert h.purge("a")["error"] == "not_found"
    h.submit(spec("c"))
    assert h.purge("c")["error"] == "not_found"  # not a dead letter
    assert h.status("c") == "queued"


def test_purge_all_dead_letters_of_a_queue_or_all() -> None:
    h = Harness()
    _dead(h, "a", "b")
    _dead(h, "x", queue="other")
    h.submit(spec("live"))
    assert h.purge(queue="other") == {"purged": 1}
    assert set(h.state.tasks) == {"a", "b", "live"}
    assert h.purge() == {"purged": 2}
    assert set(h.state.tasks) == {"live"}
    assert h.state.by_status[Status.DEAD] == {}
    assert h.purge() == {"purged": 0}


def test_cancel_queued_and_scheduled() -> None:
    h = Harness()
    h.submit(spec("q"), spec("s", delay_ms=100))
    assert h.cancel("q") == {"id": "q", "status": "cancelled"}
    assert h.cancel("s") == {"id": "s", "status": "cancelled"}
    assert h.cancel("s") == {"id": "s", "status": "cancelled"}  # cancelling again is fine
    h.tick(1_000)
    assert h.status("s") == "cancelled"  # its delay passing does not revive it
    assert h.claim() == []
    assert h.state.ready_count(["default"]) == 0


def test_cancel_leased_or_finished_is_a_conflict() -> None:
    h = Harness()
    h.submit(spec("a"), spec("b"))
    token = h.claim_one()
    assert h.cancel("a")["error"] == "conflict"
    assert h.status("a") == "leased"
    h.complete("a", token)
    assert h.cancel("a")["error"] == "conflict"
    assert h.cancel("zzz")["error"] == "not_found"


def test_result_ttl_drops_succeeded_and_cancelled() -> None:
    h = Harness()
    h.submit(spec("ok", result_ttl_ms=1_000), spec("gone", result_ttl_ms=2_000))
    h.complete("ok", h.claim_one())
    h.cancel("gone")
    h.tick(999)
    assert set(h.state.tasks) == {"ok", "gone"}
    h.tick(1)
    assert set(h.state.tasks) == {"gone"}
    h.tick(1_000)
    assert h.state.tasks == {}
    assert all(not ids for ids in h.state.by_status.values())
    assert h.state.counts == {}
    # the id is free again
    assert h.submit(spec("ok"))[0]["created"] is True


def test_a_waiting_task_expires() -> None:
    h = Harness()
    wall = h.now_ms
    out = h.submit(
        c.TaskSpec("q", "n", "default", 1, PAYLOAD, 0, 0, 3, 1000, 1000, 60_000, 500, 0),
        c.TaskSpec("s", "n", "default", 1, PAYLOAD, 900, 0, 3, 1000, 1000, 60_000, 0, wall + 400),
        c.TaskSpec("late", "n", "default", 1, PAYLOAD, 0, 0, 3, 1000, 1000, 60_000, 0, wall - 1),
        spec("keep"),
    )
    assert [o["status"] for o in out] == ["queued", "scheduled", "expired", "queued"]
    assert h.task("q").expires_at_ms == h.state.clock_ms + 500
    h.tick(399)
    assert (h.status("q"), h.status("s")) == ("queued", "scheduled")
    h.tick(1)
    assert (h.status("q"), h.status("s")) == ("queued", "expired")  # eta after its expiry
    h.tick(100)
    assert h.status("q") == "expired"
    assert h.claim(max=5)[0]["id"] == "keep"
    assert h.claim() == []
    assert h.task("q").finished_ms == h.state.clock_ms
    h.tick(60_000)
    assert h.status("q") is None  # dropped after its result TTL like a cancelled task


def test_a_task_that_would_wait_again_after_its_expiry() -> None:
    h = Harness()
    h.submit(c.TaskSpec("a", "n", "default", 1, PAYLOAD, 0, 0, 3, 1000, 1000, 60_000, 500, 0),
             c.TaskSpec("b", "n", "default", 1, PAYLOAD, 0, 0, 1, 1000, 1000, 60_000, 500, 0))
    token_a = h.claim_one()
    token_b = h.claim_one()
    h.tick(1_000)  # both expire while running: a running task is not interrupted
    assert (h.status("a"), h.status("b")) == ("leased", "leased")
    h.fail("b", token_b)  # attempts spent: a dead letter, as without an expiry
    assert h.status("b") == "dead"
    assert h.requeue("b") == {"id": "b", "status": "expired"}
    h.release("a", token_a)  # would be queued again: past its expiry
    assert h.status("a") == "expired"


def test_a_task_waiting_for_its_parents_expires() -> None:
    h = Harness()
    h.submit(spec("parent"))
    child = c.TaskSpec("child", "n", "default", 1, PAYLOAD, 0, 0, 3, 1000, 1000, 60_000, 500, 0)
    assert h.run(c.Linked([child], [c.Deps(["parent"])])) == [
        {"id": "child", "created": True, "status": "waiting"}]
    h.tick(500)
    h.tick(1)
    assert h.status("child") == "expired"  # never queued, though its parent may succeed


def test_a_delayed_task_already_past_its_expiry_is_expired_on_arrival() -> None:
    # found by the stateful test: the expiry was checked before the task had a status
    h = Harness()
    out = h.submit(c.TaskSpec("d", "n", "default", 1, PAYLOAD, 1, 0, 1, 1000, 0, 0, 0,
                              h.now_ms - 5))
    assert out == [{"id": "d", "created": True, "status": "expired"}]
