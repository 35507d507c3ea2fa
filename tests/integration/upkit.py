"""Running `raftq up` in tests: a config directory on free ports, its output read as it comes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


def write_configs(config_dir: Path, raft: int, port: int,
                  preset_admin_key: bool = True) -> list[str]:
    """Configs like the shipped ones; with ``preset_admin_key`` the admin key file
    holds the session's key (RAFTQ_API_KEY), else `raftq up` makes one."""
    config_dir.mkdir()
    if preset_admin_key:
        nodes = config_dir.parent / "nodes"
        nodes.mkdir(exist_ok=True)
        (nodes / "admin.key").write_text(os.environ["RAFTQ_API_KEY"] + "\n")
    urls = []
    for i in range(1, 4):
        peers = "".join(
            f"  - {{id: node{j}, raft_address: 127.0.0.1:{raft + j}, "
            f"http_address: 127.0.0.1:{port + j}}}\n"
            for j in range(1, 4) if j != i
        )
        (config_dir / f"node{i}.yaml").write_text(
            f"node_id: node{i}\nraft_address: 127.0.0.1:{raft + i}\n"
            f"http_address: 127.0.0.1:{port + i}\ndata_dir: ../nodes/node{i}\n"
            f"secret_file: ../nodes/cluster.secret\nadmin_key_file: ../nodes/admin.key\n"
            f"worker_key_file: ../nodes/worker.key\npeers:\n{peers}"
        )
        urls.append(f"http://127.0.0.1:{port + i}")
    return urls


class Up:
    """A `raftq up` process whose output lines are collected by a thread."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "raftq", "up", "--config-dir", str(cwd / "config"), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_line(self, pattern: str, timeout: float = 60, start: int = 0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[start:]:
                found = re.search(pattern, line)
                if found:
                    return found
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} in:\n{self.output}")

    def node_pids(self) -> dict[str, int]:
        self.wait_line("Ctrl-C stops everything")
        return {m.group(1): int(m.group(2))
                for m in re.finditer(r"(node\d): http://\S+ +\(raft \S+, pid (\d+)\)", self.output)}

    def close(self) -> None:
        """Kill `raftq up` and, if it left any behind, the children it reported."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in {int(p) for p in re.findall(r"pid (\d+)", self.output)}:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
