"""The no-op workload on raftq, driven like the peers (imported by the driver and
by ``raftq worker --app peer_raftq``).

Three local nodes with the shipped defaults (``durability: fsync``); the
producer is the user's API (``add.delay(1, 2)``, ``delay_async``,
``delay_many``); workers are ``raftq worker --app peer_raftq`` processes with
their default (thread) pool.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import raftq

MARKS = Path(os.environ.get("PEER_MARKS", tempfile.gettempdir()))


@raftq.task
def add(a: int, b: int) -> int:
    return a + b


# The batch and in-flight figures queue here, where no worker takes from:
# the next run's drains see only their own tasks.
@raftq.task(name="add_parked", queue="parked")
def add_parked(a: int, b: int) -> int:
    return a + b


@raftq.task
def one() -> int:
    return 1


@raftq.task
def mark(key: str) -> None:
    (MARKS / key).write_text(repr(time.time()))


class System:
    name = "raftq"
    copies = 3

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.cluster: Any = None

    # -- the service -----------------------------------------------------------

    def start(self) -> None:
        from raftq.local.cluster import LocalCluster

        base = int(os.environ.get("PEER_RAFTQ_PORT", "17700"))
        self.cluster = LocalCluster(self.workdir / "raftq", raft_port=base, http_port=base + 1000,
                                    extra_config={"log_level": "WARNING"})
        self.cluster.start()
        self.cluster.wait_ready(timeout=60)
        # Inherited by the producer and worker processes, as a user's would be.
        os.environ["RAFTQ_NODES"] = ",".join(self.cluster.http_urls)
        os.environ["RAFTQ_API_KEY"] = self.cluster.admin_key
        self.connect()

    def connect(self) -> None:
        """In this process (the driver or a producer): the default client."""
        raftq.configure(os.environ["RAFTQ_NODES"])

    def reset(self) -> None:
        pass  # every run queues its own tasks; nothing is left queued between runs

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()

    # -- producing -------------------------------------------------------------

    def send(self) -> None:
        add.delay(1, 2)

    def mark(self, key: str) -> None:
        mark.delay(key)

    def batch(self, count: int) -> float | None:
        started = time.perf_counter()
        for start in range(0, count, 10_000):
            add_parked.delay_many([(1, 2)] * min(10_000, count - start))
        return time.perf_counter() - started

    def in_flight(self, count: int, concurrency: int) -> float | None:
        async def producer(n: int) -> None:
            for _ in range(n):
                await add_parked.delay_async(1, 2)

        async def main() -> float:
            await add_parked.delay_async(1, 2)  # connect outside the timing
            started = time.perf_counter()
            await asyncio.gather(*(producer(count // concurrency) for _ in range(concurrency)))
            return time.perf_counter() - started

        return asyncio.run(main())

    # -- consuming -------------------------------------------------------------

    def workers(self, processes: int, log: Any) -> list[subprocess.Popen[bytes]]:
        raftq_bin = str(Path(sys.executable).parent / "raftq")
        return [subprocess.Popen([raftq_bin, "worker", "--app", "peer_raftq"], stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
                for _ in range(processes)]

    def round_trip(self) -> Any:
        return one.delay().result(timeout=10)
