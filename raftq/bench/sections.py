"""The measurements of ``raftq bench``, one coroutine per section, each returning rows.

Every section runs on a ``Site`` (see ``raftq.bench.site``) with the fixed
counts of a ``BenchConfig``; throughput sections repeat ``runs`` times after
a warm-up and report the median, with each run kept in the JSON report.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from raftq.bench import http as h
from raftq.bench.fairness import fairness
from raftq.bench.schedules import schedules
from raftq.bench.site import CpuMeter, Site, Workers
from raftq.bench.stats import Row, latency_ms, median
from raftq.bench.workflows import workflows

Say = Callable[[str], None]


@dataclass
class BenchConfig:
    clients: int = 64
    submit_tasks: int = 20_000
    batch_tasks: int = 100_000
    batch_size: int = 100
    batch_clients: int = 16
    e2e_tasks: int = 20_000
    workers: int = 2
    worker_pool: str = "async"
    worker_concurrency: int = 100
    worker_prefetch: int = 100
    latency_count: int = 1_000
    result_count: int = 300
    kills: int = 10
    memory_sizes: list[int] = field(default_factory=lambda: [100_000, 1_000_000])
    payload_bytes: int = 200
    workflow_tasks: int = 10_000  # the DAG of section workflows: 1 -> N-2 -> 1
    runs: int = 3
    schedule_count: int = 10_000
    schedule_every_ms: int = 10_000
    schedule_seconds: float = 60.0
    fairness_tasks: int = 1_000_000
    fairness_tenants: int = 10_000

    @property
    def task_name(self) -> str:
        return "noop" if self.worker_pool == "async" else "noop_sync"


def _cpu_rows(key: str, site: Site, runs: list[dict[str, float]]) -> list[Row]:
    """CPU per task (median run, with each process's share) and the ceiling it implies."""
    if site.cluster is None or not runs:
        return []
    totals = [sum(run.values()) for run in runs]
    middle = runs[totals.index(sorted(totals)[len(totals) // 2])]
    cores = os.cpu_count() or 1
    share = ", ".join(f"{name} {us:.0f}" for name, us in middle.items())
    return [
        Row(f"{key}.cpu_us_per_task", "  CPU per task, all processes", median(totals), "us",
            totals, note=share),
        Row(f"{key}.cpu_ceiling_per_s", f"  CPU-bound ceiling on {cores} cores",
            cores * 1e6 / median(totals), "tasks/s"),
    ]


async def _commit_index(url: str) -> int:
    index: int = (await h.get_json(url, "/v1/node"))["commit_index"]
    return index


def _check(result: h.LoadResult, what: str, say: Say) -> None:
    if result.errors:
        say(f"  {what}: {result.errors} failed requests, e.g. {result.error_samples[:2]}")


async def submit(site: Site, cfg: BenchConfig, say: Say) -> list[Row]:
    """Single submits: ``clients`` connections over all nodes, one task per request."""
    body = {"name": cfg.task_name, "queue": "bench-submit"}
    warm = await h.fixed_load(site.urls, cfg.clients, max(cfg.submit_tasks // 10, cfg.clients),
                              body)
    _check(warm, "warm-up", say)
    leader, _ = await site.leader_and_follower()
    rates, p50s, p99s, cpu, grouping = [], [], [], [], []
    for run in range(cfg.runs):
        meter = CpuMeter(site)
        meter.start()
        entries = await _commit_index(leader)
        result = await h.fixed_load(site.urls, cfg.clients, cfg.submit_tasks, body,
                                    record_latency=True)
        cpu.append(meter.per_task_us(result.tasks))
        grouping.append(result.tasks / max(await _commit_index(leader) - entries, 1))
        _check(result, f"run {run + 1}", say)
        lat = latency_ms(result.latencies_s)
        rates.append(result.rate)
        p50s.append(lat["p50"])
        p99s.append(lat["p99"])
        say(f"  run {run + 1}: {result.rate:,.0f} tasks/s, p50 {lat['p50']:.1f} ms, "
            f"p99 {lat['p99']:.1f} ms")
    label = f"single submits, {cfg.clients} clients"
    return [
        Row("submit.tasks_per_s", label, median(rates), "tasks/s", rates),
        Row("submit.p50_ms", "  their latency p50", median(p50s), "ms", p50s),
        Row("submit.p99_ms", "  their latency p99", median(p99s), "ms", p99s),
        Row("submit.tasks_per_entry", "  tasks per Raft entry (group commit)",
            median(grouping), "", grouping),
        *_cpu_rows("submit", site, cpu),
    ]


async def batch(site: Site, cfg: BenchConfig, say: Say) -> list[Row]:
    """Batch submits of ``batch_size`` tasks per request."""
    spec = {"name": cfg.task_name, "queue": "bench-batch"}
    body = {"tasks": [spec] * cfg.batch_size}
    requests = max(cfg.batch_tasks // cfg.batch_size, 1)
    warm = await h.fixed_load(site.urls, cfg.batch_clients, max(requests // 10, 1), body,
                              "/v1/tasks/batch", cfg.batch_size)
    _check(warm, "warm-up", say)
    rates, cpu = [], []
    for run in range(cfg.runs):
        meter = CpuMeter(site)
        meter.start()
        result = await h.fixed_load(site.urls, cfg.batch_clients, requests, body,
                                    "/v1/tasks/batch", cfg.batch_size)
        cpu.append(meter.per_task_us(result.tasks))
        _check(result, f"run {run + 1}", say)
        rates.append(result.rate)
        say(f"  run {run + 1}: {result.rate:,.0f} tasks/s")
    label = f"batch submits, {cfg.batch_size}/request, {cfg.batch_clients} clients"
    return [Row("batch.tasks_per_s", label, median(rates), "tasks/s", rates),
            *_cpu_rows("batch", site, cpu)]


PENDING = ("queued", "scheduled", "leased")


async def _until_done(url: str, queue: str, expected: int,
                      producer: asyncio.Task[h.LoadResult] | None = None,
                      on_first: Callable[[], None] | None = None, every_s: float = 0.02,
                      timeout_s: float = 600.0) -> tuple[float, float, int]:
    """Wait until ``queue`` is drained: (first claim seen, last success seen, succeeded).

    Drained means ``expected`` tasks succeeded (fewer when ``producer``, still
    submitting them, had some refused) and nothing is left pending: a submit
    whose outcome was unknown may still have created its task.
    """
    first = 0.0
    deadline = time.perf_counter() + timeout_s
    while True:
        counts = await h.queue_counts(url, queue)
        now = time.perf_counter()
        if not first and (counts.get("leased", 0) or counts.get("succeeded", 0)):
            first = now
            if on_first is not None:
                on_first()
        goal = expected
        if producer is not None:
            goal = producer.result().tasks if producer.done() else expected + 1
        succeeded = counts.get("succeeded", 0)
        if succeeded >= goal and not any(counts.get(k, 0) for k in PENDING):
            return first or now, now, succeeded
        if now > deadline:
            raise TimeoutError(f"{queue}: {counts} after {timeout_s}s")
        await asyncio.sleep(every_s)


async def e2e(site: Site, cfg: BenchConfig, say: Say) -> list[Row]:
    """No-op tasks end to end with ``workers`` worker processes: draining, then live."""
    leader, _ = await site.leader_and_follower()
    spec = {"name": cfg.task_name}
    drain, live, live_submit, drain_cpu, live_cpu = [], [], [], [], []
    for run in range(cfg.runs):
        queue = f"bench-drain-{run}"
        loaded = await h.load_batches(site.urls, cfg.e2e_tasks, {**spec, "queue": queue},
                                      per_request=cfg.batch_size, clients=8)
        _check(loaded, "pre-fill", say)
        await site.wait_applied(queue, "queued", loaded.tasks, urls=[leader])
        with Workers(site, queue, cfg.workers, cfg.worker_pool, cfg.worker_concurrency,
                     cfg.worker_prefetch) as workers:
            # Started at the first claim: the workers' start-up is not the queue's cost.
            meter = CpuMeter(site, workers.named_pids)
            first, last, done = await _until_done(leader, queue, loaded.tasks,
                                                  on_first=meter.start)
            drain_cpu.append(meter.per_task_us(done))
        drain.append(done / (last - first))
        say(f"  drain run {run + 1}: {drain[-1]:,.0f} tasks/s")

        queue = f"bench-live-{run}"
        with Workers(site, queue, cfg.workers, cfg.worker_pool, cfg.worker_concurrency,
                     cfg.worker_prefetch) as workers:
            await workers.wait_registered()
            meter = CpuMeter(site, workers.named_pids)
            meter.start()
            started = time.perf_counter()
            submitting = asyncio.create_task(h.fixed_load(
                site.urls, cfg.clients, cfg.e2e_tasks, {**spec, "queue": queue}))
            _, last, done = await _until_done(leader, queue, cfg.e2e_tasks, submitting)
            result = await submitting
            live_cpu.append(meter.per_task_us(done))
        _check(result, "live submits", say)
        live.append(done / (last - started))
        live_submit.append(result.rate)
        say(f"  live run {run + 1}: {live[-1]:,.0f} tasks/s done "
            f"(submitted at {result.rate:,.0f}/s)")
    who = f"{cfg.workers} {cfg.worker_pool} workers"
    return [
        Row("e2e.drain.tasks_per_s", f"no-op end to end, {who}, draining", median(drain),
            "tasks/s", drain),
        *_cpu_rows("e2e.drain", site, drain_cpu),
        Row("e2e.concurrent.tasks_per_s", f"  the same with {cfg.clients} clients submitting",
            median(live), "tasks/s", live),
        Row("e2e.concurrent.submit_per_s", "  their submit rate meanwhile", median(live_submit),
            "tasks/s", live_submit),
        *_cpu_rows("e2e.concurrent", site, live_cpu),
    ]


def _latency_rows(key: str, label: str, samples: list[float]) -> list[Row]:
    lat = latency_ms(samples)
    return [Row(f"{key}.{p}_ms", f"{label} {p}" if p == "p50" else f"  {p}", lat[p], "ms")
            for p in ("p50", "p90", "p99", "max")]


async def latency(site: Site, cfg: BenchConfig, say: Say) -> list[Row]:
    """One client, sequential: submit via the leader, via a follower; submit-to-result."""
    leader, follower = await site.leader_and_follower()
    body = {"name": cfg.task_name, "queue": "bench-latency"}
    rows = []
    for key, label, url in (("leader", "submit latency via leader", leader),
                            ("follower", "submit latency via follower", follower)):
        if url is None:
            say(f"  no follower to measure {label}")
            continue
        await h.sequential_latency(url, max(cfg.latency_count // 10, 10), body)
        samples = await h.sequential_latency(url, cfg.latency_count, body)
        rows += _latency_rows(f"latency.{key}", label, samples)
        say(f"  {label}: p50 {rows[-4].value:.2f} ms, p99 {rows[-2].value:.2f} ms")
    queue = "bench-roundtrip"
    # The worker talks to the leader only, as the submits do: no forwarding hop in the figure.
    with Workers(site, queue, 1, cfg.worker_pool, cfg.worker_concurrency, 0,
                 nodes=[leader]) as workers:
        await workers.wait_registered()
        rt_body = {"name": cfg.task_name, "queue": queue}
        await h.round_trips(leader, max(cfg.result_count // 10, 5), rt_body)
        samples = await h.round_trips(leader, cfg.result_count, rt_body)
    rows += _latency_rows("latency.result", "submit-to-result, idle worker,", samples)
    say(f"  submit-to-result: p50 {rows[-4].value:.2f} ms, p99 {rows[-2].value:.2f} ms")
    return rows


async def failover(site: Site, cfg: BenchConfig, say: Say) -> list[Row]:
    """kill -9 the leader; time until another node acknowledges a write. ``kills`` times."""
    cluster = site.cluster
    if cluster is None:
        say("  skipped: failover needs a cluster the bench starts itself (no --nodes)")
        return []
    body = {"name": cfg.task_name, "queue": "bench-failover"}
    times = []
    for kill in range(cfg.kills):
        index = cluster.wait_ready(timeout=60)
        await h.sequential_latency(cluster.http_urls[index], 20, body)  # a leader that works
        survivors = [u for i, u in enumerate(cluster.http_urls) if i != index]
        started = time.perf_counter()
        cluster.kill(index, signal.SIGKILL)
        elapsed = await h.first_ack(survivors, body, started=started)
        times.append(elapsed)
        say(f"  kill {kill + 1}: writes again after {elapsed:.3f} s")
        cluster.start_node(index)
        await site.wait_ready(cluster.http_urls[index])
    return [Row("failover.median_s", f"writes again after kill -9 of the leader "
                f"(median of {len(times)})", median(times), "s", times)]


async def memory(site: Site, cfg: BenchConfig, say: Say) -> list[Row]:
    """RSS of every node with N queued tasks, and a node's restart time from disk."""
    cluster = site.cluster
    if cluster is None:
        say("  skipped: memory needs a cluster the bench starts itself (no --nodes)")
        return []
    spec = h.noop_spec("bench-memory", cfg.payload_bytes)
    spec["name"] = cfg.task_name
    rows = [Row("memory.empty.rss_mb", "node RSS, empty (max of nodes)", max(site.rss_mb()),
                "MB")]
    acked = 0
    for size in sorted(cfg.memory_sizes):
        started, before = time.perf_counter(), acked
        for _ in range(5):  # top up what was refused (e.g. during an election)
            result = await h.load_batches(site.urls, size - acked, spec, per_request=500)
            _check(result, f"loading {size}", say)
            acked += result.tasks
            if acked >= size:
                break
        rate = (acked - before) / (time.perf_counter() - started)
        await site.wait_applied("bench-memory", "queued", acked)
        # A refused batch whose outcome was unknown may have landed too: report the truth.
        queued = (await h.queue_counts(site.urls[0], "bench-memory")).get("queued", 0)
        say(f"  loaded {queued:,} tasks at {rate:,.0f}/s")
        rss = site.rss_mb()
        rows.append(Row(f"memory.{size}.rss_mb", f"node RSS, {size:,} queued (max of nodes)",
                        max(rss), "MB", note=f"{queued:,} queued; nodes: " +
                        ", ".join(f"{r:.0f}" for r in rss)))
        leader = cluster.wait_ready(timeout=60)
        index = (leader + 1) % len(cluster.nodes)  # a follower: the cluster keeps going
        cluster.kill(index, signal.SIGKILL)
        started = time.perf_counter()
        cluster.start_node(index)
        await site.wait_ready(cluster.http_urls[index])
        ready_s = time.perf_counter() - started
        rows.append(Row(f"memory.{size}.restart_s", "  restart a node from disk to /readyz",
                        ready_s, "s"))
        say(f"  {size:,}: RSS {', '.join(f'{r:.0f}' for r in rss)} MB; restart {ready_s:.2f} s")
    return rows


SECTIONS = {
    "submit": submit,
    "batch": batch,
    "e2e": e2e,
    "latency": latency,
    "failover": failover,
    "memory": memory,
    "workflows": workflows,
    "schedules": schedules,
    "fairness": fairness,
}
