"""The rooms: sessions, participants, streams and exchanges as a pure state machine.

No sockets and no asyncio here. ``Rooms`` is driven by decoded requests,
connection losses and a clock (``now``, Unix seconds, passed in), and answers
with effects for the transport to carry out: frames to write to a connection,
connections to close or abort, a ``sessionError`` burst to stream. Deadlines
(``sdp_timeout``, ``resume_window``) are data too: the transport asks
``next_deadline()`` and calls ``expire(now)`` when it passes.

Every refusal is a row of the ``Denial`` table, which maps an illegal
transition to its catalog code; ``RoomError`` carries one. Notifications are
numbered per participant by ``seq`` and kept, as sent, in its replay buffer.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import logging
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from roomsignal.catalog import ErrorCode, lookup
from roomsignal.protocol import (
    CloseSessionRequest,
    EmptyResult,
    GetSessionStateRequest,
    IceCandidateNotification,
    IceCandidateNotificationParams,
    IceCandidateRequest,
    JoinParams,
    JoinRequest,
    JoinResult,
    LeaveRequest,
    MessageReceivedNotification,
    MessageReceivedParams,
    Model,
    Notification,
    Participant,
    ParticipantJoinedNotification,
    ParticipantJoinedParams,
    ParticipantLeftNotification,
    ParticipantLeftParams,
    PingRequest,
    PingResult,
    PublishRequest,
    PublishResult,
    Request,
    SdpAnswerNotification,
    SdpAnswerRequest,
    SdpNotificationParams,
    SdpOfferNotification,
    SdpOfferRequest,
    SendMessageRequest,
    SendSyncDataRequest,
    SessionClosedNotification,
    SessionClosedParams,
    SessionErrorNotification,
    SessionErrorParams,
    SessionStateResult,
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
    UnpublishRequest,
    UnsubscribeRequest,
)
from roomsignal.server._config import ServerConfig
from roomsignal.server._frames import error_frame, response_frame, stamp, template
from roomsignal.tokens import Grants, TokenClaims, TokenInvalid, verify

__all__ = [
    "CLOSE_NORMAL",
    "CLOSE_REPLACED",
    "PARTICIPANT_TYPES",
    "Abort",
    "Burst",
    "Close",
    "Denial",
    "Effect",
    "ExchangeState",
    "RoomError",
    "Rooms",
    "Rule",
    "Send",
    "internal_error_frame",
]

logger = logging.getLogger("roomsignal.server")

PARTICIPANT_TYPES = frozenset({"full", "viewer", "screen"})
_STREAMING_TYPES = frozenset({"full", "screen"})
CLOSE_NORMAL = 1000
CLOSE_REPLACED = 4001
_TOMBSTONES = 64  # ended exchanges remembered per participant, to answer late requests


# --- effects: what the transport must do -------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Write ``frame`` to connection ``conn``."""

    conn: int
    frame: str


@dataclass(frozen=True, slots=True)
class Close:
    """Close connection ``conn`` with a close frame (after what was written before)."""

    conn: int
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Abort:
    """Drop connection ``conn``'s TCP connection at once, with no close frame."""

    conn: int


@dataclass(frozen=True, slots=True)
class Burst:
    """Stream ``count`` ``sessionError`` notifications with ``code`` to a participant.

    The transport pulls them in chunks from ``Rooms.session_errors`` so a
    large burst neither blocks the loop nor awaits a drain per frame.
    """

    conn: int
    participant_id: str
    code: int
    count: int


Effect = Send | Close | Abort | Burst


# --- the refusal table -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """The code and default message that answer one illegal transition."""

    code: ErrorCode
    message: str


_E = ErrorCode


class Denial(enum.Enum):
    """Every illegal transition of the rooms, with the catalog code that answers it.

    The one table of conditions: each code is given here for each of its
    documented conditions, and nowhere else.
    """

    ALREADY_JOINED = Rule(_E.USER_GENERIC_ERROR_CODE, "this connection has already joined")
    BAD_PARTICIPANT_TYPE = Rule(
        _E.USER_GENERIC_ERROR_CODE, "participantType must be 'full', 'viewer' or 'screen'"
    )
    TARGET_UNAVAILABLE = Rule(
        _E.USER_GENERIC_ERROR_CODE,
        "the target is not available (it is yourself, or its connection is lost)",
    )
    UNKNOWN_EXCHANGE = Rule(
        _E.USER_GENERIC_ERROR_CODE, "no exchange with that id is open for this participant"
    )
    ICE_QUEUE_FULL = Rule(
        _E.USER_GENERIC_ERROR_CODE, "too many ICE candidates held before the offer"
    )
    NOT_JOINED = Rule(_E.USER_NOT_FOUND_ERROR_CODE, "join a session first")
    UNKNOWN_PARTICIPANT = Rule(
        _E.USER_NOT_FOUND_ERROR_CODE, "no participant with that id in the session"
    )
    PEER_LEFT = Rule(_E.USER_CLOSED_ERROR_CODE, "the other party left during the exchange")
    NAME_TAKEN = Rule(
        _E.EXISTING_USER_IN_SESSION_ERROR_CODE, "a participant with that name is in the session"
    )
    PUBLISH_NOTHING = Rule(_E.USER_NOT_STREAMING_ERROR_CODE, "publish needs audio or video")
    NO_OFFER = Rule(_E.USER_NOT_STREAMING_ERROR_CODE, "no offer was sent on that exchange")
    TARGET_NOT_PUBLISHING = Rule(_E.USER_NOT_STREAMING_ERROR_CODE, "the target publishes nothing")
    NOT_PUBLISHING = Rule(_E.USER_NOT_STREAMING_ERROR_CODE, "you are not publishing")
    NOT_SYNCHRONIZER = Rule(
        _E.USER_NOT_AUTHORIZED_ERROR_CODE, "sendSyncData needs the 'synchronizer' role"
    )
    VIEWER_PUBLISH = Rule(_E.USER_NOT_AUTHORIZED_ERROR_CODE, "viewers cannot publish")
    NOT_MODERATOR = Rule(
        _E.USER_NOT_AUTHORIZED_ERROR_CODE, "closeSession needs the 'moderator' role"
    )
    UNKNOWN_SECRET = Rule(
        _E.USER_NOT_AUTHORIZED_ERROR_CODE, "unknown or expired oldParticipantSecret"
    )
    REPLAY_GAP = Rule(
        _E.USER_NOT_AUTHORIZED_ERROR_CODE,
        "lastSeq is older than the replay buffer: the seat was ended, join afresh",
    )
    NO_VIDEO_GRANT = Rule(_E.USER_VIDEO_PERMISSION_DENIED_ERROR_CODE, "the token grants no video")
    NO_AUDIO_GRANT = Rule(_E.USER_AUDIO_PERMISSION_DENIED_ERROR_CODE, "the token grants no audio")
    INTERNAL = Rule(_E.SESSION_GENERIC_ERROR_CODE, "internal server error")
    SESSION_CLOSED = Rule(_E.SESSION_CLOSED_ERROR_CODE, "the session was closed")
    NO_CREATE_GRANT = Rule(
        _E.SESSION_CANNOT_BE_CREATED_ERROR_CODE,
        "the session does not exist and the token has no 'create' grant",
    )
    TOO_MANY_SESSIONS = Rule(
        _E.SESSION_CANNOT_BE_CREATED_ERROR_CODE, "the server is at max_sessions"
    )
    SESSION_FULL = Rule(
        _E.SESSION_IS_FULL_ERROR_CODE, "the session has its maximum of streaming participants"
    )
    ALREADY_SUBSCRIBED = Rule(_E.MEDIA_ENDPOINT_ERROR_CODE, "already subscribed to the target")
    EXCHANGE_IN_PROGRESS = Rule(
        _E.MEDIA_ENDPOINT_ERROR_CODE, "an exchange with the target is in progress"
    )
    SDP_TIMEOUT = Rule(
        _E.MEDIA_ENDPOINT_ERROR_CODE, "the SDP exchange did not complete within sdp_timeout"
    )
    TOKEN_EXPIRED = Rule(_E.TOKEN_EXPIRED, "the token has expired")
    TOKEN_INVALID = Rule(_E.TOKEN_DATA_IS_NOT_VALID, "the token is not valid")
    SIMULATION_OFF = Rule(_E.METHOD_NOT_FOUND, "unknown method 'simulateScenario'")
    BAD_SCENARIO = Rule(_E.INVALID_PARAMS, "invalid params for 'simulateScenario'")


class RoomError(Exception):
    """A refused request: a ``Denial`` and the ids it concerns.

    ``data(method)`` is the wire ``error.data``: ``name`` always, then
    ``method``, ``participantId``, ``exchangeId`` where they apply, and extras
    (``reason``, ``sessionId``, ``errors``).
    """

    def __init__(
        self,
        denial: Denial,
        *,
        message: str | None = None,
        participant_id: str | None = None,
        exchange_id: str | None = None,
        **extra: Any,
    ) -> None:
        rule = denial.value
        super().__init__(message or rule.message)
        self.denial = denial
        self.code = int(rule.code)
        self.message = message or rule.message
        self.participant_id = participant_id
        self.exchange_id = exchange_id
        self.extra = extra

    def data(self, method: str | None = None) -> dict[str, Any]:
        """The wire ``error.data`` of this refusal."""
        return _error_data(self.code, method, self.participant_id, self.exchange_id, self.extra)


def _error_data(
    code: int,
    method: str | None,
    participant_id: str | None,
    exchange_id: str | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    data: dict[str, Any] = {"name": lookup(code).name}
    if method is not None:
        data["method"] = method
    if participant_id is not None:
        data["participantId"] = participant_id
    if exchange_id is not None:
        data["exchangeId"] = exchange_id
    data.update(extra)
    return data


def internal_error_frame(request_id: int | str, method: str) -> str:
    """The 201 response to a request whose handling failed unexpectedly (no traceback)."""
    error = RoomError(Denial.INTERNAL)
    return error_frame(request_id, error.code, error.message, error.data(method))


_SCENARIOS = ("internalError", "sessionErrors", "connectionDrop")


def _check_scenario(request: SimulateScenarioRequest) -> None:
    """Refuse an unknown scenario, or ``sessionErrors`` without ``code`` (-32602)."""
    params = request.params
    if params.scenario not in _SCENARIOS:
        message = "Input should be " + ", ".join(repr(s) for s in _SCENARIOS)
        errors = [{"loc": ["params", "scenario"], "msg": message}]
    elif params.scenario == "sessionErrors" and params.code is None:
        errors = [{"loc": ["params", "code"], "msg": "Field required"}]
    else:
        return
    raise RoomError(Denial.BAD_SCENARIO, errors=errors)


class SimulatedFailure(RuntimeError):
    """Raised on purpose by ``simulateScenario`` ``internalError``."""


# --- exchanges as a transition table ----------------------------------------------


class ExchangeState(enum.Enum):
    """Where an SDP exchange stands."""

    AWAITING_OFFER = "awaiting-offer"
    AWAITING_ANSWER = "awaiting-answer"
    ESTABLISHED = "established"
    TIMED_OUT = "timed-out"
    ENDED = "ended"


class _Event(enum.Enum):
    OFFER = "offer"
    ANSWER = "answer"
    TIMEOUT = "timeout"


_S = ExchangeState
_EXCHANGE_TRANSITIONS: dict[tuple[ExchangeState, _Event], ExchangeState] = {
    (_S.AWAITING_OFFER, _Event.OFFER): _S.AWAITING_ANSWER,
    (_S.AWAITING_ANSWER, _Event.OFFER): _S.AWAITING_ANSWER,  # a new offer replaces the old
    (_S.ESTABLISHED, _Event.OFFER): _S.AWAITING_ANSWER,  # renegotiation
    (_S.AWAITING_ANSWER, _Event.ANSWER): _S.ESTABLISHED,
    (_S.AWAITING_OFFER, _Event.TIMEOUT): _S.TIMED_OUT,
    (_S.AWAITING_ANSWER, _Event.TIMEOUT): _S.TIMED_OUT,
}
_EXCHANGE_DENIALS: dict[_Event, Denial] = {_Event.ANSWER: Denial.NO_OFFER}
_IN_PROGRESS = frozenset({_S.AWAITING_OFFER, _S.AWAITING_ANSWER})


# --- the state ------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class _Exchange:
    id: str
    publisher: _Member
    subscriber: _Member
    state: ExchangeState
    deadline: float | None
    # Candidates held until the offer is relayed, by sender id; None once relayed.
    held: dict[str, list[IceCandidateNotification]] | None = field(default_factory=dict)

    def other(self, member: _Member) -> _Member:
        return self.subscriber if member is self.publisher else self.publisher


@dataclass(eq=False, slots=True)
class _Member:
    id: str
    name: str
    type: str
    roles: tuple[str, ...]
    grants: Grants
    metadata: dict[str, Any]
    secret: str
    session: _Session
    replay: deque[str]
    conn: int | None = None
    streams: Streams | None = None
    stream_id: str | None = None
    seq: int = 0
    resume_deadline: float | None = None
    exchanges: dict[str, _Exchange] = field(default_factory=dict)
    ended: OrderedDict[str, tuple[Denial, str]] = field(default_factory=OrderedDict)

    def wire(self) -> Participant:
        return Participant(
            participant_id=self.id,
            name=self.name,
            participant_type=self.type,
            roles=list(self.roles),
            streams=self.streams,
            metadata=self.metadata,
        )

    def tombstone(self, exchange_id: str, denial: Denial, other_id: str) -> None:
        self.ended[exchange_id] = (denial, other_id)
        while len(self.ended) > _TOMBSTONES:
            self.ended.popitem(last=False)


@dataclass(eq=False, slots=True)
class _Session:
    id: str
    max_streaming: int
    members: dict[str, _Member] = field(default_factory=dict)
    names: dict[str, _Member] = field(default_factory=dict)
    pairs: dict[tuple[str, str], _Exchange] = field(default_factory=dict)
    streaming: int = 0
    sync_state: SyncState | None = None


class _Out:
    """Effects gathered while handling one event, in the order they must happen."""

    __slots__ = ("effects",)

    def __init__(self) -> None:
        self.effects: list[Effect] = []

    def first(self, effect: Effect) -> None:
        self.effects.insert(0, effect)

    def send(self, conn: int, frame: str) -> None:
        self.effects.append(Send(conn, frame))

    def close(self, conn: int, code: int, reason: str) -> None:
        self.effects.append(Close(conn, code, reason))

    def notify(self, members: Iterable[_Member], notification: Notification) -> None:
        """Number, buffer and (to those connected) send one notification."""
        base = template(notification)
        for member in members:
            member.seq += 1
            frame = stamp(base, member.seq)
            member.replay.append(frame)
            if member.conn is not None:
                self.effects.append(Send(member.conn, frame))


def _others(session: _Session, member: _Member) -> list[_Member]:
    return [m for m in session.members.values() if m is not member]


# --- the rooms ----------------------------------------------------------------------

_Handler = Callable[[_Out, _Member, Any, float], Model | None]


class Rooms:
    """Every session of one server; not thread-safe, not async, never blocks.

    ``handle`` answers one decoded request of one connection, ``disconnect``
    reports a connection lost without ``leave``, ``expire`` runs the deadlines
    that have passed, ``shutdown`` closes every session. Each returns the
    effects to carry out, in order; none raises for anything a client sends.
    Connections are the transport's integers; a connection that has not
    joined is unknown here.
    """

    def __init__(self, secret: str, config: ServerConfig | None = None) -> None:
        self._secret = secret
        self._config = config if config is not None else ServerConfig()
        self._sessions: dict[str, _Session] = {}
        self._closed: OrderedDict[str, None] = OrderedDict()
        self._members: dict[str, _Member] = {}
        self._secrets: dict[str, _Member] = {}
        self._conns: dict[int, _Member] = {}
        self._exchanges: dict[str, _Exchange] = {}
        self._deadlines: list[tuple[float, int, str, str]] = []
        self._tiebreak = itertools.count()
        self._handlers: dict[str, _Handler] = {
            "leave": self._leave,
            "publish": self._publish,
            "unpublish": self._unpublish,
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "sdpOffer": self._sdp_offer,
            "sdpAnswer": self._sdp_answer,
            "iceCandidate": self._ice_candidate,
            "sendMessage": self._send_message,
            "sendSyncData": self._send_sync_data,
            "getSessionState": self._get_session_state,
            "closeSession": self._close_session_request,
            "simulateScenario": self._simulate,
        }

    @property
    def config(self) -> ServerConfig:
        """The limits these rooms enforce."""
        return self._config

    # --- inspection (tests, health) ---------------------------------------

    def stats(self) -> dict[str, int]:
        """Counts of what is held: sessions, participants, connections, exchanges."""
        return {
            "sessions": len(self._sessions),
            "participants": len(self._members),
            "connections": len(self._conns),
            "exchanges": len(self._exchanges),
            "closedSessions": len(self._closed),
        }

    def session_state(self, session_id: str) -> SessionStateResult | None:
        """What ``getSessionState`` would answer for ``session_id``; None if no such session."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        return SessionStateResult(
            session_id=session.id,
            participants=[m.wire() for m in session.members.values()],
            sync_state=session.sync_state,
        )

    def exchange_state(self, exchange_id: str) -> ExchangeState | None:
        """The state of an open exchange; None once it ended or timed out."""
        exchange = self._exchanges.get(exchange_id)
        return None if exchange is None else exchange.state

    def is_connected(self, participant_id: str) -> bool | None:
        """Whether a participant has a live connection; None if it is not in any session."""
        member = self._members.get(participant_id)
        return None if member is None else member.conn is not None

    def last_seq(self, participant_id: str) -> int | None:
        """The last seq assigned to a participant; None if it is not in any session."""
        member = self._members.get(participant_id)
        return None if member is None else member.seq

    # --- events --------------------------------------------------------------

    def handle(self, conn: int, request: Request, now: float) -> list[Effect]:
        """Answer one request of connection ``conn``; never raises (failures are 201)."""
        out = _Out()
        method = request.method
        try:
            result = self._dispatch(out, conn, request, now)
        except RoomError as exc:
            caller = self._conns.get(conn)
            participant_id = exc.participant_id
            if participant_id is None and caller is not None and exc.code > 0:
                participant_id = caller.id
            data = _error_data(exc.code, method, participant_id, exc.exchange_id, exc.extra)
            logger.info("%s refused with %s: %s", method, exc.code, exc.message)
            out.first(Send(conn, error_frame(request.id, exc.code, exc.message, data)))
        except Exception:
            logger.exception("internal error while handling %s", method)
            out.first(Send(conn, internal_error_frame(request.id, method)))
        else:
            if result is not None:
                out.first(Send(conn, response_frame(request.id, result)))
        return out.effects

    def disconnect(self, conn: int, now: float) -> list[Effect]:
        """Connection ``conn`` was lost without ``leave``: its seat waits ``resume_window``."""
        out = _Out()
        member = self._conns.get(conn)
        if member is not None:
            self._detach(out, member, now)
        return out.effects

    def next_deadline(self) -> float | None:
        """When ``expire`` has work next (Unix seconds), or None."""
        heap = self._deadlines
        while heap and not self._live(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def expire(self, now: float) -> list[Effect]:
        """Run every deadline that has passed at ``now``."""
        out = _Out()
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if not self._live(entry):
                continue
            _, _, kind, key = entry
            if kind == "resume":
                member = self._members[key]
                logger.info("participant %s did not resume in time", member.id)
                self._remove(out, member, "disconnected")
            else:
                self._time_out(out, self._exchanges[key])
        return out.effects

    def shutdown(self) -> list[Effect]:
        """Close every session (203, then ``sessionClosed`` reason ``serverShutdown``)."""
        out = _Out()
        for session in list(self._sessions.values()):
            self._close_session(out, session, "serverShutdown", remember=False)
        return out.effects

    def session_errors(
        self, participant_id: str, code: int, count: int
    ) -> tuple[int | None, list[str]]:
        """Number and buffer ``count`` ``sessionError`` notifications with ``code``.

        Returns the participant's connection (None while it has none) and the
        frames to write there; no frames when the participant is gone.
        """
        member = self._members.get(participant_id)
        if member is None or count <= 0:
            return None, []
        entry = lookup(code)
        base = template(
            SessionErrorNotification(
                params=SessionErrorParams(
                    seq=0,
                    code=code,
                    message=entry.description,
                    data={"name": entry.name, "simulated": True},
                )
            )
        )
        seq = member.seq
        frames = [stamp(base, s) for s in range(seq + 1, seq + count + 1)]
        member.seq = seq + count
        member.replay.extend(frames)
        return member.conn, frames

    # --- dispatch ---------------------------------------------------------------

    def _dispatch(self, out: _Out, conn: int, request: Request, now: float) -> Model | None:
        if isinstance(request, PingRequest):
            return PingResult(server_time=now)
        if isinstance(request, SimulateScenarioRequest):
            if not self._config.allow_simulation:
                raise RoomError(Denial.SIMULATION_OFF)
            _check_scenario(request)  # a params check: before 102, as section 2 orders
        if isinstance(request, JoinRequest):
            return self._join(out, conn, request.params, now)
        member = self._conns.get(conn)
        if member is None:
            raise RoomError(Denial.NOT_JOINED)
        return self._handlers[request.method](out, member, request, now)

    # --- join, resume, leave -------------------------------------------------------

    def _join(self, out: _Out, conn: int, params: JoinParams, now: float) -> JoinResult:
        if conn in self._conns:
            raise RoomError(Denial.ALREADY_JOINED)
        try:
            claims = verify(params.token, self._secret, now=now)
        except TokenInvalid as exc:
            expired = exc.code == ErrorCode.TOKEN_EXPIRED
            denial = Denial.TOKEN_EXPIRED if expired else Denial.TOKEN_INVALID
            raise RoomError(denial, message=str(exc)) from None
        if params.participant_type not in PARTICIPANT_TYPES:
            raise RoomError(Denial.BAD_PARTICIPANT_TYPE)
        if claims.sid in self._closed:
            raise RoomError(Denial.SESSION_CLOSED, sessionId=claims.sid)
        if params.old_participant_secret is not None:
            return self._resume(out, conn, claims, params)
        session = self._sessions.get(claims.sid)
        if session is None:
            if not claims.grants.create:
                raise RoomError(Denial.NO_CREATE_GRANT, sessionId=claims.sid)
            if len(self._sessions) >= self._config.max_sessions:
                raise RoomError(Denial.TOO_MANY_SESSIONS, sessionId=claims.sid)
            limit = claims.max_streaming
            if limit is None:
                limit = self._config.max_streaming_participants
            streaming = 0
        else:
            if params.name in session.names:
                raise RoomError(Denial.NAME_TAKEN)
            limit = session.max_streaming
            streaming = session.streaming
        if params.participant_type in _STREAMING_TYPES and streaming >= limit:
            raise RoomError(Denial.SESSION_FULL, sessionId=claims.sid)
        if session is None:
            session = _Session(id=claims.sid, max_streaming=limit)
            self._sessions[session.id] = session
            logger.info("session %s created", session.id)
        member = _Member(
            id=self._new_id("p", self._members),
            name=params.name,
            type=params.participant_type,
            roles=claims.roles,
            grants=claims.grants,
            metadata=dict(params.metadata or {}),
            secret=self._new_id("s", self._secrets, nbytes=24),
            session=session,
            replay=deque(maxlen=self._config.replay_buffer),
            conn=conn,
        )
        others = list(session.members.values())
        session.members[member.id] = member
        session.names[member.name] = member
        if member.type in _STREAMING_TYPES:
            session.streaming += 1
        self._members[member.id] = member
        self._secrets[member.secret] = member
        self._conns[conn] = member
        out.notify(
            others,
            ParticipantJoinedNotification(
                params=ParticipantJoinedParams(seq=0, participant=member.wire())
            ),
        )
        logger.info(
            "participant %s (%r, %s) joined session %s",
            member.id,
            member.name,
            member.type,
            session.id,
        )
        return self._join_result(member, resumed=False)

    def _join_result(self, member: _Member, *, resumed: bool) -> JoinResult:
        session = member.session
        return JoinResult(
            session_id=session.id,
            participant_id=member.id,
            participant_secret=member.secret,
            participant_type=member.type,
            roles=list(member.roles),
            participants=[m.wire() for m in _others(session, member)],
            sync_state=session.sync_state,
            seq=member.seq,
            resumed=resumed,
        )

    def _resume(self, out: _Out, conn: int, claims: TokenClaims, params: JoinParams) -> JoinResult:
        member = self._secrets.get(params.old_participant_secret or "")
        if member is None or member.session.id != claims.sid:
            raise RoomError(Denial.UNKNOWN_SECRET)
        last_seq = min(max(params.last_seq or 0, 0), member.seq)
        missing = member.seq - last_seq
        if missing > len(member.replay):
            old_conn = member.conn
            self._remove(out, member, "disconnected")
            if old_conn is not None:
                out.close(old_conn, CLOSE_REPLACED, "replaced")
            logger.info("participant %s cannot resume: replay gap", member.id)
            raise RoomError(Denial.REPLAY_GAP, participant_id=member.id, reason="replayGap")
        if member.conn is not None:
            del self._conns[member.conn]
            out.close(member.conn, CLOSE_REPLACED, "replaced")
            logger.info("participant %s taken over by a new connection", member.id)
        member.conn = conn
        member.resume_deadline = None
        self._conns[conn] = member
        if missing:
            for frame in list(member.replay)[len(member.replay) - missing :]:
                out.send(conn, frame)
        logger.info("participant %s resumed, replaying %d", member.id, missing)
        return self._join_result(member, resumed=True)

    def _leave(self, out: _Out, member: _Member, request: LeaveRequest, now: float) -> Model:
        conn = member.conn
        self._remove(out, member, "left")
        if conn is not None:
            out.close(conn, CLOSE_NORMAL, "left")
        return EmptyResult()

    def _detach(self, out: _Out, member: _Member, now: float) -> None:
        if member.conn is not None:
            self._conns.pop(member.conn, None)
            member.conn = None
        if self._config.resume_window <= 0:
            self._remove(out, member, "disconnected")
            return
        member.resume_deadline = now + self._config.resume_window
        self._schedule(member.resume_deadline, "resume", member.id)
        logger.info("participant %s disconnected; its seat waits", member.id)

    def _remove(self, out: _Out, member: _Member, reason: str) -> None:
        """End a seat: others get ``participantLeft``, its exchanges end."""
        session = member.session
        if member.conn is not None:
            self._conns.pop(member.conn, None)
            member.conn = None
        del session.members[member.id]
        del session.names[member.name]
        if member.type in _STREAMING_TYPES:
            session.streaming -= 1
        del self._members[member.id]
        del self._secrets[member.secret]
        member.resume_deadline = None
        out.notify(
            session.members.values(),
            ParticipantLeftNotification(
                params=ParticipantLeftParams(seq=0, participant_id=member.id, reason=reason)
            ),
        )
        for exchange in list(member.exchanges.values()):
            other = exchange.other(member)
            in_progress = exchange.state in _IN_PROGRESS
            self._end_exchange(exchange)
            other.tombstone(exchange.id, Denial.PEER_LEFT, member.id)
            if in_progress:
                self._session_error(
                    out, other, Denial.PEER_LEFT, participant_id=member.id, exchange_id=exchange.id
                )
        logger.info("participant %s left session %s (%s)", member.id, session.id, reason)
        if not session.members:
            del self._sessions[session.id]
            logger.info("session %s removed: no members left", session.id)

    # --- streams ------------------------------------------------------------------

    def _publish(self, out: _Out, member: _Member, request: PublishRequest, now: float) -> Model:
        audio, video = request.params.audio, request.params.video
        if member.type == "viewer":
            raise RoomError(Denial.VIEWER_PUBLISH)
        if not (audio or video):
            raise RoomError(Denial.PUBLISH_NOTHING)
        if video and not member.grants.video:
            raise RoomError(Denial.NO_VIDEO_GRANT)
        if audio and not member.grants.audio:
            raise RoomError(Denial.NO_AUDIO_GRANT)
        member.streams = Streams(audio=audio, video=video)
        if member.stream_id is None:
            member.stream_id = self._new_id("st", {})
        out.notify(
            _others(member.session, member),
            StreamPublishedNotification(
                params=StreamPublishedParams(
                    seq=0, participant_id=member.id, audio=audio, video=video
                )
            ),
        )
        return PublishResult(stream_id=member.stream_id)

    def _unpublish(
        self, out: _Out, member: _Member, request: UnpublishRequest, now: float
    ) -> Model:
        if member.streams is None:
            raise RoomError(Denial.NOT_PUBLISHING)
        member.streams = None
        member.stream_id = None
        out.notify(
            _others(member.session, member),
            StreamUnpublishedNotification(
                params=StreamUnpublishedParams(seq=0, participant_id=member.id)
            ),
        )
        for exchange in [x for x in member.exchanges.values() if x.publisher is member]:
            self._end_exchange(exchange)
            out.notify(
                [exchange.subscriber],
                SubscriptionEndedNotification(
                    params=SubscriptionEndedParams(
                        seq=0,
                        exchange_id=exchange.id,
                        participant_id=member.id,
                        reason="unpublished",
                    )
                ),
            )
        return EmptyResult()

    # --- subscriptions and the SDP exchange -----------------------------------------------

    @staticmethod
    def _find(session: _Session, participant_id: str) -> _Member:
        """The member ``participant_id`` of ``session`` (a waiting seat counts)."""
        member = session.members.get(participant_id)
        if member is None:
            raise RoomError(Denial.UNKNOWN_PARTICIPANT, participant_id=participant_id)
        return member

    def _target(self, member: _Member, target_id: str) -> _Member:
        target = self._find(member.session, target_id)
        if target is member or target.conn is None:
            raise RoomError(Denial.TARGET_UNAVAILABLE, participant_id=target_id)
        return target

    def _subscribe(
        self, out: _Out, member: _Member, request: SubscribeRequest, now: float
    ) -> Model:
        target = self._target(member, request.params.target)
        if target.streams is None:
            raise RoomError(Denial.TARGET_NOT_PUBLISHING, participant_id=target.id)
        session = member.session
        existing = session.pairs.get((target.id, member.id))
        if existing is not None:
            denial = (
                Denial.ALREADY_SUBSCRIBED
                if existing.state is _S.ESTABLISHED
                else Denial.EXCHANGE_IN_PROGRESS
            )
            raise RoomError(denial, participant_id=target.id, exchange_id=existing.id)
        exchange = _Exchange(
            id=self._new_id("x", self._exchanges),
            publisher=target,
            subscriber=member,
            state=_S.AWAITING_OFFER,
            deadline=now + self._config.sdp_timeout,
        )
        self._exchanges[exchange.id] = exchange
        session.pairs[(target.id, member.id)] = exchange
        target.exchanges[exchange.id] = exchange
        member.exchanges[exchange.id] = exchange
        assert exchange.deadline is not None
        self._schedule(exchange.deadline, "sdp", exchange.id)
        out.notify(
            [target],
            SubscribeRequestNotification(
                params=SubscribeRequestParams(
                    seq=0, exchange_id=exchange.id, subscriber_id=member.id
                )
            ),
        )
        return SubscribeResult(exchange_id=exchange.id)

    def _unsubscribe(
        self, out: _Out, member: _Member, request: UnsubscribeRequest, now: float
    ) -> Model:
        target = self._target(member, request.params.target)
        exchange = member.session.pairs.get((target.id, member.id))
        if exchange is not None:
            self._end_exchange(exchange)
            out.notify(
                [target],
                SubscriptionEndedNotification(
                    params=SubscriptionEndedParams(
                        seq=0,
                        exchange_id=exchange.id,
                        participant_id=member.id,
                        reason="unsubscribed",
                    )
                ),
            )
        return EmptyResult()

    def _exchange_of(self, member: _Member, exchange_id: str, role: str) -> _Exchange:
        """The open exchange ``exchange_id`` in which ``member`` plays ``role``.

        A refusal about an exchange ``member`` is a party to (in the other
        role, or ended) names the counterpart; about an unknown id, nobody
        (``handle`` then names the caller).
        """
        exchange = member.exchanges.get(exchange_id)
        if exchange is not None and (
            role == "either"
            or (role == "publisher" and exchange.publisher is member)
            or (role == "subscriber" and exchange.subscriber is member)
        ):
            return exchange
        denial = Denial.NO_OFFER if role == "subscriber" else Denial.UNKNOWN_EXCHANGE
        if exchange is not None:  # a party, in the other role
            raise RoomError(
                denial, participant_id=exchange.other(member).id, exchange_id=exchange_id
            )
        ended = member.ended.get(exchange_id)
        if ended is not None:
            raise RoomError(ended[0], participant_id=ended[1], exchange_id=exchange_id)
        raise RoomError(denial, exchange_id=exchange_id)

    def _transition(self, exchange: _Exchange, event: _Event, member: _Member) -> ExchangeState:
        state = _EXCHANGE_TRANSITIONS.get((exchange.state, event))
        if state is None:
            raise RoomError(
                _EXCHANGE_DENIALS[event],
                participant_id=exchange.other(member).id,
                exchange_id=exchange.id,
            )
        return state

    def _sdp_offer(self, out: _Out, member: _Member, request: SdpOfferRequest, now: float) -> Model:
        params = request.params
        exchange = self._exchange_of(member, params.exchange_id, "publisher")
        renegotiating = exchange.state is _S.ESTABLISHED
        exchange.state = self._transition(exchange, _Event.OFFER, member)
        if renegotiating:
            exchange.deadline = now + self._config.sdp_timeout
            self._schedule(exchange.deadline, "sdp", exchange.id)
        subscriber = exchange.subscriber
        out.notify(
            [subscriber],
            SdpOfferNotification(
                params=SdpNotificationParams(
                    seq=0, exchange_id=exchange.id, from_=member.id, sdp=params.sdp
                )
            ),
        )
        held, exchange.held = exchange.held, None
        if held:
            for sender_id, candidates in held.items():
                recipient = subscriber if sender_id == member.id else member
                for candidate in candidates:
                    out.notify([recipient], candidate)
        return EmptyResult()

    def _sdp_answer(
        self, out: _Out, member: _Member, request: SdpAnswerRequest, now: float
    ) -> Model:
        params = request.params
        exchange = self._exchange_of(member, params.exchange_id, "subscriber")
        exchange.state = self._transition(exchange, _Event.ANSWER, member)
        exchange.deadline = None
        out.notify(
            [exchange.publisher],
            SdpAnswerNotification(
                params=SdpNotificationParams(
                    seq=0, exchange_id=exchange.id, from_=member.id, sdp=params.sdp
                )
            ),
        )
        return EmptyResult()

    def _ice_candidate(
        self, out: _Out, member: _Member, request: IceCandidateRequest, now: float
    ) -> Model:
        params = request.params
        exchange = self._exchange_of(member, params.exchange_id, "either")
        other = exchange.other(member)
        notification = IceCandidateNotification(
            params=IceCandidateNotificationParams(
                seq=0,
                exchange_id=exchange.id,
                from_=member.id,
                candidate=params.candidate,
                sdp_mid=params.sdp_mid,
                sdp_m_line_index=params.sdp_m_line_index,
            )
        )
        if exchange.held is None:
            out.notify([other], notification)
            return EmptyResult()
        queue = exchange.held.setdefault(member.id, [])
        if len(queue) >= self._config.ice_queue_limit:
            raise RoomError(Denial.ICE_QUEUE_FULL, participant_id=other.id, exchange_id=exchange.id)
        queue.append(notification)
        return EmptyResult()

    def _time_out(self, out: _Out, exchange: _Exchange) -> None:
        exchange.state = self._transition(exchange, _Event.TIMEOUT, exchange.publisher)
        self._end_exchange(exchange, state=_S.TIMED_OUT)
        for member in (exchange.publisher, exchange.subscriber):
            other = exchange.other(member)
            member.tombstone(exchange.id, Denial.SDP_TIMEOUT, other.id)
            self._session_error(
                out, member, Denial.SDP_TIMEOUT, participant_id=other.id, exchange_id=exchange.id
            )
        logger.info("exchange %s timed out", exchange.id)

    def _end_exchange(self, exchange: _Exchange, state: ExchangeState = _S.ENDED) -> None:
        exchange.state = state
        exchange.deadline = None
        self._exchanges.pop(exchange.id, None)
        exchange.publisher.exchanges.pop(exchange.id, None)
        exchange.subscriber.exchanges.pop(exchange.id, None)
        session = exchange.publisher.session
        key = (exchange.publisher.id, exchange.subscriber.id)
        if session.pairs.get(key) is exchange:
            del session.pairs[key]

    # --- messages, sync, state, closing ---------------------------------------------

    def _send_message(
        self, out: _Out, member: _Member, request: SendMessageRequest, now: float
    ) -> Model:
        params = request.params
        session = member.session
        if params.to is None:
            recipients = _others(session, member)
        else:
            recipients = [self._find(session, target_id) for target_id in dict.fromkeys(params.to)]
        out.notify(
            recipients,
            MessageReceivedNotification(
                params=MessageReceivedParams(
                    seq=0, from_=member.id, text=params.text, private=params.to is not None
                )
            ),
        )
        return EmptyResult()

    def _send_sync_data(
        self, out: _Out, member: _Member, request: SendSyncDataRequest, now: float
    ) -> Model:
        if "synchronizer" not in member.roles:
            raise RoomError(Denial.NOT_SYNCHRONIZER)
        params = request.params
        state = SyncState(
            from_=member.id,
            position=params.position,
            playing=params.playing,
            rate=params.rate,
            media_id=params.media_id,
            server_time=now,
        )
        member.session.sync_state = state
        out.notify(
            _others(member.session, member),
            SyncDataNotification(
                params=SyncDataParams(
                    seq=0,
                    from_=member.id,
                    position=state.position,
                    playing=state.playing,
                    rate=state.rate,
                    media_id=state.media_id,
                    server_time=now,
                )
            ),
        )
        return EmptyResult()

    def _get_session_state(
        self, out: _Out, member: _Member, request: GetSessionStateRequest, now: float
    ) -> Model:
        state = self.session_state(member.session.id)
        assert state is not None
        return state

    def _close_session_request(
        self, out: _Out, member: _Member, request: CloseSessionRequest, now: float
    ) -> Model:
        if "moderator" not in member.roles:
            raise RoomError(Denial.NOT_MODERATOR)
        reason = request.params.reason or "closedByModerator"
        logger.info("session %s closed by %s", member.session.id, member.id)
        self._close_session(out, member.session, reason, remember=True)
        return EmptyResult()

    def _close_session(self, out: _Out, session: _Session, reason: str, *, remember: bool) -> None:
        members = list(session.members.values())
        self._session_error(out, members, Denial.SESSION_CLOSED, sessionId=session.id)
        out.notify(
            members,
            SessionClosedNotification(
                params=SessionClosedParams(seq=0, session_id=session.id, reason=reason)
            ),
        )
        for member in members:
            if member.conn is not None:
                out.close(member.conn, CLOSE_NORMAL, "sessionClosed" if remember else reason)
                del self._conns[member.conn]
                member.conn = None
            for exchange in list(member.exchanges.values()):
                self._end_exchange(exchange)
            del self._members[member.id]
            del self._secrets[member.secret]
            member.resume_deadline = None
        del self._sessions[session.id]
        if remember and self._config.closed_session_memory > 0:
            self._closed[session.id] = None
            while len(self._closed) > self._config.closed_session_memory:
                self._closed.popitem(last=False)

    # --- simulation (docs/protocol.md section 9) ----------------------------------------------

    def _simulate(
        self, out: _Out, member: _Member, request: SimulateScenarioRequest, now: float
    ) -> Model | None:
        params = request.params
        assert member.conn is not None
        if params.scenario == "internalError":
            raise SimulatedFailure("simulateScenario internalError")
        if params.scenario == "connectionDrop":
            out.effects.append(Abort(member.conn))
            self._detach(out, member, now)
            return None
        assert params.code is not None  # _check_scenario
        if params.count:
            out.effects.append(Burst(member.conn, member.id, params.code, params.count))
        return EmptyResult()

    # --- helpers -------------------------------------------------------------------

    def _session_error(
        self,
        out: _Out,
        members: _Member | list[_Member],
        denial: Denial,
        *,
        participant_id: str | None = None,
        exchange_id: str | None = None,
        **extra: Any,
    ) -> None:
        """A ``sessionError`` notification for a refusal that answers no request."""
        error = RoomError(denial, participant_id=participant_id, exchange_id=exchange_id, **extra)
        out.notify(
            members if isinstance(members, list) else [members],
            SessionErrorNotification(
                params=SessionErrorParams(
                    seq=0, code=error.code, message=error.message, data=error.data()
                )
            ),
        )

    def _schedule(self, deadline: float, kind: str, key: str) -> None:
        heapq.heappush(self._deadlines, (deadline, next(self._tiebreak), kind, key))

    def _live(self, entry: tuple[float, int, str, str]) -> bool:
        deadline, _, kind, key = entry
        if kind == "resume":
            member = self._members.get(key)
            return member is not None and member.conn is None and member.resume_deadline == deadline
        exchange = self._exchanges.get(key)
        return exchange is not None and exchange.deadline == deadline

    @staticmethod
    def _new_id(prefix: str, taken: dict[str, Any], nbytes: int = 6) -> str:
        while True:
            candidate = f"{prefix}_{secrets.token_hex(nbytes)}"
            if candidate not in taken:
                return candidate
