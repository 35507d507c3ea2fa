"""``raftq bench``: measure a cluster and print each figure next to its target.

Runs the sections of ``raftq.bench.sections`` against ``--nodes`` or against
fresh 3-node local clusters it starts itself (one per section, under a temp
dir, on ports 17400+ raft / 18400+ http), prints a table and writes a JSON
report. ``--quick`` shrinks every count so the whole run takes under a minute.
See docs/performance.md for what each figure means and the latest results.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from raftq import aio
from raftq.bench.sections import SECTIONS, BenchConfig
from raftq.bench.site import Sites
from raftq.bench.stats import Row, format_table

QUICK = {
    "submit_tasks": 2_000, "batch_tasks": 10_000, "e2e_tasks": 2_000, "latency_count": 100,
    "result_count": 50, "kills": 2, "memory_sizes": [10_000], "runs": 1,
    "workflow_tasks": 1_000,
    "schedule_count": 1_000, "schedule_seconds": 20.0,
    "fairness_tasks": 100_000, "fairness_tenants": 1_000,
}


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f
                          if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
        "platform": platform.platform(), "load_avg_at_start": list(os.getloadavg()),
    }


def run_bench(cfg: BenchConfig, sections: list[str], sites: Sites,
              say: Any = None) -> dict[str, Any]:
    """Run ``sections`` in order; return the report (rows, config, machine, timings)."""
    def _say(line: str) -> None:
        click.echo(line, err=True)

    say = say or _say
    report: dict[str, Any] = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "machine": machine(), "config": vars(cfg).copy(),
                              "target": "--nodes" if not sites.local else "local 3-node cluster",
                              "sections": {}, "rows": []}
    rows: list[Row] = []
    for name in sections:
        say(f"[{name}]")
        started = time.perf_counter()
        try:
            with sites.site(name) as site:
                term = aio.run(site.term())
                section_rows = aio.run(SECTIONS[name](site, cfg, say))
                elections = aio.run(site.term()) - term
                agree = aio.run(site.digests_agree())
        except Exception as exc:  # one broken section must not lose the others
            say(f"  {name} failed: {type(exc).__name__}: {exc}")
            report["sections"][name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        rows += section_rows
        verdict = {True: "same", False: "DIFFERENT", None: "not compared (never at one clock)"}
        say(f"  Raft terms started during the section: {elections}; "
            f"state digests of the nodes afterwards: {verdict[agree]}")
        report["sections"][name] = {"seconds": round(time.perf_counter() - started, 1),
                                    "terms_started": elections, "digests_agree": agree}
    report["rows"] = [r.to_json() for r in rows]
    report["table"] = format_table(rows)
    return report


def _ints(value: str, flag: str) -> list[int]:
    try:
        return [int(v.replace("_", "")) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter("a comma-separated list of integers", param_hint=flag) from None


@click.command("bench", short_help="Measure throughput, latency, failover and memory.")
@click.option("--nodes", default=None, metavar="URL[,URL]",
              help="Measure this cluster (default: start local 3-node clusters). Failover "
                   "and memory need a cluster the bench starts.")
@click.option("--only", default=",".join(SECTIONS), show_default=True,
              help="Sections to run, comma-separated.")
@click.option("--quick", is_flag=True, help="Small counts, one run each: under a minute.")
@click.option("--runs", type=click.IntRange(1, 20), default=None,
              help="Runs per throughput figure (median reported).  [default: 3]")
@click.option("--clients", type=click.IntRange(1, 4096), default=64, show_default=True,
              help="Concurrent submitting connections, spread over the nodes.")
@click.option("--submit-tasks", type=click.IntRange(1), default=None,
              help="Tasks per single-submit run.  [default: 20000]")
@click.option("--batch-tasks", type=click.IntRange(1), default=None,
              help="Tasks per batch run.  [default: 100000]")
@click.option("--batch-size", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--batch-clients", type=click.IntRange(1, 1024), default=16, show_default=True)
@click.option("--e2e-tasks", type=click.IntRange(1), default=None,
              help="Tasks per end-to-end run.  [default: 20000]")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Worker processes for the end-to-end runs.")
@click.option("--worker-pool", type=click.Choice(["async", "thread", "process"]),
              default="async", show_default=True)
@click.option("--worker-concurrency", type=click.IntRange(1, 10_000), default=100,
              show_default=True)
@click.option("--worker-prefetch", type=click.IntRange(0, 10_000), default=100,
              show_default=True)
@click.option("--latency-count", type=click.IntRange(10), default=None,
              help="Sequential submits per latency figure.  [default: 1000]")
@click.option("--result-count", type=click.IntRange(10), default=None,
              help="Submit-to-result round trips.  [default: 300]")
@click.option("--kills", type=click.IntRange(1, 100), default=None,
              help="Leader kills for the failover figure.  [default: 10]")
@click.option("--schedules", "schedule_count", type=click.IntRange(1), default=None,
              help="Schedules in the schedules section.  [default: 10000]")
@click.option("--memory-sizes", default=None, metavar="N[,N]",
              help="Queued-task counts for the memory figures.  [default: 100000,1000000]")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the JSON report here.")
@click.option("--base-dir", type=click.Path(file_okay=False), default=None,
              help="Where local clusters keep data (default: a temp dir, removed after).")
@click.option("--durability", type=click.Choice(["fsync", "none"]), default="fsync",
              show_default=True,
              help="The local clusters' `durability` setting (not with --nodes).")
@click.option("--raft-port", type=click.IntRange(1024, 65000), default=17400, show_default=True)
@click.option("--http-port", type=click.IntRange(1024, 65000), default=18400, show_default=True)
def bench_command(nodes: str | None, only: str, quick: bool, runs: int | None, clients: int,
                  submit_tasks: int | None, batch_tasks: int | None, batch_size: int,
                  batch_clients: int, e2e_tasks: int | None, workers: int, worker_pool: str,
                  worker_concurrency: int, worker_prefetch: int, latency_count: int | None,
                  result_count: int | None, kills: int | None, schedule_count: int | None,
                  memory_sizes: str | None,
                  json_path: str | None, base_dir: str | None, durability: str,
                  raft_port: int, http_port: int) -> None:
    """Measure throughput, latency, failover and memory; print each figure by its target."""
    sections = [s.strip() for s in only.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown or not sections:
        raise click.BadParameter(f"choose from {', '.join(SECTIONS)}", param_hint="--only")
    cfg = BenchConfig(clients=clients, batch_size=batch_size, batch_clients=batch_clients,
                      workers=workers, worker_pool=worker_pool,
                      worker_concurrency=worker_concurrency, worker_prefetch=worker_prefetch)
    if quick:
        for key, value in QUICK.items():
            setattr(cfg, key, value)
    given = {"runs": runs, "submit_tasks": submit_tasks, "batch_tasks": batch_tasks,
             "e2e_tasks": e2e_tasks, "latency_count": latency_count,
             "result_count": result_count, "kills": kills, "schedule_count": schedule_count,
             "memory_sizes": _ints(memory_sizes, "--memory-sizes") if memory_sizes else None}
    for key, value in given.items():
        if value is not None:
            setattr(cfg, key, value)
    # SIGTERM unwinds like Ctrl-C, so the clusters and workers started are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    urls = [u.strip().rstrip("/") for u in nodes.split(",") if u.strip()] if nodes else None
    if urls is None:
        # The local clusters bootstrap this admin key; the load loops and the
        # worker processes read it from the environment.
        os.environ["RAFTQ_API_KEY"] = "rq_" + secrets.token_urlsafe(32)
    own_dir = base_dir is None
    root = Path(base_dir or tempfile.mkdtemp(prefix="raftq-bench-"))
    try:
        sites = Sites(urls, root, raft_port, http_port, extra_config={"durability": durability})
        report = run_bench(cfg, sections, sites)
        if urls is None:
            report["config"]["durability"] = durability
    finally:
        if own_dir:
            shutil.rmtree(root, ignore_errors=True)
    report["command"] = " ".join(["raftq", "bench", *sys.argv[2:]])
    click.echo(report["table"])
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(report, indent=2) + "\n")
        click.echo(f"\nreport written to {json_path}", err=True)
    failed = [name for name, s in report["sections"].items() if "error" in s]
    if failed:
        raise click.ClickException(f"section(s) failed: {', '.join(failed)}")
