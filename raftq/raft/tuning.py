"""PySyncObj's settings for a raftq node: the tuning a node's config can change,
and the fixed choices that raftq's adapter relies on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pysyncobj import SyncObjConf

from raftq.raft.compaction import DEFAULT_MIN_BYTES
from raftq.raft.port import PortLimits

if TYPE_CHECKING:
    from raftq.raft.storage import NodeStorage


# PySyncObj's compaction thresholds, out of reach.
NEVER_ENTRIES = 1 << 62
NEVER_S = 1e12


@dataclass(slots=True)
class RaftTuning:
    """PySyncObj settings; the defaults trade its 100 ms batching for latency."""

    append_entries_period_s: float = 0.05
    # Election timeouts: long enough that a node starved of CPU for a few
    # hundred milliseconds (2 cores, three nodes and their load) does not
    # start needless elections; short enough to fail over in about a second.
    raft_min_timeout_s: float = 0.6
    raft_max_timeout_s: float = 1.2
    leader_fallback_timeout_s: float = 2.0
    connection_timeout_s: float = 1.5
    connection_retry_s: float = 0.5
    log_compaction_min_entries: int = 20_000
    log_compaction_min_time_s: float = 300.0
    log_compaction_min_bytes: int = DEFAULT_MIN_BYTES  # see raftq.raft.compaction
    # Entries per AppendEntries message, in bytes (at most a quarter of the frame limit).
    # PySyncObj's 64 KiB default sent every bigger entry (a batch submit of a few
    # hundred tasks) in pieces ("transmission"): its last piece is marked by
    # comparing with the command's length, not the pickle's, so some entries
    # arrived cut short (an UnpicklingError on the follower, resent forever), and
    # a follower given a transmission from an older point deletes the entries it
    # holds after it, applied ones included, which ``skip_known_entries`` cannot
    # prevent for pieces. Messages of whole entries are handled like any other.
    append_entries_batch_bytes: int = 4 << 20
    max_group: int = 512  # commands coalesced into one entry
    # Entries this node has proposed and not yet seen committed. Proposals
    # arriving while the window is full wait and go together in the next
    # entry: throughput grows with load instead of the entry count.
    max_entries_in_flight: int = 2
    # How long a leader holds a commit index that no new entry carried
    # before sending it alone (raftq.raft.replica.Replica._replicate).
    commit_push_s: float = 0.002
    # How long a peer's resolved address (and a failed resolution) is cached.
    dns_cache_s: float = 5.0
    dns_fail_cache_s: float = 1.0
    # The raft port's defences against strangers (raftq.raft.port).
    port: PortLimits = field(default_factory=PortLimits)


def syncobj_conf(t: RaftTuning, secret: str, storage: NodeStorage, *,
                 serializer: Callable[[str, Any], None],
                 serialize_checker: Callable[[], int],
                 deserializer: Callable[[str], Any]) -> SyncObjConf:
    """The SyncObj configuration of one node: ticked by raftq's event loop, its
    log in ``storage``, snapshots through raftq's msgpack serializer."""
    return SyncObjConf(
        autoTick=False,
        password=secret,
        journalFile=storage.journal_path,
        fullDumpFile=storage.snapshot_path,
        serializer=serializer,
        serializeChecker=serialize_checker,
        deserializer=deserializer,
        appendEntriesUseBatch=True,  # sends driven by _replicate
        appendEntriesPeriod=t.append_entries_period_s,
        # A message holds entries up to this size plus one more entry (PySyncObj's
        # __getEntries), so twice this fits in a frame.
        appendEntriesBatchSizeBytes=min(t.append_entries_batch_bytes,
                                        t.port.max_frame_bytes // 4),
        raftMinTimeout=t.raft_min_timeout_s,
        raftMaxTimeout=t.raft_max_timeout_s,
        leaderFallbackTimeout=t.leader_fallback_timeout_s,
        connectionTimeout=t.connection_timeout_s,
        connectionRetryTime=t.connection_retry_s,
        # raftq decides when to compact (raftq.raft.compaction: by entries and time
        # in the node's own slot, as PySyncObj would, and by the log's size) and
        # calls forceLogCompaction; PySyncObj's own rule never fires.
        logCompactionMinEntries=NEVER_ENTRIES,
        logCompactionMinTime=NEVER_S,
        logCompactionSplit=False,
        commandsWaitLeader=False,
        # Membership follows the replicated state instead (raftq.raft.membership).
        dynamicMembershipChange=False,
        # A peer that comes back at a new address (a container) is found within
        # seconds, not the default ten minutes.
        dnsCacheTime=t.dns_cache_s,
        dnsFailCacheTime=t.dns_fail_cache_s,
        # Without autoTick the constructor retries a failed bind in a busy
        # loop, forever by default, and the event loop never sees SIGTERM.
        maxBindRetries=1,
    )
