"""``Session``'s listener API: ``on_<event>``/``off_<event>``, ``errors()``, ``wait_for_error()``.

A mixin of ``Session``: the declarations of every event kind a listener can
register for, and the error awaitables. Delivery itself is the hub's
(``_listeners.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from roomsignal.client._events import (
    Connected,
    Disconnected,
    Reconnected,
    Reconnecting,
    SessionState,
)
from roomsignal.client._listeners import ErrorStream, ListenerErrorHook, ListenerHub
from roomsignal.errors import SessionError, SessionErrorException
from roomsignal.protocol import (
    IceCandidateNotificationParams,
    MessageReceivedParams,
    ParticipantJoinedParams,
    ParticipantLeftParams,
    SdpNotificationParams,
    SessionClosedParams,
    StreamPublishedParams,
    StreamUnpublishedParams,
    SubscribeRequestParams,
    SubscriptionEndedParams,
    SyncDataParams,
)

__all__ = ["ListenerMethods"]

E = TypeVar("E")
R = TypeVar("R")


class _Register(Generic[E]):
    """``session.on_<event>``: registers a listener and returns it unchanged."""

    __slots__ = ("_event", "_hub")

    def __init__(self, hub: ListenerHub, event: str) -> None:
        self._hub = hub
        self._event = event

    def __call__(self, fn: Callable[[E], R]) -> Callable[[E], R]:
        """Register ``fn`` (sync or async) and return it unchanged, with its type."""
        self._hub.add(self._event, fn)
        return fn

    def __repr__(self) -> str:
        return f"<on_{self._event} listener registration>"


class _Unregister(Generic[E]):
    """``session.off_<event>``: removes a listener (no-op if absent)."""

    __slots__ = ("_event", "_hub")

    def __init__(self, hub: ListenerHub, event: str) -> None:
        self._hub = hub
        self._event = event

    def __call__(self, fn: Callable[[E], Any]) -> None:
        self._hub.remove(self._event, fn)


def _payload_name(descriptor: object) -> str:
    """The payload type a descriptor was declared with (``_On[Payload](...)``)."""
    alias = getattr(descriptor, "__orig_class__", None)
    args = getattr(alias, "__args__", ())
    return getattr(args[0], "__name__", "object") if args else "object"


class _On(Generic[E]):
    """Descriptor making ``on_<event>`` for one event kind.

    Its ``repr`` is the decorator's signature, so ``help(Session)`` reads
    ``on_message = on_message(fn: (MessageReceivedParams) -> R) -> fn``.
    """

    def __init__(self, event: str, doc: str) -> None:
        self.event = event
        self.__doc__ = doc

    def __repr__(self) -> str:
        return f"on_{self.event}(fn: ({_payload_name(self)}) -> R) -> fn"

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> _On[E]: ...
    @overload
    def __get__(self, obj: ListenerMethods, owner: type[Any]) -> _Register[E]: ...
    def __get__(self, obj: ListenerMethods | None, owner: type[Any]) -> _On[E] | _Register[E]:
        if obj is None:
            return self
        return _Register(obj._hub, self.event)


class _Off(Generic[E]):
    """Descriptor making ``off_<event>`` for one event kind."""

    def __init__(self, event: str) -> None:
        self.event = event
        self.__doc__ = f"Remove a listener added with ``on_{event}`` (no-op if absent)."

    def __repr__(self) -> str:
        return f"off_{self.event}(fn: ({_payload_name(self)}) -> object) -> None"

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> _Off[E]: ...
    @overload
    def __get__(self, obj: ListenerMethods, owner: type[Any]) -> _Unregister[E]: ...
    def __get__(self, obj: ListenerMethods | None, owner: type[Any]) -> _Off[E] | _Unregister[E]:
        if obj is None:
            return self
        return _Unregister(obj._hub, self.event)


class ListenerMethods:
    """Listener registration and error awaitables (a mixin of ``Session``)."""

    _hub: ListenerHub
    _state: SessionState

    if TYPE_CHECKING:

        def _not_connected(self, method: str, *, report: bool = True) -> SessionErrorException: ...

    # -- listeners (each with an ``off_`` twin) -------------------------------
    on_session_error = _On[SessionError](
        "session_error", "Call ``fn(error: SessionError)`` for every error, in arrival order."
    )
    off_session_error = _Off[SessionError]("session_error")
    on_participant_joined = _On[ParticipantJoinedParams](
        "participant_joined", "Call ``fn(event: ParticipantJoinedParams)`` when someone joins."
    )
    off_participant_joined = _Off[ParticipantJoinedParams]("participant_joined")
    on_participant_left = _On[ParticipantLeftParams](
        "participant_left", "Call ``fn(event: ParticipantLeftParams)`` when someone leaves."
    )
    off_participant_left = _Off[ParticipantLeftParams]("participant_left")
    on_stream_published = _On[StreamPublishedParams](
        "stream_published", "Call ``fn(event: StreamPublishedParams)`` when someone publishes."
    )
    off_stream_published = _Off[StreamPublishedParams]("stream_published")
    on_stream_unpublished = _On[StreamUnpublishedParams](
        "stream_unpublished", "Call ``fn(event: StreamUnpublishedParams)`` on an unpublish."
    )
    off_stream_unpublished = _Off[StreamUnpublishedParams]("stream_unpublished")
    on_subscribe_request = _On[SubscribeRequestParams](
        "subscribe_request",
        "Call ``fn(event: SubscribeRequestParams)`` when a subscriber wants our media "
        "(answer with ``send_offer``).",
    )
    off_subscribe_request = _Off[SubscribeRequestParams]("subscribe_request")
    on_subscription_ended = _On[SubscriptionEndedParams](
        "subscription_ended", "Call ``fn(event: SubscriptionEndedParams)`` when one ends."
    )
    off_subscription_ended = _Off[SubscriptionEndedParams]("subscription_ended")
    on_sdp_offer = _On[SdpNotificationParams](
        "sdp_offer", "Call ``fn(event: SdpNotificationParams)`` for an offer (answer it)."
    )
    off_sdp_offer = _Off[SdpNotificationParams]("sdp_offer")
    on_sdp_answer = _On[SdpNotificationParams](
        "sdp_answer", "Call ``fn(event: SdpNotificationParams)`` for an answer."
    )
    off_sdp_answer = _Off[SdpNotificationParams]("sdp_answer")
    on_ice_candidate = _On[IceCandidateNotificationParams](
        "ice_candidate", "Call ``fn(event: IceCandidateNotificationParams)`` per candidate."
    )
    off_ice_candidate = _Off[IceCandidateNotificationParams]("ice_candidate")
    on_message = _On[MessageReceivedParams](
        "message", "Call ``fn(event: MessageReceivedParams)`` for every chat message."
    )
    off_message = _Off[MessageReceivedParams]("message")
    on_sync_data = _On[SyncDataParams](
        "sync_data", "Call ``fn(event: SyncDataParams)`` for every playback update."
    )
    off_sync_data = _Off[SyncDataParams]("sync_data")
    on_connected = _On[Connected](
        "connected", "Call ``fn(event: Connected)`` once the first join succeeds."
    )
    off_connected = _Off[Connected]("connected")
    on_reconnecting = _On[Reconnecting](
        "reconnecting", "Call ``fn(event: Reconnecting)`` before each reconnection attempt."
    )
    off_reconnecting = _Off[Reconnecting]("reconnecting")
    on_reconnected = _On[Reconnected](
        "reconnected", "Call ``fn(event: Reconnected)`` when back in the session."
    )
    off_reconnected = _Off[Reconnected]("reconnected")
    on_disconnected = _On[Disconnected](
        "disconnected", "Call ``fn(event: Disconnected)`` whenever a connection ends."
    )
    off_disconnected = _Off[Disconnected]("disconnected")
    on_session_closed = _On[SessionClosedParams](
        "session_closed", "Call ``fn(event: SessionClosedParams)`` when the room is closed."
    )
    off_session_closed = _Off[SessionClosedParams]("session_closed")

    # -- errors as awaitables ----------------------------------------------------

    def errors(self) -> ErrorStream[SessionError]:
        """An async iterator of every error from now on, in arrival order.

        Several may run at once; each ends when the session closes (after the
        errors already queued), or early with ``aclose()``.
        """
        stream: ErrorStream[SessionError] = self._hub.stream("session_error")
        return stream

    def wait_for_error(
        self, code: int | None = None, *, timeout: float | None = None
    ) -> Coroutine[Any, Any, SessionError]:
        """Await the next error (with ``code``, if given) from the moment of this call.

        The wait is registered when this is called, not when it is first
        awaited, so ``asyncio.ensure_future(session.wait_for_error(303))``
        misses nothing that follows. Raises ``TimeoutError`` when none comes
        within ``timeout`` seconds, and ``SessionStateError`` (905) if the
        session is or gets closed first.
        """
        if self._hub.closed or self._state is SessionState.CLOSED:
            raise self._not_connected("wait_for_error", report=False)
        future = self._hub.waiter(
            "session_error", (lambda e: True) if code is None else (lambda e: e.code == code)
        )
        return self._wait_for(future, timeout)

    async def _wait_for(self, future: asyncio.Future[Any], timeout: float | None) -> SessionError:
        try:
            async with asyncio.timeout(timeout):
                error: SessionError = await future
                return error
        finally:
            self._hub.drop_waiter("session_error", future)

    def on_listener_error(self, fn: ListenerErrorHook) -> ListenerErrorHook:
        """Set the hook called as ``fn(exc, event, payload, listener)`` when a listener raises."""
        self._hub.error_hook = fn
        return fn
