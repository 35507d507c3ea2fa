"""The harness's own worker: a process that claims, "runs" and completes tasks
over plain HTTP, recording every claim and completion attempt in its history.
A completion whose outcome is unknown is retried with the same token on the
next node until the lease has run out.

Run as ``python -m chaos.worker --worker-id w1 --nodes URL,URL --history FILE``.
It keeps the count of leases it holds in ``--held-file`` so the nemesis can
pick a worker that holds leases to kill or pause. The result of a task names
the lease token it was completed under, so the checker can tell from the final
state which completion won. SIGTERM stops it after the batch in hand.
"""

from __future__ import annotations

import argparse
import random
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from raftq.chaos.history import FAIL, OK, UNKNOWN, HistoryWriter, now_ms, outcome_of_status
from raftq.chaos.http import call

RETRY_S = 0.2


class HarnessWorker:
    def __init__(
        self, worker_id: str, urls: list[str], history: HistoryWriter, *, lease_ms: int,
        seed: int, held_file: Path | None = None, max_tasks: int = 8,
        work_ms: tuple[int, int] = (5, 40),
    ) -> None:
        self.worker_id = worker_id
        self.urls = urls
        self.history = history
        self.lease_ms = lease_ms
        self.rng = random.Random(seed)
        self.held_file = held_file
        self.max_tasks = max_tasks
        self.work_ms = work_ms
        self.stopping = threading.Event()

    def run(self) -> None:
        self._set_held(0)
        while not self.stopping.is_set():
            tasks = self.claim()
            if not tasks:
                continue
            self._set_held(len(tasks))
            for _task in tasks:
                # The task's "work": a pause the nemesis can catch the worker in.
                self.stopping.wait(self.rng.uniform(*self.work_ms) / 1000)
            if len(tasks) > 1 and self.rng.random() < 0.4:
                self.complete_batch(tasks)
            else:
                for task in tasks:
                    self.complete_one(task)
            self._set_held(0)

    def _set_held(self, n: int) -> None:
        if self.held_file is not None:
            self.held_file.write_text(str(n))

    def claim(self) -> list[dict[str, Any]]:
        node = self.rng.randrange(len(self.urls))
        body = {"worker_id": self.worker_id, "queues": ["default"], "max": self.max_tasks,
                "lease_ms": self.lease_ms, "wait_ms": 1000}
        t_inv = now_ms()
        reply = call(self.urls[node], "POST", "/v1/claims", body, timeout=5.0)
        outcome = outcome_of_status(reply.status)
        tasks = []
        if outcome == OK and isinstance(reply.body, dict):
            tasks = [
                {"id": t["id"], "token": t["lease_token"], "expires_ms": t["lease_expires_ms"],
                 "attempt": t.get("attempt")}
                for t in reply.body.get("tasks", [])
            ]
        self.history.record({
            "type": "claim", "worker_id": self.worker_id, "node": node, "lease_ms": self.lease_ms,
            "t_inv": t_inv, "t_done": now_ms(), "outcome": outcome, "http_status": reply.status,
            "code": reply.error, "tasks": tasks,
        })
        if outcome != OK:
            self.stopping.wait(0.2)  # back off from a node without a leader
        return tasks

    def _result(self, task: dict[str, Any]) -> dict[str, Any]:
        return {"token": task["token"], "worker": self.worker_id}

    def _attempts(self, expires_ms: float) -> list[int]:
        """Nodes to try in turn, one per attempt, until the lease has expired."""
        first = self.rng.randrange(len(self.urls))
        tries = max(2, int((expires_ms - now_ms()) / 1000 / RETRY_S))
        return [(first + i) % len(self.urls) for i in range(tries)]

    def complete_one(self, task: dict[str, Any]) -> None:
        # One key for every attempt: a retry of a completion that landed gets its
        # first answer rather than already_finished.
        key = f"{self.worker_id}-{task['id']}-{task['token']}"
        for i, node in enumerate(self._attempts(task["expires_ms"])):
            if i:
                self.stopping.wait(RETRY_S)
            t_inv = now_ms()
            reply = call(self.urls[node], "POST", f"/v1/tasks/{task['id']}/complete",
                         {"lease_token": task["token"], "result": self._result(task)},
                         idempotency_key=key)
            outcome = outcome_of_status(reply.status)
            self._record_complete(task, node, t_inv, outcome, reply.error, via="single")
            if outcome != UNKNOWN:
                return

    def complete_batch(self, tasks: list[dict[str, Any]]) -> None:
        pending = list(tasks)
        key = f"{self.worker_id}-batch-{tasks[0]['id']}-{tasks[0]['token']}"
        for i, node in enumerate(self._attempts(min(t["expires_ms"] for t in tasks))):
            if i:
                self.stopping.wait(RETRY_S)
            items = [{"id": t["id"], "lease_token": t["token"], "result": self._result(t)}
                     for t in pending]
            t_inv = now_ms()
            reply = call(self.urls[node], "POST", "/v1/completions",
                         {"worker_id": self.worker_id, "items": items}, idempotency_key=key)
            outcome = outcome_of_status(reply.status)
            if outcome != OK or not isinstance(reply.body, dict):
                for t in pending:
                    self._record_complete(t, node, t_inv, outcome, reply.error, via="batch")
                if outcome == UNKNOWN:
                    continue
                return
            results = {r["id"]: r for r in reply.body.get("results", [])}
            for t in pending:
                r = results.get(t["id"], {})
                self._record_complete(t, node, t_inv, OK if r.get("ok") else FAIL,
                                      r.get("code"), via="batch")
            return

    def _record_complete(
        self, task: dict[str, Any], node: int, t_inv: float, outcome: str,
        code: str | None, via: str,
    ) -> None:
        self.history.record({
            "type": "complete", "worker_id": self.worker_id, "node": node, "task_id": task["id"],
            "token": task["token"], "t_inv": t_inv, "t_done": now_ms(), "outcome": outcome,
            "code": code, "via": via,
        })


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m chaos.worker")
    parser.add_argument("--worker-id", required=True)
    parser.add_argument("--nodes", required=True, help="comma-separated node URLs")
    parser.add_argument("--history", required=True, type=Path)
    parser.add_argument("--held-file", type=Path)
    parser.add_argument("--lease-ms", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-tasks", type=int, default=8, help="tasks per claim")
    parser.add_argument("--work-ms", default="5,40", help="LO,HI: each task's work, drawn")
    args = parser.parse_args()
    lo, hi = (int(x) for x in args.work_ms.split(","))
    history = HistoryWriter(args.history, args.worker_id)
    worker = HarnessWorker(args.worker_id, args.nodes.split(","), history,
                           lease_ms=args.lease_ms, seed=args.seed, held_file=args.held_file,
                           max_tasks=args.max_tasks, work_ms=(lo, hi))

    def stop(signum: int, frame: FrameType | None) -> None:
        worker.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        worker.run()
    finally:
        history.close()


if __name__ == "__main__":
    main()
