"""Run PySyncObj inside the asyncio event loop instead of its own thread.

PySyncObj normally ticks in a thread of its own. In one process with the
HTTP server that means two threads fighting over the GIL on every commit: each
socket write or wake-up hands the GIL over, costing CPU and up to a switch
interval of latency. Here the Raft sockets are registered with the event loop
(``LoopPoller`` implements PySyncObj's poller interface with ``add_reader`` /
``add_writer``) and ``SyncObj.doTick`` runs on the loop: after socket events,
after proposals, and on a short timer for heartbeats and election timeouts.
Everything, the state machine's ``apply`` included, then runs on one thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pysyncobj.syncobj as syncobj_module
from pysyncobj.poller import POLL_EVENT_TYPE

from raftq.raft.wire import WireCipher

EventCallback = Callable[[int, int], None]


class LoopPoller:
    """PySyncObj's ``Poller`` on top of an asyncio loop; ``poll`` never blocks.

    An exception out of PySyncObj's handling of a socket event (the journal
    refusing an append or an acknowledgement for lack of space, corrupt data)
    goes to ``on_error``: asyncio would only log it. The messages already
    read stay buffered until the next read event, and the peer resends what
    was not acknowledged.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, after_event: Callable[[], None],
                 on_error: Callable[[Exception], None]) -> None:
        self._loop = loop
        self._after_event = after_event
        self._on_error = on_error
        self._callbacks: dict[int, EventCallback] = {}

    def subscribe(self, descr: int, callback: EventCallback, event_mask: int) -> None:
        self.unsubscribe(descr)
        self._callbacks[descr] = callback
        if event_mask & POLL_EVENT_TYPE.READ:
            self._loop.add_reader(descr, self._fire, descr, POLL_EVENT_TYPE.READ)
        if event_mask & POLL_EVENT_TYPE.WRITE:
            self._loop.add_writer(descr, self._fire, descr, POLL_EVENT_TYPE.WRITE)

    def unsubscribe(self, descr: int) -> None:
        if self._callbacks.pop(descr, None) is not None:
            self._loop.remove_reader(descr)
            self._loop.remove_writer(descr)

    def poll(self, timeout: float) -> None:
        """The event loop does the waiting."""

    def _fire(self, descr: int, event: int) -> None:
        callback = self._callbacks.get(descr)
        if callback is not None:
            try:
                callback(descr, event)
            except Exception as exc:
                self._on_error(exc)
            self._after_event()


def build_on_loop(factory: Callable[[], Any], poller: LoopPoller) -> Any:
    """Construct a SyncObj whose poller is ``poller`` and whose peer messages
    are sealed by ``raftq.raft.wire``.

    SyncObj creates its poller, binds its server and opens its wake-up pipe in
    its constructor, through the module-level ``createPoller``; swapping that
    function for the duration of the call is the one way in.
    """
    original_poller = syncobj_module.createPoller
    original_encryptor = syncobj_module.getEncryptor
    syncobj_module.createPoller = lambda _kind: poller
    syncobj_module.getEncryptor = WireCipher  # see raftq.raft.wire
    try:
        return factory()
    finally:
        syncobj_module.createPoller = original_poller
        syncobj_module.getEncryptor = original_encryptor
