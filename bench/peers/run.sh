#!/bin/sh
# Like-for-like benchmark: Huey and Celery on a local Redis (appendonly yes,
# appendfsync everysec), NATS JetStream (three servers, R3 file stream) and
# raftq (three nodes), every system driven the same way, in one session.
# Installs what it needs: redis-server and nats-server with apt when missing
# (run as root), and huey, celery, redis, nats-py and raftq itself into
# bench/.peers-venv (git-ignored; never the project's .venv).
#
#   bench/peers/run.sh [--tasks 20000] [--runs 3] [--producers 8] [--systems huey,celery,nats,raftq]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="$root/bench/.peers-venv"

missing=""
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing="$missing redis-server"
command -v nats-server >/dev/null 2>&1 || [ -x /usr/bin/nats-server ] || missing="$missing nats-server"
if [ -n "$missing" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
    # Debian may start its own instances on the default ports; ours use their own.
    service redis-server stop >/dev/null 2>&1 || true
    service nats-server stop >/dev/null 2>&1 || true
fi
if [ ! -x "$venv/bin/huey_consumer" ] || [ ! -x "$venv/bin/celery" ] \
        || ! "$venv/bin/python" -c "import nats, raftq" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet huey celery redis nats-py packaging
    "$venv/bin/pip" install --quiet -e "$root"
fi
exec "$venv/bin/python" "$here/peers.py" "$@"
