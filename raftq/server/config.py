"""Node configuration: a YAML file, validated, with paths relative to it.

The bootstrap admin key comes from RAFTQ_ADMIN_KEY or ``admin_key_file``;
only its hash leaves this process (see ``raftq.server.auth``).

The cluster secret comes from, in order: the RAFTQ_CLUSTER_SECRET environment
variable, ``secret`` in the file, or ``secret_file``. A node without one
refuses to start: PySyncObj's peer protocol is pickle, so an open raft port is
remote code execution.

``durability`` is ``fsync`` (the default: a log entry is on disk before the
node acknowledges it, so acknowledged tasks survive power loss) or ``none``
(no fsync: survives the crash of the process, not of the machine).
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from raftq.errors import ConfigError
from raftq.raft.durable import DURABILITIES, Durability
from raftq.state.model import DEFAULT_RESULT_TTL_MS

SECRET_ENV = "RAFTQ_CLUSTER_SECRET"
ADMIN_KEY_ENV = "RAFTQ_ADMIN_KEY"
MIN_KEY_CHARS = 24


@dataclass(slots=True)
class Peer:
    id: str
    raft_address: str
    http_address: str


@dataclass(slots=True)
class NodeConfig:
    node_id: str
    raft_address: str
    http_address: str
    data_dir: str
    secret: str
    peers: list[Peer] = field(default_factory=list)
    tick_ms: int = 100
    proposal_timeout_ms: int = 5_000
    max_inflight: int = 10_000
    max_payload_bytes: int = 1 << 20
    result_ttl_ms: int = DEFAULT_RESULT_TTL_MS
    log_level: str = "INFO"
    log_compaction_min_entries: int = 20_000
    log_compaction_min_time_ms: int = 300_000
    log_compaction_min_bytes: int = 64 << 20
    durability: Durability = "fsync"
    http_header_timeout_ms: int = 10_000
    http_body_timeout_ms: int = 30_000
    http_idle_timeout_ms: int = 300_000
    http_max_connections: int = 4096
    raft_max_frame_bytes: int = 16 << 20
    raft_handshake_timeout_ms: int = 3_000
    raft_idle_timeout_ms: int = 60_000
    raft_max_unverified: int = 128
    # (name, role, token) of the keys this node installs if no key of that name
    # ever existed: the admin key (admin_key_file or RAFTQ_ADMIN_KEY) and a
    # worker key (worker_key_file). Only their hashes leave this process.
    bootstrap_keys: list[tuple[str, str, str]] = field(default_factory=list)
    metrics_public: bool = False
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_ca_file: str | None = None  # to verify the peers' certificates (cluster status)
    # A member's HTTP URL: a new node with an empty data directory asks it for the
    # cluster's membership (raftq.server.join) instead of using ``peers``.
    join: str | None = None
    # member raft address -> the address this node dials it at (a proxy, a NAT);
    # the replicated membership holds each node's own raft address.
    raft_dial: dict[str, str] = field(default_factory=dict)
    event_history: int = 200_000  # task changes each node holds for GET /v1/events
    # The URL of this node's HTTP API that the membership records (clients and
    # the other nodes are told it); default: from http_address, with the raft
    # address's host when http_address listens on every address.
    advertise_url: str | None = None
    # How long a silent worker stays listed (a worker is lost after three heartbeats).
    worker_forget_ms: int = 60_000

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert_file else "http"

    @property
    def http_host_port(self) -> tuple[str, int]:
        return _split_address(self.http_address, "http_address")

    @property
    def http_url(self) -> str:
        if self.advertise_url:
            return self.advertise_url
        host, port = self.http_host_port
        if host in ("0.0.0.0", "::", "[::]"):
            host = self.raft_address.rpartition(":")[0]
        return f"{self.scheme}://{host}:{port}"

    def all_nodes(self) -> list[Peer]:
        me = Peer(self.node_id, self.raft_address, self.http_address)
        return sorted([me, *self.peers], key=lambda p: p.id)


_KNOWN = {
    "node_id", "raft_address", "http_address", "data_dir", "secret", "secret_file", "peers",
    "tick_ms", "proposal_timeout_ms", "max_inflight", "max_payload_bytes", "result_ttl_ms",
    "log_level", "log_compaction_min_entries", "log_compaction_min_time_ms",
    "log_compaction_min_bytes", "durability",
    "http_header_timeout_ms", "http_body_timeout_ms", "http_idle_timeout_ms",
    "http_max_connections", "raft_max_frame_bytes", "raft_handshake_timeout_ms",
    "raft_idle_timeout_ms", "raft_max_unverified",
    "admin_key_file", "worker_key_file", "metrics_public", "tls_cert_file", "tls_key_file",
    "tls_ca_file", "join", "raft_dial", "event_history", "advertise_url",
    "worker_forget_ms",
}


def _split_address(value: str, key: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"`{key}` must look like host:port, got {value!r}", field=key)
    return host, int(port)


def _str(raw: dict[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: `{key}` is required and must be a non-empty string", field=key)
    return value


def _int(raw: dict[str, Any], key: str, default: int, where: str) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{where}: `{key}` must be a positive integer", field=key)
    return value


def load(path: str | os.PathLike[str]) -> NodeConfig:
    p = Path(path)
    where = str(p)
    try:
        raw = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {where} does not exist") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {where} could not be read: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of settings")
    unknown = sorted(set(raw) - _KNOWN)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}", field=unknown[0])
    base = p.parent

    node_id = _str(raw, "node_id", where)
    raft_address = _str(raw, "raft_address", where)
    http_address = _str(raw, "http_address", where)
    _split_address(raft_address, "raft_address")
    _split_address(http_address, "http_address")
    data_dir = str((base / _str(raw, "data_dir", where)).resolve())

    peers_raw = raw.get("peers", [])
    if not isinstance(peers_raw, list):
        raise ConfigError(f"{where}: `peers` must be a list", field="peers")
    peers: list[Peer] = []
    for i, item in enumerate(peers_raw):
        ctx = f"{where}: peers[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{ctx} must be a mapping with id, raft_address, http_address")
        peer = Peer(
            _str(item, "id", ctx), _str(item, "raft_address", ctx), _str(item, "http_address", ctx)
        )
        _split_address(peer.raft_address, f"peers[{i}].raft_address")
        peers.append(peer)

    secret = os.environ.get(SECRET_ENV) or raw.get("secret") or ""
    if not secret and raw.get("secret_file"):
        secret_path = base / str(raw["secret_file"])
        try:
            secret = secret_path.read_text().strip()
        except OSError:
            raise ConfigError(
                f"{where}: secret_file {secret_path} cannot be read; create it with "
                f"`raftq gen-secret > {secret_path}` (the same file on every node)",
                field="secret_file",
            ) from None
    if not isinstance(secret, str) or not secret:
        raise ConfigError(
            f"{where}: no cluster secret. Set `secret` or `secret_file` in the config, or "
            f"{SECRET_ENV} in the environment; every node needs the same one",
            field="secret",
        )

    durability = raw.get("durability", "fsync")
    if durability not in DURABILITIES:
        raise ConfigError(f"{where}: `durability` must be one of {', '.join(DURABILITIES)}, "
                          f"not {durability!r}", field="durability")
    admin_key = os.environ.get(ADMIN_KEY_ENV) or _key_file(raw, base, "admin_key_file", where)
    worker_key = _key_file(raw, base, "worker_key_file", where)
    bootstrap: list[tuple[str, str, str]] = []
    for token, key, source in ((admin_key, "admin_key_file", f"admin_key_file/{ADMIN_KEY_ENV}"),
                               (worker_key, "worker_key_file", "worker_key_file")):
        if token and len(token) < MIN_KEY_CHARS:
            raise ConfigError(f"{where}: the key of {source} is shorter than {MIN_KEY_CHARS} "
                              "characters; make one with `raftq gen-secret`", field=key)
    if admin_key:
        bootstrap.append(("admin", "admin", admin_key))
    if worker_key:
        bootstrap.append(("worker", "worker", worker_key))
    metrics_public = raw.get("metrics_public", False)
    if not isinstance(metrics_public, bool):
        raise ConfigError(f"{where}: `metrics_public` must be true or false",
                          field="metrics_public")
    tls = {k: _path(raw, base, k, where) for k in ("tls_cert_file", "tls_key_file", "tls_ca_file")}
    if bool(tls["tls_cert_file"]) != bool(tls["tls_key_file"]):
        raise ConfigError(f"{where}: `tls_cert_file` and `tls_key_file` go together",
                          field="tls_key_file" if tls["tls_cert_file"] else "tls_cert_file")
    if tls["tls_cert_file"]:
        try:  # a certificate that does not load is a config error, not a crash at start
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                tls["tls_cert_file"], tls["tls_key_file"])
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"{where}: tls_cert_file/tls_key_file do not load: {exc}",
                              field="tls_cert_file") from None

    join = raw.get("join")
    if join is not None and (not isinstance(join, str)
                             or not join.startswith(("http://", "https://"))):
        raise ConfigError(f"{where}: `join` must be a member's URL, like http://host:port",
                          field="join")
    raft_dial = raw.get("raft_dial", {})
    if not isinstance(raft_dial, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in raft_dial.items()):
        raise ConfigError(f"{where}: `raft_dial` must map raft addresses to addresses",
                          field="raft_dial")
    for address in (*raft_dial, *raft_dial.values()):
        _split_address(address, "raft_dial")
    advertise_url = raw.get("advertise_url")
    if advertise_url is not None and (not isinstance(advertise_url, str)
                                      or not advertise_url.startswith(("http://", "https://"))):
        raise ConfigError(f"{where}: `advertise_url` must be a URL, like http://host:port",
                          field="advertise_url")
    return NodeConfig(
        advertise_url=advertise_url.rstrip("/") if advertise_url else None,
        join=join,
        raft_dial=raft_dial,
        node_id=node_id,
        raft_address=raft_address,
        http_address=http_address,
        data_dir=data_dir,
        secret=secret,
        peers=peers,
        tick_ms=_int(raw, "tick_ms", 100, where),
        proposal_timeout_ms=_int(raw, "proposal_timeout_ms", 5_000, where),
        max_inflight=_int(raw, "max_inflight", 10_000, where),
        max_payload_bytes=_int(raw, "max_payload_bytes", 1 << 20, where),
        result_ttl_ms=_int(raw, "result_ttl_ms", DEFAULT_RESULT_TTL_MS, where),
        log_level=str(raw.get("log_level", "INFO")),
        log_compaction_min_entries=_int(raw, "log_compaction_min_entries", 20_000, where),
        log_compaction_min_time_ms=_int(raw, "log_compaction_min_time_ms", 300_000, where),
        log_compaction_min_bytes=_int(raw, "log_compaction_min_bytes", 64 << 20, where),
        durability=durability,
        http_header_timeout_ms=_int(raw, "http_header_timeout_ms", 10_000, where),
        http_body_timeout_ms=_int(raw, "http_body_timeout_ms", 30_000, where),
        http_idle_timeout_ms=_int(raw, "http_idle_timeout_ms", 300_000, where),
        http_max_connections=_int(raw, "http_max_connections", 4096, where),
        raft_max_frame_bytes=_int(raw, "raft_max_frame_bytes", 16 << 20, where),
        raft_handshake_timeout_ms=_int(raw, "raft_handshake_timeout_ms", 3_000, where),
        raft_idle_timeout_ms=_int(raw, "raft_idle_timeout_ms", 60_000, where),
        raft_max_unverified=_int(raw, "raft_max_unverified", 128, where),
        event_history=_int(raw, "event_history", 200_000, where),
        bootstrap_keys=bootstrap,
        metrics_public=metrics_public,
        worker_forget_ms=_int(raw, "worker_forget_ms", 60_000, where),
        **tls,
    )


def _path(raw: dict[str, Any], base: Path, key: str, where: str) -> str | None:
    """An optional readable file named by ``key``, relative to the config file."""
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: `{key}` must be a file path", field=key)
    path = base / value
    if not os.access(path, os.R_OK):
        raise ConfigError(f"{where}: {key} {path} does not exist or cannot be read", field=key)
    return str(path.resolve())


def _key_file(raw: dict[str, Any], base: Path, key: str, where: str) -> str:
    """The API key in the file named by ``key`` (its first line), or ""."""
    path = _path(raw, base, key, where)
    if path is None:
        return ""
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{where}: {key} {path} cannot be read: {exc}", field=key) from None
