"""Probes beside the workload, for the faults about time and isolation.

- ``TimerProbe`` measures, by this machine's clock, when delays and leases
  fire: it submits a task with a delay to a queue of its own and long-polls
  for it (a ``timer`` record of kind ``delay``), then takes a lease on it with
  an immediate claim and long-polls until the task is granted again (kind
  ``lease``), and completes it. Each record holds when the timer was due,
  as a window (``due_lo``, ``due_hi``: the request's send and answer times
  plus the duration), and ``seen``, when the answer that showed it fired
  arrived. The checker (``raftq.chaos.timecheck``) judges them.
- ``IsolationWatch`` follows one node cut off from its peers: how long until
  it stops being ready and answers a write with ``503 no_leader`` (an
  ``isolation`` record), and after the heal how long until it is ready and
  accepts a write again (a ``rejoin`` record). Its writes are recorded as
  ``submit`` operations like any other.

Every call goes to a node drawn at random (the watch: to the isolated node),
through the harness's plain HTTP call, so a skewed or cut-off node is asked too.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

from raftq.chaos.cluster import Cluster
from raftq.chaos.history import HistoryWriter, now_ms, outcome_of_status
from raftq.chaos.http import Reply, call

PROBE_QUEUE = "chaos-timer"
DELAY_MS = 1500
LEASE_MS = 1500
WORKER_ID = "timer-probe"


class TimerProbe(threading.Thread):
    def __init__(self, cluster: Cluster, history: HistoryWriter, *, seed: int,
                 run_tag: str) -> None:
        super().__init__(name="timer-probe", daemon=True)
        self.cluster = cluster
        self.history = history
        self.rng = random.Random(seed)
        self.tag = run_tag
        self.stopping = threading.Event()
        self._seq = 0
        self.unfinished: set[str] = set()  # task ids to clean up at the end

    def _call(self, method: str, path: str, body: Any = None,
              timeout: float = 3.0) -> tuple[Reply, float, float]:
        node = self.rng.choice(self.cluster.node_ids)
        t_inv = now_ms()
        reply = call(self.cluster.url(node), method, path, body, timeout=timeout)
        return reply, t_inv, now_ms()

    def run(self) -> None:
        while not self.stopping.wait(self.rng.uniform(0.2, 1.0)):
            self._seq += 1
            task_id = f"{self.tag}-timer-{self._seq}"
            self.unfinished.add(task_id)
            if self.cycle(task_id):
                self.unfinished.discard(task_id)

    def cycle(self, task_id: str) -> bool:
        """Time one delay and one lease on a new task; True once it is completed."""
        spec = {"name": "chaos.timer", "id": task_id, "queue": PROBE_QUEUE,
                "delay_ms": DELAY_MS, "max_attempts": 1000}
        reply, t_inv, t_done = self._call("POST", "/v1/tasks", spec)
        if reply.status != 201:
            return False
        grant = self._granted(task_id, DELAY_MS / 1000 + 20)
        if grant is None:
            return False
        self._record("delay", task_id, t_inv + DELAY_MS, t_done + DELAY_MS, grant)
        # A lease granted by an immediate claim, so its start is known closely.
        reply, _, _ = self._call("POST", "/v1/leases/release", {
            "worker_id": WORKER_ID, "leases": [{"id": task_id, "lease_token": grant["token"]}]})
        if reply.status != 200:
            return False
        first = self._granted(task_id, 20, wait_ms=0)
        if first is None:
            return False
        second = self._granted(task_id, LEASE_MS / 1000 + 20)
        if second is None:
            return False
        self._record("lease", task_id, first["t_inv"] + LEASE_MS, first["t_done"] + LEASE_MS,
                     second)
        return self._complete(task_id, second["token"])

    def _granted(self, task_id: str, timeout_s: float,
                 wait_ms: int = 2000) -> dict[str, Any] | None:
        """Claim from the probe queue until ``task_id`` is granted: its token and the
        claim's send and answer times; tasks left by earlier cycles are completed."""
        deadline = now_ms() + timeout_s * 1000
        while now_ms() < deadline and not self.stopping.is_set():
            reply, t_inv, t_done = self._call("POST", "/v1/claims", {
                "worker_id": WORKER_ID, "queues": [PROBE_QUEUE], "max": 10,
                "lease_ms": LEASE_MS, "wait_ms": wait_ms}, timeout=wait_ms / 1000 + 3)
            if reply.status != 200 or not isinstance(reply.body, dict):
                self.stopping.wait(0.1)
                continue
            found = None
            for task in reply.body.get("tasks", []):
                if task["id"] == task_id:
                    found = {"token": task["lease_token"], "t_inv": t_inv, "t_done": t_done}
                elif self._complete(task["id"], task["lease_token"]):
                    self.unfinished.discard(task["id"])
            if found is not None:
                return found
        return None

    def _complete(self, task_id: str, token: int) -> bool:
        for _ in range(10):
            reply, _, _ = self._call("POST", f"/v1/tasks/{task_id}/complete",
                                     {"lease_token": token, "result": None})
            if reply.status is not None and reply.status < 500:
                return reply.status == 200
            self.stopping.wait(0.2)
        return False

    def _record(self, kind: str, task_id: str, due_lo: float, due_hi: float,
                seen: dict[str, Any]) -> None:
        self.history.record({"type": "timer", "kind": kind, "task_id": task_id,
                             "due_lo": due_lo, "due_hi": due_hi, "seen": seen["t_done"],
                             "seen_sent": seen["t_inv"]})

    def finish(self, timeout_s: float = 30.0) -> None:
        """After the run: cancel or complete whatever probe tasks are left."""
        self.stopping.clear()
        deadline = now_ms() + timeout_s * 1000
        while self.unfinished and now_ms() < deadline:
            for task_id in sorted(self.unfinished):
                reply, _, _ = self._call("GET", f"/v1/tasks/{task_id}?consistency=leader")
                if reply.status == 404:
                    self.unfinished.discard(task_id)
                    continue
                task = reply.body.get("task") if isinstance(reply.body, dict) else None
                if not isinstance(task, dict):
                    continue
                if task["status"] in ("queued", "scheduled"):
                    self._call("DELETE", f"/v1/tasks/{task_id}")
                elif task["status"] == "leased":
                    self._granted(task_id, 5, wait_ms=1000)  # completes it once its lease is up
                else:
                    self.unfinished.discard(task_id)
            self.stopping.wait(0.2)
        self.stopping.set()


class IsolationWatch(threading.Thread):
    """Follows one isolated node from the cut until it has rejoined after the heal."""

    def __init__(self, cluster: Cluster, history: HistoryWriter, node: str, t_cut: float,
                 run_tag: str, *, limit_s: float = 10.0) -> None:
        super().__init__(name=f"isolation-{node}", daemon=True)
        self.cluster = cluster
        self.history = history
        self.node = node
        self.t_cut = t_cut
        self.tag = run_tag
        self.limit_s = limit_s
        self.t_heal: float | None = None
        self.heal_seen = threading.Event()
        self._seq = 0

    def healed(self, t_heal: float) -> None:
        self.t_heal = t_heal
        self.heal_seen.set()

    def run(self) -> None:
        url = self.cluster.url(self.node)
        not_ready = self._until(lambda: call(url, "GET", "/readyz", timeout=1.0).status == 503)
        reason = call(url, "GET", "/readyz", timeout=1.0).body
        write = self._write(url) if not_ready is not None else None
        self.history.record({
            "type": "isolation", "node": self.node, "t_cut": self.t_cut,
            "not_ready_ms": None if not_ready is None else round(not_ready - self.t_cut),
            "write_status": None if write is None else write[0].status,
            "write_code": None if write is None else write[0].error,
            "write_ms": None if write is None else round(write[2] - write[1]),
            "no_leader_ms": None if write is None else round(write[2] - self.t_cut),
            "reason": reason.get("reason") if isinstance(reason, dict) else None,
        })
        self.heal_seen.wait()
        assert self.t_heal is not None
        self.t_cut = self.t_heal
        ready = self._until(lambda: call(url, "GET", "/readyz", timeout=1.0).status == 200,
                            limit_s=60)
        accepted = None
        while ready is not None and now_ms() - self.t_heal < 60_000:
            write = self._write(url)
            if write[0].status == 201:
                accepted = write[2]
                break
            time.sleep(0.1)
        self.history.record({
            "type": "rejoin", "node": self.node, "t_heal": self.t_heal,
            "ready_ms": None if ready is None else round(ready - self.t_heal),
            "write_ok_ms": None if accepted is None else round(accepted - self.t_heal),
        })

    def _until(self, predicate: Callable[[], bool], limit_s: float | None = None
               ) -> float | None:
        """Poll from ``t_cut`` until ``predicate`` holds: when it first did, or None."""
        deadline = self.t_cut + (limit_s or self.limit_s) * 1000
        while now_ms() < deadline:
            if predicate():
                return now_ms()
            time.sleep(0.05)
        return None

    def _write(self, url: str) -> tuple[Reply, float, float]:
        self._seq += 1
        task_id = f"{self.tag}-iso-{self.node}-{int(self.t_cut)}-{self._seq}"
        t_inv = now_ms()
        reply = call(url, "POST", "/v1/tasks", {"name": "chaos.echo", "id": task_id,
                                                "args": [task_id], "max_attempts": 20},
                     timeout=10.0)
        t_done = now_ms()
        self.history.record({
            "type": "submit", "process": "isolation", "node": self.node, "task_ids": [task_id],
            "batch": False, "t_inv": t_inv, "t_done": t_done,
            "outcome": outcome_of_status(reply.status), "http_status": reply.status,
            "code": reply.error, "attempt": 0,
        })
        return reply, t_inv, t_done
