"""The no-op workload's tasks for Celery (imported by the driver and by the celery worker)."""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

URL = os.environ.get("PEER_REDIS_URL", "redis://127.0.0.1:16379/0")
app = Celery("peerbench", broker=URL, backend=URL)
app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False,
                broker_connection_retry_on_startup=True)
_marks = redis.Redis.from_url(URL)


@app.task(ignore_result=True)
def noop() -> None:
    pass


@app.task(ignore_result=False)
def round_trip() -> int:
    return 1


@app.task(ignore_result=True)
def mark(key: str) -> None:
    _marks.set(key, repr(time.time()))
