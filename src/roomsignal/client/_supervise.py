"""``Session``'s supervision: reconnection with resume, and token refresh.

A mixin of ``Session``. The supervisor task waits for each connection's
reader to end, asks the core what the close means (``final_reason``), and
either finishes the session or retries per the ``ReconnectPolicy``, rejoining
with ``oldParticipantSecret`` and ``lastSeq``; what a failed rejoin calls for
is the core's answer too (``failed_rejoin``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from roomsignal.catalog import ErrorCode
from roomsignal.client._core import ClientCore
from roomsignal.client._events import (
    Disconnected,
    Reconnected,
    Reconnecting,
    ReconnectPolicy,
    SessionEnded,
    SessionState,
)
from roomsignal.client._flag import Flag
from roomsignal.client._listeners import ListenerHub
from roomsignal.client._restore import Restored
from roomsignal.client._urls import Urls
from roomsignal.errors import SessionErrorException
from roomsignal.protocol import JoinResult
from roomsignal.tokens import peek_exp

__all__ = ["Away", "Closed", "Deadline", "DialFailed", "Supervision", "TokenProvider"]

logger = logging.getLogger("roomsignal.client")

TokenProvider = Callable[[], Awaitable[str]]


class DialFailed(Exception):
    """The server could not be reached (reported as 901 by ``connect()``)."""


Deadline = tuple["asyncio.Future[Any]", float, Callable[["asyncio.Future[Any]"], None]]
"""A request's deadline: its future, the online clock at its start, what expires it."""


class Away:
    """Time spent reconnecting, which ``request_timeout`` does not count.

    ``total`` before the current outage, ``since`` its start (None while
    connected); ``parked``: deadlines that came due meanwhile, looked at
    again at the rejoin.
    """

    __slots__ = ("parked", "since", "total")

    def __init__(self) -> None:
        self.total = 0.0
        self.since: float | None = None
        self.parked: list[Deadline] = []


class Closed:
    """Why a connection ended, as the reader saw it."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int | None, reason: str) -> None:
        self.code = code
        self.reason = reason

    def describe(self) -> str:
        """For messages: the close code and its reason, as they were."""
        if self.code is None:
            return self.reason
        return f"closed with {self.code} ({self.reason or 'no reason given'})"

    def data(self) -> dict[str, Any]:
        """For ``SessionError.data``: ``closeCode`` (None: no close frame), ``closeReason``."""
        return {"closeCode": self.code, "closeReason": self.reason}


class Supervision:
    """Reconnection and token refresh (a mixin of ``Session``)."""

    _core: ClientCore[asyncio.Future[dict[str, Any]]]
    _hub: ListenerHub
    _state: SessionState
    _joined: Flag
    _closing: bool
    _reader: asyncio.Task[Closed] | None
    _token: str
    _token_provider: TokenProvider | None
    _streak: int
    _connected_at: float
    _progress_mark: int
    _urls: Urls
    url: str
    reconnect_policy: ReconnectPolicy | None

    if TYPE_CHECKING:

        async def _join_new_connection(self, *, resume: bool, token_retry: bool) -> JoinResult: ...

        async def _drop_connection(self) -> None: ...

        def _ended(self, end: SessionEnded) -> None: ...

        async def _restore(self) -> Restored: ...

        def _client_error(
            self, code: ErrorCode, message: str, method: str | None, **data: Any
        ) -> SessionErrorException: ...

        def _fail_pending(
            self,
            why: str,
            closed: Closed | None = None,
            *,
            keep_resendable: bool = False,
            code: ErrorCode | None = None,
        ) -> None: ...

        _away: Away

        def _offline(self) -> None: ...

        def _online_again(self) -> None: ...

        async def _resend(self) -> int: ...

        def _end_waits(self) -> None: ...

    # -- tokens ---

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

    # -- supervision ---

    async def _supervise(self) -> None:
        """Wait for each connection to end; reconnect or finish (never raises)."""
        try:
            await self._supervise_connections()
        except Exception as exc:  # a bug of ours: end the session loudly, not silently
            logger.exception("session supervisor failed")
            if not self._closing:
                await self._drop_connection()
                self._finish(
                    ErrorCode.CONNECTION_LOST_ERROR_CODE, f"internal failure: {exc!r}", None
                )

    async def _supervise_connections(self) -> None:
        while True:
            reader = self._reader
            if reader is None:
                return
            closed = await asyncio.shield(reader)
            if self._closing:
                return
            final = self._core.final_reason(closed.code, closed.reason)
            policy = self.reconnect_policy
            if final is None and policy is None:
                final = (
                    ErrorCode.CONNECTION_LOST_ERROR_CODE,
                    f"the connection was lost ({closed.describe()}) and reconnection is off",
                )
            if final is None:
                self._state = SessionState.RECONNECTING
                self._offline()  # request deadlines wait for the rejoin
            self._hub.emit(
                "disconnected",
                Disconnected(code=closed.code, reason=closed.reason, will_reconnect=final is None),
            )
            if final is not None or policy is None:
                self._finish(*(final or (None, "")), closed)
                await self._drop_connection()
                return
            # A connection that neither delivered anything new nor stayed up for a
            # while does not reset the count of attempts: a seat whose replay kills
            # every new connection must not make the client loop forever.
            stable = self._loop_time() - self._connected_at >= policy.stable_after
            if stable or self._core.last_seq > self._progress_mark:
                self._streak = 0
            if self._streak == 0:
                self._core.streak_since = self._loop_time()
            self._urls.failed(self.url)  # with several URLs, the next attempt tries another first
            await self._drop_connection()
            final = await self._reconnect(policy, closed)
            if final is not None:
                self._hub.emit(
                    "disconnected",
                    Disconnected(code=None, reason=final[1], will_reconnect=False),
                )
                self._finish(*final, closed)
                return

    def _finish(self, code: ErrorCode | None, message: str, closed: Closed | None) -> None:
        """The session is over for good (not by ``close()``): say so once.

        ``closed`` is how the last connection ended (its code and reason go
        into the error's data).
        """
        self._state = SessionState.CLOSED
        self._joined.set()
        self._core.final = (code, message)
        error = None
        if code is not None:
            exc = self._client_error(code, message, None, **(closed.data() if closed else {}))
            error = exc.error
        self._fail_pending(message, closed, code=code)  # with the end's error
        self._away.parked.clear()  # their calls fail now with the end, never with 902
        self._end_waits()
        self._ended(
            SessionEnded(
                by_client=False,
                code=closed.code if closed else None,
                reason=closed.reason if closed else message,
                error=error,
                session_closed=self._core.closed_by,
            )
        )

    async def _reconnect(
        self, policy: ReconnectPolicy, closed: Closed
    ) -> tuple[ErrorCode | None, str] | None:
        """Retry per ``policy`` after ``closed``; None once back in the session, else why not."""
        core = self._core
        resume = core.participant_secret is not None
        last_seq_before = core.last_seq
        dropped_at = core.streak_since  # the first drop since the last stable connection
        attempt = self._streak
        at_once = False  # a fresh join right after a refused resume: no wait, no attempt
        while at_once or not policy.gives_up(
            self._streak, self._loop_time() - dropped_at, core.resume_window
        ):
            if not at_once:
                self._streak += 1
                attempt = self._streak
                delay = policy.delay(attempt)
                self._hub.emit(
                    "reconnecting",
                    Reconnecting(
                        attempt=attempt, delay=delay, code=closed.code, reason=closed.reason
                    ),
                )
                await asyncio.sleep(delay)
            at_once = False
            try:
                result = await self._join_new_connection(resume=resume, token_retry=True)
            except DialFailed as exc:
                logger.info("reconnection attempt %d failed: %s", attempt, exc)
                continue
            except SessionErrorException as exc:
                await self._drop_connection()
                verdict, why = core.failed_rejoin(
                    exc.code,
                    exc.error.name,
                    resuming=resume,
                    rejoin_on_reset=policy.rejoin_on_reset,
                )
                if verdict == "stop":
                    return (ErrorCode.CONNECTION_LOST_ERROR_CODE, why)
                if verdict == "fresh":
                    # The seat is gone (expired, or the server restarted): join afresh
                    # now, whatever attempt this was; it is a state reset, not the end.
                    resume = False
                    at_once = True
                else:
                    logger.info("reconnection attempt %d failed: %s", attempt, exc)
                    self._urls.failed(self.url)  # another node may serve us meanwhile
                    resume = core.participant_secret is not None
                continue
            if result.resumed:
                # Before any new request: what had no answer goes again, same ids.
                resent = await self._resend()
            else:
                # A fresh seat: what was in flight is lost (its caller hears 901).
                resent = 0
                self._fail_pending(
                    f"the connection {closed.describe()} and the seat was lost (state reset)",
                    closed,
                )
            self._state = SessionState.JOINED
            self._online_again()  # request deadlines run again, re-sent ones included
            self._joined.set()
            self._connected_at = self._loop_time()
            self._progress_mark = core.last_seq
            restored = None
            if not result.resumed:
                core.park = False  # a drop now fails restore's requests: we are the supervisor
                try:
                    restored = await self._restore()
                finally:
                    core.park = True
            self._hub.emit(
                "reconnected",
                Reconnected(
                    resumed=result.resumed,
                    replayed=core.replayed if result.resumed else 0,
                    state_reset=not result.resumed,
                    attempts=attempt,
                    participant_id=result.participant_id,
                    url=self.url,
                    resent=resent,
                    republished=restored is not None and restored.republished,
                    resubscribed=tuple(restored.resubscribed) if restored else (),
                    awaiting=tuple(restored.awaiting) if restored else (),
                ),
            )
            if result.resumed:
                logger.info(
                    "resumed after %d attempt(s), %d notification(s) replayed since seq %d",
                    attempt,
                    core.replayed,
                    last_seq_before,
                )
            return None
        return (
            ErrorCode.CONNECTION_LOST_ERROR_CODE,
            f"gave up after {attempt} reconnection attempts"
            f" ({self._loop_time() - dropped_at:.1f} s)",
        )

    @staticmethod
    def _loop_time() -> float:
        return asyncio.get_running_loop().time()
