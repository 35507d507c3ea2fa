"""Side-by-side: the same no-op workload on Huey and Celery (each on Redis) and on raftq.

Run it through ``bench/peers/run.sh``, which installs Redis and the peers'
packages (into bench/.peers-venv, never the project's venv) and then runs
this file with that venv's Python.

For each peer and each run: enqueue N no-op tasks from one process, one at
a time (enqueue/s); drain them with two worker processes (tasks/s, timed
between a start marker task queued before them and an end marker after);
then the round trip of one task with an idle consumer (p50/p99). Redis runs
with ``appendonly yes`` and ``appendfsync everysec``. raftq's figures come
from ``raftq bench`` run in the same session with the same counts, and the
script prints raftq/peer ratios and writes everything as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PORT = 16379
URL = f"redis://127.0.0.1:{PORT}/0"
os.environ["PEER_REDIS_URL"] = URL
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
            [binary, "--port", str(PORT), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
             "--daemonize", "no", "--logfile", str(self.workdir / "redis.log")],
            start_new_session=True)
        client = redis.Redis.from_url(URL)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start; see " + str(self.workdir))

    def flush(self) -> None:
        import redis

        redis.Redis.from_url(URL).flushall()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def _consumer(system: str, workdir: Path) -> subprocess.Popen[bytes]:
    bindir = Path(sys.executable).parent
    if system == "huey":
        cmd = [str(bindir / "huey_consumer"), "peer_huey.huey", "-w", "2", "-k", "process",
               "-n", "-q"]
    else:
        cmd = [str(bindir / "celery"), "-A", "peer_celery", "worker", "-c", "2", "-P",
               "prefork", "--without-gossip", "--without-mingle", "--without-heartbeat",
               "-l", "warning"]
    log = open(workdir / f"{system}-consumer.log", "ab")  # noqa: SIM115
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    proc = subprocess.Popen(cmd, cwd=HERE, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    log.close()
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _tasks(system: str) -> Any:
    if system == "huey":
        import peer_huey

        return peer_huey
    import peer_celery

    return peer_celery


def _send(system: str, task: Any, *args: Any) -> Any:
    return task(*args) if system == "huey" else task.delay(*args)


def _huey_result(handle: Any, timeout_s: float = 10.0) -> Any:
    # Huey's own blocking get() polls from 100 ms up; poll tightly so the
    # round trip measures Huey, not its client's backoff.
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        value = handle.get()
        if value is not None:
            return value
        time.sleep(0.0002)
    raise TimeoutError("huey round trip timed out")


def one_run(system: str, count: int, round_trips: int, workdir: Path,
            redis_server: Redis) -> dict[str, float]:
    import redis

    mod = _tasks(system)
    marks = redis.Redis.from_url(URL)
    redis_server.flush()
    for _ in range(200):  # warm the client's connection and code paths; drained below
        _send(system, mod.noop)
    redis_server.flush()

    _send(system, mod.mark, "start")
    started = time.perf_counter()
    for _ in range(count):
        _send(system, mod.noop)
    enqueue_s = time.perf_counter() - started
    _send(system, mod.mark, "end")

    consumer = _consumer(system, workdir)
    try:
        deadline = time.time() + 600
        while marks.get("end") is None:
            if consumer.poll() is not None:
                raise RuntimeError(f"{system} consumer exited; see {workdir}")
            if time.time() > deadline:
                raise TimeoutError(f"{system} did not drain {count} tasks in 600 s")
            time.sleep(0.01)
        drain_s = float(marks.get("end") or 0) - float(marks.get("start") or 0)

        samples = []
        for i in range(round_trips + 20):
            t0 = time.perf_counter()
            handle = _send(system, mod.round_trip)
            value = _huey_result(handle) if system == "huey" else handle.get(timeout=10)
            if value != 1:
                raise RuntimeError(f"{system} round trip returned {value!r}")
            if i >= 20:
                samples.append(time.perf_counter() - t0)
    finally:
        _stop(consumer)
    return {
        "enqueue_per_s": count / enqueue_s,
        "drain_per_s": count / drain_s,
        "rt_p50_ms": percentile(samples, 50) * 1000,
        "rt_p99_ms": percentile(samples, 99) * 1000,
    }


def run_peer(system: str, runs: int, count: int, round_trips: int, workdir: Path,
             redis_server: Redis) -> dict[str, Any]:
    per_run = []
    for run in range(runs):
        result = one_run(system, count, round_trips, workdir, redis_server)
        per_run.append(result)
        print(f"  {system} run {run + 1}: " + ", ".join(f"{k} {v:,.1f}" for k, v in
                                                    result.items()), flush=True)
    return summarize(per_run)


def summarize(per_run: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in per_run[0]:
        values = [r[key] for r in per_run]
        out[key] = {"median": statistics.median(values), "min": min(values),
                    "max": max(values), "runs": values}
    return out


def run_raftq(runs: int, count: int, workdir: Path, extra: list[str]) -> dict[str, Any]:
    report_path = workdir / "raftq.json"
    raftq = os.environ.get("RAFTQ_BIN", str(ROOT / ".venv" / "bin" / "raftq"))
    cmd = [raftq, "bench", "--only", "submit,batch,e2e,latency", "--runs", str(runs),
           "--submit-tasks", str(count), "--e2e-tasks", str(count), "--json", str(report_path),
           *extra]
    print("  " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=False)
    report: dict[str, Any] = json.loads(report_path.read_text())
    return report


def raftq_figures(report: dict[str, Any]) -> dict[str, Any]:
    rows = {r["key"]: r for r in report["rows"]}

    def fig(key: str) -> dict[str, Any]:
        row = rows.get(key)
        if row is None:
            return {"median": float("nan")}
        return {"median": row["value"], "min": row.get("min", row["value"]),
                "max": row.get("max", row["value"]), "runs": row.get("runs", [row["value"]])}

    return {"enqueue_per_s": fig("submit.tasks_per_s"),
            "batch_enqueue_per_s": fig("batch.tasks_per_s"),
            "drain_per_s": fig("e2e.drain.tasks_per_s"),
            "rt_p50_ms": fig("latency.result.p50_ms"),
            "rt_p99_ms": fig("latency.result.p99_ms")}


ROWS = [("enqueue_per_s", "enqueue/s", True), ("drain_per_s", "tasks/s, 2 workers", True),
        ("rt_p50_ms", "round trip p50 ms", False), ("rt_p99_ms", "round trip p99 ms", False)]
GOALS = {"huey": 1.0, "celery": 3.0}


def table(results: dict[str, dict[str, Any]]) -> str:
    systems = list(results)
    lines = [["figure", *systems, *[f"raftq/{s}" for s in systems if s != "raftq"]]]
    for key, label, higher in ROWS:
        ours = results["raftq"][key]["median"]
        line = [label] + [f"{results[s][key]['median']:,.1f}" for s in systems]
        for s in systems:
            if s == "raftq":
                continue
            theirs = results[s][key]["median"]
            r = (ours / theirs if higher else theirs / ours) if ours and theirs else float("nan")
            goal = GOALS[s] if key in ("enqueue_per_s", "drain_per_s") else None
            verdict = "" if goal is None else (" ok" if r >= goal else f" MISS (>= {goal:g}x)")
            line.append(f"{r:.2f}x{verdict}")
        lines.append(line)
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", default="huey,celery,raftq")
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--round-trips", type=int, default=300)
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "peers.json"))
    parser.add_argument("raftq_args", nargs="*", help="extra `raftq bench` options (after --)")
    args = parser.parse_args()
    systems = [s for s in args.systems.split(",") if s]
    workdir = Path(tempfile.mkdtemp(prefix="raftq-peers-"))
    results: dict[str, dict[str, Any]] = {}
    redis_server = Redis(workdir)
    try:
        if any(s != "raftq" for s in systems):
            redis_server.start()
        for system in systems:
            print(f"[{system}]", flush=True)
            if system == "raftq":
                results["raftq"] = raftq_figures(run_raftq(args.runs, args.tasks, workdir,
                                                           args.raftq_args))
            else:
                results[system] = run_peer(system, args.runs, args.tasks, args.round_trips,
                                           workdir, redis_server)
    finally:
        redis_server.stop()
    text = table(results) if "raftq" in results and len(results) > 1 else ""
    print(text)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                               "tasks": args.tasks, "runs": args.runs,
                               "load_avg": list(os.getloadavg()), "results": results,
                               "table": text}, indent=2) + "\n")
    print(f"report written to {out}; logs in {workdir}")


if __name__ == "__main__":
    main()
