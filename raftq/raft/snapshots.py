"""Snapshot files: written by a forked child, read back into a ``State``.

PySyncObj's ``fullDumpFile`` goes through the serializer, status checker and
deserializer configured here (see ``raftq.raft.replica``). The file is msgpack,
never pickle: the state as plain data, the Raft indexes it covers and the
cluster it was taken in.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

import msgpack
from pysyncobj.config import SERIALIZER_STATE
from pysyncobj.node import TCPNode

from raftq.state import snapshot
from raftq.state.machine import State

log = logging.getLogger(__name__)


class SnapshotWriter:
    """Writes snapshots in a forked child, so the node keeps serving meanwhile."""

    def __init__(self) -> None:
        self._pid: int | None = None

    def write(self, tmp_filename: str, state: State, raft_data: Any) -> None:
        """PySyncObj calls this inside a tick, between two applies, so the child's
        copy of the state is exactly the state at ``raft_data``'s last entry.
        The child writes ``<snapshot>.part``, fsyncs it and renames it over the
        snapshot; ``status`` tells PySyncObj when that happened, and only then
        does it drop the log entries the snapshot covers. (PySyncObj then tries
        to rename ``tmp_filename`` itself, which no longer exists; it ignores
        that failure because a status checker is configured.)
        """
        final = tmp_filename.removesuffix(".tmp")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_filename)  # never let PySyncObj move a stale file into place
        pid = os.fork()
        if pid:
            self._pid = pid
            return
        code = 1
        try:
            write_snapshot(final, state, raft_data)
            code = 0
        finally:
            os._exit(code)

    def status(self) -> int:
        pid = self._pid
        if pid is None:
            return int(SERIALIZER_STATE.NOT_SERIALIZING)
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done, status = pid, 1
        if done == 0:
            return int(SERIALIZER_STATE.SERIALIZING)
        self._pid = None
        if status == 0:
            return int(SERIALIZER_STATE.SUCCESS)
        log.error("snapshot writer exited with status %s", status)
        return int(SERIALIZER_STATE.FAILED)


def read_snapshot(filename: str) -> tuple[State, Any, Any, set[TCPNode]]:
    """The state, the last and before-last (index, term) and the cluster of a snapshot."""
    with open(filename, "rb") as f:
        data = msgpack.unpackb(f.read(), raw=False, strict_map_key=False)
    last, before_last = data["raft"]
    cluster = {TCPNode(a) for a in data["cluster"]}
    return snapshot.from_plain(data["state"]), tuple(last), tuple(before_last), cluster


def write_snapshot(path: str, state: State, raft_data: Any) -> None:
    last, before_last, cluster = raft_data
    blob = msgpack.packb(
        {
            "state": snapshot.to_plain(state),
            "raft": [list(last), list(before_last)],
            "cluster": sorted(str(n.address) for n in cluster),
        },
        use_bin_type=True,
    )
    part = path + ".part"
    with open(part, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)
