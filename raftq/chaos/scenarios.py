"""Every scenario, by name: the node, network and worker faults of ``nemesis``,
the storage faults of ``storage_faults`` and the clock and isolation faults of
``time_faults``."""

from __future__ import annotations

from raftq.chaos.nemesis import SCENARIOS as BASE_SCENARIOS
from raftq.chaos.nemesis import SMOKE, Scenario
from raftq.chaos.storage_faults import STORAGE_SCENARIOS
from raftq.chaos.time_faults import TIME_SCENARIOS

SCENARIOS: dict[str, Scenario] = {
    **BASE_SCENARIOS,
    **{s.name: s for s in STORAGE_SCENARIOS},
    **{s.name: s for s in TIME_SCENARIOS},
}

__all__ = ["SCENARIOS", "SMOKE"]
