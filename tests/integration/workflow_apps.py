"""Tasks for the workflow integration tests, imported by real worker processes.

Their names start with ``wf.``: the test process imports this module too, and
the process-wide registry must not meet another module's ``add``."""

from __future__ import annotations

from typing import Any

from raftq import task


@task(name="wf.add")
def add(x: int, y: int) -> int:
    return x + y


@task(name="wf.mul")
def mul(x: int, y: int) -> int:
    return x * y


@task(name="wf.total")
def total(values: list[Any]) -> Any:
    """A chord's callback: the sum of the numbers, and the failed parents named."""
    numbers = [v for v in values if isinstance(v, int)]
    failed = sorted(v["status"] for v in values if isinstance(v, dict))
    return {"sum": sum(numbers), "failed": failed} if failed else sum(numbers)


@task(name="wf.boom")
def boom(key: str) -> None:
    raise ValueError(f"boom {key}")


@task(name="wf.handled")
def handled(info: dict[str, Any]) -> str:
    """An error handler: gets the failed parent's id, status and last error."""
    return f"{info['status']}: {info['error']['message']}"


@task(name="wf.noop")
def noop(*args: Any) -> int:
    return len(args[0]) if args and isinstance(args[0], list) else 1
