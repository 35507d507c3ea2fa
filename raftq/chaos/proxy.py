"""A TCP fault proxy for the raft links, used where network namespaces are not.

Each route listens on one port and forwards to one node's raft port; it knows
which link (pair of nodes) it carries. A blocked link aborts its connections
and holds new ones open without forwarding (a black hole: the peer's own
timeouts notice, as with dropped packets). A lossy link delays a chunk with
the given probability by a retransmission timeout, keeping the stream's order,
which is what TCP turns packet loss into.

The proxy runs its own asyncio loop in a daemon thread; ``set_faults`` may be
called from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections import defaultdict

Link = frozenset[str]

RETRANSMIT_S = 0.2


class FaultProxy:
    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy",
                                        daemon=True)
        self._servers: list[asyncio.base_events.Server] = []
        self._blocked: set[Link] = set()
        self._loss: dict[Link, float] = {}
        self._live: dict[Link, set[asyncio.StreamWriter]] = defaultdict(set)
        self._held: dict[Link, set[asyncio.StreamWriter]] = defaultdict(set)
        self._thread.start()

    def add_route(self, host: str, listen_port: int, target_port: int, link: Link) -> None:
        async def start() -> None:
            server = await asyncio.start_server(
                lambda r, w: self._accept(r, w, host, target_port, link),
                host, listen_port, reuse_address=True,
            )
            self._servers.append(server)

        asyncio.run_coroutine_threadsafe(start(), self._loop).result(timeout=5)

    def set_faults(self, blocked: set[Link], loss: dict[Link, float]) -> None:
        async def apply() -> None:
            newly_blocked = blocked - self._blocked
            healed = self._blocked - blocked
            self._blocked = set(blocked)
            self._loss = dict(loss)
            for link in newly_blocked:
                for w in list(self._live[link]):
                    w.transport.abort()
            for link in healed:
                for w in list(self._held[link]):
                    w.transport.abort()

        asyncio.run_coroutine_threadsafe(apply(), self._loop).result(timeout=5)

    def close(self) -> None:
        async def stop() -> None:
            for server in self._servers:
                server.close()
            for conns in (*self._live.values(), *self._held.values()):
                for w in list(conns):
                    w.transport.abort()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
        host: str, target_port: int, link: Link,
    ) -> None:
        if link in self._blocked:
            self._held[link].add(writer)
            try:
                await reader.read()  # until the peer gives up or the link heals
            except OSError:
                pass
            finally:
                self._held[link].discard(writer)
                writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(host, target_port)
        except OSError:
            writer.transport.abort()
            return
        self._live[link] |= {writer, up_writer}
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, link), self._pump(up_reader, writer, link)
            )
        finally:
            self._live[link] -= {writer, up_writer}

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, link: Link
    ) -> None:
        try:
            while data := await src.read(65536):
                loss = self._loss.get(link, 0.0)
                if loss and self._rng.random() < loss:
                    await asyncio.sleep(RETRANSMIT_S)
                if link in self._blocked:
                    break
                dst.write(data)
                await dst.drain()
        except OSError:
            pass
        finally:
            dst.transport.abort()
