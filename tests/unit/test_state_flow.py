"""Flow control in the state machine: tenants' turns and the fairness bound, work
stealing, rate and concurrency limits, queue settings and unique tasks."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
from state_helpers import Harness, check_consistency, spec

from raftq.state import commands as c
from raftq.state import snapshot
from raftq.state.fair import lane


def t(task_id: str, tenant: str = "", **kw: object) -> c.TaskSpec:
    return replace(spec(task_id, **kw), tenant=tenant)  # type: ignore[arg-type]


def claim_ids(h: Harness, n: int = 1, queues: list[str] | None = None,
              steal: list[str] | None = None) -> list[str]:
    result = h.run(c.Claim("w1", queues or ["default"], n, 30_000, "h", 1, steal or []))
    return [x["id"] for x in result["tasks"]]


def test_a_backlog_does_not_delay_other_tenants_more_than_a_turn_each() -> None:
    h = Harness()
    h.submit(*[t(f"a{i}", "A") for i in range(1_000)])
    others = [chr(ord("B") + k) for k in range(10)]
    h.submit(*[t(f"{x}{i}", x) for i in range(100) for x in others])
    order = claim_ids(h, 1_000)
    # after A's current turn, the ring is A B C ... K: one task of each per round
    assert order[:12] == ["a0", "B0", "C0", "D0", "E0", "F0", "G0", "H0", "I0", "J0", "K0",
                          "a1"]
    last_other = max(i for i, task_id in enumerate(order) if not task_id.startswith("a"))
    assert last_other < 1_100 and sum(1 for x in order[:last_other] if x[0] == "a") <= 101
    check_consistency(h.state)


def test_weights_give_turns_of_that_many_claims() -> None:
    h = Harness()
    h.run(c.PutQueue("default", tenant_weights=[("A", 3)]))
    h.submit(*[t(f"a{i}", "A") for i in range(10)], *[t(f"b{i}", "B") for i in range(10)])
    assert claim_ids(h, 8) == ["a0", "a1", "a2", "b0", "a3", "a4", "a5", "b1"]


def test_priority_stays_strict_and_fifo_holds_within_a_tenant() -> None:
    h = Harness()
    h.submit(t("a1", "A"), t("a2", "A"), t("b1", "B", priority=200), t("a3", "A"))
    assert claim_ids(h, 4) == ["b1", "a1", "a2", "a3"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "B", "C", "D", ""]), st.integers(0, 3),
                          st.integers(0, 2)), min_size=1, max_size=40))
def test_fairness_bound(steps: list[tuple[str, int, int]]) -> None:
    """Between two claims of a tenant, every other tenant that had ready work all the
    while got one (weights 1, one queue and priority)."""
    h = Harness()
    n = 0
    claimed: list[str] = []
    ready_since: dict[str, int] = {}  # tenant -> index in ``claimed`` since when it had work
    for tenant, submits, claims in steps:
        for _ in range(submits):
            n += 1
            h.submit(t(f"{tenant}-{n}", tenant))
            ready_since.setdefault(tenant, len(claimed))
        for _ in range(claims):
            for task_id in claim_ids(h):
                who = task_id.split("-")[0]
                before = [i for i, x in enumerate(claimed) if x == who]
                if before:
                    between = set(claimed[before[-1] + 1:])
                    for other, since in ready_since.items():
                        if other != who and since <= before[-1]:
                            assert other in between, (who, other, claimed)
                claimed.append(who)
                ready_since.pop(who, None)
                if any(x.tenant == who for x in h.state.tasks.values()
                       if x.status.value == "queued"):
                    ready_since[who] = len(claimed)
    check_consistency(h.state)


def test_steal_from_takes_only_when_its_own_queues_have_nothing() -> None:
    h = Harness()
    h.submit(spec("mine", queue="q"), spec("theirs", queue="other", priority=255))
    assert claim_ids(h, 1, ["q"], ["other"]) == ["mine"]
    assert claim_ids(h, 1, ["q"], ["other"]) == ["theirs"]


def test_a_paused_queue_is_not_claimed_from() -> None:
    h = Harness()
    h.submit(spec("a"))
    h.run(c.PutQueue("default", paused=True))
    assert claim_ids(h) == [] and not h.state.claimable(["default"])
    h.run(c.PutQueue("default", paused=False))
    assert claim_ids(h) == ["a"]


def test_a_full_queue_refuses_a_whole_submission() -> None:
    h = Harness()
    h.run(c.PutQueue("default", max_queued=2))
    h.submit(spec("a"))
    assert h.run(c.Submit([spec("b"), spec("c")]))["error"] == "queue_full"
    assert "b" not in h.state.tasks
    assert h.submit(spec("b"))[0]["created"]
    assert h.submit(spec("b"))[0]["created"] is False  # a repeat is no new task
    claim_ids(h)
    assert h.submit(spec("c"))[0]["created"]


def test_a_rate_limit_counts_starts_on_the_replicated_clock() -> None:
    h = Harness()
    h.run(c.PutRateLimit("task:job", 10, 1_000, 2))
    h.submit(*[spec(f"x{i}") for i in range(30)])
    assert len(claim_ids(h, 30)) == 2  # the burst
    assert claim_ids(h, 30) == [] and len(h.state.held) == 28
    h.tick(100)  # one slot per 100 ms: the tick's step made room for one
    assert len(claim_ids(h, 30)) == 1
    h.tick_once(1_000)  # this step's starts may happen at once, until the next tick
    assert len(claim_ids(h, 30)) == 10
    h.tick_once(0)  # nothing started in that step: only a burst is left
    h.tick_once(1_000)
    assert len(claim_ids(h, 30)) == 10
    h.tick(5_000)  # a step passed with nothing claimed: its room is lost past the burst
    assert len(claim_ids(h, 30)) == 2
    check_consistency(h.state)


def test_a_concurrency_limit_counts_leases_and_wakes_a_waiter_when_one_ends() -> None:
    h = Harness()
    h.run(c.PutConcurrency("tenant:A", 1))
    h.submit(t("a1", "A"), t("a2", "A"), t("b1", "B"))
    leased = h.run(c.Claim("w1", ["default"], 3, 30_000))["tasks"]
    assert [x["id"] for x in leased] == ["a1", "b1"]  # A's line waits as a whole
    assert h.state.levels[(lane("default", "job"), 128)].lines["A"].gate == "tenant:A"
    h.complete("a1", leased[0]["lease_token"])
    assert claim_ids(h) == ["a2"]
    check_consistency(h.state)


def test_unique_keys_hold_while_unfinished_and_for_their_window() -> None:
    h = Harness()
    first = replace(spec("a"), unique_key="u", unique_for_ms=5_000)
    assert h.submit(first)[0]["created"]
    dup = h.submit(replace(spec("b"), unique_key="u"))[0]
    assert dup == {"id": "a", "created": False, "status": "queued"} and "b" not in h.state.tasks
    (lease,) = h.run(c.Claim("w1", ["default"], 1, 30_000))["tasks"]
    h.complete("a", lease["lease_token"])
    assert not h.submit(replace(spec("b"), unique_key="u"))[0]["created"]  # in its window
    h.tick(5_000)
    assert h.submit(replace(spec("b"), unique_key="u"))[0]["created"]


def test_a_snapshot_keeps_turns_waiters_and_limits() -> None:
    h = Harness()
    h.run(c.PutRateLimit("k", 1, 1_000, 1))
    h.run(c.PutConcurrency("tenant:B", 1))
    h.submit(t("a1", "A"), t("a2", "A"), t("b1", "B"), t("b2", "B"), t("c1", "C"),
             replace(t("k1", "C"), rate_key="k"), replace(t("k2", "C"), rate_key="k"))
    claim_ids(h, 5)
    restored = snapshot.loads(snapshot.dumps(h.state))
    assert snapshot.digest(restored) == snapshot.digest(h.state)
    check_consistency(restored)
    mirror = Harness()
    mirror.state, mirror.now_ms, mirror._next_rid = restored, h.now_ms, h._next_rid
    h.tick(2_000)
    mirror.tick(2_000)
    assert claim_ids(h, 5) == claim_ids(mirror, 5)
    assert snapshot.digest(restored) == snapshot.digest(h.state)
