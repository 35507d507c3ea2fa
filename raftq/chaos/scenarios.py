"""Every scenario, by name: the node, network and worker faults of ``nemesis``
and the storage faults of ``storage_faults``."""

from __future__ import annotations

from raftq.chaos.nemesis import SCENARIOS as BASE_SCENARIOS
from raftq.chaos.nemesis import SMOKE, Scenario
from raftq.chaos.storage_faults import STORAGE_SCENARIOS

SCENARIOS: dict[str, Scenario] = {
    **BASE_SCENARIOS,
    **{s.name: s for s in STORAGE_SCENARIOS},
}

__all__ = ["SCENARIOS", "SMOKE"]
