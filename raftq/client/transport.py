"""A small asyncio HTTP/1.1 client for talking to raftq nodes.

``AsyncClient`` (and so every worker) used aiohttp's client, which spent
~250 µs of CPU per request: in a submit-to-result round trip the worker's
claim and completion requests were most of what was not Raft. The node API
needs little of HTTP: JSON bodies with a Content-Length, keep-alive, answers
with a Content-Length (or chunked, or until close, for whatever sits in
between). This client keeps idle keep-alive connections per node and
nothing else.

Errors come out as ``OSError`` (``ConnectionError`` for a dropped or
garbled answer) or ``TimeoutError``; a request that fails on a reused
connection before any byte of the answer came back is retried once on a new
connection (the node may have closed the idle one).

The request building and answer-head parsing here are shared with
``raftq.client.syncwire``, the sync client's blocking twin.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEAD = 65536


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass(frozen=True)
class Node:
    host: str
    port: int
    tls: bool
    base_path: str
    host_header: str

    @classmethod
    def of(cls, url: str) -> Node:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        tls = parts.scheme == "https"
        return cls(parts.hostname, parts.port or (443 if tls else 80), tls,
                   parts.path.rstrip("/"), parts.netloc.rsplit("@", 1)[-1])


def request_bytes(node: Node, method: str, target: str, body: bytes | None,
                  headers: dict[str, str]) -> bytes:
    """The whole request, to be written at once."""
    head = [f"{method} {node.base_path}{target} HTTP/1.1\r\nHost: {node.host_header}\r\n"]
    for name, value in headers.items():
        head.append(f"{name}: {value}\r\n")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        head.append(f"Content-Length: {len(body or b'')}\r\n")
    head.append("\r\n")
    return "".join(head).encode("latin-1") + (body or b"")


def keeps_alive(headers: dict[str, str]) -> bool:
    """Whether the connection may carry another request after this answer."""
    if headers.get("connection", "").lower() == "close":
        return False
    return "content-length" in headers or "chunked" in headers.get("transfer-encoding",
                                                                    "").lower()


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @property
    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A client context that verifies the node's certificate and name: against
    ``ca_file`` if given, else the system's trusted CAs."""
    return ssl.create_default_context(cafile=ca_file)


class Pool:
    """Keep-alive connections to any number of nodes, for one event loop."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context
        self._nodes: dict[str, Node] = {}
        self._idle: dict[str, list[_Conn]] = {}
        self._open: set[_Conn] = set()

    async def close(self) -> None:
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle.clear()

    async def request(self, url: str, method: str, target: str, body: bytes | None,
                      headers: dict[str, str], timeout: float) -> Answer:
        """``method`` ``target`` on the node at ``url``; raises OSError or TimeoutError."""
        node = self._nodes.get(url)
        if node is None:
            node = self._nodes[url] = Node.of(url)
        idle = self._idle.setdefault(url, [])
        raw = request_bytes(node, method, target, body, headers)
        async with asyncio.timeout(timeout):
            while idle:
                conn = idle.pop()
                if not conn.usable:
                    self._drop(conn)
                    continue
                try:
                    return await self._exchange(idle, conn, raw)
                except _NothingBack:
                    continue  # the node closed it while idle: try another
            conn = await self._connect(node)
            try:
                return await self._exchange(idle, conn, raw)
            except _NothingBack as exc:
                raise ConnectionResetError(f"the node closed the connection: {exc}") from None

    async def _connect(self, node: Node) -> _Conn:
        if node.tls and self._ssl is None:
            self._ssl = tls_context(None)
        context = self._ssl if node.tls else None
        reader, writer = await asyncio.open_connection(node.host, node.port, ssl=context,
                                                       limit=MAX_HEAD)
        conn = _Conn(reader, writer)
        self._open.add(conn)
        return conn

    def _drop(self, conn: _Conn) -> None:
        conn.close()
        self._open.discard(conn)

    async def _exchange(self, idle: list[_Conn], conn: _Conn, raw: bytes) -> Answer:
        """One request and its answer; the connection goes back to idle if reusable."""
        answered = False
        try:
            conn.writer.write(raw)
            await conn.writer.drain()
            head = await conn.reader.readuntil(b"\r\n\r\n")
            answered = True
            status, headers = parse_head(head)
            body = await _read_body(conn.reader, headers)
        except BaseException as exc:
            self._drop(conn)
            if isinstance(exc, asyncio.IncompleteReadError | ConnectionError) and not answered:
                raise _NothingBack(str(exc)) from None
            if isinstance(exc, asyncio.IncompleteReadError | asyncio.LimitOverrunError):
                raise ConnectionError(f"incomplete or oversized answer: {exc}") from None
            raise
        if keeps_alive(headers):
            idle.append(conn)
        else:
            self._drop(conn)
        return Answer(status, headers, body)


class _NothingBack(Exception):
    """The connection failed before any byte of the answer arrived."""


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ConnectionError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ConnectionError(f"malformed header line: {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise ConnectionError(f"bad Content-Length {length!r}")
        return await reader.readexactly(int(length))
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ConnectionError(f"bad chunk size {size_line[:40]!r}") from None
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                # Trailers (rare) end with an empty line too.
                while chunk != b"\r\n":
                    chunk = await reader.readuntil(b"\r\n")
                return b"".join(chunks)
            chunks.append(chunk[:-2])
    return await reader.read()  # until the node closes the connection
