"""Could a well-kept ASGI server replace the node's hand-written HTTP server?

    .venv/bin/pip install uvicorn granian          # not dependencies of raftq
    .venv/bin/python bench/http_servers.py [--requests 20000] [--runs 3]

Runs one single-node raftq node per server (the hand-written one of
``raftq/server/http.py``; uvicorn with httptools' parser on the node's own
uvloop; granian embedded in the node's loop, its HTTP in Rust threads) with the
same router, middleware and handlers: the ASGI servers reach them through the
thin adapter below. A lean keep-alive client (``raftq.bench.http``, 64
connections, another process) then sends, per run, ``--requests`` of
``GET /healthz`` (what the server itself costs) and of ``POST /v1/tasks``
(a no-op submit, the node's hot path), after a warm-up. The figure is the
node process's CPU (user + system, all threads, from ``/proc``) per request:
it hardly moves when other programs share the machine. A single node keeps
Raft's share small, so the servers' differences show at their largest.
Results: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from raftq import aio  # noqa: E402
from raftq.bench.http import Conn, fixed_load  # noqa: E402
from raftq.server.config import load  # noqa: E402
from raftq.server.http import Handler, Middleware, Request, Server  # noqa: E402
from raftq.server.node import Node  # noqa: E402
from raftq.server.router import Router  # noqa: E402

KINDS = ("builtin", "uvicorn", "granian")
CLIENTS = 64
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------- the node side

class _Open:
    """ASGI has no transport to ask whether the client left: say it is there."""

    @staticmethod
    def is_closing() -> bool:
        return False


class AsgiApp:
    """The node's router and middleware as an ASGI application."""

    def __init__(self, router: Router, middleware: Middleware) -> None:
        self.router = router
        self.middleware = middleware

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else scope["path"]
        request = Request(scope["method"], path, scope["query_string"].decode("latin-1"),
                          headers, b"".join(chunks), _Open(), True)  # type: ignore[arg-type]
        handler: Handler = self.router.resolve(request)
        response = await self.middleware(request, handler)
        out = [(b"content-type", response.content_type.encode()),
               (b"content-length", str(len(response.body)).encode())]
        for name, value in (response.headers or {}).items():
            out.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        await send({"type": "http.response.start", "status": response.status, "headers": out})
        await send({"type": "http.response.body", "body": response.body})


class AsgiServer:
    """``start``/``close`` like ``raftq.server.http.Server``, serving through uvicorn or granian."""

    def __init__(self, kind: str, app: AsgiApp) -> None:
        self.kind = kind
        self.app = app
        self._server: Any = None
        self._task: asyncio.Task[Any] | None = None

    async def start(self, host: str, port: int) -> None:
        if self.kind == "uvicorn":
            import uvicorn

            config = uvicorn.Config(self.app, host=host, port=port, http="httptools",
                                    loop="none", lifespan="off", access_log=False,
                                    log_level="warning")
            config.load()
            self._server = uvicorn.Server(config)  # serve() without its signal handlers:
            self._server.lifespan = config.lifespan_class(config)
            await self._server.startup()
            self._task = asyncio.create_task(self._server.main_loop())
        else:
            from granian.constants import Interfaces
            from granian.server.embed import Server as Granian

            self._server = Granian(self.app, address=host, port=port,
                                   interface=Interfaces.ASGI, websockets=False,
                                   log_enabled=False)
            self._task = asyncio.create_task(self._server.serve())

    async def close(self) -> None:
        if self.kind == "uvicorn":
            self._server.should_exit = True
            await self._server.shutdown()
        else:
            self._server.stop()
        assert self._task is not None
        await self._task


class BenchNode(Node):
    def __init__(self, config: Any, kind: str) -> None:
        super().__init__(config)
        self.kind = kind

    def make_server(self) -> Any:
        server: Server = super().make_server()
        if self.kind == "builtin":
            return server
        return AsgiServer(self.kind, AsgiApp(server.router, server.middleware))


def serve(kind: str, config_path: str) -> None:
    config = load(config_path)
    import logging

    logging.basicConfig(level=logging.WARNING)
    aio.run(BenchNode(config, kind).run())


# ------------------------------------------------------------ the load side

def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the node exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError("the node did not become ready")


async def get_load(url: str, requests: int) -> int:
    conns = [Conn(url) for _ in range(CLIENTS)]
    raw = f"GET /healthz HTTP/1.1\r\nHost: {conns[0].host}\r\n\r\n".encode()
    remaining = requests
    errors = 0

    async def client(conn: Conn) -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            status, _ = await conn.send(raw)
            errors += status != 200

    await asyncio.gather(*(client(c) for c in conns))
    for conn in conns:
        await conn.close()
    return errors


def measure(kind: str, requests: int, runs: int, port: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"raftq-{kind}-") as tmp:
        url = f"http://127.0.0.1:{port}"
        config = Path(tmp) / "node.yaml"
        config.write_text(json.dumps({
            "node_id": "n1", "raft_address": f"127.0.0.1:{port + 1}",
            "http_address": f"127.0.0.1:{port}", "data_dir": "data", "secret": "bench" * 8,
            "durability": "none", "log_level": "WARNING"}))
        # The node bootstraps this admin key; the load loops send it (RAFTQ_API_KEY).
        key = os.environ["RAFTQ_API_KEY"] = "rq_" + secrets.token_urlsafe(32)
        proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, str(config)],
                                env={**os.environ, "RAFTQ_ADMIN_KEY": key})
        try:
            wait_ready(url, proc)
            out: dict[str, Any] = {"server": kind}
            workloads = {
                "healthz": lambda n: get_load(url, n),
                "submit": lambda n: fixed_load([url], CLIENTS, n, {"name": "noop"}),
            }
            for name, run_load in workloads.items():
                aio.run(run_load(requests // 10))  # warm-up
                per_request, rates = [], []
                for _ in range(runs):
                    cpu0, t0 = cpu_s(proc.pid), time.perf_counter()
                    result = aio.run(run_load(requests))
                    elapsed = time.perf_counter() - t0
                    failed = result if isinstance(result, int) else result.errors
                    if failed:
                        raise RuntimeError(f"{kind} {name}: {failed} requests failed")
                    per_request.append((cpu_s(proc.pid) - cpu0) / requests * 1e6)
                    rates.append(requests / elapsed)
                out[name] = {"cpu_us": round(statistics.median(per_request), 1),
                             "cpu_us_runs": [round(v, 1) for v in per_request],
                             "per_s": round(statistics.median(rates))}
            return out
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--servers", default=",".join(KINDS))
    parser.add_argument("--port", type=int, default=18500)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    results = []
    for i, kind in enumerate(args.servers.split(",")):
        results.append(measure(kind, args.requests, args.runs, args.port + 10 * i))
        print(json.dumps(results[-1]), flush=True)
    base = results[0]
    print(f"\n{'server':10} {'GET /healthz':>24} {'POST /v1/tasks':>24}")
    for r in results:
        cells = []
        for name in ("healthz", "submit"):
            ratio = r[name]["cpu_us"] / base[name]["cpu_us"]
            cells.append(f"{r[name]['cpu_us']:6.1f} µs {ratio:4.2f}x {r[name]['per_s']:6}/s")
        print(f"{r['server']:10} {cells[0]:>24} {cells[1]:>24}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
