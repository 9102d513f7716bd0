"""``Session``: one participant's connection to a room, and everything it hears.

Whole frames reach ``_on_frame`` straight from the connection
(``DirectConnection``), which decodes them, resolves responses by id and hands
events to the listener hub. Tasks a session owns: the reader of the current
connection (drains fragmented messages, notices the close), the supervisor
(waits for the reader to end and reconnects), one worker per listener (in the
hub), and the teardown started by ``close()``, which cancels and awaits the
others.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, Generic, Literal, TypeVar, overload

from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from roomsignal.catalog import ErrorCode, lookup
from roomsignal.client._connection import DirectConnection
from roomsignal.client._events import (
    Connected,
    Disconnected,
    Reconnected,
    Reconnecting,
    ReconnectPolicy,
    SessionState,
)
from roomsignal.client._listeners import ErrorStream, ListenerErrorHook, ListenerHub
from roomsignal.errors import (
    ProtocolError,
    SessionError,
    SessionErrorException,
    SessionStateError,
    exception_for,
    make_error,
)
from roomsignal.protocol import (
    SUBPROTOCOL,
    CloseSessionParams,
    CloseSessionRequest,
    ErrorResponse,
    GetSessionStateRequest,
    IceCandidateNotification,
    IceCandidateNotificationParams,
    IceCandidateParams,
    IceCandidateRequest,
    JoinParams,
    JoinRequest,
    JoinResult,
    LeaveRequest,
    MessageReceivedNotification,
    MessageReceivedParams,
    Model,
    Participant,
    ParticipantJoinedNotification,
    ParticipantJoinedParams,
    ParticipantLeftNotification,
    ParticipantLeftParams,
    PingRequest,
    PingResult,
    PublishParams,
    PublishRequest,
    PublishResult,
    Response,
    SdpAnswerNotification,
    SdpAnswerRequest,
    SdpNotificationParams,
    SdpOfferNotification,
    SdpOfferRequest,
    SdpParams,
    SendMessageParams,
    SendMessageRequest,
    SendSyncDataParams,
    SendSyncDataRequest,
    SessionClosedNotification,
    SessionClosedParams,
    SessionErrorNotification,
    SessionErrorParams,
    SessionStateResult,
    SimulateScenarioParams,
    SimulateScenarioRequest,
    StreamPublishedNotification,
    StreamPublishedParams,
    Streams,
    StreamUnpublishedNotification,
    StreamUnpublishedParams,
    SubscribeRequest,
    SubscribeRequestNotification,
    SubscribeRequestParams,
    SubscribeResult,
    SubscriptionEndedNotification,
    SubscriptionEndedParams,
    SyncDataNotification,
    SyncDataParams,
    SyncState,
    TargetParams,
    UnpublishRequest,
    UnsubscribeRequest,
    decode,
    decode_session_error,
    encode,
)
from roomsignal.tokens import peek_exp

__all__ = ["RequestTimeoutError", "Session"]

logger = logging.getLogger("roomsignal.client")

E = TypeVar("E")
R = TypeVar("R", bound=Model)
TokenProvider = Callable[[], Awaitable[str]]
_DEFAULT_POLICY = ReconnectPolicy()
_REPLACED = 4001


class RequestTimeoutError(SessionStateError, TimeoutError):
    """A request got no answer within ``request_timeout`` (code 902)."""


class _DialFailed(Exception):
    """The server could not be reached (reported as 901 by ``connect()``)."""


class _NotSent(Exception):
    """The connection closed before a request could be written: it was not sent."""


class _Closed:
    """Why a connection ended, as the reader saw it."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int | None, reason: str) -> None:
        self.code = code
        self.reason = reason


class _Register(Generic[E]):
    """``session.on_<event>``: registers a listener and returns it unchanged."""

    __slots__ = ("_event", "_hub")

    def __init__(self, hub: ListenerHub, event: str) -> None:
        self._hub = hub
        self._event = event

    def __call__(self, fn: Callable[[E], Any]) -> Callable[[E], Any]:
        self._hub.add(self._event, fn)
        return fn


class _Unregister(Generic[E]):
    """``session.off_<event>``: removes a listener (no-op if absent)."""

    __slots__ = ("_event", "_hub")

    def __init__(self, hub: ListenerHub, event: str) -> None:
        self._hub = hub
        self._event = event

    def __call__(self, fn: Callable[[E], Any]) -> None:
        self._hub.remove(self._event, fn)


class _On(Generic[E]):
    """Descriptor making ``on_<event>`` (or ``off_<event>``) for one event kind."""

    def __init__(self, event: str, doc: str) -> None:
        self.event = event
        self.__doc__ = doc

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> _On[E]: ...
    @overload
    def __get__(self, obj: Session, owner: type[Any]) -> _Register[E]: ...
    def __get__(self, obj: Session | None, owner: type[Any]) -> _On[E] | _Register[E]:
        if obj is None:
            return self
        return _Register(obj._hub, self.event)


class _Off(Generic[E]):
    """Descriptor making ``off_<event>`` for one event kind."""

    def __init__(self, event: str) -> None:
        self.event = event
        self.__doc__ = f"Remove a listener added with ``on_{event}`` (no-op if absent)."

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> _Off[E]: ...
    @overload
    def __get__(self, obj: Session, owner: type[Any]) -> _Unregister[E]: ...
    def __get__(self, obj: Session | None, owner: type[Any]) -> _Off[E] | _Unregister[E]:
        if obj is None:
            return self
        return _Unregister(obj._hub, self.event)


class Session:
    """One participant in one room: join, publish, subscribe, and hear every error.

    ``async with Session(url, token=..., name=...) as session:`` connects and
    joins, and on exit leaves and closes. Every error, whatever found it,
    reaches every ``on_session_error`` listener as a ``SessionError``; an
    awaited call that failed also raises ``SessionErrorException`` (one
    subclass per category). Methods may be called concurrently from any task
    of the session's event loop, listeners included.
    """

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

    def __init__(
        self,
        url: str,
        *,
        token: str,
        name: str,
        participant_type: str = "full",
        metadata: Mapping[str, Any] | None = None,
        token_provider: TokenProvider | None = None,
        reconnect: ReconnectPolicy | None = _DEFAULT_POLICY,
        request_timeout: float = 10.0,
        open_timeout: float = 10.0,
        close_timeout: float = 2.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        compression: Literal["deflate"] | None = None,
        max_size: int = 1 << 20,
        strict_listeners: bool = False,
        on_listener_error: ListenerErrorHook | None = None,
    ) -> None:
        """Configure a session; nothing is dialled until ``connect()``.

        ``token_provider`` is awaited for a fresh token when the current one
        has expired (before dialling, or when the server answers 1100).
        ``reconnect=None`` turns reconnection off. Raises ``ValueError`` for a
        URL that is not ``ws://`` or ``wss://``. ``strict_listeners`` makes
        ``close()`` re-raise the first exception a listener raised (for tests).
        """
        try:
            parse_uri(url)  # a malformed URL is the caller's bug: say so now
        except (InvalidURI, ValueError) as exc:
            raise ValueError(f"not a ws:// or wss:// URL: {url!r} ({exc})") from None
        self.url = url
        self.name = name
        self.participant_type = participant_type
        self.metadata = dict(metadata) if metadata is not None else None
        self.request_timeout = request_timeout
        self.reconnect_policy = reconnect
        self._token = token
        self._token_provider = token_provider
        self._connect_options: dict[str, Any] = {
            "subprotocols": [Subprotocol(SUBPROTOCOL)],
            "compression": compression,
            "open_timeout": open_timeout,
            "close_timeout": close_timeout,
            "ping_interval": ping_interval,
            "ping_timeout": ping_timeout,
            "max_size": max_size,
            "proxy": None,
            "create_connection": DirectConnection,
        }
        self._close_timeout = close_timeout
        self._hub = ListenerHub()
        self._hub.error_hook = on_listener_error
        self._hub.strict = strict_listeners
        self._state = SessionState.IDLE
        self._joined = asyncio.Event()
        self._ws: DirectConnection | None = None
        self._reader: asyncio.Task[_Closed] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._teardown_task: asyncio.Task[None] | None = None
        self._streak = 0  # reconnection attempts since the last stable connection
        self._connected_at = 0.0
        self._progress_mark = 0
        self._connect_task: asyncio.Task[Any] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self._last_seq = 0
        self._replayed = 0
        self._final: tuple[ErrorCode | None, str] | None = None
        self._participant_id: str | None = None
        self._participant_secret: str | None = None
        self._session_id: str | None = None
        self._roles: tuple[str, ...] = ()
        self._participants: dict[str, Participant] = {}
        self._join_snapshot: list[Participant] = []
        self._sync_state: SyncState | None = None

    # -- properties ------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """idle, connecting, joined, reconnecting or closed."""
        return self._state

    @property
    def participant_id(self) -> str | None:
        """Our participant id once joined (a fresh rejoin changes it)."""
        return self._participant_id

    @property
    def session_id(self) -> str | None:
        """The session (room) id once joined."""
        return self._session_id

    @property
    def roles(self) -> tuple[str, ...]:
        """Our roles in the session (from the token)."""
        return self._roles

    @property
    def participants(self) -> Mapping[str, Participant]:
        """The other members by id, kept current from notifications (read-only view)."""
        return MappingProxyType(self._participants)

    @property
    def sync_state(self) -> SyncState | None:
        """The session's last playback position, if any synchronizer sent one."""
        return self._sync_state

    @property
    def last_seq(self) -> int:
        """The seq of the last notification delivered (what a resume asks for)."""
        return self._last_seq

    @property
    def listener_failures(self) -> int:
        """How many times a listener raised."""
        return self._hub.failures

    # -- life cycle --------------------------------------------------------------

    async def __aenter__(self) -> Session:
        try:
            await self.connect()
        except BaseException:
            await self.close()  # __aexit__ will not run: release the listeners now
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Dial, then join; returns once joined.

        Raises ``SessionErrorException`` (the error has reached the listeners
        first) when the token has expired and no ``token_provider`` is set
        (1100, found before dialling), when the server cannot be reached
        (901), when ``join`` fails (the server's code), or when ``close()``
        ends it (905). A failed connect leaves the session idle, so
        ``connect()`` may be called again. Safe to cancel. Not to be called
        concurrently with itself.
        """
        if self._state is SessionState.CLOSED:
            raise self._not_connected("connect")
        if self._state is not SessionState.IDLE:
            raise RuntimeError(f"connect() called while {self._state}")
        self._state = SessionState.CONNECTING
        task = asyncio.current_task()
        self._connect_task = task
        try:
            try:
                await self._join_new_connection(resume=False, token_retry=True)
            except _DialFailed as exc:
                raise self._client_error(
                    ErrorCode.GENERIC_CONNECTION_ERROR, str(exc), "join"
                ) from exc.__cause__
        except asyncio.CancelledError:
            await self._abandon_connect(join_in_flight=True)
            if self._closing and task is not None and task.cancelling() <= 1:
                task.uncancel()  # close() cancelled us: say so, as for any late call
                raise self._not_connected("connect") from None
            raise
        except BaseException:
            await self._abandon_connect()
            raise
        finally:
            self._connect_task = None
        self._state = SessionState.JOINED
        self._joined.set()
        self._connected_at = self._loop_time()
        self._progress_mark = self._last_seq
        self._supervisor = asyncio.get_running_loop().create_task(
            self._supervise(), name="roomsignal-supervisor"
        )
        assert self._participant_id is not None and self._session_id is not None
        self._hub.emit(
            "connected",
            Connected(
                session_id=self._session_id,
                participant_id=self._participant_id,
                participants=self._join_snapshot,
            ),
        )

    async def _abandon_connect(self, *, join_in_flight: bool = False) -> None:
        ws, reader = self._ws, self._reader
        if join_in_flight and ws is not None:
            # The server may have seated us already: leave after the join (the server
            # handles frames in order), or the seat would hold our name for a while.
            ws.on_frame = None
            if reader is not None:
                reader.cancel()
                await asyncio.wait({reader})
            with contextlib.suppress(ConnectionClosed):
                await ws.send(encode(LeaveRequest(id=next(self._ids))))
        await self._drop_connection()
        if self._state is SessionState.CONNECTING:
            self._state = SessionState.IDLE
        # Wake calls waiting for a join that will not come: they see the state.
        self._joined.set()
        self._joined.clear()

    async def close(self) -> None:
        """Leave (if joined) and close; idempotent, bounded in time, valid in every state.

        Cancels and awaits every task the session started (a ``connect()`` in
        progress raises 905). Queued events are still delivered to listeners
        for up to ``close_timeout`` seconds. Cancelling ``close()`` does not
        stop the teardown: a later ``close()`` waits for the same one. Called
        from a listener, it returns once the teardown has started (that
        listener is not waited for while it runs). With ``strict_listeners``,
        re-raises the first listener exception.
        """
        if self._teardown_task is None:
            was_joined = self._state is SessionState.JOINED
            was_active = was_joined or self._state is SessionState.RECONNECTING
            self._closing = True
            self._state = SessionState.CLOSED
            self._joined.set()  # wake requests waiting for a rejoin; they see CLOSED
            self._teardown_task = asyncio.get_running_loop().create_task(
                self._teardown(was_joined, was_active), name="roomsignal-close"
            )
        if self._hub.is_listener_task(asyncio.current_task()):
            return
        await asyncio.shield(self._teardown_task)
        if self._hub.strict and self._hub.first_failure is not None:
            raise self._hub.first_failure

    async def _teardown(self, was_joined: bool, was_active: bool) -> None:
        connecting = self._connect_task
        if connecting is not None and not connecting.done():
            connecting.cancel()
            await asyncio.wait({connecting})
        if was_joined and self._ws is not None and self._final is None:
            # (No leave once the server closed the session: it is closing us.)
            with contextlib.suppress(SessionErrorException, _NotSent, TimeoutError):
                async with asyncio.timeout(min(self.request_timeout, self._close_timeout)):
                    await self._request_on(self._ws, "leave", lambda i: LeaveRequest(id=i))
        supervisor = self._supervisor
        if supervisor is not None:
            supervisor.cancel()
            await asyncio.wait({supervisor})
        await self._drop_connection()
        self._fail_pending("the session was closed")
        self._end_waits()
        if was_active:
            self._hub.emit(
                "disconnected",
                Disconnected(code=1000, reason="closed by the client", will_reconnect=False),
            )
        await self._hub.aclose(self._close_timeout)

    def _end_waits(self) -> None:
        """Fail pending ``wait_for_error`` calls and end ``errors()`` iterators (closed)."""
        self._hub.fail_waiters(lambda: self._not_connected("wait_for_error", report=False))
        self._hub.end_streams()

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

    # -- requests ------------------------------------------------------------------

    async def publish(self, *, audio: bool = True, video: bool = True) -> str:
        """Start (or update) publishing; returns the stream id."""
        result = await self._call(
            "publish",
            lambda i: PublishRequest(id=i, params=PublishParams(audio=audio, video=video)),
        )
        return self._result(PublishResult, result, "publish").stream_id

    async def unpublish(self) -> None:
        """Stop publishing."""
        await self._call("unpublish", lambda i: UnpublishRequest(id=i))

    async def subscribe(self, target: str) -> str:
        """Ask for ``target``'s media; returns the exchange id (the offer comes as an event)."""
        result = await self._call(
            "subscribe", lambda i: SubscribeRequest(id=i, params=TargetParams(target=target))
        )
        return self._result(SubscribeResult, result, "subscribe").exchange_id

    async def unsubscribe(self, target: str) -> None:
        """End the subscription to ``target``."""
        await self._call(
            "unsubscribe", lambda i: UnsubscribeRequest(id=i, params=TargetParams(target=target))
        )

    async def send_offer(self, exchange_id: str, sdp: str) -> None:
        """Send our SDP offer on an exchange (publisher to subscriber)."""
        await self._call(
            "sdpOffer",
            lambda i: SdpOfferRequest(id=i, params=SdpParams(exchange_id=exchange_id, sdp=sdp)),
        )

    async def send_answer(self, exchange_id: str, sdp: str) -> None:
        """Send our SDP answer on an exchange (subscriber to publisher)."""
        await self._call(
            "sdpAnswer",
            lambda i: SdpAnswerRequest(id=i, params=SdpParams(exchange_id=exchange_id, sdp=sdp)),
        )

    async def send_ice_candidate(
        self,
        exchange_id: str,
        candidate: str,
        *,
        sdp_mid: str | None = None,
        sdp_m_line_index: int | None = None,
    ) -> None:
        """Trickle one ICE candidate on an exchange."""
        params = IceCandidateParams(
            exchange_id=exchange_id,
            candidate=candidate,
            sdp_mid=sdp_mid,
            sdp_m_line_index=sdp_m_line_index,
        )
        await self._call("iceCandidate", lambda i: IceCandidateRequest(id=i, params=params))

    async def send_message(self, text: str, to: list[str] | None = None) -> None:
        """Send chat text to everyone else, or only to the participant ids in ``to``."""
        await self._call(
            "sendMessage",
            lambda i: SendMessageRequest(id=i, params=SendMessageParams(text=text, to=to)),
        )

    async def send_sync_data(
        self, position: float, playing: bool, rate: float = 1.0, media_id: str | None = None
    ) -> None:
        """Broadcast the playback position (needs the ``synchronizer`` role)."""
        params = SendSyncDataParams(
            position=float(position), playing=playing, rate=float(rate), media_id=media_id
        )
        await self._call("sendSyncData", lambda i: SendSyncDataRequest(id=i, params=params))

    async def get_state(self) -> SessionStateResult:
        """The session's members and sync state, as the server sees them."""
        result = await self._call("getSessionState", lambda i: GetSessionStateRequest(id=i))
        return self._result(SessionStateResult, result, "getSessionState")

    async def close_session(self, reason: str | None = None) -> None:
        """Close the session for everyone (needs the ``moderator`` role)."""
        await self._call(
            "closeSession",
            lambda i: CloseSessionRequest(id=i, params=CloseSessionParams(reason=reason)),
        )

    async def ping(self) -> float:
        """One round trip; returns the server's time (Unix seconds)."""
        result = await self._call("ping", lambda i: PingRequest(id=i))
        return self._result(PingResult, result, "ping").server_time

    async def simulate_scenario(self, scenario: str, **params: Any) -> None:
        """Ask a server started with simulation allowed to misbehave (docs/protocol.md section 9)."""
        await self._call(
            "simulateScenario",
            lambda i: SimulateScenarioRequest(
                id=i, params=SimulateScenarioParams(scenario=scenario, **params)
            ),
        )

    # -- request machinery -----------------------------------------------------------

    async def _call(self, method: str, build: Callable[[int], Model]) -> dict[str, Any]:
        """Send a request once joined (waiting for a rejoin if need be) and await its result."""
        if self._state in (SessionState.IDLE, SessionState.CLOSED):
            raise self._not_connected(method)
        try:
            async with asyncio.timeout(self.request_timeout):
                while True:
                    if not self._joined.is_set():
                        await self._joined.wait()
                    ws, reader = self._ws, self._reader
                    if self._state is not SessionState.JOINED or ws is None:
                        raise self._not_connected(method)
                    try:
                        return await self._request_on(ws, method, build, timed=False)
                    except _NotSent:
                        # The connection died before the frame left: nothing was sent,
                        # so wait for its reader to see it (that clears ``_joined``)
                        # and send again once rejoined.
                        if reader is not None:
                            await asyncio.wait({reader})
        except TimeoutError as exc:
            if isinstance(exc, SessionErrorException):
                raise
            raise self._timeout(method) from None

    async def _request_on(
        self,
        ws: ClientConnection,
        method: str,
        build: Callable[[int], Model],
        *,
        timed: bool = True,
    ) -> dict[str, Any]:
        """Send one request on ``ws`` and await the reader's answer.

        Errors answering it reach the listeners (from the reader) before this
        raises. With ``timed``, bounded by ``request_timeout`` (902 on expiry).
        Raises ``_NotSent`` if the connection closed before the frame was written.
        """
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = ws.loop.create_future()
        self._pending[request_id] = (method, future)
        try:
            try:
                await ws.send(encode(build(request_id)))
            except ConnectionClosed:
                raise _NotSent from None
            if not timed:
                return await future
            try:
                async with asyncio.timeout(self.request_timeout):
                    return await future
            except TimeoutError:
                if future.done() and not future.cancelled():
                    return future.result()  # it came as the deadline fired (or raises)
                raise self._timeout(method) from None
        finally:
            self._pending.pop(request_id, None)

    def _result(self, model: type[R], raw: dict[str, Any], method: str) -> R:
        """Parse a result; a malformed one is a protocol error (reported, then raised)."""
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            errors = [
                {"loc": ["result", *err["loc"]], "msg": err["msg"]}
                for err in exc.errors(include_url=False, include_input=False)
            ]
            raise self._client_error(
                ErrorCode.INVALID_REQUEST,
                f"the server's result for {method!r} is malformed",
                method,
                errors=errors,
            ) from None

    def _client_error(
        self, code: ErrorCode, message: str, method: str | None, **data: Any
    ) -> SessionErrorException:
        """Report an error the client found itself; returns the exception to raise."""
        details = {"name": code.name, **({"method": method} if method else {}), **data}
        error = self._make_error(code, message, details, method, "client")
        self._hub.emit("session_error", error)
        return exception_for(error)

    def _timeout(self, method: str) -> SessionErrorException:
        error = self._make_error(
            ErrorCode.REQUEST_TIMEOUT_ERROR_CODE,
            f"no answer to {method!r} within {self.request_timeout} s",
            {"name": ErrorCode.REQUEST_TIMEOUT_ERROR_CODE.name, "method": method},
            method,
            "client",
        )
        self._hub.emit("session_error", error)
        return RequestTimeoutError(error)

    def _not_connected(self, method: str, *, report: bool = True) -> SessionErrorException:
        code = ErrorCode.NOT_CONNECTED_ERROR_CODE
        message = f"{method!r} called while the session is {self._state}"
        if report and not self._hub.closed:
            return self._client_error(code, message, method)
        return exception_for(self._make_error(code, message, {"name": code.name}, method, "client"))

    def _make_error(
        self,
        code: int,
        message: str,
        data: Mapping[str, Any] | None,
        method: str | None,
        source: Literal["server", "client"],
    ) -> SessionError:
        return make_error(
            code,
            message,
            data,
            method=method,
            source=source,
            session_id=self._session_id,
            participant_id=self._participant_id,
        )

    def _fail_pending(self, why: str) -> None:
        """Fail every request in flight (the connection ended under it)."""
        pending, self._pending = self._pending, {}
        for method, future in pending.values():
            if future.done():
                continue
            if self._closing and method == "leave":
                # close()'s own leave: the connection ending under it is what close wants.
                future.set_result({})
                continue
            code = (
                ErrorCode.NOT_CONNECTED_ERROR_CODE
                if self._closing
                else ErrorCode.GENERIC_CONNECTION_ERROR
            )
            exc = self._client_error(code, f"{why} while {method!r} was in flight", method)
            future.set_exception(exc)
            future.exception()  # a cancelled caller must not leave it unretrieved

    # -- connection ----------------------------------------------------------------

    async def _fresh_token(self) -> str:
        """The token to join with: refreshed through the provider when it has expired."""
        exp = peek_exp(self._token)
        if exp is not None and exp <= time.time():
            if self._token_provider is None:
                raise self._client_error(
                    ErrorCode.TOKEN_EXPIRED,
                    "the token has expired (found before dialling)",
                    "join",
                    exp=exp,
                )
            self._token = await self._provide_token()
        return self._token

    async def _join_new_connection(self, *, resume: bool, token_retry: bool) -> JoinResult:
        """Dial a new connection, start its reader and join (resuming if asked).

        Raises ``_DialFailed`` when the server cannot be reached, and the
        ``SessionErrorException`` of a failed join.
        """
        token = await self._fresh_token()
        try:
            ws = await connect(self.url, **self._connect_options)
        except (OSError, InvalidHandshake, InvalidURI, ValueError, TimeoutError) as exc:
            why = str(exc) or type(exc).__name__
            raise _DialFailed(f"cannot connect to {self.url}: {why}") from exc
        assert isinstance(ws, DirectConnection)
        ws.on_frame = self._on_frame
        self._ws = ws
        self._reader = asyncio.get_running_loop().create_task(
            self._read(ws), name="roomsignal-reader"
        )
        params = JoinParams(
            token=token,
            name=self.name,
            participant_type=self.participant_type,
            metadata=self.metadata,
            old_participant_secret=self._participant_secret if resume else None,
            last_seq=self._last_seq if resume else None,
        )
        try:
            result = await self._request_on(ws, "join", lambda i: JoinRequest(id=i, params=params))
        except SessionErrorException as exc:
            if (
                exc.code == ErrorCode.TOKEN_EXPIRED
                and self._token_provider is not None
                and token_retry
            ):
                await self._drop_connection()
                self._token = await self._provide_token()
                return await self._join_new_connection(resume=resume, token_retry=False)
            raise
        except _NotSent:
            raise _DialFailed(f"the connection to {self.url} closed before joining") from None
        return self._result(JoinResult, result, "join")

    async def _drop_connection(self) -> None:
        """Close the current connection (bounded) and await its reader."""
        ws, reader = self._ws, self._reader
        self._ws = self._reader = None
        if ws is not None:
            ws.on_frame = None
            try:
                async with asyncio.timeout(self._close_timeout):
                    await ws.close()
            except TimeoutError:
                pass
            finally:
                if ws.transport is not None:
                    ws.transport.abort()
        if reader is not None and reader is not asyncio.current_task():
            if not reader.done():
                reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _provide_token(self) -> str:
        """A fresh token from the provider; its failure is reported as 1100."""
        assert self._token_provider is not None
        try:
            token = await self._token_provider()
            if not isinstance(token, str):
                raise TypeError(f"token_provider returned {type(token).__name__}, not str")
        except Exception as exc:
            logger.exception("token_provider failed")
            raise self._client_error(
                ErrorCode.TOKEN_EXPIRED,
                f"the token has expired and token_provider failed: {exc!r}",
                "join",
            ) from exc
        return token

    async def _supervise(self) -> None:
        """Wait for each connection to end; reconnect or finish (never raises)."""
        try:
            await self._supervise_connections()
        except Exception as exc:  # a bug of ours: end the session loudly, not silently
            logger.exception("session supervisor failed")
            if not self._closing:
                await self._drop_connection()
                self._finish(ErrorCode.CONNECTION_LOST_ERROR_CODE, f"internal failure: {exc!r}")

    async def _supervise_connections(self) -> None:
        while True:
            reader = self._reader
            if reader is None:
                return
            closed = await asyncio.shield(reader)
            if self._closing:
                return
            final = self._final_reason(closed)
            policy = self.reconnect_policy
            if final is None and policy is None:
                final = (
                    ErrorCode.CONNECTION_LOST_ERROR_CODE,
                    f"the connection was lost ({closed.reason}) and reconnection is off",
                )
            if final is None:
                self._state = SessionState.RECONNECTING
            self._hub.emit(
                "disconnected",
                Disconnected(code=closed.code, reason=closed.reason, will_reconnect=final is None),
            )
            if final is not None or policy is None:
                self._finish(*(final or (None, "")))
                await self._drop_connection()
                return
            # A connection that neither delivered anything new nor stayed up for a
            # while does not reset the count of attempts: a seat whose replay kills
            # every new connection must not make the client loop forever.
            stable = self._loop_time() - self._connected_at >= policy.stable_after
            if stable or self._last_seq > self._progress_mark:
                self._streak = 0
            await self._drop_connection()
            final = await self._reconnect(policy)
            if final is not None:
                self._hub.emit(
                    "disconnected",
                    Disconnected(code=None, reason=final[1], will_reconnect=False),
                )
                self._finish(*final)
                return

    def _final_reason(self, closed: _Closed) -> tuple[ErrorCode | None, str] | None:
        """Why reconnecting cannot help, or None if it may."""
        if self._final is not None:
            return self._final
        if closed.code == _REPLACED:
            return (
                ErrorCode.CONNECTION_REPLACED_ERROR_CODE,
                f"another connection took this seat ({closed.code} {closed.reason})",
            )
        if closed.code == 1000:
            return (
                ErrorCode.CONNECTION_LOST_ERROR_CODE,
                f"the server closed the connection ({closed.code} {closed.reason})",
            )
        return None

    def _finish(self, code: ErrorCode | None, message: str) -> None:
        """The session is over for good (not by ``close()``): say so once."""
        self._state = SessionState.CLOSED
        self._joined.set()
        self._final = (code, message)
        if code is not None:
            self._client_error(code, message, None)
        self._fail_pending(message)
        self._end_waits()

    async def _reconnect(self, policy: ReconnectPolicy) -> tuple[ErrorCode | None, str] | None:
        """Retry per ``policy``; None once back in the session, else why it gave up."""
        resume = self._participant_secret is not None
        last_seq_before = self._last_seq
        while self._streak < policy.max_attempts:
            self._streak += 1
            attempt = self._streak
            delay = policy.delay(attempt)
            self._hub.emit("reconnecting", Reconnecting(attempt=attempt, delay=delay))
            await asyncio.sleep(delay)
            try:
                result = await self._join_new_connection(resume=resume, token_retry=True)
            except _DialFailed as exc:
                logger.info("reconnection attempt %d failed: %s", attempt, exc)
                continue
            except SessionErrorException as exc:
                await self._drop_connection()
                code = exc.code
                if code == ErrorCode.USER_NOT_AUTHORIZED_ERROR_CODE and resume:
                    if not policy.rejoin_on_reset:
                        return (ErrorCode.CONNECTION_LOST_ERROR_CODE, "the resume was refused")
                    resume = False
                    continue
                if code == ErrorCode.TOKEN_EXPIRED or not lookup(code).retryable:
                    return (
                        ErrorCode.CONNECTION_LOST_ERROR_CODE,
                        f"rejoining failed with {code} {exc.error.name}",
                    )
                logger.info("reconnection attempt %d failed: %s", attempt, exc)
                continue
            self._state = SessionState.JOINED
            self._joined.set()
            self._connected_at = self._loop_time()
            self._progress_mark = self._last_seq
            self._hub.emit(
                "reconnected",
                Reconnected(
                    resumed=result.resumed,
                    replayed=self._replayed if result.resumed else 0,
                    state_reset=not result.resumed,
                    attempts=attempt,
                    participant_id=result.participant_id,
                ),
            )
            if result.resumed:
                logger.info(
                    "resumed after %d attempt(s), %d notification(s) replayed since seq %d",
                    attempt,
                    self._replayed,
                    last_seq_before,
                )
            return None
        return (
            ErrorCode.CONNECTION_LOST_ERROR_CODE,
            f"gave up after {policy.max_attempts} reconnection attempts",
        )

    @staticmethod
    def _loop_time() -> float:
        return asyncio.get_running_loop().time()

    # -- the reader --------------------------------------------------------------------

    async def _read(self, ws: DirectConnection) -> _Closed:
        """Read ``ws`` until it closes; returns how it closed.

        Whole frames reach ``_on_frame`` straight from the connection (see
        ``DirectConnection``); this loop only drains what websockets queued
        (fragmented messages), in order, and notices the close.
        """
        try:
            recv = ws.recv
            while True:
                # Bytes straight to pydantic: no UTF-8 decode to str first. So a binary
                # frame holding a valid message is accepted too (liberal in what we
                # accept); one that holds anything else is a -32700 like any bad text.
                frame = await recv(decode=False)
                ws.took()
                self._on_frame(frame)
        except ConnectionClosed:
            pass
        finally:
            ws.on_frame = None
            if ws is self._ws or self._ws is None:
                if not self._closing:
                    self._joined.clear()
                self._fail_pending("the connection closed")
        rcvd = ws.protocol.close_rcvd
        if rcvd is not None:
            return _Closed(rcvd.code, rcvd.reason)
        sent = ws.protocol.close_sent
        if sent is not None:  # we closed it, e.g. 1009 for a frame over max_size
            return _Closed(sent.code, f"closed by the client: {sent.reason or sent.code}")
        return _Closed(None, "the connection dropped without a close frame")

    def _on_frame(self, frame: str | bytes) -> None:
        """Decode one frame and act on it: resolve a response, or emit events."""
        try:
            error = decode_session_error(frame)
            if error is not None:  # the hot path of error bursts
                self._on_session_error_dict(error)
                return
        except Exception:  # a bug of ours must not reach websockets' data_received
            logger.exception("failed to handle %r", frame)
            return
        try:
            message = decode(frame)
        except ProtocolError as exc:
            self._emit_error(exc.error)
            return
        try:
            handler = _NOTE_HANDLERS.get(type(message))
            if handler is not None:
                handler(self, message.params)  # type: ignore[union-attr]
            elif isinstance(message, Response):
                entry = self._pending.get(message.id)  # type: ignore[arg-type]
                if entry is not None and not entry[1].done():
                    if entry[0] == "join":
                        self._joined_result(message.result)
                    entry[1].set_result(message.result)
            elif isinstance(message, ErrorResponse):
                self._error_response(message)
            else:
                self._protocol_error(f"unexpected {type(message).__name__} from the server")
        except Exception:  # a bug of ours must not kill the connection
            logger.exception("failed to handle %r", message)

    def _emit_error(self, error: SessionError) -> None:
        if error.session_id is None and self._session_id is not None:
            error = error.model_copy(
                update={"session_id": self._session_id, "participant_id": self._participant_id}
            )
        self._hub.emit("session_error", error)

    def _protocol_error(self, message: str) -> None:
        code = ErrorCode.INVALID_REQUEST
        self._emit_error(self._make_error(code, message, {"name": code.name}, None, "client"))

    def _error_response(self, message: ErrorResponse) -> None:
        entry = self._pending.get(message.id) if isinstance(message.id, int) else None
        method = entry[0] if entry is not None else None
        err = message.error
        error = self._make_error(err.code, err.message, err.data, method, "server")
        self._hub.emit("session_error", error)  # listeners first, then the caller
        if entry is not None and not entry[1].done():
            entry[1].set_exception(exception_for(error))

    def _joined_result(self, raw: dict[str, Any]) -> None:
        """Adopt a join result before any notification that follows it is read."""
        try:
            result = JoinResult.model_validate(raw)
        except ValueError:
            return  # the caller's own validation reports it
        if result.resumed:
            self._replayed = max(0, result.seq - self._last_seq)
        else:
            self._last_seq = result.seq
            self._replayed = 0
            self._participants = {p.participant_id: p for p in result.participants}
            # Who was there at the join: later arrivals come as participant_joined.
            self._join_snapshot = list(result.participants)
        self._session_id = result.session_id
        self._participant_id = result.participant_id
        self._participant_secret = result.participant_secret
        self._roles = tuple(result.roles)
        self._sync_state = result.sync_state

    # -- notification handlers (called by the reader, in order) ---------------------

    def _fresh(self, seq: int) -> bool:
        """True for a notification not delivered yet; drops replayed duplicates."""
        if seq <= self._last_seq:
            logger.debug("dropping duplicate notification seq %d", seq)
            return False
        if seq != self._last_seq + 1:
            logger.warning("notification seq jumped from %d to %d", self._last_seq, seq)
        self._last_seq = seq
        return True

    def _on_session_error_note(self, params: SessionErrorParams) -> None:
        self._on_session_error_dict(params.model_dump())

    def _on_session_error_dict(self, params: dict[str, Any]) -> None:
        # The hot path of error bursts: _fresh() and _make_error() inlined.
        seq = params["seq"]
        if seq != self._last_seq + 1 and not self._fresh(seq):
            return
        self._last_seq = seq
        self._hub.emit(
            "session_error",
            make_error(
                params["code"],
                params["message"],
                params.get("data"),
                session_id=self._session_id,
                participant_id=self._participant_id,
                copy_data=False,  # a dict the decoder just made
            ),
        )

    def _on_participant_joined_note(self, params: ParticipantJoinedParams) -> None:
        if self._fresh(params.seq):
            self._participants[params.participant.participant_id] = params.participant
            self._hub.emit("participant_joined", params)

    def _on_participant_left_note(self, params: ParticipantLeftParams) -> None:
        if self._fresh(params.seq):
            self._participants.pop(params.participant_id, None)
            self._hub.emit("participant_left", params)

    def _on_stream_published_note(self, params: StreamPublishedParams) -> None:
        if self._fresh(params.seq):
            self._set_streams(
                params.participant_id, Streams(audio=params.audio, video=params.video)
            )
            self._hub.emit("stream_published", params)

    def _on_stream_unpublished_note(self, params: StreamUnpublishedParams) -> None:
        if self._fresh(params.seq):
            self._set_streams(params.participant_id, None)
            self._hub.emit("stream_unpublished", params)

    def _set_streams(self, participant_id: str, streams: Streams | None) -> None:
        participant = self._participants.get(participant_id)
        if participant is not None:
            self._participants[participant_id] = participant.model_copy(update={"streams": streams})

    def _on_sync_data_note(self, params: SyncDataParams) -> None:
        if self._fresh(params.seq):
            self._sync_state = SyncState(
                from_=params.from_,
                position=params.position,
                playing=params.playing,
                rate=params.rate,
                media_id=params.media_id,
                server_time=params.server_time,
            )
            self._hub.emit("sync_data", params)

    def _on_session_closed_note(self, params: SessionClosedParams) -> None:
        if self._fresh(params.seq):
            self._final = (None, f"the session was closed: {params.reason}")
            self._hub.emit("session_closed", params)


def _relay(event: str) -> Callable[[Session, Any], None]:
    """A handler that only passes a fresh notification on to ``event``'s listeners."""

    def handle(session: Session, params: Any) -> None:
        if session._fresh(params.seq):
            session._hub.emit(event, params)

    return handle


# Notification type -> handler(session, params); one table for every session.
_NOTE_HANDLERS: dict[type[Model], Callable[[Session, Any], None]] = {
    SessionErrorNotification: Session._on_session_error_note,
    ParticipantJoinedNotification: Session._on_participant_joined_note,
    ParticipantLeftNotification: Session._on_participant_left_note,
    StreamPublishedNotification: Session._on_stream_published_note,
    StreamUnpublishedNotification: Session._on_stream_unpublished_note,
    SubscribeRequestNotification: _relay("subscribe_request"),
    SubscriptionEndedNotification: _relay("subscription_ended"),
    SdpOfferNotification: _relay("sdp_offer"),
    SdpAnswerNotification: _relay("sdp_answer"),
    IceCandidateNotification: _relay("ice_candidate"),
    MessageReceivedNotification: _relay("message"),
    SyncDataNotification: Session._on_sync_data_note,
    SessionClosedNotification: Session._on_session_closed_note,
}
