"""Where raftq plugs its journal into PySyncObj: the journal factory, and a
transport that makes the journal durable before an acknowledgement leaves."""

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
    subclass of it) that syncs ``journal`` before an acknowledgement leaves.

    A follower appends entries and answers ``next_node_idx`` inside one message
    handler (``SyncObj.__onMessageReceived``), and the answer is written to the
    socket at once: this is the only place to make the entries durable first.
    With ``guard``, a snapshot that failed to load is never acknowledged
    (PySyncObj would answer success right after swallowing the failure).
    While ``may_vote`` says no, votes are not sent (a node rebuilt by
    ``--rejoin`` must not vote before its log holds what it once acknowledged).
    """

    class SyncingTransport(base):  # type: ignore[misc]
        def send(self, node: Any, message: Any) -> bool:
            if isinstance(message, dict) and message.get("type") in ACK_MESSAGES:
                if (may_vote is not None and message["type"] == "response_vote"
                        and not may_vote()):
                    return False
                if guard is not None:
                    guard.raise_if_failed()
                journal.sync()
            return bool(super().send(node, message))

    return SyncingTransport
