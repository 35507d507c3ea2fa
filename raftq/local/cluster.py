"""Run N raftq nodes as local processes on loopback.

Used by ``raftq up``, the integration tests, the chaos harness's fallback mode
and ``raftq bench``. Each node is a real ``python -m raftq node`` process with
its own data directory and log file.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class LocalNode:
    node_id: str
    raft_port: int
    http_port: int
    config_path: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.http_port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class LocalCluster:
    base_dir: Path
    size: int = 3
    raft_port: int = 7101
    http_port: int = 8101
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    # The bootstrap admin key every node installs (written to admin.key).
    admin_key: str = field(default_factory=lambda: "rq_" + secrets.token_urlsafe(32))
    # The CA that verifies the nodes' certificates when extra_config turns TLS on.
    ca_file: str | None = None
    extra_config: dict[str, Any] = field(default_factory=dict)
    nodes: list[LocalNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.base_dir = Path(self.base_dir)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        scheme = "https" if self.extra_config.get("tls_cert_file") else "http"
        for i in range(self.size):
            node_id = f"node{i + 1}"
            self.nodes.append(LocalNode(
                node_id, self.raft_port + i, self.http_port + i,
                self.base_dir / f"{node_id}.yaml", self.base_dir / f"{node_id}.log",
                scheme=scheme,
            ))
        key_file = self.base_dir / "admin.key"
        key_file.write_text(self.admin_key + "\n")
        key_file.chmod(0o600)
        self.write_configs()

    @property
    def http_urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def write_configs(self) -> None:
        for node in self.nodes:
            peers = [
                {"id": p.node_id, "raft_address": f"127.0.0.1:{p.raft_port}",
                 "http_address": f"127.0.0.1:{p.http_port}"}
                for p in self.nodes if p is not node
            ]
            config = {
                "node_id": node.node_id,
                "raft_address": f"127.0.0.1:{node.raft_port}",
                "http_address": f"127.0.0.1:{node.http_port}",
                "data_dir": f"{node.node_id}-data",
                "secret": self.secret,
                "admin_key_file": str(self.base_dir.resolve() / "admin.key"),
                "peers": peers,
                **self.extra_config,
            }
            node.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    # --------------------------------------------------------------- control

    def start(self) -> None:
        for i in range(self.size):
            self.start_node(i)

    def start_node(self, i: int, secret: str | None = None, args: Sequence[str] = ()) -> None:
        """Start node ``i`` (``args``: more ``raftq node`` options, e.g. ``--rejoin``)."""
        node = self.nodes[i]
        if node.alive:
            return
        env = dict(os.environ)
        env.pop("RAFTQ_CLUSTER_SECRET", None)
        if secret is not None:
            env["RAFTQ_CLUSTER_SECRET"] = secret
        log = open(node.log_path, "ab")  # noqa: SIM115 - owned by the child process
        node.process = subprocess.Popen(
            [sys.executable, "-m", "raftq", "node", "--config", str(node.config_path), *args],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        log.close()

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        node = self.nodes[i]
        if node.process is not None and node.alive:
            node.process.send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                node.process.wait(timeout=30)

    def stop(self) -> None:
        for i, node in enumerate(self.nodes):
            if node.alive:
                self.kill(i, signal.SIGTERM)

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- status

    def node_status(self, i: int, timeout: float = 1.0) -> dict[str, Any] | None:
        """The node's own view; None until it answers, and accepts the admin key."""
        request = urllib.request.Request(self.nodes[i].url + "/v1/node",
                                         headers={"Authorization": f"Bearer {self.admin_key}"})
        context = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as r:
                data: dict[str, Any] = json.loads(r.read())
                return data
        except (OSError, ValueError, urllib.error.URLError):
            return None

    def leader_index(self) -> int | None:
        for i, node in enumerate(self.nodes):
            if node.alive:
                status = self.node_status(i)
                if status is not None and status["role"] == "leader":
                    return i
        return None

    def wait_ready(self, timeout: float = 20.0, indexes: list[int] | None = None) -> int:
        """Wait until one leader is known to every live node, each accepts the
        admin key and knows the membership (a new cluster's first leader records
        it); return the leader's index."""
        deadline = time.monotonic() + timeout
        wanted = indexes if indexes is not None else [
            i for i, n in enumerate(self.nodes) if n.alive
        ]
        while time.monotonic() < deadline:
            for i in wanted:
                if not self.nodes[i].alive:
                    raise RuntimeError(
                        f"{self.nodes[i].node_id} exited; see {self.nodes[i].log_path}"
                    )
            views = [self.node_status(i, timeout=0.5) for i in wanted]
            if all(v is not None and v["member_epoch"] >= 1 for v in views):
                leaders = {v["leader"] for v in views if v is not None}
                if len(leaders) == 1 and None not in leaders:
                    (leader,) = leaders
                    for i, node in enumerate(self.nodes):
                        if node.node_id == leader:
                            return i
            time.sleep(0.05)
        raise TimeoutError(f"no leader agreed by nodes {wanted} within {timeout}s")
