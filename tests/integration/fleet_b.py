"""Tasks of worker B in the fleet tests: ``beta``, which worker A does not run."""

from __future__ import annotations

from fleet_log import log

from raftq import task


@task(queue="mixed")
def beta(key: str) -> str:
    log(key)
    return key
