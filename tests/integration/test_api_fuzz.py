"""Whatever a client sends, a node answers with JSON and never a 5xx (but 503)."""

from __future__ import annotations

import json
from typing import Any

from clusterkit import http
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raftq.local.cluster import LocalCluster

ENDPOINTS = [
    ("POST", "/v1/tasks"),
    ("POST", "/v1/tasks/batch"),
    ("POST", "/v1/claims"),
    ("POST", "/v1/leases/extend"),
    ("POST", "/v1/leases/release"),
    ("POST", "/v1/tasks/some-id/complete"),
    ("POST", "/v1/tasks/some-id/fail"),
    ("POST", "/v1/completions"),
]
FIELDS = ["name", "args", "kwargs", "queue", "priority", "id", "delay_ms", "eta_ms",
          "max_attempts", "timeout_ms", "tasks", "worker_id", "queues", "max", "lease_ms",
          "wait_ms", "leases", "lease_token", "result", "error", "retry", "items"]

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False) | st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), inner,
                                        max_size=4), max_leaves=12)
bodies = st.dictionaries(st.sampled_from(FIELDS), values, max_size=6) | values


def check(status: int, answer: Any) -> None:
    assert status < 500 or status == 503, answer
    assert isinstance(answer, dict)
    if status >= 400:
        assert answer["error"]["code"] and answer["error"]["message"]


def test_random_bodies_never_fail_the_server(make_cluster: Any) -> None:
    cluster: LocalCluster = make_cluster()
    url = cluster.http_urls[0]

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(endpoint=st.sampled_from(ENDPOINTS), body=bodies)
    def post(endpoint: tuple[str, str], body: Any) -> None:
        if isinstance(body, dict) and "wait_ms" in body:
            body["wait_ms"] = 0  # keep long-polls short
        method, path = endpoint
        check(*http(url + path, method, raw=json.dumps(body).encode(), timeout=10))

    post()

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(raw=st.binary(max_size=64))
    def garbage(raw: bytes) -> None:
        check(*http(url + "/v1/tasks", "POST", raw=raw))

    garbage()
    deep = b"[" * 100_000 + b"]" * 100_000
    check(*http(url + "/v1/tasks", "POST", raw=deep))
