"""The subscriptions a ``Subscriber`` makes by itself.

Two cases, one mechanism (subscribe when a participant publishes):

- ``auto_subscribe`` (LiveKit's default for its rooms): every participant
  that publishes, now or later, is subscribed to, and again after a state
  reset or when it publishes anew; a predicate may narrow it.
- Restore: a subscription the server ended because it lost its media node
  (``mediaNodeLost``, PROTOCOL.md section 10) is made again when the
  target's ``streamPublished`` comes, which the server sends once the
  target's new upstream is connected. No polling: that notification is the
  signal.

Each subscription is made by a task this object owns (one per target at a
time), cancelled and awaited by ``close()``. What it made, or is making, is
shared with the app: ``Subscriber.subscribe`` returns it instead of asking
the server again (an app that restores by itself gets the same one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from roomsignal.catalog import ErrorCode
from roomsignal.errors import SessionErrorException
from roomsignal.media._node import MEDIA_NODE_LOST, MediaRestored, RestoredListener
from roomsignal.media._peer import notify
from roomsignal.protocol import Participant

if TYPE_CHECKING:
    from roomsignal.media._subscriber import Subscriber, Subscription

__all__ = ["AutoSubscribe", "Follower", "SubscribedListener"]

logger = logging.getLogger("roomsignal.media")

AutoSubscribe = bool | Callable[[Participant], bool]
"""``True`` (every publisher), ``False``, or a predicate on the publishing participant."""

SubscribedListener = Callable[["Subscription"], Any]

# Reasons of a subscriptionEnded after which the same target is subscribed to again
# when it publishes: nobody asked to stop watching it.
RESTORED_AFTER = frozenset({MEDIA_NODE_LOST})


class Follower:
    """Subscribes its ``Subscriber`` to publishers by itself (see the module's docstring)."""

    def __init__(self, subscriber: Subscriber, auto: AutoSubscribe, timeout: float | None) -> None:
        self._subscriber = subscriber
        self._auto = auto
        self._timeout = timeout
        self._lost: dict[str, tuple[str, list[str]]] = {}  # target -> (reason, exchange ids)
        self._tasks: dict[str, asyncio.Task[Subscription | None]] = {}  # target -> making it
        self._made: dict[str, Subscription] = {}  # target -> the last one made by itself
        self._subscribed_listeners: list[SubscribedListener] = []
        self._restored_listeners: list[RestoredListener] = []
        self._closed = False

    # -- what the Subscriber tells it --------------------------------------------------

    def ended(self, target: str, exchange_id: str, reason: str) -> None:
        """A subscription to ``target`` ended for ``reason``: remember it if it is to come back."""
        if reason not in RESTORED_AFTER or self._closed:
            return
        _, ids = self._lost.setdefault(target, (reason, []))
        ids.append(exchange_id)

    def publishing(self, participant: Participant, *, known: bool = False) -> None:
        """``participant`` may publish: ``known`` (a ``streamPublished``), or if it has streams."""
        if self._closed or (participant.streams is None and not known):
            return
        target = participant.participant_id
        session = self._subscriber.session
        if target == session.participant_id or target in self._tasks:
            return
        if target in self._subscriber._asking:
            return  # the app is subscribing to it right now
        if target not in self._lost and not self._wants(participant):
            return
        if self._subscriber.subscription_to(target) is not None:
            return  # still subscribed (a publish that only updated the flags)
        self._tasks[target] = asyncio.get_running_loop().create_task(
            self._subscribe(target), name=f"subscribe-{target}"
        )

    def everyone(self) -> None:
        """Subscribe to each participant publishing now (auto_subscribe only)."""
        if not self._auto:
            return
        for participant in list(self._subscriber.session.participants.values()):
            self.publishing(participant)

    def left(self, target: str) -> None:
        """``target`` left: nothing of it comes back."""
        self._lost.pop(target, None)

    async def shared(self, target: str) -> Subscription | None:
        """The open subscription to ``target`` made by itself, once made (None if none)."""
        task = self._tasks.get(target)
        if task is not None and task is not asyncio.current_task():
            with contextlib.suppress(Exception):
                await asyncio.shield(task)
        made = self._made.get(target)
        return made if made is not None and not made.closed else None

    def reset(self) -> None:
        """The session joined afresh: the old participant ids are gone."""
        self._lost.clear()

    def _wants(self, participant: Participant) -> bool:
        auto = self._auto
        if isinstance(auto, bool):
            return auto
        try:
            return bool(auto(participant))
        except Exception:
            logger.exception("auto_subscribe predicate failed for %s", participant.participant_id)
            return False

    # -- subscribing ------------------------------------------------------------------------

    async def _subscribe(self, target: str) -> Subscription | None:
        lost = self._lost.pop(target, None)
        try:
            try:
                subscription = await self._subscriber._make(
                    target, wait=True, timeout=self._timeout
                )
            except SessionErrorException as exc:
                if lost is not None and exc.code == ErrorCode.TRANSPORT_REQUEST_ERROR_CODE:
                    self._lost.setdefault(target, lost)  # lost again: its next publish retries
                logger.warning("could not subscribe to %s by itself: %s", target, exc)
                return None
            except TimeoutError:
                if lost is not None:
                    self._lost.setdefault(target, lost)
                logger.warning("no media from %s within %s s", target, self._timeout)
                return None
            except Exception as exc:  # SubscriptionClosed, or the Subscriber closed
                logger.info("subscription to %s by itself ended early: %r", target, exc)
                return None
            self._made[target] = subscription
            await notify(self._subscribed_listeners, subscription, "subscribed")
            if lost is not None:
                reason, ids = lost
                logger.info("subscribed again to %s after %s", target, reason)
                await notify(
                    self._restored_listeners,
                    MediaRestored(
                        reason, tuple(ids), target, subscription.exchange_id, subscription
                    ),
                    "restored",
                )
            return subscription
        finally:
            if self._tasks.get(target) is asyncio.current_task():
                del self._tasks[target]
            self._subscriber._changed.set()

    @property
    def busy(self) -> bool:
        """Whether a subscription is being made by itself."""
        return bool(self._tasks)

    async def close(self) -> None:
        """Cancel and await every subscription being made; idempotent."""
        self._closed = True
        me = asyncio.current_task()
        tasks = [t for t in self._tasks.values() if t is not me]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._lost.clear()
        self._made.clear()
