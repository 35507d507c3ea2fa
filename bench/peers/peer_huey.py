"""The no-op workload's tasks for Huey (imported by the driver and by huey_consumer)."""

from __future__ import annotations

import os
import time

import redis
from huey import RedisHuey

URL = os.environ.get("PEER_REDIS_URL", "redis://127.0.0.1:16379/0")
huey = RedisHuey("peerbench", url=URL, results=True)
_marks = redis.Redis.from_url(URL)


@huey.task()
def noop() -> None:
    pass


@huey.task()
def round_trip() -> int:
    return 1


@huey.task()
def mark(key: str) -> None:
    _marks.set(key, repr(time.time()))
