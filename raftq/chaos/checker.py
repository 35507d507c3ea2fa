"""The checker: a pure function from a run's history and final drain to a verdict.

It does no I/O and reads no clock, so it is tested on synthetic histories.

What it proves, and how each is decided soundly from what the harness saw:

- lost: a submission answered ``ok`` whose task, read back after healing
  through the leader, is missing or not terminal. Must be 0.
- unexpected: a task claimed, completed or read back that no submission ever
  named. Must be 0.
- duplicated: a task executed (a completion attempted) under two or more lease
  tokens. It is "while the lease was valid" when a later grant's response
  arrived before the earlier lease's expiry: the grant happened before the
  response, so the server handed out a lease that was still held. Must be 0.
  Otherwise "after expiry", which at-least-once delivery allows; reported.
- stale accepted: a completion accepted (answered ``ok``, or its token is the
  one in the final result) although a newer grant of the task had already been
  answered before the completion was sent. Two completions with different
  tokens both answered ``ok`` also count. Must be 0.
- liveness: after each heal, the first submission sent after it succeeds
  within ``recovery_limit_ms``; after the final heal every task is terminal
  within two lease periods. The same delay after each fault's start (the
  failover time: a new election, say) is measured and reported, not judged,
  since a majority down must stop writes.
- at most one leader per term, from the sampled ``/v1/node`` answers.
- all replicas reported the same digest at the same applied index.
- expectations a nemesis checked as it went (``expect`` records: a node
  refused to start on a corrupt file, a write through a full node got 507,
  no node died): every one must hold.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from raftq.chaos.history import OK, Op

TERMINAL = frozenset({"succeeded", "dead", "cancelled"})
EXAMPLES = 10


@dataclass
class DrainState:
    """What the runner read back after the final heal."""

    tasks: dict[str, dict[str, Any] | None]
    """Task id -> the task as read with ``consistency=leader``; ``None`` when 404."""
    unreadable: list[str] = field(default_factory=list)
    """Task ids the runner could not read at all (no answer)."""
    t_final_heal: float | None = None
    t_all_terminal: float | None = None
    """When every task was first seen terminal; ``None`` if never."""
    digests: dict[str, str] = field(default_factory=dict)
    digests_converged: bool = True
    """All replicas answered the same digest at the same applied index."""


@dataclass
class Grant:
    task_id: str
    token: Any
    worker_id: str
    lease_ms: float
    expires_ms: float
    t_inv: float
    t_done: float

    @property
    def granted_ms(self) -> float:
        """The server's own grant time, from its expiry and the requested lease."""
        return self.expires_ms - self.lease_ms


@dataclass
class Verdict:
    acknowledged: int = 0
    attempted: int = 0
    completed: int = 0
    dead: int = 0
    lost: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    duplicated_while_valid: list[str] = field(default_factory=list)
    duplicated_after_expiry: list[str] = field(default_factory=list)
    stale_accepted: list[str] = field(default_factory=list)
    stale_rejected: int = 0
    multiple_leaders: dict[str, list[str]] = field(default_factory=dict)
    recoveries: list[dict[str, Any]] = field(default_factory=list)
    slow_recoveries: list[dict[str, Any]] = field(default_factory=list)
    max_recovery_ms: float | None = None
    failovers: list[dict[str, Any]] = field(default_factory=list)
    """Per fault start: how long until a write sent after it succeeded (reported only)."""
    max_failover_ms: float | None = None
    drain_ms: float | None = None
    drain_limit_ms: float = 0.0
    drain_ok: bool = True
    digests_converged: bool = True
    ops: dict[str, dict[str, int]] = field(default_factory=dict)
    max_boot_ms: float | None = None
    """The longest a restarted node took to serve HTTP (reported, not judged)."""
    redelivered: int = 0
    """Tasks granted under more than one lease token (reported, not judged)."""
    real_worker_executions: int = 0
    """Runs of a task by the real ``raftq worker`` (its ``execute`` records)."""
    real_worker_reexecuted: int = 0
    """Tasks the real worker ran more than once (after a kill or pause: reported)."""
    expectations: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per kind of ``expect`` record: how often it held and how often not."""
    violations: list[str] = field(default_factory=list)
    """The ``expect`` records that did not hold, one line each."""

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.unreadable
            or self.unexpected
            or self.duplicated_while_valid
            or self.stale_accepted
            or self.multiple_leaders
            or self.slow_recoveries
            or not self.drain_ok
            or not self.digests_converged
            or self.violations
        )

    def failures(self) -> list[str]:
        """One line per violated property."""
        out: list[str] = []
        for name in ("lost", "unreadable", "unexpected", "duplicated_while_valid",
                     "stale_accepted"):
            items: list[str] = getattr(self, name)
            if items:
                out.append(f"{name}: {len(items)} (e.g. {', '.join(items[:3])})")
        if self.multiple_leaders:
            out.append(f"multiple leaders in terms {sorted(self.multiple_leaders)}")
        for rec in self.slow_recoveries:
            out.append(f"slow recovery after {rec['fault']}: {rec['recovery_ms']} ms")
        if not self.drain_ok:
            out.append(f"not every task terminal {self.drain_limit_ms:.0f} ms after heal "
                       f"(drain {self.drain_ms} ms)")
        if not self.digests_converged:
            out.append("replica digests differ")
        out += self.violations[:EXAMPLES]
        if len(self.violations) > EXAMPLES:
            out.append(f"... and {len(self.violations) - EXAMPLES} more expectations not met")
        return out

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("lost", "unreadable", "unexpected", "duplicated_while_valid",
                     "duplicated_after_expiry", "stale_accepted"):
            items = data.pop(name)
            data[name] = len(items)
            data[f"{name}_examples"] = items[:EXAMPLES]
        data["ok"] = self.ok
        data["failures"] = self.failures()
        return data


def check(
    ops: list[Op],
    drain: DrainState,
    *,
    lease_ms: float,
    recovery_limit_ms: float = 5000.0,
    tolerance_ms: float = 50.0,
) -> Verdict:
    """Judge one run. ``ops`` is the whole history, in any order."""
    v = Verdict(digests_converged=drain.digests_converged)
    _count_ops(ops, v)

    attempted: set[str] = set()
    acked: set[str] = set()
    for op in ops:
        if op["type"] == "submit":
            attempted.update(op["task_ids"])
            if op["outcome"] == OK:
                acked.update(op["task_ids"])
    v.attempted, v.acknowledged = len(attempted), len(acked)
    runs: dict[str, int] = defaultdict(int)
    for op in ops:
        if op["type"] == "execute":
            runs[op["task_id"]] += 1
    v.real_worker_executions = sum(runs.values())
    v.real_worker_reexecuted = sum(1 for n in runs.values() if n > 1)

    _check_lost(acked, drain, v)
    grants = grants_of(ops)
    completes = [op for op in ops if op["type"] == "complete"]
    seen = set(grants) | {op["task_id"] for op in completes}
    seen |= {tid for tid, task in drain.tasks.items() if task is not None}
    v.unexpected = sorted(seen - attempted)
    boots = [float(op["boot_ms"]) for op in ops if op["type"] == "boot"]
    v.max_boot_ms = max(boots) if boots else None
    v.redelivered = sum(1 for gs in grants.values() if len({g.token for g in gs}) > 1)
    _check_leases(grants, completes, ops, drain, v, tolerance_ms)
    _check_leaders(ops, v)
    _check_recovery(ops, v, recovery_limit_ms)
    _check_expectations(ops, v)
    v.drain_limit_ms = 2 * lease_ms
    if drain.t_final_heal is not None:
        if drain.t_all_terminal is None:
            v.drain_ok = False
        else:
            v.drain_ms = round(max(0.0, drain.t_all_terminal - drain.t_final_heal))
            v.drain_ok = v.drain_ms <= v.drain_limit_ms
    return v


def _count_ops(ops: list[Op], v: Verdict) -> None:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for op in ops:
        if "outcome" in op:
            counts[op["type"]][op["outcome"]] += 1
    v.ops = {k: dict(c) for k, c in sorted(counts.items())}


def _check_lost(acked: set[str], drain: DrainState, v: Verdict) -> None:
    unreadable = set(drain.unreadable)
    for tid in sorted(acked):
        if tid in unreadable:
            v.unreadable.append(tid)
            continue
        task = drain.tasks.get(tid)
        if task is None or task.get("status") not in TERMINAL:
            v.lost.append(tid)
    for task in drain.tasks.values():
        if task is None:
            continue
        if task.get("status") == "succeeded":
            v.completed += 1
        elif task.get("status") == "dead":
            v.dead += 1


def grants_of(ops: list[Op]) -> dict[str, list[Grant]]:
    grants: dict[str, list[Grant]] = defaultdict(list)
    for op in ops:
        if op["type"] != "claim" or op["outcome"] != OK:
            continue
        for t in op.get("tasks", []):
            grants[t["id"]].append(Grant(
                task_id=t["id"], token=t["token"], worker_id=op.get("worker_id", "?"),
                lease_ms=float(op["lease_ms"]), expires_ms=float(t["expires_ms"]),
                t_inv=float(op["t_inv"]), t_done=float(op["t_done"]),
            ))
    for lst in grants.values():
        lst.sort(key=lambda g: (g.granted_ms, g.t_done))
    return grants


def _valid_until(g: Grant, ops_by_token: dict[Any, list[Op]]) -> float:
    """The end of a grant's lease: its expiry, moved by extensions that succeeded."""
    end = g.expires_ms
    for op in ops_by_token.get(g.token, []):
        if op["type"] == "extend" and op["outcome"] == OK and op.get("expires_ms"):
            end = max(end, float(op["expires_ms"]))
    return end


def _check_leases(
    grants: dict[str, list[Grant]],
    completes: list[Op],
    ops: list[Op],
    drain: DrainState,
    v: Verdict,
    tolerance_ms: float,
) -> None:
    by_task: dict[str, list[Op]] = defaultdict(list)
    for op in completes:
        by_task[op["task_id"]].append(op)
        if op["outcome"] != OK and op.get("code") == "stale_lease":
            v.stale_rejected += 1
    for op in ops:
        if op["type"] == "extend":
            by_task[op["task_id"]].append(op)

    for tid in sorted(set(grants) | set(by_task)):
        task_grants = grants.get(tid, [])
        task_ops = by_task.get(tid, [])
        ops_by_token: dict[Any, list[Op]] = defaultdict(list)
        for op in task_ops:
            ops_by_token[op["token"]].append(op)

        # Duplicates: executed under more than one token.
        executed = {op["token"] for op in task_ops if op["type"] == "complete"}
        double_grant = False
        for i, earlier in enumerate(task_grants):
            end = _valid_until(earlier, ops_by_token)
            for later in task_grants[i + 1:]:
                if later.token != earlier.token and later.t_done < end - tolerance_ms:
                    double_grant = True
        if double_grant:
            v.duplicated_while_valid.append(tid)
        elif len(executed) > 1:
            v.duplicated_after_expiry.append(tid)

        # Stale tokens accepted.
        if _stale_accepted(task_grants, task_ops, drain.tasks.get(tid)):
            v.stale_accepted.append(tid)


def _stale_accepted(
    task_grants: list[Grant], task_ops: list[Op], task: dict[str, Any] | None
) -> bool:
    completes = [op for op in task_ops if op["type"] == "complete"]
    acked_tokens = {op["token"] for op in completes if op["outcome"] == OK}
    if len(acked_tokens) > 1:
        return True
    order = {g.token: i for i, g in enumerate(task_grants)}

    def superseded_before(token: Any, t: float) -> bool:
        """A newer grant than ``token`` had been answered before time ``t``."""
        if token not in order:
            return False
        return any(g.t_done < t for g in task_grants[order[token] + 1:])

    for op in completes:
        if op["outcome"] == OK and superseded_before(op["token"], op["t_inv"]):
            return True
    winner = result_token(task)
    if winner is not None:
        sent = [op["t_inv"] for op in completes if op["token"] == winner]
        if sent and superseded_before(winner, min(sent)):
            return True
    return False


def result_token(task: dict[str, Any] | None) -> Any:
    """The lease token the harness worker wrote into the winning result."""
    if not task or task.get("status") != "succeeded":
        return None
    result = task.get("result")
    if isinstance(result, dict):
        return result.get("token")
    return None


def _check_expectations(ops: list[Op], v: Verdict) -> None:
    for op in ops:
        if op["type"] != "expect":
            continue
        counts = v.expectations.setdefault(str(op["what"]), {"held": 0, "failed": 0})
        if op["ok"]:
            counts["held"] += 1
        else:
            counts["failed"] += 1
            v.violations.append(f"{op['what']}: {op.get('detail', '')}".rstrip(": "))


def _check_leaders(ops: list[Op], v: Verdict) -> None:
    leaders: dict[int, set[str]] = defaultdict(set)
    for op in ops:
        if op["type"] == "node_status" and op.get("role") == "leader":
            leaders[int(op["term"])].add(str(op["node"]))
    v.multiple_leaders = {
        str(term): sorted(nodes) for term, nodes in sorted(leaders.items()) if len(nodes) > 1
    }


def _check_recovery(ops: list[Op], v: Verdict, limit_ms: float) -> None:
    submits = sorted(
        (op for op in ops if op["type"] == "submit"), key=lambda op: float(op["t_inv"])
    )

    def first_ok_after(t: float) -> float | None:
        return min((float(s["t_done"]) for s in submits
                    if s["outcome"] == OK and float(s["t_inv"]) >= t), default=None)

    for op in ops:
        if op["type"] != "fault":
            continue
        if op.get("phase") == "start":
            first = first_ok_after(float(op["t"]))
            v.failovers.append({
                "fault": op.get("fault"), "targets": op.get("targets", []), "t_start": op["t"],
                "failover_ms": None if first is None else round(first - float(op["t"])),
            })
            continue
        t_heal = float(op["t"])
        first_ok = first_ok_after(t_heal)
        rec: dict[str, Any] = {
            "fault": op.get("fault"),
            "targets": op.get("targets", []),
            "t_heal": t_heal,
            "recovery_ms": None if first_ok is None else round(first_ok - t_heal),
        }
        v.recoveries.append(rec)
        if first_ok is None or first_ok - t_heal > limit_ms:
            v.slow_recoveries.append(rec)
    times = [r["recovery_ms"] for r in v.recoveries if r["recovery_ms"] is not None]
    v.max_recovery_ms = max(times) if times else None
    failover_times = [f["failover_ms"] for f in v.failovers if f["failover_ms"] is not None]
    v.max_failover_ms = max(failover_times) if failover_times else None
