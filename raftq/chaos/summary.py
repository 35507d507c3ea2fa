"""A run's ``summary.txt``: its ``report.json`` as the few lines a person reads
(the verdict, the counts the checker judged, the failures)."""

from __future__ import annotations

from typing import Any

from raftq.chaos.timecheck import summary_lines
from raftq.chaos.wfcheck import summary_lines as workflow_lines


def summarize(report: dict[str, Any]) -> str:
    v = report["verdict"]
    faults = sum(1 for e in report["timeline"] if e["phase"] == "start")
    lines = [
        f"== {report['scenario']} (seed {report['seed']}, {report['duration_s']:.0f} s, "
        f"{report['nodes']} nodes, {report['network']}): {'PASS' if v['ok'] else 'FAIL'}",
        f"   faults {faults}; tasks acknowledged {v['acknowledged']} "
        f"(attempted {v['attempted']}), succeeded {v['completed']}, dead {v['dead']}",
        f"   lost {v['lost']}, unexpected {v['unexpected']}, duplicated while lease valid "
        f"{v['duplicated_while_valid']}, after expiry {v['duplicated_after_expiry']}, "
        f"stale accepted {v['stale_accepted']} (stale rejected {v['stale_rejected']}, "
        f"redelivered {v['redelivered']})",
        f"   max failover {v['max_failover_ms']} ms, max boot {v['max_boot_ms']} ms, "
        f"max recovery after heal {v['max_recovery_ms']} ms, drain {v['drain_ms']} ms "
        f"(limit {v['drain_limit_ms']:.0f}), leaders/term ok "
        f"{not v['multiple_leaders']}, digests equal {v['digests_converged']}",
    ]
    if v["real_worker_executions"]:
        lines.append(f"   raftq worker: {v['real_worker_executions']} runs, "
                     f"{v['real_worker_reexecuted']} tasks run more than once by it")
    lines += summary_lines(report.get("timing", {}))
    lines += workflow_lines(report.get("workflows", {}))
    if v.get("expectations"):
        lines.append("   checked: " + "; ".join(
            f"{what} {c['held']}/{c['held'] + c['failed']}"
            for what, c in v["expectations"].items()))
    lines += [f"   FAIL: {f}" for f in v["failures"]]
    if report.get("must_fail"):
        lines.append("   (a control scenario: it must FAIL, showing that the checker catches "
                     "the fault)")
    if not v["ok"]:
        lines.append(f"   logs kept in {report['run_dir']}")
    return "\n".join(lines)
