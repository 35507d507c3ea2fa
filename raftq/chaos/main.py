"""Command line of the chaos harness.

    python -m chaos run --scenario kill-leader --duration 300 --seed 1
    python -m chaos run --all --duration 300
    python -m chaos run --smoke
    python -m chaos run --list
    python -m chaos cleanup        # namespaces, links, loop disks, sysctls left by a killed run
    python -m chaos table chaos/runs/*/report.json   # a markdown table of results

Exits 0 when every scenario run passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from raftq.chaos import disks
from raftq.chaos.net import cleanup_stale
from raftq.chaos.runner import RUNS_DIR, Run, Settings
from raftq.chaos.scenarios import SCENARIOS, SMOKE

SMOKE_DURATION_S = 20.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="raftq chaos")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run scenarios and judge them")
    which = run.add_mutually_exclusive_group(required=True)
    which.add_argument("--scenario", action="append", choices=sorted(SCENARIOS),
                       help="a scenario (repeatable)")
    which.add_argument("--all", action="store_true", help="every scenario")
    which.add_argument("--smoke", action="store_true", help=f"a short set: {', '.join(SMOKE)}")
    which.add_argument("--list", action="store_true", help="list the scenarios")
    run.add_argument("--duration", type=float, help="seconds of faults per scenario")
    run.add_argument("--seed", type=int, default=None)
    run.add_argument("--mode", choices=["auto", "netns", "proxy"], default="auto",
                     help="netns (root, iptables/nft) or the TCP fault proxy")
    run.add_argument("--lease-ms", type=int, default=5000)
    run.add_argument("--rate", type=float, default=2.0, help="submissions/s per submitter")
    run.add_argument("--keep", action="store_true", help="keep node logs and data of passing runs")
    sub.add_parser("cleanup", help="remove namespaces, links, mounts and loop devices left "
                   "by a killed run; restore the writeback sysctls")
    table = sub.add_parser("table", help="a markdown table of report.json files")
    table.add_argument("reports", nargs="+", type=Path)
    args = parser.parse_args(argv)

    if args.command == "table":
        print(markdown_table([json.loads(p.read_text()) for p in args.reports]))
        return 0

    if args.command == "cleanup":
        print("\n".join(cleanup_stale() + disks.cleanup_stale()) or "nothing to clean")
        return 0
    if args.list:
        for s in SCENARIOS.values():
            control = "  (a control: must fail; not in --all)" if s.must_fail else ""
            print(f"{s.name:20} {s.nodes} nodes  {s.description}{control}")
        return 0

    everything = sorted(n for n, s in SCENARIOS.items() if not s.must_fail)
    if args.all and os.geteuid() != 0:
        rooted = [n for n in everything if SCENARIOS[n].disks is not None]
        print(f"chaos: not root, skipping {', '.join(rooted)} (loop filesystems)")
        everything = [n for n in everything if n not in rooted]
    names = SMOKE if args.smoke else everything if args.all else args.scenario
    duration = args.duration or (SMOKE_DURATION_S if args.smoke else 300.0)
    seed = args.seed if args.seed is not None else int(time.time()) % 100_000
    reports = []
    current: list[Run] = []

    def interrupt(signum: int, frame: FrameType | None) -> None:
        """First signal: end the current run's faults early, judge it, run no more.
        Second: leave now (the ``finally`` blocks still tear the cluster down)."""
        if not current or current[-1].abort.is_set():
            raise KeyboardInterrupt
        current[-1].abort.set()
        names[:] = []

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    names = list(names)
    i = 0
    while i < len(names):
        settings = Settings(duration_s=duration, seed=seed + i, mode=args.mode,
                            lease_ms=args.lease_ms, submit_rate=args.rate, keep=args.keep)
        current.append(Run(SCENARIOS[names[i]], settings))
        reports.append(current[-1].execute())
        i += 1
    ok = all(r["verdict"]["ok"] for r in reports)
    if len(reports) > 1:
        RUNS_DIR.mkdir(parents=True, exist_ok=True)
        index = RUNS_DIR / f"{time.strftime('%Y%m%d-%H%M%S')}-index.json"
        index.write_text(json.dumps(
            [{"scenario": r["scenario"], "ok": r["verdict"]["ok"], "run_dir": r["run_dir"]}
             for r in reports], indent=2))
    passed = sum(r["verdict"]["ok"] for r in reports)
    print(f"chaos: {passed} passed, {len(reports) - passed} failed")
    return 0 if ok else 1


def markdown_table(reports: list[dict[str, Any]]) -> str:
    head = ("| scenario | s | net | faults | acked | succeeded | lost | dup valid | "
            "dup expired | stale ok | stale 409 | max failover ms | max recovery ms | "
            "drain ms | digests | verdict |")
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in reports:
        v = r["verdict"]
        faults = sum(1 for e in r["timeline"] if e["phase"] == "start")
        rows.append(
            f"| {r['scenario']} | {r['duration_s']:.0f} | {r['network']} | {faults} | "
            f"{v['acknowledged']} | {v['completed']} | {v['lost']} | "
            f"{v['duplicated_while_valid']} | {v['duplicated_after_expiry']} | "
            f"{v['stale_accepted']} | {v['stale_rejected']} | {v['max_failover_ms']} | "
            f"{v['max_recovery_ms']} | {v['drain_ms']} | "
            f"{'equal' if v['digests_converged'] else 'DIFFER'} | "
            f"{'PASS' if v['ok'] else 'FAIL'} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
