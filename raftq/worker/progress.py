"""Progress reports of the tasks a worker runs, sent to the cluster in batches.

A task calls ``current_task().progress(...)`` in its thread, process or
asyncio task; the report lands on the worker's loop, where only the latest
of each task is kept. One ``POST /v1/progress`` carries every task's latest
report, at most every ``PERIOD_S``, so a task that reports in a tight loop
does not flood the Raft log. A report that cannot be sent is dropped (the
next one says more); one for a task that finished in the meantime is
refused as a stale lease, which is harmless. A task's last report goes out
before its outcome (``flush``), so the task view keeps it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from raftq.client.asyncclient import AsyncClient
from raftq.worker.outbox import Lease

log = logging.getLogger("raftq.worker")

PERIOD_S = 0.5


class ProgressSender:
    def __init__(self, worker_id: str, client: Callable[[], AsyncClient]) -> None:
        self.worker_id = worker_id
        self.client = client
        self.latest: dict[str, tuple[Lease, float, str]] = {}
        self._sending: asyncio.Task[None] | None = None

    def reporter(self, lease: Lease) -> Callable[[float, str], None]:
        """A report function for ``lease``'s task, callable from any thread."""
        loop = asyncio.get_running_loop()

        def report(fraction: float, message: str) -> None:
            loop.call_soon_threadsafe(self._add, lease, fraction, message)

        return report

    def _add(self, lease: Lease, fraction: float, message: str) -> None:
        self.latest[lease.id] = (lease, fraction, message)
        if self._sending is None:
            self._sending = asyncio.get_running_loop().create_task(self._send())

    async def flush(self, lease: Lease) -> None:
        """Send ``lease``'s last report now, before its outcome (a report sent after the
        outcome would find the lease gone)."""
        pending = self.latest.pop(lease.id, None)
        if pending is not None and not lease.lost:
            await self._post([{"id": lease.id, "lease_token": lease.token,
                               "fraction": pending[1], "message": pending[2]}])

    async def _post(self, items: list[dict[str, object]]) -> None:
        try:
            await self.client().progress(self.worker_id, items)
        except Exception as exc:  # progress is best effort
            log.info("could not report the progress of %d tasks: %s", len(items), exc)

    async def _send(self) -> None:
        try:
            while self.latest:
                await asyncio.sleep(PERIOD_S)
                batch, self.latest = self.latest, {}
                items = [{"id": lease.id, "lease_token": lease.token, "fraction": fraction,
                          "message": message}
                         for lease, fraction, message in batch.values()
                         if not lease.lost and lease.outcome is None]
                if items:
                    await self._post(items)
        finally:
            self._sending = None
