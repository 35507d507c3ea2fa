"""Tools for abusing a node's raft port in tests, and for watching the cluster meanwhile."""

from __future__ import annotations

import itertools
import json
import os
import pickle  # PySyncObj's peer protocol, spoken here as a peer would
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from raftq.raft.wire import WireCipher

FRAME = struct.Struct("i")


def _recv_frame(sock: socket.socket) -> bytes:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    (length,) = FRAME.unpack(exactly(FRAME.size))
    return exactly(length)


def peer_status(address: str, secret: str, timeout: float = 3.0) -> dict[str, Any]:
    """PySyncObj's ``status`` utility call, as a peer holding the secret makes it:
    proof that the raft port accepts and serves a legitimate connection."""
    host, port = address.rsplit(":", 1)
    cipher = WireCipher(secret)
    stamps = itertools.count(int(time.monotonic()))

    def seal(message: Any) -> bytes:
        data = cipher.encrypt_at_time(pickle.dumps(message), next(stamps))
        return FRAME.pack(len(data)) + data

    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        my_key = os.urandom(32)
        sock.sendall(seal(my_key))
        echoed, their_key = pickle.loads(cipher.decrypt(_recv_frame(sock)))
        assert echoed == my_key
        sock.sendall(seal((their_key, ["status"])))
        echoed, status = pickle.loads(cipher.decrypt(_recv_frame(sock)))
        assert echoed == my_key
        return dict(status)


def oversized_frames(address: str, seconds: float, streams: int = 4) -> dict[str, Any]:
    """For ``seconds``, ``streams`` connections each send a length prefix of
    0x7fffffff and then zeros as fast as they can, reconnecting when closed.
    Returns how often the node hung up and the longest a stream stayed open."""
    host, port = address.rsplit(":", 1)
    end = time.monotonic() + seconds
    closes = [0] * streams
    longest = [0.0] * streams
    zeros = bytes(65536)

    def stream(i: int) -> None:
        while time.monotonic() < end:
            opened = time.monotonic()
            try:
                with socket.create_connection((host, int(port)), timeout=2) as sock:
                    sock.sendall(FRAME.pack(0x7FFFFFFF))
                    while time.monotonic() < end:
                        sock.sendall(zeros)
            except OSError:
                closes[i] += 1
                longest[i] = max(longest[i], time.monotonic() - opened)

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"closed_by_node": sum(closes), "longest_open_s": max(longest)}


def open_silent(address: str, count: int) -> list[socket.socket]:
    """``count`` connections that never send a byte."""
    host, port = address.rsplit(":", 1)
    out = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(2)
        try:
            sock.connect((host, int(port)))
        except OSError:
            sock.close()
            continue
        sock.setblocking(False)
        out.append(sock)
    return out


def closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _auth() -> dict[str, str]:
    """The session's admin key (conftest puts it in RAFTQ_API_KEY)."""
    return {"Authorization": f"Bearer {os.environ['RAFTQ_API_KEY']}"}


def _get(url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=_auth()),
                                    timeout=timeout) as resp:
            data: dict[str, Any] = json.loads(resp.read())
            return data
    except (OSError, ValueError, urllib.error.URLError):
        return None


def _post(url: str, body: Any, timeout: float = 3.0) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **_auth()})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def _metrics(url: str) -> list[tuple[str, float]]:
    with urllib.request.urlopen(urllib.request.Request(f"{url}/metrics", headers=_auth()),
                                timeout=2) as resp:
        lines = resp.read().decode().splitlines()
    return [(name, float(value)) for name, _, value in
            (line.rpartition(" ") for line in lines if line and not line.startswith("#"))]


def metric(url: str, name: str) -> float:
    return sum(value for key, value in _metrics(url) if key == name)


def port_closed(url: str) -> dict[str, int]:
    """The node's ``raftq_raft_port_closed_total`` by reason."""
    prefix = 'raftq_raft_port_closed_total{reason="'
    return {key[len(prefix):-2]: int(value) for key, value in _metrics(url)
            if key.startswith(prefix)}


@dataclass
class Watch:
    """Submits tasks in a loop through the nodes and samples who leads, until stopped."""

    urls: list[str]
    writes: list[tuple[float, str, int]] = field(default_factory=list)  # (time, url, status)
    leaders: list[tuple[float, str | None, int]] = field(default_factory=list)  # (t, id, term)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Watch:
        self._threads = [threading.Thread(target=self._write, args=(url,), daemon=True)
                         for url in self.urls]
        self._threads.append(threading.Thread(target=self._observe, daemon=True))
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)

    def _write(self, url: str) -> None:
        for n in itertools.count():
            if self._stop.is_set():
                return
            status = _post(f"{url}/v1/tasks", {"name": "watch", "args": [n]})
            self.writes.append((time.monotonic(), url, status))
            if status != 201:
                time.sleep(0.05)

    def _observe(self) -> None:
        while not self._stop.wait(0.1):
            for url in self.urls:
                view = _get(f"{url}/v1/node", timeout=0.5)
                if view is not None and view["role"] == "leader":
                    self.leaders.append((time.monotonic(), view["id"], view["term"]))
                    break

    def figures(self, since: float, until: float,
                urls: list[str] | None = None) -> dict[str, Any]:
        """Writes and leadership between ``since`` and ``until`` (through ``urls``, or all)."""
        window = [w for w in self.writes
                  if since <= w[0] <= until and (urls is None or w[1] in urls)]
        ok = [w[0] for w in window if w[2] == 201]
        gaps = [b - a for a, b in itertools.pairwise([since, *ok, until])]
        leaders = [(who, term) for t, who, term in self.leaders if since <= t <= until]
        changes = sum(1 for a, b in itertools.pairwise(leaders) if a != b)
        return {"writes_ok": len(ok), "writes_failed": len(window) - len(ok),
                "longest_write_gap_s": round(max(gaps), 2), "leader_changes": changes,
                "leaders": sorted({who for who, _ in leaders if who})}
