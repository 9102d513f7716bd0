"""Frames to a home's own clients wait for the journal write that covers them.

A client connected to a room's home is written to by the home itself, not
through Redis; a relayed client's frames go out in the cluster writer's
pipeline behind the journal write, so they are in Redis first by
construction. Without a gate, a home's own client could hold the result of a
``sendMessage`` (or a notification's ``seq``) that a ``kill -9`` of the home
keeps from Redis: acknowledged, then lost at the takeover.

So, on a journaling node, each local connection is a ``HeldLink``: while the
journal has changes not yet in Redis (``CommitGate.holding``), its frames, and
a close behind them, wait in the link, in order; the writer takes the links
that wait when it collects the journal's changes, and releases what they held
then once that pipeline has run (group commit: one Redis round trip of
latency at most, and every frame written meanwhile, to a link already taken
too, waits for the next pipeline, which carries its change). A link with nothing
waiting and a journal with nothing pending writes at once, as on a lone server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from websockets.asyncio.server import ServerConnection

from roomsignal.server._metrics import Counts
from roomsignal.server._outbox import Link

__all__ = ["CommitGate", "HeldLink"]


class CommitGate:
    """Which local links wait for the journal, and when they may go.

    ``pending()`` says whether the journal holds changes not yet collected;
    ``wake()`` asks the writer for a pipeline now. Not thread-safe.
    """

    __slots__ = ("_pending", "_wake", "inflight", "open", "waiting")

    def __init__(self, pending: Callable[[], bool], wake: Callable[[], None]) -> None:
        self._pending = pending
        self._wake = wake
        self.waiting: list[HeldLink] = []
        self.inflight = False
        """A pipeline carrying journal writes is on its way to Redis."""
        self.open = False
        """Hold nothing any more (the node is closing)."""

    def holding(self) -> bool:
        """Whether a frame written now could acknowledge a change not yet in Redis."""
        return not self.open and (self.inflight or self._pending())

    def hold(self, link: HeldLink) -> None:
        link.queued = True
        self.waiting.append(link)
        self._wake()

    def take(self) -> list[HeldLink]:
        """The links waiting now: the writer releases them after its next pipeline.

        Each releases then only the frames it holds now (``HeldLink.covered``):
        those written while that pipeline is on its way acknowledge changes it
        does not carry, and wait for the next one.
        """
        links, self.waiting = self.waiting, []
        for link in links:
            link.queued = False
            link.covered = len(link.held) if link.held is not None else 0
        return links

    def release_all(self) -> list[HeldLink]:
        """Hold nothing from now on (closing); the links waiting now, to release."""
        self.open = True
        return self.take()


class HeldLink(Link):
    """A local connection whose frames wait while ``gate`` holds (module docstring)."""

    __slots__ = ("_closing", "_released", "conn", "covered", "gate", "held", "queued")

    def __init__(
        self,
        ws: ServerConnection,
        limit: int,
        close_timeout: float,
        gate: CommitGate,
        conn: int,
        counts: Counts | None = None,
    ) -> None:
        super().__init__(ws, limit, close_timeout, counts)
        self.gate = gate
        self.conn = conn
        self.held: list[str] | None = None  # None: nothing waits
        self.queued = False  # in the gate's ``waiting``
        # Taken by the writer: how many of ``held`` its pipeline covers (None: not taken).
        self.covered: int | None = None
        self._closing: tuple[int, str] | None = None  # a close behind the held frames
        self._released: asyncio.Event | None = None

    def write(self, frames: Iterable[str]) -> None:
        """Write ``frames`` now, or hold them (behind what waits) while the gate holds."""
        held = self.held
        if held is None:
            if not self.gate.holding():
                super().write(frames)
                return
            held = self.held = []
            self.gate.hold(self)
        elif not self.queued:  # taken for a pipeline on its way: these wait for the next
            self.gate.hold(self)
        if self._closing is None:
            held.extend(frames)

    def write_through(self, frames: Iterable[str]) -> None:
        """Frames already journaled elsewhere (relayed from a home): only order waits."""
        if self.held is None:
            super().write(frames)
            return
        if not self.queued:  # behind frames taken for a pipeline on its way
            self.gate.hold(self)
        if self._closing is None:
            self.held.extend(frames)

    def release(self) -> None:
        """Write what the writer's pipeline covered; a close that waited behind it starts next.

        Frames written after the writer took the link stay held (it is queued
        again for the next pipeline).
        """
        frames, covered = self.held, self.covered
        self.covered = None
        if frames is not None and covered is not None and covered < len(frames):
            self.held = frames[covered:]
            frames = frames[:covered]
        else:
            self.held = None
        if frames:
            super().write(frames)
        if self.held is None and self._released is not None:
            self._released.set()
            self._released = None

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake behind the frames that wait (once)."""
        if self.held is None:
            super().close(code, reason)
        elif self.closer is None:
            self._closing = (code, reason)
            self.closer = asyncio.get_running_loop().create_task(self._close_after_release())

    async def _close_after_release(self) -> None:
        await self.wait_released()
        if not self.aborted and self._closing is not None:
            await self.ws.close(*self._closing)

    def abort(self) -> None:
        """Drop the connection now; what waited is dropped with it."""
        self.held = None
        self.covered = None
        super().abort()
        if self._released is not None:
            self._released.set()
            self._released = None

    async def wait_released(self) -> None:
        """Return once nothing of this link waits for the journal."""
        if self.held is None:
            return
        if self._released is None:
            self._released = asyncio.Event()
        await self._released.wait()

    async def drain(self) -> None:
        """Wait for the frames held for the journal, then for the socket's buffer."""
        await self.wait_released()
        await super().drain()
