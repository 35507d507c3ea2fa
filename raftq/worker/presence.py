"""A worker's presence: its announcement, heartbeats and the control it obeys.

Every ``heartbeat_s`` (and once at start, before the first claim) the worker
sends ``POST /v1/workers/{id}/heartbeat`` with the task names it runs and
each one's decorator defaults (queue, priority, max_attempts, timeout, retry
backoff), its queues, concurrency, pool and mode, and its process's CPU and
memory measured here. The cluster replicates them: claims are then matched to
task names, submissions by name get these defaults, and ``raftq workers``
shows the figures. A worker silent for three heartbeats is shown as lost.

The answer carries the control an operator set (``raftq workers pause``,
``resume``, ``set-concurrency``, ``drain``) with its version; the worker acts
on a version it has not seen and reports it back with its next heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from raftq.client.calls import Json
from raftq.client.task import Registry

if TYPE_CHECKING:
    from raftq.worker.runtime import Worker

log = logging.getLogger("raftq.worker")

_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024 if hasattr(os, "sysconf") else 4
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def rss_kb(pid: int | None = None) -> int:
    """Resident memory of a process (this one by default) in KiB; 0 where unknown."""
    try:
        with open(f"/proc/{pid or 'self'}/statm") as f:
            return int(f.read().split()[1]) * _PAGE_KB
    except (OSError, ValueError, IndexError):
        if pid is None:
            import resource

            return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # the peak
        return 0


def cpu_s(pid: int) -> float:
    """CPU seconds a process has used (user + system); 0 where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (OSError, ValueError, IndexError):
        return 0.0


class Meter:
    """CPU (percent of one core since the last reading) and resident memory of the
    worker process and its pool's children."""

    def __init__(self) -> None:
        self._last_wall = time.monotonic()
        # From now: the first reading must not count the CPU spent before (imports,
        # start-up) over the moments since (it read 20,000 %).
        self._last_cpu: dict[int, float] = {0: time.process_time()}

    def read(self, children: Iterable[int] = ()) -> tuple[float, int]:
        now = time.monotonic()
        used = time.process_time() - self._last_cpu.get(0, 0.0)
        self._last_cpu[0] = time.process_time()
        memory = rss_kb()
        seen: dict[int, float] = {0: self._last_cpu[0]}
        for pid in children:
            total = cpu_s(pid)
            used += max(0.0, total - self._last_cpu.get(pid, total))
            seen[pid] = total
            memory += rss_kb(pid)
        self._last_cpu = seen
        elapsed, self._last_wall = max(now - self._last_wall, 1e-3), now
        return round(100 * used / elapsed, 1), memory


def definitions(registry: Registry) -> list[Json]:
    """The tasks a registry holds with their decorator defaults, as a heartbeat sends them."""
    out: list[Json] = []
    for name in registry.names():
        fn = registry.get(name)
        if fn is None:
            continue
        opts = fn.options
        item: Json = {"name": name, "queue": opts.queue, "priority": opts.priority}
        if opts.max_attempts is not None:
            item["max_attempts"] = opts.max_attempts
        if opts.timeout is not None:
            item["timeout_ms"] = max(1, round(opts.timeout * 1000))
        if opts.retry_backoff is not None:
            item["retry_backoff_ms"] = round(opts.retry_backoff * 1000)
        out.append(item)
    return out


class Heartbeat:
    """Sends the heartbeats of one worker and applies the control they bring back."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.meter = Meter()
        self.acted = 0  # the newest control version acted on
        self.tasks = definitions(worker.registry)

    def body(self) -> Json:
        w, cfg = self.worker, self.worker.config
        cpu, memory = self.meter.read(w.pool.child_pids())
        return {"host": w.host, "pid": w.pid, "queues": list(cfg.queues), "tasks": self.tasks,
                "heartbeat_ms": round(cfg.heartbeat_s * 1000), "concurrency": cfg.concurrency,
                "pool": cfg.pool, "mode": w.mode, "cpu_pct": cpu, "rss_kb": memory,
                "acted": self.acted}

    async def beat(self) -> bool:
        """One heartbeat; False when no node took it."""
        try:
            answer = await self.worker.client.heartbeat(self.worker.id, self.body())
        except Exception as exc:
            log.warning("heartbeat failed: %s: %s", type(exc).__name__, exc)
            return False
        self.obey(answer.get("control") or {})
        return True

    def obey(self, control: dict[str, Any]) -> None:
        version = control.get("version")
        if not isinstance(version, int) or version <= self.acted:
            return
        self.acted = version
        w = self.worker
        concurrency = control.get("concurrency")
        if isinstance(concurrency, int) and concurrency != w.config.concurrency:
            log.warning("control: concurrency %d -> %d", w.config.concurrency, concurrency)
            w.resize(concurrency)
        if control.get("draining"):
            if not w.stopping:
                log.warning("control: draining: finishing running tasks, then exiting")
                w.stop()
        elif bool(control.get("paused")) != w.paused:
            log.warning("control: %s", "paused" if control.get("paused") else "resumed")
            w.pause(bool(control.get("paused")))

    async def run_forever(self) -> None:
        interval = self.worker.config.heartbeat_s
        while True:
            await asyncio.sleep(interval)
            await self.beat()
