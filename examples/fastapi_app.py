"""Submitting raftq tasks from a FastAPI app (FastAPI is not a raftq dependency).

    pip install fastapi uvicorn
    uvicorn examples.fastapi_app:app --port 8080
    curl -XPOST localhost:8080/add -H 'Content-Type: application/json' -d '{"a": 2, "b": 3}'
    curl 'localhost:8080/tasks/<id>?wait=10'

The ``AsyncClient`` is opened in the lifespan and shared by all requests.
Tasks can be submitted by name (as here) or through a ``@task`` function's
``await add.delay_async(2, 3)``, which uses ``raftq.configure(nodes=...)``.

Input is checked before anything is sent, the way raftq's own nodes check
theirs: a bad body or query answers 400 with
``{"error": {"code": "invalid_request", "message": ..., "field": ...}}``
(FastAPI's own 422 is turned into that), never a 500.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Query, Request  # type: ignore[import-not-found]
from fastapi.exceptions import RequestValidationError  # type: ignore[import-not-found]
from fastapi.responses import JSONResponse  # type: ignore[import-not-found]
from pydantic import BaseModel, ConfigDict, Field  # type: ignore[import-not-found]

from raftq import AsyncClient, TaskFailed, errors

MAX_WAIT_S = 60.0


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    app.state.raftq = AsyncClient(getattr(app.state, "nodes", None)
                                  or os.environ.get("RAFTQ_NODES"))
    yield
    await app.state.raftq.close()


app = FastAPI(lifespan=lifespan)


def problem(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    """An error shaped like raftq's own."""
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return JSONResponse({"error": error}, status_code=status)


@app.exception_handler(RequestValidationError)  # type: ignore[misc]
async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0]
    # loc is ("body" or "query", field, then the union member tried, if any)
    where = first.get("loc", ())[1:2]
    field = str(where[0]) if where else None
    message = first.get("msg", "invalid request")
    if first.get("type") == "json_invalid":
        message, field = "body is not valid JSON", None
    return problem(400, "invalid_request", f"{field}: {message}" if field else message, field)


class AddRequest(BaseModel):  # type: ignore[misc]
    model_config = ConfigDict(extra="forbid")

    a: float = Field(allow_inf_nan=False)
    b: float = Field(allow_inf_nan=False)
    priority: str | int = "normal"


@app.post("/add", status_code=202, response_model=None)  # type: ignore[misc]
async def add(body: AddRequest, request: Request) -> dict[str, Any] | JSONResponse:
    try:
        handle = await request.app.state.raftq.submit(
            "add", [body.a, body.b], priority=body.priority,
            id=request.headers.get("idempotency-key"))
    except errors.InvalidRequest as exc:  # what only the cluster knows, e.g. a priority name
        return problem(400, "invalid_request", exc.message, exc.field)
    except errors.Unavailable as exc:
        return problem(503, exc.code, exc.message)
    return {"id": handle.id, "created": handle.created}


@app.get("/tasks/{task_id}", response_model=None)  # type: ignore[misc]
async def status(task_id: str, request: Request,
                 wait: float = Query(0.0, ge=0, le=MAX_WAIT_S)) -> dict[str, Any] | JSONResponse:
    client: AsyncClient = request.app.state.raftq
    try:
        return {"id": task_id, "status": "succeeded",
                "result": await client.result(task_id, timeout=wait)}
    except TimeoutError:
        return {"id": task_id, "status": (await client.get(task_id))["status"]}
    except TaskFailed as exc:
        return {"id": task_id, "status": exc.task_status, "error": str(exc)}
    except errors.NotFound:
        return problem(404, "not_found", f"no task {task_id}")
    except errors.InvalidRequest as exc:
        return problem(400, "invalid_request", exc.message, "id")
    except errors.Unavailable as exc:
        return problem(503, exc.code, exc.message)
