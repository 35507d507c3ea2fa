"""The faults of time and isolation, and their scenarios.

- ``clock_skew``: step one node's wall clock 30 s, through the time shim every
  chaos node runs with (``RAFTQ_TIME_SHIM_FILE``, re-read every tick): in turn
  a follower ahead, the leader ahead, a follower behind, the leader behind.
  Requests through the node carry its wall time; leases must not expire early
  (0 duplicates while a lease is valid, with slow tasks holding leases most of
  the time) and delays and leases must fire within their time plus two ticks,
  which the ``TimerProbe`` measures by this machine's clock.
- ``isolate_node``: cut one node off from both peers. Within 2 s it must stop
  being ready and answer a write with ``503 no_leader`` at once; after the heal
  it must be ready and accept writes again by itself (``IsolationWatch``).

The timers and the isolated node's answers are judged by ``chaos.timecheck``.
"""

from __future__ import annotations

from raftq.chaos.history import now_ms
from raftq.chaos.nemesis import Active, Context, Scenario
from raftq.chaos.net import Faults, partition
from raftq.chaos.probes import IsolationWatch

SKEW_MS = 30_000
# In turn: a follower ahead, the leader ahead, a follower behind, the leader behind.
SKEWS = [("follower", SKEW_MS), ("leader", SKEW_MS), ("follower", -SKEW_MS),
         ("leader", -SKEW_MS)]


def clock_skew(ctx: Context) -> Active:
    which, shift_ms = SKEWS[ctx.count % len(SKEWS)]
    leader = ctx.leader_or_random()
    node = leader if which == "leader" else ctx.rng.choice(ctx.others(leader))
    ctx.cluster.skew(node, shift_ms)
    return Active(f"clock-skew-{which}{shift_ms // 1000:+d}s", [node],
                  lambda: ctx.cluster.skew(node, 0))


def isolate_node(ctx: Context) -> Active:
    node = ctx.rng.choice(ctx.cluster.node_ids)
    ctx.net.apply(Faults(blocked=partition([{node}, set(ctx.others(node))])))
    watch = IsolationWatch(ctx.cluster, ctx.history, node, now_ms(), ctx.tag)
    watch.start()
    ctx.threads.append(watch)

    def heal() -> None:
        ctx.net.apply(Faults())
        watch.healed(now_ms())

    return Active("isolate-node", [node], heal)


TIME_SCENARIOS = [
    Scenario("clock-skew", "a follower's wall clock, then the leader's, stepped 30 s ahead, "
             "then behind (a time shim in the node); slow tasks hold 4 s leases; delays and "
             "leases timed", clock_skew, hold_s=(8.0, 15.0), timers=True,
             workload={"lease_ms": 4000, "work_ms": (200, 2500), "max_tasks": 1,
                       "submit_rate": 0.5, "workers": 8, "batch_max": 4}),
    Scenario("isolate-node", "cut one node off from both peers: not ready and 503 no_leader "
             "within 2 s, ready again by itself after the heal", isolate_node,
             hold_s=(4.0, 10.0)),
]
