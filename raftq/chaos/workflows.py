"""The ``workflows`` scenario: DAGs of random shape run while the leader is killed
and cut off and workers are killed.

At the first fault a thread starts submitting workflows (``POST
/v1/workflows``) to random nodes, one every ``INTERVAL_S`` or so, until the
fault phase ends: chains, fan-out/fan-in (1 -> k -> 1), diamonds and random
DAGs (each task depends on up to three earlier ones), 2 to ``MAX_TASKS``
tasks each, all on the queue the harness workers read. Ids are made here, so
a submission whose answer was lost is retried on another node under the same
workflow id (``created: false`` the second time) and its tasks are known
whatever happened. Each workflow's graph goes into the history before it is
sent (a ``workflow`` record), and each attempt as a ``submit`` record, so the
checker's usual accounting (nothing acknowledged lost) covers its tasks too;
``raftq.chaos.wfcheck`` judges the order and the ends. Every call after the
first kills the leader, cuts it off, or kills a worker that holds leases.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from raftq.chaos.history import OK, UNKNOWN, now_ms, outcome_of_status
from raftq.chaos.http import call
from raftq.chaos.nemesis import Active, Context, kill_leader, kill_worker, partition_leader
from raftq.chaos.workload import task_spec

INTERVAL_S = 0.4
MAX_TASKS = 14
SUBMIT_TRIES = 4


def shape(rng: random.Random, ids: list[str]) -> dict[str, list[str]]:
    """Parents per task id, parents always earlier in ``ids`` (so it is a DAG)."""
    n = len(ids)
    kind = rng.choice(["chain", "fan", "diamond", "random", "random"])
    parents: dict[str, list[str]] = {ids[0]: []}
    for i in range(1, n):
        if kind == "chain":
            chosen = [ids[i - 1]]
        elif kind == "fan":  # 1 -> (n-2) -> 1
            chosen = [ids[0]] if i < n - 1 else ids[1:n - 1] or [ids[0]]
        elif kind == "diamond":  # layers of two, each joined to the layer before
            layer = (i + 1) // 2
            chosen = [x for x in ids[max(0, 2 * layer - 3):2 * layer - 1] if x != ids[i]]
        else:
            chosen = rng.sample(ids[:i], rng.randint(0, min(3, i)))
        parents[ids[i]] = sorted(set(chosen))
    return parents


class WorkflowLoad(threading.Thread):
    def __init__(self, ctx: Context) -> None:
        super().__init__(name="workflows", daemon=True)
        self.ctx = ctx
        self.rng = random.Random(ctx.rng.random())
        self.count = 0

    def run(self) -> None:
        while not self.ctx.stopping.wait(INTERVAL_S * self.rng.uniform(0.5, 1.5)):
            self.count += 1
            self.submit(f"{self.ctx.tag}-wf{self.count}")

    def submit(self, workflow_id: str) -> bool:
        ids = [f"{workflow_id}-{k}" for k in range(self.rng.randint(2, MAX_TASKS))]
        parents = shape(self.rng, ids)
        history, cluster = self.ctx.history, self.ctx.cluster
        history.record({"type": "workflow", "id": workflow_id, "parents": parents,
                        "t": now_ms()})
        tasks: list[dict[str, Any]] = []
        for tid in ids:
            spec = task_spec(tid, self.rng)
            spec.update({"key": tid, "depends_on": parents[tid]})
            tasks.append(spec)
        body = {"id": workflow_id, "tasks": tasks}
        nodes = self.rng.sample(cluster.node_ids, len(cluster.node_ids))
        for attempt in range(SUBMIT_TRIES):
            node = nodes[attempt % len(nodes)]
            t_inv = now_ms()
            reply = call(cluster.url(node), "POST", "/v1/workflows", body, timeout=3.0)
            outcome = outcome_of_status(reply.status)
            history.record({
                "type": "submit", "process": "workflows", "node": node, "task_ids": ids,
                "batch": True, "t_inv": t_inv, "t_done": now_ms(), "outcome": outcome,
                "http_status": reply.status, "code": reply.error, "attempt": attempt,
            })
            if outcome != UNKNOWN:
                return outcome == OK
            self.ctx.stopping.wait(0.3)
        return False


class WorkflowFault:
    """At the first call start the load (it stops with the fault phase); every
    call after kills or cuts off the leader, or kills a worker holding leases."""

    def __init__(self) -> None:
        self.load: WorkflowLoad | None = None

    def __call__(self, ctx: Context) -> Active | None:
        if self.load is None or self.load.ctx is not ctx:
            self.load = WorkflowLoad(ctx)
            self.load.start()
            ctx.threads.append(self.load)  # the runner joins it before judging
            return Active("workflows-start", [], lambda: None)
        fault = ctx.rng.choice([kill_leader, kill_leader, partition_leader, kill_worker])
        return fault(ctx)
