"""Node config: bootstrap keys, metrics_public and TLS settings, each refused with its name."""

from __future__ import annotations

from pathlib import Path

import pytest

from raftq.errors import ConfigError
from raftq.server import config

BASE = ("node_id: n1\nraft_address: 127.0.0.1:7001\nhttp_address: 127.0.0.1:8001\n"
        "data_dir: data\nsecret: s3cret\n")
KEY = "rq_" + "k" * 40


def load(tmp_path: Path, extra: str) -> config.NodeConfig:
    path = tmp_path / "n1.yaml"
    path.write_text(BASE + extra)
    return config.load(path)


def test_bootstrap_keys_come_from_their_files_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(config.ADMIN_KEY_ENV, raising=False)
    (tmp_path / "admin.key").write_text(KEY + "\n")
    (tmp_path / "worker.key").write_text(KEY[::-1] + "\n")
    cfg = load(tmp_path, "admin_key_file: admin.key\nworker_key_file: worker.key\n")
    assert cfg.bootstrap_keys == [("admin", "admin", KEY), ("worker", "worker", KEY[::-1])]
    monkeypatch.setenv(config.ADMIN_KEY_ENV, "e" * 30)
    assert load(tmp_path, "admin_key_file: admin.key\n").bootstrap_keys == [
        ("admin", "admin", "e" * 30)]
    monkeypatch.delenv(config.ADMIN_KEY_ENV)
    assert load(tmp_path, "").bootstrap_keys == []


@pytest.mark.parametrize(("extra", "field"), [
    ("admin_key_file: missing.key\n", "admin_key_file"),
    ("admin_key_file: short.key\n", "admin_key_file"),
    ("metrics_public: yes please\n", "metrics_public"),
    ("tls_cert_file: short.key\n", "tls_key_file"),
    ("tls_key_file: short.key\n", "tls_cert_file"),
    ("tls_cert_file: short.key\ntls_key_file: short.key\n", "tls_cert_file"),
    ("tls_ca_file: nowhere.pem\n", "tls_ca_file"),
])
def test_bad_security_settings_are_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str, field: str,
) -> None:
    monkeypatch.delenv(config.ADMIN_KEY_ENV, raising=False)
    (tmp_path / "short.key").write_text("tooshort\n")
    with pytest.raises(ConfigError) as info:
        load(tmp_path, extra)
    assert info.value.field == field
