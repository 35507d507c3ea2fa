"""A small blocking HTTP/1.1 client for ``Client``: kept-alive connections per node.

``Client`` used the standard library's ``http.client``, which spent about
100 µs of CPU per request on this kind of machine (most of it parsing every
answer's headers with the ``email`` package, and building the request a line
at a time): a tenth of a whole ``.delay()``'s time on a three-node cluster,
taken from the same two cores the nodes run on. The node API needs little of
HTTP (see ``raftq.client.transport``, its asyncio twin, whose request building
and head parsing this shares): one ``sendall`` of the request, a buffered read
of the head and a body with a Content-Length (or chunked, or until close).
Sockets have ``TCP_NODELAY``; connections are safe to share between threads
(each request borrows one) and are dropped after a fork.

Errors come out as ``OSError`` (``ConnectionError`` for a dropped or garbled
answer, ``TimeoutError``); a request that fails on a reused connection before
any byte of the answer came back is retried once on a new connection (the
node may have closed the idle one).
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
from typing import BinaryIO

from raftq.client.transport import (
    MAX_HEAD,
    Answer,
    Node,
    keeps_alive,
    parse_head,
    request_bytes,
    tls_context,
)


class _Conn:
    def __init__(self, node: Node, timeout: float, tls: ssl.SSLContext | None) -> None:
        sock = socket.create_connection((node.host, node.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname=node.host)
        self.sock = sock
        self.reader: BinaryIO = sock.makefile("rb")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class Pool:
    """Kept-alive connections to any number of nodes, for any number of threads.

    ``ssl_context`` verifies ``https://`` nodes (default: the system's CAs)."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context
        self._lock = threading.Lock()
        self._nodes: dict[str, Node] = {}
        self._idle: dict[str, list[_Conn]] = {}
        self._pid = os.getpid()

    def request(self, url: str, method: str, target: str, body: bytes | None,
                headers: dict[str, str], timeout: float) -> Answer:
        """``method`` ``target`` on the node at ``url``; raises OSError."""
        node = self._node(url)
        raw = request_bytes(node, method, target, body, headers)
        for fresh in (False, True):
            conn, reused = self._get(url, node, timeout)
            try:
                answer = _exchange(conn, raw)
            except _NothingBack as exc:
                conn.close()
                if reused and not fresh:
                    continue  # the node closed it while idle: once more on a new one
                raise ConnectionResetError(f"the node closed the connection: {exc}") from None
            except BaseException:
                conn.close()
                raise
            if keeps_alive(answer.headers):
                with self._lock:
                    if self._pid == os.getpid():
                        self._idle.setdefault(url, []).append(conn)
                        return answer
            conn.close()
            return answer
        raise AssertionError("unreachable")

    def _node(self, url: str) -> Node:
        node = self._nodes.get(url)
        if node is None:
            node = self._nodes[url] = Node.of(url)
        return node

    def _get(self, url: str, node: Node, timeout: float) -> tuple[_Conn, bool]:
        with self._lock:
            if self._pid != os.getpid():
                # Forked (a pre-fork web server): the parent's sockets are not ours.
                self._idle, self._pid = {}, os.getpid()
            idle = self._idle.get(url)
            if idle:
                conn = idle.pop()
                conn.sock.settimeout(timeout)
                return conn, True
        if node.tls and self._ssl is None:
            self._ssl = tls_context(None)
        return _Conn(node, timeout, self._ssl if node.tls else None), False

    def close(self) -> None:
        with self._lock:
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for conn in conns:
            conn.close()


class _NothingBack(Exception):
    """The connection failed before any byte of the answer arrived."""


def _exchange(conn: _Conn, raw: bytes) -> Answer:
    reader = conn.reader
    try:
        conn.sock.sendall(raw)
        first = reader.readline(MAX_HEAD)
    except ConnectionError as exc:
        raise _NothingBack(str(exc)) from None
    if not first:
        raise _NothingBack("closed before answering")
    head = [first]
    size = len(first)
    while head[-1] not in (b"\r\n", b"\n"):
        line = reader.readline(MAX_HEAD)
        size += len(line)
        if not line or size > MAX_HEAD:
            raise ConnectionError("incomplete or oversized answer head")
        head.append(line)
    status, headers = parse_head(b"".join(head))
    return Answer(status, headers, _read_body(reader, headers))


def _read_exactly(reader: BinaryIO, size: int) -> bytes:
    data = reader.read(size)
    if len(data) != size:
        raise ConnectionError(f"answer cut short ({len(data)} of {size} bytes)")
    return data


def _read_body(reader: BinaryIO, headers: dict[str, str]) -> bytes:
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise ConnectionError(f"bad Content-Length {length!r}")
        return _read_exactly(reader, int(length))
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        while True:
            size_line = reader.readline(MAX_HEAD)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ConnectionError(f"bad chunk size {size_line[:40]!r}") from None
            if size == 0:
                while reader.readline(MAX_HEAD) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(_read_exactly(reader, size + 2)[:-2])
    return reader.read()  # until the node closes the connection
