"""``raftq.state.explain``: a ready task names the limits that hold it back from the
state on the replicated clock, before any claim has met them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from state_helpers import Harness, spec

from raftq.state import commands as c
from raftq.state.explain import explain


def reasons(h: Harness, task_id: str) -> list[dict[str, Any]]:
    return explain(h.state, h.state.tasks[task_id])


def codes(h: Harness, task_id: str) -> list[str]:
    return [r["code"] for r in reasons(h, task_id)]


def claim(h: Harness, n: int) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = h.run(c.Claim("w1", ["default"], n, 60_000))["tasks"]
    return tasks


def test_a_rate_key_without_room_is_named_before_a_claim_meets_the_task() -> None:
    h = Harness()
    h.run(c.PutRateLimit("reports", 1, 10_000, 1))
    h.submit(*[replace(spec(f"r{i}"), rate_key="reports") for i in range(2)])
    assert "rate_limit" not in codes(h, "r1")  # room for one start
    assert [x["id"] for x in claim(h, 1)] == ["r0"]  # the claim stops before r1
    assert not h.state.held  # nothing was set aside: only the clock says it waits
    [why] = [r for r in reasons(h, "r1") if r["code"] == "rate_limit"]
    assert why["limit"]["key"] == "reports" and why["limit"]["room"] == 0
    assert why["limit"]["rate"]["room_at_ms"] == h.state.clock_ms + 10_000
    h.tick(10_000)  # the clock gives the key room again: nothing holds r1 back
    assert "rate_limit" not in codes(h, "r1")


def test_a_concurrency_key_at_its_max_is_named_and_freed_when_a_lease_ends() -> None:
    h = Harness()
    h.submit(*[replace(spec(f"j{i}"), tenant="acme") for i in range(3)])
    leased = claim(h, 1)
    h.run(c.PutConcurrency("tenant:acme", 1))  # set while j0 runs: it counts at once
    [why] = [r for r in reasons(h, "j2") if r["code"] == "concurrency_limit"]
    assert why["limit"]["key"] == "tenant:acme"
    assert why["limit"]["concurrency"] == {"max": 1, "running": 1}
    h.complete("j0", leased[0]["lease_token"])
    assert "concurrency_limit" not in codes(h, "j2")


def test_a_task_set_aside_names_its_key_once() -> None:
    h = Harness()
    h.run(c.PutConcurrency("task:job", 1))
    h.submit(spec("a"), spec("b"))
    claim(h, 2)  # a leased, b set aside under task:job
    assert h.state.held == {"b": "task:job"}
    assert codes(h, "b").count("concurrency_limit") == 1


def test_a_turn_counts_the_tenants_and_own_tasks_ahead() -> None:
    h = Harness()
    h.submit(*[replace(spec(f"a{i}"), tenant="A") for i in range(3)],
             replace(spec("b0"), tenant="B"))
    [turn] = [r for r in reasons(h, "a2") if r["code"] == "turn"]
    assert (turn["tenants_ahead"], turn["ahead_in_line"]) == (0, 2)
    [turn] = [r for r in reasons(h, "b0") if r["code"] == "turn"]
    assert (turn["tenants_ahead"], turn["ahead_in_line"]) == (1, 0)
    claim(h, 2)  # a0, then B's turn: b0; A's a1 is the front again
    [turn] = [r for r in reasons(h, "a2") if r["code"] == "turn"]
    assert (turn["tenants_ahead"], turn["ahead_in_line"]) == (0, 1)
