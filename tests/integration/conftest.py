"""Fixtures for integration tests: real node processes on loopback."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import clusterkit
import pytest

from raftq.local.cluster import LocalCluster


@pytest.fixture
def port_block() -> int:
    """A block of 10 raft and 10 http ports (base, base + 1000) no other test uses."""
    return clusterkit.port_block()


@pytest.fixture(scope="session", autouse=True)
def admin_key() -> Iterator[str]:
    """One admin key for every cluster of the session, in RAFTQ_API_KEY: the
    clients, workers and CLI commands the tests start use it by default."""
    key = "rq_" + secrets.token_urlsafe(32)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAFTQ_API_KEY", key)
        yield key


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., LocalCluster]]:
    made: list[LocalCluster] = []

    def factory(size: int = 3, prepare: Callable[[LocalCluster], None] | None = None,
                ca_file: str | None = None, **extra: Any) -> LocalCluster:
        """``extra``: node config settings; ``prepare`` runs before the nodes start;
        ``ca_file`` verifies the nodes' certificates when ``extra`` turns TLS on."""
        base = clusterkit.port_block()
        cluster = LocalCluster(tmp_path / f"cluster{len(made)}", size=size,
                               raft_port=base, http_port=base + 1000, extra_config=extra,
                               admin_key=os.environ["RAFTQ_API_KEY"], ca_file=ca_file)
        made.append(cluster)
        if prepare is not None:
            prepare(cluster)
        cluster.start()
        cluster.wait_ready(timeout=30)
        return cluster

    yield factory
    for cluster in made:
        for i, node in enumerate(cluster.nodes):
            if node.alive:
                cluster.kill(i)


@pytest.fixture
def cluster(make_cluster: Callable[..., LocalCluster]) -> LocalCluster:
    return make_cluster()
