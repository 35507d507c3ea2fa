"""The web-app examples check their input like raftq's nodes do: 400 naming the
field, never a 500 (issue 10 item 17). No cluster is needed: nothing bad is sent."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

ROOT = Path(__file__).parents[2]
UNREACHABLE = ["http://127.0.0.1:9"]


def load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@asynccontextmanager
async def aiohttp_example() -> AsyncIterator[str]:
    runner = web.AppRunner(load("aiohttp_app").make_app(UNREACHABLE))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def fastapi_example() -> AsyncIterator[str]:
    uvicorn = pytest.importorskip("uvicorn")
    example = load("fastapi_app")
    example.app.state.nodes = UNREACHABLE
    server = uvicorn.Server(uvicorn.Config(example.app, host="127.0.0.1", port=0,
                                           log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


EXAMPLES: list[Callable[[], Any]] = [aiohttp_example, fastapi_example]

BAD = [
    ("POST", "/add", b'{"a": 2, "b":', {}, None),
    ("POST", "/add", b"[1, 2]", {}, None),
    ("POST", "/add", b'{"a": 2}', {}, "b"),
    ("POST", "/add", b'{"a": "two", "b": 3}', {}, "a"),
    ("POST", "/add", b'{"a": 1, "b": 2, "c": 3}', {}, "c"),
    ("POST", "/add", b'{"a": 1, "b": 2, "priority": [1]}', {}, "priority"),
    ("GET", "/tasks/t1", None, {"wait": "abc"}, "wait"),
    ("GET", "/tasks/t1", None, {"wait": "-1"}, "wait"),
    ("GET", "/tasks/t1", None, {"wait": "1000"}, "wait"),
]


@pytest.mark.parametrize("example", EXAMPLES, ids=["aiohttp", "fastapi"])
def test_bad_input_is_a_400_naming_the_field(example: Callable[[], Any]) -> None:
    async def main() -> None:
        async with example() as base, aiohttp.ClientSession(base) as http:
            for method, path, body, query, field in BAD:
                headers = {"Content-Type": "application/json"} if body is not None else {}
                async with http.request(method, path, data=body, params=query,
                                        headers=headers) as r:
                    answer = await r.json()
                    what = f"{method} {path} {body!r} {query}: {r.status} {answer}"
                    assert r.status == 400, what
                    assert answer["error"]["code"] == "invalid_request", what
                    assert answer["error"].get("field") == field, what

    asyncio.run(main())
