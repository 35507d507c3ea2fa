"""The bench's minimal HTTP/1.1 client: response framing, and the no-op task specs it sends."""

from __future__ import annotations

import asyncio
import json

from raftq.bench.http import Conn, _read_body, noop_spec


def _body(raw: bytes) -> bytes:
    async def go() -> bytes:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        head = await reader.readuntil(b"\r\n\r\n")
        return await _read_body(reader, head.lower())

    return asyncio.run(go())


def test_content_length_body_leaves_the_next_response_alone() -> None:
    raw = (b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
           b"Content-Length: 7\r\n\r\n{\"a\":1}HTTP/1.1 200 OK\r\n")
    assert _body(raw) == b'{"a":1}'


def test_chunked_body() -> None:
    raw = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n")
    assert _body(raw) == b"abcdefg"


def test_no_body() -> None:
    assert _body(b"HTTP/1.1 204 No Content\r\n\r\n") == b""


def test_request_head_names_the_host_and_length() -> None:
    head = Conn("http://127.0.0.1:18400").head("POST", "/v1/tasks", 12).decode()
    assert head.startswith("POST /v1/tasks HTTP/1.1\r\n")
    assert "Host: 127.0.0.1:18400\r\n" in head and "Content-Length: 12\r\n" in head
    assert head.endswith("\r\n\r\n")


def test_noop_spec_payload_is_the_requested_size() -> None:
    spec = noop_spec("q", 200)
    assert len(json.dumps(spec["args"], separators=(",", ":"))) == 200
    assert noop_spec("q") == {"name": "noop", "queue": "q"}
