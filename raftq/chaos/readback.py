"""What a chaos run reads from the cluster once every fault is healed: the
backlog until the queues drain, every attempted task (linearizably, through
the leader), the replicas' digests at a common applied index, and how far the
replicated clock lags this machine's. The checker judges the history with
what these return (``raftq.chaos.checker.DrainState``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from raftq.chaos.cluster import Cluster, wait_for
from raftq.chaos.history import now_ms, read_history
from raftq.chaos.http import call

READ_BACK_LIMIT_S = 180.0
"""After this long reading tasks back, the rest count as unreadable."""


class ReadBack:
    """The runner's reads of ``cluster`` after the final heal; ``log`` is the run's."""

    def __init__(self, cluster: Cluster, run_dir: Path, log: Callable[[str], None]) -> None:
        self.cluster = cluster
        self.run_dir = run_dir
        self.log = log

    def clock_lag(self) -> float | None:
        """How far the replicated clock is behind this machine's at the end: the
        checker reads lease expiries as times of this machine, so a lag makes it
        lenient by as much."""
        clocks = [st.raw["clock_ms"] for st in self.cluster.statuses(timeout=2).values()
                  if st is not None and isinstance(st.raw.get("clock_ms"), int)]
        return round(now_ms() - max(clocks)) if clocks else None

    def leader_url(self) -> str:
        leader = self.cluster.wait_leader(timeout=10)
        return self.cluster.url(leader or self.cluster.node_ids[0])

    def backlog(self) -> int | None:
        """Tasks queued, scheduled or leased, by the leader's count; ``None`` if unknown."""
        reply = call(self.leader_url(), "GET", "/v1/queues", timeout=2)
        if reply.status != 200 or not isinstance(reply.body, dict):
            return None
        return sum(int(q.get("queued", 0)) + int(q.get("scheduled", 0)) + int(q.get("leased", 0))
                   for q in reply.body.get("queues", {}).values())

    def wait_terminal(self, timeout: float) -> float | None:
        """When the leader's queues first showed nothing queued, scheduled or leased."""
        if wait_for(lambda: self.backlog() == 0, timeout, interval=0.25):
            return now_ms()
        self.log("queues never drained")
        return None

    def attempted_ids(self) -> list[str]:
        ops = read_history(sorted(self.run_dir.glob("history-*.jsonl")))
        ids: set[str] = set()
        for op in ops:
            if op["type"] == "submit":
                ids.update(op["task_ids"])
        return sorted(ids)

    def read_back(self, ids: list[str]) -> tuple[dict[str, dict[str, Any] | None], list[str]]:
        """Every task, read linearizably; unknown submissions that never landed are dropped."""
        tasks: dict[str, dict[str, Any] | None] = {}
        unreadable: list[str] = []
        urls = self.cluster.urls
        # A wedged cluster answers nothing: bound the whole read, not just each call.
        deadline = time.monotonic() + READ_BACK_LIMIT_S

        def read(i_tid: tuple[int, str]) -> tuple[str, int | None, Any]:
            i, tid = i_tid
            if time.monotonic() > deadline:
                return tid, None, None
            reply = None
            for attempt in range(6):
                reply = call(urls[(i + attempt) % len(urls)], "GET",
                             f"/v1/tasks/{tid}?consistency=leader", timeout=5)
                if reply.status in (200, 404):
                    break
                time.sleep(0.2 * (attempt + 1))
            assert reply is not None
            body = reply.body.get("task") if isinstance(reply.body, dict) else None
            return tid, reply.status, body

        with ThreadPoolExecutor(max_workers=8) as pool:
            for tid, status, body in pool.map(read, enumerate(ids)):
                if status == 200:
                    tasks[tid] = body
                elif status == 404:
                    tasks[tid] = None
                else:
                    unreadable.append(tid)
        return tasks, unreadable

    def digests(self, timeout: float = 30.0) -> tuple[bool, dict[str, str]]:
        """Poll every node's digest until all agree at one applied index (or two differ)."""
        by_index: dict[int, dict[str, str]] = {}
        deadline = time.monotonic() + timeout
        n = len(self.cluster.node_ids)
        while time.monotonic() < deadline:
            for node, st in self.cluster.statuses(digest=True, timeout=2).items():
                if st is not None and st.raw.get("digest") is not None:
                    by_index.setdefault(int(st.applied_index or 0), {})[node] = str(
                        st.raw["digest"])
            for index, digests in by_index.items():
                if len(set(digests.values())) > 1:
                    self.log(f"digests differ at applied index {index}: {digests}")
                    return False, digests
                if len(digests) == n:
                    return True, digests
            time.sleep(0.1)
        self.log("replicas never reported digests at a common applied index")
        return False, {}
