"""The ``raftq`` command group: the commands live in one module per topic next to this one.

``common`` (shared options, errors, output), ``cluster`` (node, up, cluster-status,
gen-secret, chaos), ``tasks`` (submit, status, list, cancel), ``dlq``, ``stats``,
``keys`` (keys create/list/revoke, audit), ``workflows`` (workflow show, cancel),
``schedules``; ``flow`` (explain, limits, queue); ``members`` (cluster add-node,
remove-node, members); ``events``; ``ready`` (the container health check);
``raftq worker``/``workers`` and ``raftq bench`` live with their layers.
"""

from __future__ import annotations

import importlib

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


class _Commands(click.Group):
    """The command group; ``raftq worker``, ``workers`` and ``bench`` are imported
    when named (``raftq node`` starts without loading the benchmark and the
    worker runtime: a restart is that much sooner ready)."""

    LAZY = {
        "worker": ("raftq.worker.cli", "worker_command"),
        "workers": ("raftq.worker.cli", "workers_command"),
        "bench": ("raftq.bench.command", "bench_command"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in self.LAZY:
            module, attr = self.LAZY[cmd_name]
            command = getattr(importlib.import_module(module), attr)
            self.add_command(command, cmd_name)
        return command


@click.group(cls=_Commands)
@click.version_option(package_name="raftq")
def main() -> None:
    """raftq: a task queue whose broker is its own Raft cluster."""


def _register() -> None:
    for module in (cluster, members, tasks, dlq, stats, keys, workflows, schedules, events,
                   ready, flow):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
