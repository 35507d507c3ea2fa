"""A raftq node: config, replica, HTTP API, metrics and the leader's timers (ticks,
schedule fires)."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import ssl
import sys
import time
from typing import Any

import aiohttp

from raftq import aio
from raftq.errors import CorruptData, RaftqError
from raftq.raft.port import PortLimits
from raftq.raft.replica import Replica
from raftq.raft.tuning import RaftTuning
from raftq.server.api import Api
from raftq.server.auth import hash_key
from raftq.server.clock import Clock, Timekeeper
from raftq.server.config import ADMIN_KEY_ENV, NodeConfig
from raftq.server.http import Server
from raftq.server.join import starting_membership
from raftq.server.limits import HttpLimits, raise_open_files_limit
from raftq.server.metrics import Metrics
from raftq.server.ports import check_free
from raftq.server.router import Router
from raftq.server.schedule_timer import ScheduleTimer
from raftq.state.commands import Command, CreateKey, MemberReady, SeedMembers
from raftq.state.keys import HASH
from raftq.state.members import HTTP_URL
from raftq.state.model import Status

log = logging.getLogger(__name__)

GC_YOUNG_PERIOD_S = 1.0
GC_FULL_PERIOD_S = 3600.0
GC_FREEZE_ABOVE = 500_000
REMOVED_STOP_S = 1.0
MEMBERSHIP_CHECK_S = 3.0


class Node:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.start = starting_membership(config)
        self.replica = Replica(
            self_addr=config.raft_address,
            partner_addrs=self.start.partners,
            node_id=config.node_id,
            joined_epoch=self.start.joined_epoch,
            known_epoch=self.start.epoch,
            dial=config.raft_dial,
            data_dir=config.data_dir,
            secret=config.secret,
            proposal_timeout_s=config.proposal_timeout_ms / 1000,
            max_inflight=config.max_inflight,
            durability=config.durability,
            tuning=RaftTuning(
                log_compaction_min_entries=config.log_compaction_min_entries,
                log_compaction_min_time_s=config.log_compaction_min_time_ms / 1000,
                log_compaction_min_bytes=config.log_compaction_min_bytes,
                port=PortLimits(
                    max_frame_bytes=config.raft_max_frame_bytes,
                    handshake_timeout_s=config.raft_handshake_timeout_ms / 1000,
                    idle_timeout_s=config.raft_idle_timeout_ms / 1000,
                    max_unverified=config.raft_max_unverified,
                ),
            ),
        )
        self.clock = Clock.from_env()
        self.timekeeper = Timekeeper(config.node_id, self.clock)
        self.replica.on_applied = self.timekeeper.observe
        self.metrics = Metrics()
        self.metrics.attach_gauges(self._gauges)
        self.replica.on_commit_latency = self.metrics.observe_commit
        self.replica.on_fatal = self._fatal
        self.replica.peers.on_removed = self._removed
        # The error that stopped the node, if one did (corrupt data, a failed fdatasync).
        self.fatal: BaseException | None = None
        # Why the node stopped when it found it is no member any more.
        self.not_a_member: str | None = None
        self.api = Api(config, self.replica, self.metrics, clock=self.clock)
        self.api.status.clock_offset_ms = self.timekeeper.offset_ms
        self.schedule_timer = ScheduleTimer(self.replica, self.clock, self.metrics.registry)
        self._stopping = asyncio.Event()

    def _fatal(self, exc: BaseException) -> None:
        log.critical("node %s stopping: %s", self.config.node_id, exc)
        self.fatal = exc
        self._stopping.set()

    def _removed(self) -> None:
        log.warning("node %s: removed from the cluster; stopping in %g s (its data stays "
                    "in %s, and it is no member any more: see docs/operations.md)",
                    self.config.node_id, REMOVED_STOP_S, self.config.data_dir)
        # A moment for the answers in flight (the removal itself, relayed through
        # this node) to leave before the node stops.
        asyncio.get_running_loop().call_later(REMOVED_STOP_S, self._stopping.set)

    async def _watch_membership(self) -> None:
        """A node without a leader asks the members it knows whether it is still one
        of them; told by a newer membership that it is not (it was removed while it
        was down, and came back with its old data), it stops. The members refuse
        its raft connections anyway (``raftq.raft.port``); this says why."""
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), MEMBERSHIP_CHECK_S)
            except TimeoutError:
                pass
            if self._stopping.is_set() or self.replica.raft_status()["leader"] is not None:
                continue
            state = self.replica.state
            if state.members:
                known = {i: record[HTTP_URL] for i, record in state.members.items()}
                known_epoch = state.member_epoch
            elif self.start.epoch:  # not replayed yet: the membership it started with
                known, known_epoch = self.start.http_urls, self.start.epoch
            else:  # a new cluster, not seeded yet
                continue
            me = (self.config.node_id, self.config.raft_address)
            for member_id, http_url in list(known.items()):
                if member_id == me[0]:
                    continue
                view = await self.api.status.fetch_peer(http_url, "/v1/cluster/members")
                epoch = view.get("epoch") if view else None
                if not isinstance(epoch, int) or epoch <= known_epoch:
                    continue
                rows = view.get("members") if view else None
                if isinstance(rows, list) and not any(
                        isinstance(m, dict) and (m.get("id"), m.get("raft_address")) == me
                        for m in rows):
                    self.not_a_member = (f"the cluster's membership (epoch {epoch}, from "
                                         f"{member_id}) no longer has this node; its data in "
                                         f"{self.config.data_dir} is stale: wipe it before "
                                         "using this host again (docs/operations.md)")
                    log.error("node %s: %s", self.config.node_id, self.not_a_member)
                    self._stopping.set()
                    return

    async def _seed_members(self) -> None:
        """A new cluster: the first leader records the configured nodes as the
        membership (one command whatever node proposes it; a no-op once there is one)."""
        seed = self.start.seed
        if seed is None:
            return
        cmd = Command(SeedMembers(seed), "seed-members", 0)
        while not self._stopping.is_set() and not self.replica.state.members:
            if self.replica.is_leader():
                cmd.now_ms = self.clock.wall_ms()
                try:
                    result = await self.replica.propose(cmd, timeout_s=5.0)
                except RaftqError as exc:
                    log.debug("membership not recorded yet: %s", exc)
                else:
                    if isinstance(result, dict) and "error" in result:
                        log.error("the configured membership was refused: %s",
                                  result["message"])
                        return
            try:
                await asyncio.wait_for(self._stopping.wait(), 0.2)
            except TimeoutError:
                pass

    async def _report_caught_up(self) -> None:
        """Added by the latest change: once this node's log holds the leader's commit
        index, say so (``MemberReady``); the next change may then be made."""
        node_id = self.config.node_id
        cmd = Command(MemberReady(node_id), "", 0)
        while not self._stopping.is_set():
            state = self.replica.state
            status = self.replica.raft_status()
            if (state.last_added == node_id and status["leader"] is not None
                    and status["applied_index"] >= status["leader_commit_index"] > 0):
                cmd.request_id = f"ready:{node_id}:{state.member_epoch}"
                cmd.now_ms = self.clock.wall_ms()
                try:
                    await self.replica.propose(cmd, timeout_s=5.0)
                except RaftqError as exc:
                    log.debug("caught up, not said yet: %s", exc)
            try:
                await asyncio.wait_for(self._stopping.wait(), 0.5)
            except TimeoutError:
                pass

    def _gauges(self) -> dict[str, Any]:
        state = self.replica.state
        snap = {
            "counts": dict(state.counts),
            "ready_counts": dict(state.ready_counts),
            "leased": len(state.by_status[Status.LEASED]),
            "dead": len(state.by_status[Status.DEAD]),
            "workers": len(state.workers),
        }
        snap["raft"] = self.replica.raft_status()
        snap["clock_offset_ms"] = self.timekeeper.offset_ms()
        snap["raft_port"] = self.replica.port_stats
        snap["storage_problem"] = self.replica.storage.problem
        return snap

    def make_server(self) -> Server:
        router = Router()
        router.add_all(self.api.routes())
        c = self.config
        limits = HttpLimits(header_timeout_s=c.http_header_timeout_ms / 1000,
                            body_timeout_s=c.http_body_timeout_ms / 1000,
                            idle_timeout_s=c.http_idle_timeout_ms / 1000,
                            max_connections=c.http_max_connections)
        return Server(router, self.api.middleware,
                      max_body=self.config.max_payload_bytes * 2 + 65536, limits=limits,
                      on_refused=self.metrics.refused)

    async def _tick_loop(self) -> None:
        """The leader proposes a tick so time passes: leases expire, delayed tasks
        wake up (raftq.server.clock measures it)."""
        period = self.config.tick_ms / 1000
        while not self._stopping.is_set():
            started = time.monotonic()
            self.clock.refresh()
            if self.replica.is_leader():
                tick = self.timekeeper.next_tick(self.replica.state.ticks)
                try:
                    await self.replica.propose(Command(tick, "", tick.wall_ms), timeout_s=2.0)
                except RaftqError as exc:
                    log.debug("tick not committed: %s", exc)
            delay = max(period - (time.monotonic() - started), 0.0)
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except TimeoutError:
                pass

    async def _install_bootstrap_keys(self) -> None:
        """Propose this node's configured keys (by hash) until each name is in the state.

        Idempotent everywhere: a name that ever existed is left alone, and the
        request id is derived from the key, so every node's proposal of the same
        key is one command."""
        for name, role, token in self.config.bootstrap_keys:
            digest = hash_key(token)
            cmd = Command(CreateKey(name, role, digest, f"bootstrap:{self.config.node_id}",
                                    bootstrap=True), f"bootstrap:{name}:{digest[:16]}", 0)
            while not self._stopping.is_set():
                record = self.replica.state.keys.get(name)
                if record is not None:
                    if record[HASH] != digest:
                        log.warning("the %s key of this node's config is not the installed "
                                    "key %r; it is not used (see docs/security.md)", role, name)
                    break
                if self.replica.raft_status()["leader"]:
                    cmd.now_ms = self.clock.wall_ms()
                    try:
                        result = await self.replica.propose(cmd, timeout_s=5.0)
                    except RaftqError as exc:
                        log.debug("bootstrap key %s not committed yet: %s", name, exc)
                    else:
                        if isinstance(result, dict) and "error" in result:
                            log.error("bootstrap key %s refused: %s", name, result["message"])
                            break
                        continue
                try:
                    await asyncio.wait_for(self._stopping.wait(), 0.2)
                except TimeoutError:
                    pass

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.config.tls_cert_file or not self.config.tls_key_file:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.config.tls_cert_file, self.config.tls_key_file)
        return context

    async def _collect_garbage(self) -> None:
        """Python's automatic full collections walk every object: with a million
        queued tasks that stops the node for about a second, long enough for
        Raft to hold an election. Young objects are collected every second
        instead, and the old generation once an hour. More young objects than
        ``GC_FREEZE_ABOVE`` come from loading the state at start-up (a snapshot,
        a replayed log): they are frozen (``gc.freeze``: never walked again)
        instead of walked for most of a second."""
        gc.disable()
        last_full = time.monotonic()
        try:
            while not self._stopping.is_set():
                try:
                    await asyncio.wait_for(self._stopping.wait(), GC_YOUNG_PERIOD_S)
                except TimeoutError:
                    pass
                if gc.get_count()[0] > GC_FREEZE_ABOVE:
                    gc.freeze()
                else:
                    gc.collect(1)
                if time.monotonic() - last_full >= GC_FULL_PERIOD_S:
                    gc.collect()
                    last_full = time.monotonic()
        finally:
            gc.enable()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        raise_open_files_limit(self.config.http_max_connections
                               + self.config.raft_max_unverified)
        # Off from the start, not from ``_collect_garbage``'s first turn: loading the
        # snapshot and replaying the log (the first ticks) make millions of objects,
        # and the automatic collections walking them more than doubled a restart.
        gc.disable()
        self.replica.start(loop)
        self.api.status.peer_session = aiohttp.ClientSession()
        server = self.make_server()
        host, port = self.config.http_host_port
        await server.start(host, port, ssl=self.ssl_context())
        log.info("node %s: %s on %s, raft on %s, data in %s; members from %s",
                 self.config.node_id, self.config.scheme, self.config.http_address,
                 self.config.raft_address, self.config.data_dir, self.start.source)
        if not self.config.bootstrap_keys:
            log.info("node %s: no bootstrap admin key configured (admin_key_file or %s); "
                     "keys come from the cluster's state", self.config.node_id, ADMIN_KEY_ENV)
        tasks = [asyncio.create_task(self._tick_loop()),
                 asyncio.create_task(self._collect_garbage()),
                 asyncio.create_task(self._install_bootstrap_keys()),
                 asyncio.create_task(self._seed_members()),
                 asyncio.create_task(self._report_caught_up()),
                 asyncio.create_task(self._watch_membership()),
                 asyncio.create_task(self.schedule_timer.run(self._stopping))]
        await self._stopping.wait()
        log.info("node %s: shutting down", self.config.node_id)
        for task in tasks:
            task.cancel()
        await server.close()
        await self.api.status.peer_session.close()
        self.replica.stop()
        log.info("node %s: stopped", self.config.node_id)


def run_node(config: NodeConfig) -> None:
    """Run the node until SIGTERM; ``ConfigError`` if one of its ports is taken;
    exit with status 2 and one line on stderr when its data cannot be trusted
    (corrupt at start, or a failed fdatasync)."""
    check_free(config.http_address, "http_address")
    check_free(config.raft_address, "raft_address")
    logging.basicConfig(
        level=getattr(logging, config.log_level.upper(), logging.INFO),
        format=f"%(asctime)s {config.node_id} %(levelname)s %(name)s: %(message)s",
    )
    try:
        node = Node(config)  # ConfigError: a `join` that failed
        aio.run(node.run())
    except CorruptData as exc:
        print(f"raftq node {config.node_id}: refusing to start: {exc}", file=sys.stderr)
        sys.exit(2)
    if node.fatal is not None:
        print(f"raftq node {config.node_id}: stopped: {node.fatal}", file=sys.stderr)
        sys.exit(2)
    if node.not_a_member is not None:
        print(f"raftq node {config.node_id}: stopped: {node.not_a_member}", file=sys.stderr)
        sys.exit(3)
