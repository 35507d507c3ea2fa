"""Group commit, in a thread: what of the Raft log is durable, the one
``fdatasync`` in flight, and who waits for durability.

``GroupCommit`` is the part of ``raftq.raft.journal.RaftJournal`` that makes
the log durable (``sync``, ``sync_soon``, ``when_durable``; the journal's
docstring says when to call which); ``SyncTracker`` its bookkeeping.

Contract:

- Every change to the log's entries (an add, a truncation, a rewrite) counts
  one in ``seq``. A sync records the ``seq`` and the log's last index when it
  starts; once its ``fdatasync`` returns, every change counted up to then is
  durable (``durable_seq``), and so is the log up to that index
  (``durable_index``), less whatever a truncation since removed.
- At most one sync is in flight, and the journal writes its next frame only
  once it is done: the file never holds more than one frame that was not
  fsynced, so a power cut can only tear the last frame (what the journal's
  scan cuts off). Entries added meanwhile wait in the journal's buffer and
  go out together in the next frame, under one ``fdatasync``.
- ``when_durable`` callbacks run in order, on the owner's thread (from
  ``collect``), once every change made before they were registered is
  durable. A callback registered before a truncation is dropped instead: it
  was an acknowledgement of entries that may no longer be in the log, and
  PySyncObj's acknowledgements carry no term that would let the leader tell.
- The ``fdatasync`` runs in one daemon thread; ``notify`` is called from that
  thread when it returns, and the owner then calls ``collect`` on its own
  thread. Nothing else here is touched by the thread.
- The thread can be set aside (``on_loop``: a follower, or a leader with a
  lone proposal): then ``when_durable`` only queues its callback and asks
  for a ``wake``, and the owner's next ``sync_soon`` syncs on its own
  thread, for everything appended in that event-loop turn at once. No hand-off to a thread and back:
  on a follower the acknowledgement that a commit waits for leaves one
  ``fdatasync`` after the entries arrived. Only while the disk is fast: once
  an ``fdatasync`` (on the loop or in the thread) took ``SLOW_SYNC_S`` or
  more, the syncs go to the thread until one is fast again, so that a disk
  busy with something else (a snapshot being written, another program)
  does not hold the loop: a leader's loop held past the election timeout
  sends no heartbeats, and its followers elect another.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from raftq.raft.durable import FileOps

log = logging.getLogger(__name__)

# An fdatasync this slow sends the syncs to the thread (see the module docstring).
SLOW_SYNC_S = 0.01


class SyncTracker:
    def __init__(self) -> None:
        self.seq = 0  # changes made to the log's entries
        self.durable_seq = 0  # changes a finished sync covers
        self.durable_index = 0  # the log's last index whose prefix is durable
        self.truncations = 0
        self._in_flight: tuple[int, int] | None = None  # (seq, last index) at its start
        self._future: Future[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._notify: Callable[[], object] | None = None
        self._wake: Callable[[], object] | None = None
        self.on_loop = False  # the thread set aside: sync_soon syncs on the owner's thread
        self.last_sync_s = 0.0  # how long the latest fdatasync took, here or in the thread
        self._waiters: deque[tuple[int, int, Callable[[], None]]] = deque()

    # --------------------------------------------------------- bookkeeping

    @property
    def clean(self) -> bool:
        return self.durable_seq >= self.seq

    @property
    def in_flight(self) -> bool:
        return self._in_flight is not None

    @property
    def background(self) -> bool:
        return self._executor is not None and not self.on_loop

    @property
    def deferred(self) -> bool:
        """A cluster node with the thread set aside: syncs wait for the owner's
        next ``sync_soon`` (which ``wake`` asks for)."""
        return self._executor is not None and self.on_loop

    def changed(self) -> None:
        self.seq += 1

    def truncated(self, first_gone: int) -> None:
        """Entries from index ``first_gone`` on left the log."""
        self.seq += 1
        self.truncations += 1
        self.durable_index = min(self.durable_index, first_gone - 1)
        if self._in_flight is not None:
            seq, index = self._in_flight
            self._in_flight = (seq, min(index, first_gone - 1))

    def mark_durable(self, seq: int, index: int) -> None:
        self.durable_seq = max(self.durable_seq, seq)
        self.durable_index = index

    # ------------------------------------------------------------ the thread

    def run_in_background(self, notify: Callable[[], object],
                          wake: Callable[[], object] | None = None) -> None:
        """From now on ``start`` runs the fdatasync in a thread and calls
        ``notify`` (from that thread) when it returns; ``wake`` (on the owner's
        thread) asks for a ``sync_soon`` while the thread is set aside."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="raftq-journal-sync")
        self._notify = notify
        self._wake = wake

    def wake(self) -> None:
        if self._wake is not None:
            self._wake()

    def start(self, fdatasync: Callable[[int], None], fd: int, index: int) -> None:
        """Sync ``fd`` in the thread; it covers every change counted so far."""
        assert self._executor is not None and self._in_flight is None
        self._in_flight = (self.seq, index)
        self._future = self._executor.submit(self.timed, fdatasync, fd)
        self._future.add_done_callback(self._done)

    def timed(self, fdatasync: Callable[[int], None], fd: int) -> None:
        started = time.perf_counter()
        try:
            fdatasync(fd)
        finally:
            self.last_sync_s = time.perf_counter() - started

    def _done(self, _: Future[None]) -> None:
        if self._notify is not None:
            try:
                self._notify()
            except RuntimeError:  # the owner's loop is closed: nobody is waiting
                pass

    def finish(self, wait: bool) -> OSError | None:
        """Take the in-flight sync's outcome (waiting for it if ``wait``); the
        error its fdatasync raised, if any. Nothing to take: None."""
        future, span = self._future, self._in_flight
        if future is None or span is None or not (wait or future.done()):
            return None
        self._future = self._in_flight = None
        try:
            future.result()
        except OSError as exc:
            return exc
        self.mark_durable(*span)
        return None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # --------------------------------------------------------------- waiters

    def add_waiter(self, callback: Callable[[], None]) -> bool:
        """Queue ``callback`` for durability; False if it may run right now."""
        if not self._waiters and self.clean:
            return False
        self._waiters.append((self.seq, self.truncations, callback))
        return True

    def ready_waiters(self) -> list[Callable[[], None]]:
        """The callbacks whose changes are now durable, in order (dropping the
        ones a truncation made stale)."""
        ready = []
        while self._waiters and self._waiters[0][0] <= self.durable_seq:
            _, truncations, callback = self._waiters.popleft()
            if truncations == self.truncations:
                ready.append(callback)
            else:
                log.debug("journal: an acknowledgement dropped: the log was truncated")
        return ready


class GroupCommit:
    """The journal's syncs; the journal provides the file and these attributes."""

    _sync: SyncTracker
    _durable: bool
    _fd: int
    _ops: FileOps
    _failed: OSError | None

    def _check_usable(self) -> None:
        raise NotImplementedError

    def _last_index(self) -> int:
        raise NotImplementedError

    def _write_frame(self) -> bool:
        """Write what is buffered as one frame (no sync); whether there was any."""
        raise NotImplementedError

    @property
    def dirty(self) -> bool:
        """Some change to the entries is not durable yet."""
        return not self._sync.clean

    @property
    def durable_index(self) -> int:
        """The last index up to which the log, as it is now, is durable."""
        return self._sync.durable_index

    @property
    def failed(self) -> OSError | None:
        """The fdatasync error that made the journal unusable, if any."""
        return self._failed

    def sync(self) -> None:
        """Make every change durable now: write what is buffered as one frame;
        with "fsync", one fdatasync (after the one in flight, if any)."""
        self._check_usable()
        self._finish_in_flight(wait=True)
        if self._sync.clean:
            return
        seq, index = self._sync.seq, self._last_index()
        if self._write_frame() and self._durable:
            try:
                self._sync.timed(self._ops.fdatasync, self._fd)
            except OSError as exc:
                self._failed = exc
                raise
        self._sync.mark_durable(seq, index)
        self._release_waiters()

    def sync_in_background(self, notify: Callable[[], object],
                           wake: Callable[[], object] | None = None) -> None:
        """Run the fdatasync in a thread from now on (durability "fsync" only);
        ``notify`` is called from that thread when one returns. ``wake`` is
        called (on this thread) when a ``when_durable`` waits for the next
        ``sync_soon`` because the thread is set aside (``sync_on_loop``)."""
        if self._durable:
            self._sync.run_in_background(notify, wake)

    def sync_on_loop(self, on_loop: bool) -> None:
        """Set the thread aside (True) or take it back (False). A follower
        syncs on its loop, once per turn (``sync_soon``): its acknowledgement
        leaves with no hand-off to a thread and back; so does a leader with a
        lone proposal. A busy leader syncs in the thread, serving clients
        meanwhile (``raftq.raft.replica.Replica._sync_on_loop``). Not while the
        disk is slow (``SLOW_SYNC_S``)."""
        self._sync.on_loop = on_loop and self._sync.last_sync_s < SLOW_SYNC_S

    def sync_soon(self) -> None:
        """Write what is buffered and start its sync in the thread, unless a sync
        is in flight (its end starts the next); without the thread, ``sync()``."""
        if not self._sync.background:
            self.sync()
            return
        self._check_usable()
        if self._sync.in_flight or self._sync.clean:
            return
        index = self._last_index()
        if self._write_frame():
            self._sync.start(self._ops.fdatasync, self._fd, index)
        else:  # only unwritten entries were dropped: nothing new to make durable
            self._sync.mark_durable(self._sync.seq, index)
            self._release_waiters()

    def sync_finished(self) -> None:
        """After ``notify``: take the sync's outcome, run the callbacks it made
        ready, start the next sync. Raises the fdatasync's error, if it failed."""
        self._finish_in_flight(wait=False)
        self._check_usable()
        self._release_waiters()
        self.sync_soon()

    def when_durable(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once every change made so far is durable (now, if
        it is); it is dropped if the log is truncated meanwhile."""
        if self._sync.deferred:
            if self._sync.add_waiter(callback):
                self._sync.wake()  # the next sync_soon covers it, with the turn's others
            else:
                callback()
        elif not self._sync.background:
            self.sync()
            callback()
        elif self._sync.add_waiter(callback):
            self.sync_soon()
        else:
            callback()

    def _finish_in_flight(self, wait: bool) -> None:
        error = self._sync.finish(wait)
        if error is not None:
            self._failed = error
            raise error

    def _release_waiters(self) -> None:
        for callback in self._sync.ready_waiters():
            callback()
