"""The CLI's handling of what people type: arguments, node addresses, one-line errors."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from raftq.cli import tasks
from raftq.cli.main import main
from raftq.client.calls import resolve_nodes
from raftq.errors import ConfigError


class FakeClient:
    def __init__(self) -> None:
        self.submitted: list[tuple[str, list[Any], dict[str, Any], dict[str, Any]]] = []

    def submit(self, name: str, args: list[Any], kwargs: dict[str, Any], **options: Any) -> Any:
        self.submitted.append((name, args, kwargs, options))
        return type("Handle", (), {"id": "t1", "created": True, "task": {}})()

    def result(self, task_id: str, timeout: float) -> Any:
        return "done"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    fake = FakeClient()
    monkeypatch.setattr(tasks, "make_client", lambda *a, **k: fake)
    return fake


def submit(*argv: str) -> Any:
    return CliRunner().invoke(main, ["submit", *argv])


# -- item 8: negative numbers in --args ---------------------------------------

@pytest.mark.parametrize("argv, sent", [
    (["add", "--args", "2", "-1"], [2, -1]),
    (["add", "--args", "-1", "2", "--wait"], [-1, 2]),
    (["add", "-1.5", "-2e3", "x"], [-1.5, -2000.0, "x"]),
    (["add", "--args", "--", "-1", "2"], [-1, 2]),
    (["add", "--args-json", "[-1, 2, \"--wait\"]"], [-1, 2, "--wait"]),
])
def test_negative_numbers_are_arguments(client: FakeClient, argv: list[str],
                                        sent: list[Any]) -> None:
    result = submit(*argv)
    assert result.exit_code == 0, result.output
    assert client.submitted[0][1] == sent


def test_an_option_after_dashes_is_refused_not_sent(client: FakeClient) -> None:
    result = submit("add", "--args", "--", "-1", "2", "--wait")
    assert result.exit_code == 2
    assert "--args: '--wait' comes after `--`" in result.output
    assert client.submitted == []


def test_an_option_value_that_looks_negative_is_still_the_options(client: FakeClient) -> None:
    result = submit("add", "1", "--delay", "-1")
    assert result.exit_code == 2 and "--delay" in result.output
    assert client.submitted == []


def test_a_mistyped_option_is_still_an_error(client: FakeClient) -> None:
    result = submit("add", "1", "--priorty", "high")
    assert result.exit_code == 2 and "No such option '--priorty'" in result.output


@pytest.mark.parametrize("argv, message", [
    (["add", "--args-json", "[1"], "error: --args-json is not valid JSON"),
    (["add", "--args-json", "{}"], "error: --args-json must be a JSON list"),
    (["add", "1", "--args-json", "[1]"], "error: --args-json: give the arguments either"),
])
def test_args_json_errors_name_the_flag(client: FakeClient, argv: list[str],
                                        message: str) -> None:
    result = submit(*argv)
    assert result.exit_code == 1
    assert result.output.startswith(message) and result.output.count("\n") == 1


# -- item 6: node addresses ---------------------------------------------------------

def test_host_port_means_http() -> None:
    assert resolve_nodes("localhost:8101,https://b:8102/", {}) == [
        "http://localhost:8101", "https://b:8102"]


@pytest.mark.parametrize("bad", ["ftp://a:1", "localhost:abc", "http://:80"])
def test_bad_node_addresses_raise_config_error(bad: str) -> None:
    with pytest.raises(ConfigError):
        resolve_nodes(bad, {})


@pytest.mark.parametrize("argv, flag", [
    (["list", "--nodes", "ftp://x"], "--nodes"),
    (["stats", "--nodes", "localhost:abc"], "--nodes"),
    (["submit", "add", "--nodes", "a:b:c"], "--nodes"),
    (["cluster-status", "--node", "ftp://x"], "--node"),
    (["dlq", "list", "--nodes", "ftp://x"], "--nodes"),
])
def test_a_bad_node_address_is_one_line_naming_the_flag(argv: list[str], flag: str) -> None:
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 1
    assert result.output.startswith(f"error: {flag}: ") and result.output.count("\n") == 1, \
        result.output
    assert "Traceback" not in result.output


# -- item 5: an unreachable cluster -------------------------------------------------

def test_cluster_status_gives_up_after_timeout_naming_what_it_tried() -> None:
    import time

    started = time.monotonic()
    result = CliRunner().invoke(main, ["cluster-status", "--node", "127.0.0.1:9",
                                       "--timeout", "1"])
    assert time.monotonic() - started < 8  # the old default kept trying for 30 s
    assert result.exit_code == 2
    assert result.output.startswith("error: no node answered within 1 s (tried "
                                    "http://127.0.0.1:9; --timeout to wait longer)")
