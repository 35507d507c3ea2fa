"""``GET /openapi.json``: the OpenAPI 3.1 document of the API, made from the route table.

Each route's method, path, roles, summary, query parameters, body and answer
come from ``raftq.server.auth.ROUTES`` and the schemas it names
(``raftq.server.contract``), the same objects the node checks requests with.
Errors are ``{"error": {"code", "message", "field"?}}`` with the statuses of
``docs/http-api.md``.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from raftq.server import contract
from raftq.server.auth import OPEN, ROUTES, RouteSpec, roles_of
from raftq.server.config import NodeConfig
from raftq.server.http import Request, Response

_ERRORS = {
    "400": "invalid request: the message names the field",
    "404": "no such thing (or no route)",
    "405": "the method is not allowed on this path",
    "409": "conflict: not in a status that allows this, a stale lease, already finished",
    "413": "body or payload too large",
    "503": "no leader, overloaded, or the outcome is unknown: retry (Retry-After)",
    "507": "this node cannot write to its disk: try another",
}
_AUTH_ERRORS = {"401": "no API key, or one the cluster does not know",
                "403": "the key's role may not call this"}


def _operation(route: RouteSpec, config: NodeConfig) -> dict[str, Any]:
    roles = roles_of(route, config)
    op: dict[str, Any] = {
        "summary": route.summary,
        "operationId": f"{route.method.lower()}_{route.handler.replace('.', '_')}",
        "description": ("No key needed." if roles == OPEN
                        else f"Roles: {', '.join(sorted(roles))}."),
        "security": [] if roles == OPEN else [{"apiKey": []}],
    }
    params = [{"name": name, "in": "path", "required": True,
               "schema": {"type": "string", "minLength": 1}}
              for name in re.findall(r"\{(\w+)\}", route.path)]
    params += [{"name": p.name, "in": "query", "required": False, "schema": p.schema.json(),
                **({"description": p.description} if p.description else {})}
               for p in route.query or ()]
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": route.body.json()}}}
    if route.content == "application/json":
        ok = {"application/json": {"schema": (route.reply or contract.ANY_OBJECT).json()}}
    else:
        ok = {route.content: {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {str(route.status): {"description": "done", "content": ok}}
    if route.status == 201:  # an idempotent repeat answers 200
        responses["200"] = {"description": "already done (a repeat)", "content": ok}
    errors = dict(_ERRORS) | ({} if roles == OPEN else _AUTH_ERRORS)
    error = {"application/json": {"schema": contract.ERROR.json()}}
    for status, what in sorted(errors.items()):
        responses[status] = {"description": what, "content": error}
    if route.path.startswith("/ui/") or route.path in ("/", "/healthz", "/readyz"):
        responses["503"]["content"] = None
    for answer in responses.values():
        if answer.get("content") is None:
            answer.pop("content", None)
    op["responses"] = responses
    return op


def document(config: NodeConfig) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, config)
    return {
        "openapi": "3.1.0",
        "info": {"title": "raftq", "version": "v1",
                 "description": "A task queue whose broker is its own Raft cluster. "
                                "See docs/http-api.md."},
        "servers": [{"url": "/"}],
        "components": {"securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }


class OpenApi:
    def __init__(self, config: NodeConfig) -> None:
        self.body = orjson.dumps(document(config))

    async def __call__(self, request: Request) -> Response:
        return Response(self.body, headers={"Cache-Control": "no-cache"})
