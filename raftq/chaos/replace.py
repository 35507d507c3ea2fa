"""The ``replace-nodes`` scenario: every node of a running cluster replaced, under load.

The network is made with spare nodes (``Scenario.nodes``) of which the first
``Scenario.members`` form the cluster. Each step of the fault is one
membership change an operator would make (docs/operations.md):

1. while an original node is a member: kill one for good (SIGKILL, its data
   left behind), remove it, add a spare with a new id and an empty data
   directory, start it with ``join`` and wait until it has caught up;
2. then grow to ``GROW_TO`` members, one node at a time;
3. then shrink back to the original size, removing live nodes (each stops);
4. then, while spares are left (8 nodes at most: the proxy network's port plan),
   replace a random member as in 1; after that, kill the leader (and restart
   it) for the rest of the run.

The cluster's ``node_ids`` (who submitters, probes and the final checks talk
to) follow the membership. The workers are real ``raftq worker`` processes
given the original nodes' URLs only: they must follow the membership by
themselves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from raftq.chaos.cluster import wait_for
from raftq.chaos.history import now_ms
from raftq.chaos.http import call
from raftq.chaos.nemesis import Active, Context, kill_leader

GROW_TO = 5
CHANGE_TIMEOUT_S = 90.0


@dataclass
class ReplaceNodes:
    originals: list[str] = field(default_factory=list)
    size: int = 0
    grown: bool = False
    run: object = None  # the run's context: a new run starts over

    def __call__(self, ctx: Context) -> Active | None:
        c = ctx.cluster
        if self.run is not ctx:
            self.run, self.originals, self.size = ctx, list(c.node_ids), len(c.node_ids)
            self.grown = False
        originals = [n for n in c.node_ids if n in self.originals]
        if originals:
            return self._replace(ctx, ctx.rng.choice(originals))
        if not self.grown and len(c.node_ids) < GROW_TO:
            new = self._add(ctx)
            return Active("grow", [new], lambda: None) if new else None
        self.grown = True
        if len(c.node_ids) > self.size:
            node = ctx.rng.choice(c.node_ids)
            if not self._remove(ctx, node, alive=True):
                return None
            return Active("shrink", [node], lambda: None)
        return self._replace(ctx, ctx.rng.choice(c.node_ids))

    def _replace(self, ctx: Context, old: str) -> Active | None:
        if not ctx.cluster.spares:  # every spare used: the new cluster loses leaders
            return kill_leader(ctx)
        t0 = now_ms()
        ctx.cluster.kill(old)  # for good: its data stays where it was
        if not self._remove(ctx, old, alive=False):
            return None
        new = self._add(ctx)
        if new is None:
            return None
        return Active("replace-node", [old, new], lambda: None, t_start=t0)

    def _remove(self, ctx: Context, node: str, *, alive: bool) -> bool:
        c = ctx.cluster
        c.node_ids = [n for n in c.node_ids if n != node]
        done = _change(ctx, "DELETE", f"/v1/cluster/nodes/{node}", None)
        if alive and c.procs.get(node) is not None:
            try:
                c.procs[node].wait(timeout=30)  # a removed live node stops by itself
            except Exception:  # noqa: BLE001 - it must not outlive the step
                c.kill(node)
        ctx.history.record({"type": "membership", "change": "remove", "node": node,
                            "ok": done, "t": now_ms()})
        print(f"replace-nodes: removed {node}: {done}; members {c.node_ids}", flush=True)
        return done

    def _add(self, ctx: Context) -> str | None:
        c = ctx.cluster
        if not c.spares:
            return None
        new = c.spares.pop(0)
        body = {"id": new, "raft_address": c.net.raft_address(new), "http_url": c.url(new)}
        if not _change(ctx, "POST", "/v1/cluster/nodes", body):
            return None
        member = ctx.rng.choice(c.node_ids)
        c.write_config(new, join=c.url(member))
        c.start(new)
        started = time.monotonic()
        caught_up = wait_for(lambda: _caught_up(ctx, new), CHANGE_TIMEOUT_S, interval=0.2)
        c.node_ids = [*c.node_ids, new]
        catch_up_ms = round((time.monotonic() - started) * 1000)
        ctx.history.record({"type": "membership", "change": "add", "node": new,
                            "ok": caught_up, "t": now_ms(), "catch_up_ms": catch_up_ms})
        print(f"replace-nodes: added {new}: caught up {caught_up} in {catch_up_ms} ms; "
              f"members {c.node_ids}", flush=True)
        return new


def _change(ctx: Context, method: str, path: str, body: object) -> bool:
    """Send a membership change to the members in turn until one accepts it."""
    deadline = time.monotonic() + CHANGE_TIMEOUT_S
    attempt = 0
    key = f"{ctx.tag}-{method}-{path}-{ctx.count}"
    while time.monotonic() < deadline and not ctx.stopping.is_set():
        nodes = ctx.cluster.node_ids
        url = ctx.cluster.url(nodes[attempt % len(nodes)])
        attempt += 1
        reply = call(url, method, path, body, timeout=20.0, idempotency_key=key)
        if reply.status == 200:
            return True
        if reply.status == 404 and method == "DELETE":
            return True  # already removed (an earlier attempt's answer was lost)
        time.sleep(0.5)
    return False


def _caught_up(ctx: Context, node: str) -> bool:
    reply = call(ctx.cluster.url(node), "GET", "/v1/cluster/members", timeout=2.0)
    return (reply.status == 200 and isinstance(reply.body, dict)
            and reply.body.get("catching_up") is None
            and any(m.get("id") == node for m in reply.body.get("members", [])))
