"""The clients' HTTP/1.1 transports against real loopback servers: each test runs
on ``AsyncClient``'s (``raftq.client.transport``) and on ``Client``'s
(``raftq.client.syncwire``, called from a thread)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from raftq.client import syncwire
from raftq.client.transport import Answer, Pool


class SyncPool:
    """``syncwire.Pool`` behind the async pool's interface."""

    def __init__(self) -> None:
        self.pool = syncwire.Pool()

    async def request(self, *args: Any) -> Answer:
        return await asyncio.to_thread(self.pool.request, *args)

    async def close(self) -> None:
        self.pool.close()


MakePool = Callable[[], Any]


@pytest.fixture(params=[Pool, SyncPool], ids=["async", "sync"])
def make_pool(request: pytest.FixtureRequest) -> MakePool:
    factory: MakePool = request.param
    return factory

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def run(serve: Serve, check: Callable[[str, list[int]], Awaitable[None]]) -> None:
    """Run ``check(url, connections)`` against a raw TCP server; ``connections``
    counts the connections the server accepted."""

    async def main() -> None:
        accepted: list[int] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(1)
            try:
                await serve(reader, writer)
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            await check(f"http://127.0.0.1:{port}", accepted)
        finally:
            server.close()

    asyncio.run(main())


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head, await reader.readexactly(length)


def answer(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def keep_alive_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        try:
            head, body = await read_request(reader)
        except asyncio.IncompleteReadError:
            return
        writer.write(answer(head.split(b"\r\n")[0] + b"|" + body, b"Retry-After: 2\r\n"))
        await writer.drain()


def test_requests_reuse_one_keep_alive_connection(make_pool: MakePool) -> None:
    async def check(url: str, accepted: list[int]) -> None:
        pool = make_pool()
        for i in range(3):
            got = await pool.request(url + "/base", "POST", f"/v1/x?i={i}", b"{}",
                                     {"Content-Type": "application/json"}, 5)
            assert got.status == 200 and got.headers["retry-after"] == "2"
            assert got.body == f"POST /base/v1/x?i={i} HTTP/1.1|{{}}".encode()
        assert len(accepted) == 1
        await pool.close()

    run(keep_alive_echo, check)


def test_an_idle_connection_the_server_closed_is_replaced_without_an_error(
        make_pool: MakePool) -> None:
    closed = asyncio.Event()

    async def one_answer_then_close(reader: asyncio.StreamReader,
                                    writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"ok"))  # keep-alive by the headers, then hang up anyway
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        closed.set()

    async def check(url: str, accepted: list[int]) -> None:
        pool = make_pool()
        assert (await pool.request(url, "GET", "/a", None, {}, 5)).body == b"ok"
        await closed.wait()  # the pooled connection is dead now
        assert (await pool.request(url, "GET", "/b", None, {}, 5)).body == b"ok"
        assert len(accepted) == 2
        await pool.close()

    run(one_answer_then_close, check)


def test_chunked_and_until_close_answers_are_read_whole(make_pool: MakePool) -> None:
    async def chunked_then_close(reader: asyncio.StreamReader,
                                 writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n")
        await read_request(reader)
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\n\r\nbye")
        await writer.drain()

    async def check(url: str, accepted: list[int]) -> None:
        pool = make_pool()
        assert (await pool.request(url, "GET", "/a", None, {}, 5)).body == b"hello world"
        got = await pool.request(url, "GET", "/b", None, {}, 5)
        assert (got.status, got.body) == (503, b"bye")
        await pool.close()

    run(chunked_then_close, check)


def test_garbage_a_cut_answer_and_silence_are_os_errors_or_timeouts(make_pool: MakePool) -> None:
    async def misbehave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        path = head.split(b" ")[1]
        if path == b"/garbage":
            writer.write(b"SPDY/9 nonsense\r\n\r\n")
        elif path == b"/cut":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        elif path == b"/silent":
            await asyncio.sleep(5)
        await writer.drain()

    async def check(url: str, accepted: list[int]) -> None:
        pool = make_pool()
        with pytest.raises(ConnectionError):
            await pool.request(url, "GET", "/garbage", None, {}, 5)
        with pytest.raises(ConnectionError):
            await pool.request(url, "GET", "/cut", None, {}, 5)
        with pytest.raises(TimeoutError):
            await pool.request(url, "GET", "/silent", None, {}, 0.2)
        await pool.close()

    run(misbehave, check)


def test_a_node_that_is_not_listening_is_an_os_error(make_pool: MakePool) -> None:
    async def main() -> None:
        pool = make_pool()
        with pytest.raises(OSError):
            await pool.request("http://127.0.0.1:9", "GET", "/", None, {}, 2)

    asyncio.run(main())
