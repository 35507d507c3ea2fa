"""Snapshot files: written by a forked child, read back into a ``State``.

PySyncObj's ``fullDumpFile`` goes through the serializer, status checker and
deserializer configured here (see ``raftq.raft.replica``). The payload is
msgpack, never pickle: the state as plain data, the Raft indexes it covers and
the cluster it was taken in. It is framed and checksummed by
``raftq.raft.durable`` (written atomically, fsynced with its directory under
durability "fsync", verified before it is loaded).

A snapshot that cannot be written (a full disk) is retried after
``RETRY_AFTER_FAILURE_S``, not at every tick: PySyncObj would start a new one
at once, a fork every few milliseconds.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import time
from typing import Any

import msgpack
from pysyncobj.config import SERIALIZER_STATE
from pysyncobj.node import TCPNode

from raftq.raft.durable import (
    Durability,
    StorageFullError,
    read_snapshot_file,
    write_snapshot_file,
)
from raftq.state import snapshot
from raftq.state.machine import State

log = logging.getLogger(__name__)

RETRY_AFTER_FAILURE_S = 10.0
# The writer child's exit status when the disk is full.
EXIT_STORAGE_FULL = 3
PR_SET_PDEATHSIG = 1  # prctl(2)
WRITER_NICE = 10
MAX_FD = 1 << 20  # closerange is one close_range(2) call on Linux, whatever the bound


class SnapshotWriter:
    """Writes snapshots in a forked child, so the node keeps serving meanwhile."""

    def __init__(self, durability: Durability = "fsync") -> None:
        self.durability = durability
        self._pid: int | None = None
        self._path = ""
        self._retry_at = 0.0
        self.last_bytes = 0  # the size of the latest snapshot file (raftq.raft.compaction)
        # Why the last snapshot could not be written for lack of space, until
        # one is written again.
        self.storage_full: str | None = None

    def write(self, tmp_filename: str, state: State, raft_data: Any) -> None:
        """PySyncObj calls this inside a tick, between two applies, so the child's
        copy of the state is exactly the state at ``raft_data``'s last entry.
        The child writes ``<snapshot>.new``, fsyncs it, renames it over the
        snapshot and fsyncs the directory; ``status`` tells PySyncObj when that
        happened, and only then does it drop the log entries the snapshot
        covers. (PySyncObj then tries to rename ``tmp_filename`` itself, which
        no longer exists; it ignores that failure because a status checker is
        configured.)
        """
        final = self._path = tmp_filename.removesuffix(".tmp")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_filename)  # never let PySyncObj move a stale file into place
        parent = os.getpid()
        pid = os.fork()
        if pid:
            self._pid = pid
            return
        code = 1
        try:
            bound_to_the_node(parent)
            write_snapshot(final, state, raft_data, self.durability)
            code = 0
        except StorageFullError as exc:
            log.error("%s", exc)
            code = EXIT_STORAGE_FULL
        except BaseException:
            log.exception("writing the snapshot %s failed", final)
        finally:
            os._exit(code)

    @property
    def busy(self) -> bool:
        """A snapshot is being written, or waits for its retry after a failure."""
        return self._pid is not None

    def status(self) -> int:
        pid = self._pid
        if pid is None:
            return int(SERIALIZER_STATE.NOT_SERIALIZING)
        if pid < 0:  # failed: report it once the retry delay has passed
            if time.monotonic() < self._retry_at:
                return int(SERIALIZER_STATE.SERIALIZING)
            self._pid = None
            return int(SERIALIZER_STATE.FAILED)
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done, status = pid, 1
        if done == 0:
            return int(SERIALIZER_STATE.SERIALIZING)
        if status == 0:
            self._pid = None
            self.storage_full = None
            with contextlib.suppress(OSError):
                self.last_bytes = os.path.getsize(self._path)
            return int(SERIALIZER_STATE.SUCCESS)
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_STORAGE_FULL:
            self.storage_full = "the last snapshot could not be written: the disk is full"
        else:
            log.error("snapshot writer exited with status %s", status)
        self._pid = -1
        self._retry_at = time.monotonic() + RETRY_AFTER_FAILURE_S
        return int(SERIALIZER_STATE.SERIALIZING)


def bound_to_the_node(parent: int) -> None:
    """In the writer child: hold none of the node's descriptors, die with the node,
    and yield the CPU to it (``WRITER_NICE``).

    A child that outlived a node killed with -9 kept its listening sockets (the
    restarted node could not bind its ports: "already in use") and its peer
    connections open, and went on to rename a snapshot into place under the new
    node, racing the new node's own writer for ``<snapshot>.new``. So it closes
    every inherited descriptor but the standard ones, and asks the kernel for
    SIGKILL when its parent dies (``PR_SET_PDEATHSIG``, Linux; elsewhere only the
    descriptors are closed). A torn ``.new`` is never read: the next writer
    truncates it.
    """
    os.closerange(3, MAX_FD)
    # Background work: the node's own loop (heartbeats, commits) comes first on a
    # busy machine; a snapshot of a million tasks is seconds of CPU.
    with contextlib.suppress(OSError):
        os.nice(WRITER_NICE)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the request was made
        os._exit(1)


def read_snapshot(filename: str, payload: bytes | None = None
                  ) -> tuple[State, Any, Any, set[TCPNode]]:
    """The state, the last and before-last (index, term) and the cluster of a snapshot
    (``payload``: its verified payload, if it was read already)."""
    if payload is None:
        payload = read_snapshot_file(filename)
    data = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    del payload
    last, before_last = data["raft"]
    cluster = {TCPNode(a) for a in data["cluster"]}
    return snapshot.from_plain(data["state"]), tuple(last), tuple(before_last), cluster


def write_snapshot(path: str, state: State, raft_data: Any,
                   durability: Durability = "fsync") -> None:
    last, before_last, cluster = raft_data
    blob = msgpack.packb(
        {
            "state": snapshot.to_plain(state),
            "raft": [list(last), list(before_last)],
            "cluster": sorted(str(n.address) for n in cluster),
        },
        use_bin_type=True,
    )
    write_snapshot_file(path, blob, durability=durability)
