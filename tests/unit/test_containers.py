"""The container files, checked without Docker: compose publishes the API on
loopback only, never the raft port; secrets come from files; the image runs
as a non-root user with a health check; nothing private enters the build."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from raftq.server.config import load

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
NODES = ["node1", "node2", "node3"]


def service(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = COMPOSE["services"][name]
    return spec


@pytest.mark.parametrize("name", NODES)
def test_a_node_publishes_http_on_loopback_by_default_and_never_the_raft_port(name: str) -> None:
    ports = service(name)["ports"]
    assert ports == [f"${{RAFTQ_PUBLISH_ADDRESS:-127.0.0.1}}:810{name[-1]}:8100"]
    assert not any("7100" in p for p in ports)


@pytest.mark.parametrize("name", NODES)
def test_a_node_reads_its_secret_from_a_docker_secret_file(name: str, tmp_path: Path) -> None:
    spec = service(name)
    assert "environment" not in spec  # no secret in the environment
    mounted = {v.split(":")[1]: ROOT / v.split(":")[0] for v in spec["volumes"] if ":" in v}
    text = mounted["/etc/raftq/node.yaml"].read_text()
    files = set(re.findall(r"/run/secrets/(\w+)", text))
    assert "cluster_secret" in files
    assert files <= set(spec["secrets"]) <= set(COMPOSE["secrets"])
    for secret in COMPOSE["secrets"].values():
        assert secret["file"].startswith("./secrets/")
    # The file loads as a node config once the secrets are where compose puts them.
    for name_ in files:
        (tmp_path / name_).write_text(f"{name_}-0123456789abcdefghijklmnopqrstuvwxyz\n")
    config_path = tmp_path / "node.yaml"
    config_path.write_text(text.replace("/run/secrets/", f"{tmp_path}/"))
    config = load(config_path)
    assert config.secret == "cluster_secret-0123456789abcdefghijklmnopqrstuvwxyz"
    assert config.data_dir == "/data" and config.http_address == "0.0.0.0:8100"


def test_the_worker_runs_the_example_tasks_with_the_worker_key() -> None:
    worker = service("worker")
    assert worker["secrets"] == ["worker_key"]
    command = " ".join(worker["entrypoint"] + worker["command"])
    assert "RAFTQ_API_KEY=$$(cat /run/secrets/worker_key)" in command
    assert "raftq worker --app raftq.local.examples" in command
    assert worker["environment"]["RAFTQ_NODES"].count("http://node") == 3
    assert worker["healthcheck"] == {"disable": True}
    assert "ports" not in worker


def test_the_image_runs_as_a_non_root_user_with_a_readiness_check() -> None:
    lines = [ln.strip() for ln in (ROOT / "Dockerfile").read_text().splitlines()]
    user = [ln for ln in lines if ln.startswith("USER ")]
    assert user and user[-1].split()[1].split(":")[0] not in ("root", "0")
    at = next(i for i, ln in enumerate(lines) if ln.startswith("HEALTHCHECK"))
    check = lines[at + 1]  # the command, on the continuation line
    assert check == 'CMD ["raftq", "ready", "--config", "/etc/raftq/node.yaml"]'
    cmd = next(ln for ln in lines if ln.startswith("CMD ") and "node" in ln)
    assert "/etc/raftq/node.yaml" in cmd  # the config the node runs with is the one checked


def test_the_build_context_leaves_out_secrets_data_and_environments() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "nodes", "secrets", "*.secret", "*.key"} <= ignored
