"""The ``raftq`` command group: the commands live in one module per topic next to this one.

``common`` (shared options, errors, output), ``cluster`` (node, up, cluster-status,
gen-secret, chaos), ``tasks`` (submit, status, list, cancel), ``dlq``, ``stats``,
``keys`` (keys create/list/revoke, audit), ``workflows`` (workflow show, cancel),
``schedules``; ``flow`` (explain, limits, queue); ``members`` (cluster add-node,
remove-node, members); ``events``; ``ready`` (the container health check);
``raftq worker``/``workers`` and ``raftq bench`` live with their layers.
"""

from __future__ import annotations

import click

from raftq.cli import (
    cluster,
    dlq,
    events,
    flow,
    keys,
    members,
    ready,
    schedules,
    stats,
    tasks,
    workflows,
)


@click.group()
@click.version_option(package_name="raftq")
def main() -> None:
    """raftq: a task queue whose broker is its own Raft cluster."""


def _register() -> None:
    for module in (cluster, members, tasks, dlq, stats, keys, workflows, schedules, events,
                   ready, flow):
        for command in module.COMMANDS:
            main.add_command(command)


def _register_optional() -> None:
    """Commands that live in their own modules."""
    try:
        from raftq.worker.cli import worker_command, workers_command
    except ImportError:
        pass
    else:
        main.add_command(worker_command, "worker")
        main.add_command(workers_command, "workers")
    try:
        from raftq.bench.command import bench_command
    except ImportError:
        pass
    else:
        main.add_command(bench_command, "bench")


_register()
_register_optional()
