"""Media through a media node: telling its loss, and publishing again after it.

When the server loses its media node (PROTOCOL.md section 10) every exchange
through it ends: each party gets ``sessionError`` 801 with ``data.reason:
"mediaNodeLost"``, then ``subscriptionEnded`` (reason ``mediaNodeLost``) per
exchange, and publishers count as not publishing. The server reconnects by
itself and answers 801 to requests that need the node until it is back; no
notification says it is back. So a ``Publisher`` publishes again with
backoff while ``publish`` answers 801 (``Republisher``), and a ``Subscriber``
subscribes again when its target's ``streamPublished`` comes (``_auto``).
Both say so to the app with a ``MediaRestored``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from roomsignal.catalog import ErrorCode
from roomsignal.errors import SessionError, SessionErrorException

if TYPE_CHECKING:
    from roomsignal.media._subscriber import Subscription

__all__ = [
    "MEDIA_NODE_LOST",
    "MediaRestored",
    "Republisher",
    "RestoredListener",
    "is_media_node_lost",
    "notify_restored",
]

logger = logging.getLogger("roomsignal.media")

MEDIA_NODE_LOST = "mediaNodeLost"
"""The ``data.reason`` of the 801 and the ``reason`` of the ``subscriptionEnded`` of a loss."""

RestoredListener = Callable[["MediaRestored"], Any]


def is_media_node_lost(error: SessionError) -> bool:
    """Whether ``error`` is the server's word that it lost the media node (801 ``mediaNodeLost``)."""
    return (
        error.code == ErrorCode.TRANSPORT_REQUEST_ERROR_CODE
        and bool(error.data)
        and error.data.get("reason") == MEDIA_NODE_LOST
    )


@dataclass(frozen=True, slots=True)
class MediaRestored:
    """Media that ended for ``reason`` flows again, with no call from the app.

    ``reason`` is why the old exchanges ended (``mediaNodeLost``, or
    ``republished`` for a subscription whose publisher published other
    tracks); ``exchange_ids`` are those ended exchanges. ``participant_id``
    is whose media it is: the publisher's own id for a ``Publisher``, the
    target for a ``Subscriber``. ``exchange_id`` is the new exchange (the
    new upstream, or the new subscription's), ``subscription`` the new
    ``Subscription`` (``None`` for a publisher).
    """

    reason: str
    exchange_ids: tuple[str, ...]
    participant_id: str
    exchange_id: str | None
    subscription: Subscription | None = None


async def notify_restored(listeners: list[RestoredListener], event: MediaRestored) -> None:
    """Call each listener (sync or async); one that raises is logged, not fatal."""
    for fn in list(listeners):
        try:
            result = fn(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("restored listener %r failed", fn)


def backoff_delays(first: float = 0.2, most: float = 5.0) -> Iterator[float]:
    """Delays that double from ``first`` up to ``most``, each with up to 25 % jitter."""
    delay = first
    while True:
        yield delay * (0.75 + random.random() / 4)
        delay = min(most, delay * 2)


class Republisher:
    """Publishes again after the media node was lost, for its owner (a ``Publisher``).

    ``lost(exchange_ids)`` starts one task (or adds to the running one's
    list) that calls ``publish()`` with backoff while it raises 801, then
    ``restored(event)``. Any other refusal ends it (logged). ``close()``
    cancels and awaits the task; it is safe to call in every state.
    """

    def __init__(
        self,
        publish: Callable[[], Awaitable[tuple[str, str | None]]],
        still_wanted: Callable[[], bool],
        restored: Callable[[MediaRestored], Awaitable[None]],
        *,
        first_delay: float = 0.2,
        most_delay: float = 5.0,
    ) -> None:
        self._publish = publish
        self._wanted = still_wanted
        self._restored = restored
        self._first = first_delay
        self._most = most_delay
        self._lost: list[str] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def restoring(self) -> bool:
        """Whether a publish after a loss is still being tried."""
        return self._task is not None and not self._task.done()

    def lost(self, exchange_ids: list[str]) -> None:
        """The media node was lost with these upstream exchanges: publish again (once)."""
        self._lost.extend(x for x in exchange_ids if x not in self._lost)
        if not self.restoring:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="republish-after-media-node-loss"
            )

    async def _run(self) -> None:
        for delay in backoff_delays(self._first, self._most):
            await asyncio.sleep(delay)
            if not self._wanted():
                return
            try:
                participant_id, exchange_id = await self._publish()
            except SessionErrorException as exc:
                if exc.code in (
                    ErrorCode.TRANSPORT_REQUEST_ERROR_CODE,
                    ErrorCode.GENERIC_CONNECTION_ERROR,
                    ErrorCode.REQUEST_TIMEOUT_ERROR_CODE,
                    ErrorCode.NOT_CONNECTED_ERROR_CODE,
                ):
                    continue  # the node (or our connection) is not back yet
                logger.warning("could not publish again after the media node was lost: %s", exc)
                return
            except RuntimeError as exc:  # the publisher was closed meanwhile
                logger.info("not publishing again: %s", exc)
                return
            lost, self._lost = tuple(self._lost), []
            logger.info("published again after the media node was lost (%s)", exchange_id)
            await self._restored(MediaRestored(MEDIA_NODE_LOST, lost, participant_id, exchange_id))
            return

    async def close(self) -> None:
        """Stop trying; idempotent."""
        task, self._task = self._task, None
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
