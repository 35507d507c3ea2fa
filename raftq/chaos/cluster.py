"""The raftq nodes under test: their configs, their processes, their status.

Each node is a real ``python -m raftq node --config FILE`` process, started in
its namespace when the network has them, its output appended to
``<run>/logs/<node>.log`` across restarts. Signals go to the node's own pid
(``ip netns exec`` execs the interpreter, so the pid is the node's).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from raftq.chaos.http import Reply, call
from raftq.chaos.net import Network
from raftq.server.auth import node_token
from raftq.server.clock import SHIM_ENV


@dataclass
class NodeStatus:
    node: str
    role: str | None
    term: int | None
    leader: str | None
    applied_index: int | None
    raw: dict[str, Any]


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class Cluster:
    def __init__(
        self, net: Network, run_dir: Path, *, secret: str,
        node_settings: dict[str, Any] | None = None,
    ) -> None:
        self.net = net
        self.node_ids = list(net.node_ids)
        self.spares: list[str] = []  # nodes of the network not (yet) in the cluster
        self.run_dir = run_dir
        self.secret = secret
        self.admin_key = "rq_" + secrets.token_urlsafe(32)
        # Status reads present the nodes' own token (reader role, derived from the
        # secret): it works before a node has applied the key table.
        self.status_key = node_token(secret)
        self.node_settings = node_settings or {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.paused: set[str] = set()
        self.data_dirs: dict[str, Path] = {}
        """Where a node's data lives when not in the run directory (its own filesystem)."""
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="status")
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        (run_dir / "configs").mkdir(parents=True, exist_ok=True)
        (run_dir / "shims").mkdir(parents=True, exist_ok=True)

    def url(self, node_id: str) -> str:
        return f"http://{self.net.http_address(node_id)}"

    @property
    def urls(self) -> list[str]:
        return [self.url(n) for n in self.node_ids]

    def config_path(self, node_id: str) -> Path:
        return self.run_dir / "configs" / f"{node_id}.yaml"

    def data_dir(self, node_id: str) -> Path:
        return self.data_dirs.get(node_id, self.run_dir / "data" / node_id)

    def log_path(self, node_id: str) -> Path:
        return self.run_dir / "logs" / f"{node_id}.log"

    def write_configs(self) -> None:
        key_file = self.run_dir / "configs" / "admin.key"
        key_file.write_text(self.admin_key + "\n")
        key_file.chmod(0o600)
        for node in self.node_ids:
            self.write_config(node)

    def write_config(self, node: str, join: str | None = None) -> None:
        """``node``'s config: the current members as its peers, or ``join`` a member."""
        self.data_dir(node).mkdir(parents=True, exist_ok=True)
        others = [p for p in self.net.node_ids if p != node]
        config = {
            "node_id": node,
            "raft_address": self.net.raft_address(node),
            "http_address": self.net.http_address(node),
            "data_dir": str(self.data_dir(node)),
            "secret": self.secret,
            "admin_key_file": str(self.run_dir / "configs" / "admin.key"),
            "peers": [] if join else [
                {"id": peer, "raft_address": self.net.raft_address(peer),
                 "http_address": self.net.http_address(peer)}
                for peer in self.node_ids if peer != node
            ],
            **({"join": join} if join else {}),
            # Through the harness's proxy, when the network has one.
            "raft_dial": {self.net.raft_address(p): self.net.peer_raft_address(node, p)
                          for p in others
                          if self.net.peer_raft_address(node, p) != self.net.raft_address(p)},
            **self.node_settings,
        }
        self.config_path(node).write_text(yaml.safe_dump(config, sort_keys=False))

    # processes

    def start(self, node_id: str, *extra_args: str) -> None:
        assert not self.alive(node_id), f"{node_id} is running"
        log = self.log_path(node_id).open("ab")
        log.write(f"\n==== chaos: start {node_id} at {time.time():.3f}\n".encode())
        log.flush()
        cmd = [*self.net.command_prefix(node_id), sys.executable, "-m", "raftq", "node",
               "--config", str(self.config_path(node_id)), *extra_args]
        env = {**os.environ, SHIM_ENV: str(self.shim_path(node_id))}
        self.procs[node_id] = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
        log.close()

    def shim_path(self, node_id: str) -> Path:
        return self.run_dir / "shims" / node_id

    def skew(self, node_id: str, shift_ms: int) -> None:
        """Step the node's wall clock by ``shift_ms`` (0: back to true) through its
        time shim, which the node re-reads every tick."""
        path = self.shim_path(node_id)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(str(shift_ms))
        tmp.replace(path)

    def serving(self, node_id: str) -> bool:
        return call(self.url(node_id), "GET", "/healthz", timeout=1.0).status == 200

    def wait_serving(self, nodes: list[str], timeout: float = 60.0) -> bool:
        """Wait until every one of ``nodes`` answers ``/healthz`` (its process has booted)."""
        return wait_for(lambda: all(self.serving(n) for n in nodes), timeout, interval=0.05)

    def wait_keys(self, timeout: float = 30.0) -> bool:
        """Wait until every node accepts the admin key (it has applied its bootstrap)."""
        return wait_for(lambda: all(
            call(self.url(n), "GET", "/v1/queues", timeout=1.0, api_key=self.admin_key).status
            == 200 for n in self.node_ids), timeout, interval=0.05)

    def alive(self, node_id: str) -> bool:
        proc = self.procs.get(node_id)
        return proc is not None and proc.poll() is None

    def signal(self, node_id: str, sig: signal.Signals) -> None:
        proc = self.procs[node_id]
        if proc.poll() is None:
            proc.send_signal(sig)

    def kill(self, node_id: str) -> None:
        """SIGKILL and reap (a paused node dies too)."""
        if self.alive(node_id):
            self.signal(node_id, signal.SIGKILL)
            self.procs[node_id].wait(timeout=10)
        self.paused.discard(node_id)

    def kill_group(self, node_id: str) -> None:
        """SIGKILL the node's whole process group (a forked snapshot writer too) and reap."""
        proc = self.procs.get(node_id)
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: pgid == pid
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
        self.paused.discard(node_id)

    def freeze(self, nodes: list[str], timeout: float = 10.0) -> bool:
        """SIGSTOP the nodes' process groups; True once every thread of them has stopped.

        A thread inside a system call (an fsync, say) stops only when the call
        returns, so once all are stopped nothing of theirs is still writing.
        """
        groups = []
        for node in nodes:
            proc = self.procs.get(node)
            if proc is not None and proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGSTOP)
                except ProcessLookupError:
                    continue
                groups.append(proc.pid)
                self.paused.add(node)
        return wait_for(lambda: all(_group_stopped(g) for g in groups), timeout, interval=0.005)

    def pause(self, node_id: str) -> None:
        self.signal(node_id, signal.SIGSTOP)
        self.paused.add(node_id)

    def resume(self, node_id: str) -> None:
        if node_id in self.paused and self.alive(node_id):
            self.signal(node_id, signal.SIGCONT)
        self.paused.discard(node_id)

    def terminate(self, node_id: str, timeout: float = 10.0) -> None:
        """A graceful stop (SIGTERM), SIGKILL when it does not exit in time."""
        if not self.alive(node_id):
            return
        self.resume(node_id)
        self.signal(node_id, signal.SIGTERM)
        try:
            self.procs[node_id].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(node_id)

    def stop_all(self) -> None:
        for node in self.node_ids:
            self.resume(node)
            self.kill_group(node)

    # status

    def status(
        self, node_id: str, *, digest: bool = False, timeout: float = 1.0
    ) -> NodeStatus | None:
        path = "/v1/node" + ("?digest=1" if digest else "")
        reply: Reply = call(self.url(node_id), "GET", path, timeout=timeout,
                            api_key=self.status_key)
        if reply.status != 200 or not isinstance(reply.body, dict):
            return None
        b = reply.body
        return NodeStatus(node_id, b.get("role"), b.get("term"), _leader_id(b.get("leader")),
                          b.get("applied_index"), b)

    def statuses(
        self, *, digest: bool = False, timeout: float = 1.0
    ) -> dict[str, NodeStatus | None]:
        futures = {n: self._pool.submit(self.status, n, digest=digest, timeout=timeout)
                   for n in self.node_ids}
        return {n: f.result() for n, f in futures.items()}

    def leader(self, timeout: float = 1.0) -> str | None:
        """The node that says it leads in the highest term, among those answering."""
        leaders = [s for s in self.statuses(timeout=timeout).values()
                   if s is not None and s.role == "leader"]
        if not leaders:
            return None
        return max(leaders, key=lambda s: s.term or 0).node

    def wait_leader(self, timeout: float) -> str | None:
        found: list[str] = []

        def has_leader() -> bool:
            leader = self.leader()
            if leader is not None:
                found.append(leader)
            return leader is not None

        wait_for(has_leader, timeout, interval=0.2)
        return found[-1] if found else None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _group_stopped(pgid: int) -> bool:
    """Every thread of every live process in group ``pgid`` is stopped (or a zombie)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            if int(stat.rpartition(")")[2].split()[2]) != pgid:
                continue
            for task in os.scandir(Path(entry.path, "task")):
                state = Path(task.path, "stat").read_text().rpartition(")")[2].split()[0]
                if state not in ("T", "t", "Z", "X"):
                    return False
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile
    return True


def _leader_id(value: Any) -> str | None:
    """``leader`` may be an id, an address, or an object holding the id."""
    if isinstance(value, dict):
        return value.get("id")
    return None if value is None else str(value)
