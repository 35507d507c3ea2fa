"""Checksummed snapshot files: a round trip, and any truncation or damaged byte refused."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from raftq.raft.durable import (
    CorruptDataError,
    FileOps,
    SnapshotGuard,
    StorageFullError,
    check_snapshot_file,
    read_snapshot_file,
    write_snapshot_file,
)

PAYLOAD = bytes(range(256)) * 3


class CountingOps(FileOps):
    def __init__(self) -> None:
        self.synced: list[str] = []
        self.full = False

    def pwrite(self, fd: int, data: bytes, offset: int) -> None:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        super().pwrite(fd, data, offset)

    def fsync(self, fd: int) -> None:
        self.synced.append("file")
        super().fsync(fd)

    def fsync_dir(self, path: str) -> None:
        self.synced.append("dir")
        super().fsync_dir(path)


def test_a_snapshot_round_trips_and_is_synced_file_then_directory(tmp_path: Path) -> None:
    path = str(tmp_path / "raft.snapshot")
    ops = CountingOps()
    write_snapshot_file(path, PAYLOAD, ops=ops)
    assert ops.synced == ["file", "dir"]
    assert read_snapshot_file(path) == PAYLOAD
    assert check_snapshot_file(path)
    assert not check_snapshot_file(str(tmp_path / "none"))


def test_without_durability_nothing_is_synced(tmp_path: Path) -> None:
    ops = CountingOps()
    write_snapshot_file(str(tmp_path / "s"), PAYLOAD, durability="none", ops=ops)
    assert ops.synced == []


def test_a_full_disk_keeps_the_previous_snapshot(tmp_path: Path) -> None:
    path = str(tmp_path / "raft.snapshot")
    write_snapshot_file(path, b"old")
    ops = CountingOps()
    ops.full = True
    with pytest.raises(StorageFullError):
        write_snapshot_file(path, PAYLOAD, ops=ops)
    assert read_snapshot_file(path) == b"old"
    assert not (tmp_path / "raft.snapshot.new").exists()


def test_a_truncated_snapshot_is_refused_whatever_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "raft.snapshot"
    write_snapshot_file(str(path), PAYLOAD)
    data = path.read_bytes()
    for missing in range(1, len(data) + 1):
        path.write_bytes(data[:-missing])
        with pytest.raises(CorruptDataError) as info:
            read_snapshot_file(str(path))
        assert str(path) in str(info.value) and "--rejoin" in str(info.value)


def test_a_snapshot_with_any_damaged_byte_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "raft.snapshot"
    write_snapshot_file(str(path), PAYLOAD)
    data = path.read_bytes()
    for pos in range(len(data)):
        damaged = bytearray(data)
        damaged[pos] ^= 0x01 << (pos % 8)
        path.write_bytes(bytes(damaged))
        with pytest.raises(CorruptDataError):
            check_snapshot_file(str(path))


def test_an_unframed_snapshot_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "raft.snapshot"
    path.write_bytes(b"\x83\xa5state" + PAYLOAD)  # the msgpack files written before framing
    with pytest.raises(CorruptDataError, match="bad magic"):
        read_snapshot_file(str(path))


def test_the_guard_keeps_the_failure_pysyncobj_swallows(tmp_path: Path) -> None:
    path = tmp_path / "raft.snapshot"
    path.write_bytes(b"garbage")
    guard = SnapshotGuard()
    load = guard.wrap(lambda p: read_snapshot_file(p))
    guard.raise_if_failed()
    try:  # what PySyncObj's __loadDumpFile does
        load(str(path))
    except:  # noqa: E722
        pass
    with pytest.raises(CorruptDataError, match="raft.snapshot"):
        guard.raise_if_failed()

    def decode(p: str) -> dict[str, int]:
        raise KeyError("state")  # the payload verified but did not decode

    other = SnapshotGuard()
    broken = other.wrap(decode)
    with pytest.raises(KeyError):
        broken(str(path))
    with pytest.raises(CorruptDataError, match="loading it failed"):
        other.raise_if_failed()
