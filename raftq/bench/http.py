"""The load generator of ``raftq bench``: a lean keep-alive HTTP/1.1 client and the loops.

The benchmark's own process shares the machine with the nodes it measures,
so its per-request CPU is spent where the nodes cannot use it. aiohttp's
client costs a few times more per request than one ``asyncio`` stream with
a pre-built request, so the loops here speak just enough HTTP/1.1 to send a
JSON body and read a ``Content-Length`` (or chunked) answer, over one
persistent connection per simulated client.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

NOOP_BODY = {"name": "noop"}


class HttpError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:200]!r}")
        self.status = status
        self.body = body


class Conn:
    """One keep-alive connection to one node; reconnects after an error."""

    def __init__(self, url: str, api_key: str | None = None) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.url = url
        key = os.environ.get("RAFTQ_API_KEY", "") if api_key is None else api_key
        self.auth = f"Authorization: Bearer {key}\r\n" if key else ""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    def head(self, method: str, path: str, length: int) -> bytes:
        return (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.auth}"
                f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n").encode()

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Send a pre-built request; return (status, body)."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._reader, self._writer
        assert reader is not None
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            body = await _read_body(reader, head.lower())
        except BaseException:
            await self.close()
            raise
        if b"connection: close" in head.lower():
            await self.close()
        return status, body

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        raw = b"" if body is None else json.dumps(body).encode()
        status, answer = await self.send(self.head(method, path, len(raw)) + raw)
        return status, json.loads(answer) if answer else None

    async def json(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = await self.request(method, path, body)
        if status >= 300:
            raise HttpError(status, json.dumps(answer).encode())
        return answer


async def _read_body(reader: asyncio.StreamReader, head: bytes) -> bytes:
    marker = head.find(b"content-length:")
    if marker >= 0:
        end = head.index(b"\r\n", marker)
        return await reader.readexactly(int(head[marker + 15:end]))
    if b"transfer-encoding: chunked" in head:
        chunks: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return b"".join(chunks)
            chunks.append(chunk[:-2])
    return b""


def submit_request(conn: Conn, body: Any, path: str = "/v1/tasks") -> bytes:
    raw = json.dumps(body).encode()
    return conn.head("POST", path, len(raw)) + raw


def noop_spec(queue: str, payload_bytes: int = 0) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": "noop", "queue": queue}
    if payload_bytes:
        spec["args"] = ["x" * max(payload_bytes - 4, 1)]  # ["xx..."] is payload_bytes of JSON
    return spec


@dataclass
class LoadResult:
    """What a fixed-count load run did: acknowledged tasks, errors, wall time, latencies."""

    tasks: int = 0
    requests: int = 0
    errors: int = 0
    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.tasks / self.elapsed_s if self.elapsed_s > 0 else 0.0


async def fixed_load(urls: Sequence[str], clients: int, requests: int, body: Any,
                     path: str = "/v1/tasks", tasks_per_request: int = 1,
                     record_latency: bool = False) -> LoadResult:
    """``requests`` POSTs of ``body`` by ``clients`` concurrent connections over ``urls``.

    Client ``i`` talks to ``urls[i % len(urls)]``; the requests are handed out
    from one shared counter, so the count is exact whatever the node speeds.
    """
    result = LoadResult()
    remaining = requests
    conns = [Conn(urls[i % len(urls)]) for i in range(clients)]
    prebuilt = [submit_request(c, body, path) for c in conns]

    async def one_client(i: int) -> None:
        nonlocal remaining
        conn, request = conns[i], prebuilt[i]
        clock = time.perf_counter
        while remaining > 0:
            remaining -= 1
            started = clock()
            try:
                status, answer = await conn.send(request)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                status, answer = 0, str(exc).encode()
            if status < 300 and status:
                result.tasks += tasks_per_request
                if record_latency:
                    result.latencies_s.append(clock() - started)
            else:
                result.errors += 1
                if len(result.error_samples) < 5:
                    result.error_samples.append(f"{status} {answer[:160]!r}")
                await asyncio.sleep(0.05)
            result.requests += 1

    started = time.perf_counter()
    try:
        await asyncio.gather(*(one_client(i) for i in range(clients)))
    finally:
        result.elapsed_s = time.perf_counter() - started
        await asyncio.gather(*(c.close() for c in conns))
    return result


async def sequential_latency(url: str, count: int, body: Any) -> list[float]:
    """Latency of ``count`` submits, one at a time over one connection."""
    conn = Conn(url)
    request = submit_request(conn, body)
    samples = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            status, answer = await conn.send(request)
            if status >= 300:
                raise HttpError(status, answer)
            samples.append(time.perf_counter() - started)
    finally:
        await conn.close()
    return samples


async def round_trips(url: str, count: int, body: Any) -> list[float]:
    """Submit-to-result latency: submit, then long-poll the task until it is terminal."""
    conn = Conn(url)
    request = submit_request(conn, body)
    samples = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            status, answer = await conn.send(request)
            if status >= 300:
                raise HttpError(status, answer)
            task_id = json.loads(answer)["task"]["id"]
            task = (await conn.json("GET", f"/v1/tasks/{task_id}?wait_ms=10000"))["task"]
            if task["status"] != "succeeded":
                raise RuntimeError(f"task {task_id} ended {task['status']}")
            samples.append(time.perf_counter() - started)
    finally:
        await conn.close()
    return samples


async def load_batches(urls: Sequence[str], total: int, spec: dict[str, Any],
                       per_request: int = 500, clients: int = 6) -> LoadResult:
    """Put ``total`` copies of ``spec`` in with the batch endpoint (the memory section)."""
    requests, rest = divmod(total, per_request)
    result = await fixed_load(urls, clients, requests, {"tasks": [spec] * per_request},
                              "/v1/tasks/batch", per_request)
    if rest:
        extra = await fixed_load(urls, 1, 1, {"tasks": [spec] * rest}, "/v1/tasks/batch", rest)
        result.tasks += extra.tasks
        result.errors += extra.errors
    return result


async def get_json(url: str, path: str, timeout_s: float = 2.0) -> Any:
    conn = Conn(url)
    try:
        return await asyncio.wait_for(conn.json("GET", path), timeout_s)
    finally:
        await conn.close()


async def queue_counts(url: str, queue: str) -> dict[str, int]:
    queues = (await get_json(url, "/v1/queues"))["queues"]
    counts: dict[str, int] = queues.get(queue, {})
    return counts


async def first_ack(urls: Sequence[str], body: Any, started: float | None = None,
                    every_s: float = 0.02, timeout_s: float = 30.0,
                    probe_timeout_s: float = 2.0) -> float:
    """Seconds from ``started`` (a ``perf_counter``; default now) until one of ``urls``
    acknowledges a submit; probes every ``every_s``.

    Probes overlap (a new one to each node every ``every_s`` whatever the
    earlier ones are doing), so a request stuck behind a dead leader does not
    hide the moment the new leader starts answering.
    """
    if started is None:
        started = time.perf_counter()
    done: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def probe(url: str) -> None:
        conn = Conn(url)
        try:
            status, _ = await asyncio.wait_for(conn.request("POST", "/v1/tasks", body),
                                               probe_timeout_s)
            if status < 300 and not done.done():
                done.set_result(time.perf_counter() - started)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            await conn.close()

    probes: set[asyncio.Task[None]] = set()
    try:
        while not done.done():
            if time.perf_counter() - started > timeout_s:
                raise TimeoutError(f"no write acknowledged within {timeout_s}s")
            for url in urls:
                task = asyncio.create_task(probe(url))
                probes.add(task)
                task.add_done_callback(probes.discard)
            await asyncio.wait([done], timeout=every_s)
        return done.result()
    finally:
        for task in list(probes):
            task.cancel()
        await asyncio.gather(*probes, return_exceptions=True)
