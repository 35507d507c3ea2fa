"""The key check and the route table (the integration test calls every route for real)."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from raftq.errors import Forbidden, Unauthorized, Unavailable
from raftq.server.auth import OPEN, READ, ROUTES, WORK, Auth, hash_key, node_token, roles_of
from raftq.server.config import NodeConfig
from raftq.state import commands as c
from raftq.state.machine import State

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
TOKEN = "rq_" + "x" * 43


def config(**extra: Any) -> NodeConfig:
    return NodeConfig("n1", "127.0.0.1:1", "127.0.0.1:2", "/tmp/n1", "s3cret", **extra)


CURRENT = {"leader": "127.0.0.1:9", "applied_index": 7, "leader_commit_index": 7}


def auth_with_key(role: str, status: dict[str, Any] = CURRENT) -> Auth:
    state = State()
    state.apply(c.Command(c.CreateKey("k1", role, hash_key(TOKEN), "test"), "r1", 1))
    replica = SimpleNamespace(state=state, raft_status=lambda: status)
    return Auth(config(), replica)  # type: ignore[arg-type]


def request(authorization: str | None) -> Any:
    headers = {} if authorization is None else {"authorization": authorization}
    return SimpleNamespace(headers=headers, method="POST", route="/v1/claims")


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer  ", f"Basic {TOKEN}",
                                    "Bearer rq_unknown", f"Bearer {TOKEN}x"])
def test_a_missing_or_unknown_key_is_401(header: str | None) -> None:
    with pytest.raises(Unauthorized):
        auth_with_key("worker").check(request(header), WORK)


@pytest.mark.parametrize(("status", "why"), [
    ({"leader": None, "no_leader_reason": "no leader elected", "applied_index": 0,
      "leader_commit_index": 0}, "no leader right now"),  # restarting: no leader yet
    ({"leader": "127.0.0.1:9", "applied_index": 3, "leader_commit_index": 7},
     "catching up"),  # replaying its log
])
def test_a_node_behind_the_cluster_answers_an_unknown_key_503_not_401(
        status: dict[str, Any], why: str) -> None:
    # Its key table may not hold the key yet: a 401 would make a worker drop a
    # held outcome (its lease then lapses and the task runs twice).
    auth = auth_with_key("worker", status)
    with pytest.raises(Unavailable, match=why):
        auth.check(request("Bearer rq_unknown"), WORK)
    assert auth.check(request(f"Bearer {TOKEN}"), WORK) == "k1"  # a key it knows passes
    with pytest.raises(Unauthorized):
        auth.check(request(None), WORK)  # no key at all is 401 whatever the node knows


def test_once_caught_up_a_node_lagging_a_little_still_answers_401() -> None:
    status = dict(CURRENT)
    auth = auth_with_key("worker", status)
    with pytest.raises(Unauthorized):
        auth.check(request("Bearer rq_unknown"), WORK)
    status["leader_commit_index"] = 9  # ordinary replication lag after the catch-up
    with pytest.raises(Unauthorized):
        auth.check(request("Bearer rq_unknown"), WORK)


def test_a_node_missing_its_bootstrap_keys_is_not_current() -> None:
    state = State()
    replica = SimpleNamespace(state=state, raft_status=lambda: CURRENT)
    auth = Auth(config(bootstrap_keys=[("admin", "admin", TOKEN)]), replica)  # type: ignore[arg-type]
    with pytest.raises(Unavailable):
        auth.check(request(f"Bearer {TOKEN}"), WORK)
    state.apply(c.Command(c.CreateKey("admin", "admin", hash_key(TOKEN), "test"), "r1", 1))
    assert auth.check(request(f"Bearer {TOKEN}"), WORK) == "admin"


def test_a_known_key_passes_for_its_role_and_is_403_for_others() -> None:
    auth = auth_with_key("worker")
    assert auth.check(request(f"Bearer {TOKEN}"), WORK) == "k1"
    assert auth.check(request(f"bearer   {TOKEN} "), WORK) == "k1"
    with pytest.raises(Forbidden, match="key k1 has role worker; POST /v1/claims needs admin"):
        auth.check(request(f"Bearer {TOKEN}"), frozenset({"admin"}))


def test_a_revoked_key_is_401() -> None:
    auth = auth_with_key("worker")
    auth.replica.state.apply(c.Command(c.RevokeKey("k1", "test"), "r2", 2))
    with pytest.raises(Unauthorized):
        auth.check(request(f"Bearer {TOKEN}"), WORK)


def test_the_node_token_reads_and_nothing_else() -> None:
    auth = auth_with_key("admin")
    token = node_token("s3cret")
    assert auth.check(request(f"Bearer {token}"), READ) == "node"
    with pytest.raises(Forbidden):
        auth.check(request(f"Bearer {token}"), WORK)
    with pytest.raises(Unauthorized):
        auth.check(request(f"Bearer {node_token('another secret')}"), READ)


def test_metrics_are_open_only_when_the_config_says_so() -> None:
    (metrics,) = [r for r in ROUTES if r.path == "/metrics"]
    assert roles_of(metrics, config()) == READ
    assert roles_of(metrics, config(metrics_public=True)) == OPEN


def test_every_route_is_listed_once() -> None:
    keys = [(r.method, r.path) for r in ROUTES]
    assert len(keys) == len(set(keys))


def test_docs_security_lists_every_route_with_its_roles() -> None:
    rows = re.findall(r"^\| `(\w+)` \| `([^`]+)` \| ([^|]+) \|$", DOC.read_text(), re.M)
    documented = {(m, p): frozenset() if roles.strip() == "anyone, no key"
                  else frozenset(x.strip() for x in roles.split(",")) for m, p, roles in rows}
    assert documented == {(r.method, r.path): r.roles for r in ROUTES}
