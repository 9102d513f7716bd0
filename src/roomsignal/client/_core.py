"""The client's sans-I/O core: what each frame from the server means for a session.

``ClientCore`` is fed whole frames (``receive``) and answers with what
happened; it never does I/O, imports neither asyncio nor websockets, and has
no clock of its own (the caller passes the time in). It owns:

- request ids and the table of requests in flight (``request``, ``forget``,
  ``take_pending``); a waiter is the caller's opaque object (the asyncio
  shell uses a future), asked only whether it is ``done()``. Ids count on
  for the session's whole life, across connections, and a request keeps its
  frame while in flight: after a resume the shell sends again, with the same
  id, every request that had no answer (``resend``), and the server answers
  one it had handled from its cache (docs/protocol.md section 8);
- matching a response to its request (``Answer``), an error response turned
  into a ``SessionError``;
- ``seq`` de-duplication: a notification already delivered is dropped, a new
  one is handed on as ``(event, payload)``, and one whose ``seq`` is more
  than ``max_seq_jump`` past the last one cannot be real: ``Broken`` (report
  it, drop the connection, resume from ``last_seq``);
- the mirror of the room (participants and their streams, sync state) and
  what a resume needs (``participant_secret``, ``last_seq``);
- what a join result, a close code or a failed rejoin means for the session
  (``final_reason``, ``failed_rejoin``).

The asyncio shell (``Session``) moves frames between the connection and this
core and turns its answers into listener events and resolved futures.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Generic, Literal, Protocol, TypeVar

from roomsignal.catalog import ErrorCode, lookup
from roomsignal.client._compact import compact
from roomsignal.client._payloads import MessageReceived, ParticipantLeft, SubscribeRequest, resolved
from roomsignal.errors import ProtocolError, SessionError, make_error
from roomsignal.errors import _server_error as server_error
from roomsignal.protocol import (
    ErrorResponse,
    IceCandidateNotification,
    JoinParams,
    JoinResult,
    MessageReceivedNotification,
    MessageReceivedParams,
    Model,
    Participant,
    ParticipantJoinedNotification,
    ParticipantJoinedParams,
    ParticipantLeftNotification,
    ParticipantLeftParams,
    Response,
    SdpAnswerNotification,
    SdpOfferNotification,
    SessionClosedNotification,
    SessionClosedParams,
    SessionErrorNotification,
    SessionErrorParams,
    StreamPublishedNotification,
    StreamPublishedParams,
    Streams,
    StreamUnpublishedNotification,
    StreamUnpublishedParams,
    SubscribeRequestNotification,
    SubscribeRequestParams,
    SubscriptionEndedNotification,
    SyncDataNotification,
    SyncDataParams,
    SyncState,
    decode,
    decode_response,
    decode_session_error,
    encode,
)
from roomsignal.protocol._codec import SPEEDUPS, session_error_parts

__all__ = ["MAX_SEQ_JUMP", "Answer", "Broken", "ClientCore", "Emit", "Final", "Rejoin", "Waiter"]

logger = logging.getLogger("roomsignal.client")

REPLACED = 4001  # close code: another connection took the seat
PROTOCOL_ERROR = 1002  # close code the client sends when it drops a connection it cannot trust
# How far past the last seq a notification's seq may be. The protocol has no gaps
# at all; a small one is delivered with a warning (as it always was), but a jump
# this large cannot be real: no replay buffer holds that many (the reference
# server's default is 1024 notifications), so it is a broken or hostile server.
MAX_SEQ_JUMP = 65536

# An event for the listeners: (event kind, payload), e.g. ("session_error", error).
Emit = tuple[str, Any]
# Why the session is over for good: (the code to report, or None for none; message).
Final = tuple[ErrorCode | None, str]
# What to do after a rejoin failed.
Rejoin = Literal["retry", "fresh", "stop"]


class Waiter(Protocol):
    """What the core needs of a request's waiter: whether it is settled already."""

    def done(self) -> bool: ...


W = TypeVar("W", bound=Waiter)


class Answer(Generic[W]):
    """A response matched to a request in flight (or an error response).

    ``error`` is set for an error response: it goes to the listeners first,
    then fails ``waiter`` (None when the id matched no request in flight).
    Otherwise ``waiter`` gets ``result``.
    """

    __slots__ = ("error", "method", "result", "waiter")

    def __init__(
        self,
        waiter: W | None,
        method: str | None,
        result: dict[str, Any] | None,
        error: SessionError | None,
    ) -> None:
        self.waiter = waiter
        self.method = method
        self.result = result
        self.error = error


class Broken:
    """A frame that cannot be real: report ``error``, drop the connection, resume.

    The frame was not delivered and ``last_seq`` did not move, so the resume
    asks for everything after the last notification that was.
    """

    __slots__ = ("error",)

    def __init__(self, error: SessionError) -> None:
        self.error = error


class _SeqJump(Exception):
    def __init__(self, seq: int) -> None:
        self.seq = seq


class ClientCore(Generic[W]):
    """One session's protocol state, fed whole frames; no I/O, no clock.

    Not thread-safe; every method returns at once.
    """

    __slots__ = (
        "_ids",
        "_pending",
        "closed_by",
        "final",
        "join_snapshot",
        "last_seq",
        "max_seq_jump",
        "park",
        "participant_id",
        "participant_secret",
        "participants",
        "replayed",
        "resume_window",
        "resuming",
        "roles",
        "session_id",
        "streak_since",
        "sync_state",
    )

    def __init__(self, *, max_seq_jump: int = MAX_SEQ_JUMP) -> None:
        if max_seq_jump < 1:
            raise ValueError("max_seq_jump must be at least 1")
        self.max_seq_jump = max_seq_jump
        self._ids = itertools.count(1)
        # id -> (method, waiter, its frame to send again after a resume, or None)
        self._pending: dict[int, tuple[str, W, str | None]] = {}
        # Whether requests in flight wait for a resume when a connection ends
        # (the shell turns it off while it restores after a reset: see _restore.py).
        self.park = True
        self.last_seq = 0
        self.replayed = 0
        self.resume_window: float | None = None  # the server's, from the last join result
        self.resuming = False  # whether the last join asked for the old seat
        # When the shell's current run of reconnections began (its loop time):
        # the first drop since the last stable connection.
        self.streak_since = 0.0
        self.final: Final | None = None
        self.closed_by: SessionClosedParams | None = None  # the sessionClosed, if one came
        self.participant_id: str | None = None
        self.participant_secret: str | None = None
        self.session_id: str | None = None
        self.roles: tuple[str, ...] = ()
        self.participants: dict[str, Participant] = {}
        self.join_snapshot: list[Participant] = []
        self.sync_state: SyncState | None = None

    # -- requests -----------------------------------------------------------------

    def request(
        self,
        method: str,
        build: Callable[[int], Model | str],
        waiter: W,
        *,
        resend: bool = True,
    ) -> tuple[int, str]:
        """A new request id and its frame; ``waiter`` is what its answer settles.

        ``build`` makes the request's model, or its frame already encoded
        (``ping_frame``: the hot path of ``ping()``). With ``resend`` (all but
        a ``join`` or a parting ``leave``) the request survives the end of its
        connection, to be sent again after a resume.
        """
        request_id = next(self._ids)
        built = build(request_id)
        frame: str = built if type(built) is str else encode(built)  # type: ignore[arg-type]
        self._pending[request_id] = (method, waiter, frame if resend else None)
        return request_id, frame

    def frame(self, build: Callable[[int], Model]) -> str:
        """A request frame with a fresh id that nobody waits for (a parting ``leave``)."""
        return encode(build(next(self._ids)))

    def forget(self, request_id: int) -> None:
        """The caller stopped waiting for ``request_id`` (answered, timed out, cancelled)."""
        self._pending.pop(request_id, None)

    def take_pending(self, *, keep_resendable: bool = False) -> list[tuple[str, W]]:
        """The requests in flight, as ``(method, waiter)``, taken off the table.

        With ``keep_resendable``, only those that cannot be sent again (a
        ``join``, a parting ``leave``); the others stay, for ``resend``.
        """
        pending = self._pending
        if not keep_resendable:
            self._pending = {}
            return [(method, waiter) for method, waiter, _ in pending.values()]
        taken = [(i, m, w) for i, (m, w, frame) in pending.items() if frame is None]
        for request_id, _, _ in taken:
            del pending[request_id]
        return [(method, waiter) for _, method, waiter in taken]

    def resend(self) -> list[str]:
        """The frames of the requests still unanswered, oldest first, to send again.

        Called once a resume is joined: each keeps its id, so the server
        answers one it had handled from its cache, without handling it twice.
        """
        return [
            frame
            for _, waiter, frame in self._pending.values()
            if frame is not None and not waiter.done()
        ]

    def join_params(
        self,
        *,
        token: str,
        name: str,
        participant_type: str,
        metadata: dict[str, Any] | None,
        resume: bool,
    ) -> JoinParams:
        """``join`` params; with ``resume``, asking for the old seat from ``last_seq`` on."""
        self.resuming = resume
        return JoinParams(
            token=token,
            name=name,
            participant_type=participant_type,
            metadata=metadata,
            old_participant_secret=self.participant_secret if resume else None,
            last_seq=self.last_seq if resume else None,
        )

    # -- frames -----------------------------------------------------------------------

    def receive(self, frame: str | bytes, now: float) -> Emit | Answer[W] | Broken | None:
        """What one whole frame means, received at ``now`` (Unix seconds).

        Returns an ``(event, payload)`` for the listeners (a fresh
        notification, or a ``session_error`` for a frame that cannot be
        read), an ``Answer`` for a response, ``Broken`` for a ``seq`` that
        cannot be real, or None (a duplicate ``seq``, a response nobody waits
        for). A join result is adopted before this returns, so the
        notifications that follow it are judged by it.
        """
        try:
            # The hot path of error bursts, by msgspec (the speedups extra) or by checks.
            if SPEEDUPS:
                parts = session_error_parts(frame)
                if parts is not None:
                    return self._session_error(parts[0], parts[1], parts[2], parts[3], now)
            else:
                params = decode_session_error(frame)
                if params is not None:
                    seq, code, message = params["seq"], params["code"], params["message"]
                    return self._session_error(seq, code, message, params.get("data"), now)
            if isinstance(frame, bytes):  # find, not ``in``: see session_error_parts
                maybe_answer = frame.find(b'"result"') >= 0
            else:
                maybe_answer = '"result"' in frame
            if maybe_answer:
                answer = decode_response(frame)  # the hot path of requests
                if answer is not None:
                    return self._answer(answer[0], answer[1])
            try:
                message = decode(frame)
            except ProtocolError as exc:
                return "session_error", self._stamp(exc.error, now)
            handler = _NOTE_HANDLERS.get(type(message))
            if handler is not None:
                return handler(self, message.params, now)  # type: ignore[union-attr]
        except _SeqJump as jump:
            return Broken(self._seq_jump_error(frame, jump.seq, now))
        if isinstance(message, Response):
            return self._answer(message.id, message.result)
        if isinstance(message, ErrorResponse):
            entry = self._pending.get(message.id) if isinstance(message.id, int) else None
            method = entry[0] if entry is not None else None
            err = message.error
            error_ = self.make_error(err.code, err.message, err.data, method, "server", now)
            return Answer(entry[1] if entry is not None else None, method, None, error_)
        code = ErrorCode.INVALID_REQUEST
        message_ = f"unexpected {type(message).__name__} from the server"
        return "session_error", self.make_error(code, message_, {"name": code.name}, None, now=now)

    def _answer(self, request_id: int | str, result: dict[str, Any]) -> Answer[W] | None:
        entry = self._pending.get(request_id)  # type: ignore[arg-type]  # a str: None
        if entry is None or entry[1].done():
            return None
        if entry[0] == "join":
            self._adopt_join(result)
        return Answer(entry[1], entry[0], result, None)

    def make_error(
        self,
        code: int,
        message: str,
        data: Mapping[str, Any] | None,
        method: str | None,
        source: Literal["server", "client"] = "client",
        now: float | None = None,
    ) -> SessionError:
        """A ``SessionError`` stamped with this session's ids."""
        return make_error(
            code,
            message,
            data,
            method=method,
            source=source,
            session_id=self.session_id,
            participant_id=self.participant_id,
            received_at=now,
        )

    def _seq_jump_error(self, frame: str | bytes, seq: int, now: float) -> SessionError:
        code = ErrorCode.INVALID_PARAMS
        method = _method_of(frame)
        why = (
            f"seq jumped from {self.last_seq} to {seq}, more than {self.max_seq_jump} ahead: "
            "it cannot be real"
        )
        data: dict[str, Any] = {
            "name": code.name,
            "errors": [{"loc": ["params", "seq"], "msg": why}],
            "seq": seq,
            "lastSeq": self.last_seq,
        }
        if method is not None:
            data["method"] = method
        message = f"invalid params for {method!r}: {why}; resuming from seq {self.last_seq}"
        return self.make_error(code, message, data, None, now=now)

    def _stamp(self, error: SessionError, now: float) -> SessionError:
        """A decode error with this session's ids and the time it was received."""
        update: dict[str, Any] = {"received_at": now}
        if error.session_id is None and self.session_id is not None:
            update["session_id"] = self.session_id
            update["participant_id"] = self.participant_id
        return error.model_copy(update=update)

    def _adopt_join(self, raw: dict[str, Any]) -> None:
        try:
            result = JoinResult.model_validate(raw)
        except ValueError:  # a ValidationError, or anything odd
            return  # the caller's own validation reports it
        if result.resumed:
            self.replayed = max(0, result.seq - self.last_seq)
        else:
            self.last_seq = result.seq
            self.replayed = 0
            self.participants = {p.participant_id: compact(p) for p in result.participants}
            # Who was there at the join: later arrivals come as participant_joined.
            self.join_snapshot = list(result.participants)
        self.session_id = result.session_id
        self.participant_id = result.participant_id
        self.participant_secret = result.participant_secret
        self.roles = tuple(result.roles)
        self.sync_state = result.sync_state
        self.resume_window = result.resume_window

    # -- what the session's end means ----------------------------------------------------

    def final_reason(self, code: int | None, reason: str) -> Final | None:
        """Why a connection closed with ``code`` cannot be resumed, or None if it may."""
        if self.final is not None:
            return self.final
        if code == REPLACED:
            return (
                ErrorCode.CONNECTION_REPLACED_ERROR_CODE,
                f"another connection took this seat ({code} {reason})",
            )
        if code == 1000:
            return (
                ErrorCode.CONNECTION_LOST_ERROR_CODE,
                f"the server closed the connection ({code} {reason})",
            )
        return None

    def failed_rejoin(
        self, code: int, name: str, *, resuming: bool, rejoin_on_reset: bool
    ) -> tuple[Rejoin, str]:
        """What a rejoin that failed with ``code`` calls for, and why if it is the end.

        A refused resume (106) joins afresh (a state reset). A fresh rejoin
        refused with 104 is retried: the name is held by our own old seat,
        which the server has not let go yet (a resume that raced its end).
        """
        if code == ErrorCode.USER_NOT_AUTHORIZED_ERROR_CODE and resuming:
            if not rejoin_on_reset:
                return "stop", "the resume was refused"
            return "fresh", "the resume was refused: joining afresh"
        if (
            code == ErrorCode.EXISTING_USER_IN_SESSION_ERROR_CODE
            and not resuming
            and self.participant_secret is not None
        ):
            return "retry", "the name is still held by our old seat: trying again"
        if code == ErrorCode.TOKEN_EXPIRED or not lookup(code).retryable:
            return "stop", f"rejoining failed with {code} {name}"
        return "retry", f"rejoining failed with {code} {name}"

    # -- notifications (judged by seq, in order) -------------------------------------------

    def fresh(self, seq: int) -> bool:
        """True for a notification not delivered yet (it is then counted); False drops it.

        A ``seq`` more than ``max_seq_jump`` ahead raises (``receive`` makes it ``Broken``).
        """
        if seq <= self.last_seq:
            logger.debug("dropping duplicate notification seq %d", seq)
            return False
        if seq - self.last_seq > self.max_seq_jump:
            raise _SeqJump(seq)
        if seq != self.last_seq + 1:
            logger.warning("notification seq jumped from %d to %d", self.last_seq, seq)
        self.last_seq = seq
        return True

    def _session_error(
        self, seq: int, code: int, message: str, data: dict[str, Any] | None, now: float
    ) -> Emit | None:
        # The hot path of error bursts: fresh() and make_error() inlined.
        if seq != self.last_seq + 1 and not self.fresh(seq):
            return None
        self.last_seq = seq
        return "session_error", server_error(
            code, message, data, self.session_id, self.participant_id, now
        )

    def _on_session_error(self, params: SessionErrorParams, now: float) -> Emit | None:
        dumped = params.model_dump()  # data copied: the error adopts it
        return self._session_error(params.seq, params.code, params.message, dumped["data"], now)

    def _on_participant_joined(self, params: ParticipantJoinedParams, now: float) -> Emit | None:
        if not self.fresh(params.seq):
            return None
        self.participants[params.participant.participant_id] = compact(params.participant)
        return "participant_joined", params

    def _on_participant_left(self, params: ParticipantLeftParams, now: float) -> Emit | None:
        if not self.fresh(params.seq):
            return None
        gone = self.participants.pop(params.participant_id, None)
        return "participant_left", resolved(ParticipantLeft, params, participant=gone)

    def _on_message(self, params: MessageReceivedParams, now: float) -> Emit | None:
        if not self.fresh(params.seq):
            return None
        sender = self.participants.get(params.from_)
        return "message", resolved(MessageReceived, params, sender=sender)

    def _on_subscribe_request(self, params: SubscribeRequestParams, now: float) -> Emit | None:
        if not self.fresh(params.seq):
            return None
        subscriber = self.participants.get(params.subscriber_id)
        return "subscribe_request", resolved(SubscribeRequest, params, subscriber=subscriber)

    def _on_stream_published(self, params: StreamPublishedParams, now: float) -> Emit | None:
        if not self.fresh(params.seq):
            return None
        self._set_streams(params.participant_id, Streams(audio=params.audio, video=params.video))
        return "stream_published", params

    def _on_stream_unpublished(self, params: StreamUnpublishedParams, now: float) -> Emit | None:
        if not self.fresh(params.seq):
            return None
        self._set_streams(params.participant_id, None)
        return "stream_unpublished", params

    def _set_streams(self, participant_id: str, streams: Streams | None) -> None:
        participant = self.participants.get(participant_id)
        if participant is not None:
            self.participants[participant_id] = compact(
                participant.model_copy(update={"streams": streams})
            )

    def _on_sync_data(self, params: SyncDataParams, now: float) -> Emit | None:
        if not self.fresh(params.seq):
            return None
        self.sync_state = SyncState(
            from_=params.from_,
            position=params.position,
            playing=params.playing,
            rate=params.rate,
            media_id=params.media_id,
            server_time=params.server_time,
        )
        return "sync_data", params

    def _on_session_closed(self, params: SessionClosedParams, now: float) -> Emit | None:
        if not self.fresh(params.seq):
            return None
        self.final = (None, f"the session was closed: {params.reason}")
        self.closed_by = params
        return "session_closed", params


def ping_frame(request_id: int) -> str:
    """``encode(PingRequest(id=request_id))``, without the model (4 µs less per ping)."""
    return _PING_HEAD + str(request_id) + _PING_TAIL


_PING_HEAD = '{"jsonrpc":"2.0","id":'
_PING_TAIL = ',"method":"ping","params":{}}'


def _method_of(frame: str | bytes) -> str | None:
    """The ``method`` of a frame known to be a valid notification (error path only)."""
    try:
        method = json.loads(frame).get("method")
    except (ValueError, AttributeError):
        return None
    return method if isinstance(method, str) else None


def _relay(event: str) -> Callable[[ClientCore[Any], Any, float], Emit | None]:
    """A handler that only passes a fresh notification on to ``event``'s listeners."""

    def handle(core: ClientCore[Any], params: Any, now: float) -> Emit | None:
        return (event, params) if core.fresh(params.seq) else None

    return handle


# Notification type -> handler(core, params, now); one table for every session.
_NOTE_HANDLERS: dict[type[Model], Callable[[ClientCore[Any], Any, float], Emit | None]] = {
    SessionErrorNotification: ClientCore._on_session_error,
    ParticipantJoinedNotification: ClientCore._on_participant_joined,
    ParticipantLeftNotification: ClientCore._on_participant_left,
    StreamPublishedNotification: ClientCore._on_stream_published,
    StreamUnpublishedNotification: ClientCore._on_stream_unpublished,
    SubscribeRequestNotification: ClientCore._on_subscribe_request,
    SubscriptionEndedNotification: _relay("subscription_ended"),
    SdpOfferNotification: _relay("sdp_offer"),
    SdpAnswerNotification: _relay("sdp_answer"),
    IceCandidateNotification: _relay("ice_candidate"),
    MessageReceivedNotification: ClientCore._on_message,
    SyncDataNotification: ClientCore._on_sync_data,
    SessionClosedNotification: ClientCore._on_session_closed,
}
