"""``raftq up``: the local 3-node cluster from ``config/`` plus a worker, in one command."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from raftq.errors import ConfigError
from raftq.server import config

EXAMPLES_APP = "raftq.local.examples"


def _ensure_secret(cfg_path: Path) -> None:
    import yaml

    raw = yaml.safe_load(cfg_path.read_text()) or {}
    secret_file = raw.get("secret_file")
    if secret_file and not raw.get("secret"):
        path = cfg_path.parent / secret_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(32) + "\n")
            path.chmod(0o600)
            print(f"generated a cluster secret in {path}")


def _wait_ready(urls: list[str], procs: list[subprocess.Popen[bytes]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            return False
        try:
            if all(urllib.request.urlopen(u + "/readyz", timeout=0.5).status == 200
                   for u in urls):
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_up(config_dir: Path, with_worker: bool) -> None:
    # SIGTERM (and SIGINT even where a parent shell ignored it) stop everything.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    paths = sorted(config_dir.glob("node*.yaml"))
    if not paths:
        raise ConfigError(f"--config-dir: no node*.yaml in {config_dir}")
    for path in paths:
        _ensure_secret(path)
    configs = [config.load(p) for p in paths]
    logs = Path(configs[0].data_dir).parent
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    for path, cfg in zip(paths, configs, strict=True):
        log = open(logs / f"{cfg.node_id}.log", "ab")  # noqa: SIM115
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "raftq", "node", "--config", str(path)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    urls = [f"http://{c.http_address}" for c in configs]
    nodes = ",".join(urls)
    try:
        if not _wait_ready(urls, procs, 30):
            print(f"the cluster did not become ready; see the logs in {logs}/", file=sys.stderr)
            return
        print(f"raftq: {len(configs)} nodes up")
        for c in configs:
            print(f"  {c.node_id}: http://{c.http_address}  (raft {c.raft_address})")
        if with_worker:
            log = open(logs / "worker.log", "ab")  # noqa: SIM115
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "raftq", "worker", "--app", EXAMPLES_APP,
                 "--nodes", nodes], stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True))
            print(f"  worker: example tasks from {EXAMPLES_APP} (log {logs}/worker.log)")
        print(f"\ndashboard:  {urls[0]}/")
        print(f"status:     .venv/bin/raftq cluster-status --nodes {nodes}")
        print(f"submit one: .venv/bin/raftq submit add --args 2 3 --wait --nodes {nodes}")
        print(f"logs:       {logs}/\nCtrl-C stops everything.")
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("a process exited; stopping", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nstopping")
    finally:
        # The worker first, so it can deliver its last results to live nodes.
        for p in reversed(procs):
            _stop(p)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
