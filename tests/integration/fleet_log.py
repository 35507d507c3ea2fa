"""The run log of the fleet tests' tasks (no tasks here: importing it registers none)."""

from __future__ import annotations

import os
import time


def log(key: str, event: str = "run") -> None:
    """Append ``<key>\t<pid>\t<event>\t<time>`` to ``RAFTQ_TEST_LOG`` (one write)."""
    fd = os.open(os.environ["RAFTQ_TEST_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{key}\t{os.getpid()}\t{event}\t{time.time():.6f}\n".encode())
    finally:
        os.close(fd)
