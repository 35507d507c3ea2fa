"""The bench's fairness section measures full runs: every task submitted is claimed."""

from __future__ import annotations

from raftq.bench.fairness import _rows, run_once


def test_a_run_claims_every_task_with_and_without_tenants() -> None:
    plain, fair = run_once(3_000, 0), run_once(3_000, 70)
    assert plain["claimed"] == fair["claimed"] == 3_000
    keys = {row.key for row in _rows(3_000, 70, [plain], [fair])}
    assert {"fairness.submit.overhead_pct", "fairness.claim.overhead_pct"} <= keys
