"""``raftq bench`` section ``workflows``: a fan-out/fan-in DAG end to end, and what a
dependency edge costs the state machine.

The DAG is by default the largest one workflow may be (10,000 tasks; ``--quick``:
1,000): one root, 9,998 tasks that each wait for it, one task that waits for
all 9,998, created by a single ``POST /v1/workflows`` and run by ``workers``
worker processes. The
cost per edge is measured in this process on the pure state machine, so it
is the figure every node pays in ``apply``: the CPU per task of a plain
submit/claim/complete lifecycle against the same with the DAG's edges.
"""

from __future__ import annotations

import time
from typing import Any

import msgpack

from raftq.bench import http as h
from raftq.bench.site import Site, Workers
from raftq.bench.stats import Row, median
from raftq.state import commands as c
from raftq.state.machine import State
from raftq.state.workflows import MAX_WORKFLOW_TASKS

_PAYLOAD = bytes(msgpack.packb([[], {}], use_bin_type=True))


def dag_body(name: str, queue: str, size: int = MAX_WORKFLOW_TASKS) -> dict[str, Any]:
    fan = [f"f{i}" for i in range(size - 2)]
    tasks: list[dict[str, Any]] = [{"key": "root", "name": name, "queue": queue}]
    tasks += [{"key": k, "name": name, "queue": queue, "depends_on": ["root"]} for k in fan]
    tasks.append({"key": "fin", "name": name, "queue": queue, "depends_on": fan})
    return {"tasks": tasks}


def _spec(task_id: str) -> c.TaskSpec:
    return c.TaskSpec(task_id, "noop", "q", 128, _PAYLOAD, 0, 0, 3, 60_000, 1_000, 86_400_000)


def _run(state: State, bodies: list[c.Body]) -> None:
    for i, body in enumerate(bodies):
        state.apply(c.Command(body, f"r{i}", 0))


def _drain(state: State, n: int, batch: int = 100) -> None:
    """Claim and complete until ``n`` tasks succeeded, ``batch`` at a time."""
    done, rid = 0, 0
    while done < n:
        rid += 1
        leased = state.apply(c.Command(c.Claim("w", ["q"], batch, 60_000), f"c{rid}", 0))
        items = [c.Outcome(t["id"], t["lease_token"], b"\xc0") for t in leased["tasks"]]
        if not items:
            raise RuntimeError(f"nothing ready after {done} of {n}")
        state.apply(c.Command(c.Finish("w", items), f"f{rid}", 0))
        done += len(items)


def apply_cost(n: int = MAX_WORKFLOW_TASKS, rounds: int = 3) -> tuple[float, float, int]:
    """(CPU us per plain task, CPU us per DAG task, edges in the DAG): median of ``rounds``."""
    plain, dag = [], []
    edges = 2 * (n - 2)
    for _ in range(rounds):
        state = State()
        started = time.process_time()
        _run(state, [c.Submit([_spec(f"p{i}") for i in range(j, min(j + 100, n))])
                     for j in range(0, n, 100)])
        _drain(state, n)
        plain.append((time.process_time() - started) * 1e6 / n)

        state = State()
        ids = [f"d{i}" for i in range(n)]
        deps = [c.Deps([])] + [c.Deps([ids[0]]) for _ in ids[1:-1]] + [c.Deps(ids[1:-1])]
        started = time.process_time()
        _run(state, [c.Linked([_spec(i) for i in ids], deps, "wf", ids)])
        _drain(state, n)
        dag.append((time.process_time() - started) * 1e6 / n)
    return median(plain), median(dag), edges


async def workflows(site: Site, cfg: Any, say: Any) -> list[Row]:
    """The DAG end to end with ``cfg.workers`` workers, and the cost per edge in apply."""
    size = min(cfg.workflow_tasks, MAX_WORKFLOW_TASKS)
    shape = f"1 -> {size - 2:,} -> 1 DAG"
    plain_us, dag_us, edges = apply_cost(size)
    per_edge = (dag_us - plain_us) * size / edges
    say(f"  apply: {plain_us:.1f} us per plain task, {dag_us:.1f} us per DAG task, "
        f"{per_edge:.2f} us per edge")
    rows = [
        Row("workflows.apply.plain_us_per_task", "apply CPU per task, plain lifecycle",
            plain_us, "us"),
        Row("workflows.apply.dag_us_per_task", f"  the same in a {shape}", dag_us, "us"),
        Row("workflows.apply.us_per_edge", f"  per dependency edge ({edges:,} edges)",
            per_edge, "us"),
    ]
    leader, _ = await site.leader_and_follower()
    totals, submits = [], []
    for run in range(cfg.runs):
        queue = f"bench-workflow-{run}"
        with Workers(site, queue, cfg.workers, cfg.worker_pool, cfg.worker_concurrency,
                     cfg.worker_prefetch) as workers:
            await workers.wait_registered()
            conn = h.Conn(leader)
            try:
                started = time.perf_counter()
                created = await conn.json("POST", "/v1/workflows",
                                          dag_body(cfg.task_name, queue, size))
                submitted = time.perf_counter()
                wid = created["workflow"]["id"]
                while True:
                    view = (await conn.json("GET", f"/v1/workflows/{wid}?wait_ms=10000")
                            )["workflow"]
                    if view["status"] != "running":
                        break
                done = time.perf_counter()
            finally:
                await conn.close()
        if view["status"] != "succeeded":
            say(f"  run {run + 1}: the workflow ended {view['status']}")
        totals.append(done - started)
        submits.append(submitted - started)
        say(f"  run {run + 1}: created in {submits[-1]:.2f} s, done in {totals[-1]:.1f} s "
            f"({size / totals[-1]:,.0f} tasks/s)")
    who = f"{cfg.workers} {cfg.worker_pool} workers"
    rates = [size / t for t in totals]
    rows += [
        Row("workflows.dag_s", f"{shape} end to end, {who}", median(totals), "s", totals),
        Row("workflows.dag_tasks_per_s", "  its tasks per second", median(rates), "tasks/s",
            rates),
        Row("workflows.create_s", "  creating it (one request, one Raft entry)",
            median(submits), "s", submits),
    ]
    return rows
