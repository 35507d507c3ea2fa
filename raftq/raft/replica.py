"""The PySyncObj adapter: one replicated entry point, futures for asyncio.

PySyncObj runs on the event loop (see ``raftq.raft.loop``). It calls
``_Machine.apply_entry`` with each committed entry (encoded command bytes) in
log order on every node, on the same thread as the HTTP handlers, so handlers
read the state without locking.

Proposals made in the same event-loop turn are coalesced into one Raft entry
(group commit, ``raftq.raft.proposals``); when the leader sends AppendEntries
is ``raftq.raft.pacing``'s.

Hazards handled here (see DESIGN.md): ``apply_entry`` never raises (a raising
entry wedges PySyncObj); the snapshot serializer is msgpack, never pickle; the
cluster password is mandatory because PySyncObj's peer protocol is pickle.

The log is ``raftq.raft.journal``. With durability "fsync" in a cluster a
busy leader's fdatasync runs in a thread (group commit: the loop keeps
appending and serving while a sync runs, and the next sync covers everything
appended meanwhile); a follower, and a leader with a lone proposal, sync on
the loop once per turn (``_sync_on_loop``). A follower's acknowledgement
leaves once the entries it covers are durable, and the leader counts its own
copy toward the commit index only up to what it has synced
(``own_copy_counted_when_durable`` around each tick). A client is answered
only after the commit. A full disk means 507 for client writes, and data
that cannot be trusted stops the node through ``on_fatal`` (see
``raftq.raft.storage``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from pysyncobj import SyncObj, SyncObjException, replicated

from raftq.errors import ConfigError, InsufficientStorage, NoLeader, Overloaded
from raftq.raft.compaction import Compaction
from raftq.raft.contact import leader_in_contact, raft_status
from raftq.raft.durable import Durability
from raftq.raft.loop import LoopPoller, build_on_loop
from raftq.raft.membership import PeerSet, hand_over, peer_silence, touches_membership
from raftq.raft.pacing import AppendPacer
from raftq.raft.plug import (
    journal_for_syncobj,
    own_copy_counted_when_durable,
    syncing_transport,
)
from raftq.raft.port import GuardedTransport, PortStats
from raftq.raft.proposals import Proposals
from raftq.raft.snapshots import read_snapshot
from raftq.raft.stall import StallGuard
from raftq.raft.storage import NodeStorage
from raftq.raft.tuning import RaftTuning, syncobj_conf
from raftq.state.commands import Command, Group
from raftq.state.encoding import DecodeError, decode
from raftq.state.machine import State

log = logging.getLogger(__name__)

# How often Raft's timers are looked at when no socket event wakes it.
TICK_PERIOD_S = 0.01


class _Machine(SyncObj):  # type: ignore[misc]
    def __init__(self, self_addr: str, partners: list[str], conf: Any, owner: Replica,
                 transport_class: type[Any]):
        self._owner = owner
        super().__init__(self_addr, partners, conf, transportClass=transport_class)

    @replicated  # type: ignore[untyped-decorator]
    def apply_entry(self, data: bytes) -> Any:
        # PySyncObj applies entry raftLastApplied + 1 and counts it after.
        return self._owner._apply_entry(data, self.raftLastApplied + 1)


class Replica:
    def __init__(
        self,
        *,
        self_addr: str,
        partner_addrs: list[str],
        data_dir: str,
        secret: str,
        tuning: RaftTuning | None = None,
        proposal_timeout_s: float = 5.0,
        max_inflight: int = 10_000,
        durability: Durability = "fsync",
        node_id: str = "",
        joined_epoch: int = 0,
        known_epoch: int = 0,
        dial: dict[str, str] | None = None,
    ) -> None:
        if not secret:
            raise ConfigError(
                "the cluster secret is empty: every node needs the same non-empty `secret` "
                "(or `secret_file`, or RAFTQ_CLUSTER_SECRET); an open raft port is remote "
                "code execution"
            )
        self.tuning = tuning or RaftTuning()
        self.self_addr = self_addr
        self.data_dir = data_dir
        # PySyncObj's peers, following the replicated membership (raftq.raft.membership).
        dial = dial or {}
        self.peers = PeerSet(node_id, self_addr, data_dir, durability, joined_epoch,
                             known_epoch, addresses=[dial.get(a, a) for a in partner_addrs],
                             dial=dial)
        self.proposal_timeout_s = proposal_timeout_s
        self.max_inflight = max_inflight
        self.state = State()
        self.port_stats = PortStats()  # what the raft port's guard did (raftq.raft.port)
        self._secret = secret
        self._machine: _Machine | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.proposals = Proposals(self.tuning, proposal_timeout_s, self._send_entry,
                                   self._after_send)
        self._changed = asyncio.Event()
        self._tick_scheduled = False
        self._periodic: asyncio.Handle | None = None
        self.storage = NodeStorage(data_dir, durability)
        self.compaction = Compaction(self.tuning.log_compaction_min_entries,
                                     self.tuning.log_compaction_min_time_s,
                                     self.tuning.log_compaction_min_bytes, time.monotonic())
        self.pacer = AppendPacer(self.tuning.commit_push_s, lambda: self._machine)
        self.stall = StallGuard(self.tuning.raft_min_timeout_s / 2)
        # Called once with the error that must stop the node (corrupt data, a failed
        # fdatasync); without it the error is raised out of the tick.
        self.on_fatal: Callable[[BaseException], None] | None = None
        self.fatal: BaseException | None = None
        # Called with each entry this node applies, in log order, and its result.
        self.on_applied: Callable[[Command | Group, Any], None] | None = None
        # Called with each entry's log index and the status changes its apply made
        # (``State.changes``); and with the index a restored snapshot ends at.
        self.on_changes: Callable[[int, list[Any], State], None] | None = None
        self.on_restored: Callable[[int], None] | None = None

    # ------------------------------------------------------------- lifecycle

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.proposals.loop = loop
        self._changed = asyncio.Event()
        storage = self.storage
        journal = storage.open()  # CorruptDataError: the node must not start
        if self.partner_addrs:
            journal.sync_in_background(
                lambda: loop.call_soon_threadsafe(self._on_synced), self._schedule_tick)
        t = self.tuning
        conf = syncobj_conf(t, self._secret, storage, serializer=self._serialize,
                            serialize_checker=self._snapshot_status,
                            deserializer=storage.guard.wrap(self._deserialize))
        poller = LoopPoller(loop, self._schedule_tick, self._on_raft_error)
        transport = syncing_transport(journal, storage.guard,
                                      base=GuardedTransport.with_limits(t.port,
                                                                        self.port_stats),
                                      may_vote=storage.may_vote)
        try:
            with journal_for_syncobj(journal):
                self._machine = build_on_loop(
                    lambda: _Machine(self.self_addr, self.partner_addrs, conf, self, transport),
                    poller)
        except SyncObjException:
            storage.close()
            raise ConfigError(f"`raft_address` {self.self_addr} cannot be bound (in use?)",
                              field="raft_address") from None
        except BaseException:
            storage.close()
            raise
        journal.keep_from = lambda: self.compaction.kept(self._machine, journal)[0]
        self._periodic = loop.call_soon(self._periodic_tick)

    def stop(self) -> None:
        if self._periodic is not None:
            self._periodic.cancel()
            self._periodic = None
        self.pacer.cancel()
        if self._machine is not None:
            self._machine.destroy()  # closes the journal (a last sync if it can)
            self._machine = None

    # ---------------------------------------------------------------- ticking

    def _schedule_tick(self) -> None:
        """Run one Raft tick soon (socket events and proposals coalesce into it)."""
        if not self._tick_scheduled and self._loop is not None:
            self._tick_scheduled = True
            self._loop.call_soon(self._tick)

    def _tick(self) -> None:
        self._tick_scheduled = False
        machine = self._machine
        if machine is None:
            return
        try:
            self.stall.before_tick(machine)  # raftq.raft.stall
            self.storage.keep_out_of_leadership(machine, self.tuning.raft_max_timeout_s)
            journal = self.storage.journal
            journal.sync_on_loop(self._sync_on_loop(machine))
            journal.sync_soon()
            with own_copy_counted_when_durable(machine, journal):
                machine.doTick(0.0)  # where the leader counts copies toward the commit
            self.storage.check()
            if machine._isLeader():
                assert self._loop is not None
                self.pacer.after_tick(machine, self._loop)  # raftq.raft.pacing
                journal.sync_soon()  # entries added by the tick, while followers write theirs
        except Exception as exc:
            self._on_raft_error(exc)
        finally:
            self.stall.after_tick(machine)

    def _sync_on_loop(self, machine: _Machine) -> bool:
        """Whether the journal syncs on the loop rather than in its thread: on a
        follower (its acknowledgement then leaves one fdatasync after the
        entries came, with no hand-off to a thread and back), and on a leader
        with one entry in flight and nothing waiting to be proposed (a lone
        proposal: the loop has nothing else to do while the disk works, and
        the hand-off would cost the call a thread's wake-up twice). A busy
        leader syncs in the thread and serves clients meanwhile."""
        return not machine._isLeader() or self.proposals.lone

    def _on_synced(self) -> None:
        """The journal's background fdatasync returned (called on the loop)."""
        if self._machine is None:
            return
        try:
            self.storage.journal.sync_finished()  # sends the acknowledgements it held
        except Exception as exc:
            self._on_raft_error(exc)
        self._schedule_tick()  # a leader may now count its own copy

    def _on_raft_error(self, exc: BaseException) -> None:
        """An error out of a tick or out of PySyncObj's handling of a peer message."""
        if self.storage.is_fatal(exc):
            self._fail(exc)
        elif not self.storage.is_full(exc):  # PySyncObj's own thread logs and carries on
            log.error("raft tick failed", exc_info=exc)

    def _fail(self, exc: BaseException) -> None:
        if self.fatal is None:
            self.fatal = exc
            self.stop()  # no more acknowledgements from this node
            if self.on_fatal is None:
                raise exc
            self.on_fatal(exc)

    def _periodic_tick(self) -> None:
        """Heartbeats, election timeouts and reconnects need time to pass."""
        self._tick()
        try:
            self.storage.watch()
            self.peers.settle(self._machine)
            if self._machine is not None and not self.storage.snapshots.busy:
                self.compaction.force_if_due(self._machine, self.storage.journal,
                                             self.storage.snapshots.last_bytes)
        except Exception as exc:  # handled like a tick's: the ticks must go on
            self._on_raft_error(exc)
        if self._loop is not None and self._machine is not None:
            self._periodic = self._loop.call_later(TICK_PERIOD_S, self._periodic_tick)

    # ------------------------------------------------ called by PySyncObj

    def _apply_entry(self, data: bytes, index: int) -> Any:
        try:
            cmd = decode(data)
        except DecodeError as exc:
            log.error("undecodable log entry skipped: %s", exc)
            return {"error": "bad_command", "message": str(exc)}
        state = self.state
        if self.on_changes is None:
            result = state.apply(cmd)
        else:
            changes: list[Any] = []
            state.changes = changes
            try:
                result = state.apply(cmd)
            finally:
                state.changes = None
            try:
                self.on_changes(index, changes, state)
            except Exception:  # an observer's bug must not wedge the log
                log.exception("on_changes hook failed")
        if touches_membership(cmd):
            self._follow_members()
        if self.on_applied is not None:
            try:
                self.on_applied(cmd, result)
            except Exception:  # an observer's bug must not wedge the log
                log.exception("on_applied hook failed")
        self._notify_changed()
        return result

    def _follow_members(self) -> None:
        state = self.state
        self.peers.follow(self._machine, state.members, state.member_epoch)

    def _notify_changed(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def _serialize(self, tmp_filename: str, raft_data: Any) -> None:
        self.storage.snapshots.write(tmp_filename, self.state, raft_data)

    def _snapshot_status(self) -> int:
        return self.storage.snapshots.status()

    def _deserialize(self, filename: str) -> tuple[Any, Any, Any]:
        state, last, before_last, cluster = read_snapshot(
            filename, self.storage.take_verified(filename))
        self.storage.journal.align_to_snapshot(before_last, last)
        self.state = state
        self._follow_members()
        if self.on_restored is not None:
            self.on_restored(int(last[1]))  # a log entry: (command, index, term)
        self._notify_changed()
        return last, before_last, cluster

    # ----------------------------------------------------- the asyncio side

    async def wait_changed(self, timeout_s: float) -> None:
        """Return after the next applied entry, or after ``timeout_s``."""
        try:
            await asyncio.wait_for(self._changed.wait(), timeout_s)
        except TimeoutError:
            pass

    async def propose(self, cmd: Command, timeout_s: float | None = None) -> Any:
        """Commit ``cmd`` through Raft and return the state machine's result."""
        machine = self._machine
        if machine is None or self._loop is None:
            raise NoLeader("this node is not running")
        problem = self.storage.problem
        if problem is not None:
            raise InsufficientStorage(f"this node cannot write: {problem}; "
                                      "try another node, or retry once space is freed")
        leader, why = leader_in_contact(machine, self.tuning.raft_max_timeout_s)
        if leader is None:
            raise NoLeader(f"this node has no leader right now ({why}); retry shortly")
        inflight = self.proposals.inflight
        if inflight >= self.max_inflight:
            raise Overloaded(f"{inflight} proposals in flight on this node; retry shortly")
        return await self.proposals.propose(cmd, timeout_s)

    def add_to_next_entry(self, cmd: Command) -> asyncio.Future[Any]:
        """Put ``cmd`` in the entry being formed; for ``before_flush`` hooks."""
        return self.proposals.add_to_next_entry(cmd)

    @property
    def before_flush(self) -> Callable[[list[Command]], None] | None:
        """Called with the commands about to be proposed, just before they go
        into entries; it may add more with ``add_to_next_entry``."""
        return self.proposals.before_flush

    @before_flush.setter
    def before_flush(self, hook: Callable[[list[Command]], None] | None) -> None:
        self.proposals.before_flush = hook

    @property
    def on_commit_latency(self) -> Callable[[float], None] | None:
        return self.proposals.on_commit_latency

    @on_commit_latency.setter
    def on_commit_latency(self, hook: Callable[[float], None] | None) -> None:
        self.proposals.on_commit_latency = hook

    def _send_entry(self, data: bytes, on_result: Callable[[Any, int], None]) -> None:
        machine = self._machine
        assert machine is not None
        machine.apply_entry(data, callback=on_result)

    def _after_send(self) -> None:
        self._tick()
        if not self.partner_addrs:
            # Alone, the tick appended the entries after counting copies:
            # a second one commits them now, not at the periodic tick.
            self._tick()

    # ---------------------------------------------------------------- status

    @property
    def partner_addrs(self) -> list[str]:
        return self.peers.addresses

    def raft_status(self) -> dict[str, Any]:
        return raft_status(self._machine, self.partner_addrs, self.tuning.raft_max_timeout_s
                           ) | {"elections_started": self.stall.elections_started}

    def transfer_leadership(self) -> bool:
        return hand_over(self._machine)

    def peer_silence(self) -> dict[str, float]:
        return peer_silence(self._machine)

    def applied_index(self) -> int:
        machine = self._machine
        return int(machine.raftLastApplied) if machine is not None else 0

    def is_leader(self) -> bool:
        machine = self._machine
        return machine is not None and bool(machine._isLeader())
