"""Handlers of what workers do with tasks: claim them (a long-poll, parked on
this node while nothing is ready), extend and release their leases, complete
or fail them, one or many at a time."""

from __future__ import annotations

import time

from raftq.errors import InvalidRequest
from raftq.server import validate as v
from raftq.server.answers import raise_for
from raftq.server.api_base import ApiBase
from raftq.server.http import Request, Response, json_response
from raftq.server.views import claimed_json
from raftq.server.workers_api import task_names
from raftq.state.commands import Claim, Command, Extend, Finish, Release


class ClaimsApi(ApiBase):
    async def claim(self, request: Request) -> Response:
        body = v.obj(self.body(request), {"worker_id", "queues", "max", "lease_ms", "wait_ms",
                                          "host", "pid", "steal_from", "names"})
        worker_id = v.string(body, "worker_id")
        queues = v.string_list(body, "queues", ["default"])
        steal = v.string_list(body, "steal_from", []) if body.get("steal_from") else []
        names = task_names(body)
        claim = Claim(worker_id, queues, v.integer(body, "max", default=1, lo=1, hi=v.MAX_CLAIM),
                      v.lease_ms(body), str(body.get("host", ""))[:200],
                      v.integer(body, "pid", default=0), steal, names)
        deadline = time.monotonic() + v.wait_ms(body.get("wait_ms")) / 1000
        # Each proposal of this long-poll gets its own request id derived from
        # the request's: a repeat of the request replays the same sequence,
        # and a second proposal is not mistaken for a repeat of the first.
        base, _ = self.stamp(request)
        attempt = 0
        while True:
            if request.gone:
                return json_response({"tasks": []})  # nobody to hand leases to
            remaining = deadline - time.monotonic()
            ready = self.replica.state.claimable(queues + steal, names)
            if ready or remaining <= 0:
                attempt += 1
                cmd = Command(claim, f"{base}:{attempt}", self.clock.wall_ms())
                result = raise_for(await self.replica.propose(cmd))
            else:
                # Wait, parked: a submit to one of our queues through this
                # node takes the claim along in its entry (raftq.server.parking).
                parked = self.parking.park(claim, f"{base}:{attempt + 1}",
                                           lambda: request.gone)
                try:
                    await self.replica.wait_changed(min(remaining, 1.0))
                finally:
                    self.parking.leave(parked)
                if parked.future is None:
                    continue
                attempt += 1
                result = raise_for(await parked.future)
            if result["tasks"] or deadline - time.monotonic() <= 0:
                break
        leases = [(t["id"], t["lease_token"]) for t in result["tasks"]]
        if leases and request.gone:
            # The worker left while its claim was in flight: hand the tasks back
            # now rather than leaving them leased until the lease expires.
            await self.propose(request, Release(worker_id, leases))
            return json_response({"tasks": []})
        state = self.replica.state
        tasks = state.tasks
        out = [claimed_json(tasks[t["id"]], t, state.parent_results(t["id"]))
               for t in result["tasks"] if t["id"] in tasks]
        self.metrics.claimed(len(out))
        return json_response({"tasks": out})

    async def extend(self, request: Request) -> Response:
        body = v.obj(self.body(request), {"worker_id", "leases", "lease_ms"})
        cmd = Extend(v.string(body, "worker_id"), v.leases(body), v.lease_ms(body))
        return json_response(raise_for(await self.propose(request, cmd)))

    async def release(self, request: Request) -> Response:
        body = v.obj(self.body(request), {"worker_id", "leases"})
        cmd = Release(v.string(body, "worker_id"), v.leases(body))
        return json_response(raise_for(await self.propose(request, cmd)))

    async def finish_one(self, request: Request, failed: bool) -> Response:
        task_id = request.match_info["id"]
        body = self.body(request)
        if isinstance(body, dict) and failed and "error" not in body:
            raise InvalidRequest("error is required", field="error")
        if isinstance(body, dict) and not failed and "error" in body:
            raise InvalidRequest("unknown field 'error' (use /fail)", field="error")
        outcome = v.outcome(body, "", self.config.max_payload_bytes, task_id)
        (result,) = await self.propose(request, Finish("", [outcome]))
        raise_for(result)
        self.metrics.finished(result["status"])
        return json_response({"task": self.task_view(task_id)})

    async def complete(self, request: Request) -> Response:
        return await self.finish_one(request, failed=False)

    async def fail(self, request: Request) -> Response:
        return await self.finish_one(request, failed=True)

    async def completions(self, request: Request) -> Response:
        body = v.obj(self.body(request), {"worker_id", "items"})
        items = body.get("items")
        if not isinstance(items, list) or not 0 < len(items) <= v.MAX_CLAIM:
            raise InvalidRequest(f"items must be a list of 1-{v.MAX_CLAIM}", field="items")
        outcomes = [v.outcome(it, f"items[{i}]", self.config.max_payload_bytes)
                    for i, it in enumerate(items)]
        worker_id = v.string(body, "worker_id", default="") if body.get("worker_id") else ""
        results = raise_for(await self.propose(request, Finish(worker_id, outcomes)))
        out = []
        for r in results:
            if "error" in r:
                out.append({"id": r.get("id"), "ok": False, "code": r["error"],
                            "message": r.get("message", "")})
            else:
                self.metrics.finished(r["status"])
                out.append({"id": r["id"], "ok": True, "status": r["status"]})
        return json_response({"results": out})
