"""Submitting raftq tasks from an aiohttp web app.

Run a cluster and a worker (``make up`` does both), then::

    python examples/aiohttp_app.py            # serves on :8080
    curl -XPOST localhost:8080/add -H 'Content-Type: application/json' -d '{"a": 2, "b": 3}'
    curl 'localhost:8080/tasks/<id>?wait=10'

One ``AsyncClient`` lives as long as the app (opened in a cleanup context,
closed on shutdown) and is shared by every request. Submissions get their
task id from the client, so a retried request never creates a second task;
pass your own ``id`` (here: the ``Idempotency-Key`` header of the incoming
request) to make the whole request idempotent end to end.

Input is checked before anything is sent, the way raftq's own nodes check
theirs: a bad body or query answers 400 with
``{"error": {"code": "invalid_request", "message": ..., "field": ...}}``,
never a 500.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from raftq import AsyncClient, TaskFailed, errors

CLIENT = web.AppKey("raftq_client", AsyncClient)
MAX_WAIT_S = 60.0


def problem(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    """An error shaped like raftq's own."""
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return web.json_response({"error": error}, status=status)


def invalid(message: str, field: str | None = None) -> web.Response:
    return problem(400, "invalid_request", message, field)


def number(body: dict[str, Any], key: str) -> float | web.Response:
    value = body.get(key)
    if value is None:
        return invalid(f"{key} is required", key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return invalid(f"{key} must be a number", key)
    return value


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
    if request.content_type not in ("application/json", "application/octet-stream"):
        return invalid("Content-Type must be application/json", "Content-Type")
    try:
        body = json.loads(await request.read())
    except (ValueError, RecursionError) as exc:
        return invalid(f"body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return invalid("body must be a JSON object")
    unknown = sorted(set(body) - {"a", "b", "priority"})
    if unknown:
        return invalid(f"unknown field {unknown[0]!r}", unknown[0])
    a, b = number(body, "a"), number(body, "b")
    for checked in (a, b):
        if isinstance(checked, web.Response):
            return checked
    priority = body.get("priority", "normal")
    if isinstance(priority, bool) or not isinstance(priority, str | int):
        return invalid("priority must be a name or an integer 0-255", "priority")
    try:
        handle = await request.app[CLIENT].submit(
            "add", [a, b], priority=priority, id=request.headers.get("Idempotency-Key"))
    except errors.InvalidRequest as exc:  # what only the cluster knows, e.g. a priority name
        return invalid(exc.message, exc.field)
    except errors.Unavailable as exc:
        return problem(503, exc.code, exc.message)
    return web.json_response({"id": handle.id, "created": handle.created}, status=202)


async def status(request: web.Request) -> web.Response:
    client = request.app[CLIENT]
    task_id = request.match_info["id"]
    try:
        wait = float(request.query.get("wait", "0"))
    except ValueError:
        wait = math.nan
    if not 0 <= wait <= MAX_WAIT_S:  # also false for nan
        return invalid(f"wait must be a number of seconds, 0-{MAX_WAIT_S:g}", "wait")
    try:
        result = await client.result(task_id, timeout=wait)
    except TimeoutError:
        task = await client.get(task_id)
        return web.json_response({"id": task_id, "status": task["status"]})
    except TaskFailed as exc:
        return web.json_response({"id": task_id, "status": exc.task_status,
                                  "error": str(exc)})
    except errors.NotFound:
        return problem(404, "not_found", f"no task {task_id}")
    except errors.InvalidRequest as exc:  # e.g. a task id the cluster refuses
        return invalid(exc.message, "id")
    except errors.Unavailable as exc:
        return problem(503, exc.code, exc.message)
    return web.json_response({"id": task_id, "status": "succeeded", "result": result})


if __name__ == "__main__":
    web.run_app(make_app(), port=int(os.environ.get("PORT", "8080")))
