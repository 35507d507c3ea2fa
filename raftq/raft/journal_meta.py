"""The journal's meta file: the current term, the vote and the commit index.

Contract:

- The file is two fixed slots of ``SLOT_BYTES``, written in turn in place
  (``pwrite`` then, with durability "fsync", ``fdatasync``) into blocks
  written when the file was created. An update therefore needs no new disk
  space (a node on a full disk still grants votes and follows a new term) and
  no rename; a write torn by a crash spoils only the slot being written, and
  the other still holds the values before it.
- Each slot is framed as in ``raftq.raft.durable`` (magic ``RAFTQMET``,
  version, length, CRC-32) around msgpack ``{"seq", "term", "vote",
  "commit"}``, then zeros; a slot never written is all zeros.
- ``load`` returns the values of the valid slot with the higher ``seq``. One
  damaged slot is taken for a torn write and reported in one warning; a file
  of the wrong size, or with no valid slot, raises ``CorruptDataError``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import msgpack

from raftq.raft.durable import (
    CorruptDataError,
    FileOps,
    StorageFullError,
    frame_bytes,
    is_full,
    unframe,
    write_atomic,
)
from raftq.raft.journal_format import is_int, packb

log = logging.getLogger(__name__)

META_MAGIC = b"RAFTQMET"
SLOT_BYTES = 512
FILE_BYTES = 2 * SLOT_BYTES
_HEADER_BYTES = 24  # durable's framed header: magic, version, length, crc

Meta = tuple[int, Any, int]  # term, vote, commit index


class MetaFile:
    def __init__(self, path: str, *, durable: bool, ops: FileOps) -> None:
        self.path = path
        self._durable = durable
        self._ops = ops
        self._seq = 0
        self._fd = -1

    def load(self) -> Meta:
        """The saved values; creates the file (term 0, no vote) if there is none."""
        if not self._ops.exists(self.path):
            initial = self._slot(0, (0, None, 1)) + bytes(SLOT_BYTES)
            write_atomic(self.path, initial, durable=self._durable, ops=self._ops)
            self._fd = self._ops.open(self.path, os.O_RDWR)
            return 0, None, 1
        data = self._ops.read_file(self.path)
        if len(data) != FILE_BYTES:
            raise CorruptDataError(self.path, f"{len(data)} bytes, expected {FILE_BYTES} "
                                              "(truncated, or not raftq's meta file)")
        found: list[tuple[int, Meta]] = []
        damaged: list[str] = []
        for i in range(2):
            slot = data[i * SLOT_BYTES:(i + 1) * SLOT_BYTES]
            if slot == bytes(SLOT_BYTES):
                continue
            try:
                found.append(self._parse(slot))
            except CorruptDataError as exc:
                damaged.append(exc.detail)
        if not found:
            detail = ("no valid record: " + "; ".join(damaged)) if damaged else "no record"
            raise CorruptDataError(self.path, detail)
        if damaged:
            log.warning("%s: one of its two records is damaged (%s), taken for a write torn "
                        "by a crash; using the other one", self.path, damaged[0])
        self._seq, meta = max(found, key=lambda f: f[0])
        self._fd = self._ops.open(self.path, os.O_RDWR)
        return meta

    def save(self, meta: Meta) -> None:
        """Durable on return with durability "fsync". ``StorageFullError`` should
        a file system still want space for it; any other ``OSError`` from the
        fdatasync means the file can no longer be trusted."""
        seq = self._seq + 1
        try:
            self._ops.pwrite(self._fd, self._slot(seq, meta), (seq % 2) * SLOT_BYTES)
            if self._durable:
                self._ops.fdatasync(self._fd)
        except OSError as exc:
            if is_full(exc):
                raise StorageFullError(self.path, "saving the term and vote") from exc
            raise
        self._seq = seq

    def close(self) -> None:
        if self._fd >= 0:
            self._ops.close(self._fd)
            self._fd = -1

    def _slot(self, seq: int, meta: Meta) -> bytes:
        term, vote, commit = meta
        framed = frame_bytes(META_MAGIC, packb({"seq": seq, "term": term, "vote": vote,
                                                 "commit": commit}))
        if len(framed) > SLOT_BYTES:
            raise ValueError(f"the vote {vote!r} does not fit in a {SLOT_BYTES}-byte record")
        return framed + bytes(SLOT_BYTES - len(framed))

    def _parse(self, slot: bytes) -> tuple[int, Meta]:
        length = int.from_bytes(slot[12:20], "little")
        end = _HEADER_BYTES + length
        if end > SLOT_BYTES or any(slot[end:]):
            raise CorruptDataError(self.path, "a record's length or padding is damaged")
        payload = unframe(self.path, META_MAGIC, slot[:end])
        try:
            meta = msgpack.unpackb(payload, raw=False)
            seq, term, vote, commit = meta["seq"], meta["term"], meta["vote"], meta["commit"]
        except (ValueError, TypeError, KeyError) as exc:
            raise CorruptDataError(self.path, f"a record does not decode: {exc!r}") from exc
        if not (is_int(seq) and is_int(term) and is_int(commit)):
            raise CorruptDataError(self.path, f"bad term {term!r} or commit {commit!r}")
        return seq, (term, vote, commit)
