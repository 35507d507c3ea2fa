"""The no-op workload on Celery over Redis (imported by the driver and by the celery worker)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from celery import Celery, group

URL = os.environ.get("PEER_REDIS_URL", "redis://127.0.0.1:16379/0")
MARKS = Path(os.environ.get("PEER_MARKS", tempfile.gettempdir()))
app = Celery("peerbench", broker=URL, backend=URL)
app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False,
                broker_connection_retry_on_startup=True)


@app.task(ignore_result=True)
def add(a: int, b: int) -> int:
    return a + b


@app.task(ignore_result=False)
def one() -> int:
    return 1


@app.task(ignore_result=True)
def mark(key: str) -> None:
    (MARKS / key).write_text(repr(time.time()))


class System:
    name = "celery"
    copies = 1

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def start(self) -> None:
        pass  # the driver runs Redis

    def connect(self) -> None:
        pass

    def reset(self) -> None:
        app.control.purge()

    def stop(self) -> None:
        pass

    def send(self) -> None:
        add.delay(1, 2)

    def mark(self, key: str) -> None:
        mark.delay(key)

    def batch(self, count: int) -> float | None:
        started = time.perf_counter()
        for start in range(0, count, 1000):
            group(add.s(1, 2) for _ in range(min(1000, count - start))).apply_async()
        return time.perf_counter() - started

    def in_flight(self, count: int, concurrency: int) -> float | None:
        return None  # no asyncio client

    def workers(self, processes: int, log: Any) -> list[subprocess.Popen[bytes]]:
        celery = str(Path(sys.executable).parent / "celery")
        return [subprocess.Popen([celery, "-A", "peer_celery", "worker", "-c", str(processes),
                                  "-P", "prefork", "--without-gossip", "--without-mingle",
                                  "--without-heartbeat", "-l", "warning"], stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)]

    def round_trip(self) -> Any:
        return one.delay().get(timeout=10)
