"""What the CLI prints: readable task status, feedback, formats, help (issue 10 items 9-13)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from raftq.cli import dlq, show, stats, tasks
from raftq.cli.main import main

NOW = 1_800_000_000_000


def task(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "t1", "name": "add", "queue": "default", "priority": 192, "status": "queued",
        "args": [2, 3], "kwargs": {}, "attempts": 0, "max_attempts": 3, "timeout_ms": 300_000,
        "retry_backoff_ms": 1000, "created_ms": NOW - 120_000, "updated_ms": NOW,
        "ready_at_ms": None, "lease": None, "result": None, "errors": [], "finished_ms": None,
    }
    return base | fields


def error(attempt: int, message: str, trace: str = "") -> dict[str, Any]:
    return {"attempt": attempt, "at_ms": NOW - 1000,
            "error": {"type": "ValueError", "message": message, "traceback": trace}}


def test_times_are_local_iso_with_distance_and_priority_is_named() -> None:
    lines = tasks.status_lines(task(), NOW)
    created = dt.datetime.fromtimestamp((NOW - 120_000) / 1000).astimezone()
    assert f"  created: {created.isoformat(timespec='seconds')} (2 min ago)" in lines
    assert " priority: high" in lines
    assert "       id: t1" in lines  # not JSON-quoted
    assert "     args: [2, 3]" in lines


def test_a_scheduled_task_shows_when_it_is_due() -> None:
    lines = tasks.status_lines(task(status="scheduled", ready_at_ms=NOW + 3_000), NOW)
    assert any(line.startswith("      due: ") and line.endswith("(in 3 s)") for line in lines)


def test_errors_the_last_traceback_and_a_requeue_read_correctly() -> None:
    history = [error(1, "a"), error(2, "b"), error(3, "c"), error(1, "d"),
               error(2, "e", "Traceback (most recent call last):\n  boom\nValueError: e")]
    lines = tasks.status_lines(task(status="dead", attempts=2, errors=history), NOW)
    text = "\n".join(lines)
    assert text.count("attempt 1 at") == 2 and text.count("attempt 3 at") == 1
    assert text.index("attempt 3 at") < text.index("-- requeued from the dead letters --") \
        < text.index(": ValueError: d")
    assert text.endswith("last traceback:\n  Traceback (most recent call last):\n    boom\n"
                         "  ValueError: e")


def test_ago() -> None:
    assert show.ago(NOW, NOW) == "just now"
    assert show.ago(NOW + 3_000, NOW) == "in 3 s"
    assert show.ago(NOW - 7_200_000, NOW) == "2 h ago"
    assert show.priority(255) == "critical" and show.priority(100) == "100"


class Fake:
    def __init__(self, created: bool = True) -> None:
        self.created = created
        self.calls: list[tuple[str, Any]] = []

    def submit(self, name: str, args: Any, kwargs: Any, **options: Any) -> Any:
        self.calls.append(("submit", options))
        return type("H", (), {"id": "t1", "created": self.created,
                              "task": {"status": "succeeded"}})()

    def purge(self, id: str | None = None, queue: str | None = None) -> Any:
        return {"purged": 1 if id else 4}

    def queues(self) -> Any:
        return {"default": {"queued": 3, "scheduled": 0, "leased": 1, "succeeded": 9, "dead": 0,
                            "cancelled": 0, "ready_by_priority": {"255": 1, "128": 2}}}

    def get(self, task_id: str) -> Any:
        return task()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Fake:
    client = Fake()
    for module in (tasks, dlq, stats):
        monkeypatch.setattr(module, "make_client", lambda *a, **k: client)
    return client


def run(*argv: str) -> Any:
    return CliRunner().invoke(main, list(argv))


def test_resubmitting_an_existing_id_says_so(fake: Fake) -> None:
    fake.created = False
    result = run("submit", "add", "1", "--id", "t1")
    assert result.exit_code == 0
    assert result.output == ("t1\ntask t1 already existed (status succeeded); "
                             "nothing new was submitted\n")


def test_submit_options_reach_the_client(fake: Fake) -> None:
    result = run("submit", "sleep", "5", "--timeout", "10", "--max-attempts", "2",
                 "--result-ttl", "60", "--retry-backoff", "0.5", "--eta", "2030-01-02T03:04:05")
    assert result.exit_code == 0, result.output
    options = fake.calls[0][1]
    assert options["timeout"] == 10 and options["max_attempts"] == 2
    assert options["result_ttl"] == 60 and options["retry_backoff"] == 0.5
    assert options["eta"] == dt.datetime(2030, 1, 2, 3, 4, 5).timestamp()


def test_a_bad_eta_names_the_flag(fake: Fake) -> None:
    result = run("submit", "add", "--eta", "tomorrow")
    assert result.exit_code == 1 and result.output.startswith("error: --eta: ")


def test_purge_says_what_it_purged(fake: Fake) -> None:
    assert run("dlq", "purge", "t1").output == "t1: purged\n"
    assert run("dlq", "purge", "--all").output == "purged 4 dead letters\n"


def test_stats_draws_ready_tasks_by_priority(fake: Fake) -> None:
    out = run("stats").output
    assert "ready by priority:" in out
    assert "critical  1  " + "█" * 20 in out and "normal  2  " + "█" * 40 in out


@pytest.mark.parametrize("argv", [["stats"], ["status", "t1"]])
def test_yaml_output(fake: Fake, argv: list[str]) -> None:
    result = run(*argv, "-o", "yaml")
    assert result.exit_code == 0, result.output
    assert isinstance(yaml.safe_load(result.output), dict)


def test_workers_takes_o_json_and_yaml() -> None:
    for fmt in ("json", "yaml"):
        result = run("workers", "-o", fmt, "--nodes", "ftp://x")
        assert "Invalid value for '--output'" not in result.output
        assert "--nodes" in result.output


@pytest.mark.parametrize("group", [[], ["dlq"]])
def test_help_lists_every_command_without_cutting_it_off(group: list[str]) -> None:
    result = CliRunner().invoke(main, [*group, "--help"], terminal_width=80)
    commands = result.output.split("Commands:")[1].strip().splitlines()
    assert commands and all(len(line.split(None, 1)) == 2 for line in commands), result.output
    assert not any(line.rstrip().endswith("...") for line in commands), result.output


def test_a_leased_task_shows_its_worker_and_when_the_lease_expires() -> None:
    lines = tasks.status_lines(task(status="leased", attempts=1,
                                    lease={"worker_id": "w1", "expires_ms": NOW + 30_000}), NOW)
    assert any(line.startswith("    lease: worker w1, expires ") for line in lines)


def test_a_queued_task_no_worker_runs_says_so() -> None:
    lines = tasks.status_lines(task(note="no worker runs 'add'"), NOW)
    assert "     note: no worker runs 'add'" in lines
