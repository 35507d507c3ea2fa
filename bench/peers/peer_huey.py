"""The no-op workload on Huey over Redis (imported by the driver and by huey_consumer)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from huey import RedisHuey

URL = os.environ.get("PEER_REDIS_URL", "redis://127.0.0.1:16379/0")
MARKS = Path(os.environ.get("PEER_MARKS", tempfile.gettempdir()))
huey = RedisHuey("peerbench", url=URL, results=True)


@huey.task()
def add(a: int, b: int) -> int:
    return a + b


@huey.task()
def one() -> int:
    return 1


@huey.task()
def mark(key: str) -> None:
    (MARKS / key).write_text(repr(time.time()))


class System:
    name = "huey"
    copies = 1

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def start(self) -> None:
        pass  # the driver runs Redis

    def connect(self) -> None:
        pass

    def reset(self) -> None:
        huey.storage.flush_queue()
        huey.storage.flush_results()

    def stop(self) -> None:
        pass

    def send(self) -> None:
        add(1, 2)

    def mark(self, key: str) -> None:
        mark(key)

    def batch(self, count: int) -> float | None:
        return None  # Huey has no batch enqueue

    def in_flight(self, count: int, concurrency: int) -> float | None:
        return None  # no asyncio client

    def workers(self, processes: int, log: Any) -> list[subprocess.Popen[bytes]]:
        consumer = str(Path(sys.executable).parent / "huey_consumer")
        return [subprocess.Popen([consumer, "peer_huey.huey", "-w", str(processes), "-k",
                                  "process", "-n", "-q"], stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)]

    def round_trip(self) -> Any:
        # Huey's own blocking get() polls from 100 ms up; poll tightly so the
        # round trip measures Huey, not its client's backoff.
        handle = one()
        deadline = time.perf_counter() + 10
        while time.perf_counter() < deadline:
            value = handle.get()
            if value is not None:
                return value
            time.sleep(0.0002)
        raise TimeoutError("huey round trip timed out")
