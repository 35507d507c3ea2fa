"""Tasks for the worker integration tests, imported by real worker processes.

Each task appends a line ``<key>\\t<pid>\\t<event>\\t<unix time>`` to the file named by
``RAFTQ_TEST_LOG`` (one small O_APPEND write per line, so lines from several
processes never interleave), which lets a test count how often each task ran.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from raftq import current_task, task


def _log(key: str, event: str = "run") -> None:
    path = os.environ["RAFTQ_TEST_LOG"]
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{key}\t{os.getpid()}\t{event}\t{time.time():.6f}\n".encode())
    finally:
        os.close(fd)


def _runs(key: str) -> int:
    path = Path(os.environ["RAFTQ_TEST_LOG"])
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if line.split("\t")[0] == key)


@task
def record(key: str, seconds: float = 0.0) -> str:
    """Runs once per delivery; sleeps ``seconds`` plus ``RAFTQ_TEST_EXTRA_SLEEP``."""
    _log(key)
    time.sleep(seconds + float(os.environ.get("RAFTQ_TEST_EXTRA_SLEEP", "0")))
    _log(key, "done")
    return key


@task
async def arecord(key: str, seconds: float = 0.0) -> str:
    """``record`` as a coroutine (the async pool awaits it on the worker's loop)."""
    _log(key)
    await asyncio.sleep(seconds)
    _log(key, "done")
    return key


@task
def big_result(size: int) -> str:
    _log(f"big-{size}")
    return "x" * size


@task
def fails_until_fixed(key: str) -> str:
    """Raises until the file ``<log>.fixed`` exists."""
    _log(key)
    if not Path(os.environ["RAFTQ_TEST_LOG"] + ".fixed").exists():
        raise ValueError(f"broken on purpose ({key})")
    return "fixed"


@task
def stuck_first_time(key: str) -> int:
    """Hangs on its first run (to be killed by the timeout), returns at once after."""
    first = _runs(key) == 0
    _log(key)
    if first:
        time.sleep(120)
    return os.getpid()


@task
def noop() -> None:
    pass


@task
def stepped(steps: int, seconds: float = 0.3) -> int:
    """Reports its progress after each step (``current_task().progress``)."""
    ctx = current_task()
    for i in range(steps):
        time.sleep(seconds)
        ctx.progress((i + 1) / steps, f"step {i + 1} of {steps} (attempt {ctx.attempt})")
    return steps
