"""Restore after a state reset: publish again, subscribe again by name.

A mixin of ``Session``. When a rejoin is a fresh join (the server restarted,
or refused the resume), the seat and everything on it is gone: the session
publishes again with the flags of its last ``publish`` and subscribes again
to the participants it was subscribed to, matched by name (their ids are
new), now if they are back, or as they come back (a ``participant_joined``
with that name). ``on_reconnected`` reports it (``republished``,
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
from roomsignal.errors import SessionErrorException
from roomsignal.protocol import ParticipantJoinedParams, Streams

__all__ = ["Restore", "Restored"]

logger = logging.getLogger("roomsignal.client")


class Restored:
    """What a restore did (for ``Reconnected``)."""

    __slots__ = ("awaiting", "republished", "resubscribed")

    def __init__(self) -> None:
        self.republished = False
        self.resubscribed: list[str] = []
        self.awaiting: list[str] = []


class Restore:
    """Keeps what to restore and restores it (a mixin of ``Session``)."""

    _core: ClientCore[asyncio.Future[dict[str, Any]]]
    restore_after_reset: bool
    _published: Streams | None
    # What restore owns: publish flags (None: nothing of ours), names subscribed to,
    # names to subscribe to as they come back. Made at the first use.
    _restore_publish: Streams | None
    _restore_names: dict[str, None] | None
    _awaiting: dict[str, None] | None

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
        if self._restore_names is None:
            self._restore_names = {}
        self._restore_names[member.name] = None

    def _drop_subscription(self, target: str) -> None:
        member = self._core.participants.get(target)
        if member is not None and self._restore_names is not None:
            self._restore_names.pop(member.name, None)
        if member is not None and self._awaiting is not None:
            self._awaiting.pop(member.name, None)

    async def _restore(self) -> Restored:
        """After a fresh rejoin: publish and subscribe again (never raises a refusal)."""
        done = Restored()
        if not self.restore_after_reset:
            return done
        flags = self._restore_publish
        if flags is not None:
            try:
                await self.publish(audio=flags.audio, video=flags.video)
                done.republished = True
            except SessionErrorException as exc:
                logger.warning("could not publish again after the state reset: %s", exc)
        names = list(self._restore_names or ())
        by_name = {p.name: p.participant_id for p in self._core.participants.values()}
        for name in names:
            pid = by_name.get(name)
            if pid is None:
                done.awaiting.append(name)
                continue
            if await self._subscribe_again(name, pid):
                done.resubscribed.append(name)
        if done.awaiting:
            if self._awaiting is None:
                self._awaiting = {}
                self._hub.add("participant_joined", self._on_awaited_join)
            self._awaiting.update(dict.fromkeys(done.awaiting))
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
        """Internal listener: someone we were subscribed to is back under a new id."""
        awaiting = self._awaiting
        name = event.participant.name
        if awaiting is None or name not in awaiting:
            return
        del awaiting[name]
        await self._subscribe_again(name, event.participant.participant_id)
