"""The journal's file format: encoding frames, and verifying a whole file.

Pure functions on bytes; ``raftq.raft.journal`` does the I/O. Little-endian,
CRC-32 is zlib's::

    header  b"RAFTQLOG" | version u32 | crc32 of the 12 bytes before (u32)
    frame   b"RQFR" | length u32 | crc32 of the payload u32
            | crc32 of the 12 bytes before u32 | payload
    ...     one frame per sync(); zeros (preallocated space) after the last

A frame's payload is msgpack ``[truncate_from, [[command, index, term], ...]]``
(never pickle): on load, entries with ``index >= truncate_from`` (unless nil)
are dropped, then the frame's entries are appended, each one following its
predecessor's index.

``scan`` verifies every frame. One sync writes one frame, so a crash can tear
only the last one, whatever order its pages reached the disk in: a bad frame
that no valid frame follows is a torn tail, reported for cutting off.
Anything else (a bad header, a bad frame followed by a valid one, a valid
frame whose content does not follow) raises ``CorruptDataError``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import Any

import msgpack

from raftq.raft.durable import CorruptDataError

Entry = tuple[bytes, int, int]

JOURNAL_MAGIC = b"RAFTQLOG"
JOURNAL_VERSION = 1
FRAME_MARK = b"RQFR"
REWRITE_FRAME_BYTES = 1 << 20

_HEADER = struct.Struct("<8sII")
_FRAME = struct.Struct("<4sIII")
FRAME_OVERHEAD = _FRAME.size + 15  # msgpack's [truncate_from (<= 9 bytes), array header (<= 5)]


def file_header() -> bytes:
    magic_version = struct.pack("<8sI", JOURNAL_MAGIC, JOURNAL_VERSION)
    return magic_version + struct.pack("<I", zlib.crc32(magic_version))


def encode_entry(command: bytes, idx: int, term: int) -> bytes:
    return packb([command, idx, term])


def frame(truncate_from: int | None, records: list[bytes]) -> bytes:
    """One frame holding the encoded entries ``records`` (see ``encode_entry``)."""
    payload = b"".join([b"\x92", packb(truncate_from), _array_header(len(records)), *records])
    head = struct.pack("<4sII", FRAME_MARK, len(payload), zlib.crc32(payload))
    return head + struct.pack("<I", zlib.crc32(head)) + payload


def frames(entries: list[Entry]) -> Iterator[bytes]:
    """``entries`` as frames of about ``REWRITE_FRAME_BYTES`` each."""
    chunk: list[bytes] = []
    size = 0
    for entry in entries:
        record = encode_entry(*entry)
        chunk.append(record)
        size += len(record)
        if size >= REWRITE_FRAME_BYTES:
            yield frame(None, chunk)
            chunk, size = [], 0
    if chunk:
        yield frame(None, chunk)


def scan(path: str, data: bytes) -> tuple[list[Entry], int, int]:
    """Verify a journal file's bytes: (entries, end of the last good frame,
    end of the torn bytes after it, equal to the former if there are none)."""
    _check_header(path, data)
    entries: list[Entry] = []
    pos = _HEADER.size
    while (found := _frame_at(data, pos)) is not None:
        end, payload = found
        _apply(path, pos, payload, entries)
        pos = end
    data_end = _data_end(data, pos)
    if data_end > pos:
        later = data.find(FRAME_MARK, pos + 1)
        while later != -1:
            if _frame_at(data, later) is not None:
                raise CorruptDataError(path, f"bad frame at offset {pos} followed by a "
                                             f"valid one at offset {later}")
            later = data.find(FRAME_MARK, later + 1)
    return entries, pos, data_end


def _check_header(path: str, data: bytes) -> None:
    if data.startswith(b"PYSYNCOBJ"):
        raise CorruptDataError(path, "this is PySyncObj's own journal format, not raftq's")
    if len(data) < _HEADER.size:
        raise CorruptDataError(path, f"{len(data)} bytes, shorter than the journal header")
    magic, version, crc = _HEADER.unpack_from(data)
    if magic != JOURNAL_MAGIC:
        raise CorruptDataError(path, f"bad magic {magic!r}, expected {JOURNAL_MAGIC!r}")
    if crc != zlib.crc32(data[:12]):
        raise CorruptDataError(path, "journal header checksum mismatch")
    if version != JOURNAL_VERSION:
        raise CorruptDataError(path, f"unknown journal format version {version}")


def _frame_at(data: bytes, pos: int) -> tuple[int, memoryview] | None:
    if pos + _FRAME.size > len(data):
        return None
    mark, length, crc, header_crc = _FRAME.unpack_from(data, pos)
    if mark != FRAME_MARK or header_crc != zlib.crc32(data[pos:pos + 12]):
        return None
    start = pos + _FRAME.size
    end = start + length
    if end > len(data):
        return None
    payload = memoryview(data)[start:end]
    if zlib.crc32(payload) != crc:
        return None
    return end, payload


def _apply(path: str, pos: int, payload: memoryview, entries: list[Entry]) -> None:
    """Apply one verified frame to the entries loaded so far."""
    bad = CorruptDataError(path, f"the frame at offset {pos} has a valid checksum but "
                                 "does not decode as journal entries")
    try:
        truncate_from, items = msgpack.unpackb(payload, raw=False)
    except (ValueError, TypeError) as exc:
        raise bad from exc
    if not (truncate_from is None or is_int(truncate_from)) or not isinstance(items, list):
        raise bad
    if truncate_from is not None and entries:
        del entries[max(0, truncate_from - entries[0][1]):]
    for item in items:
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], bytes)
                and is_int(item[1]) and is_int(item[2])):
            raise bad
        if entries and item[1] != entries[-1][1] + 1:
            raise CorruptDataError(path, f"the frame at offset {pos} holds entry {item[1]}, "
                                         f"which does not follow {entries[-1][1]}")
        entries.append((item[0], item[1], item[2]))


def _data_end(data: bytes, floor: int) -> int:
    """One past the last non-zero byte at or after ``floor`` (``floor`` if none)."""
    end = len(data)
    while end > floor:
        start = max(floor, end - (1 << 20))
        kept = len(data[start:end].rstrip(b"\0"))
        if kept:
            return start + kept
        end = start
    return floor


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes([0x90 | n])
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def packb(obj: Any) -> bytes:
    data: bytes = msgpack.packb(obj, use_bin_type=True)
    return data


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
