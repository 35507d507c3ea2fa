"""Unit tests of raftq.client.calls: what the clients send, and how answers become results."""

from __future__ import annotations

import datetime as dt

import pytest

from raftq import errors
from raftq.client import access, calls, failover


def test_task_spec_converts_seconds_and_always_has_an_id() -> None:
    spec = calls.task_spec({"name": "add", "args": (1, 2), "delay": 1.5, "timeout": 2,
                            "retry_backoff": 0.25, "max_attempts": None, "queue": "q"})
    assert spec["delay_ms"] == 1500 and spec["timeout_ms"] == 2000
    assert spec["retry_backoff_ms"] == 250 and spec["args"] == [1, 2]
    assert "max_attempts" not in spec and len(spec["id"]) == 32
    assert calls.task_spec({"name": "a", "id": "mine"})["id"] == "mine"
    # The API's own fields pass through untouched.
    assert calls.task_spec({"name": "a", "delay_ms": 7})["delay_ms"] == 7


def test_task_spec_eta_and_bad_values() -> None:
    when = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert calls.task_spec({"name": "a", "eta": when})["eta_ms"] == 1893456000000
    assert calls.task_spec({"name": "a", "eta": 1.5})["eta_ms"] == 1500
    with pytest.raises(errors.InvalidRequest) as info:
        calls.task_spec({"name": "a", "delay": "soon"})
    assert info.value.field == "delay"
    with pytest.raises(errors.InvalidRequest):
        calls.task_spec({"args": []})


def test_resolve_nodes() -> None:
    assert calls.resolve_nodes(None, {}) == list(calls.DEFAULT_NODES)
    env = {"RAFTQ_NODES": "http://a:1/, http://b:2"}
    assert calls.resolve_nodes(None, env) == ["http://a:1", "http://b:2"]
    assert calls.resolve_nodes("http://c:3", env) == ["http://c:3"]
    assert calls.resolve_nodes(["c:3"], {}) == ["http://c:3"]  # host:port means http
    with pytest.raises(errors.ConfigError, match="must be host:port, http://host:port"):
        calls.resolve_nodes(["ftp://c:3"], {})


def test_outcome() -> None:
    assert calls.outcome({"status": "succeeded", "result": [1]}) == [1]
    with pytest.raises(errors.TaskFailed, match="cancelled") as info:
        calls.outcome({"id": "x", "name": "n", "status": "cancelled", "errors": []})
    assert info.value.task_status == "cancelled" and info.value.remote_traceback == ""


def test_calls_paths_and_keys() -> None:
    assert calls.get_task("a/b", 500).target == "/v1/tasks/a%2Fb?wait_ms=500"
    assert calls.list_tasks(None, "q", 5).target == "/v1/tasks?queue=q&limit=5"
    assert calls.purge(None, None).target == "/v1/dead-letters"
    assert calls.purge("x", None).method == "DELETE"
    assert calls.get_task("a").idempotency_key is None
    keyed = [calls.cancel("a"), calls.requeue("a"), calls.complete("a", 1, None),
             calls.fail("a", 1, "e", True), calls.extend("w", [("a", 1)], 10),
             calls.release("w", []), calls.complete_many("w", [])]
    keys = [c.idempotency_key for c in keyed]
    assert all(keys) and len(set(keys)) == len(keys)


def test_failover_rotates_then_backs_off() -> None:
    policy = failover.Failover(["a", "b", "c"], retry_for=10)
    attempts = policy.attempts()
    first = attempts.node
    seen = [first]
    err = errors.Unavailable("x")
    assert attempts.retry_delay(err) == 0.0
    seen.append(attempts.node)
    assert attempts.retry_delay(err) == 0.0
    seen.append(attempts.node)
    assert sorted(seen) == ["a", "b", "c"]
    assert attempts.retry_delay(err, retry_after=2.0) == 2.0  # a full round failed
    # Out of time: the error itself is raised.
    attempts.deadline = 0
    with pytest.raises(errors.Unavailable):
        attempts.retry_delay(err)


def test_the_api_key_comes_from_the_argument_else_the_environment() -> None:
    env = {access.API_KEY_ENV: " rq_env "}
    assert access.resolve_api_key("rq_given", env) == "rq_given"
    assert access.resolve_api_key(None, env) == "rq_env"
    assert access.resolve_api_key(None, {}) is None
    assert access.resolve_api_key("", env) is None  # an explicit empty key sends none
    with pytest.raises(errors.ConfigError, match="API key"):
        access.resolve_api_key("two words", {})
    assert calls.queues().headers("rq_k")["Authorization"] == "Bearer rq_k"
    assert "Authorization" not in calls.queues().headers(None)


def test_the_ca_file_comes_from_the_argument_else_the_environment() -> None:
    env = {access.CA_FILE_ENV: "/etc/ca.pem"}
    assert access.resolve_ca_file("/mine.pem", env) == "/mine.pem"
    assert access.resolve_ca_file(None, env) == "/etc/ca.pem"
    assert access.resolve_ca_file(None, {}) is None
