"""HTTPS end to end: nodes with certificates from a throwaway CA; a worker, the
Python client and the CLI verify them; a client trusting another CA is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from clusterkit import wait_for
from tlskit import Authority
from workerkit import Workers

from raftq import Client, errors
from raftq.local.cluster import LocalCluster


@pytest.fixture
def tls_cluster(tmp_path: Path, make_cluster: Callable[..., LocalCluster]
                ) -> tuple[LocalCluster, Authority]:
    ca = Authority(tmp_path, "test-ca")
    cert, key = ca.issue("node")  # one certificate for 127.0.0.1 serves the three nodes
    cluster = make_cluster(ca_file=str(ca.ca_file), tls_cert_file=str(cert),
                           tls_key_file=str(key), tls_ca_file=str(ca.ca_file))
    return cluster, ca


def raftq_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "raftq", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def test_a_worker_the_client_and_the_cli_work_over_verified_https(
    tls_cluster: tuple[LocalCluster, Authority], tmp_path: Path,
) -> None:
    cluster, ca = tls_cluster
    urls = cluster.http_urls
    assert all(u.startswith("https://") for u in urls)
    client = Client(urls, ca_file=str(ca.ca_file))
    workers = Workers(tmp_path, urls)
    try:
        workers.start("--queues", "tls", "--ca-file", str(ca.ca_file))
        handle = client.submit("record", ["over-tls"], queue="tls")
        assert handle.result(timeout=30) == "over-tls"
    finally:
        workers.stop_all()
    # The nodes reach each other's status over HTTPS too (tls_ca_file).
    assert all(n["reachable"] for n in client.cluster()["nodes"])

    nodes = ",".join(urls)
    out = raftq_cli("submit", "noop", "--nodes", nodes, "--ca-file", str(ca.ca_file))
    assert out.returncode == 0, out.stderr
    out = raftq_cli("status", out.stdout.strip(), "--nodes", nodes, "--output", "json",
                    env={"RAFTQ_CA_FILE": str(ca.ca_file)})
    assert out.returncode == 0 and json.loads(out.stdout)["name"] == "noop", out.stderr
    out = raftq_cli("cluster-status", "--nodes", nodes, "--ca-file", str(ca.ca_file))
    assert out.returncode == 0, out.stderr


def test_a_client_that_trusts_another_ca_is_refused(
    tls_cluster: tuple[LocalCluster, Authority], tmp_path: Path,
) -> None:
    cluster, _ = tls_cluster
    other = Authority(tmp_path, "other-ca")
    with pytest.raises(errors.Unavailable, match="CERTIFICATE_VERIFY_FAILED"):
        Client(cluster.http_urls, ca_file=str(other.ca_file), retry_for=0.5).queues()
    # Without a CA file the system's CAs are used, which do not know the test CA either.
    with pytest.raises(errors.Unavailable, match="CERTIFICATE_VERIFY_FAILED"):
        Client(cluster.http_urls, retry_for=0.5).queues()
    out = raftq_cli("stats", "--nodes", cluster.http_urls[0], "--ca-file", str(other.ca_file))
    assert out.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in out.stderr
    # Plain HTTP to a TLS node gets nothing.
    with pytest.raises(errors.Unavailable):
        Client([cluster.http_urls[0].replace("https", "http")], retry_for=0.5).queues()


def test_the_container_health_check_speaks_https_and_says_why_a_node_is_not_ready(
    tls_cluster: tuple[LocalCluster, Authority],
) -> None:
    cluster, _ = tls_cluster
    config = str(cluster.nodes[0].config_path)
    out = raftq_cli("ready", "--config", config)
    assert out.returncode == 0 and out.stdout.startswith("node node1 ready: leader "), out
    cluster.kill(1)
    cluster.kill(2)  # node1 is left without a quorum: not ready, and it says why
    out = wait_for(lambda: (r := raftq_cli("ready", "--config", config)).returncode == 1 and r,
                   timeout=30, what="node1 not ready")
    assert out.stderr.startswith("error: node node1 not ready (503): no leader"), out.stderr
    cluster.kill(0)
    out = raftq_cli("ready", "--config", config, "--timeout", "1")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: node node1 did not answer at https://127.0.0.1:")
    out = raftq_cli("ready", "--config", config + ".missing")
    assert out.returncode == 1 and out.stderr.startswith("error: --config:"), out.stderr
