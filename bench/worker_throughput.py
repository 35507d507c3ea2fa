"""End-to-end worker benchmark: a local 3-node cluster and real worker processes.

    .venv/bin/python bench/worker_throughput.py [--tasks 10000] [--workers 2]
        [--concurrency 32] [--prefetch 32] [--pool thread] [--latency-samples 200]

Reports (1) throughput: 10,000 no-op tasks submitted in batches of 1,000, from
the first submission until the last one has succeeded; (2) submit-to-result
latency of single tasks submitted one at a time to idle workers (submit, then
long-poll the result), p50/p99.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from raftq import Client  # noqa: E402
from raftq.local.cluster import LocalCluster  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--prefetch", type=int, default=32)
    parser.add_argument("--pool", default="thread")
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--raft-port", type=int, default=17280)
    parser.add_argument("--http-port", type=int, default=18280)
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="raftq-bench-"))
    cluster = LocalCluster(base, size=3, raft_port=args.raft_port, http_port=args.http_port)
    cluster.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        cluster.wait_ready(timeout=60)
        env = dict(os.environ, PYTHONPATH=str(ROOT), RAFTQ_API_KEY=cluster.admin_key)
        for n in range(args.workers):
            log = open(base / f"worker{n}.log", "ab")  # noqa: SIM115
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "raftq", "worker", "--app", "raftq.local.examples",
                 "--nodes", ",".join(cluster.http_urls), "--pool", args.pool,
                 "--concurrency", str(args.concurrency), "--prefetch", str(args.prefetch),
                 "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT, env=env))
        client = Client(cluster.http_urls, api_key=cluster.admin_key)
        deadline = time.monotonic() + 60
        while len(client.workers()) < args.workers:
            if time.monotonic() > deadline:
                raise SystemExit("workers did not show up; see " + str(base))
            time.sleep(0.1)

        started = time.perf_counter()
        client.submit_many([{"name": "noop", "queue": "default"} for _ in range(args.tasks)])
        submitted = time.perf_counter() - started
        while client.queues()["default"]["succeeded"] < args.tasks:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        print(f"throughput: {args.tasks} no-op tasks, {args.workers} workers x "
              f"{args.concurrency} ({args.pool} pool, prefetch {args.prefetch}): "
              f"{elapsed:.2f}s end to end = {args.tasks / elapsed:,.0f} tasks/s "
              f"(submission alone {submitted:.2f}s = {args.tasks / submitted:,.0f}/s)")

        samples = []
        for i in range(args.latency_samples):
            t0 = time.perf_counter()
            client.submit("add", [i, 1]).result(timeout=30)
            samples.append((time.perf_counter() - t0) * 1000)
        samples.sort()
        p50 = statistics.median(samples)
        p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
        print(f"latency: {len(samples)} single tasks, submit to result: p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms, max {samples[-1]:.1f} ms")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        cluster.stop()


if __name__ == "__main__":
    main()
