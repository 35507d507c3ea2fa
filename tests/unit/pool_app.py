"""A task for the process pool's unit tests (imported by its child processes)."""

from __future__ import annotations

import os

from raftq import task


@task(name="pool_app.pid")
def pid() -> int:
    return os.getpid()
