"""Where ``raftq bench`` runs: a cluster it was given or one it starts, and its workers.

A ``Site`` is the node URLs plus, when the bench started the cluster itself,
the ``LocalCluster`` (needed to kill a leader, read a node's RSS from
``/proc`` or restart a node). Workers are real ``raftq worker`` processes
running ``raftq.bench.tasks``: what users run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raftq.bench import http as h
from raftq.local.cluster import LocalCluster


@dataclass
class Site:
    urls: list[str]
    cluster: LocalCluster | None
    base_dir: Path

    async def roles(self) -> dict[str, str]:
        """Each reachable URL's Raft role."""
        out = {}
        for url in self.urls:
            try:
                out[url] = (await h.get_json(url, "/v1/node"))["role"]
            except (OSError, TimeoutError, h.HttpError, ValueError):
                out[url] = "unreachable"
        return out

    async def leader_and_follower(self) -> tuple[str, str | None]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            roles = await self.roles()
            leaders = [u for u, r in roles.items() if r == "leader"]
            followers = [u for u, r in roles.items() if r == "follower"]
            if len(leaders) == 1:
                return leaders[0], followers[0] if followers else None
            await asyncio.sleep(0.1)
        raise TimeoutError("no single leader among " + ", ".join(self.urls))

    async def wait_applied(self, queue: str, field: str, count: int,
                           timeout_s: float = 600.0, urls: Sequence[str] | None = None) -> None:
        """Wait until every node (or ``urls``) reports ``count`` tasks of ``queue`` in ``field``."""
        deadline = time.monotonic() + timeout_s
        for url in urls or self.urls:
            while True:
                try:
                    if (await h.queue_counts(url, queue)).get(field, 0) >= count:
                        break
                except (OSError, TimeoutError, h.HttpError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{url}: {queue} did not reach {count} {field}")
                await asyncio.sleep(0.05)

    async def wait_ready(self, url: str, timeout_s: float = 600.0) -> float:
        """Seconds until ``url``'s ``/readyz`` answers 200."""
        started = time.perf_counter()
        while True:
            conn = h.Conn(url)
            try:
                status, _ = await asyncio.wait_for(conn.request("GET", "/readyz"), 1.0)
                if status == 200:
                    return time.perf_counter() - started
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
                pass
            finally:
                await conn.close()
            if time.perf_counter() - started > timeout_s:
                raise TimeoutError(f"{url} not ready within {timeout_s}s")
            await asyncio.sleep(0.02)

    async def term(self) -> int:
        """The highest Raft term any node reports (elections since = its growth)."""
        views = await asyncio.gather(*(h.get_json(url, "/v1/node") for url in self.urls),
                                     return_exceptions=True)
        return max((v["term"] for v in views if isinstance(v, dict)), default=0)

    async def digests_agree(self, tries: int = 40) -> bool | None:
        """Do all nodes hold the same state? None when they never showed the same clock.

        Only ticks move the state once the load has stopped, so nodes answering
        with the same state clock must have the same digest; a difference seen
        three times is a divergence, not a race with the next tick.
        """
        differ = 0
        deadline = time.monotonic() + 120  # a digest of a million tasks takes seconds
        for _ in range(tries):
            if time.monotonic() > deadline:
                break
            views = await asyncio.gather(
                *(h.get_json(url, "/v1/node?digest=1", timeout_s=60) for url in self.urls),
                return_exceptions=True)
            answers = [v for v in views if isinstance(v, dict)]
            if len(answers) == len(self.urls) and len({v["clock_ms"] for v in answers}) == 1:
                if len({v["digest"] for v in answers}) == 1:
                    return True
                differ += 1
                if differ >= 3:
                    return False
            await asyncio.sleep(0.03)
        return None

    def rss_mb(self) -> list[float]:
        """Each node's resident memory, MB (needs a cluster the bench started)."""
        assert self.cluster is not None
        out = []
        for node in self.cluster.nodes:
            pid = node.process.pid if node.process is not None else 0
            out.append(proc_rss_kb(pid) / 1024)
        return out


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def proc_cpu_s(pid: int) -> float:
    """User plus system CPU seconds a process has used so far (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU each process spent over a stretch of work: nodes, workers and the bench itself.

    CPU per task does not depend on what else the machine is running, so it
    compares runs on a busy machine better than tasks/s, and ``cores / CPU
    per task`` is the most a machine could sustain if nothing waited.
    """

    def __init__(self, site: Site, extra: dict[str, int] | None = None) -> None:
        self.pids: dict[str, int] = {}
        if site.cluster is not None:
            for node in site.cluster.nodes:
                if node.process is not None:
                    self.pids[node.node_id] = node.process.pid
        self.pids.update(extra or {})
        self._start: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        now = {name: proc_cpu_s(pid) for name, pid in self.pids.items()}
        times = os.times()
        now["bench"] = times.user + times.system
        return now

    def start(self) -> None:
        self._start = self._now()

    def per_task_us(self, tasks: int) -> dict[str, float]:
        """Microseconds of CPU per task of each process since ``start``."""
        end = self._now()
        return {name: (end[name] - self._start.get(name, 0.0)) * 1e6 / max(tasks, 1)
                for name in end}


def proc_rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Sites:
    """Hands out a fresh local cluster per section (or the one given with --nodes)."""

    def __init__(self, nodes: Sequence[str] | None, base_dir: Path, raft_port: int,
                 http_port: int, extra_config: dict[str, Any] | None = None) -> None:
        self.nodes = list(nodes) if nodes else None
        self.base_dir = base_dir
        self.raft_port = raft_port
        self.http_port = http_port
        self.extra_config = extra_config or {}
        self._started = 0

    @property
    def local(self) -> bool:
        return self.nodes is None

    def _free_offset(self) -> int:
        """Ports for the next cluster: a block of 3 not used by the last one (its sockets
        may linger) nor by anything else listening, such as another bench's cluster."""
        for _ in range(32):
            offset = (self._started * 3) % 96
            self._started += 1
            ports = [base + offset + i for base in (self.raft_port, self.http_port)
                     for i in range(3)]
            if all(port_free(port) for port in ports):
                return offset
        raise RuntimeError(f"no 3 free ports in {self.raft_port}+ / {self.http_port}+; "
                           "pass --raft-port and --http-port")

    @contextmanager
    def site(self, name: str) -> Iterator[Site]:
        if self.nodes is not None:
            yield Site(self.nodes, None, self.base_dir)
            return
        offset = self._free_offset()
        cluster = LocalCluster(self.base_dir / name, size=3, raft_port=self.raft_port + offset,
                               http_port=self.http_port + offset,
                               admin_key=os.environ["RAFTQ_API_KEY"],
                               extra_config={"log_level": "WARNING", **self.extra_config})
        try:
            cluster.start()
            cluster.wait_ready(timeout=60)
            yield Site(cluster.http_urls, cluster, cluster.base_dir)
        finally:
            cluster.stop()


class Workers:
    """``count`` ``raftq worker`` processes on ``queue`` (each client picks its node)."""

    def __init__(self, site: Site, queue: str, count: int, pool: str, concurrency: int,
                 prefetch: int, nodes: list[str] | None = None) -> None:
        self.site = site
        self.queue = queue
        self.procs: list[subprocess.Popen[bytes]] = []
        task_module = "raftq.bench.tasks"
        nodes = nodes or site.urls
        for i in range(count):
            urls = nodes[i % len(nodes):] + nodes[:i % len(nodes)]
            log = open(site.base_dir / f"worker-{queue}-{i}.log", "ab")  # noqa: SIM115
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "raftq", "worker", "--app", task_module,
                 "--nodes", ",".join(urls), "--queues", queue, "--pool", pool,
                 "--concurrency", str(concurrency), "--prefetch", str(prefetch),
                 "--claim-wait-ms", "1000", "--log-level", "warning"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            ))
            log.close()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    @property
    def named_pids(self) -> dict[str, int]:
        return {f"worker{i + 1}": p.pid for i, p in enumerate(self.procs)}

    async def wait_registered(self, timeout_s: float = 30.0) -> None:
        """Wait until the cluster has seen a claim from every worker process."""
        deadline = time.monotonic() + timeout_s
        wanted = set(self.pids)
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"worker {proc.pid} exited; see {self.site.base_dir}")
            try:
                seen = (await h.get_json(self.site.urls[0], "/v1/workers"))["workers"]
            except (OSError, TimeoutError, h.HttpError, ValueError):
                seen = []
            if wanted <= {w.get("pid") for w in seen if self.queue in w.get("queues", [])}:
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"workers {sorted(wanted)} did not claim within {timeout_s}s")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
