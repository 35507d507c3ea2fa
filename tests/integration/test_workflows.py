"""Workflows on a real cluster with real workers: chains, groups, chords, failure
policies and error handlers, and the HTTP shape of /v1/workflows."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from clusterkit import http as kit_http
from workerkit import Workers, shared_cluster  # noqa: F401
from workflow_apps import add, boom, handled, mul, noop, total

from raftq import Client, TaskFailed
from raftq.client.canvas import chain, chord, group
from raftq.local.cluster import LocalCluster

APP = ["--app", "workflow_apps", "--concurrency", "4"]


@pytest.fixture(scope="module")
def client(shared_cluster: LocalCluster) -> Iterator[Client]:  # noqa: F811
    with Client(shared_cluster.http_urls, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def running(shared_cluster: LocalCluster,  # noqa: F811
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    kit = Workers(tmp_path_factory.mktemp("workers"), shared_cluster.http_urls)
    kit.start(*APP)
    kit.start(*APP)
    yield kit
    kit.stop_all()


def http(cluster: LocalCluster, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return kit_http(cluster.http_urls[1] + path, method, body, timeout=30)


def test_a_chain_passes_each_result_on(client: Client, running: Workers) -> None:
    handle = chain(add.s(2, 3), add.s(10), mul.s(2)).submit(client)
    assert handle.result(timeout=60) == 30
    view = handle.get()
    assert view["status"] == "succeeded"
    assert [t["result"] for t in view["tasks"]] == [5, 15, 30]
    assert view["tasks"][1]["depends_on"] == [view["tasks"][0]["id"]]


def test_a_group_gives_the_list_of_its_results(client: Client, running: Workers) -> None:
    handle = group(add.s(i, i) for i in range(6)).submit(client)
    assert handle.result(timeout=60) == [0, 2, 4, 6, 8, 10]


def test_a_chord_calls_back_with_the_headers_results(client: Client, running: Workers) -> None:
    handle = chord(group(add.s(i, 1) for i in range(5)), total.s()).submit(client)
    assert handle.result(timeout=60) == 15
    assert handle.get()["status"] == "succeeded"


def test_a_chord_with_a_failing_member_cancels_its_callback(
    client: Client, running: Workers
) -> None:
    header = group(add.s(1, 1), boom.s("h").set(max_attempts=1), add.s(2, 2))
    handle = chord(header, total.s()).submit(client)
    with pytest.raises(TaskFailed) as failed:
        handle.result(timeout=60)
    assert failed.value.task_status == "cancelled"
    view = handle.get(wait=30)
    assert view["status"] == "failed"
    statuses = [t["status"] for t in view["tasks"]]
    assert sorted(statuses) == ["cancelled", "dead", "succeeded", "succeeded"]
    callback = view["tasks"][-1]
    assert callback["error"]["type"] == "ParentFailed"
    assert "ended dead" in callback["error"]["message"]


def test_a_chord_whose_callback_runs_anyway_gets_the_failure(
    client: Client, running: Workers
) -> None:
    header = group(add.s(1, 1), boom.s("h").set(max_attempts=1))
    handle = chord(header, total.s().set(on_parent_failure="run")).submit(client)
    assert handle.result(timeout=60) == {"sum": 2, "failed": ["dead"]}


def test_error_handlers_run_only_on_failure(client: Client, running: Workers) -> None:
    bad = boom.s("x").set(max_attempts=1).on_failure(handled.s())
    handle = bad.submit(client)
    view = handle.get(wait=60)
    assert view["status"] == "failed"
    assert view["tasks"][1]["status"] == "succeeded"
    assert view["tasks"][1]["result"] == "dead: boom x"
    good = add.s(1, 2).on_failure(handled.s()).on_success(mul.s(10))
    handle = good.submit(client)
    view = handle.get(wait=60)
    assert [t["status"] for t in view["tasks"]] == ["succeeded", "cancelled", "succeeded"]
    assert view["tasks"][2]["result"] == 30
    assert view["status"] == "succeeded"  # a handler not needed is not a failure


def test_http_workflow_errors_name_what_is_wrong(shared_cluster: LocalCluster) -> None:  # noqa: F811
    def post(tasks: list[Any]) -> tuple[int, Any]:
        return http(shared_cluster, "POST", "/v1/workflows", {"tasks": tasks})

    status, body = post([{"key": "a", "name": "noop", "depends_on": ["b"]},
                         {"key": "b", "name": "noop", "depends_on": ["a"]},
                         {"key": "c", "name": "noop"}])
    assert status == 400 and "a, b" in body["error"]["message"] and "cycle" in \
        body["error"]["message"]
    status, body = post([{"key": "a", "name": "noop"},
                         {"key": "b", "name": "noop", "depends_on": ["a", "zz"]}])
    assert status == 400 and body["error"]["field"] == "tasks[1].depends_on"
    assert "zz" in body["error"]["message"]
    status, body = post([{"key": "a", "name": "noop"}, {"key": "a", "name": "noop"}])
    assert status == 400 and body["error"]["field"] == "tasks[1].key"
    status, body = post([{"key": "a", "name": "noop", "run_when": "often"}])
    assert status == 400 and body["error"]["field"] == "tasks[0].run_when"
    status, body = post([{"key": f"k{i}", "name": "noop"} for i in range(10_001)])
    assert status in (400, 413) and body["error"]["field"] in ("tasks", None)
    status, body = http(shared_cluster, "POST", "/v1/tasks",
                        {"name": "noop", "depends_on": ["no-such-task"]})
    assert status == 400 and body["error"]["field"] == "depends_on"
    status, body = http(shared_cluster, "POST", "/v1/tasks/batch", {"tasks": [
        {"name": "noop", "id": "batch-a"},
        {"name": "noop", "depends_on": ["batch-a", "nope"]}]})
    assert status == 400 and body["error"]["field"] == "tasks[1].depends_on"
    status, body = http(shared_cluster, "GET", "/v1/tasks/batch-a")
    assert status == 404  # all or none
    assert http(shared_cluster, "GET", "/v1/workflows/nope")[0] == 404
    assert http(shared_cluster, "DELETE", "/v1/workflows/nope")[0] == 404


def test_a_workflow_is_cancelled_and_created_once(shared_cluster: LocalCluster) -> None:  # noqa: F811
    body = {"id": "wf-cancel", "tasks": [
        {"key": "first", "name": "noop", "queue": "nobody-claims"},
        {"key": "second", "name": "noop", "depends_on": ["first"], "pass_results": True},
        {"key": "after", "name": "noop", "depends_on": ["second"], "run_when": "always"},
    ]}
    status, created = http(shared_cluster, "POST", "/v1/workflows", body)
    assert status == 201 and created["created"]
    workflow = created["workflow"]
    assert [t["status"] for t in workflow["tasks"]] == ["queued", "waiting", "waiting"]
    assert [t["key"] for t in workflow["tasks"]] == ["first", "second", "after"]
    status, again = http(shared_cluster, "POST", "/v1/workflows", body)
    assert status == 200 and not again["created"]
    assert again["workflow"]["tasks"] == workflow["tasks"]
    status, cancelled = http(shared_cluster, "DELETE", "/v1/workflows/wf-cancel")
    assert status == 200 and cancelled["cancelled"] == 3
    assert cancelled["workflow"]["status"] == "cancelled"
    assert {t["status"] for t in cancelled["workflow"]["tasks"]} == {"cancelled"}
    second = http(shared_cluster, "GET", f"/v1/tasks/{workflow['tasks'][1]['id']}")[1]["task"]
    assert second["status"] == "cancelled"
    ids = [t["id"] for t in workflow["tasks"]]
    assert (second["depends_on"], second["children"], second["workflow_id"]) == (
        [ids[0]], [ids[2]], "wf-cancel")
    nodes = ",".join(shared_cluster.http_urls)
    shown = cli("workflow", "show", "wf-cancel", "--nodes", nodes)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "workflow wf-cancel: cancelled"
    assert lines[1].startswith("  first  noop  cancelled")
    assert lines[3].startswith("      after  noop  cancelled [always]")
    status = cli("status", ids[2], "--nodes", nodes)
    assert f"  parents: {ids[1]} (runs on always)" in status.stdout
    assert "workflow: wf-cancel" in status.stdout
    missing = cli("workflow", "cancel", "nope", "--nodes", nodes)
    assert missing.returncode != 0 and "no workflow nope" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "raftq", *args], capture_output=True,
                          text=True, timeout=60)


def test_a_10000_task_fan_out_and_in(client: Client, running: Workers) -> None:
    """The largest workflow (10,000 tasks, one request, one Raft entry): 9,999 tasks
    fan out, and one callback gets their 9,999 results."""
    started = time.monotonic()
    handle = chord(group(noop.s() for _ in range(9_999)), noop.s()).submit(client)
    submitted = time.monotonic()
    assert handle.result(timeout=600) == 9_999
    view = handle.get()
    assert view["status"] == "succeeded" and len(view["tasks"]) == 10_000
    print(f"10,000-task workflow: submitted in {submitted - started:.2f}s, "
          f"done in {time.monotonic() - started:.1f}s")
