"""Workers the cluster knows, with real worker processes: each runs only the tasks it
has, submissions by name get the registered defaults, lost workers are shown and
forgotten, process-pool children are recycled, and workers obey the CLI."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from workerkit import Workers, kill_cluster, new_cluster, wait_for

from raftq.client.sync import Client
from raftq.local.cluster import LocalCluster

FORGET_MS = 8_000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    made = new_cluster(tmp_path_factory.mktemp("fleet") / "cluster", worker_forget_ms=FORGET_MS)
    yield made
    kill_cluster(made)


@pytest.fixture
def fleet(tmp_path: Path, cluster: LocalCluster) -> Iterator[Workers]:
    kit = Workers(tmp_path, cluster.http_urls)
    yield kit
    for proc in kit.procs:  # a worker killed on purpose is gone already
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    kit.stop_all()


def raftq(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "raftq", *args,
                           "--nodes", ",".join(cluster.http_urls)],
                          capture_output=True, text=True, timeout=60)


def worker(client: Client, worker_id: str) -> dict[str, Any] | None:
    return next((w for w in client.workers() if w["worker_id"] == worker_id), None)


def test_two_workers_with_different_tasks_on_one_queue_each_run_only_their_own(
        cluster: LocalCluster, fleet: Workers) -> None:
    client = Client(cluster.http_urls)
    fleet.start("--app", "fleet_a", "--queues", "mixed", "--worker-id", "wa")
    fleet.start("--app", "fleet_b", "--queues", "mixed", "--worker-id", "wb")
    wait_for(lambda: {"wa", "wb"} <= {w["worker_id"] for w in client.workers()},
             what="both workers announced")
    # By name, no queue: the registered definitions put both on "mixed".
    handles = [client.submit(name, [f"{name}-{i}"]) for i in range(15)
               for name in ("alpha", "beta")]
    nobody = client.submit("gamma", ["x"], queue="mixed")
    assert {client.result(h.id, timeout=60) for h in handles} == {
        f"{n}-{i}" for i in range(15) for n in ("alpha", "beta")}
    pids = {w["worker_id"]: w["pid"] for w in client.workers()}
    for key, pid, _ in fleet.runs():
        assert pid == pids["wa" if key.startswith("alpha") else "wb"], (key, pid)
    assert sum(1 for h in handles if client.get(h.id)["attempts"] != 1) == 0
    assert client.dead_letters() == []
    # gamma stays queued, and every view says why
    task = client.get(nobody.id)
    assert (task["status"], task["note"]) == ("queued", "no worker runs 'gamma'")
    assert "no worker runs 'gamma'" in raftq(cluster, "status", nobody.id).stdout
    listed = raftq(cluster, "list", "--status", "queued").stdout
    assert "no worker runs 'gamma'" in listed
    shown = raftq(cluster, "workers").stdout
    assert "abort,alpha,leak,nap,slow" in shown and " beta " in shown
    client.cancel(nobody.id)


def test_defaults_and_timeout_of_the_decorator_hold_for_a_cli_submission(
        cluster: LocalCluster, fleet: Workers) -> None:
    client = Client(cluster.http_urls)
    fleet.start("--app", "fleet_a", "--queues", "slowq", "--worker-id", "wslow")
    wait_for(lambda: worker(client, "wslow"), what="the worker announced")
    out = raftq(cluster, "submit", "slow", "--args", "3")
    assert out.returncode == 0, out.stderr
    task_id = out.stdout.strip()
    task = client.get(task_id, wait=0.5)  # waits for a node that has not applied it yet
    assert (task["queue"], task["priority"], task["max_attempts"], task["timeout_ms"]) == (
        "slowq", 192, 1, 1_000)
    task = wait_for(lambda: client.get(task_id)["status"] == "dead" and client.get(task_id),
                    what="the slow task timed out")
    assert [e["error"]["type"] for e in task["errors"]] == ["TimeoutError"]
    # a submission that asks for a longer timeout still gets the decorator's 1 s
    longer = client.submit("slow", [3], timeout=60)
    task = wait_for(lambda: client.get(longer.id)["status"] == "dead" and client.get(longer.id),
                    what="the second slow task timed out")
    assert task["timeout_ms"] == 60_000
    assert "1.0s" in task["errors"][0]["error"]["message"]


def test_a_lost_worker_is_shown_and_then_forgotten_and_a_dead_ones_lease_says_so(
        cluster: LocalCluster, fleet: Workers) -> None:
    client = Client(cluster.http_urls)
    proc = fleet.start("--app", "fleet_a", "--queues", "doomed", "--worker-id", "wdoomed",
                       "--heartbeat", "0.5", "--lease-ms", "4000")
    wait_for(lambda: worker(client, "wdoomed"), what="the worker announced")
    handle = client.submit("abort")
    assert proc.wait(30) != 0  # os.abort took the whole worker down
    wait_for(lambda: (w := worker(client, "wdoomed")) and w["state"] == "lost",
             timeout=15, what="the worker shown as lost")
    assert any(line.startswith("wdoomed") and " lost " in line
               for line in raftq(cluster, "workers").stdout.splitlines())
    task = wait_for(lambda: client.get(handle.id)["status"] == "dead" and client.get(handle.id),
                    what="the task dead-lettered")
    error = task["errors"][0]["error"]
    assert error["type"] == "WorkerDied" and "worker wdoomed died" in error["message"]
    wait_for(lambda: worker(client, "wdoomed") is None, timeout=FORGET_MS / 1000 + 10,
             what="the lost worker forgotten")


def test_a_leaking_task_gets_its_process_replaced_by_max_memory_per_child(
        cluster: LocalCluster, fleet: Workers) -> None:
    client = Client(cluster.http_urls)
    fleet.start("--app", "fleet_a", "--queues", "leaky", "--pool", "process",
                "--concurrency", "1", "--max-memory-per-child", "100000", "--worker-id", "wleak")
    wait_for(lambda: worker(client, "wleak"), what="the worker announced")  # defaults: leaky
    pids = [client.submit("leak", [50]).result(timeout=60) for _ in range(6)]
    runs = {pid: pids.count(pid) for pid in pids}
    assert len(runs) >= 3 and max(runs.values()) <= 2, runs
    assert "replacing worker process" in fleet.output(0)


def test_a_worker_is_paused_resized_and_drained_from_the_cli(
        cluster: LocalCluster, fleet: Workers) -> None:
    client = Client(cluster.http_urls)
    proc = fleet.start("--app", "fleet_a", "--queues", "ctl", "--worker-id", "wctl",
                       "--concurrency", "1", "--heartbeat", "0.5", "--claim-wait-ms", "500")
    wait_for(lambda: worker(client, "wctl"), what="the worker announced")

    def acted(mode: str, concurrency: int) -> bool:
        w = worker(client, "wctl")
        return bool(w) and (w["mode"], w["concurrency"]) == (mode, concurrency) and (
            w["acted"] == w["control"]["version"])

    assert raftq(cluster, "workers", "pause", "wctl").returncode == 0
    wait_for(lambda: acted("paused", 1), what="the worker paused")
    held = [client.submit("nap", [f"n{i}", 1.5]) for i in range(3)]
    assert raftq(cluster, "workers", "set-concurrency", "wctl", "3").returncode == 0
    wait_for(lambda: acted("paused", 3), what="the worker resized")
    assert fleet.runs() == []  # paused: none ran (a claim in flight hands them back)
    assert raftq(cluster, "workers", "resume", "wctl").returncode == 0
    assert [client.result(h.id, timeout=30) for h in held] == ["n0", "n1", "n2"]
    starts = sorted(at for key, _, event, at in fleet.timed_runs() if event == "run")
    assert starts[-1] - starts[0] < 1.5  # together (one at a time: 3 s apart)

    last = client.submit("nap", ["last", 2.0])
    wait_for(lambda: ("last", "run") in {(k, e) for k, _, e in fleet.runs()},
             what="the last task running")
    assert worker(client, "wctl")["running_ids"] == [last.id]  # type: ignore[index]
    out = raftq(cluster, "workers", "drain", "wctl")
    assert out.returncode == 0, out.stderr
    assert proc.wait(30) == 0  # finished its task, then exited
    # (a node may answer before it applied the last writes: wait, do not sleep)
    wait_for(lambda: client.get(last.id)["status"] == "succeeded", what="the last task done")
    wait_for(lambda: worker(client, "wctl") is None, what="its goodbye")


def test_control_names_the_problem(cluster: LocalCluster) -> None:
    out = raftq(cluster, "workers", "pause", "nobody-here")
    assert out.returncode == 1 and "no worker nobody-here" in out.stderr
    out = raftq(cluster, "workers", "set-concurrency", "nobody-here", "0")
    assert out.returncode == 2 and "'N'" in out.stderr
