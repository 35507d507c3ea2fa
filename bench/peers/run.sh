#!/bin/sh
# Side-by-side benchmark: Huey and Celery on a local Redis (appendonly yes,
# appendfsync everysec) against raftq, in one session. Installs what it needs:
# redis-server with apt when missing (run as root), and huey, celery, redis
# into bench/.peers-venv (git-ignored; never the project's .venv).
#
#   bench/peers/run.sh [--tasks 20000] [--runs 3] [--systems huey,celery,raftq] [-- RAFTQ_BENCH_ARGS]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="$root/bench/.peers-venv"

if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
    # Debian starts its own instance on 6379; ours runs on 16379 with our settings.
    service redis-server stop >/dev/null 2>&1 || true
fi
if [ ! -x "$venv/bin/huey_consumer" ] || [ ! -x "$venv/bin/celery" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet huey celery redis packaging
fi
[ -x "$root/.venv/bin/raftq" ] || make -C "$root" .venv/.installed
exec "$venv/bin/python" "$here/peers.py" "$@"
