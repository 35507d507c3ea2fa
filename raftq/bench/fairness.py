"""``raftq bench`` section ``fairness``: what tenants' turns cost the state machine.

N queued tasks (by default 1,000,000) are submitted in batches of 1,000 and then
claimed 100 at a time, once without tenants and once spread over T tenants (by
default 10,000, submitted round robin: every task switches tenant, the costliest
order). Measured in this process on the pure state machine, each command
encoded and decoded as it is replicated, so the figures are what every node
pays in ``apply`` (and the proposer in building and encoding the command):
CPU per task for the submits and for the claims, the throughput of each phase,
and the overhead of the tenants. The tenants' names are made before the clock
starts, as a server has them from the request; the runs with and without
tenants alternate, ``runs`` times each (the median is reported, and the
overhead is the median of each pair's).
"""

from __future__ import annotations

import gc
import time
from typing import Any

import msgpack

from raftq.bench.site import Site
from raftq.bench.stats import Row, median
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
    names = [f"tenant-{k}" for k in range(tenants)] if tenants else [""]
    spread = len(names)
    gc.collect()
    gc.disable()  # the collector's passes over a million live tasks are not apply's cost
    try:
        started = time.process_time()
        for j in range(0, n, SUBMIT_BATCH):
            specs = [c.TaskSpec(f"t{i}", "noop", "q", 128, _PAYLOAD, 0, 0, 3, 60_000, 1_000,
                                86_400_000, 0, 0, names[i % spread])
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


def _rows(n: int, tenants: int, plain: list[dict[str, float]],
          fair: list[dict[str, float]]) -> list[Row]:
    """The figures of runs made in pairs: ``plain[i]`` without tenants, ``fair[i]`` with."""
    rows = []
    for phase in ("submit", "claim"):
        base = [run[f"{phase}_s"] for run in plain]
        with_t = [run[f"{phase}_s"] for run in fair]
        overheads = [(t - b) / b * 100 for b, t in zip(base, with_t, strict=True)]
        rows += [
            Row(f"fairness.{phase}.plain_us_per_task",
                f"{phase} CPU per task, {n:,} tasks, no tenants", median(base) * 1e6 / n,
                "us", [b * 1e6 / n for b in base]),
            Row(f"fairness.{phase}.tenants_us_per_task", f"  the same over {tenants:,} tenants",
                median(with_t) * 1e6 / n, "us", [t * 1e6 / n for t in with_t]),
            Row(f"fairness.{phase}.plain_tasks_per_s", f"  {phase} throughput, no tenants",
                n / median(base), "tasks/s", [n / b for b in base]),
            Row(f"fairness.{phase}.tenants_tasks_per_s", "  the same with tenants",
                n / median(with_t), "tasks/s", [n / t for t in with_t]),
            Row(f"fairness.{phase}.overhead_pct", "  the tenants' overhead", median(overheads),
                "%", overheads),
        ]
    return rows


async def fairness(site: Site, cfg: Any, say: Any) -> list[Row]:
    n, tenants = cfg.fairness_tasks, cfg.fairness_tenants
    plain: list[dict[str, float]] = []
    fair: list[dict[str, float]] = []
    for run in range(cfg.runs):
        plain.append(run_once(n, 0))
        fair.append(run_once(n, tenants))
        p, f = plain[-1], fair[-1]
        say(f"  run {run + 1}: no tenants: submit {p['submit_s']:.2f} s, claim "
            f"{p['claim_s']:.2f} s CPU; {tenants:,} tenants: submit {f['submit_s']:.2f} s, "
            f"claim {f['claim_s']:.2f} s")
        if p["claimed"] != n or f["claimed"] != n:
            say(f"  claimed {p['claimed']:,} and {f['claimed']:,} of {n:,}")
    return _rows(n, tenants, plain, fair)
