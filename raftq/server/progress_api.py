"""``POST /v1/progress``: running tasks' progress, from the worker that holds their leases."""

from __future__ import annotations

import math
from typing import Any

from raftq.errors import InvalidRequest
from raftq.server import validate as v
from raftq.server.http import Request, Response, json_response
from raftq.state.commands import Progress
from raftq.state.progress import MAX_MESSAGE


def progress_items(body: Any) -> Progress:
    body = v.obj(body, {"worker_id", "items"})
    items = body.get("items")
    if not isinstance(items, list) or not 0 < len(items) <= v.MAX_CLAIM:
        raise InvalidRequest(f"items must be a list of 1-{v.MAX_CLAIM}", field="items")
    out = []
    for i, item in enumerate(items):
        where = f"items[{i}]"
        item = v.obj(item, {"id", "lease_token", "fraction", "message"}, where)
        fraction = item.get("fraction")
        if (isinstance(fraction, bool) or not isinstance(fraction, int | float)
                or not math.isfinite(fraction) or not 0 <= fraction <= 1):
            raise InvalidRequest(f"{where}.fraction must be a number from 0 to 1",
                                 field=f"{where}.fraction")
        message = item.get("message", "")
        if not isinstance(message, str) or len(message) > MAX_MESSAGE:
            raise InvalidRequest(f"{where}.message must be a string of at most {MAX_MESSAGE} "
                                 "characters", field=f"{where}.message")
        out.append((v.string(item, "id", where), v.integer(item, "lease_token", where, lo=1),
                    round(fraction * 1000), message))
    return Progress(v.string(body, "worker_id"), out)


class ProgressApi:
    def __init__(self, api: Any) -> None:
        self.api = api

    async def report(self, request: Request) -> Response:
        cmd = progress_items(self.api.body(request))
        result = self.api.raise_for(await self.api.propose(request, cmd))
        return json_response(result)
