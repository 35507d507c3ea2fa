"""``raftq bench`` section ``fairness``: what tenants' turns cost the state machine.

N queued tasks (by default 1,000,000) are submitted in batches of 1,000 and then
claimed 100 at a time, once without tenants and once spread over T tenants (by
default 10,000, submitted round robin: every task switches tenant, the costliest
order). Measured in this process on the pure state machine, each command
encoded and decoded as it is replicated, so the figures are what every node
pays in ``apply``: CPU per task for the submits and for the claims, the
throughput of each phase, and the overhead of the tenants.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import msgpack

from raftq.bench.site import Site
from raftq.bench.stats import Row
from raftq.state import commands as c
from raftq.state import encoding
from raftq.state.machine import State

_PAYLOAD = bytes(msgpack.packb([[], {}], use_bin_type=True))
SUBMIT_BATCH = 1_000
CLAIM_BATCH = 100


def _apply(state: State, body: c.Body, rid: str) -> Any:
    return state.apply(encoding.decode(encoding.encode(c.Command(body, rid, 0))))


def run_once(n: int, tenants: int) -> dict[str, float]:
    """CPU seconds of the submits and of the claims of ``n`` tasks over ``tenants``
    tenants (0: none), and how many tasks the claims took."""
    state = State()
    _apply(state, c.Tick(0, 1, 0, "bench"), "t0")
    gc.collect()
    gc.disable()  # the collector's passes over a million live tasks are not apply's cost
    try:
        started = time.process_time()
        for j in range(0, n, SUBMIT_BATCH):
            specs = [c.TaskSpec(f"t{i}", "noop", "q", 128, _PAYLOAD, 0, 0, 3, 60_000, 1_000,
                                86_400_000, 0, 0, f"tenant-{i % tenants}" if tenants else "")
                     for i in range(j, min(j + SUBMIT_BATCH, n))]
            _apply(state, c.Submit(specs), f"s{j}")
        submitted = time.process_time()
        claimed, rid = 0, 0
        while claimed < n:
            rid += 1
            got = _apply(state, c.Claim("w", ["q"], CLAIM_BATCH, 60_000), f"c{rid}")["tasks"]
            if not got:
                break
            claimed += len(got)
        done = time.process_time()
    finally:
        gc.enable()
    return {"submit_s": submitted - started, "claim_s": done - submitted, "claimed": claimed}


def _rows(n: int, tenants: int, plain: dict[str, float],
          fair: dict[str, float]) -> list[Row]:
    rows = []
    for phase in ("submit", "claim"):
        base, with_t = plain[f"{phase}_s"], fair[f"{phase}_s"]
        overhead = (with_t - base) / base * 100
        rows += [
            Row(f"fairness.{phase}.plain_us_per_task",
                f"{phase} CPU per task, {n:,} tasks, no tenants", base * 1e6 / n, "us"),
            Row(f"fairness.{phase}.tenants_us_per_task",
                f"  the same over {tenants:,} tenants", with_t * 1e6 / n, "us"),
            Row(f"fairness.{phase}.plain_tasks_per_s", f"  {phase} throughput, no tenants",
                n / base, "tasks/s"),
            Row(f"fairness.{phase}.tenants_tasks_per_s", "  the same with tenants",
                n / with_t, "tasks/s"),
            Row(f"fairness.{phase}.overhead_pct", "  the tenants' overhead", overhead, "%"),
        ]
    return rows


async def fairness(site: Site, cfg: Any, say: Any) -> list[Row]:
    n, tenants = cfg.fairness_tasks, cfg.fairness_tenants
    plain = run_once(n, 0)
    say(f"  no tenants: submit {plain['submit_s']:.1f} s, claim {plain['claim_s']:.1f} s CPU")
    fair = run_once(n, tenants)
    say(f"  {tenants:,} tenants: submit {fair['submit_s']:.1f} s, "
        f"claim {fair['claim_s']:.1f} s CPU")
    if plain["claimed"] != n or fair["claimed"] != n:
        say(f"  claimed {plain['claimed']:,} and {fair['claimed']:,} of {n:,}")
    return _rows(n, tenants, plain, fair)
