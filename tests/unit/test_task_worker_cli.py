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


def test_workers_marks_a_worker_unseen_for_30_s_as_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from raftq.worker import cli

    now_ms = int(time.time() * 1000)
    rows = [{"worker_id": "fresh", "host": "h", "pid": 1, "queues": ["default"], "running": 0,
             "last_seen_ms": now_ms - 2_000},
            {"worker_id": "gone", "host": "h", "pid": 2, "queues": ["default"], "running": 1,
             "last_seen_ms": now_ms - 45_000}]

    class FakeClient:
        def __init__(self, *args: object, **kwargs: object) -> None: ...
        def __enter__(self) -> FakeClient: return self
        def __exit__(self, *exc: object) -> None: ...
        def workers(self) -> list[dict[str, object]]: return rows

    monkeypatch.setattr(cli, "Client", FakeClient)
    out = CliRunner().invoke(workers_command, []).output.splitlines()
    assert out[0].split() == ["WORKER", "HOST", "PID", "QUEUES", "RUNNING", "STATE", "LAST",
                              "SEEN"]
    assert out[1].split()[:6] == ["fresh", "h", "1", "default", "0", "active"]
    assert out[2].split()[:6] == ["gone", "h", "2", "default", "1", "lost"]
