"""The no-op workload on NATS JetStream: three ``nats-server``s on loopback, one
R3 file-backed work-queue stream, a durable pull consumer shared by the worker
processes (``python peer_nats.py worker``).

JetStream is a replicated log, not a task queue: the "task" is a JSON message
``{"name", "args"}``; a worker runs it, publishes the result to the message's
``reply`` header subject if it has one (the round trip's producer listens
there) and acks the message (without awaiting the ack's confirmation).
The producer calls ``js.publish`` and awaits each publish's ack, which
JetStream sends once the message is stored on a majority of the three
servers.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import nats
from nats.js.api import RetentionPolicy, StorageType, StreamConfig

PORTS = [int(p) for p in os.environ.get("PEER_NATS_PORTS", "4301,4302,4303").split(",")]
SERVERS = [f"nats://127.0.0.1:{p}" for p in PORTS]
MARKS = Path(os.environ.get("PEER_MARKS", tempfile.gettempdir()))
STREAM, SUBJECT, DURABLE = "TASKS", "tasks", "workers"
T = TypeVar("T")


def run_task(name: str, args: list[Any]) -> Any:
    if name == "add":
        return args[0] + args[1]
    if name == "one":
        return 1
    if name == "mark":
        (MARKS / args[0]).write_text(repr(time.time()))
        return None
    raise ValueError(f"no task {name!r}")


def _payload(name: str, *args: Any) -> bytes:
    return json.dumps({"name": name, "args": list(args)}).encode()


ADD = _payload("add", 1, 2)


class System:
    name = "nats"
    copies = 3

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.servers: list[subprocess.Popen[bytes]] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.nc: Any = None
        self.js: Any = None

    def _run(self, coro: Awaitable[T]) -> T:
        assert self.loop is not None
        return self.loop.run_until_complete(coro)

    # -- the service -----------------------------------------------------------

    def start(self) -> None:
        binary = shutil.which("nats-server") or "/usr/bin/nats-server"
        routes = ", ".join(f"nats://127.0.0.1:{p + 10}" for p in PORTS)
        for i, port in enumerate(PORTS):
            store = self.workdir / f"nats{i + 1}"
            store.mkdir(parents=True, exist_ok=True)
            conf = store / "server.conf"
            conf.write_text(
                f"server_name: n{i + 1}\nlisten: 127.0.0.1:{port}\n"
                f'jetstream {{ store_dir: "{store}" }}\n'
                f"cluster {{ name: peers, listen: 127.0.0.1:{port + 10}, routes: [{routes}] }}\n")
            log = open(store / "server.log", "ab")  # noqa: SIM115 - owned by the child
            self.servers.append(subprocess.Popen([binary, "-c", str(conf)], stdout=log,
                                                 stderr=subprocess.STDOUT,
                                                 start_new_session=True))
            log.close()
        for port in PORTS:  # listening before the first connect (no reconnect noise)
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        self.connect()
        config = StreamConfig(name=STREAM, subjects=[SUBJECT], retention=RetentionPolicy.WORK_QUEUE,
                              storage=StorageType.FILE, num_replicas=3)
        deadline = time.monotonic() + 60
        while True:  # until the JetStream meta group has a leader
            try:
                self._run(self.js.add_stream(config))
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        self._run(self.js.add_consumer(STREAM, durable_name=DURABLE, ack_policy="explicit",
                                       max_ack_pending=-1))

    def connect(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.nc = self._run(nats.connect(servers=SERVERS, connect_timeout=5,
                                         max_reconnect_attempts=-1))
        self.js = self.nc.jetstream(timeout=10)

    def disconnect(self) -> None:
        self._run(self.nc.close())

    def reset(self) -> None:
        self._run(self.js.purge_stream(STREAM))

    def stop(self) -> None:
        if self.nc is not None:
            self._run(self.nc.close())
        for proc in self.servers:
            proc.terminate()
        for proc in self.servers:
            proc.wait(timeout=20)

    # -- producing -------------------------------------------------------------

    def produce(self, count: int) -> None:
        async def loop() -> None:
            for _ in range(count):
                await self.js.publish(SUBJECT, ADD)

        self._run(loop())

    def send(self) -> None:
        self._run(self.js.publish(SUBJECT, ADD))

    def mark(self, key: str) -> None:
        self._run(self.js.publish(SUBJECT, _payload("mark", key)))

    def batch(self, count: int) -> float | None:
        async def main() -> float:
            started = time.perf_counter()
            for start in range(0, count, 1000):
                await asyncio.gather(*(self.js.publish(SUBJECT, ADD)
                                       for _ in range(min(1000, count - start))))
            return time.perf_counter() - started

        return self._run(main())

    def in_flight(self, count: int, concurrency: int) -> float | None:
        async def producer(n: int) -> None:
            for _ in range(n):
                await self.js.publish(SUBJECT, ADD)

        async def main() -> float:
            started = time.perf_counter()
            await asyncio.gather(*(producer(count // concurrency) for _ in range(concurrency)))
            return time.perf_counter() - started

        return self._run(main())

    # -- consuming -------------------------------------------------------------

    def workers(self, processes: int, log: Any) -> list[subprocess.Popen[bytes]]:
        return [subprocess.Popen([sys.executable, __file__, "worker"], stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
                for _ in range(processes)]

    def round_trip(self) -> Any:
        async def main() -> Any:
            inbox = f"rt.{uuid.uuid4().hex}"
            sub = await self.nc.subscribe(inbox, max_msgs=1)
            await self.js.publish(SUBJECT, _payload("one"), headers={"reply": inbox})
            try:
                msg = await sub.next_msg(timeout=10)
            except nats.errors.TimeoutError:
                raise TimeoutError("nats round trip timed out") from None
            return json.loads(msg.data)

        return self._run(main())


async def worker() -> None:
    """One worker process: fetch, run, reply, ack."""
    nc = await nats.connect(servers=SERVERS, max_reconnect_attempts=-1)
    js = nc.jetstream()
    sub = await js.pull_subscribe(SUBJECT, durable=DURABLE, stream=STREAM)
    while True:
        try:
            msgs = await sub.fetch(batch=64, timeout=1)
        except (nats.errors.TimeoutError, TimeoutError):  # nothing queued (both kinds occur)
            continue
        for msg in msgs:
            task = json.loads(msg.data)
            result = run_task(task["name"], task["args"])
            reply = (msg.headers or {}).get("reply")
            if reply:
                await nc.publish(reply, json.dumps(result).encode())
            await msg.ack()


if __name__ == "__main__" and sys.argv[1:] == ["worker"]:
    asyncio.run(worker())
