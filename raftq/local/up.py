"""``raftq up``: the local 3-node cluster from ``config/`` plus a worker, in one command.

It refuses to start on busy ports, restarts a node or worker that dies (see
``raftq.local.supervise``) and stops everything within seconds on Ctrl-C.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import sys
import time
from pathlib import Path

from raftq.errors import ConfigError
from raftq.local.supervise import Child, Supervisor, ready
from raftq.server import config, ports

EXAMPLES_APP = "raftq.local.examples"


def _ensure_files(cfg_path: Path) -> dict[str, Path]:
    """Create the cluster secret and the admin and worker keys the config names,
    once; return the key files by setting."""
    import yaml

    raw = yaml.safe_load(cfg_path.read_text()) or {}
    wanted = {"admin_key_file": "an admin key", "worker_key_file": "a worker key"}
    if not raw.get("secret"):
        wanted["secret_file"] = "a cluster secret"
    found: dict[str, Path] = {}
    for setting, what in wanted.items():
        if not raw.get(setting):
            continue
        path = found[setting] = (cfg_path.parent / str(raw[setting])).resolve()
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            prefix = "" if setting == "secret_file" else "rq_"
            path.write_text(prefix + secrets.token_urlsafe(32) + "\n")
            path.chmod(0o600)
            print(f"generated {what} in {path}")
    return found


def _check_ports(configs: list[config.NodeConfig]) -> None:
    """Refuse to start on a busy port: the readiness check would be answered by
    whatever listens there (say a cluster started earlier), not by our nodes."""
    busy = []
    for c in configs:
        for key, address in (("http", c.http_address), ("raft", c.raft_address)):
            try:
                ports.check_free(address, key)
            except ConfigError:
                busy.append(f"{address} ({c.node_id} {key})")
    if busy:
        raise ConfigError(
            f"already in use: {', '.join(busy)}. Is another `raftq up` or node running? "
            "Stop it first, or give other ports in --config-dir's node*.yaml"
        )


def _wait_ready(urls: list[str], sup: Supervisor, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sup.any_exited() is not None:
            return False
        if all(ready(u) for u in urls):
            return True
        time.sleep(0.1)
    return False


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _raftq_command() -> str:
    """How to run this raftq from the current directory (it may not be on the PATH)."""
    exe = Path(sys.executable).parent / "raftq"
    if shutil.which("raftq") == str(exe):
        return "raftq"
    try:
        return str(exe.relative_to(Path.cwd()))
    except ValueError:
        return str(exe)


def run_up(config_dir: Path, with_worker: bool) -> None:
    # SIGTERM (and SIGINT even where a parent shell ignored it) stop everything.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    paths = sorted(config_dir.glob("node*.yaml"))
    if not paths:
        raise ConfigError(f"--config-dir: no node*.yaml in {config_dir}")
    key_files: dict[str, Path] = {}
    for path in paths:
        key_files.update(_ensure_files(path))
    configs = [config.load(p) for p in paths]
    _check_ports(configs)
    logs = Path(configs[0].data_dir).parent
    logs.mkdir(parents=True, exist_ok=True)
    sup = Supervisor()
    for path, cfg in zip(paths, configs, strict=True):
        sup.start(Child(cfg.node_id, [sys.executable, "-m", "raftq", "node", "--config",
                                      str(path)],
                        logs / f"{cfg.node_id}.log", url=f"http://{cfg.http_address}"))
    urls = [f"http://{c.http_address}" for c in configs]
    nodes = ",".join(urls)
    raftq = _raftq_command()
    try:
        if not _wait_ready(urls, sup, 30):
            dead = sup.any_exited()
            why = "no leader within 30 s"
            if dead is not None:  # its last line says why (a refusal to start: one line)
                why = f"{dead.name} exited: {_last_line(dead.log_path)}"
            print(f"the cluster did not become ready ({why}); see the logs in {logs}/",
                  file=sys.stderr)
            sys.exit(1)
        print(f"raftq: {len(configs)} nodes up")
        for c, child in zip(configs, sup.children, strict=True):
            print(f"  {c.node_id}: http://{c.http_address}  (raft {c.raft_address}, "
                  f"pid {child.pid})")
        worker_key = key_files.get("worker_key_file")
        if with_worker:
            env = {"RAFTQ_API_KEY": worker_key.read_text().strip()} if worker_key else None
            sup.start(Child("worker", [sys.executable, "-m", "raftq", "worker", "--app",
                                       EXAMPLES_APP, "--nodes", nodes],
                            logs / "worker.log", env=env))
            print(f"  worker: example tasks from {EXAMPLES_APP} (log {logs}/worker.log)")
        print(f"\nconsole:    {urls[0]}/  (sign in with the admin key below)")
        admin_key = key_files.get("admin_key_file")
        if admin_key is not None:
            print(f"api key:    export RAFTQ_API_KEY=$(cat {admin_key})   (the admin key; "
                  f"the worker uses {worker_key})")
        print(f"status:     {raftq} cluster-status --nodes {nodes}")
        print(f"submit one: {raftq} submit add --args 2 3 --wait --nodes {nodes}")
        if raftq != "raftq":
            print(f"raftq:      not on your PATH; run {raftq}, or `source "
                  f"{Path(raftq).parent.parent}/bin/activate` first")
        print(f"failover:   kill {sup.children[1].pid} stops {configs[1].node_id}; the other "
              "nodes keep serving and raftq up restarts it")
        print(f"logs:       {logs}/\nCtrl-C stops everything.", flush=True)
        while True:
            sup.poll()
            sys.stdout.flush()
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("\nstopping", flush=True)
    finally:
        sup.stop()


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1] if lines else "nothing in its log"
