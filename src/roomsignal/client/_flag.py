"""``Flag``: the part of ``asyncio.Event`` a session uses, without its deque.

``asyncio.Event`` makes a ``collections.deque`` for its waiters when it is
made: 624 bytes, in every session, for a wait that happens only while a
request waits out a reconnection. ``Flag`` makes a list at the first wait
instead (see docs/benchmarks.md, "Memory per joined session"). Semantics as
``asyncio.Event``: ``set()`` wakes every waiter, also one that finds the flag
cleared again by the time it runs.
"""

from __future__ import annotations

import asyncio

__all__ = ["Flag"]


class Flag:
    """A set/clear flag that tasks of one event loop can wait for."""

    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._value

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        if not self._value:
            self._value = True
            waiters, self._waiters = self._waiters, None
            for waiter in waiters or ():
                if not waiter.done():
                    waiter.set_result(None)

    def clear(self) -> None:
        """Clear the flag; later ``wait()`` calls block until the next ``set()``."""
        self._value = False

    async def wait(self) -> None:
        """Return once the flag is set (at once if it is)."""
        if self._value:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters
        if waiters is None:
            waiters = self._waiters = []
        waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in waiters:
                waiters.remove(waiter)
