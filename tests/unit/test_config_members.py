"""Node config for membership: join, raft_dial, advertise_url, and the URL a node
is recorded with."""

from __future__ import annotations

from pathlib import Path

import pytest

from raftq.errors import ConfigError
from raftq.server import config

BASE = "node_id: n1\nraft_address: {raft}\nhttp_address: {http}\ndata_dir: data\nsecret: s\n"


def load(tmp_path: Path, extra: str = "", raft: str = "10.0.0.1:7101",
         http: str = "10.0.0.1:8101") -> config.NodeConfig:
    path = tmp_path / "n1.yaml"
    path.write_text(BASE.format(raft=raft, http=http) + extra)
    return config.load(path)


def test_the_url_a_node_is_recorded_with(tmp_path: Path) -> None:
    assert load(tmp_path).http_url == "http://10.0.0.1:8101"
    # Listening on every address: the raft address's host is where others reach it.
    assert load(tmp_path, raft="node1:7100", http="0.0.0.0:8100").http_url == \
        "http://node1:8100"
    assert load(tmp_path, "advertise_url: https://q.example:443/\n").http_url == \
        "https://q.example:443"


def test_join_and_raft_dial(tmp_path: Path) -> None:
    cfg = load(tmp_path, "join: http://10.0.0.2:8101\n"
                         "raft_dial: {'10.0.0.2:7101': '127.0.0.1:17321'}\n")
    assert cfg.join == "http://10.0.0.2:8101"
    assert cfg.raft_dial == {"10.0.0.2:7101": "127.0.0.1:17321"}


@pytest.mark.parametrize(("extra", "field"), [
    ("join: node2:8101\n", "join"),
    ("raft_dial: [a]\n", "raft_dial"),
    ("raft_dial: {'10.0.0.2:7101': 'nowhere'}\n", "raft_dial"),
    ("advertise_url: q.example\n", "advertise_url"),
])
def test_bad_membership_settings_are_refused_by_name(tmp_path: Path, extra: str,
                                                     field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, extra)
    assert caught.value.field == field
