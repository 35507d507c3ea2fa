"""Unit tests of ``raftq worker`` / ``raftq workers`` argument handling (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from raftq.worker.cli import worker_command, workers_command


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(worker_command, list(args))
    return result.exit_code, result.output


@pytest.fixture
def apps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "broken_app.py").write_text("import os\nraise RuntimeError('no config')\n")
    (tmp_path / "empty_app.py").write_text("X = 1\n")
    (tmp_path / "needs_dep_app.py").write_text("import not_installed_dep\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_a_missing_module_is_named(apps: Path) -> None:
    code, out = run("--app", "no_such_module_xyz")
    assert code == 2 and "--app" in out and "no_such_module_xyz" in out
    assert "Traceback" not in out


def test_a_module_missing_a_dependency_names_both(apps: Path) -> None:
    code, out = run("--app", "needs_dep_app")
    assert code == 2 and "needs_dep_app" in out and "not_installed_dep" in out


def test_a_module_that_raises_says_what_and_where(apps: Path) -> None:
    code, out = run("--app", "broken_app")
    assert code == 2 and "RuntimeError: no config" in out and "broken_app.py:2" in out
    assert "Traceback" not in out


def test_a_module_without_tasks_is_refused(apps: Path) -> None:
    code, out = run("--app", "empty_app")
    assert code == 2 and "registered no tasks" in out


@pytest.mark.parametrize(("args", "flag"), [
    (["--pool", "fork"], "--pool"),
    (["--concurrency", "0"], "--concurrency"),
    (["--lease-ms", "10"], "--lease-ms"),
    (["--nodes", "ftp://localhost:8101"], "--nodes"),
    (["--queues", ","], "--queues"),
])
def test_bad_flags_name_the_flag(args: list[str], flag: str) -> None:
    code, out = run("--app", "raftq.local.examples", *args)
    assert code == 2 and flag in out and "Traceback" not in out, out


def test_workers_reports_an_unreachable_cluster_without_a_traceback() -> None:
    result = CliRunner().invoke(workers_command, ["--nodes", "http://127.0.0.1:9"])
    assert result.exit_code == 1 and "did not answer" in result.output
    assert "Traceback" not in result.output


def test_workers_shows_what_the_cluster_says_of_each_worker(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from raftq.worker import cli

    rows = [{"worker_id": "fresh", "host": "h", "pid": 1, "queues": ["default"], "running": 2,
             "running_ids": ["t1", "t2", "t3", "t4"], "silent_ms": 400, "state": "active",
             "announced": True, "tasks": ["add", "slow"], "concurrency": 8, "mode": "paused",
             "cpu_pct": 12.5, "rss_kb": 51_200},
            {"worker_id": "gone", "host": "h", "pid": 2, "queues": ["default"], "running": 0,
             "running_ids": [], "silent_ms": 45_000, "state": "lost", "announced": False}]

    class FakeClient:
        def __init__(self, *args: object, **kwargs: object) -> None: ...
        def __enter__(self) -> FakeClient: return self
        def __exit__(self, *exc: object) -> None: ...
        def workers(self) -> list[dict[str, object]]: return rows

    monkeypatch.setattr(cli, "Client", FakeClient)
    out = CliRunner().invoke(workers_command, []).output.splitlines()
    assert out[0].split() == ["WORKER", "PROCESS", "QUEUES", "STATE", "TASKS", "CONC", "RUNNING",
                              "CPU", "MEM", "LAST", "BEAT"]
    assert out[1].split() == ["fresh", "h:1", "default", "active/paused", "add,slow", "8",
                              "t1,t2,t3,+1", "12.5%", "50", "MiB", "0.4s", "ago"]
    assert out[2].split() == ["gone", "h:2", "default", "lost", "(any)", "-", "45.0s", "ago"]
