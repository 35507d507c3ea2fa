"""How PySyncObj's peer messages are sealed: AES-GCM, uncompressed.

PySyncObj frames every peer message as ``Fernet(zlib(pickle(message)))``.
Fernet (AES-CBC, HMAC-SHA256 and base64, with a second base64 decode just to
read the timestamp) plus zlib cost a node ~15% of its CPU under load, for
messages of a few hundred bytes on a LAN. raftq swaps in, for every node
built by ``raftq.raft.loop.build_on_loop``:

- ``WireCipher``: AES-256-GCM with the key derived from the cluster secret
  (PBKDF2-SHA256, 100,000 rounds, a raftq-specific salt). A sealed message is
  ``timestamp (8 bytes) | nonce (12) | ciphertext and tag``; the timestamp is
  authenticated as associated data, so PySyncObj's replay check (timestamps
  never go back on a connection, plus the per-connection random key inside
  every message) keeps working unchanged. Nonces are a random per-process
  prefix and a counter started from the wall clock in nanoseconds, so they
  do not repeat across restarts.
- No compression: ``raftq.raft.peer.PeerConnection``, which carries every
  peer message, sends the sealed pickle as it is.

Every node of a cluster must run the same wire format (nodes with the old one
cannot decrypt and are disconnected); the secret stays mandatory.
"""

from __future__ import annotations

import itertools
import os
import struct
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

SALT = b"raftq wire v1: aes-256-gcm"
_HEADER = struct.Struct(">Q12s")


class WireCipher:
    """The object PySyncObj calls its encryptor, sealing with AES-GCM."""

    def __init__(self, secret: str | bytes) -> None:
        password = secret.encode() if isinstance(secret, str) else secret
        kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=SALT, iterations=100_000)
        self._aead = AESGCM(kdf.derive(password))
        self._prefix = os.urandom(4)
        self._counter = itertools.count(time.time_ns())

    def _nonce(self) -> bytes:
        return self._prefix + (next(self._counter) & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(8, "big")

    def encrypt_at_time(self, data: bytes, timestamp: int) -> bytes:
        nonce = self._nonce()
        header = _HEADER.pack(timestamp, nonce)
        return header + self._aead.encrypt(nonce, data, header[:8])

    def extract_timestamp(self, token: bytes) -> int:
        timestamp: int = _HEADER.unpack_from(token)[0]
        return timestamp

    def decrypt(self, token: bytes) -> bytes:
        """The plaintext; raises if the token was not sealed with our key or was altered."""
        header = token[:_HEADER.size]
        nonce = _HEADER.unpack(header)[1]
        return self._aead.decrypt(nonce, token[_HEADER.size:], header[:8])
