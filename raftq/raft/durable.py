"""Durable files for the Raft layer: the file-system calls, atomic replacement,
checksummed single-record files (the snapshot; the meta file has its own slots).

Contract:

- Every file-system call the journal and the snapshot code make goes through a
  ``FileOps`` object. Tests pass a subclass that counts syncs and injects
  ``ENOSPC``; production uses the plain one.
- ``write_framed`` replaces a file atomically: write ``<path>.new``, fsync it,
  rename it over ``<path>``, fsync the directory. Whoever reads ``<path>``
  after a crash at any point sees the old content or the new, never a mix,
  and once the call returns the new content survives power loss. With
  ``durable=False`` the fsyncs are skipped: the file then survives a crash
  of the process, not of the machine.
- ``read_framed`` verifies before it returns: a wrong magic, an unknown
  version, a length that does not match the file or a checksum mismatch
  raise ``CorruptDataError``, which names the file and tells the operator
  what to do.
- A full disk (``ENOSPC``, ``EDQUOT``) raises ``StorageFullError`` and leaves
  the previous file in place.

Framed file format (all integers little-endian)::

    magic    8 bytes   which file this is (b"RAFTQSNP" for snapshots)
    version  u32       format version, 1
    length   u64       payload length; the file is exactly 24 + length bytes
    crc      u32       CRC-32 (zlib) of the payload
    payload  length bytes

Snapshots: PySyncObj's ``fullDumpFile`` is written through
``write_snapshot_file`` and read through ``read_snapshot_file``. PySyncObj
swallows any exception raised while it loads that file and runs on with an
empty state; ``SnapshotGuard`` remembers the exception so the replica can stop
the node instead.
"""

from __future__ import annotations

import errno
import os
import struct
import zlib
from collections.abc import Callable
from typing import Literal, TypeVar

from raftq.errors import CorruptData, InsufficientStorage

Durability = Literal["fsync", "none"]
DURABILITIES: tuple[Durability, ...] = ("fsync", "none")

SNAPSHOT_MAGIC = b"RAFTQSNP"
FRAMED_VERSION = 1
_FRAMED_HEADER = struct.Struct("<8sIQI")
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)

T = TypeVar("T")


class CorruptDataError(CorruptData):
    """A data file failed verification; the node must not start from it."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(
            f"{path}: {detail}. The node's data cannot be verified; restart it with "
            "`raftq node --config <its config file> --rejoin` to move the data aside "
            "and catch up from the cluster"
        )
        self.path = path
        self.detail = detail


class StorageFullError(InsufficientStorage):
    """The disk is full: nothing was recorded; retry once space is freed."""

    def __init__(self, path: str, what: str) -> None:
        super().__init__(f"{path}: no space left on the device while {what}; free some space")
        self.path = path


def is_full(exc: OSError) -> bool:
    return exc.errno in _FULL_ERRNOS


class FileOps:
    """The file-system calls of the journal and snapshot code, one place to fake them."""

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        return os.open(path, flags, mode)

    def close(self, fd: int) -> None:
        os.close(fd)

    def size(self, fd: int) -> int:
        return os.fstat(fd).st_size

    def pwrite(self, fd: int, data: bytes, offset: int) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(fd, view, offset)
            view, offset = view[written:], offset + written

    def fallocate(self, fd: int, offset: int, length: int) -> None:
        """Reserve blocks, so that later writes there cannot fail for space."""
        try:
            os.posix_fallocate(fd, offset, length)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            self.pwrite(fd, bytes(length), offset)  # no fallocate here: write the zeros

    def fdatasync(self, fd: int) -> None:
        os.fdatasync(fd)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def replace(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def unlink(self, path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def free_bytes(self, path: str) -> int:
        """Bytes an unprivileged writer may still use on ``path``'s file system."""
        st = os.statvfs(path)
        return st.f_bavail * st.f_frsize

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def read_file(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()


def directory_of(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


def fsync_file_and_dir(path: str, ops: FileOps) -> None:
    """Make a file someone else wrote and renamed (PySyncObj) survive power loss."""
    fd = ops.open(path, os.O_RDONLY)
    try:
        ops.fsync(fd)
    finally:
        ops.close(fd)
    ops.fsync_dir(directory_of(path))


def write_atomic(path: str, data: bytes, *, durable: bool, ops: FileOps) -> None:
    """Replace ``path`` by ``data``: all or nothing, durable on return if ``durable``."""
    tmp = path + ".new"
    try:
        fd = ops.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            ops.pwrite(fd, data, 0)
            if durable:
                ops.fsync(fd)
        finally:
            ops.close(fd)
        ops.replace(tmp, path)
    except OSError as exc:
        ops.unlink(tmp)
        if is_full(exc):
            raise StorageFullError(path, "writing it") from exc
        raise
    if durable:
        ops.fsync_dir(directory_of(path))


def frame_bytes(magic: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(payload)
    return _FRAMED_HEADER.pack(magic, FRAMED_VERSION, len(payload), crc) + payload


def unframe(path: str, magic: bytes, data: bytes) -> bytes:
    """The payload of a framed file's bytes; ``CorruptDataError`` if anything is off."""
    if len(data) < _FRAMED_HEADER.size:
        raise CorruptDataError(path, f"truncated: {len(data)} bytes, shorter than the header")
    found, version, length, crc = _FRAMED_HEADER.unpack_from(data)
    if found != magic:
        raise CorruptDataError(path, f"bad magic {found!r}, expected {magic!r}")
    if version != FRAMED_VERSION:
        raise CorruptDataError(path, f"unknown format version {version}")
    if _FRAMED_HEADER.size + length != len(data):
        raise CorruptDataError(
            path, f"the header says {length} payload bytes, the file holds "
            f"{len(data) - _FRAMED_HEADER.size} (truncated or overwritten)")
    payload = data[_FRAMED_HEADER.size:]
    if zlib.crc32(payload) != crc:
        raise CorruptDataError(path, "checksum mismatch")
    return payload


def write_framed(path: str, magic: bytes, payload: bytes, *, durable: bool,
                 ops: FileOps) -> None:
    write_atomic(path, frame_bytes(magic, payload), durable=durable, ops=ops)


def read_framed(path: str, magic: bytes, *, ops: FileOps) -> bytes:
    return unframe(path, magic, ops.read_file(path))


def write_snapshot_file(path: str, payload: bytes, *, durability: Durability = "fsync",
                        ops: FileOps | None = None) -> None:
    """Write a snapshot (PySyncObj's ``fullDumpFile``) atomically and checksummed.

    Safe to call in a forked child: it uses no state shared with the parent
    and a temporary name (``<path>.new``) that PySyncObj never touches.
    """
    write_framed(path, SNAPSHOT_MAGIC, payload, durable=durability == "fsync",
                 ops=ops or FileOps())


def read_snapshot_file(path: str, *, ops: FileOps | None = None) -> bytes:
    """The verified payload of a snapshot file; ``CorruptDataError`` on any mismatch."""
    return read_framed(path, SNAPSHOT_MAGIC, ops=ops or FileOps())


def check_snapshot_file(path: str, *, ops: FileOps | None = None) -> bool:
    """Verify the snapshot before PySyncObj starts (it would swallow the failure).

    False if there is none, True if it verifies, ``CorruptDataError`` otherwise.
    """
    ops = ops or FileOps()
    if not ops.exists(path):
        return False
    read_snapshot_file(path, ops=ops)
    return True


class SnapshotGuard:
    """Remembers a snapshot load failure that PySyncObj would log and swallow.

    PySyncObj's ``__loadDumpFile`` wraps the deserializer in a bare
    ``except:`` and carries on with the state it had (empty at start-up).
    Wrap the deserializer with ``guard.wrap`` and call ``guard.raise_if_failed``
    after every ``doTick``: the node then stops instead of serving from a
    state that is not the cluster's.
    """

    def __init__(self) -> None:
        self.error: CorruptDataError | None = None

    def wrap(self, deserializer: Callable[[str], T]) -> Callable[[str], T]:
        def guarded(path: str) -> T:
            try:
                return deserializer(path)
            except CorruptDataError as exc:
                self.error = self.error or exc
                raise
            except Exception as exc:
                self.error = self.error or CorruptDataError(path, f"loading it failed: {exc!r}")
                raise

        return guarded

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error
