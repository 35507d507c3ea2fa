"""The ``raftq worker`` and ``raftq workers`` commands (registered by ``raftq.cli``).

Thin: parse and check the flags, import the app modules, hand over to
``raftq.worker``. A bad flag or an app that cannot be imported ends with a
message naming the flag or the module, never a traceback.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from raftq import aio, errors
from raftq.client.calls import resolve_nodes
from raftq.client.sync import Client
from raftq.client.task import Registry, default_registry
from raftq.worker.runtime import Worker, WorkerConfig

F = TypeVar("F", bound=Callable[..., Any])


def auth_options(command: F) -> F:
    """``--api-key`` and ``--ca-file``, shared by every command that talks to nodes."""
    command = click.option(
        "--ca-file", envvar="RAFTQ_CA_FILE", metavar="PEM",
        type=click.Path(exists=True, dir_okay=False),
        help="CA certificate(s) that verify https:// nodes (default: $RAFTQ_CA_FILE, "
             "else the system's CAs).")(command)
    return click.option(
        "--api-key", envvar="RAFTQ_API_KEY", metavar="KEY",
        help="API key sent to the nodes (default: $RAFTQ_API_KEY).")(command)


def default_concurrency(pool: str) -> int:
    return {"thread": 8, "async": 100}.get(pool) or os.cpu_count() or 2


def _prefetch(value: str) -> int | None:
    if value == "auto":
        return None
    if not value.isdigit() or int(value) > 10_000:
        raise click.BadParameter(f"{value!r}: expected auto or a number from 0 to 10000",
                                 param_hint="--prefetch")
    return int(value)


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def import_app(modules: list[str]) -> None:
    """Import the modules that register the tasks; a failure names the module."""
    # Like ``python -m``, let ``--app tasks`` find ./tasks.py.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            missing = f" ({exc.name} is missing)" if exc.name and exc.name != module else ""
            raise click.BadParameter(
                f"cannot import module {module!r}{missing}: {exc}", param_hint="--app"
            ) from None
        except Exception as exc:
            where = ""
            tb = exc.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            if tb is not None:
                where = f" at {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
            raise click.BadParameter(
                f"importing module {module!r} raised {type(exc).__name__}: {exc}{where}",
                param_hint="--app",
            ) from None


def _has_tasks_from(modules: list[str]) -> bool:
    for name in default_registry.names():
        fn = default_registry.get(name)
        where = getattr(fn, "__module__", "")
        if any(where == m or where.startswith(m + ".") for m in modules):
            return True
    return False


def run_worker(config: WorkerConfig, registry: Registry | None = None) -> Worker:
    """Run a worker in this thread until a signal stops it (what ``raftq worker`` does)."""
    worker: Worker | None = None

    async def main() -> None:
        nonlocal worker
        worker = Worker(config, registry=registry)
        worker.install_signal_handlers()
        await worker.run()

    aio.run(main())
    assert worker is not None
    return worker


@click.command("worker", short_help="Run @task functions from the cluster's queues.")
@click.option("--app", "app", required=True, metavar="MODULE[,MODULE]",
              help="Module(s) whose @task functions this worker runs.")
@click.option("--nodes", envvar="RAFTQ_NODES", metavar="URL[,URL]",
              help="Node URLs (default: $RAFTQ_NODES, else the three local nodes).")
@click.option("--queues", default="default", show_default=True, metavar="Q[,Q]",
              help="Queues to take tasks from.")
@click.option("--concurrency", type=click.IntRange(1, 10_000), default=None,
              help="Tasks run at once (default: thread 8, async 100, process CPU count).")
@click.option("--pool", type=click.Choice(["thread", "async", "process"]), default="thread",
              show_default=True, help="How tasks run.")
@click.option("--lease-ms", type=click.IntRange(1_000, 3_600_000), default=30_000,
              show_default=True, help="Lease length; renewed every third of it.")
@click.option("--prefetch", default="auto", show_default=True, metavar="auto|N",
              callback=lambda _ctx, _param, value: _prefetch(value),
              help="Extra tasks to claim beyond the free slots: a number (0-10000), or "
                   "auto: as many as the pool finishes during a claim's round trip, "
                   "none for tasks longer than that.")
@click.option("--claim-wait-ms", type=click.IntRange(0, 60_000), default=5_000,
              show_default=True, help="Long-poll time of one claim.")
@click.option("--shutdown-timeout", type=click.FloatRange(0, None), default=30.0,
              show_default=True, help="Seconds running tasks get to finish after SIGTERM.")
@click.option("--worker-id", default="", help="Default: host-pid-random.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
@auth_options
def worker_command(app: str, nodes: str | None, queues: str, concurrency: int | None,
                   pool: str, lease_ms: int, prefetch: int | None, claim_wait_ms: int,
                   shutdown_timeout: float, worker_id: str, log_level: str,
                   api_key: str | None, ca_file: str | None) -> None:
    """Run tasks from the cluster until SIGTERM/SIGINT (twice: at once)."""
    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    modules = _split(app)
    if not modules:
        raise click.BadParameter("name at least one module", param_hint="--app")
    before = len(default_registry)
    import_app(modules)
    if len(default_registry) == before and not _has_tasks_from(modules):
        raise click.BadParameter(
            f"{', '.join(modules)} registered no tasks (decorate functions with @raftq.task)",
            param_hint="--app")
    try:
        node_urls = resolve_nodes(_split(nodes) or None, os.environ)
    except errors.ConfigError as exc:
        raise click.BadParameter(exc.message, param_hint="--nodes") from None
    try:
        config = WorkerConfig(
            app=modules, nodes=node_urls, queues=_split(queues),
            concurrency=concurrency or default_concurrency(pool), pool=pool,
            lease_ms=lease_ms, claim_wait_ms=claim_wait_ms, prefetch=prefetch,
            shutdown_timeout=shutdown_timeout, worker_id=worker_id, api_key=api_key,
            ca_file=ca_file)
    except errors.ConfigError as exc:
        raise click.UsageError(exc.message) from None
    try:
        worker = run_worker(config)
    except errors.ConfigError as exc:
        raise click.ClickException(exc.message) from None
    stats = worker.stats
    click.echo(f"worker {worker.id} stopped: {stats.succeeded} succeeded, {stats.failed} failed, "
               f"{stats.released} handed back, {stats.rejected} refused", err=True)
    if worker.pool.busy:
        # Threads of tasks that overran their timeout or the shutdown deadline
        # cannot be stopped; exiting normally would wait for them.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    if worker.held:
        sys.exit(1)


# A working worker is seen at every claim (long-polls of --claim-wait-ms, 5 s)
# and heartbeat (--lease-ms / 3, 10 s); one unseen for longer has died or lost
# the cluster. The cluster forgets it 5 minutes later (unless it holds leases).
LOST_AFTER_S = 30.0


def _age(last_seen_ms: Any) -> str:
    if not isinstance(last_seen_ms, int | float):
        return "?"
    return f"{max(0.0, time.time() - last_seen_ms / 1000):.1f}s ago"


def _state(last_seen_ms: Any) -> str:
    if not isinstance(last_seen_ms, int | float):
        return "?"
    return "lost" if time.time() - last_seen_ms / 1000 > LOST_AFTER_S else "active"


@click.command("workers")
@click.option("--nodes", envvar="RAFTQ_NODES", metavar="URL[,URL]",
              help="Node URLs (default: $RAFTQ_NODES, else the three local nodes).")
@click.option("--output", "-o", type=click.Choice(["table", "json", "yaml"]), default="table",
              show_default=True, help="Output format.")
@auth_options
def workers_command(nodes: str | None, output: str, api_key: str | None,
                    ca_file: str | None) -> None:
    """List the workers the cluster has seen (GET /v1/workers).

    A worker unseen for 30 s shows as lost; one that stopped cleanly is gone.
    """
    try:
        node_urls = resolve_nodes(_split(nodes) or None, os.environ)
    except errors.ConfigError as exc:
        raise click.BadParameter(exc.message, param_hint="--nodes") from None
    try:
        with Client(node_urls, retry_for=5.0, api_key=api_key, ca_file=ca_file) as client:
            rows = client.workers()
    except errors.RaftqError as exc:
        raise click.ClickException(str(exc)) from None
    if output == "json":
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    if output == "yaml":
        import yaml

        click.echo(yaml.safe_dump(rows, sort_keys=True).rstrip())
        return
    header = ("WORKER", "HOST", "PID", "QUEUES", "RUNNING", "STATE", "LAST SEEN")
    table = [header] + [
        (str(w.get("worker_id", "")), str(w.get("host", "")), str(w.get("pid", "")),
         ",".join(w.get("queues") or []), str(w.get("running", "")),
         _state(w.get("last_seen_ms")), _age(w.get("last_seen_ms")))
        for w in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())
    if not rows:
        click.echo("(no workers seen)")


if __name__ == "__main__":
    worker_command()
