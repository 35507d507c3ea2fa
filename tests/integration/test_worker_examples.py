"""The aiohttp and FastAPI example apps submit to a real cluster and a real worker answers."""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from workerkit import ROOT, Workers, shared_cluster, shared_workers  # noqa: F401

from raftq.local.cluster import LocalCluster


def load_example(name: str = "aiohttp_app") -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / f"examples/{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_aiohttp_example_submits_and_reads_the_result(
    shared_cluster: LocalCluster, shared_workers: Workers  # noqa: F811
) -> None:
    example = load_example()
    shared_workers.start("--app", "raftq.local.examples")  # a later --app wins over the kit's

    async def main() -> None:
        runner = web.AppRunner(example.make_app(shared_cluster.http_urls))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
                headers = {"Idempotency-Key": "example-req-1"}
                async with http.post("/add", json={"a": 2, "b": 3}, headers=headers) as r:
                    assert r.status == 202
                    first = await r.json()
                async with http.post("/add", json={"a": 2, "b": 3}, headers=headers) as r:
                    again = await r.json()
                assert first["created"] and not again["created"] and again["id"] == first["id"]
                async with http.get(f"/tasks/{first['id']}", params={"wait": "30"}) as r:
                    assert await r.json() == {"id": first["id"], "status": "succeeded",
                                              "result": 5}
                async with http.post("/add", json={"a": 1, "b": 1, "priority": "urgent"}) as r:
                    assert r.status == 400 and (await r.json())["error"]["field"] == "priority"
        finally:
            await runner.cleanup()

    asyncio.run(main())


def test_the_fastapi_example_submits_and_reads_the_result(
    shared_cluster: LocalCluster, shared_workers: Workers  # noqa: F811
) -> None:
    uvicorn = pytest.importorskip("uvicorn")
    example = load_example("fastapi_app")
    example.app.state.nodes = shared_cluster.http_urls
    shared_workers.start("--app", "raftq.local.examples")

    async def main() -> None:
        server = uvicorn.Server(uvicorn.Config(example.app, host="127.0.0.1", port=0,
                                               log_level="warning", lifespan="on"))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
                headers = {"Idempotency-Key": "fastapi-req-1"}
                async with http.post("/add", json={"a": 2, "b": 3}, headers=headers) as r:
                    assert r.status == 202
                    first = await r.json()
                async with http.post("/add", json={"a": 2, "b": 3}, headers=headers) as r:
                    again = await r.json()
                assert first["created"] and not again["created"] and again["id"] == first["id"]
                async with http.get(f"/tasks/{first['id']}", params={"wait": "30"}) as r:
                    assert await r.json() == {"id": first["id"], "status": "succeeded",
                                              "result": 5}
                async with http.post("/add", json={"a": 1, "b": 1, "priority": "urgent"}) as r:
                    assert r.status == 400 and (await r.json())["error"]["field"] == "priority"
                async with http.get("/tasks/no-such-task") as r:
                    assert r.status == 404
        finally:
            server.should_exit = True
            await serving

    asyncio.run(main())


def test_delay_and_delay_async_submit_through_the_configured_cluster(
    shared_cluster: LocalCluster, shared_workers: Workers  # noqa: F811
) -> None:
    import raftq
    from raftq.local import examples as examples_tasks

    shared_workers.start("--app", "raftq.local.examples", "--pool", "async")
    raftq.configure(nodes=shared_cluster.http_urls)
    try:
        assert examples_tasks.add.delay(2, 3).result(timeout=30) == 5
        handle = examples_tasks.mul.submit(args=[4, 5], priority="critical", id="mul-once")
        again = examples_tasks.mul.submit(args=[4, 5], id="mul-once")
        assert handle.id == again.id == "mul-once" and not again.created
        assert handle.get()["priority"] == 255 and handle.result(timeout=30) == 20

        async def from_a_coroutine() -> Any:
            h = await examples_tasks.async_add.delay_async(1, 2, delay=0.01)
            return await h.result(timeout=30)

        assert asyncio.run(from_a_coroutine()) == 3
        with pytest.raises(raftq.TaskFailed, match="ValueError: nope"):
            examples_tasks.always_fail.delay("nope").result(timeout=60)
        # The task's own options travel with .delay(): always_fail allows 2 attempts.
        dead = raftq.Client(shared_cluster.http_urls).dead_letters()
        assert [t["attempts"] for t in dead] == [2]
    finally:
        raftq.configure(nodes=None)
