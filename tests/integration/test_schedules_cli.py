"""``raftq schedules`` against a real cluster: sync an app's declared schedules, add,
list, show, pause, resume, trigger, delete; a bad flag is one line naming it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from raftq.local.cluster import LocalCluster


def raftq(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "raftq", "schedules", *args,
                           "--nodes", ",".join(cluster.http_urls)],
                          capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parent)


def test_the_schedules_cli(cluster: LocalCluster) -> None:
    out = raftq(cluster, "sync", "--app", "schedule_app")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["nightly_report: created", "hourly-ping: created"]
    out = raftq(cluster, "sync", "--app", "schedule_app")  # a redeploy: nothing changes
    assert out.stdout.splitlines() == ["nightly_report: unchanged", "hourly-ping: unchanged"]

    listed = json.loads(raftq(cluster, "list", "--output", "json").stdout)
    by_id = {s["id"]: s for s in listed}
    assert by_id["nightly_report"]["cron"] == "0 3 * * *"
    assert by_id["nightly_report"]["task"]["queue"] == "reports"
    assert by_id["hourly-ping"]["every_ms"] == 3_600_000
    assert by_id["hourly-ping"]["task"]["args"] == [1]
    assert by_id["hourly-ping"]["task"]["expires_ms"] == 600_000

    out = raftq(cluster, "add", "beat", "ping", "--every", "60", "--args", "[2]",
                "--overlap", "buffer_one", "--paused")
    assert (out.returncode, out.stdout.strip()) == (0, "beat: created"), out.stderr
    out = raftq(cluster, "add", "bad", "ping", "--cron", "0 25 * * *")
    assert out.returncode == 1 and out.stderr.startswith("error: --cron:"), out.stderr
    out = raftq(cluster, "add", "bad", "ping", "--cron", "0 * * * *", "--timezone", "Mars/X")
    assert out.returncode == 1 and out.stderr.startswith("error: --timezone:"), out.stderr
    out = raftq(cluster, "add", "bad", "ping", "--cron", "0 * * * *", "--every", "5")
    assert out.returncode == 1 and "--cron/--every" in out.stderr

    assert raftq(cluster, "resume", "beat").stdout.strip() == "beat: resumed"
    assert raftq(cluster, "pause", "beat").stdout.strip() == "beat: paused"
    out = raftq(cluster, "trigger", "beat")
    assert out.returncode == 0 and out.stdout.startswith("beat: triggered beat@"), out.stderr
    shown = raftq(cluster, "show", "beat")
    assert "every 60s -> ping" in shown.stdout and "(paused)" in shown.stdout
    assert "triggered" in shown.stdout
    table = raftq(cluster, "list").stdout
    assert "0 3 * * * (Europe/Berlin)" in table and "every 3600s" in table

    assert raftq(cluster, "delete", "beat").stdout.strip() == "beat: deleted"
    out = raftq(cluster, "show", "beat")
    assert out.returncode == 1 and "no schedule beat" in out.stderr
