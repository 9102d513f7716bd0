"""Frames held until the end of the loop iteration, per connection, written in chunks.

A large fan-out (a chat message to a room of 500, a join into a room of
2,000) writes one frame to each of many connections. Written at once, that
is one ``send()`` per frame, in one go: a ping from another room waits
behind all of them. Held here instead, each connection's frames are written
together (one ``send()`` for all that its connection got this iteration: a
sender whose requests are already buffered has several handled before the
flush), and the flush runs in chunks of about ``chunk`` frames, one chunk
per loop iteration, so other connections are served between chunks.

Order is kept where the protocol needs it: per connection, frames are
written in the order they were added (the rooms numbered them in that
order), and ``flush_conn`` writes a connection's frames before anything
else is done to it (a close, an abort, a burst). Nothing here is
unbounded: the transport's handlers stop reading while ``frames`` is over
their high-water mark (``settle``), and a connection whose written output
passes ``max_send_queue_bytes`` is closed as slow by the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

from roomsignal.server._metrics import Counts

__all__ = ["CLOSE_SLOW", "YIELD_AFTER", "Link", "Outbox"]

logger = logging.getLogger("roomsignal.server")

CLOSE_SLOW = 4002
YIELD_AFTER = 32  # the token bucket holds at least this many frames
_PER_WRITE = 4  # what one write (one system call) costs, counted in frames
_UNCOUNTED = Counts()  # the counters of links made without a server's (relayed ones, tests)


class Link:
    """One connection as the transport sees it: write, close, abort, pace."""

    __slots__ = (
        "aborted",
        "close_timeout",
        "closer",
        "counts",
        "limit",
        "slow",
        "tokens",
        "updated",
        "ws",
    )

    def __init__(
        self,
        ws: ServerConnection,
        limit: int,
        close_timeout: float,
        counts: Counts | None = None,
    ) -> None:
        self.ws = ws
        # The server's counters (bytes written, 4002 evictions): read by /metrics.
        self.counts = counts if counts is not None else _UNCOUNTED
        self.limit = limit
        self.close_timeout = close_timeout
        self.closer: asyncio.Task[None] | None = None
        # Set by ``abort``: frames already received after it are never handled.
        self.aborted = False
        # Set when its unsent output passed ``limit``: closed with 4002.
        self.slow = False
        # The fan-out token bucket (``max_fanout_per_second``).
        self.tokens = 0.0
        self.updated = 0.0

    @property
    def alive(self) -> bool:
        return self.ws.protocol.state is State.OPEN and not self.ws.transport.is_closing()

    def write(self, frames: Iterable[str]) -> None:
        """Queue text frames for writing now, in order; dropped if the link is not open.

        Once the transport holds more than ``limit`` unsent bytes the link is
        closed with 4002 (``slow``) and ``slow`` is set; nothing more is written.
        """
        if self.slow or not self.alive:
            return
        ws = self.ws
        try:
            protocol = ws.protocol
            for frame in frames:
                protocol.send_text(frame.encode())
            data = protocol.data_to_send()
            if all(data):
                # One write (one send() syscall) for the lot, not one per frame.
                joined = b"".join(data)
                self.counts.bytes_written += len(joined)
                ws.transport.write(joined)
            else:  # an end-of-stream marker is pending: let websockets handle it
                for chunk in data:
                    if chunk:
                        ws.transport.write(chunk)
                    elif ws.transport.can_write_eof():
                        ws.transport.write_eof()
                    else:
                        ws.transport.close()
        except Exception:
            logger.debug("write failed", exc_info=True)
            return
        if ws.transport.get_write_buffer_size() > self.limit:
            logger.warning("closing a slow consumer (%s) with 4002", ws.remote_address)
            self.evict()

    def evict(self) -> None:
        """Queue a 4002 close frame behind what is unsent; abort if not closed in time.

        Not ``ws.close()``: that would wait for the full queue to drain
        before its own timeout starts.
        """
        self.slow = True
        self.counts.evictions += 1
        ws = self.ws
        try:
            ws.protocol.send_close(CLOSE_SLOW, "slow")
            for chunk in ws.protocol.data_to_send():
                if chunk:
                    ws.transport.write(chunk)
        except Exception:
            logger.debug("could not queue the 4002 close frame", exc_info=True)
        if self.closer is None:
            self.closer = asyncio.get_running_loop().create_task(self._abort_after_timeout())

    async def _abort_after_timeout(self) -> None:
        try:
            async with asyncio.timeout(self.close_timeout):
                await self.ws.wait_closed()
        except TimeoutError:
            self.abort()

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake (once); ``finish`` awaits it."""
        if self.closer is None:
            self.closer = asyncio.get_running_loop().create_task(self.ws.close(code, reason))

    def abort(self) -> None:
        """Drop the TCP connection with no close frame; later frames are not handled."""
        self.aborted = True
        self.ws.transport.abort()

    async def drain(self) -> None:
        """Wait until the write buffer is below its limit, then let others run."""
        with contextlib.suppress(Exception):
            await self.ws.drain()
        await asyncio.sleep(0)

    async def pace(self, cost: int, rate: int) -> None:
        """Charge ``cost`` frames to the token bucket; sleep (not reading) while in debt.

        The bucket holds at most a tenth of a second of ``rate``; a sender
        that makes the server write more than ``rate`` frames a second is
        not read until it is back in credit, so TCP backpressure reaches it.
        """
        if rate <= 0:
            return
        now = asyncio.get_running_loop().time()
        capacity = max(rate / 10, YIELD_AFTER)
        self.tokens = min(capacity, self.tokens + (now - self.updated) * rate) - cost
        self.updated = now
        if self.tokens < 0:
            await asyncio.sleep(-self.tokens / rate)

    async def finish(self) -> None:
        """Await the closing handshake started by ``close``, if any."""
        if self.closer is not None:
            with contextlib.suppress(Exception):
                await self.closer


class Outbox:
    """Pending frames by connection id; ``write(conn, frames)`` puts them on the wire."""

    __slots__ = (
        "_after",
        "_handle",
        "_idle",
        "_order",
        "_scheduled",
        "_write",
        "chunk",
        "frames",
        "pending",
    )

    def __init__(
        self,
        write: Callable[[int, list[str]], None],
        after: Callable[[], None],
        chunk: int = 1024,
    ) -> None:
        self._write = write
        self._after = after  # run after each chunk (the transport evicts slow connections)
        self.chunk = chunk
        self.pending: dict[int, list[str]] = {}
        self._order: deque[int] = deque()  # connection ids, first added first
        self.frames = 0
        self._scheduled = False
        self._handle: asyncio.Handle | None = None  # the scheduled flush, owned here
        self._idle = asyncio.Event()
        self._idle.set()

    def __contains__(self, conn: int) -> bool:
        return conn in self.pending

    def add(self, conn: int, frame: str) -> None:
        """Hold ``frame`` for ``conn``, behind what it already holds."""
        frames = self.pending.get(conn)
        if frames is None:
            self.pending[conn] = [frame]
            self._order.append(conn)
        else:
            frames.append(frame)
        self.frames += 1
        if not self._scheduled:
            self._scheduled = True
            self._idle.clear()
            self._handle = asyncio.get_running_loop().call_soon(self._flush_chunk)

    def flush_conn(self, conn: int) -> None:
        """Write what ``conn`` holds now (before a close, an abort or a burst)."""
        frames = self.pending.pop(conn, None)
        if frames is not None:
            self.frames -= len(frames)
            self._write(conn, frames)

    def flush_all(self) -> None:
        """Write everything held now, in one go (a graceful shutdown)."""
        while self._order:
            self.flush_conn(self._order.popleft())
        self._after()

    def _flush_chunk(self) -> None:
        self._scheduled = False
        budget = self.chunk
        order, pending = self._order, self.pending
        try:
            while order and budget > 0:
                conn = order.popleft()
                frames = pending.pop(conn, None)
                if frames is None:
                    continue  # written already by flush_conn
                budget -= len(frames) + _PER_WRITE
                self.frames -= len(frames)
                self._write(conn, frames)
            self._after()
        except Exception:
            logger.exception("internal error while flushing frames")
        if order:
            self._scheduled = True
            self._handle = asyncio.get_running_loop().call_soon(self._flush_chunk)
        else:
            self._handle = None
            self._idle.set()

    def close(self) -> None:
        """Drop what is held and cancel the scheduled flush (the server is closed)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._scheduled = False
        self.pending.clear()
        self._order.clear()
        self.frames = 0
        self._idle.set()

    async def settle(self, high: int) -> None:
        """Let the flush (and other connections) run; wait while over ``high`` frames held."""
        await asyncio.sleep(0)
        while self.frames > high:
            await self._idle.wait()
