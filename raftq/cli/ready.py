"""`raftq ready`: is the node of this config ready? For container health checks.

It asks the node's own ``GET /readyz`` on the loopback address of its
``http_address``, over HTTPS when the config has a certificate. The
certificate is not verified: the check talks to this machine's own port and
reads nothing secret (``/readyz`` is open), while the node's certificate may
not name the loopback address.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

import click

from raftq.cli.common import fail
from raftq.errors import ConfigError

LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1", "[::]": "::1", "": "127.0.0.1"}


@click.command(short_help="Health check: is this config's node ready?")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The node's config YAML.")
@click.option("--timeout", default=2.0, show_default=True, type=click.FloatRange(0.1, 60),
              help="Seconds to wait for the answer.")
def ready(config_path: str, timeout: float) -> None:
    """Exit 0 if the node of this config is ready (knows a leader, has applied
    what it committed, holds its keys), else print why and exit 1."""
    from raftq.server import config

    try:
        cfg = config.load(config_path)
    except ConfigError as exc:
        fail(f"--config: {exc.message}")
    host, port = cfg.http_host_port
    host = LOOPBACK.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    url = f"{cfg.scheme}://{host}:{port}/readyz"
    context = None
    if cfg.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as answer:
            body = json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            reason = json.loads(exc.read() or b"{}").get("reason", exc.reason)
        except ValueError:
            reason = exc.reason
        fail(f"node {cfg.node_id} not ready ({exc.code}): {reason}")
    except (OSError, ValueError) as exc:
        fail(f"node {cfg.node_id} did not answer at {url}: {exc}")
    click.echo(f"node {cfg.node_id} ready: leader {body.get('leader')}, "
               f"applied {body.get('applied_index')}")


COMMANDS = [ready]
