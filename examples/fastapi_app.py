"""Submitting raftq tasks from a FastAPI app (FastAPI is not a raftq dependency).

    pip install fastapi uvicorn
    uvicorn examples.fastapi_app:app --port 8080
    curl -XPOST localhost:8080/add -H 'content-type: application/json' -d '{"a": 2, "b": 3}'

The ``AsyncClient`` is opened in the lifespan and shared by all requests.
Tasks can be submitted by name (as here) or through a ``@task`` function's
``await add.delay_async(2, 3)``, which uses ``raftq.configure(nodes=...)``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request  # type: ignore[import-not-found]
from pydantic import BaseModel  # type: ignore[import-not-found]

from raftq import AsyncClient, TaskFailed, errors


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    app.state.raftq = AsyncClient(os.environ.get("RAFTQ_NODES"))
    yield
    await app.state.raftq.close()


app = FastAPI(lifespan=lifespan)


class AddRequest(BaseModel):  # type: ignore[misc]
    a: float
    b: float
    priority: str = "normal"


@app.post("/add", status_code=202)  # type: ignore[misc]
async def add(body: AddRequest, request: Request) -> dict[str, Any]:
    try:
        handle = await request.app.state.raftq.submit(
            "add", [body.a, body.b], priority=body.priority,
            id=request.headers.get("idempotency-key"))
    except errors.InvalidRequest as exc:
        raise HTTPException(400, exc.message) from None
    except errors.Unavailable as exc:
        raise HTTPException(503, exc.message) from None
    return {"id": handle.id, "created": handle.created}


@app.get("/tasks/{task_id}")  # type: ignore[misc]
async def status(task_id: str, request: Request, wait: float = 0.0) -> dict[str, Any]:
    client: AsyncClient = request.app.state.raftq
    try:
        return {"id": task_id, "status": "succeeded",
                "result": await client.result(task_id, timeout=wait)}
    except TimeoutError:
        return {"id": task_id, "status": (await client.get(task_id))["status"]}
    except TaskFailed as exc:
        return {"id": task_id, "status": exc.task_status, "error": str(exc)}
    except errors.NotFound:
        raise HTTPException(404, f"no task {task_id}") from None
