"""The tasks ``raftq bench`` runs: no-ops, so the figures measure the queue itself.

``noop`` is an ``async def`` so the worker's async pool runs it on the loop
without a thread hop; ``noop_sync`` is the same for the thread and process
pools (``raftq bench --worker-pool thread``).
"""

from __future__ import annotations

from raftq.client.task import task


@task
async def noop() -> None:
    """Does nothing."""


@task
def noop_sync() -> None:
    """Does nothing, in a thread or child process."""
