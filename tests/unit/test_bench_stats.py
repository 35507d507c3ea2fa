"""The arithmetic and formatting behind every figure ``raftq bench`` prints."""

from __future__ import annotations

import math

import pytest

from raftq.bench.stats import (
    Row,
    Target,
    fmt_number,
    format_table,
    latency_ms,
    median,
    percentile,
    ratio,
    spread,
)


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]  # unsorted on purpose
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 90) == pytest.approx(3.7)
    assert percentile([7.0], 99) == 7.0


def test_percentile_of_1_to_100() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)


def test_percentile_rejects_nothing_and_out_of_range() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_median_odd_and_even() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([1.0, 2.0, 3.0, 10.0]) == 2.5


def test_latency_ms_converts_seconds() -> None:
    lat = latency_ms([0.001, 0.002, 0.003])
    assert lat["p50"] == pytest.approx(2.0)
    assert lat["max"] == pytest.approx(3.0)
    assert lat["n"] == 3


def test_spread_keeps_runs() -> None:
    assert spread([3.0, 1.0, 2.0]) == {"min": 1.0, "median": 2.0, "max": 3.0,
                                       "runs": [3.0, 1.0, 2.0]}


def test_target_direction() -> None:
    assert Target(">=", 10).met(10) and not Target(">=", 10).met(9.9)
    assert Target("<=", 5).met(5) and not Target("<=", 5).met(5.1)
    assert Target(">=", 9000).text("tasks/s") == ">= 9,000 tasks/s"


def test_fmt_number() -> None:
    assert fmt_number(12345.6) == "12,346"
    assert fmt_number(42.26) == "42.3"
    assert fmt_number(1.234) == "1.23"
    assert fmt_number(float("nan")) == "-"


def test_row_json_has_target_verdict_and_spread() -> None:
    data = Row("submit.tasks_per_s", "single", 9500.0, "tasks/s", [9000.0, 9500.0, 9900.0]
               ).to_json()
    assert data["met"] is True
    assert data["target"] == {"op": ">=", "bound": 9000}
    assert (data["min"], data["median"], data["max"]) == (9000.0, 9500.0, 9900.0)
    plain = Row("memory.empty.rss_mb", "empty", 50.0, "MB").to_json()
    assert "target" not in plain and "runs" not in plain


def test_format_table_aligns_and_flags_misses() -> None:
    table = format_table([
        Row("submit.tasks_per_s", "single submits", 1644.0, "tasks/s", [1500.0, 1644.0, 1700.0]),
        Row("latency.leader.p99_ms", "  p99", 3.2, "ms"),
        Row("memory.empty.rss_mb", "empty", 53.4, "MB", note="nodes: 53, 52, 53"),
    ])
    lines = table.splitlines()
    assert lines[0].startswith("FIGURE")
    assert "1,644 tasks/s" in lines[1] and "1,500-1,700" in lines[1] and lines[1].endswith("MISS")
    assert lines[2].endswith("ok")
    assert lines[3].endswith("nodes: 53, 52, 53")
    # values are right-aligned: they all end in the same column
    units = ("tasks/s", " ms", " MB")
    ends = {line.index(unit) + len(unit) for line, unit in zip(lines[1:], units, strict=True)}
    assert len(ends) == 1


def test_ratio() -> None:
    assert ratio(200.0, 100.0) == 2.0
    assert ratio(1.0, 2.0, higher_is_better=False) == 2.0
    assert math.isnan(ratio(0.0, 1.0))
