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
