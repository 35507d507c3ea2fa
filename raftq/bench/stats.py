"""Pure helpers of ``raftq bench``: percentiles, run summaries, targets, the table.

No I/O and no clocks here, so the arithmetic that every reported figure goes
through is unit-tested (tests/unit/test_bench_stats.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100), linear between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError("p must be within 0-100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def latency_ms(samples_s: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max in milliseconds of latencies given in seconds."""
    ms = [s * 1000 for s in samples_s]
    return {
        "p50": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "max": max(ms),
        "n": float(len(ms)),
    }


def spread(runs: Sequence[float]) -> dict[str, Any]:
    """min/median/max of repeated runs, and the runs themselves."""
    return {"min": min(runs), "median": median(runs), "max": max(runs), "runs": list(runs)}


@dataclass(frozen=True, slots=True)
class Target:
    """A figure's goal: ``value op bound``, e.g. throughput ``>=`` 9000."""

    op: str  # ">=" or "<="
    bound: float

    def met(self, value: float) -> bool:
        return value >= self.bound if self.op == ">=" else value <= self.bound

    def text(self, unit: str) -> str:
        return f"{self.op} {fmt_number(self.bound)} {unit}".rstrip()


# The targets for this kind of 2-core machine (issue 5).
TARGETS: dict[str, Target] = {
    "submit.tasks_per_s": Target(">=", 9_000),
    "batch.tasks_per_s": Target(">=", 50_000),
    "e2e.drain.tasks_per_s": Target(">=", 6_000),
    "e2e.concurrent.tasks_per_s": Target(">=", 4_000),
    "fairness.submit.overhead_pct": Target("<=", 15),
    "fairness.claim.overhead_pct": Target("<=", 15),
    "latency.leader.p99_ms": Target("<=", 5),
    "latency.follower.p99_ms": Target("<=", 10),
    "latency.result.p50_ms": Target("<=", 2),
    "latency.result.p99_ms": Target("<=", 5),
    "failover.median_s": Target("<=", 1.5),
    "memory.100000.rss_mb": Target("<=", 300),
    "memory.1000000.rss_mb": Target("<=", 2_000),
}


@dataclass(slots=True)
class Row:
    """One line of the report: a named figure, its unit, its runs and its target."""

    key: str
    label: str
    value: float
    unit: str
    runs: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def target(self) -> Target | None:
        return TARGETS.get(self.key)

    def to_json(self) -> dict[str, Any]:
        target = self.target
        data: dict[str, Any] = {"key": self.key, "label": self.label, "value": self.value,
                                "unit": self.unit}
        if len(self.runs) > 1:
            data.update(spread(self.runs))
        if target is not None:
            data["target"] = {"op": target.op, "bound": target.bound}
            data["met"] = target.met(self.value)
        if self.note:
            data["note"] = self.note
        return data


def fmt_number(value: float) -> str:
    """Thousands separators for big figures, 2-3 significant decimals for small ones."""
    if math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_table(rows: Sequence[Row]) -> str:
    """The human table: figure, value, min-max of the runs, target and verdict."""
    head = ("FIGURE", "VALUE", "RUNS min-max", "TARGET", "")
    lines: list[tuple[str, ...]] = [head]
    for row in rows:
        target = row.target
        runs = ""
        if len(row.runs) > 1:
            runs = f"{fmt_number(min(row.runs))}-{fmt_number(max(row.runs))}"
        verdict = ""
        if target is not None:
            verdict = "ok" if target.met(row.value) else "MISS"
        lines.append((
            row.label,
            f"{fmt_number(row.value)} {row.unit}".rstrip(),
            runs,
            target.text(row.unit) if target is not None else "",
            verdict + (f"  {row.note}" if row.note else ""),
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for line in lines:
        cells = [line[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(line[1:3], widths[1:3], strict=True)]
        cells += [line[3].ljust(widths[3]), line[4]]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def ratio(ours: float, theirs: float, higher_is_better: bool = True) -> float:
    """How many times better raftq is: ours/theirs for rates, theirs/ours for latencies."""
    if ours <= 0 or theirs <= 0:
        return float("nan")
    return ours / theirs if higher_is_better else theirs / ours
