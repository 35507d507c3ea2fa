"""The faults, and the scenarios that schedule them.

A fault is a function of the run's ``Context`` that does the damage and
returns an ``Active`` fault: what it hit and how to heal it. A scenario is a
fault plus how long to hold it and how long to wait between two; the
``Nemesis`` repeats it on a schedule drawn from the run's seed until the run's
time is up, recording each start and heal in the history.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from raftq.chaos.cluster import Cluster, wait_for
from raftq.chaos.disks import DiskPlan, Disks
from raftq.chaos.history import HistoryWriter, now_ms
from raftq.chaos.net import Faults, Network, link, partition
from raftq.chaos.workload import WorkerPool


@dataclass
class Context:
    cluster: Cluster
    net: Network
    workers: WorkerPool
    history: HistoryWriter
    rng: random.Random
    lease_ms: int
    stopping: threading.Event = field(default_factory=threading.Event)
    disks: Disks | None = None
    """The nodes' own filesystems, when the scenario has them."""
    tag: str = "chaos"
    """The run's tag, which ids made by faults start with."""
    threads: list[threading.Thread] = field(default_factory=list)
    """Watchers a fault started; the runner joins them before judging."""
    count: int = 0
    """Faults done so far, for scenarios that go through variants in turn."""

    def leader_or_random(self) -> str:
        leader = self.cluster.leader()
        return leader if leader is not None else self.rng.choice(self.cluster.node_ids)

    def others(self, node: str) -> list[str]:
        return [n for n in self.cluster.node_ids if n != node]


@dataclass
class Active:
    fault: str
    targets: list[str]
    heal: Callable[[], None]
    t_start: float | None = None
    """When the damage was done, if later than the fault was called (a search came first)."""


Fault = Callable[[Context], Active | None]


@dataclass
class Scenario:
    name: str
    description: str
    fault: Fault
    nodes: int = 3
    hold_s: tuple[float, float] = (3.0, 8.0)
    quiet_s: tuple[float, float] = (3.0, 6.0)
    lease_holds: tuple[float, float] | None = None
    """Hold for this many lease periods instead of ``hold_s``."""
    real_workers: int = 0
    """How many real ``raftq worker`` processes run beside the harness's workers."""
    node_settings: dict[str, Any] = field(default_factory=dict)
    """Extra node config, e.g. compaction so often that restarts load snapshots."""
    workload: dict[str, Any] = field(default_factory=dict)
    """Overrides of the run's ``Settings`` (``lease_ms``, ``submit_rate``, ``work_ms``...)."""
    disks: DiskPlan | None = None
    """Give each node's data a loop filesystem of its own (root only)."""
    must_fail: bool = False
    """A control: the run shows that the checker catches the fault (``--all`` skips it)."""
    timers: bool = False
    """Run the ``TimerProbe``: delays and leases timed by this machine's clock."""
    members: int = 0
    """How many of ``nodes`` form the cluster at the start (0: all); the rest are
    spares a fault may add (``raftq.chaos.replace``)."""


# node faults


def kill_leader(ctx: Context) -> Active:
    node = ctx.leader_or_random()
    ctx.cluster.kill(node)
    return Active("kill-leader", [node], lambda: _start(ctx, [node]))


def kill_random(ctx: Context) -> Active:
    node = ctx.rng.choice(ctx.cluster.node_ids)
    ctx.cluster.kill(node)
    return Active("kill-random", [node], lambda: _start(ctx, [node]))


def kill_majority(ctx: Context) -> Active:
    ids = ctx.cluster.node_ids
    nodes = sorted(ctx.rng.sample(ids, len(ids) // 2 + 1))
    for node in nodes:
        ctx.cluster.kill(node)
    return Active("kill-majority", nodes, lambda: _start(ctx, nodes))


def crash_all(ctx: Context) -> Active:
    nodes = list(ctx.cluster.node_ids)
    for node in nodes:
        ctx.cluster.kill(node)
    return Active("crash-all", nodes, lambda: _start(ctx, nodes))


def _start(ctx: Context, nodes: list[str]) -> None:
    """Restart crashed nodes; the heal counts from when they serve HTTP again.

    Booting the interpreter and loading the journal takes seconds on a loaded
    machine; the liveness bound (writes within 5 s) is about Raft getting a
    leader back once the processes are up, so it starts then. The boot time is
    recorded beside it.
    """
    t0 = now_ms()
    for node in nodes:
        ctx.cluster.start(node)
    ctx.cluster.wait_serving(nodes)
    ctx.history.record({"type": "boot", "targets": nodes, "t": t0,
                        "boot_ms": round(now_ms() - t0)})


def pause_leader(ctx: Context) -> Active:
    node = ctx.leader_or_random()
    ctx.cluster.pause(node)
    return Active("pause-leader", [node], lambda: ctx.cluster.resume(node))


def rolling_restart(ctx: Context) -> Active:
    """Each node in turn: SIGTERM, start again, wait until it answers and a leader exists."""
    order = ctx.rng.sample(ctx.cluster.node_ids, len(ctx.cluster.node_ids))
    for node in order:
        if ctx.stopping.is_set():
            break
        ctx.cluster.terminate(node)
        ctx.cluster.start(node)
        wait_for(lambda n=node: ctx.cluster.status(n) is not None  # type: ignore[misc]
                 and ctx.cluster.leader() is not None, timeout=20, interval=0.2)
    return Active("rolling-restart", order, lambda: None)


# network faults


def _net_fault(ctx: Context, name: str, targets: list[str], faults: Faults) -> Active:
    ctx.net.apply(faults)
    return Active(name, targets, lambda: ctx.net.apply(Faults()))


def partition_leader(ctx: Context) -> Active:
    leader = ctx.leader_or_random()
    blocked = partition([{leader}, set(ctx.others(leader))])
    return _net_fault(ctx, "partition-leader", [leader], Faults(blocked=blocked))


def partition_halves(ctx: Context) -> Active:
    nodes = ctx.rng.sample(ctx.cluster.node_ids, len(ctx.cluster.node_ids))
    half = len(nodes) // 2
    minority, majority = set(nodes[:half]), set(nodes[half:])
    return _net_fault(ctx, "partition-halves", sorted(minority),
                      Faults(blocked=partition([minority, majority])))


def partition_bridge(ctx: Context) -> Active:
    """Two halves that cannot see each other, and one node that sees both."""
    nodes = ctx.rng.sample(ctx.cluster.node_ids, len(ctx.cluster.node_ids))
    bridge, rest = nodes[0], nodes[1:]
    half = len(rest) // 2
    groups = [{bridge, *rest[:half]}, {bridge, *rest[half:]}]
    return _net_fault(ctx, "partition-bridge", [bridge], Faults(blocked=partition(groups)))


def link_loss(ctx: Context) -> Active:
    a, b = ctx.rng.sample(ctx.cluster.node_ids, 2)
    loss = round(ctx.rng.uniform(0.2, 0.5), 2)
    return _net_fault(ctx, f"link-loss-{loss}", sorted([a, b]),
                      Faults(loss={link(a, b): loss}))


# worker faults


def _holding_worker(ctx: Context) -> str | None:
    found: list[str] = []

    def pick() -> bool:
        holding = ctx.workers.holding()
        if holding:
            found.append(ctx.rng.choice(sorted(holding)))
        return bool(holding)

    wait_for(pick, timeout=5.0, interval=0.02)
    return found[0] if found else None


def kill_worker(ctx: Context) -> Active | None:
    worker = _holding_worker(ctx)
    if worker is None:
        return None
    t_start = now_ms()
    ctx.workers.kill(worker)

    def replace() -> None:
        ctx.workers.spawn(real=ctx.workers.is_real(worker))

    return Active("kill-worker", [worker], replace, t_start)


def pause_worker(ctx: Context) -> Active | None:
    worker = _holding_worker(ctx)
    if worker is None:
        return None
    t_start = now_ms()
    ctx.workers.pause(worker)
    return Active("pause-worker", [worker], lambda: ctx.workers.resume(worker), t_start)


def mixed(ctx: Context) -> Active | None:
    """One of the single-node, network and worker faults, drawn from the seed."""
    fault = ctx.rng.choice([kill_leader, kill_random, pause_leader, partition_leader,
                            link_loss, kill_worker, pause_worker, partition_halves])
    return fault(ctx)


# Compact the log every few seconds: restarted and lagging nodes then catch up
# from snapshots (PySyncObj's fullDumpFile and snapshot transfer), not the log.
COMPACT_OFTEN = {"log_compaction_min_entries": 200, "log_compaction_min_time_ms": 5000}

SCENARIOS: dict[str, Scenario] = {s.name: s for s in [
    Scenario("kill-leader", "kill -9 the leader, restart it", kill_leader),
    Scenario("kill-random", "kill -9 a random node, restart it", kill_random),
    Scenario("kill-majority", "kill -9 a majority, restart it", kill_majority),
    Scenario("pause-leader", "SIGSTOP the leader past the election timeout, SIGCONT",
             pause_leader, hold_s=(2.0, 6.0)),
    Scenario("partition-leader", "cut the leader off from the majority", partition_leader),
    Scenario("partition-halves", "five nodes split 2 | 3", partition_halves, nodes=5),
    Scenario("partition-bridge", "five nodes: two halves joined by one bridge node",
             partition_bridge, nodes=5),
    Scenario("crash-all", "kill -9 every node, restart them all", crash_all, hold_s=(1.0, 4.0)),
    Scenario("rolling-restart", "SIGTERM and restart each node in turn", rolling_restart,
             hold_s=(0.0, 0.0), quiet_s=(2.0, 5.0)),
    Scenario("kill-worker", "kill -9 a worker holding leases, start another", kill_worker,
             hold_s=(0.5, 2.0), quiet_s=(2.0, 4.0), real_workers=1),
    Scenario("pause-worker", "SIGSTOP a worker holding leases past its lease, SIGCONT",
             pause_worker, lease_holds=(1.5, 2.5), quiet_s=(2.0, 4.0), real_workers=1),
    Scenario("link-loss", "drop 20-50% of the packets on one link", link_loss,
             hold_s=(5.0, 12.0)),
    Scenario("crash-all-snapshots", "crash-all with the log compacted every 5 s", crash_all,
             hold_s=(1.0, 4.0), node_settings=COMPACT_OFTEN),
    Scenario("lease-race", "kill the leader while slow tasks outlive their 2 s leases, so "
             "completions race expiry and re-claims", kill_leader,
             workload={"lease_ms": 2000, "work_ms": (100, 1400), "max_tasks": 2,
                       "submit_rate": 0.5, "workers": 6}),
    Scenario("bulk", "batches of up to 200 tasks and claims of 100 while a random node is "
             "killed; the log compacted every 5 s, so restarts load large snapshots",
             kill_random, node_settings=COMPACT_OFTEN,
             workload={"batch_max": 200, "submit_rate": 1.0, "max_tasks": 100,
                       "work_ms": (0, 1)}),
    Scenario("mixed", "a random node, network or worker fault each time; log compacted "
             "every 5 s", mixed, real_workers=1, node_settings=COMPACT_OFTEN),
]}

SMOKE = ["kill-leader", "partition-leader", "pause-worker", "crash-all"]


class Nemesis(threading.Thread):
    """Runs one scenario's faults until stopped; records every start and heal."""

    def __init__(self, scenario: Scenario, ctx: Context) -> None:
        super().__init__(name="nemesis", daemon=True)
        self.scenario = scenario
        self.ctx = ctx
        self.active: Active | None = None
        self.timeline: list[dict[str, object]] = []
        self.after_heal: Callable[[], None] = lambda: None
        self._lock = threading.Lock()

    def hold_seconds(self) -> float:
        s, rng = self.scenario, self.ctx.rng
        if s.lease_holds is not None:
            return rng.uniform(*s.lease_holds) * self.ctx.lease_ms / 1000
        return rng.uniform(*s.hold_s)

    def run(self) -> None:
        ctx = self.ctx
        while not ctx.stopping.wait(ctx.rng.uniform(*self.scenario.quiet_s)):
            hold = self.hold_seconds()
            with self._lock:
                t_start = now_ms()
                active = self.scenario.fault(ctx)
                if active is None:
                    continue
                ctx.count += 1
                self.active = active
                self._record("start", active, active.t_start or t_start)
            ctx.stopping.wait(hold)
            self.heal()
            self.after_heal()

    def heal(self) -> None:
        """Heal the active fault, if any (also called once the run is over)."""
        with self._lock:
            active, self.active = self.active, None
            if active is not None:
                active.heal()
                self._record("heal", active, now_ms())

    def _record(self, phase: str, active: Active, t: float) -> None:
        op = {"type": "fault", "phase": phase, "fault": active.fault,
              "targets": active.targets, "t": t}
        self.ctx.history.record(dict(op))
        self.timeline.append(op)
