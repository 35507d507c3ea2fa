"""One connection on the raft port, in place of PySyncObj's ``TcpConnection``.

It speaks the same frames (a native 4-byte length, then a message sealed by
``raftq.raft.wire``, whose plaintext is PySyncObj's pickle) and offers the same
methods to PySyncObj's transport, but does not trust what it reads before the
seal is checked:

- A length over ``PortLimits.max_frame_bytes`` (or negative) closes the
  connection as soon as its 4 bytes arrive. PySyncObj would wait for the
  frame, growing its buffer by concatenation on the event loop: a prefix of
  0x7fffffff and a stream of zeros stopped a node for a minute.
- A read event takes at most ``_READS_PER_EVENT`` chunks, so a fast sender
  cannot hold the event loop; the buffer is a ``bytearray``.
- ``verified`` becomes true with the first frame that opens with the cluster
  secret; the transport (``raftq.raft.port``) closes connections that are not
  verified within the handshake timeout, and ones whose peer stays silent.

Nothing is unpickled before AES-GCM has authenticated it.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

import pysyncobj.pickle as peer_pickle  # PySyncObj's peer protocol, not one of our formats
from pysyncobj.poller import POLL_EVENT_TYPE
from pysyncobj.tcp_connection import CONNECTION_STATE, _getAddrType, set_keepalive

log = logging.getLogger(__name__)

_LENGTH = struct.Struct("i")  # PySyncObj's framing: native byte order, signed
_READS_PER_EVENT = 16
_READ = POLL_EVENT_TYPE.READ | POLL_EVENT_TYPE.ERROR
_READ_WRITE = _READ | POLL_EVENT_TYPE.WRITE
_WOULD_BLOCK = (BlockingIOError, InterruptedError)


class PeerConnection:
    """A raft-port connection: accepted (``sock`` given) or outgoing (``connect``)."""

    def __init__(self, poller: Any, *, max_frame_bytes: int, recv_buffer_size: int,
                 send_buffer_size: int, keepalive: tuple[int, int, int] | None,
                 sock: socket.socket | None = None, peer: str = "",
                 on_open: Callable[[PeerConnection], None] | None = None,
                 on_close: Callable[[PeerConnection], None] | None = None) -> None:
        # Read and written by PySyncObj's transport (the handshake's random keys).
        self.sendRandKey: bytes | None = None
        self.recvRandKey: bytes | None = None
        self.recvLastTimestamp = 0
        self.encryptor: Any = None

        self._poller = poller
        self._max_frame = max_frame_bytes
        self._recv_size = recv_buffer_size
        self._send_size = send_buffer_size
        self._keepalive = keepalive
        self._on_open = on_open or (lambda _conn: None)
        self._on_close = on_close or (lambda _conn: None)
        self._on_message: Callable[[Any], None] | None = None
        self._on_connected: Callable[[], None] | None = None
        self._on_disconnected: Callable[[], None] | None = None
        self._sock: socket.socket | None = None
        self._fileno: int | None = None
        self._state: int = CONNECTION_STATE.DISCONNECTED
        self._read_buf = bytearray()
        self._write_buf = bytearray()
        self._writing = False
        self.peer = peer
        self.incoming = sock is not None
        self.verified = False
        self.refusal: tuple[str, str] | None = None  # (kind, why) when closed by ``refuse``
        now = time.monotonic()
        self.opened_at = now
        self.last_read_at = now
        self.unanswered_since: float | None = None  # first send since the last read
        if sock is not None:
            self._adopt(sock, CONNECTION_STATE.CONNECTED)

    # ------------------------------------------- what PySyncObj's transport calls

    @property
    def state(self) -> int:
        return self._state

    def fileno(self) -> int | None:
        return self._fileno

    def setOnConnectedCallback(self, callback: Callable[[], None] | None) -> None:  # noqa: N802
        self._on_connected = callback

    def setOnMessageReceivedCallback(  # noqa: N802
            self, callback: Callable[[Any], None] | None) -> None:
        self._on_message = callback

    def setOnDisconnectedCallback(  # noqa: N802
            self, callback: Callable[[], None] | None) -> None:
        self._on_disconnected = callback

    def getSendBufferSize(self) -> int:  # noqa: N802
        return len(self._write_buf)

    def connect(self, host: str | None, port: int) -> bool:
        if host is None:
            return False
        self._state = CONNECTION_STATE.DISCONNECTED
        try:
            sock = socket.socket(_getAddrType(host), socket.SOCK_STREAM)
        except OSError as exc:  # out of file descriptors: try again on a later tick
            log.warning("raft port: cannot open a connection to %s:%s: %s", host, port, exc)
            return False
        self.peer = f"{host}:{port}"
        self._configure(sock)
        err = sock.connect_ex((host, port))
        if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            sock.close()
            return False
        self._adopt(sock, CONNECTION_STATE.CONNECTING)
        return True

    def send(self, message: Any) -> None:
        if self._state == CONNECTION_STATE.DISCONNECTED:
            return
        if self.sendRandKey:
            message = (self.sendRandKey, message)
        data = peer_pickle.dumps(message)
        if self.encryptor:
            data = self.encryptor.encrypt_at_time(data, int(time.monotonic()))
        self._write_buf += _LENGTH.pack(len(data))
        self._write_buf += data
        if self.unanswered_since is None:
            self.unanswered_since = time.monotonic()
        self._flush()

    def refuse(self, kind: str, why: str) -> None:
        """Close for a reason the owner should count and log (see ``refusal``)."""
        self.refusal = (kind, why)
        self.disconnect()

    def disconnect(self) -> None:
        was_open = self._state != CONNECTION_STATE.DISCONNECTED
        self.sendRandKey = None
        self.recvRandKey = None
        self.recvLastTimestamp = 0
        if self._fileno is not None:
            self._poller.unsubscribe(self._fileno)
            self._fileno = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._read_buf = bytearray()
        self._write_buf = bytearray()
        self._state = CONNECTION_STATE.DISCONNECTED
        if was_open:
            self._on_close(self)
            if self._on_disconnected is not None:
                self._on_disconnected()

    # ------------------------------------------------------------ internals

    def _configure(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._send_size)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._recv_size)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._keepalive is not None:
            set_keepalive(sock, *self._keepalive)
        sock.setblocking(False)

    def _adopt(self, sock: socket.socket, state: int) -> None:
        if self.incoming:
            self._configure(sock)
        self._sock = sock
        self._fileno = sock.fileno()
        self._state = state
        self._read_buf = bytearray()
        self._write_buf = bytearray()
        # An outgoing connection learns that it is connected from writability.
        self._writing = state == CONNECTION_STATE.CONNECTING
        now = time.monotonic()
        self.opened_at = self.last_read_at = now
        self.unanswered_since = None
        self.verified = False
        self.refusal = None
        self._poller.subscribe(self._fileno, self._on_event,
                               _READ_WRITE if self._writing else _READ)
        self._on_open(self)

    def _on_event(self, descr: int, event: int) -> None:
        if descr != self._fileno or self._sock is None:
            self._poller.unsubscribe(descr)
            return
        if event & POLL_EVENT_TYPE.ERROR:
            self.disconnect()
            return
        if self._state == CONNECTION_STATE.CONNECTING:
            if self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self.disconnect()  # refused, unreachable
                return
            self._state = CONNECTION_STATE.CONNECTED
            self.last_read_at = time.monotonic()
            if self._on_connected is not None:
                self._on_connected()
            if self._state != CONNECTION_STATE.CONNECTED:
                return
        if event & POLL_EVENT_TYPE.WRITE:
            self._flush()
        if event & POLL_EVENT_TYPE.READ and self._state == CONNECTION_STATE.CONNECTED:
            self._read()

    def _flush(self) -> None:
        sock = self._sock
        if sock is None:
            return
        while self._write_buf:
            try:
                sent = sock.send(self._write_buf)
            except _WOULD_BLOCK:
                break
            except OSError:
                self.disconnect()
                return
            if sent <= 0:
                break
            del self._write_buf[:sent]
        want_write = bool(self._write_buf)
        if want_write != self._writing and self._fileno is not None:
            self._writing = want_write
            self._poller.subscribe(self._fileno, self._on_event,
                                   _READ_WRITE if want_write else _READ)

    def _read(self) -> None:
        sock = self._sock
        for _ in range(_READS_PER_EVENT):
            if sock is None:
                return
            try:
                chunk = sock.recv(self._recv_size)
            except _WOULD_BLOCK:
                break
            except OSError:
                self.disconnect()
                return
            if not chunk:
                self.disconnect()
                return
            self._read_buf += chunk
            self.last_read_at = time.monotonic()
            self.unanswered_since = None
            if not self._deliver():
                return
            sock = self._sock
            if len(chunk) < self._recv_size:
                break

    def _deliver(self) -> bool:
        """Hand on every complete frame; False once the connection is closed."""
        buf = self._read_buf
        while len(buf) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(buf)
            if not 0 <= length <= self._max_frame:
                self.refuse("frame_size", f"a frame of {length} bytes "
                                          f"(the limit is {self._max_frame})")
                return False
            end = _LENGTH.size + length
            if len(buf) < end:
                return True
            frame = bytes(buf[_LENGTH.size:end])
            del buf[:end]
            message = self._open(frame)
            if message is None:
                self.refuse("unsealed", "a message not sealed with the cluster secret")
                return False
            self.verified = True
            if self._on_message is not None:
                self._on_message(message[0])
            if self._state == CONNECTION_STATE.DISCONNECTED:
                return False
            buf = self._read_buf
        return True

    def _open(self, frame: bytes) -> tuple[Any] | None:
        """The message in a frame (in a 1-tuple), or None if it does not open."""
        try:
            if self.encryptor:
                stamp = self.encryptor.extract_timestamp(frame)
                if stamp < self.recvLastTimestamp:
                    return None
                frame = self.encryptor.decrypt(frame)
                self.recvLastTimestamp = stamp
            message = peer_pickle.loads(frame)
            if self.recvRandKey:
                rand_key, message = message
                if rand_key != self.recvRandKey:
                    return None
        except Exception:  # a forged, altered or truncated frame
            return None
        return (message,)
