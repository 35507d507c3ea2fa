"""One chaos run, start to verdict.

Bring up the network and the nodes, start the workload and the sampler, let
the nemesis hit the cluster for the run's duration, heal everything, drain
(stop submitting, let the workers finish, read every task back through the
leader, compare replica digests), then judge the history with the checker and
write ``report.json`` and ``summary.txt`` into the run's directory. Node logs
and data are deleted when the run passes, kept when it fails.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raftq.chaos.checker import DrainState, Verdict, check
from raftq.chaos.cluster import Cluster
from raftq.chaos.disks import Disks
from raftq.chaos.history import HistoryWriter, now_ms, read_history
from raftq.chaos.nemesis import Context, Nemesis, Scenario
from raftq.chaos.net import Faults, NetnsNetwork, Network, ProxyNetwork, netns_available
from raftq.chaos.probes import TimerProbe
from raftq.chaos.readback import ReadBack
from raftq.chaos.summary import summarize
from raftq.chaos.timecheck import check_time
from raftq.chaos.wfcheck import check_workflows
from raftq.chaos.workload import StatusSampler, Submitter, WorkerPool, submit

# Relative to where the harness is run: chaos/runs in a checkout (git-ignored).
RUNS_DIR = Path(os.environ.get("RAFTQ_CHAOS_RUNS", "chaos/runs")).resolve()


@dataclass
class Settings:
    duration_s: float
    seed: int
    mode: str = "auto"
    lease_ms: int = 5000
    submitters: int = 3
    submit_rate: float = 2.0
    workers: int = 4
    keep: bool = False
    recovery_limit_ms: float = 5000.0
    node_settings: dict[str, Any] | None = None
    work_ms: tuple[int, int] = (5, 40)
    """Each task's simulated work in a harness worker, drawn from this range."""
    max_tasks: int = 8
    batch_max: int = 8
    """The largest batch a submitter sends (40% of its submissions are batches)."""


DEFAULT_NODE_SETTINGS: dict[str, Any] = {"tick_ms": 200}


def make_network(mode: str, node_ids: list[str], seed: int) -> Network:
    if mode == "auto":
        mode = "netns" if netns_available() is None else "proxy"
    if mode == "netns":
        why = netns_available()
        if why is not None:
            raise SystemExit(f"netns mode unavailable: {why}")
        return NetnsNetwork(node_ids, tag=f"rqc{secrets.token_hex(2)}")
    return ProxyNetwork(node_ids, seed=seed)


class Run:
    def __init__(self, scenario: Scenario, settings: Settings, run_dir: Path | None = None) -> None:
        self.scenario = scenario
        settings = dataclasses.replace(settings, **scenario.workload)
        self.settings = settings
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.run_dir = run_dir or RUNS_DIR / f"{stamp}-{scenario.name}-s{settings.seed}"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.rng = random.Random(settings.seed)
        node_ids = [f"n{i}" for i in range(1, scenario.nodes + 1)]
        self.net = make_network(settings.mode, node_ids, settings.seed)
        self.history = HistoryWriter(self.run_dir / "history-runner.jsonl", "runner")
        self.cluster = Cluster(
            self.net, self.run_dir, secret=secrets.token_hex(16),
            node_settings={**DEFAULT_NODE_SETTINGS, **scenario.node_settings,
                           **(settings.node_settings or {})},
        )
        if scenario.members:
            self.cluster.node_ids = node_ids[:scenario.members]
            self.cluster.spares = node_ids[scenario.members:]
        self.reads = ReadBack(self.cluster, self.run_dir, self.log)
        self.workers = WorkerPool(self.cluster, self.run_dir, lease_ms=settings.lease_ms,
                                  seed=settings.seed, max_tasks=settings.max_tasks,
                                  work_ms=settings.work_ms)
        self.disks = (Disks(scenario.disks, self.run_dir.name, node_ids)
                      if scenario.disks is not None else None)
        self.keep_data = settings.keep
        self.abort = threading.Event()
        """Set (by a signal) to end the fault phase early; the run still heals and judges."""
        self.timing: dict[str, Any] = {}
        """Delays, leases and isolated nodes timed, and the clock's lag (``timecheck``)."""
        self.workflows: dict[str, Any] = {}
        """The ``workflows`` scenario's counts (``wfcheck``)."""

    def log(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {self.scenario.name}: {message}", flush=True)

    def execute(self) -> dict[str, Any]:
        s = self.settings
        # Every harness call, worker and submitter (children inherit it) uses the
        # admin key the nodes bootstrap.
        os.environ["RAFTQ_API_KEY"] = self.cluster.admin_key
        self.net.setup()
        try:
            if self.disks is not None:
                self.cluster.data_dirs = self.disks.setup()
            return self._execute(s)
        finally:
            self.workers.stop_all(timeout=5)
            self.cluster.stop_all()
            self.cluster.close()
            try:
                if self.disks is not None:
                    self.disks.teardown(self.run_dir / "data" if self.keep_data else None)
            finally:
                self.net.teardown()
                self.history.close()

    def _execute(self, s: Settings) -> dict[str, Any]:
        self.log(f"network {self.net.mode}, {len(self.cluster.node_ids)} nodes, "
                 f"{s.duration_s:.0f} s, seed {s.seed}, dir {self.run_dir}")
        self.cluster.write_configs()
        for node in self.cluster.node_ids:
            self.cluster.start(node)
        leader = self.cluster.wait_leader(timeout=60)
        if leader is None:
            raise RuntimeError(f"no leader elected within 60 s; logs in {self.run_dir}/logs")
        if not self.cluster.wait_keys(timeout=30):
            raise RuntimeError(f"the nodes did not install the admin key within 30 s; logs in "
                               f"{self.run_dir}/logs")
        self.log(f"leader {leader}")

        sampler = StatusSampler(self.cluster, self.history)
        sampler.start()
        tag = f"{self.scenario.name}-{s.seed}-{secrets.token_hex(3)}"
        submitters = [
            Submitter(f"s{i}", self.cluster, self.history, seed=s.seed * 100 + i,
                      rate_per_s=s.submit_rate, run_tag=tag, batch_max=s.batch_max)
            for i in range(1, s.submitters + 1)
        ]
        for sub in submitters:
            sub.start()
        for _ in range(s.workers):
            self.workers.spawn()
        for _ in range(self.scenario.real_workers):
            self.workers.spawn(real=True)

        ctx = Context(self.cluster, self.net, self.workers, self.history, self.rng, s.lease_ms,
                      disks=self.disks, tag=tag)
        timers = None
        if self.scenario.timers:
            timers = TimerProbe(self.cluster, self.history, seed=s.seed + 2, run_tag=tag)
            timers.start()
        nemesis = Nemesis(self.scenario, ctx)
        probe_seq = iter(range(1, 1_000_000))
        probe_lock = threading.Lock()
        probe_rng = random.Random(s.seed + 1)  # keeps the nemesis's draws the seed's alone

        def probe() -> None:
            """Write until a write succeeds, so every heal has a measured recovery."""
            with probe_lock:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    ids = [f"{tag}-probe-{next(probe_seq)}"]
                    if submit(self.cluster, self.history, ids, probe_rng, process="probe"):
                        return
                    time.sleep(0.1)

        nemesis.after_heal = probe
        nemesis.start()
        self.abort.wait(s.duration_s)
        ctx.stopping.set()
        nemesis.join(timeout=120)
        nemesis.heal()
        self._make_whole()
        if timers is not None:
            timers.stopping.set()
            timers.join(timeout=60)
        t_final_heal = now_ms()
        self.history.record({"type": "fault", "phase": "heal", "fault": "final",
                             "targets": [], "t": t_final_heal})
        backlog = self.reads.backlog()
        self.log(f"healed; draining {backlog} unfinished tasks")
        probe()
        for sub in submitters:
            sub.stopping.set()
        for sub in submitters:
            sub.join(timeout=10)

        if timers is not None:
            timers.finish()
        for thread in ctx.threads:
            thread.join(timeout=90)
        t_all_terminal = self.reads.wait_terminal(timeout=2 * s.lease_ms / 1000 + 60)
        self.workers.stop_all()
        ids = self.reads.attempted_ids()
        tasks, unreadable = self.reads.read_back(ids)
        converged, digests = self.reads.digests()
        clock_lag_ms = self.reads.clock_lag()
        sampler.stopping.set()
        sampler.join(timeout=5)

        drain = DrainState(tasks=tasks, unreadable=unreadable, t_final_heal=t_final_heal,
                           t_all_terminal=t_all_terminal, digests=digests,
                           digests_converged=converged)
        self.history.close()
        ops = read_history(sorted(self.run_dir.glob("history-*.jsonl")))
        verdict = check(ops, drain, lease_ms=s.lease_ms,
                        recovery_limit_ms=s.recovery_limit_ms)
        timing = check_time(ops, tick_ms=float(self.cluster.node_settings.get("tick_ms", 100)))
        verdict.expectations.update(timing.expectations)
        verdict.violations += timing.failures
        flows = check_workflows(ops, drain)
        verdict.expectations.update(flows.expectations)
        verdict.violations += flows.failures
        self.workflows = {k: getattr(flows, k) for k in
                          ("workflows", "acknowledged", "tasks", "edges", "children_granted")}
        self.timing = {"timers": timing.timers, "isolations": timing.isolations,
                       "offsets": timing.offsets, "clock_lag_ms": clock_lag_ms}
        return self._report(verdict, nemesis, drain)

    def _make_whole(self) -> None:
        """Undo whatever is still broken: network, paused or dead nodes and workers."""
        self.net.apply(Faults())
        for node in self.cluster.node_ids:
            self.cluster.resume(node)
            if not self.cluster.alive(node):
                self.cluster.start(node)
        self.cluster.wait_serving(self.cluster.node_ids)
        for worker in list(self.workers.paused):
            self.workers.resume(worker)
        alive = self.workers.alive()
        real = sum(self.workers.is_real(w) for w in alive)
        for _ in range(self.settings.workers - (len(alive) - real)):
            self.workers.spawn()
        for _ in range(self.scenario.real_workers - real):
            self.workers.spawn(real=True)

    def _report(self, verdict: Verdict, nemesis: Nemesis, drain: DrainState) -> dict[str, Any]:
        s = self.settings
        report = {
            "scenario": self.scenario.name,
            "description": self.scenario.description,
            "seed": s.seed,
            "duration_s": s.duration_s,
            "network": self.net.mode,
            "nodes": len(self.cluster.node_ids),
            "lease_ms": s.lease_ms,
            "run_dir": str(self.run_dir),
            "verdict": verdict.to_json(),
            "timing": self.timing,
            "workflows": self.workflows,
            "must_fail": self.scenario.must_fail,
            "timeline": nemesis.timeline,
            "digests": drain.digests,
        }
        (self.run_dir / "report.json").write_text(json.dumps(report, indent=2))
        summary = summarize(report)
        (self.run_dir / "summary.txt").write_text(summary + "\n")
        print(summary, flush=True)
        self.keep_data = s.keep or not verdict.ok
        if not self.keep_data:
            for sub in ("data", "logs"):
                shutil.rmtree(self.run_dir / sub, ignore_errors=True)
        return report
