"""A raft-port connection refuses what is not a sealed frame of a sane size."""

from __future__ import annotations

import pickle  # PySyncObj's peer protocol
import socket
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pysyncobj.poller import POLL_EVENT_TYPE

from raftq.raft.peer import PeerConnection
from raftq.raft.wire import WireCipher

SECRET = "s3cret"
CIPHER = WireCipher(SECRET)


class FakePoller:
    def __init__(self) -> None:
        self.callbacks: dict[int, Callable[[int, int], None]] = {}

    def subscribe(self, descr: int, callback: Callable[[int, int], None], mask: int) -> None:
        self.callbacks[descr] = callback

    def unsubscribe(self, descr: int) -> None:
        self.callbacks.pop(descr, None)


@pytest.fixture
def pair() -> Iterator[tuple[PeerConnection, socket.socket, list[Any], list[PeerConnection]]]:
    """An accepted connection on one end of a socket pair; the test writes the other."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        theirs = socket.create_connection(listener.getsockname())
        ours, _ = listener.accept()
    poller = FakePoller()
    messages: list[Any] = []
    closed: list[PeerConnection] = []
    conn = PeerConnection(poller, max_frame_bytes=1000, recv_buffer_size=4096,
                          send_buffer_size=4096, keepalive=None, sock=ours, peer="test",
                          on_close=closed.append)
    conn.encryptor = CIPHER
    conn.setOnMessageReceivedCallback(messages.append)
    conn.poll = lambda: poller.callbacks[ours.fileno()](ours.fileno(),  # type: ignore[attr-defined]
                                                        POLL_EVENT_TYPE.READ)
    yield conn, theirs, messages, closed
    theirs.close()
    conn.disconnect()


def sealed(message: Any, stamp: int = 1) -> bytes:
    data = CIPHER.encrypt_at_time(pickle.dumps(message), stamp)
    return struct.pack("i", len(data)) + data


def test_sealed_frames_are_delivered_and_verify_the_connection(pair: Any) -> None:
    conn, theirs, messages, closed = pair
    raw = sealed("hello") + sealed(["status"], stamp=2)
    theirs.sendall(raw[:7])  # frames may arrive in pieces
    conn.poll()
    assert messages == [] and not conn.verified
    theirs.sendall(raw[7:])
    conn.poll()
    assert messages == ["hello", ["status"]] and conn.verified and not closed


@pytest.mark.parametrize(("raw", "kind"), [
    (struct.pack("i", 0x7FFFFFFF) + bytes(100), "frame_size"),
    (struct.pack("i", 1001), "frame_size"),
    (struct.pack("i", -5) + bytes(10), "frame_size"),
    (struct.pack("i", 40) + bytes(40), "unsealed"),
    (sealed("x")[:-1] + b"\x00", "unsealed"),  # altered
])
def test_an_oversized_or_unsealed_frame_closes_the_connection(pair: Any, raw: bytes,
                                                              kind: str) -> None:
    conn, theirs, messages, closed = pair
    theirs.sendall(raw)
    conn.poll()
    assert closed == [conn] and conn.refusal[0] == kind
    assert messages == [] and not conn.verified
    assert theirs.recv(1) == b""  # hung up on


def test_a_replayed_older_timestamp_is_refused(pair: Any) -> None:
    conn, theirs, messages, closed = pair
    theirs.sendall(sealed("new", stamp=50) + sealed("old", stamp=49))
    conn.poll()
    assert messages == ["new"] and closed == [conn] and conn.refusal[0] == "unsealed"
