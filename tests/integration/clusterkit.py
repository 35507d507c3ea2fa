"""Helpers for integration tests: ports, plain HTTP calls and waiting on conditions."""

from __future__ import annotations

import itertools
import json
import os
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

# Every cluster of a test run gets its own block of ports, counted up from this
# run's RAFTQ_TEST_PORT_BASE in steps of 10 (raft ports; HTTP 1000 above), so a
# test never meets a previous test's sockets, and two checkouts running their
# tests at once with different bases never meet each other's.
_blocks = itertools.count(int(os.environ.get("RAFTQ_TEST_PORT_BASE", "19100")), 10)


def _free(ports: list[int]) -> bool:
    for port in ports:
        with socket.socket() as sock:
            # As the nodes bind: a port in TIME_WAIT is free, a listening one is not.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def port_block() -> int:
    """The first raft port of 10 free raft ports and the 10 HTTP ports 1000 above."""
    for _ in range(50):
        base = next(_blocks)
        if _free([base + i for i in range(10)] + [base + 1000 + i for i in range(10)]):
            return base
    raise RuntimeError("no free block of test ports; is RAFTQ_TEST_PORT_BASE shared?")


def http(url: str, method: str = "GET", body: Any = None, timeout: float = 5.0,
         raw: bytes | None = None, headers: dict[str, str] | None = None,
         api_key: str | None = None, context: ssl.SSLContext | None = None) -> tuple[int, Any]:
    """One request; ``api_key`` defaults to RAFTQ_API_KEY ("" sends none)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    key = os.environ.get("RAFTQ_API_KEY", "") if api_key is None else api_key
    auth = {"Authorization": f"Bearer {key}"} if key else {}
    req = urllib.request.Request(url, method=method, data=data, headers={
        "Content-Type": "application/json", **auth, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        text = exc.read()
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, text.decode(errors="replace")


def metrics(url: str, timeout: float = 5.0) -> str:
    """A node's /metrics page, read with the session's key (RAFTQ_API_KEY)."""
    req = urllib.request.Request(url + "/metrics", headers={
        "Authorization": f"Bearer {os.environ.get('RAFTQ_API_KEY', '')}"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return str(resp.read().decode())


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05,
             what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except OSError as exc:  # a node that is not up yet
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def settled(cluster: Any, timeout: float = 10.0) -> None:
    """Wait until every running node of ``cluster`` (a LocalCluster) has applied
    everything committed before the call. Reads from a follower may trail the
    leader by a few milliseconds (docs/guarantees.md, "Reads"): a test that
    writes on one node and reads on another settles in between."""
    live = [i for i, node in enumerate(cluster.nodes) if node.alive]
    views = [cluster.node_status(i) for i in live]
    target = max((v["commit_index"] for v in views if v is not None), default=0)
    for i in live:
        wait_for(lambda i=i: (v := cluster.node_status(i)) is not None
                 and v["applied_index"] >= target,
                 timeout=timeout, what=f"{cluster.nodes[i].node_id} to apply index {target}")
