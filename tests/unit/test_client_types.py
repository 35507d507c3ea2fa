"""The clients' return types are what docs/workers.md says (issue 10 item 14)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from raftq.client import following, types
from raftq.client.asyncclient import AsyncClient
from raftq.client.sync import Client

DOC = Path(__file__).parents[2] / "docs" / "workers.md"


def documented() -> dict[str, str]:
    """call name -> the type the docs' table of client calls names first."""
    rows = re.findall(r"^\| `(\w+)\(.*?\)`.*?\| `([\w\[\]]+)`", DOC.read_text(), re.M)
    table = {name: returns for name, returns in rows}
    for pair in re.findall(r"^\| `(\w+)\(.*?\)` / `(\w+)\(.*?\)` \| `([\w\[\]]+)`",
                           DOC.read_text(), re.M):
        table[pair[0]] = table[pair[1]] = pair[2]
    return table


def test_the_table_covers_every_public_call() -> None:
    calls = {name for name, _ in inspect.getmembers(Client, inspect.isfunction)
             if not name.startswith("_") and name != "close"}
    # ``result`` has its own paragraph; ``pipeline`` (Client only) its own in
    # "Producers that batch by themselves".
    assert calls - {"result", "pipeline"} <= set(documented()), calls - set(documented())


@pytest.mark.parametrize("client, prefix", [(Client, ""), (AsyncClient, "Async")])
def test_each_call_is_annotated_with_the_documented_type(client: type, prefix: str) -> None:
    for name, returns in documented().items():
        if name == "result":
            continue
        annotation = inspect.signature(getattr(client, name)).return_annotation
        want = returns.replace("TaskHandle", prefix + "TaskHandle").replace(
            "EventStream", prefix + "EventStream")
        assert annotation == want, name


def test_documented_types_exist() -> None:
    for returns in set(documented().values()):
        base = returns.removeprefix("list[").removesuffix("]")
        assert base in {"TaskHandle", "Json", "JsonList"} or hasattr(types, base) or (
            hasattr(following, base)), returns
