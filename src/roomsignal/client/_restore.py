"""Restore after a state reset: publish again, subscribe again by name.

A mixin of ``Session``. When a rejoin is a fresh join (the server restarted,
or refused the resume), the seat and everything on it is gone: the session
publishes again with the flags of its last ``publish`` and subscribes again
to the participants it was subscribed to, matched by name (their ids are
new), now if they are back and publishing, or as they come back (a
``participant_joined`` with streams, or a ``stream_published``, under that
name). ``on_reconnected`` reports it (``republished``,
``resubscribed``, ``awaiting``).

Who made a request owns its restore: a ``publish``/``subscribe`` called with
``restore=False`` (as ``roomsignal.media`` does, which restores its own) is
left alone. ``Session(restore_after_reset=False)`` turns all of it off.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from roomsignal.client._core import ClientCore
from roomsignal.client._flag import Flag
from roomsignal.errors import SessionErrorException
from roomsignal.protocol import ParticipantJoinedParams, StreamPublishedParams, Streams

__all__ = ["Kept", "Restore", "Restored"]

logger = logging.getLogger("roomsignal.client")


class Restored:
    """What a restore did (for ``Reconnected``)."""

    __slots__ = ("awaiting", "republished", "resubscribed")

    def __init__(self) -> None:
        self.republished = False
        self.resubscribed: list[str] = []
        self.awaiting: list[str] = []


class Kept:
    """What the session published and what restore owns; made at the first use.

    One attribute of ``Session`` rather than four: CPython shares the keys of
    instance dicts only up to 30 attributes, and a session past that costs
    about 1.3 KiB more (docs/benchmarks.md measures KiB per session).
    """

    __slots__ = ("awaiting", "names", "published", "restore_publish")

    def __init__(self) -> None:
        self.published: Streams | None = None  # what our last publish asked for
        self.restore_publish: Streams | None = None  # the same, when restore owns it
        self.names: dict[str, None] = {}  # names subscribed to (restore owns them)
        self.awaiting: dict[str, None] | None = None  # names to subscribe to as they join


class Restore:
    """Keeps what to restore and restores it (a mixin of ``Session``)."""

    _core: ClientCore[asyncio.Future[dict[str, Any]]]
    _joined: Flag  # set while joined on the current connection
    restore_after_reset: bool
    _kept: Kept | None

    def _keeping(self) -> Kept:
        kept = self._kept
        if kept is None:
            kept = self._kept = Kept()
        return kept

    if TYPE_CHECKING:
        from roomsignal.client._listeners import ListenerHub

        _hub: ListenerHub

        async def publish(
            self, *, audio: bool = True, video: bool = True, restore: bool = True
        ) -> str: ...

        async def subscribe(self, target: str, *, restore: bool = True) -> str: ...

    def _keep_subscription(self, target: str) -> None:
        member = self._core.participants.get(target)
        if member is None:
            return  # no name to match it by after a reset
        self._keeping().names[member.name] = None

    def _drop_subscription(self, target: str) -> None:
        member = self._core.participants.get(target)
        kept = self._kept
        if member is None or kept is None:
            return
        kept.names.pop(member.name, None)
        if kept.awaiting is not None:
            kept.awaiting.pop(member.name, None)

    async def _restore(self) -> Restored:
        """After a fresh rejoin: publish and subscribe again (never raises a refusal)."""
        done = Restored()
        kept = self._kept
        if not self.restore_after_reset or kept is None:
            return done
        flags = kept.restore_publish
        if flags is not None and self._joined.is_set():
            try:
                await self.publish(audio=flags.audio, video=flags.video)
                done.republished = True
            except SessionErrorException as exc:
                logger.warning("could not publish again after the state reset: %s", exc)
        names = list(kept.names)
        # Only a publisher can be subscribed to: one back but not publishing yet
        # is awaited like one not back (its streamPublished triggers it).
        by_name = {
            p.name: p.participant_id
            for p in self._core.participants.values()
            if p.streams is not None
        }
        for name in names:
            pid = by_name.get(name)
            if pid is None:
                done.awaiting.append(name)
                continue
            if not self._joined.is_set():
                # Dropped meanwhile: each request would wait out its timeout for a rejoin
                # that only the supervisor, waiting on this, can make. The next
                # rejoin restores what is kept.
                break
            if await self._subscribe_again(name, pid):
                done.resubscribed.append(name)
        if done.awaiting:
            if kept.awaiting is None:
                kept.awaiting = {}
                self._hub.add("participant_joined", self._on_awaited_join)
                self._hub.add("stream_published", self._on_awaited_publish)
            kept.awaiting.update(dict.fromkeys(done.awaiting))
        return done

    async def _subscribe_again(self, name: str, pid: str) -> bool:
        try:
            await self.subscribe(pid)
        except SessionErrorException as exc:
            logger.warning("could not subscribe again to %r after the state reset: %s", name, exc)
            return False
        logger.info("subscribed again to %r (%s) after the state reset", name, pid)
        return True

    async def _on_awaited_join(self, event: ParticipantJoinedParams) -> None:
        """Internal listener: someone we were subscribed to is back, maybe publishing."""
        member = event.participant
        if member.streams is not None:
            await self._awaited_is_back(member.name, member.participant_id)

    async def _on_awaited_publish(self, event: StreamPublishedParams) -> None:
        """Internal listener: a participant publishes; subscribe if its name is awaited."""
        member = self._core.participants.get(event.participant_id)
        if member is not None:
            await self._awaited_is_back(member.name, member.participant_id)

    async def _awaited_is_back(self, name: str, pid: str) -> None:
        awaiting = self._kept.awaiting if self._kept is not None else None
        if awaiting is None or name not in awaiting:
            return
        del awaiting[name]
        await self._subscribe_again(name, pid)
