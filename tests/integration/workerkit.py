"""Helpers for the worker integration tests: clusters on this suite's ports,
real ``raftq worker`` processes, the run log, and a proxy that drops answers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from clusterkit import port_block

from raftq.local.cluster import LocalCluster

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def new_cluster(base_dir: Path, **extra: Any) -> LocalCluster:
    base = port_block()  # from RAFTQ_TEST_PORT_BASE, like every other test cluster
    cluster = LocalCluster(base_dir, size=3, raft_port=base, http_port=base + 1000,
                           extra_config=extra, admin_key=os.environ["RAFTQ_API_KEY"])
    cluster.start()
    try:
        cluster.wait_ready(timeout=60)
    except BaseException:
        kill_cluster(cluster)
        raise
    return cluster


def kill_cluster(cluster: LocalCluster) -> None:
    for i, node in enumerate(cluster.nodes):
        if node.alive:
            cluster.kill(i)


@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    cluster = new_cluster(tmp_path / "cluster")
    yield cluster
    kill_cluster(cluster)


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One cluster for a module whose tests leave the nodes alone (each uses its own queue)."""
    cluster = new_cluster(tmp_path_factory.mktemp("shared") / "cluster")
    yield cluster
    kill_cluster(cluster)


class Workers:
    """Starts ``python -m raftq worker`` processes with the test tasks."""

    def __init__(self, base_dir: Path, nodes: list[str]) -> None:
        self.base_dir = base_dir
        self.nodes = nodes
        self.log = base_dir / "runs.log"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, env: dict[str, str] | None = None,
              nodes: list[str] | None = None) -> subprocess.Popen[bytes]:
        n = len(self.procs)
        out = open(self.base_dir / f"worker{n}.log", "ab")  # noqa: SIM115 - the child's
        full_env = dict(os.environ, RAFTQ_TEST_LOG=str(self.log),
                        PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT)]), **(env or {}))
        proc = subprocess.Popen(
            [sys.executable, "-m", "raftq", "worker", "--app", "worker_apps",
             "--nodes", ",".join(nodes or self.nodes), "--log-level", "debug", *args],
            stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=self.base_dir)
        out.close()
        self.procs.append(proc)
        return proc

    def output(self, n: int) -> str:
        return (self.base_dir / f"worker{n}.log").read_text(errors="replace")

    def runs(self) -> list[tuple[str, int, str]]:
        return [(key, pid, event) for key, pid, event, _ in self.timed_runs()]

    def timed_runs(self) -> list[tuple[str, int, str, float]]:
        if not self.log.exists():
            return []
        rows = []
        for line in self.log.read_text().splitlines():
            key, pid, event, at = line.split("\t")
            rows.append((key, int(pid), event, float(at)))
        return rows

    def run_counts(self) -> Counter[str]:
        return Counter(key for key, _, event in self.runs() if event == "run")

    def stop_all(self) -> None:
        """Stop gracefully, so that no claim of theirs outlives them on a shared cluster
        (a node finishes a worker's long-poll claim even after the worker is gone)."""
        live = [proc for proc in self.procs if proc.poll() is None]
        for proc in live:
            proc.send_signal(signal.SIGTERM)
        for proc in live:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def workers(tmp_path: Path, fresh_cluster: LocalCluster) -> Iterator[Workers]:
    kit = Workers(tmp_path, fresh_cluster.http_urls)
    yield kit
    kit.stop_all()


@pytest.fixture
def shared_workers(tmp_path: Path, shared_cluster: LocalCluster) -> Iterator[Workers]:
    kit = Workers(tmp_path, shared_cluster.http_urls)
    yield kit
    kit.stop_all()


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1,
             what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class DroppingProxy:
    """Forwards requests to a real node; for the first ``drop`` requests it
    closes the connection after the node answered, as a lost response would."""

    def __init__(self, upstream: str, drop: int = 1) -> None:
        self.upstream = upstream
        self.drop = drop
        self.forwarded = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("content-type", "idempotency-key", "accept",
                                            "authorization")}
                req = urllib.request.Request(proxy.upstream + self.path, data=body,
                                             method=self.command, headers=headers)
                try:
                    with urllib.request.urlopen(req, timeout=10) as resp:
                        status, data = resp.status, resp.read()
                except urllib.error.HTTPError as exc:
                    status, data = exc.code, exc.read()
                proxy.forwarded += 1
                if proxy.drop > 0:
                    proxy.drop -= 1
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
