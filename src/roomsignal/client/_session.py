"""``Session``: the asyncio shell around the client core (``_core.ClientCore``).

Whole frames reach ``_on_frames`` straight from the connection
(``DirectConnection``); the core says what each means, and the shell turns
that into listener events (the hub) and settled futures. The shell owns the
I/O: dialling, sending, keepalive (websockets'), the supervisor and its
reconnection policy (``_supervise.py``), teardown. The public API is spread
over mixins by concern: listeners and error awaitables (``_listen.py``), one
method per request (``_requests.py``).

Tasks a session owns: the reader of the current connection (drains
fragmented messages, notices the close), the supervisor (waits for the reader
to end and reconnects), one worker per listener (in the hub), and the
teardown started by ``close()``, which cancels and awaits the others.

Why over 600 lines: the constructor documents every option in one place,
and the life cycle (connect with its first-connect retries, close,
teardown, ``wait_closed``) shares its state with the request machinery and
the reader; what splits off cleanly has (listeners, requests, supervision,
restore after a reset: the mixins). The next split would be the
connection half (dialling, reader, ``_on_frames``) into its own mixin, and
the request machinery (``_call``, ``_request_now``, ``_request_on``) into
another; the hot path of a request (``_request_now``, issue 14) is kept
next to the slow one it must agree with.

The supervisor task is started only when the first connection ends (a
done callback of its reader): one task less per session while nothing
goes wrong (see docs/benchmarks.md, memory per joined session).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from ssl import SSLContext
from types import MappingProxyType, TracebackType
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.protocol import OPEN
from websockets.typing import Subprotocol

from roomsignal.catalog import ErrorCode
from roomsignal.client._connection import DirectConnection, Raw
from roomsignal.client._core import MAX_SEQ_JUMP, PROTOCOL_ERROR, Answer, Broken, ClientCore
from roomsignal.client._events import (
    Connected,
    Disconnected,
    ParticipantType,
    Reconnecting,
    ReconnectPolicy,
    SessionEnded,
    SessionState,
)
from roomsignal.client._flag import Flag
from roomsignal.client._listen import ListenerMethods
from roomsignal.client._listeners import ListenerErrorHook, ListenerHub
from roomsignal.client._requests import RequestMethods
from roomsignal.client._restore import Kept, Restore
from roomsignal.client._supervise import (
    Away,
    Closed,
    Deadline,
    DialFailed,
    Supervision,
    TokenProvider,
)
from roomsignal.client._urls import Urls, UrlSource, dial_failure
from roomsignal.errors import (
    SessionError,
    SessionErrorException,
    SessionStateError,
    exception_for,
)
from roomsignal.protocol import (
    SUBPROTOCOL,
    JoinRequest,
    JoinResult,
    LeaveRequest,
    Model,
    Participant,
    SyncState,
)

__all__ = ["RequestTimeoutError", "Session"]

logger = logging.getLogger("roomsignal.client")

_CONNECT_OPTIONS: dict[str, Any] = {
    "subprotocols": [Subprotocol(SUBPROTOCOL)],
    "proxy": None,
    "create_connection": DirectConnection,
}
_now = time.time


class RequestTimeoutError(SessionStateError, TimeoutError):
    """A request got no answer within ``request_timeout`` (code 902)."""


class _NotSent(Exception):
    """The connection closed before a request could be written: it was not sent."""


class _Expired(Exception):
    """A request's deadline passed before its answer came (``_request_now``)."""


_SMALL_FRAME = 16 * 1024


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(_Expired())


class Session(ListenerMethods, RequestMethods, Restore, Supervision):
    """One participant in one room: join, publish, subscribe, and hear every error.

    ``async with Session(url, token=..., name=...) as session:`` connects and
    joins, and on exit leaves and closes. Every error, whatever found it,
    reaches every ``on_session_error`` listener as a ``SessionError``; an
    awaited call that failed also raises ``SessionErrorException`` (one
    subclass per category). Methods may be called concurrently from any task
    of the session's event loop, listeners included.
    """

    def __init__(
        self,
        url: UrlSource,
        *,
        token: str,
        name: str,
        participant_type: ParticipantType = "full",
        metadata: Mapping[str, Any] | None = None,
        token_provider: TokenProvider | None = None,
        reconnect: ReconnectPolicy | None = ReconnectPolicy(),  # noqa: B008 - frozen: one shared
        request_timeout: float = 10.0,
        open_timeout: float = 10.0,
        close_timeout: float = 2.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        compression: Literal["deflate"] | None = None,
        max_size: int = 1 << 20,
        strict_listeners: bool = False,
        max_queued_events: int = 4096,
        max_seq_jump: int = MAX_SEQ_JUMP,
        on_listener_error: ListenerErrorHook | None = None,
        retry_first_connect: bool = False,
        restore_after_reset: bool = True,
        ssl: SSLContext | None = None,
    ) -> None:
        """Configure a session; nothing is dialled until ``connect()``.

        ``url`` is the server's ``ws://`` or ``wss://`` URL, or a list of
        them (nodes of one cluster, or one server's addresses), or an async
        callable returning such a list (service discovery, awaited at each
        attempt). Each attempt dials them one after another until one answers; after a
        drop it starts with the next one (docs/client.md, "Failover").
        ``token_provider`` is awaited for a fresh token when the current one
        has expired (before dialling, or when the server answers 1100).
        ``reconnect=None`` turns reconnection off. Raises ``ValueError`` for a
        URL that is not ``ws://`` or ``wss://``. ``request_timeout`` bounds
        each call's wait for its answer (902), counting only time connected: a
        call in flight across a drop waits for the resume and is sent again.
        ``strict_listeners`` makes
        ``close()`` re-raise the first exception a listener raised (for tests).
        ``max_queued_events`` bounds each listener's and each ``errors()``
        iterator's queue: at the bound the session stops reading from the
        socket until the queue has drained to a quarter of it (nothing is
        dropped; see docs/client.md). A notification whose ``seq`` is more
        than ``max_seq_jump`` past the last one is a protocol error, after
        which the session drops the connection and resumes.
        ``retry_first_connect`` lets ``connect()`` retry under the ``reconnect``
        policy while the server cannot be reached (901), for a bot that starts
        before its server; each retry is announced to ``on_reconnecting``
        (``code`` None). A refused join is never retried this way.
        ``restore_after_reset`` publishes and subscribes again after a state
        reset (see ``publish``/``subscribe``, reported in ``on_reconnected``).
        ``ssl`` is the ``ssl.SSLContext`` for a ``wss://`` URL (say, one that
        trusts a private CA: ``ssl.create_default_context(cafile=...)``);
        without it the system's CAs are trusted. A certificate that does not
        verify fails the connection with 901, as any unreachable server.
        """
        self._urls = Urls(url)  # a malformed URL is the caller's bug: ValueError now
        self.url = self._urls.first
        """The URL of the current (or last) connection; the first one given before."""
        if ssl is not None:
            plain = [u for u in self._urls.fixed if not u.startswith("wss://")]
            if plain:
                raise ValueError(f"ssl is given for a ws:// URL: use wss:// ({plain[0]!r})")
        self.name = name
        self.participant_type = participant_type
        self.metadata = dict(metadata) if metadata is not None else None
        self.request_timeout = request_timeout
        self.reconnect_policy = reconnect
        self.retry_first_connect = retry_first_connect
        self.restore_after_reset = restore_after_reset
        self._kept: Kept | None = None  # what we publish, what restore owns (_restore.py)
        self._token = token
        self._token_provider = token_provider
        # What connect() passes websockets beside the fixed _CONNECT_OPTIONS (a tuple:
        # a dict per session would cost 0.3 KiB more).
        self._connect_options = (
            compression,
            open_timeout,
            close_timeout,
            ping_interval,
            ping_timeout,
            max_size,
            ssl,
        )
        self._close_timeout = close_timeout
        self._hub = ListenerHub(max_queued_events)
        self._hub.on_pressure = self._on_pressure
        # Set while no listener queue is at its bound; made at the first pressure.
        self._unpressed: asyncio.Event | None = None
        self._hub.error_hook = on_listener_error
        self._hub.strict = strict_listeners
        self._state = SessionState.IDLE
        self._joined = Flag()
        self._ws: DirectConnection | None = None
        self._reader: asyncio.Task[Closed] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._teardown_task: asyncio.Task[None] | None = None
        self._streak = 0  # reconnection attempts since the last stable connection
        self._connected_at = 0.0
        self._progress_mark = 0
        self._away = Away()  # request_timeout counts only time connected
        self._connect_task: asyncio.Task[Any] | None = None
        # Why it ended; until then the Event the first wait_closed() made, or None.
        self._end: SessionEnded | asyncio.Event | None = None
        self._core: ClientCore[asyncio.Future[dict[str, Any]]] = ClientCore(
            max_seq_jump=max_seq_jump
        )

    # -- properties ------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """idle, connecting, joined, reconnecting or closed."""
        return self._state

    @property
    def participant_id(self) -> str:
        """Our participant id once joined (a fresh rejoin changes it).

        Raises ``SessionStateError`` (905) before the first join; after
        ``close()`` it is still the last id the session had.
        """
        pid = self._core.participant_id
        if pid is None:
            raise self._not_connected("participant_id", report=False)
        return pid

    @property
    def session_id(self) -> str:
        """The session (room) id once joined; 905 ``SessionStateError`` before."""
        sid = self._core.session_id
        if sid is None:
            raise self._not_connected("session_id", report=False)
        return sid

    @property
    def local_participant(self) -> Participant:
        """Ourselves as the others see us: id, name, type, roles, streams, metadata.

        A new frozen ``Participant`` at each read, from the last join and our
        last ``publish``/``unpublish``. Raises 905 ``SessionStateError``
        before the first join.
        """
        return Participant(
            participant_id=self.participant_id,
            name=self.name,
            participant_type=self.participant_type,
            roles=list(self._core.roles),
            streams=self._kept.published if self._kept is not None else None,
            metadata=dict(self.metadata or {}),
        )

    @property
    def roles(self) -> tuple[str, ...]:
        """Our roles in the session (from the token)."""
        return self._core.roles

    @property
    def participants(self) -> Mapping[str, Participant]:
        """The other members by id, kept current from notifications (read-only view)."""
        return MappingProxyType(self._core.participants)

    @property
    def sync_state(self) -> SyncState | None:
        """The session's last playback position, if any synchronizer sent one."""
        return self._core.sync_state

    @property
    def last_seq(self) -> int:
        """The seq of the last notification delivered (what a resume asks for)."""
        return self._core.last_seq

    @property
    def resume_window(self) -> float | None:
        """How long the server keeps our seat after a drop (seconds), from the last join.

        None before the first join, or from a server that does not say
        (``resumeWindow`` in the join result, docs/protocol.md).
        """
        return self._core.resume_window

    @property
    def _participant_secret(self) -> str | None:
        """The secret that takes our seat back on a resume (tests read it)."""
        return self._core.participant_secret

    @property
    def reading_paused(self) -> bool:
        """Whether the session stopped reading because a listener or iterator is behind.

        True while some listener's queue (or some ``errors()`` iterator's)
        holds ``max_queued_events``, until it has drained to a quarter of that.
        """
        return self._unpressed is not None and not self._unpressed.is_set()

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
        (901; with ``retry_first_connect``, once the policy's attempts are
        spent), when ``join`` fails (the server's code), or when ``close()``
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
            attempt = 0
            while True:
                try:
                    await self._join_new_connection(resume=False, token_retry=True)
                    break
                except DialFailed as exc:
                    attempt += 1
                    policy = self.reconnect_policy
                    if (
                        not self.retry_first_connect
                        or policy is None
                        or attempt > policy.max_attempts
                    ):
                        raise self._client_error(
                            ErrorCode.GENERIC_CONNECTION_ERROR, str(exc), "join"
                        ) from exc.__cause__
                    delay = policy.delay(attempt)
                    logger.info("first connect failed (%s); retry %d in %.2fs", exc, attempt, delay)
                    self._hub.emit(
                        "reconnecting", Reconnecting(attempt=attempt, delay=delay, reason=str(exc))
                    )
                    await asyncio.sleep(delay)
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
        self._progress_mark = self._core.last_seq
        reader = self._reader
        if reader is None or reader.done():
            self._start_supervisor()
        else:  # no supervisor task while the first connection lasts (memory per session)
            reader.add_done_callback(self._start_supervisor)
        core = self._core
        assert core.participant_id is not None and core.session_id is not None
        self._hub.emit(
            "connected",
            Connected(
                session_id=core.session_id,
                participant_id=core.participant_id,
                participants=core.join_snapshot,
            ),
        )

    def _start_supervisor(self, _reader: object = None) -> None:
        """Start the supervisor (once the session is joined and not closing)."""
        if self._supervisor is None and not self._closing:
            self._supervisor = asyncio.get_running_loop().create_task(
                self._supervise(), name="roomsignal-supervisor"
            )

    async def _abandon_connect(self, *, join_in_flight: bool = False) -> None:
        ws, reader = self._ws, self._reader
        if join_in_flight and ws is not None:
            # The server may have seated us already: leave after the join (the server
            # handles frames in order), or the seat would hold our name for a while.
            ws.on_frames = None
            if reader is not None:
                reader.cancel()
                await asyncio.wait({reader})
            with contextlib.suppress(ConnectionClosed):
                await ws.send(self._core.frame(lambda i: LeaveRequest(id=i)))
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

    async def wait_closed(self) -> SessionEnded:
        """Await the end of the session and return why it ended (``SessionEnded``).

        Returns once ``close()`` has finished, or as soon as the session ended
        on its own (the server closed the room, reconnection gave up, a
        rejoin was refused for good); then ``close()`` is still to be called,
        which ``async with`` does. Returns at once if it has already ended.
        Any number of tasks may wait at once. Safe to cancel.
        """
        end = self._end
        if end is None:
            end = self._end = asyncio.Event()
        if isinstance(end, asyncio.Event):
            await end.wait()
        assert isinstance(self._end, SessionEnded)
        return self._end

    def _ended(self, end: SessionEnded) -> None:
        """Record why the session ended (the first reason wins) and wake ``wait_closed()``."""
        waiting = self._end
        if not isinstance(waiting, SessionEnded):
            self._end = end
            if waiting is not None:
                waiting.set()

    async def _teardown(self, was_joined: bool, was_active: bool) -> None:
        connecting = self._connect_task
        if connecting is not None and not connecting.done():
            connecting.cancel()
            await asyncio.wait({connecting})
        if was_joined and self._ws is not None and self._core.final is None:
            # (No leave once the server closed the session: it is closing us.)
            with contextlib.suppress(SessionErrorException, _NotSent, TimeoutError):
                async with asyncio.timeout(min(self.request_timeout, self._close_timeout)):
                    await self._request_on(
                        self._ws, "leave", lambda i: LeaveRequest(id=i), resend=False
                    )
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
        self._ended(SessionEnded(by_client=True, code=1000, reason="closed by the client"))

    def _end_waits(self) -> None:
        """Fail pending ``wait_for_error`` calls and end ``errors()`` iterators (closed)."""
        self._hub.fail_waiters(lambda: self._not_connected("wait_for_error", report=False))
        self._hub.end_streams()

    # -- request machinery -----------------------------------------------------------

    async def _call(self, method: str, build: Callable[[int], Model | str]) -> dict[str, Any]:
        """Send a request once joined (waiting for a rejoin if need be) and await its result."""
        if self._state in (SessionState.IDLE, SessionState.CLOSED):
            raise self._not_connected(method)
        ws = self._ws
        if (
            ws is not None
            and self._state is SessionState.JOINED
            and self._joined.is_set()
            and ws.protocol.state is OPEN
            and ws.transport is not None
            and not ws.transport.get_write_buffer_size()
        ):
            return await self._request_now(ws, method, build)
        loop = asyncio.get_running_loop()
        gate: asyncio.Future[Any] = loop.create_future()  # done: the deadline is moot
        timer: asyncio.TimerHandle | None = None
        try:
            async with asyncio.timeout(None) as deadline:
                # Bounded by request_timeout of time connected (see _on_deadline).
                timer = loop.call_later(
                    self.request_timeout,
                    self._on_deadline,
                    (gate, self._online_clock(), lambda _: deadline.reschedule(loop.time())),
                )
                while True:
                    if not self._joined.is_set():
                        await self._joined.wait()
                    ws = self._ws
                    if self._state is not SessionState.JOINED or ws is None:
                        raise self._ended_error(method)
                    # A connection that dies under it keeps it in flight: it is sent
                    # again after the resume (or fails with 901 after a reset).
                    return await self._request_on(ws, method, build, timed=False)
        except TimeoutError as exc:
            if isinstance(exc, SessionErrorException):
                raise
            raise self._timeout(method) from None
        finally:
            gate.cancel()
            if timer is not None:
                timer.cancel()

    def _online_clock(self) -> float:
        """The loop's clock less the time spent reconnecting: what request_timeout counts."""
        now = asyncio.get_running_loop().time()
        away = self._away
        return now - away.total - (0.0 if away.since is None else now - away.since)

    def _on_deadline(self, deadline: Deadline) -> None:
        """A request's timer fired: expire it, or wait on for the time spent reconnecting."""
        future, started, expire = deadline
        if future.done():
            return
        if self._away.since is not None:
            self._away.parked.append(deadline)  # the rejoin looks again (_online_again)
            return
        left = started + self.request_timeout - self._online_clock()
        if left > 0.001:
            asyncio.get_running_loop().call_later(left, self._on_deadline, deadline)
        else:
            expire(future)

    def _offline(self) -> None:
        """The connection dropped and the session reconnects: request deadlines pause."""
        if self._away.since is None:
            self._away.since = asyncio.get_running_loop().time()

    def _online_again(self) -> None:
        """Rejoined (or ended): request deadlines run again from where they paused."""
        away = self._away
        if away.since is None:
            return
        away.total += asyncio.get_running_loop().time() - away.since
        away.since = None
        parked, away.parked = away.parked, []
        for deadline in parked:
            self._on_deadline(deadline)

    async def _request_now(
        self, ws: ClientConnection, method: str, build: Callable[[int], Model | str]
    ) -> dict[str, Any]:
        """``_call`` on an open connection whose write buffer is empty: the hot path.

        The deadline is a ``call_later`` that fails the answer's future (3 µs
        less per request than ``asyncio.timeout``, see docs/benchmarks.md).
        A frame of at most ``_SMALL_FRAME`` bytes onto an empty write buffer
        cannot wait in ``send`` (websockets drains above its 32 KiB write
        limit); a larger one is sent under ``asyncio.timeout_at`` the same
        deadline. A connection that closes under it keeps the request in
        flight: it is sent again after the resume, with the same id.
        """
        loop = ws.loop
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        request_id, frame = self._core.request(method, build, future)
        # request_timeout of time connected (_on_deadline): a drop pauses it.
        # (_online_clock() inlined on this hot path: joined, so not away now.)
        expiry = loop.call_later(
            self.request_timeout,
            self._on_deadline,
            (future, loop.time() - self._away.total, _expire),
        )
        try:
            try:
                if len(frame) <= _SMALL_FRAME:
                    await ws.send(frame)
                else:
                    async with asyncio.timeout_at(expiry.when()):
                        await ws.send(frame)
            except ConnectionClosed:
                pass  # in flight still: the resume sends it again (or a reset fails it)
            except TimeoutError:
                raise self._timeout(method) from None
            try:
                return await future
            except _Expired:
                raise self._timeout(method) from None
        finally:
            expiry.cancel()
            self._core.forget(request_id)
            if future.done() and not future.cancelled():
                future.exception()  # retrieved, also when our caller was cancelled

    async def _request_on(
        self,
        ws: ClientConnection,
        method: str,
        build: Callable[[int], Model | str],
        *,
        timed: bool = True,
        resend: bool = True,
    ) -> dict[str, Any]:
        """Send one request on ``ws`` and await the reader's answer.

        Errors answering it reach the listeners (from the reader) before this
        raises. With ``timed``, bounded by ``request_timeout`` (902 on expiry).
        With ``resend``, a connection that closes under the request keeps it
        in flight, to be sent again after the resume; without (a ``join``, a
        parting ``leave``), raises ``_NotSent`` if the connection closed
        before the frame was written.
        """
        future: asyncio.Future[dict[str, Any]] = ws.loop.create_future()
        request_id, frame = self._core.request(method, build, future, resend=resend)
        try:
            try:
                await ws.send(frame)
            except ConnectionClosed:
                if not resend:
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
            self._core.forget(request_id)

    async def _resend(self) -> int:
        """After a resume: send again, with its id, each request that had no answer.

        Returns how many were sent. A connection that dies meanwhile keeps
        the rest in flight for the next resume.
        """
        ws = self._ws
        frames = self._core.resend()
        if ws is None or not frames:
            return 0
        sent = 0
        with contextlib.suppress(ConnectionClosed):
            for frame in frames:
                await ws.send(frame)
                sent += 1
        if sent:
            logger.info("sent %d request(s) again after the resume", sent)
        return sent

    def _client_error(
        self, code: ErrorCode, message: str, method: str | None, **data: Any
    ) -> SessionErrorException:
        """Report an error the client found itself; returns the exception to raise."""
        details = {"name": code.name, **({"method": method} if method else {}), **data}
        error = self._flag_recovery(
            self._core.make_error(code, message, details, method, now=time.time()), method
        )
        self._hub.emit("session_error", error)
        return exception_for(error)

    def _timeout(self, method: str) -> SessionErrorException:
        error = self._core.make_error(
            ErrorCode.REQUEST_TIMEOUT_ERROR_CODE,
            f"no answer to {method!r} within {self.request_timeout} s",
            {"name": ErrorCode.REQUEST_TIMEOUT_ERROR_CODE.name, "method": method},
            method,
            now=time.time(),
        )
        error = self._flag_recovery(error, method)
        self._hub.emit("session_error", error)
        return RequestTimeoutError(error)

    def _ended_error(self, method: str) -> SessionErrorException:
        """For a call the session's end cut short: that end's error (903...), else 905."""
        code, why = self._core.final or (None, "")
        if self._closing or code is None:
            return self._not_connected(method)
        return self._client_error(code, f"{why} while {method!r} waited to be sent", method)

    def _not_connected(self, method: str, *, report: bool = True) -> SessionErrorException:
        code = ErrorCode.NOT_CONNECTED_ERROR_CODE
        message = f"{method!r} called while the session is {self._state}"
        if report and not self._hub.closed:
            return self._client_error(code, message, method)
        error = self._core.make_error(code, message, {"name": code.name}, method, now=time.time())
        return exception_for(error)

    def _fail_pending(
        self,
        why: str,
        closed: Closed | None = None,
        *,
        keep_resendable: bool = False,
        code: ErrorCode | None = None,
    ) -> None:
        """Fail the requests in flight (the connection ended under them, ``closed``).

        With ``keep_resendable``, only a ``join`` or a parting ``leave``: the
        others wait for the resume, which sends them again. ``code`` is the
        session's end's (say 903 when reconnection gave up); 901 without.
        """
        for method, future in self._core.take_pending(keep_resendable=keep_resendable):
            if future.done():
                continue
            if self._closing and method == "leave":
                # close()'s own leave: the connection ending under it is what close wants.
                future.set_result({})
                continue
            exc = self._client_error(
                ErrorCode.NOT_CONNECTED_ERROR_CODE
                if self._closing
                else code or ErrorCode.GENERIC_CONNECTION_ERROR,
                f"{why} while {method!r} was in flight",
                method,
                **(closed.data() if closed is not None else {}),
            )
            future.set_exception(exc)
            future.exception()  # a cancelled caller must not leave it unretrieved

    # -- connection ----------------------------------------------------------------

    async def _join_new_connection(self, *, resume: bool, token_retry: bool) -> JoinResult:
        """Dial a new connection, start its reader and join (resuming if asked).

        Raises ``DialFailed`` when the server cannot be reached, and the
        ``SessionErrorException`` of a failed join.
        """
        token = await self._fresh_token()
        unpressed = self._unpressed
        if unpressed is not None and not unpressed.is_set():
            # Listeners are behind: a new connection would only be held unread.
            await unpressed.wait()
        ws = await self._dial()
        assert isinstance(ws, DirectConnection)
        ws.shed_handshake()
        ws.on_frames = self._on_frames
        if self._hub.pressed:
            ws.hold_reading(True)
        self._ws = ws
        self._reader = asyncio.get_running_loop().create_task(
            self._read(ws), name="roomsignal-reader"
        )
        params = self._core.join_params(
            token=token,
            name=self.name,
            participant_type=self.participant_type,
            metadata=self.metadata,
            resume=resume,
        )
        try:
            result = await self._request_on(
                ws, "join", lambda i: JoinRequest(id=i, params=params), resend=False
            )
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
            self._urls.failed(self.url)
            raise DialFailed(f"the connection to {self.url} closed before joining") from None
        return self._result(JoinResult, result, "join")

    async def _dial(self) -> ClientConnection:
        """Open a connection to the first of the URLs that answers (``DialFailed`` if none)."""
        urls = self._urls
        try:
            candidates = await urls.candidates()
        except Exception as exc:  # the provider's failure, or a bad URL it gave
            logger.warning("no URL to dial: %r", exc)
            raise DialFailed(f"no URL to dial: {exc!r}") from exc
        compression, open_timeout, close_timeout, ping_interval, ping_timeout, max_size, tls = (
            self._connect_options
        )
        # Only when given: ssl=None on a wss:// URL would mean no TLS at all.
        tls_option: dict[str, Any] = {"ssl": tls} if tls is not None else {}
        failures: list[str] = []
        last: BaseException | None = None
        for url in candidates:
            try:
                ws = await connect(
                    url,
                    **tls_option,
                    compression=compression,
                    open_timeout=open_timeout,
                    close_timeout=close_timeout,
                    ping_interval=ping_interval,
                    ping_timeout=ping_timeout,
                    max_size=max_size,
                    **_CONNECT_OPTIONS,
                )
            except (OSError, InvalidHandshake, InvalidURI, ValueError, TimeoutError) as exc:
                failures.append(f"{url}: {dial_failure(url, exc)}")
                last = exc
                if len(candidates) > 1:
                    logger.info("cannot connect to %s (%s); trying the next URL", url, exc)
                continue
            urls.worked(url)
            self.url = url
            return ws
        if len(failures) == 1:
            raise DialFailed(f"cannot connect to {failures[0]}") from last
        raise DialFailed(
            f"cannot connect to any of {len(failures)} URLs ({'; '.join(failures)})"
        ) from last

    async def _drop_connection(self) -> None:
        """Close the current connection (bounded) and await its reader."""
        ws, reader = self._ws, self._reader
        self._ws = self._reader = None
        if ws is not None:
            ws.on_frames = None
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

    # -- the reader --------------------------------------------------------------------

    async def _read(self, ws: DirectConnection) -> Closed:
        """Read ``ws`` until it closes; returns how it closed.

        Whole frames reach ``_on_frames`` straight from the connection (see
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
                self._on_frames([frame], 0)
        except ConnectionClosed:
            pass
        finally:
            ws.on_frames = None
            closed = self._how_closed(ws)
            if ws is self._ws or self._ws is None:
                if not self._closing:
                    self._joined.clear()
                # Requests in flight wait for the resume, which sends them again
                # (docs/client.md); the supervisor fails them if none comes.
                keep = not self._closing and self._core.park
                self._fail_pending(
                    f"the connection {closed.describe()}", closed, keep_resendable=keep
                )
        return closed

    @staticmethod
    def _how_closed(ws: DirectConnection) -> Closed:
        rcvd = ws.protocol.close_rcvd
        if rcvd is not None:
            return Closed(rcvd.code, rcvd.reason)
        sent = ws.protocol.close_sent
        if sent is not None:  # we closed it, e.g. 1009 for a frame over max_size
            return Closed(sent.code, f"closed by the client: {sent.reason or sent.code}")
        return Closed(None, "dropped without a close frame")

    def _flag_recovery(self, error: SessionError, method: str | None) -> SessionError:
        """A rejoin's failure the supervisor recovers from by itself: ``recovering``.

        The join of a reconnection attempt that failed (refused with 106 or a
        retried 104, its connection closed under it, e.g. 1012 by a node whose
        room moves, no answer in time) while the policy will try again: the way
        back, not a real refusal. One after which the policy gives up is left
        unflagged, as is any error outside a reconnection.
        """
        policy = self.reconnect_policy
        core = self._core
        if (
            policy is None
            or method != "join"
            or self._state is not SessionState.RECONNECTING
            or self._closing
        ):
            return error
        verdict, _ = core.failed_rejoin(
            error.code, error.name, resuming=core.resuming, rejoin_on_reset=policy.rejoin_on_reset
        )
        # What _reconnect does next: a fresh join at once, or another attempt unless it gives up.
        if verdict == "fresh" or (
            verdict == "retry"
            and not policy.gives_up(
                self._streak, self._loop_time() - core.streak_since, core.resume_window
            )
        ):
            return error.model_copy(update={"recovering": True})
        return error

    def _on_pressure(self, pressed: bool) -> None:
        """The hub's backpressure: hold reading while a listener queue is at its bound."""
        unpressed = self._unpressed
        if unpressed is None:
            unpressed = self._unpressed = asyncio.Event()
        if pressed:
            unpressed.clear()
        else:
            unpressed.set()
        ws = self._ws
        if ws is not None:
            ws.hold_reading(pressed)

    def _on_frames(self, frames: list[bytes], start: int) -> int:
        """Hand ``frames[start:]`` to the core, up to a ``Raw`` one, and act on each answer.

        Returns the index of the first frame not taken (see ``DirectConnection``).
        Never raises. The frames of one batch share their ``received_at``: the
        time their batch was taken.
        """
        receive = self._core.receive
        sinks = self._hub.sinks  # what hub.emit() calls, without the call
        now = _now()
        index = start
        for frame in frames[start:] if start else frames:
            if type(frame) is Raw:
                return index
            index += 1
            try:
                out = receive(frame, now)
                if out is None:
                    continue
                if type(out) is tuple:  # an event for the listeners: the hot path
                    for sink in sinks.get(out[0], ()):
                        sink(out[1])
                elif self._settle(out):
                    return index  # the connection failed: the rest is websockets'
            except Exception:  # a bug of ours must not reach websockets' data_received
                logger.exception("failed to handle %r", frame)
        return index

    def _settle(self, out: object) -> bool:
        """Act on an answer or an impossible seq; True when the connection was failed."""
        if isinstance(out, Broken):
            self._hub.emit("session_error", out.error)
            ws = self._ws
            if ws is not None:  # the supervisor sees the close and resumes
                ws.fail(PROTOCOL_ERROR, "a notification's seq cannot be real")
            return True
        assert isinstance(out, Answer)
        waiter = out.waiter
        error = out.error
        if error is not None:
            if out.method == "join":
                error = self._flag_recovery(error, out.method)
            self._hub.emit("session_error", error)  # listeners first, then the caller
            if waiter is not None and not waiter.done():
                waiter.set_exception(exception_for(error))
        elif waiter is not None:
            waiter.set_result(out.result)
        return False
