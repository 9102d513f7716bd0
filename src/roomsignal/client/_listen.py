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
from roomsignal.client._payloads import MessageReceived, ParticipantLeft, SubscribeRequest
from roomsignal.errors import SessionError, SessionErrorException
from roomsignal.protocol import (
    IceCandidateNotificationParams,
    ParticipantJoinedParams,
    SdpNotificationParams,
    SessionClosedParams,
    StreamPublishedParams,
    StreamUnpublishedParams,
    SubscriptionEndedParams,
    SyncDataParams,
)

__all__ = ["ListenerMethods"]

E = TypeVar("E")
# One listener type per payload: ``@session.on_<event>`` returns the function
# with its own type (its parameter names and return type), which a TypeVar
# bound to ``Callable[[E], object]`` cannot say for a class parameter ``E``;
# so ``_Register.__call__`` has one overload per payload (selected by ``self``).
_F0 = TypeVar("_F0", bound=Callable[[SessionError], object])
_F1 = TypeVar("_F1", bound=Callable[[ParticipantJoinedParams], object])
_F2 = TypeVar("_F2", bound=Callable[[ParticipantLeft], object])
_F3 = TypeVar("_F3", bound=Callable[[StreamPublishedParams], object])
_F4 = TypeVar("_F4", bound=Callable[[StreamUnpublishedParams], object])
_F5 = TypeVar("_F5", bound=Callable[[SubscribeRequest], object])
_F6 = TypeVar("_F6", bound=Callable[[SubscriptionEndedParams], object])
_F7 = TypeVar("_F7", bound=Callable[[SdpNotificationParams], object])
_F8 = TypeVar("_F8", bound=Callable[[IceCandidateNotificationParams], object])
_F9 = TypeVar("_F9", bound=Callable[[MessageReceived], object])
_F10 = TypeVar("_F10", bound=Callable[[SyncDataParams], object])
_F11 = TypeVar("_F11", bound=Callable[[Connected], object])
_F12 = TypeVar("_F12", bound=Callable[[Reconnecting], object])
_F13 = TypeVar("_F13", bound=Callable[[Reconnected], object])
_F14 = TypeVar("_F14", bound=Callable[[Disconnected], object])
_F15 = TypeVar("_F15", bound=Callable[[SessionClosedParams], object])


class _Register(Generic[E]):
    """``session.on_<event>``: registers a listener and returns it unchanged."""

    __slots__ = ("_event", "_hub")

    def __init__(self, hub: ListenerHub, event: str) -> None:
        self._hub = hub
        self._event = event

    @overload
    def __call__(self: _Register[SessionError], fn: _F0) -> _F0: ...
    @overload
    def __call__(self: _Register[ParticipantJoinedParams], fn: _F1) -> _F1: ...
    @overload
    def __call__(self: _Register[ParticipantLeft], fn: _F2) -> _F2: ...
    @overload
    def __call__(self: _Register[StreamPublishedParams], fn: _F3) -> _F3: ...
    @overload
    def __call__(self: _Register[StreamUnpublishedParams], fn: _F4) -> _F4: ...
    @overload
    def __call__(self: _Register[SubscribeRequest], fn: _F5) -> _F5: ...
    @overload
    def __call__(self: _Register[SubscriptionEndedParams], fn: _F6) -> _F6: ...
    @overload
    def __call__(self: _Register[SdpNotificationParams], fn: _F7) -> _F7: ...
    @overload
    def __call__(self: _Register[IceCandidateNotificationParams], fn: _F8) -> _F8: ...
    @overload
    def __call__(self: _Register[MessageReceived], fn: _F9) -> _F9: ...
    @overload
    def __call__(self: _Register[SyncDataParams], fn: _F10) -> _F10: ...
    @overload
    def __call__(self: _Register[Connected], fn: _F11) -> _F11: ...
    @overload
    def __call__(self: _Register[Reconnecting], fn: _F12) -> _F12: ...
    @overload
    def __call__(self: _Register[Reconnected], fn: _F13) -> _F13: ...
    @overload
    def __call__(self: _Register[Disconnected], fn: _F14) -> _F14: ...
    @overload
    def __call__(self: _Register[SessionClosedParams], fn: _F15) -> _F15: ...
    def __call__(self, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """Register ``fn`` (sync or async) and return it unchanged, with its own type."""
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
    ``on_message = on_message(fn: (MessageReceived) -> object) -> fn``.
    """

    def __init__(self, event: str, doc: str) -> None:
        self.event = event
        self.__doc__ = doc

    def __repr__(self) -> str:
        return f"on_{self.event}(fn: ({_payload_name(self)}) -> object) -> fn"

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
    """``on_session_error(fn: (SessionError) -> object) -> fn``: call ``fn(error: SessionError)``
    for every error, in arrival order.
    """
    off_session_error = _Off[SessionError]("session_error")
    """``off_session_error(fn)``: remove a listener added with ``on_session_error`` (no-op if
    absent).
    """
    on_participant_joined = _On[ParticipantJoinedParams](
        "participant_joined", "Call ``fn(event: ParticipantJoinedParams)`` when someone joins."
    )
    """``on_participant_joined(fn: (ParticipantJoinedParams) -> object) -> fn``: call ``fn(event:
    ParticipantJoinedParams)`` when someone joins.
    """
    off_participant_joined = _Off[ParticipantJoinedParams]("participant_joined")
    """``off_participant_joined(fn)``: remove a listener added with ``on_participant_joined`` (no-op
    if absent).
    """
    on_participant_left = _On[ParticipantLeft](
        "participant_left",
        "Call ``fn(event: ParticipantLeft)`` when someone leaves (``event.participant``: who).",
    )
    """``on_participant_left(fn: (ParticipantLeft) -> object) -> fn``: call ``fn(event:
    ParticipantLeft)`` when someone leaves (``event.participant``: who).
    """
    off_participant_left = _Off[ParticipantLeft]("participant_left")
    """``off_participant_left(fn)``: remove a listener added with ``on_participant_left`` (no-op if
    absent).
    """
    on_stream_published = _On[StreamPublishedParams](
        "stream_published", "Call ``fn(event: StreamPublishedParams)`` when someone publishes."
    )
    """``on_stream_published(fn: (StreamPublishedParams) -> object) -> fn``: call ``fn(event:
    StreamPublishedParams)`` when someone publishes.
    """
    off_stream_published = _Off[StreamPublishedParams]("stream_published")
    """``off_stream_published(fn)``: remove a listener added with ``on_stream_published`` (no-op if
    absent).
    """
    on_stream_unpublished = _On[StreamUnpublishedParams](
        "stream_unpublished", "Call ``fn(event: StreamUnpublishedParams)`` on an unpublish."
    )
    """``on_stream_unpublished(fn: (StreamUnpublishedParams) -> object) -> fn``: call ``fn(event:
    StreamUnpublishedParams)`` on an unpublish.
    """
    off_stream_unpublished = _Off[StreamUnpublishedParams]("stream_unpublished")
    """``off_stream_unpublished(fn)``: remove a listener added with ``on_stream_unpublished`` (no-op
    if absent).
    """
    on_subscribe_request = _On[SubscribeRequest](
        "subscribe_request",
        "Call ``fn(event: SubscribeRequest)`` when a subscriber (``event.subscriber``) "
        "wants our media (answer with ``send_offer``).",
    )
    """``on_subscribe_request(fn: (SubscribeRequest) -> object) -> fn``: call ``fn(event:
    SubscribeRequest)`` when a subscriber (``event.subscriber``) wants our media (answer with
    ``send_offer``).
    """
    off_subscribe_request = _Off[SubscribeRequest]("subscribe_request")
    """``off_subscribe_request(fn)``: remove a listener added with ``on_subscribe_request`` (no-op
    if absent).
    """
    on_subscription_ended = _On[SubscriptionEndedParams](
        "subscription_ended", "Call ``fn(event: SubscriptionEndedParams)`` when one ends."
    )
    """``on_subscription_ended(fn: (SubscriptionEndedParams) -> object) -> fn``: call ``fn(event:
    SubscriptionEndedParams)`` when one ends.
    """
    off_subscription_ended = _Off[SubscriptionEndedParams]("subscription_ended")
    """``off_subscription_ended(fn)``: remove a listener added with ``on_subscription_ended`` (no-op
    if absent).
    """
    on_sdp_offer = _On[SdpNotificationParams](
        "sdp_offer", "Call ``fn(event: SdpNotificationParams)`` for an offer (answer it)."
    )
    """``on_sdp_offer(fn: (SdpNotificationParams) -> object) -> fn``: call ``fn(event:
    SdpNotificationParams)`` for an offer (answer it).
    """
    off_sdp_offer = _Off[SdpNotificationParams]("sdp_offer")
    """``off_sdp_offer(fn)``: remove a listener added with ``on_sdp_offer`` (no-op if absent)."""
    on_sdp_answer = _On[SdpNotificationParams](
        "sdp_answer", "Call ``fn(event: SdpNotificationParams)`` for an answer."
    )
    """``on_sdp_answer(fn: (SdpNotificationParams) -> object) -> fn``: call ``fn(event:
    SdpNotificationParams)`` for an answer.
    """
    off_sdp_answer = _Off[SdpNotificationParams]("sdp_answer")
    """``off_sdp_answer(fn)``: remove a listener added with ``on_sdp_answer`` (no-op if absent).
    """
    on_ice_candidate = _On[IceCandidateNotificationParams](
        "ice_candidate", "Call ``fn(event: IceCandidateNotificationParams)`` per candidate."
    )
    """``on_ice_candidate(fn: (IceCandidateNotificationParams) -> object) -> fn``: call ``fn(event:
    IceCandidateNotificationParams)`` per candidate.
    """
    off_ice_candidate = _Off[IceCandidateNotificationParams]("ice_candidate")
    """``off_ice_candidate(fn)``: remove a listener added with ``on_ice_candidate`` (no-op if
    absent).
    """
    on_message = _On[MessageReceived](
        "message",
        "Call ``fn(event: MessageReceived)`` for every chat message (``event.sender``: who).",
    )
    """``on_message(fn: (MessageReceived) -> object) -> fn``: call ``fn(event: MessageReceived)``
    for every chat message (``event.sender``: who).
    """
    off_message = _Off[MessageReceived]("message")
    """``off_message(fn)``: remove a listener added with ``on_message`` (no-op if absent)."""
    on_sync_data = _On[SyncDataParams](
        "sync_data", "Call ``fn(event: SyncDataParams)`` for every playback update."
    )
    """``on_sync_data(fn: (SyncDataParams) -> object) -> fn``: call ``fn(event: SyncDataParams)``
    for every playback update.
    """
    off_sync_data = _Off[SyncDataParams]("sync_data")
    """``off_sync_data(fn)``: remove a listener added with ``on_sync_data`` (no-op if absent)."""
    on_connected = _On[Connected](
        "connected", "Call ``fn(event: Connected)`` once the first join succeeds."
    )
    """``on_connected(fn: (Connected) -> object) -> fn``: call ``fn(event: Connected)`` once the
    first join succeeds.
    """
    off_connected = _Off[Connected]("connected")
    """``off_connected(fn)``: remove a listener added with ``on_connected`` (no-op if absent)."""
    on_reconnecting = _On[Reconnecting](
        "reconnecting", "Call ``fn(event: Reconnecting)`` before each reconnection attempt."
    )
    """``on_reconnecting(fn: (Reconnecting) -> object) -> fn``: call ``fn(event: Reconnecting)``
    before each reconnection attempt.
    """
    off_reconnecting = _Off[Reconnecting]("reconnecting")
    """``off_reconnecting(fn)``: remove a listener added with ``on_reconnecting`` (no-op if
    absent).
    """
    on_reconnected = _On[Reconnected](
        "reconnected", "Call ``fn(event: Reconnected)`` when back in the session."
    )
    """``on_reconnected(fn: (Reconnected) -> object) -> fn``: call ``fn(event: Reconnected)`` when
    back in the session.
    """
    off_reconnected = _Off[Reconnected]("reconnected")
    """``off_reconnected(fn)``: remove a listener added with ``on_reconnected`` (no-op if absent).
    """
    on_disconnected = _On[Disconnected](
        "disconnected", "Call ``fn(event: Disconnected)`` whenever a connection ends."
    )
    """``on_disconnected(fn: (Disconnected) -> object) -> fn``: call ``fn(event: Disconnected)``
    whenever a connection ends.
    """
    off_disconnected = _Off[Disconnected]("disconnected")
    """``off_disconnected(fn)``: remove a listener added with ``on_disconnected`` (no-op if
    absent).
    """
    on_session_closed = _On[SessionClosedParams](
        "session_closed", "Call ``fn(event: SessionClosedParams)`` when the room is closed."
    )
    """``on_session_closed(fn: (SessionClosedParams) -> object) -> fn``: call ``fn(event:
    SessionClosedParams)`` when the room is closed.
    """
    off_session_closed = _Off[SessionClosedParams]("session_closed")
    """``off_session_closed(fn)``: remove a listener added with ``on_session_closed`` (no-op if
    absent).
    """

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
