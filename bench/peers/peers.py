"""Like for like: the same no-op workload on Huey, Celery (both on Redis), NATS
JetStream (three servers, R3) and raftq (three nodes), every system driven the
same way, in one session.

Run it through ``bench/peers/run.sh``, which installs what it needs (Redis and
nats-server with apt, the peers' packages and raftq into bench/.peers-venv,
never the project's venv) and runs this file with that venv's Python.

Each system is a module ``peer_<name>.py`` with a ``System`` class: the same
tasks (``add(1, 2)``, ``one()`` returning 1, ``mark(key)`` writing the time to
a file), its own producer calls and its worker processes started as a user
starts them. For each system and each run:

1. one producer process calling one task at a time (``add.delay(1, 2)``;
   ``js.publish`` awaiting each ack for NATS): enqueue/s;
2. one worker process drains them: tasks/s between a start and an end
   marker task queued around them (the times the markers' own runs wrote);
3. round trip with that worker idle: submit one task, wait for its result;
4. C producer processes (``--producers``, each one connection, one task at
   a time) enqueue N more: enqueue/s from the moment all are connected;
5. two worker processes drain those: tasks/s;
6. the batch API where the system has one (raftq ``delay_many``, Celery
   ``group``, NATS: publishes of 1,000 in flight): enqueue/s;
7. one process with 100 submissions in flight on asyncio (raftq
   ``delay_async``, NATS ``js.publish``): enqueue/s.

The machine's load average is sampled every 2 s throughout and reported with
the figures. Every figure is the median of ``--runs``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing as mp
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
REDIS_PORT = 16379
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}/0"
os.environ["PEER_REDIS_URL"] = REDIS_URL
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
sys.path.insert(0, str(HERE))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = int(rank), min(int(rank) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class Redis:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [binary, "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--dir",
             str(self.workdir), "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
             "--daemonize", "no", "--logfile", str(self.workdir / "redis.log")],
            start_new_session=True)
        client = redis.Redis.from_url(REDIS_URL)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start; see " + str(self.workdir))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class Load:
    """The 1-minute load average, sampled every 2 s while the benchmark runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(2.0):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> Load:
        self.samples.append(os.getloadavg()[0])
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        return {"min": min(self.samples), "median": statistics.median(self.samples),
                "max": max(self.samples)}


def system_for(name: str, workdir: Path) -> Any:
    return importlib.import_module(f"peer_{name}").System(workdir)


def produce(system: Any, count: int) -> None:
    if hasattr(system, "produce"):
        system.produce(count)
    else:
        for _ in range(count):
            system.send()


def _producer(name: str, workdir: str, count: int, barrier: Any) -> None:
    system = system_for(name, Path(workdir))
    system.connect()
    barrier.wait()
    produce(system, count)
    if hasattr(system, "disconnect"):
        system.disconnect()


def concurrent_produce(name: str, workdir: Path, count: int, producers: int) -> float:
    """Seconds for ``producers`` processes to enqueue ``count`` tasks in all."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(producers + 1)
    procs = [ctx.Process(target=_producer, args=(name, str(workdir), count // producers, barrier))
             for _ in range(producers)]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=120)
    started = time.perf_counter()
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"a {name} producer exited with {proc.exitcode}")
    return time.perf_counter() - started


def wait_mark(marks: Path, key: str, workers: list[subprocess.Popen[bytes]],
              timeout: float = 600) -> float:
    deadline = time.monotonic() + timeout
    path = marks / key
    while not path.exists() or not path.read_text():
        if any(w.poll() is not None for w in workers):
            raise RuntimeError(f"a worker exited before the {key} marker ran")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the {key} marker did not run in {timeout} s")
        time.sleep(0.01)
    return float(path.read_text())


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for proc in workers:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in workers:
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def drained(system: Any, marks: Path, key: str, count: int, processes: int,
            log: Any) -> tuple[float, list[subprocess.Popen[bytes]]]:
    workers = system.workers(processes, log)
    try:
        end = wait_mark(marks, f"{key}-end", workers)
        start = float((marks / f"{key}-start").read_text())
    except BaseException:
        stop(workers)
        raise
    return count / (end - start), workers


def one_run(name: str, system: Any, workdir: Path, args: argparse.Namespace) -> dict[str, float]:
    marks = workdir / "marks"
    shutil.rmtree(marks, ignore_errors=True)
    marks.mkdir()
    system.reset()
    out: dict[str, float] = {}
    count = args.tasks
    with open(workdir / f"{name}-workers.log", "ab") as log:
        produce(system, 200)  # warm-up: connections, code paths (drained before the marker)
        system.mark("one-start")
        started = time.perf_counter()
        produce(system, count)
        out["enqueue_one"] = count / (time.perf_counter() - started)
        system.mark("one-end")

        out["drain_1"], workers = drained(system, marks, "one", count, 1, log)
        try:
            samples = []
            timeouts = 0
            for i in range(args.round_trips + 20):
                t0 = time.perf_counter()
                try:
                    value = system.round_trip()
                except TimeoutError:  # counted and reported, not hidden in a percentile
                    timeouts += 1
                    if timeouts > 3:
                        raise
                    continue
                if value != 1:
                    raise RuntimeError(f"{name} round trip returned {value!r}")
                if i >= 20:
                    samples.append(time.perf_counter() - t0)
            out["rt_timeouts"] = timeouts
        finally:
            stop(workers)
        out["rt_p50_ms"] = percentile(samples, 50) * 1000
        out["rt_p99_ms"] = percentile(samples, 99) * 1000

        system.mark("many-start")
        out["enqueue_c"] = count / concurrent_produce(name, workdir, count, args.producers)
        system.mark("many-end")
        out["drain_2"], workers = drained(system, marks, "many", count, 2, log)
        stop(workers)

    for key, seconds in (("batch", system.batch(count)),
                         ("in_flight", system.in_flight(count, 100))):
        if seconds is not None:
            out[key] = count / seconds
    system.reset()
    return out


def run_system(name: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    workdir = root / name
    workdir.mkdir()
    os.environ["PEER_MARKS"] = str(workdir / "marks")
    system = system_for(name, workdir)
    system.start()
    per_run = []
    try:
        for run in range(args.runs):
            result = one_run(name, system, workdir, args)
            per_run.append(result)
            print(f"  {name} run {run + 1}: " + ", ".join(f"{k} {v:,.1f}" for k, v in
                                                       result.items()), flush=True)
    finally:
        system.stop()
    summary: dict[str, Any] = {"copies": system.copies}
    for key in per_run[0]:
        values = [r[key] for r in per_run]
        summary[key] = {"median": statistics.median(values), "runs": values}
    return summary


COLUMNS = [("enqueue_one", "enqueue/s, one producer", True),
           ("enqueue_c", "enqueue/s, {c} producers", True),
           ("batch", "batch enqueue/s", True),
           ("in_flight", "enqueue/s, 100 in flight (asyncio)", True),
           ("drain_1", "drain/s, 1 worker process", True),
           ("drain_2", "drain/s, 2 worker processes", True),
           ("rt_p50_ms", "round trip p50 ms", False),
           ("rt_p99_ms", "round trip p99 ms", False)]


def _fmt(value: float | None, higher: bool) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if higher else f"{value:.2f}"


def table(results: dict[str, dict[str, Any]], producers: int) -> str:
    systems = list(results)
    heads = ["system", "copies"] + [label.format(c=producers) for _, label, _ in COLUMNS]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for s in systems:
        cells = [s, str(results[s]["copies"])]
        for key, _, higher in COLUMNS:
            fig = results[s].get(key)
            cells.append(_fmt(fig["median"] if fig else None, higher))
        lines.append("| " + " | ".join(cells) + " |")
    if "raftq" in results:
        for s in systems:
            if s == "raftq":
                continue
            cells = [f"raftq/{s}", ""]
            for key, _, higher in COLUMNS:
                ours, theirs = results["raftq"].get(key), results[s].get(key)
                if not ours or not theirs:
                    cells.append("-")
                    continue
                # Above 1 means raftq is better, for rates and for latencies alike.
                ratio = (ours["median"] / theirs["median"] if higher
                         else theirs["median"] / ours["median"])
                cells.append(f"{ratio:.2f}x")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", default="huey,celery,nats,raftq")
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--producers", type=int, default=8)
    parser.add_argument("--round-trips", type=int, default=300)
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "peers.json"))
    args = parser.parse_args()
    systems = [s for s in args.systems.split(",") if s]
    root = Path(tempfile.mkdtemp(prefix="raftq-peers-"))
    results: dict[str, dict[str, Any]] = {}
    redis_server = Redis(root)
    started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    with Load() as load:
        try:
            if {"huey", "celery"} & set(systems):
                redis_server.start()
            for name in systems:
                print(f"[{name}]", flush=True)
                results[name] = run_system(name, args, root)
        finally:
            redis_server.stop()
    text = table(results, args.producers)
    loadavg = load.summary()
    print(text)
    print(f"load average (1 min) during the run: min {loadavg['min']:.1f}, median "
          f"{loadavg['median']:.1f}, max {loadavg['max']:.1f}; {os.cpu_count()} CPUs")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "started_at": started_at, "tasks": args.tasks, "runs": args.runs,
        "producers": args.producers, "cpus": os.cpu_count(), "python": platform.python_version(),
        "load_avg": loadavg, "results": results, "table": text}, indent=2) + "\n")
    print(f"report written to {out}; logs in {root}")


if __name__ == "__main__":
    main()
