"""Judging the ``workflows`` scenario from a run's history (pure, like the checker).

The load (``raftq.chaos.workflows``) records each workflow it submits as a
``workflow`` record: its id and, per task, the ids of its parents. The harness
workers record every claim and completion. Two things are judged:

- **order**: a child's first grant comes after all its parents' successes
  were committed. A parent's success is committed no earlier than the first
  send of the completion that won (the one whose lease token the parent's
  result carries), and a child's grant was committed before its claim was
  answered; so a child whose first claim was *answered* before a parent's
  winning completion was *sent* was claimed too early. A child granted
  although a parent did not end ``succeeded`` is wrong too (every task here
  runs when its parents succeed).
- **ends**: every workflow whose submission was acknowledged ended with every
  task ``succeeded`` (the harness workers never fail a task, so anything else
  is a hang, a loss or a wrong cascade).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from raftq.chaos.checker import DrainState, grants_of, result_token
from raftq.chaos.history import OK, Op
from raftq.chaos.timecheck import Expectations


@dataclass
class WorkflowVerdict(Expectations):
    workflows: int = 0
    acknowledged: int = 0
    tasks: int = 0
    edges: int = 0
    children_granted: int = 0
    """Tasks with parents that a worker was granted (and so were judged for order)."""


ORDER = "workflows: every child granted after its parents' successes"
ENDS = "workflows: every acknowledged workflow ended, all succeeded"


def check_workflows(ops: list[Op], drain: DrainState, tolerance_ms: float = 0.0
                    ) -> WorkflowVerdict:
    v = WorkflowVerdict()
    graphs = [op for op in ops if op["type"] == "workflow"]
    if not graphs:
        return v
    acked = {tid for op in ops if op["type"] == "submit" and op["outcome"] == OK
             and op.get("process") == "workflows" for tid in op["task_ids"]}
    grants = grants_of(ops)
    sent: dict[tuple[str, Any], float] = {}
    for op in ops:
        if op["type"] == "complete":
            key = (op["task_id"], op["token"])
            sent[key] = min(sent.get(key, float("inf")), float(op["t_inv"]))

    v.workflows = len(graphs)
    for graph in graphs:
        parents_of: dict[str, list[str]] = graph["parents"]
        v.tasks += len(parents_of)
        v.edges += sum(len(p) for p in parents_of.values())
        for child, parents in parents_of.items():
            if not parents or not grants.get(child):
                continue
            v.children_granted += 1
            first = grants[child][0]
            late = [p for p in parents if not _succeeded_before(p, first.t_done + tolerance_ms,
                                                                drain, sent)]
            v.expect(ORDER, not late,
                     f"task {child} of workflow {graph['id']} was granted (claim answered at "
                     f"{first.t_done:.0f}) before the success of its parents {late} was sent")
        if all(tid in acked for tid in parents_of):
            v.acknowledged += 1
            ended = {tid: (drain.tasks.get(tid) or {}).get("status") for tid in parents_of}
            bad = {tid: status for tid, status in ended.items() if status != "succeeded"}
            v.expect(ENDS, not bad, f"workflow {graph['id']} did not end succeeded: "
                     f"{dict(list(bad.items())[:3])}")
    return v


def _succeeded_before(parent: str, t: float, drain: DrainState,
                      sent: dict[tuple[str, Any], float]) -> bool:
    """Whether ``parent`` succeeded by a completion first sent before ``t``."""
    token = result_token(drain.tasks.get(parent))
    if token is None:
        return False
    return sent.get((parent, token), float("inf")) <= t


def summary_lines(verdict: dict[str, Any]) -> list[str]:
    if not verdict.get("workflows"):
        return []
    return [f"   workflows {verdict['workflows']} ({verdict['acknowledged']} acknowledged), "
            f"{verdict['tasks']} tasks, {verdict['edges']} edges; {verdict['children_granted']} "
            f"children granted, each checked against its parents' completions"]

