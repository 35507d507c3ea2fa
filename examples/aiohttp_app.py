"""Submitting raftq tasks from an aiohttp web app.

Run a cluster and a worker (``make up`` does both), then::

    python examples/aiohttp_app.py            # serves on :8080
    curl -XPOST localhost:8080/add -d '{"a": 2, "b": 3}'
    curl 'localhost:8080/tasks/<id>?wait=10'

One ``AsyncClient`` lives as long as the app (opened in a cleanup context,
closed on shutdown) and is shared by every request. Submissions get their
task id from the client, so a retried request never creates a second task;
pass your own ``id`` (here: the ``Idempotency-Key`` header of the incoming
request) to make the whole request idempotent end to end.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from aiohttp import web

from raftq import AsyncClient, TaskFailed, errors

CLIENT = web.AppKey("raftq_client", AsyncClient)


def make_app(nodes: list[str] | str | None = None) -> web.Application:
    app = web.Application()

    async def raftq_client(app: web.Application) -> AsyncIterator[None]:
        app[CLIENT] = AsyncClient(nodes or os.environ.get("RAFTQ_NODES"))
        yield
        await app[CLIENT].close()

    app.cleanup_ctx.append(raftq_client)
    app.add_routes([web.post("/add", add), web.get("/tasks/{id}", status)])
    return app


async def add(request: web.Request) -> web.Response:
    body = await request.json()
    try:
        handle = await request.app[CLIENT].submit(
            "add", [body["a"], body["b"]], priority=body.get("priority", "normal"),
            id=request.headers.get("Idempotency-Key"))
    except errors.InvalidRequest as exc:
        return web.json_response({"error": exc.message, "field": exc.field}, status=400)
    except errors.Unavailable as exc:
        return web.json_response({"error": exc.message}, status=503)
    return web.json_response({"id": handle.id, "created": handle.created}, status=202)


async def status(request: web.Request) -> web.Response:
    client = request.app[CLIENT]
    task_id = request.match_info["id"]
    wait = float(request.query.get("wait", "0"))
    try:
        result = await client.result(task_id, timeout=wait)
    except TimeoutError:
        task = await client.get(task_id)
        return web.json_response({"id": task_id, "status": task["status"]})
    except TaskFailed as exc:
        return web.json_response({"id": task_id, "status": exc.task_status,
                                  "error": str(exc)})
    except errors.NotFound:
        return web.json_response({"error": f"no task {task_id}"}, status=404)
    return web.json_response({"id": task_id, "status": "succeeded", "result": result})


if __name__ == "__main__":
    web.run_app(make_app(), port=int(os.environ.get("PORT", "8080")))
