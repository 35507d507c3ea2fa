"""The ``raftq worker`` and ``raftq workers`` commands (registered by ``raftq.cli``).

Thin: parse and check the flags, import the app modules, hand over to
``raftq.worker``. A bad flag or an app that cannot be imported ends with a
message naming the flag or the module, never a traceback.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from raftq import aio, errors
from raftq.client.calls import resolve_nodes
from raftq.client.sync import Client
from raftq.client.task import Registry, default_registry
from raftq.worker.runtime import Worker, WorkerConfig

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("raftq.worker")


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


def install_signal_handlers(worker: Worker) -> None:
    """The first SIGTERM/SIGINT stops ``worker`` gracefully, a second at once."""
    signals = 0

    def on_signal(signum: int) -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            log.warning("%s received: finishing running tasks (up to %ss); again to stop now",
                        signal.Signals(signum).name, worker.config.shutdown_timeout)
            worker.stop()
        else:
            log.warning("second signal: stopping now")
            worker.halt()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)


def run_worker(config: WorkerConfig, registry: Registry | None = None) -> Worker:
    """Run a worker in this thread until a signal stops it (what ``raftq worker`` does)."""
    worker: Worker | None = None

    async def main() -> None:
        nonlocal worker
        worker = Worker(config, registry=registry)
        install_signal_handlers(worker)
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
@click.option("--heartbeat", type=click.FloatRange(0.1, 3600), default=2.0, show_default=True,
              help="Seconds between heartbeats (silent for three: shown as lost).")
@click.option("--max-tasks-per-child", type=click.IntRange(1, None), default=None,
              help="Process pool: replace a child process after it ran this many tasks.")
@click.option("--max-memory-per-child", type=click.IntRange(1, None), default=None,
              metavar="KIB", help="Process pool: replace a child process, between tasks, "
              "once its resident memory is over this many KiB.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
@auth_options
def worker_command(app: str, nodes: str | None, queues: str, concurrency: int | None,
                   pool: str, lease_ms: int, prefetch: int | None, claim_wait_ms: int,
                   shutdown_timeout: float, worker_id: str, heartbeat: float,
                   max_tasks_per_child: int | None, max_memory_per_child: int | None,
                   log_level: str, api_key: str | None, ca_file: str | None) -> None:
    """Run tasks from the cluster until SIGTERM/SIGINT (twice: at once)."""
    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if pool != "process" and (max_tasks_per_child or max_memory_per_child):
        flag = "--max-tasks-per-child" if max_tasks_per_child else "--max-memory-per-child"
        raise click.BadParameter("only the process pool replaces its children (--pool process)",
                                 param_hint=flag)
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
            ca_file=ca_file, heartbeat_s=heartbeat,
            max_tasks_per_child=max_tasks_per_child or 0,
            max_memory_per_child=max_memory_per_child or 0)
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


def _client(nodes: str | None, api_key: str | None, ca_file: str | None) -> Client:
    try:
        node_urls = resolve_nodes(_split(nodes) or None, os.environ)
    except errors.ConfigError as exc:
        raise click.BadParameter(exc.message, param_hint="--nodes") from None
    return Client(node_urls, retry_for=5.0, api_key=api_key, ca_file=ca_file)


def _nodes_option(command: F) -> F:
    return click.option("--nodes", envvar="RAFTQ_NODES", metavar="URL[,URL]",
                        help="Node URLs (default: $RAFTQ_NODES, else the three local nodes)."
                        )(command)


def _kib(value: Any) -> str:
    if not isinstance(value, int):
        return ""
    return f"{value / 1024:.0f} MiB" if value >= 10_240 else f"{value} KiB"


def _state(w: dict[str, Any]) -> str:
    state = str(w.get("state", "?"))
    mode = w.get("mode")
    return f"{state}/{mode}" if state == "active" and mode and mode != "running" else state


def _row(w: Any) -> tuple[str, ...]:
    running = w.get("running_ids") or []
    shown = ",".join(running[:3]) + (f",+{len(running) - 3}" if len(running) > 3 else "")
    cpu = w.get("cpu_pct")
    silent = w.get("silent_ms")
    return (str(w.get("worker_id", "")), f"{w.get('host', '')}:{w.get('pid', '')}",
            ",".join(w.get("queues") or []), _state(w),
            ",".join(w.get("tasks") or []) if w.get("announced") else "(any)",
            str(w.get("concurrency", "")), shown or "-",
            "" if cpu is None else f"{cpu:.1f}%", _kib(w.get("rss_kb")),
            f"{silent / 1000:.1f}s ago" if isinstance(silent, int) else "?")


@click.group("workers", invoke_without_command=True,
             short_help="List the workers the cluster knows, or control one.")
@_nodes_option
@click.option("--output", "-o", type=click.Choice(["table", "json", "yaml"]), default="table",
              show_default=True, help="Output format.")
@auth_options
@click.pass_context
def workers_command(ctx: click.Context, nodes: str | None, output: str, api_key: str | None,
                    ca_file: str | None) -> None:
    """List the workers the cluster knows (GET /v1/workers): their tasks, running task
    ids, CPU and memory and last heartbeat. A worker silent for three heartbeats shows
    as lost; the cluster forgets it after the nodes' worker_forget_ms (60 s).

    Control one with ``pause``, ``resume``, ``set-concurrency`` and ``drain`` (admin
    key); the worker acts on it with its next heartbeat."""
    ctx.ensure_object(dict)
    ctx.obj.update(nodes=nodes, api_key=api_key, ca_file=ca_file)
    if ctx.invoked_subcommand is not None:
        return
    try:
        with _client(nodes, api_key, ca_file) as client:
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
    header = ("WORKER", "PROCESS", "QUEUES", "STATE", "TASKS", "CONC", "RUNNING", "CPU", "MEM",
              "LAST BEAT")
    table: list[tuple[str, ...]] = [header, *(_row(w) for w in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())
    if not rows:
        click.echo("(no workers seen)")


def _control(ctx: click.Context, worker_id: str, action: str, nodes: str | None,
             api_key: str | None, ca_file: str | None, concurrency: int | None = None) -> None:
    parent = ctx.obj or {}
    try:
        with _client(nodes or parent.get("nodes"), api_key or parent.get("api_key"),
                     ca_file or parent.get("ca_file")) as client:
            answer = client.control_worker(worker_id, action, concurrency)
    except errors.NotFound:
        raise click.ClickException(f"no worker {worker_id} (see raftq workers)") from None
    except errors.RaftqError as exc:
        raise click.ClickException(str(exc)) from None
    control = answer.get("control", {})
    click.echo(f"worker {worker_id}: paused={control.get('paused')} "
               f"draining={control.get('draining')} concurrency={control.get('concurrency')} "
               f"(control version {control.get('version')}; it acts on its next heartbeat)")


def _control_command(action: str, help_text: str) -> click.Command:
    @click.command(action, help=help_text)
    @click.argument("worker_id", metavar="ID")
    @_nodes_option
    @auth_options
    @click.pass_context
    def command(ctx: click.Context, worker_id: str, nodes: str | None, api_key: str | None,
                ca_file: str | None) -> None:
        _control(ctx, worker_id, action, nodes, api_key, ca_file)

    return command


workers_command.add_command(_control_command(
    "pause", "Stop worker ID claiming tasks (running ones finish)."))
workers_command.add_command(_control_command("resume", "Let a paused worker ID claim again."))
workers_command.add_command(_control_command(
    "drain", "Worker ID finishes its running tasks, claims nothing new, and exits."))


@workers_command.command("set-concurrency")
@click.argument("worker_id", metavar="ID")
@click.argument("concurrency", metavar="N", type=click.IntRange(1, 10_000))
@_nodes_option
@auth_options
@click.pass_context
def set_concurrency(ctx: click.Context, worker_id: str, concurrency: int, nodes: str | None,
                    api_key: str | None, ca_file: str | None) -> None:
    """Run up to N tasks at once on worker ID."""
    _control(ctx, worker_id, "concurrency", nodes, api_key, ca_file, concurrency)


if __name__ == "__main__":
    worker_command()
