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
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from roomsignal.catalog import ErrorCode
from roomsignal.errors import SessionError, SessionErrorException
from roomsignal.media._peer import notify
from roomsignal.protocol import SubscriptionEndedParams

if TYPE_CHECKING:
    from roomsignal.media._publisher import Publisher
    from roomsignal.media._subscriber import Subscription

__all__ = [
    "MEDIA_NODE_LOST",
    "MediaRestored",
    "Republisher",
    "RestoredListener",
    "is_media_node_lost",
]

logger = logging.getLogger("roomsignal.media")

MEDIA_NODE_LOST = "mediaNodeLost"
"""The ``data.reason`` of the 801 and the ``reason`` of the ``subscriptionEnded`` of a loss."""

RestoredListener = Callable[["MediaRestored"], Any]

# Codes of a publish after the loss that mean "not yet": 801 until the server has its
# media node back; the rest while our own connection is down.
_NOT_BACK_YET = frozenset(
    {
        ErrorCode.TRANSPORT_REQUEST_ERROR_CODE,
        ErrorCode.GENERIC_CONNECTION_ERROR,
        ErrorCode.REQUEST_TIMEOUT_ERROR_CODE,
        ErrorCode.NOT_CONNECTED_ERROR_CODE,
    }
)
_CONNECT_TIMEOUT = 15.0  # for the new upstream's ICE and DTLS


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

    ``reason`` is why the old exchanges ended (``mediaNodeLost``);
    ``exchange_ids`` are those ended exchanges. ``participant_id``
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


def backoff_delays(first: float = 0.2, most: float = 5.0) -> Iterator[float]:
    """Delays that double from ``first`` up to ``most``, each with up to 25 % jitter."""
    delay = first
    while True:
        yield delay * (0.75 + random.random() / 4)
        delay = min(most, delay * 2)


class Republisher:
    """Publishes again after the media node was lost, for a ``Publisher`` it belongs to.

    It listens on the publisher's session by itself: a ``subscriptionEnded``
    with reason ``mediaNodeLost`` for the publisher's upstream starts one
    task (or adds to the running one's list) that calls ``publisher.start()``
    with backoff while it raises 801 (or the connection is down), then waits
    for the new upstream to connect and calls the ``on_restored`` listeners.
    Any other refusal ends it (logged). ``close()`` stops listening and
    cancels and awaits the task; it is safe to call in every state.
    """

    def __init__(
        self, publisher: Publisher, *, first_delay: float = 0.2, most_delay: float = 5.0
    ) -> None:
        self._publisher = publisher
        self._first = first_delay
        self._most = most_delay
        self._lost: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self.listeners: list[RestoredListener] = []
        self._session = publisher.session
        self._session.on_subscription_ended(self._on_subscription_ended)

    @property
    def restoring(self) -> bool:
        """Whether a publish after a loss is still being tried."""
        return self._task is not None and not self._task.done()

    def _on_subscription_ended(self, event: SubscriptionEndedParams) -> None:
        publisher = self._publisher
        if event.reason != MEDIA_NODE_LOST or event.exchange_id != publisher._upstream:
            return
        if publisher.publishing and not publisher._closed:
            self.lost([event.exchange_id])

    def lost(self, exchange_ids: list[str]) -> None:
        """The media node was lost with these upstream exchanges: publish again (once)."""
        self._lost.extend(x for x in exchange_ids if x not in self._lost)
        if not self.restoring:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="republish-after-media-node-loss"
            )

    async def _run(self) -> None:
        publisher = self._publisher
        for delay in backoff_delays(self._first, self._most):
            await asyncio.sleep(delay)
            if not publisher.publishing or publisher._closed:
                return
            try:
                await publisher.start()
            except SessionErrorException as exc:
                if exc.code in _NOT_BACK_YET:
                    continue  # the node (or our connection) is not back yet
                logger.warning("could not publish again after the media node was lost: %s", exc)
                return
            except RuntimeError as exc:  # the publisher was closed meanwhile
                logger.info("not publishing again: %s", exc)
                return
            exchange_id = publisher._upstream
            try:
                await publisher.wait_for_connected(1, timeout=_CONNECT_TIMEOUT)
            except TimeoutError:
                logger.warning("the new upstream %s did not connect; trying again", exchange_id)
                continue
            lost, self._lost = tuple(self._lost), []
            logger.info("published again after the media node was lost (%s)", exchange_id)
            event = MediaRestored(MEDIA_NODE_LOST, lost, self._session.participant_id, exchange_id)
            await notify(self.listeners, event, "restored")
            return

    async def stop(self) -> None:
        """Stop a restore in progress (the app unpublished); go on listening.

        A ``publish`` of the restore still in flight is cancelled; whatever
        it opened on the server meanwhile is for the caller to unpublish.
        """
        self._lost = []
        task, self._task = self._task, None
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        """Stop listening and trying; idempotent."""
        self._session.off_subscription_ended(self._on_subscription_ended)
        await self.stop()
