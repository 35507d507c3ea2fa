"""A node's HTTP server against strangers: slowloris, and numbers JSON does not have."""

from __future__ import annotations

import selectors
import socket
import time
from typing import Any

import pytest
from clusterkit import http, metrics

from raftq.local.cluster import LocalCluster

HEADER_TIMEOUT_S = 1.0
SWEEP_S = 0.25  # HttpLimits.sweep_period_s for a 1 s header timeout


def test_half_sent_requests_are_closed_within_the_header_deadline(make_cluster: Any) -> None:
    cluster: LocalCluster = make_cluster(http_header_timeout_ms=int(HEADER_TIMEOUT_S * 1000))
    url = cluster.http_urls[0]
    port = cluster.nodes[0].http_port
    started = time.monotonic()
    sockets = []
    for i in range(300):
        s = socket.create_connection(("127.0.0.1", port))
        # Each sends part of its headers and then nothing more.
        s.sendall(b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nX-Slow-%d: " % i)
        sockets.append(s)
    opened = time.monotonic() - started
    # While they hang on, the node answers others.
    status, _ = http(f"{url}/v1/tasks", "POST", {"name": "ok"})
    assert status == 201
    sel = selectors.DefaultSelector()
    for s in sockets:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, bytearray())
    closed_at: list[float] = []
    answers: list[bytes] = []
    deadline = started + opened + HEADER_TIMEOUT_S + SWEEP_S + 3.0
    while len(closed_at) < len(sockets) and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.1):
            try:
                chunk = key.fileobj.recv(4096)  # type: ignore[union-attr]
            except ConnectionResetError:
                chunk = b""
            key.data.extend(chunk)
            if not chunk:
                closed_at.append(time.monotonic() - started)
                answers.append(bytes(key.data))
                sel.unregister(key.fileobj)
    for s in sockets:
        s.close()
    assert len(closed_at) == 300, f"{300 - len(closed_at)} half-sent requests still open"
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers)
    # The last one opened is closed within the deadline and one sweep of its start.
    assert max(closed_at) <= opened + HEADER_TIMEOUT_S + SWEEP_S + 0.5
    print(f"\n300 half-sent requests opened in {opened:.2f}s; closed with 408 between "
          f"{min(closed_at):.2f}s and {max(closed_at):.2f}s after the first was opened "
          f"(header deadline {HEADER_TIMEOUT_S}s)")
    assert http(f"{url}/v1/tasks", "POST", {"name": "ok"})[0] == 201
    assert 'raftq_http_refused_total{code="request_timeout"} 300.0' in metrics(url)


@pytest.mark.parametrize(("raw", "field"), [
    (b'{"name": "t", "args": [NaN]}', "args[0]"),
    (b'{"name": "t", "kwargs": {"x": Infinity}}', "kwargs.x"),
    (b'{"name": "t", "args": [1, -Infinity]}', "args[1]"),
    (b'{"name": "t", "args": [1e999]}', "args[0]"),
])
def test_non_finite_numbers_get_400_naming_the_field(cluster: LocalCluster, raw: bytes,
                                                      field: str) -> None:
    url = cluster.http_urls[1]
    status, answer = http(f"{url}/v1/tasks", "POST", raw=raw)
    assert status == 400, answer
    assert answer["error"]["code"] == "invalid_request"
    assert answer["error"]["field"] == field
    batch = b'{"tasks": [{"name": "t"}, ' + raw + b"]}"
    status, answer = http(f"{url}/v1/tasks/batch", "POST", raw=batch)
    assert status == 400 and answer["error"]["field"] == f"tasks[1].{field}"
    # Nothing was stored: the queue is as empty as before.
    status, listing = http(f"{url}/v1/tasks?consistency=leader")
    assert status == 200 and listing["tasks"] == []
