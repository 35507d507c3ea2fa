"""Tasks of worker A in the fleet tests (``fleet_b`` holds worker B's): each run
appends ``<key>\t<pid>\t<event>\t<time>`` to ``RAFTQ_TEST_LOG`` like ``worker_apps``."""

from __future__ import annotations

import os
import time

from fleet_log import log

from raftq import task

_hoard: list[bytes] = []  # what ``leak`` keeps: grows with every run in one process


@task(queue="mixed")
def alpha(key: str) -> str:
    log(key)
    return key


@task(queue="slowq", priority="high", timeout=1.0, max_attempts=1)
def slow(seconds: float) -> str:
    """Declares a 1 s timeout: the worker stops waiting for it after 1 s."""
    time.sleep(seconds)
    return "finished"


@task(queue="ctl")
def nap(key: str, seconds: float) -> str:
    log(key)
    time.sleep(seconds)
    log(key, "done")
    return key


@task(queue="doomed", max_attempts=1)
def abort() -> None:
    """Kills the whole worker process, as a crashing C extension would."""
    os.abort()


@task(queue="leaky")
def leak(mb: int) -> int:
    """Keeps ``mb`` MiB more each run in its process; returns the process id."""
    _hoard.append(b"\x01" * (mb << 20))
    return os.getpid()
