"""Every scenario, by name: the node, network and worker faults of ``nemesis``,
the storage faults of ``storage_faults``, the clock and isolation faults of
``time_faults``, the schedules of ``cron``, the DAGs of ``workflows`` and the membership
changes of ``replace``."""

from __future__ import annotations

from raftq.chaos.cron import CronFault
from raftq.chaos.nemesis import SCENARIOS as BASE_SCENARIOS
from raftq.chaos.nemesis import SMOKE, Scenario
from raftq.chaos.replace import ReplaceNodes
from raftq.chaos.storage_faults import STORAGE_SCENARIOS
from raftq.chaos.time_faults import TIME_SCENARIOS
from raftq.chaos.workflows import WorkflowFault

CRON = Scenario("cron", "50 schedules every second and 3 cron ones in 3 time zones fire once "
                "per tick while the leader is killed, cut off or paused", CronFault())
WORKFLOWS = Scenario("workflows", "DAGs of random shape (chains, fan-out/fan-in, diamonds, "
                     "random) run while the leader is killed and cut off and workers are "
                     "killed: no child before its parents' successes, every workflow ends",
                     WorkflowFault())

REPLACE = Scenario(
    "replace-nodes", "under load, each original node killed for good, removed and replaced "
    "by a new one (new id, empty data, join); then 3 -> 5 -> 3 nodes; then more replacements; "
    "the workers know only the original nodes", ReplaceNodes(), nodes=8, members=3,
    hold_s=(0.5, 1.0), quiet_s=(3.0, 6.0), real_workers=2, workload={"workers": 0})

SCENARIOS: dict[str, Scenario] = {
    **BASE_SCENARIOS,
    **{s.name: s for s in STORAGE_SCENARIOS},
    **{s.name: s for s in TIME_SCENARIOS},
    CRON.name: CRON,
    WORKFLOWS.name: WORKFLOWS,
    REPLACE.name: REPLACE,
}

__all__ = ["SCENARIOS", "SMOKE"]
