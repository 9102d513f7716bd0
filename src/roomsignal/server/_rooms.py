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

Where things live: ``_state`` (effects, members, sessions, exchanges, the
exchange transition table, ``Out``), ``_denials`` (the refusal table),
``_core`` (the indexes and shared helpers), ``_exchanges`` (subscribe, SDP,
ICE), ``_chat`` (chat, sync, state, closeSession); this module keeps join,
resume, leave, streams, deadlines and simulation.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable
from typing import Any

from roomsignal.catalog import ErrorCode, lookup
from roomsignal.protocol import (
    EmptyResult,
    JoinParams,
    JoinRequest,
    JoinResult,
    LeaveRequest,
    Model,
    ParticipantJoinedNotification,
    ParticipantJoinedParams,
    ParticipantLeftNotification,
    ParticipantLeftParams,
    PingRequest,
    PingResult,
    PublishRequest,
    PublishResult,
    Request,
    SessionErrorNotification,
    SessionErrorParams,
    SimulateScenarioRequest,
    StreamPublishedNotification,
    StreamPublishedParams,
    Streams,
    StreamUnpublishedNotification,
    StreamUnpublishedParams,
    SubscriptionEndedNotification,
    SubscriptionEndedParams,
    UnpublishRequest,
)
from roomsignal.server._chat import ChatRules
from roomsignal.server._config import ServerConfig
from roomsignal.server._denials import (
    Denial,
    RoomError,
    Rule,
    SimulatedFailure,
    check_scenario,
    error_data,
    internal_error_frame,
)
from roomsignal.server._frames import error_frame, response_frame, stamp, template
from roomsignal.server._limits import check_sizes, json_size, too_large
from roomsignal.server._logs import fields
from roomsignal.server._sfu import MediaRules
from roomsignal.server._state import (
    CLOSE_NORMAL,
    CLOSE_REPLACED,
    EMPTY_ANSWER,
    IN_PROGRESS,
    PARTICIPANT_TYPES,
    STREAMING_TYPES,
    Abort,
    Burst,
    Close,
    Effect,
    ExchangeState,
    Member,
    Out,
    ReplayBuffer,
    Send,
    Session,
    others,
)
from roomsignal.tokens import TokenClaims, TokenInvalid, verify

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
    "SimulatedFailure",
    "internal_error_frame",
]

logger = logging.getLogger("roomsignal.server")

_Handler = Callable[[Out, Member, Any, float], Model | None]
_READ_ONLY = frozenset({"ping", "getSessionState"})  # requests that change no session
# Members one ``expire`` call may notify (a departure notifies each member
# of its room), so that 2,000 seats of one room expiring together are ended
# over many loop iterations, not in one call of about 2 million notices.
EXPIRE_BUDGET = 4096
# Requests whose answers are not kept per seat: a join is never answered from them;
# the others change nothing, and a room's state can be large (2000 members).
_NOT_KEPT = _READ_ONLY | {"join"}


class Rooms(MediaRules, ChatRules):
    """Every session of one server; not thread-safe, not async, never blocks.

    ``handle`` answers one decoded request of one connection, ``disconnect``
    reports a connection lost without ``leave``, ``expire`` runs the deadlines
    that have passed, ``shutdown`` closes every session. Each returns the
    effects to carry out, in order; none raises for anything a client sends.
    Connections are the transport's integers; a connection that has not
    joined is unknown here.
    """

    def __init__(self, secret: str, config: ServerConfig | None = None) -> None:
        super().__init__(secret, config)
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
        self._init_media()
        if self._config.media_node:  # PROTOCOL.md section 10
            self._handlers.update(
                publish=self._sfu_publish,
                unpublish=self._sfu_unpublish,
                subscribe=self._sfu_subscribe,
                unsubscribe=self._sfu_unsubscribe,
                sdpOffer=self._sfu_sdp_offer,
                sdpAnswer=self._sfu_sdp_answer,
                iceCandidate=self._sfu_ice_candidate,
            )

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

    def replay_bytes(self) -> int:
        """Bytes held in every participant's replay buffer (for tests and health)."""
        return sum(m.replay.nbytes for m in self._members.values())

    def exchange_state(self, exchange_id: str) -> ExchangeState | None:
        """The state of an open exchange; None once it ended or timed out."""
        exchange = self._exchanges.get(exchange_id)
        return None if exchange is None else exchange.state

    def is_connected(self, participant_id: str) -> bool | None:
        """Whether a participant has a live connection; None if it is not in any session."""
        member = self._members.get(participant_id)
        return None if member is None else member.conn is not None

    def has_joined(self, conn: int) -> bool:
        """Whether connection ``conn`` holds a seat (it joined, and was not detached)."""
        return conn in self._conns

    def last_seq(self, participant_id: str) -> int | None:
        """The last seq assigned to a participant; None if it is not in any session."""
        member = self._members.get(participant_id)
        return None if member is None else member.seq

    # --- events --------------------------------------------------------------

    def handle(self, conn: int, request: Request, now: float) -> list[Effect]:
        """Answer one request of connection ``conn``; never raises (failures are 201)."""
        out = Out()
        method = request.method
        caller = self._conns.get(conn)  # a join marks its session once it knows it
        if caller is not None and method not in _READ_ONLY:
            self._changed(caller.session.id)
        # Requests across a drop (docs/protocol.md section 8): a seat's request
        # whose id was answered already gets that answer again, and is not
        # handled twice. A join is never looked up; a ping changes nothing.
        member = caller if method not in _NOT_KEPT else None
        if member is not None and member.answered is not None:
            again = member.answered.get(request.id)
            if again is not None:
                again = again or response_frame(request.id, EmptyResult())
                logger.info(
                    "participant %s sent %s %r again: answered as before",
                    member.id,
                    method,
                    request.id,
                    extra=fields(member.session.id, member.id),
                )
                return [Send(conn, again)]
        if member is not None and member.waiting is not None and request.id in member.waiting:
            logger.info(
                "participant %s sent %s %r again: its answer waits on the media node",
                member.id,
                method,
                request.id,
                extra=fields(member.session.id, member.id),
            )
            return []
        frame = None
        result: Model | None = None
        try:
            result = self._dispatch(out, conn, request, now)
        except RoomError as exc:
            caller = self._conns.get(conn)
            participant_id = exc.participant_id
            if participant_id is None and caller is not None and exc.code > 0:
                participant_id = caller.id
            data = error_data(exc.code, method, participant_id, exc.exchange_id, exc.extra)
            self.counts.error(exc.code, "answer")
            if logger.isEnabledFor(logging.INFO):  # a flood of bad requests builds no fields
                if caller is not None:
                    acting: str | None = caller.id
                    session_id: str | None = caller.session.id
                else:  # a join: the only participant it names is the seat it resumes
                    acting, session_id = exc.participant_id, exc.session_id
                logger.info(
                    "%s refused with %s: %s",
                    method,
                    exc.code,
                    exc.message,
                    extra=fields(session_id, acting, target=exc.participant_id, code=exc.code),
                )
            frame = error_frame(request.id, exc.code, exc.message, data)
        except Exception:
            logger.exception("internal error while handling %s", method)
            self.counts.error(ErrorCode.SESSION_GENERIC_ERROR_CODE, "answer")
            frame = internal_error_frame(request.id, method)
        else:
            if result is not None:
                frame = response_frame(request.id, result)
        if frame is not None:
            out.first(Send(conn, frame))
            if member is not None:
                self._keep(member, request.id, frame, result)
        return out.effects

    def disconnect(self, conn: int, now: float) -> list[Effect]:
        """Connection ``conn`` was lost without ``leave``: its seat waits ``resume_window``."""
        out = Out()
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

    def expire(self, now: float, budget: int = EXPIRE_BUDGET) -> list[Effect]:
        """Run the deadlines that have passed at ``now``, in bounded batches.

        Stops once its departures have notified about ``budget`` members (at
        least one deadline runs); what is left stays due, so ``next_deadline``
        is then in the past and the caller calls again after a yield.
        """
        out = Out()
        heap = self._deadlines
        while heap and heap[0][0] <= now and budget > 0:
            entry = heapq.heappop(heap)
            if not self._live(entry):
                continue
            _, _, kind, key = entry
            if kind == "resume":
                member = self._members[key]
                budget -= len(member.session.members)
                self._changed(member.session.id)
                logger.info(
                    "participant %s did not resume in time",
                    member.id,
                    extra=fields(member.session.id, member.id),
                )
                self._remove(out, member, "disconnected")
            elif kind == "upstream":
                upstream = self._upstreams[key]
                budget -= len(upstream.member.session.members)
                self._changed(upstream.member.session.id)
                self._upstream_time_out(out, upstream)
            else:
                exchange = self._exchanges[key]
                budget -= 2
                self._changed(exchange.publisher.session.id)
                if exchange.upstream is not None:
                    self._sfu_time_out(out, exchange)
                else:
                    self._time_out(out, exchange)
        return out.effects

    def shutdown(self) -> list[Effect]:
        """Close every session (203, then ``sessionClosed`` reason ``serverShutdown``)."""
        out = Out()
        for session in list(self._sessions.values()):
            self._changed(session.id)
            self._close_session(out, session, "serverShutdown", remember=False)
        return out.effects

    def forget(self, session_id: str) -> list[int]:
        """Drop a session with no word to anyone (another node homes it now).

        Nothing is numbered or sent: its members go on on the real home.
        Returns the connections its members held here, for the transport to drop.
        """
        session = self._sessions.pop(session_id, None)
        if session is None:
            return []
        conns = []
        for member in session.members.values():
            self.counts.left_seq += member.seq  # numbered here (a counter never goes down)
            if member.conn is not None:
                self._conns.pop(member.conn, None)
                conns.append(member.conn)
                member.conn = None
            self._members.pop(member.id, None)
            self._secrets.pop(member.secret, None)
            member.resume_deadline = None  # its deadline is dead in the heap
            for exchange in list(member.exchanges.values()):
                self._end_exchange(exchange)
        logger.info(
            "session %s forgotten: homed elsewhere now", session_id, extra=fields(session_id)
        )
        return conns

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
        self._changed(member.session.id)
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
        self.counts.error(code, "push", count)
        member.seq = seq + count
        extra = len(base.encode()) - len(base)  # non-ASCII in the template, if any
        replay = member.replay
        for s, frame in enumerate(frames, seq + 1):
            replay.append(base, s, len(frame) + extra)
        return member.conn, frames

    # --- dispatch ---------------------------------------------------------------

    def _dispatch(self, out: Out, conn: int, request: Request, now: float) -> Model | None:
        if isinstance(request, PingRequest):
            return PingResult(server_time=now)
        if isinstance(request, SimulateScenarioRequest):
            if not self._config.allow_simulation:
                raise RoomError(Denial.SIMULATION_OFF)
            check_scenario(request)  # a params check: before 102, as section 2 orders
        check_sizes(request, self._config)  # -32602 too, so before 102
        if isinstance(request, JoinRequest):
            return self._join(out, conn, request.params, now)
        member = self._conns.get(conn)
        if member is None:
            raise RoomError(Denial.NOT_JOINED)
        return self._handlers[request.method](out, member, request, now)

    # --- join, resume, leave -------------------------------------------------------

    def _join(self, out: Out, conn: int, params: JoinParams, now: float) -> JoinResult:
        if conn in self._conns:
            raise RoomError(Denial.ALREADY_JOINED)
        try:
            claims = verify(params.token, self._secret, now=now)
        except TokenInvalid as exc:
            expired = exc.code == ErrorCode.TOKEN_EXPIRED
            denial = Denial.TOKEN_EXPIRED if expired else Denial.TOKEN_INVALID
            raise RoomError(denial, message=str(exc)) from None
        self._changed(claims.sid)
        try:
            return self._admit(out, conn, claims, params)
        except RoomError as exc:
            exc.session_id = claims.sid
            raise

    def _admit(self, out: Out, conn: int, claims: TokenClaims, params: JoinParams) -> JoinResult:
        if params.participant_type not in PARTICIPANT_TYPES:
            raise RoomError(Denial.BAD_PARTICIPANT_TYPE)
        if not params.name.strip():
            raise RoomError(Denial.EMPTY_NAME)
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
            cap = self._config.max_participants
            if cap and len(session.members) >= cap:
                raise RoomError(Denial.SESSION_FULL_OF_MEMBERS, sessionId=claims.sid)
        metadata_bytes = json_size(params.metadata)
        budget = self._config.max_session_metadata_bytes
        held = session.metadata_bytes if session is not None else 0
        if held + metadata_bytes > budget:
            raise too_large(
                "metadata",
                budget,
                "max_session_metadata_bytes",
                ", counting the metadata of every member of the session",
            )
        if params.participant_type in STREAMING_TYPES and streaming >= limit:
            raise RoomError(Denial.SESSION_FULL, sessionId=claims.sid)
        if session is None:
            session = Session(id=claims.sid, max_streaming=limit)
            self._sessions[session.id] = session
            logger.info("session %s created", session.id, extra=fields(session.id))
        member = Member(
            id=self._new_id("p", self._members),
            name=params.name,
            type=params.participant_type,
            roles=claims.roles,
            grants=claims.grants,
            metadata=dict(params.metadata or {}),
            secret=self._new_id("s", self._secrets, nbytes=24),
            session=session,
            replay=ReplayBuffer(self._config.replay_buffer, self._config.replay_buffer_bytes),
            metadata_bytes=metadata_bytes,
            conn=conn,
        )
        # Every member so far (a view, not a copy: nothing more grows with N).
        out.notify(
            session.members.values(),
            ParticipantJoinedNotification(
                params=ParticipantJoinedParams(seq=0, participant=member.wire())
            ),
        )
        session.members[member.id] = member
        session.names[member.name] = member
        if member.type in STREAMING_TYPES:
            session.streaming += 1
        session.metadata_bytes += metadata_bytes
        self._members[member.id] = member
        self._secrets[member.secret] = member
        self._conns[conn] = member
        self.counts.bump(self.counts.joins, member.type)
        logger.info(
            "participant %s (%r, %s) joined session %s",
            member.id,
            member.name,
            member.type,
            session.id,
            extra=fields(session.id, member.id),
        )
        return self._join_result(member, resumed=False)

    def _join_result(self, member: Member, *, resumed: bool) -> JoinResult:
        session = member.session
        return JoinResult(
            session_id=session.id,
            participant_id=member.id,
            participant_secret=member.secret,
            participant_type=member.type,
            roles=list(member.roles),
            participants=[m.wire() for m in session.members.values() if m is not member],
            sync_state=session.sync_state,
            seq=member.seq,
            resumed=resumed,
            media="sfu" if self._config.media_node else "p2p",
            resume_window=self._config.resume_window,
        )

    def _replay_gap(self, out: Out, member: Member, why: str | None = None) -> RoomError:
        """Give up ``member``'s seat (no exact resume is possible); the error to raise.

        ``why`` replaces the rule's message (a takeover's home that holds less).
        """
        old_conn = member.conn
        self._remove(out, member, "disconnected")
        if old_conn is not None:
            out.close(old_conn, CLOSE_REPLACED, "replaced")
        error = RoomError(
            Denial.REPLAY_GAP, message=why, participant_id=member.id, reason="replayGap"
        )
        counts = self.counts
        counts.replay_gaps += 1
        counts.bump(counts.state_resets, "replayGap")
        logger.info(
            "participant %s cannot resume: %s",
            member.id,
            error.message,
            extra=fields(member.session.id, member.id),
        )
        return error

    def _resume(self, out: Out, conn: int, claims: TokenClaims, params: JoinParams) -> JoinResult:
        member = self._secrets.get(params.old_participant_secret or "")
        if member is None or member.session.id != claims.sid:
            self.counts.bump(self.counts.state_resets, "unknownSecret")
            raise RoomError(Denial.UNKNOWN_SECRET)
        last_seq = min(max(params.last_seq or 0, 0), member.seq)
        missing = member.seq - last_seq
        if missing > len(member.replay):
            raise self._replay_gap(out, member)
        if member.conn is not None:
            del self._conns[member.conn]
            out.close(member.conn, CLOSE_REPLACED, "replaced")
            logger.info(
                "participant %s taken over by a new connection",
                member.id,
                extra=fields(member.session.id, member.id),
            )
        member.conn = conn
        member.resume_deadline = None
        self._conns[conn] = member
        if missing:
            for frame in member.replay.tail(missing):
                out.send(conn, frame)
        self.counts.resumes += 1
        logger.info(
            "participant %s resumed, replaying %d",
            member.id,
            missing,
            extra=fields(member.session.id, member.id),
        )
        return self._join_result(member, resumed=True)

    def _leave(self, out: Out, member: Member, request: LeaveRequest, now: float) -> Model:
        conn = member.conn
        self._remove(out, member, "left")
        if conn is not None:
            out.close(conn, CLOSE_NORMAL, "left")
        return EmptyResult()

    def _detach(self, out: Out, member: Member, now: float) -> None:
        if member.conn is not None:
            self._conns.pop(member.conn, None)
            member.conn = None
        if self._config.resume_window <= 0:
            self._remove(out, member, "disconnected")
            return
        member.resume_deadline = now + self._config.resume_window
        self._schedule(member.resume_deadline, "resume", member.id)
        logger.info(
            "participant %s disconnected; its seat waits",
            member.id,
            extra=fields(member.session.id, member.id),
        )

    def _remove(self, out: Out, member: Member, reason: str) -> None:
        """End a seat: others get ``participantLeft``, its exchanges end."""
        session = member.session
        if member.conn is not None:
            self._conns.pop(member.conn, None)
            member.conn = None
        del session.members[member.id]
        del session.names[member.name]
        if member.type in STREAMING_TYPES:
            session.streaming -= 1
        session.metadata_bytes -= member.metadata_bytes
        del self._members[member.id]
        del self._secrets[member.secret]
        member.resume_deadline = None
        counts = self.counts
        counts.left_seq += member.seq
        counts.bump(counts.leaves, reason)
        out.notify(
            session.members.values(),
            ParticipantLeftNotification(
                params=ParticipantLeftParams(seq=0, participant_id=member.id, reason=reason)
            ),
        )
        self._sfu_remove(out, member)
        for exchange in list(member.exchanges.values()):
            other = exchange.other(member)
            in_progress = exchange.state in IN_PROGRESS
            self._end_exchange(exchange)
            other.tombstone(exchange.id, Denial.PEER_LEFT, member.id)
            if in_progress:
                self._session_error(
                    out, other, Denial.PEER_LEFT, participant_id=member.id, exchange_id=exchange.id
                )
        logger.info(
            "participant %s left session %s (%s)",
            member.id,
            session.id,
            reason,
            extra=fields(session.id, member.id),
        )
        if not session.members:
            del self._sessions[session.id]
            logger.info("session %s removed: no members left", session.id, extra=fields(session.id))

    # --- streams ------------------------------------------------------------------

    def _publish(self, out: Out, member: Member, request: PublishRequest, now: float) -> Model:
        audio, video = request.params.audio, request.params.video
        self._check_publish(member, audio, video)
        member.set_streams(Streams(audio=audio, video=video))
        if member.stream_id is None:
            member.stream_id = self._new_id("st", {})
        out.notify(
            others(member.session, member),
            StreamPublishedNotification(
                params=StreamPublishedParams(
                    seq=0, participant_id=member.id, audio=audio, video=video
                )
            ),
        )
        return PublishResult(stream_id=member.stream_id)

    def _unpublish(self, out: Out, member: Member, request: UnpublishRequest, now: float) -> Model:
        if member.streams is None:
            raise RoomError(Denial.NOT_PUBLISHING)
        member.set_streams(None)
        member.stream_id = None
        out.notify(
            others(member.session, member),
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

    # --- simulation (docs/protocol.md section 9) ----------------------------------------------

    def _simulate(
        self, out: Out, member: Member, request: SimulateScenarioRequest, now: float
    ) -> Model | None:
        params = request.params
        assert member.conn is not None
        if params.scenario == "internalError":
            raise SimulatedFailure("simulateScenario internalError")
        if params.scenario == "connectionDrop":
            # Its answer is the drop; one sent again after the resume is answered {}
            # (handled once: it must not drop the new connection too).
            self._keep(member, request.id, EMPTY_ANSWER)
            out.effects.append(Abort(member.conn))
            self._detach(out, member, now)
            return None
        assert params.code is not None  # check_scenario
        if params.count:
            out.effects.append(Burst(member.conn, member.id, params.code, params.count))
        return EmptyResult()
