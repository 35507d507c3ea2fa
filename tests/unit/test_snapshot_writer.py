"""The snapshot writer's child holds none of the node's sockets and dies with the node
(raftq.raft.snapshots.bound_to_the_node): after kill -9 the node restarts on its ports;
and it runs at a lower priority than the node."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from raftq.raft.snapshots import WRITER_NICE

CHILD = textwrap.dedent("""
    import os, socket, sys, time
    from raftq.raft import snapshots
    from raftq.state.machine import State

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    def slow_write(*args, **kwargs):
        time.sleep(60)
    snapshots.write_snapshot = slow_write
    if sys.argv[1] != "bound":
        snapshots.bound_to_the_node = lambda parent: None
    writer = snapshots.SnapshotWriter("none")
    writer.write(sys.argv[2] + ".tmp", State(), None)
    print(listener.getsockname()[1], writer._pid, flush=True)
    time.sleep(60)
""")


def _run(mode: str, tmp_path: Path) -> tuple[int, int, int]:
    """Start a 'node' with a listening socket and a writer child; kill -9 the node; the
    port, the child's pid and how much nicer than the node the child became."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode, str(tmp_path / "snap")],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port, child = map(int, proc.stdout.readline().split())
    base, deadline = os.getpriority(os.PRIO_PROCESS, proc.pid), time.monotonic() + 2
    while (nicer := os.getpriority(os.PRIO_PROCESS, child) - base) == 0 \
            and mode == "bound" and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return port, child, nicer


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[1][0] != "Z"


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_the_writer_child_dies_with_the_node_and_frees_its_ports(tmp_path: Path) -> None:
    port, child, nicer = _run("bound", tmp_path)
    assert nicer == WRITER_NICE  # and it yields the CPU to the node meanwhile
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(child)
    assert _bindable(port)


def test_without_it_the_child_outlives_the_node_and_holds_its_port(tmp_path: Path) -> None:
    """What the test above guards against, shown to happen."""
    port, child, nicer = _run("unbound", tmp_path)
    assert nicer == 0
    try:
        time.sleep(0.3)
        assert _alive(child)
        assert not _bindable(port)
    finally:
        os.kill(child, signal.SIGKILL)
