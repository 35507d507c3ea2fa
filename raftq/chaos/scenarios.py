"""Every scenario, by name: the node, network and worker faults of ``nemesis``,
the storage faults of ``storage_faults``, the clock and isolation faults of
``time_faults`` and the schedules of ``cron``."""

from __future__ import annotations

from raftq.chaos.cron import CronFault
from raftq.chaos.nemesis import SCENARIOS as BASE_SCENARIOS
from raftq.chaos.nemesis import SMOKE, Scenario
from raftq.chaos.storage_faults import STORAGE_SCENARIOS
from raftq.chaos.time_faults import TIME_SCENARIOS

CRON = Scenario("cron", "50 schedules every second and 3 cron ones in 3 time zones fire once "
                "per tick while the leader is killed, cut off or paused", CronFault())

SCENARIOS: dict[str, Scenario] = {
    **BASE_SCENARIOS,
    **{s.name: s for s in STORAGE_SCENARIOS},
    **{s.name: s for s in TIME_SCENARIOS},
    CRON.name: CRON,
}

__all__ = ["SCENARIOS", "SMOKE"]
