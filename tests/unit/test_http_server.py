"""The node's HTTP server on a real loopback socket: framing, limits, errors."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable

import pytest

from raftq.server.http import Handler, Request, Response, Server, json_response
from raftq.server.limits import HttpLimits
from raftq.server.router import Router

MAX_BODY = 1000


async def echo(request: Request) -> Response:
    return json_response({"method": request.method, "path": request.path,
                          "match": request.match_info, "query": request.query,
                          "body": request.body.decode(), "route": request.route})


async def boom(request: Request) -> Response:
    raise RuntimeError("a bug")


async def slow(request: Request) -> Response:
    await asyncio.sleep(float(request.query.get("s", "0.05")))
    return json_response({"slow": request.query.get("n")})


SEEN: list[tuple[str, int]] = []  # (route, status) of what passed the middleware


async def passthrough(request: Request, handler: Handler) -> Response:
    response = await handler(request)
    SEEN.append((request.route, response.status))
    return response


def serve(check: Callable[[Server], Awaitable[None]], limits: HttpLimits | None = None) -> None:
    """Run ``check`` against a server listening on a loopback port."""

    async def main() -> None:
        router = Router()
        router.add_all([("GET", "/echo", echo), ("POST", "/echo", echo),
                        ("GET", "/items/{id}", echo), ("POST", "/items/{id}/done", echo),
                        ("GET", "/boom", boom), ("GET", "/slow", slow)])
        srv = Server(router, passthrough, max_body=MAX_BODY, limits=limits)
        await srv.start("127.0.0.1", 0)
        try:
            await check(srv)
        finally:
            await srv.close()

    asyncio.run(main())


async def exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw`` and read until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(-1), 5)
    finally:
        writer.close()


def responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Split a byte stream of HTTP responses (Content-Length framed)."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
        n = int(headers.get("content-length", "0")) if status != 100 else 0
        out.append((status, headers, rest[:n]))
        data = rest[n:]
    return out


def get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()


def test_keep_alive_pipelined_requests_are_answered_in_order() -> None:
    async def check(server: Server) -> None:
        raw = get("/slow?n=1&s=0.05") + get("/slow?n=2&s=0") + get("/echo", "Connection: close\r\n")
        got = responses(await exchange(server.port, raw))
        assert [s for s, _, _ in got] == [200, 200, 200]
        assert json.loads(got[0][2])["slow"] == "1"
        assert json.loads(got[1][2])["slow"] == "2"
        assert got[2][1]["connection"] == "close"

    serve(check)


def test_routes_match_the_raw_path_and_decode_parameters() -> None:
    async def check(server: Server) -> None:
        raw = get("/items/a%2Fb?x=1&x=2&y=", "Connection: close\r\n")
        got = responses(await exchange(server.port, raw))
        body = json.loads(got[0][2])
        assert body["match"] == {"id": "a/b"}
        assert body["route"] == "/items/{id}"
        assert body["query"] == {"x": "1", "y": ""}

    serve(check)


def test_unknown_path_and_wrong_method_get_json_errors() -> None:
    async def check(server: Server) -> None:
        raw = get("/nope") + b"DELETE /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        SEEN.clear()
        (s1, _, b1), (s2, h2, b2) = responses(await exchange(server.port, raw))
        assert s1 == 404 and json.loads(b1)["error"]["code"] == "not_found"
        assert s2 == 405 and json.loads(b2)["error"]["code"] == "method_not_allowed"
        assert h2["allow"] == "GET, POST"
        assert SEEN == [("unmatched", 404), ("/echo", 405)]  # counted like any answer

    serve(check)


def test_head_answers_headers_only() -> None:
    async def check(server: Server) -> None:
        raw = b"HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n" + get("/echo", "Connection: close\r\n")
        data = await exchange(server.port, raw)
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and int(
            [ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")][0]
            .split(b":")[1]) > 0
        assert rest.startswith(b"HTTP/1.1 200")  # no body between the two answers

    serve(check)


def test_chunked_body_arrives_whole() -> None:
    async def check(server: Server) -> None:
        raw = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
               b"Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        (status, _, body), = responses(await exchange(server.port, raw))
        assert status == 200 and json.loads(body)["body"] == "hello world"

    serve(check)


def test_expect_continue_gets_an_interim_answer() -> None:
    async def check(server: Server) -> None:
        raw = (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n"
               b"Connection: close\r\n\r\nhi")
        got = responses(await exchange(server.port, raw))
        assert [s for s, _, _ in got] == [100, 200]
        assert json.loads(got[1][2])["body"] == "hi"

    serve(check)


def test_declared_body_over_the_limit_is_refused_with_413() -> None:
    async def check(server: Server) -> None:
        raw = (f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n"
               ).encode() + b"x" * (MAX_BODY + 1)
        (status, headers, body), = responses(await exchange(server.port, raw))
        assert status == 413 and headers["connection"] == "close"
        assert json.loads(body)["error"]["code"] == "payload_too_large"

    serve(check)


def test_chunked_body_over_the_limit_is_refused_with_413() -> None:
    async def check(server: Server) -> None:
        chunk = b"x" * 600
        raw = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"258\r\n" + chunk + b"\r\n" + b"258\r\n" + chunk + b"\r\n0\r\n\r\n")
        (status, _, body), = responses(await exchange(server.port, raw))
        assert status == 413 and json.loads(body)["error"]["code"] == "payload_too_large"

    serve(check)


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nBad Header\r\n\r\n",
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
    b"GET /echo HTTP/1.1\r\n" + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n",
])
def test_malformed_requests_get_a_4xx_and_a_closed_connection(raw: bytes) -> None:
    async def check(server: Server) -> None:
        (status, headers, body), = responses(await exchange(server.port, raw))
        assert 400 <= status < 500
        assert headers["connection"] == "close"
        assert "error" in json.loads(body)

    serve(check)


def test_an_upgrade_request_is_answered_plainly_and_the_connection_closed() -> None:
    async def check(server: Server) -> None:
        raw = (b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               b"Connection: upgrade\r\n\r\n")
        (status, headers, _), = responses(await exchange(server.port, raw))
        assert status == 200 and headers["connection"] == "close"

    serve(check)


def test_a_raising_handler_gets_500_and_the_connection_lives_on() -> None:
    async def check(server: Server) -> None:
        raw = get("/boom") + get("/echo", "Connection: close\r\n")
        (s1, _, b1), (s2, _, _) = responses(await exchange(server.port, raw))
        assert s1 == 500 and json.loads(b1)["error"]["code"] == "internal"
        assert s2 == 200

    serve(check)


def test_http_1_0_closes_after_the_answer() -> None:
    async def check(server: Server) -> None:
        raw = b"GET /echo HTTP/1.0\r\n\r\n"
        (status, headers, _), = responses(await exchange(server.port, raw))
        assert status == 200 and headers["connection"] == "close"

    serve(check)


def test_a_client_that_hangs_up_mid_request_leaves_the_server_serving() -> None:
    async def check(server: Server) -> None:
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        raw = get("/echo", "Connection: close\r\n")
        (status, _, _), = responses(await exchange(server.port, raw))
        assert status == 200
        assert len(server.connections) <= 1

    serve(check)


SHORT = HttpLimits(header_timeout_s=0.4, body_timeout_s=0.4, idle_timeout_s=0.6,
                   max_connections=3)


async def answer_and_when(port: int, raw: bytes, *, trickle: bool = False) -> tuple[bytes, float]:
    """Send ``raw`` (a byte every 50 ms if ``trickle``), read until the server
    hangs up; the answer and the seconds that took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = asyncio.ensure_future(reader.read(-1))
    try:
        for i in range(len(raw)) if trickle else ():
            if answer.done():  # the server has answered and hung up
                break
            writer.write(raw[i:i + 1])
            await asyncio.sleep(0.05)
        if not trickle:
            writer.write(raw)
        data = await asyncio.wait_for(answer, 5)
        return data, loop.time() - started
    finally:
        writer.close()


@pytest.mark.parametrize(("raw", "trickle", "part"), [
    (b"", False, "headers"),  # a connection that never sends a request
    (b"GET /echo HTTP/1.1\r\nHost: x\r\n", False, "headers"),
    (b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200, True, "headers"),
    (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc", False, "body"),
])
def test_a_request_that_does_not_arrive_in_time_gets_408_and_is_closed(
        raw: bytes, trickle: bool, part: str) -> None:
    async def check(server: Server) -> None:
        data, took = await answer_and_when(server.port, raw, trickle=trickle)
        (status, headers, body), = responses(data)
        assert status == 408 and headers["connection"] == "close"
        assert json.loads(body)["error"] == {
            "code": "request_timeout",
            "message": f"the request {part} did not arrive within 0.4 s"}
        # The deadline plus at most one sweep period, with slack for a busy machine.
        assert 0.4 <= took < 0.4 + SHORT.sweep_period_s + 0.5
        for _ in range(50):  # the server sees our side close a moment later
            if not server.connections:
                break
            await asyncio.sleep(0.01)
        assert not server.connections

    serve(check, SHORT)


def test_an_idle_keep_alive_connection_is_closed_quietly() -> None:
    async def check(server: Server) -> None:
        data, took = await answer_and_when(server.port, get("/echo"))
        (status, _, _), = responses(data)  # the answer, then no 408: just the close
        assert status == 200
        assert 0.6 <= took < 0.6 + SHORT.sweep_period_s + 0.5

    serve(check, SHORT)


def test_a_handler_slower_than_the_deadlines_is_not_cut_off() -> None:
    async def check(server: Server) -> None:
        raw = get("/slow?n=1&s=1.2", "Connection: close\r\n")
        data, _ = await answer_and_when(server.port, raw)
        (status, _, body), = responses(data)
        assert status == 200 and json.loads(body)["slow"] == "1"

    serve(check, SHORT)


def test_connections_over_the_cap_get_503_and_are_closed() -> None:
    async def check(server: Server) -> None:
        held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(3)]
        await asyncio.sleep(0.05)
        data, _ = await answer_and_when(server.port, get("/echo"))
        (status, headers, body), = responses(data)
        assert status == 503 and headers["connection"] == "close"
        assert headers["retry-after"] == "1"
        assert json.loads(body)["error"]["code"] == "too_many_connections"
        assert len(server.connections) == 3
        _, writer = held.pop()
        writer.close()
        async def served() -> int:
            data, _ = await answer_and_when(server.port, get("/echo", "Connection: close\r\n"))
            return responses(data)[0][0]
        for _ in range(50):  # once the server has seen the close, there is room again
            if (status := await served()) == 200:
                break
            await asyncio.sleep(0.02)
        assert status == 200
        for _, writer in held:
            writer.close()

    serve(check, SHORT)
