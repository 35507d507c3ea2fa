"""The load a chaos run puts on the cluster, and the observers beside it.

- ``Submitter`` threads send tasks with unique ids to random nodes, singly or
  in batches, retrying an unknown outcome with the same ids on another node.
- ``WorkerPool`` runs harness worker processes (``chaos.worker``) and knows
  which of them hold leases, for the nemesis to kill or pause.
- ``StatusSampler`` asks every node for ``/v1/node`` a few times a second and
  records the answers: the leader-per-term check reads them.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from raftq.chaos.cluster import Cluster
from raftq.chaos.history import OK, UNKNOWN, HistoryWriter, now_ms, outcome_of_status
from raftq.chaos.http import call

PRIORITIES = ["normal", "normal", "high", "low", "critical"]
SUBMIT_TRIES = 3


class Submitter(threading.Thread):
    def __init__(
        self, name: str, cluster: Cluster, history: HistoryWriter, *, seed: int,
        rate_per_s: float, run_tag: str, batch_max: int = 8,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.cluster = cluster
        self.history = history
        self.rng = random.Random(seed)
        self.interval = 1.0 / rate_per_s
        self.run_tag = run_tag
        self.batch_max = batch_max
        self.stopping = threading.Event()
        self._seq = 0

    def _next_id(self) -> str:
        self._seq += 1
        return f"{self.run_tag}-{self.name}-{self._seq}"

    def run(self) -> None:
        while not self.stopping.wait(self.interval * self.rng.uniform(0.5, 1.5)):
            n = 1 if self.rng.random() < 0.6 else self.rng.randint(2, self.batch_max)
            submit(self.cluster, self.history, [self._next_id() for _ in range(n)], self.rng,
                   process=self.name)


def task_spec(task_id: str, rng: random.Random) -> dict[str, Any]:
    return {"name": "chaos.echo", "id": task_id, "args": [task_id],
            "priority": rng.choice(PRIORITIES), "max_attempts": 20}


def submit(
    cluster: Cluster, history: HistoryWriter, ids: list[str], rng: random.Random,
    *, process: str,
) -> bool:
    """Submit ``ids`` (a batch when several); True once an attempt is acknowledged."""
    nodes = rng.sample(cluster.node_ids, len(cluster.node_ids))
    specs = [task_spec(i, rng) for i in ids]
    for attempt in range(SUBMIT_TRIES):
        node = nodes[attempt % len(nodes)]
        if len(ids) == 1:
            path, body = "/v1/tasks", specs[0]
        else:
            path, body = "/v1/tasks/batch", {"tasks": specs}
        t_inv = now_ms()
        reply = call(cluster.url(node), "POST", path, body, timeout=3.0)
        outcome = outcome_of_status(reply.status)
        history.record({
            "type": "submit", "process": process, "node": node, "task_ids": ids,
            "batch": len(ids) > 1, "t_inv": t_inv, "t_done": now_ms(), "outcome": outcome,
            "http_status": reply.status, "code": reply.error, "attempt": attempt,
        })
        if outcome != UNKNOWN:
            return outcome == OK
    return False


class WorkerPool:
    """Harness workers (``w1``...) and, where asked, real ``raftq worker``s (``rw1``...)."""

    def __init__(
        self, cluster: Cluster, run_dir: Path, *, lease_ms: int, seed: int,
        max_tasks: int = 8, work_ms: tuple[int, int] = (5, 40),
    ) -> None:
        self.cluster = cluster
        self.run_dir = run_dir
        self.lease_ms = lease_ms
        self.seed = seed
        self.max_tasks = max_tasks
        self.work_ms = work_ms
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.paused: set[str] = set()
        self._count = 0

    def spawn(self, real: bool = False) -> str:
        """Start a harness worker, or with ``real`` the project's own ``raftq worker``."""
        self._count += 1
        worker_id = f"{'rw' if real else 'w'}{self._count}"
        nodes = ",".join(self.cluster.urls)
        if real:
            cmd = [sys.executable, "-m", "raftq", "worker", "--app", "raftq.chaos.app",
                   "--nodes", nodes, "--worker-id", worker_id, "--lease-ms", str(self.lease_ms),
                   "--concurrency", "2", "--claim-wait-ms", "1000", "--shutdown-timeout", "5"]
            env = {**os.environ,
                   "CHAOS_EXEC_LOG": str(self.run_dir / f"history-exec-{worker_id}.jsonl")}
        else:
            cmd = [sys.executable, "-m", "raftq.chaos.worker", "--worker-id", worker_id,
                   "--nodes", nodes, "--history", str(self.run_dir / f"history-{worker_id}.jsonl"),
                   "--held-file", str(self._held_file(worker_id)),
                   "--lease-ms", str(self.lease_ms), "--seed", str(self.seed * 1000 + self._count),
                   "--max-tasks", str(self.max_tasks),
                   "--work-ms", f"{self.work_ms[0]},{self.work_ms[1]}"]
            env = dict(os.environ)
        log = (self.run_dir / "logs" / f"{worker_id}.log").open("ab")
        self.procs[worker_id] = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env
        )
        log.close()
        return worker_id

    @staticmethod
    def is_real(worker_id: str) -> bool:
        return worker_id.startswith("rw")

    def _held_file(self, worker_id: str) -> Path:
        return self.run_dir / f"{worker_id}.held"

    def alive(self) -> list[str]:
        return [w for w, p in self.procs.items() if p.poll() is None]

    def holding(self) -> list[str]:
        """Live, running workers that hold at least one lease now (real ones: maybe)."""
        out = []
        for w in self.alive():
            if w in self.paused:
                continue
            if self.is_real(w):
                out.append(w)
                continue
            try:
                held = int(self._held_file(w).read_text() or 0)
            except (OSError, ValueError):
                held = 0
            if held:
                out.append(w)
        return out

    def kill(self, worker_id: str) -> None:
        self.procs[worker_id].kill()
        self.procs[worker_id].wait(timeout=10)
        self.paused.discard(worker_id)

    def pause(self, worker_id: str) -> None:
        self.procs[worker_id].send_signal(signal.SIGSTOP)
        self.paused.add(worker_id)

    def resume(self, worker_id: str) -> None:
        if worker_id in self.paused and self.procs[worker_id].poll() is None:
            self.procs[worker_id].send_signal(signal.SIGCONT)
        self.paused.discard(worker_id)

    def stop_all(self, timeout: float = 10.0) -> None:
        for w in list(self.paused):
            self.resume(w)
        for w in self.alive():
            self.procs[w].send_signal(signal.SIGTERM)
        for w, p in self.procs.items():
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill(w)


class StatusSampler(threading.Thread):
    def __init__(self, cluster: Cluster, history: HistoryWriter, interval: float = 0.3) -> None:
        super().__init__(name="sampler", daemon=True)
        self.cluster = cluster
        self.history = history
        self.interval = interval
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            t = now_ms()
            for node, st in self.cluster.statuses(timeout=0.8).items():
                if st is None:
                    continue
                self.history.record({
                    "type": "node_status", "node": node, "t": t, "role": st.role,
                    "term": st.term, "leader": st.leader, "applied_index": st.applied_index,
                    "commit_index": st.raw.get("commit_index"),
                    "clock_offset_ms": st.raw.get("clock_offset_ms"),
                })
