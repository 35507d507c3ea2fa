"""Where raftq plugs its journal into PySyncObj: the journal factory, a
transport whose acknowledgements leave once the journal is durable, and the
leader's own copy counted toward the commit index only once it is durable."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pysyncobj.syncobj as syncobj_module
from pysyncobj.transport import TCPTransport

from raftq.raft.durable import SnapshotGuard
from raftq.raft.journal import RaftJournal

# The messages that tell another node something is stored or voted for.
ACK_MESSAGES = frozenset({"next_node_idx", "response_vote"})


@contextlib.contextmanager
def journal_for_syncobj(journal: RaftJournal) -> Iterator[None]:
    """SyncObj constructed inside this block uses ``journal``.

    SyncObj's constructor calls the module-level ``createJournal``; swapping
    it for the duration of the call is the one way in (as for the poller).
    """
    original = syncobj_module.createJournal
    syncobj_module.createJournal = lambda _path=None: journal
    try:
        yield
    finally:
        syncobj_module.createJournal = original


def syncing_transport(journal: RaftJournal, guard: SnapshotGuard | None = None,
                      base: type[Any] = TCPTransport,
                      may_vote: Callable[[], bool] | None = None) -> type[Any]:
    """A transport (a subclass of ``base``, PySyncObj's ``TCPTransport`` or a
    subclass of it) whose acknowledgements leave once ``journal`` is durable.

    A follower appends entries and answers ``next_node_idx`` inside one message
    handler (``SyncObj.__onMessageReceived``), and the answer is written to the
    socket at once: this is the only place to hold it back until the entries
    are durable (``RaftJournal.when_durable``: at once after a blocking sync,
    or when the background sync covering them ends, in order; dropped if the
    log is truncated meanwhile, since the leader cannot tell a stale one).
    With ``guard``, a snapshot that failed to load is never acknowledged
    (PySyncObj would answer success right after swallowing the failure).
    Entries the follower already has from the same leader are not
    resent into its log (``skip_known_entries``).
    While ``may_vote`` says no, votes are not sent (a node rebuilt by
    ``--rejoin`` must not vote before its log holds what it once acknowledged).
    """

    class SyncingTransport(base):  # type: ignore[misc]
        def _onMessageReceived(self, node: Any, message: Any) -> None:  # noqa: N802
            if isinstance(message, dict) and message.get("type") == "append_entries":
                skip_known_entries(journal, message)
            super()._onMessageReceived(node, message)

        def send(self, node: Any, message: Any) -> bool:
            if isinstance(message, dict) and message.get("type") in ACK_MESSAGES:
                if (may_vote is not None and message["type"] == "response_vote"
                        and not may_vote()):
                    return False
                if guard is not None:
                    guard.raise_if_failed()
                send = super().send
                journal.when_durable(lambda: send(node, message))
                return True
            return bool(super().send(node, message))

    return SyncingTransport


def skip_known_entries(journal: RaftJournal, message: dict[str, Any]) -> None:
    """Rewrite an AppendEntries that resends entries this follower already has
    from the same leader, so that PySyncObj does not truncate them.

    PySyncObj's leader moves a follower's next index back when an older
    acknowledgement arrives after it sent more (acknowledgements wait for the
    follower's fdatasync, so this is common), and resends from there; its
    follower then deletes every entry after ``prevLogIdx`` (Raft deletes only
    on a conflict) and appends the resent ones: acknowledged, even applied,
    entries leave the log until they are resent, and each resend is written
    again. Entries whose term is the message's term were appended by that
    term's leader, whose log holds them at the same indexes (one leader per
    term, and a leader never drops its own entries): they are kept, and the
    message starts after them.
    """
    if "prevLogIdx" not in message or "transmission" in message or not len(journal):
        return
    prev, term = message["prevLogIdx"], message["term"]
    first, last = journal[0][1], journal[-1][1]
    if not first <= prev < last or term < journal.getCurrentTerm():
        return
    if (journal[prev - first][2] != message["prevLogTerm"]
            or journal[prev + 1 - first][2] != term or journal[-1][2] != term):
        return  # PySyncObj handles the mismatch, or our tail is another leader's
    entries = message.get("entries") or []
    if any(e[1] <= last and journal[e[1] - first][2] != e[2] for e in entries):
        return
    message["entries"] = [e for e in entries if e[1] > last]
    message["prevLogIdx"], message["prevLogTerm"] = last, journal[-1][2]


@contextlib.contextmanager
def own_copy_counted_when_durable(machine: Any, journal: RaftJournal) -> Iterator[None]:
    """Around a leader's ``doTick``: count its own copy of an entry toward the
    commit index only if the entry is durable (``journal.durable_index``).

    PySyncObj's leader counts itself for every entry in its log (``count = 1``
    in ``_onTick``), and with the fdatasync in a thread its newest entries may
    not be on disk yet. For the duration of the tick the follower with the
    highest match index is made to count as if it held only
    ``durable_index``: for an index the leader has synced nothing changes, and
    for one it has not, that follower's vote stands in for the leader's
    uncounted one when it has the entry and nobody counts when no follower
    has it, which is exactly the count without the leader's unsynced copy.
    With no other node the leader syncs before the tick. The match index is
    put back after the tick (no peer message is handled inside one).
    """
    durable = journal.durable_index
    if not machine._isLeader() or not len(journal) or durable >= journal[-1][1]:
        yield
        return
    others = list(machine._SyncObj__otherNodes)
    match: dict[Any, int] = machine._SyncObj__raftMatchIndex
    if not others:
        journal.sync()
        yield
        return
    top = max(others, key=lambda node: match.get(node, 0))
    original, term = match.get(top, 0), machine._SyncObj__raftCurrentTerm
    if original <= durable:
        yield
        return
    match[top] = durable
    try:
        yield
    finally:
        if (match.get(top) == durable and machine._SyncObj__raftCurrentTerm == term
                and top in machine._SyncObj__otherNodes):
            match[top] = original
