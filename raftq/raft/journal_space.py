"""The Raft log file's space: preallocated in chunks, a reserve kept ahead,
and the file system's free space; whether client writes should stop.

See "Space is preallocated" in ``raftq.raft.journal``: a full disk fails
``ensure`` with ``StorageFullError`` (nothing was added), never SIGBUS;
``low`` is true while the reserve cannot be kept or the file system has less
than ``low_water`` bytes free, so the replica can refuse client writes (507)
while Raft's own entries still fit.
"""

from __future__ import annotations

from raftq.raft.durable import FileOps, StorageFullError, directory_of, is_full


class JournalSpace:
    def __init__(self, path: str, ops: FileOps, *, chunk: int, reserve: int,
                 low_water: int) -> None:
        self.path = path
        self._ops = ops
        self.chunk = chunk
        self.reserve = reserve
        self.low_water = low_water
        self.allocated = 0  # bytes of the file allocated
        self.reserve_low = False  # the reserve could not be kept allocated
        self.disk_low = False  # the file system is (nearly) full

    @property
    def low(self) -> bool:
        """Client writes should be refused: the disk is (nearly) full."""
        return self.reserve_low or self.disk_low

    @property
    def problem(self) -> str | None:
        """Why ``low`` is true, in words for an operator; None when it is not."""
        if self.reserve_low:
            return (f"the disk holding {self.path} is full: the Raft log cannot keep "
                    f"{_mib(self.reserve)} allocated ahead")
        if self.disk_low:
            return (f"the disk holding {self.path} is nearly full: less than "
                    f"{_mib(self.low_water)} free")
        return None

    def check_free_space(self) -> None:
        try:
            free = self._ops.free_bytes(directory_of(self.path))
        except OSError:
            return
        self.disk_low = free < self.low_water

    def ensure(self, fd: int, need: int) -> None:
        """Make sure the file's first ``need`` bytes are allocated, the reserve too if it can."""
        if need + self.reserve > self.allocated:
            self.allocated = try_fallocate(self._ops, fd, self.allocated,
                                           need + self.reserve, self.chunk)
        self.reserve_low = need + self.reserve > self.allocated
        if need > self.allocated:
            raise StorageFullError(self.path, "growing the Raft log")

    def allocate_new(self, fd: int, size: int) -> int:
        """Preallocate a new file of ``size`` bytes and the reserve; the size got."""
        return try_fallocate(self._ops, fd, size, size + self.reserve, self.chunk)

    def replaced(self, size: int, allocated: int) -> None:
        """The file is now a new one of ``size`` bytes with ``allocated`` allocated."""
        self.allocated = allocated
        self.reserve_low = allocated < size + self.reserve


def _mib(size: int) -> str:
    return f"{size / (1 << 20):g} MiB"


def try_fallocate(ops: FileOps, fd: int, size: int, want: int, chunk: int) -> int:
    """Preallocate up to ``want`` rounded up to ``chunk`` if there is room; the size got."""
    target = -(-want // chunk) * chunk
    try:
        ops.fallocate(fd, size, target - size)
    except OSError as exc:
        if not is_full(exc):
            raise
        return max(size, ops.size(fd))
    return target
