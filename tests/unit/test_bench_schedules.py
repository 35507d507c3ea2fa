"""The schedules section's reading of the leader's histograms."""

from __future__ import annotations

import math

from raftq.bench.schedules import buckets, quantile

BEFORE = '''raftq_schedule_fire_delay_seconds_bucket{le="0.1"} 10.0
raftq_schedule_fire_delay_seconds_bucket{le="0.2"} 10.0
raftq_schedule_fire_delay_seconds_bucket{le="+Inf"} 10.0
raftq_schedule_round_seconds_bucket{le="0.1"} 3.0
'''
AFTER = '''raftq_schedule_fire_delay_seconds_bucket{le="0.1"} 10.0
raftq_schedule_fire_delay_seconds_bucket{le="0.2"} 110.0
raftq_schedule_fire_delay_seconds_bucket{le="+Inf"} 110.0
'''


def test_quantiles_of_what_was_observed_between_two_scrapes() -> None:
    name = "raftq_schedule_fire_delay_seconds"
    before, after = buckets(BEFORE, name), buckets(AFTER, name)
    assert after == [(0.1, 10.0), (0.2, 110.0), (math.inf, 110.0)]
    # the 100 new samples all fell in (0.1, 0.2]: interpolated within it
    assert math.isclose(quantile(before, after, 0.5), 0.15)
    assert math.isclose(quantile(before, after, 0.99), 0.199)
    assert math.isnan(quantile(after, after, 0.5))
