"""Chat, sync, session state and closing a session.

A mixin of ``Rooms`` (see ``_core``). Pure: no sockets, the clock is passed in.
"""

from __future__ import annotations

import logging

from roomsignal.protocol import (
    CloseSessionRequest,
    EmptyResult,
    GetSessionStateRequest,
    MessageReceivedNotification,
    MessageReceivedParams,
    Model,
    SendMessageRequest,
    SendSyncDataRequest,
    SessionClosedNotification,
    SessionClosedParams,
    SyncDataNotification,
    SyncDataParams,
    SyncState,
)
from roomsignal.server._core import RoomsCore
from roomsignal.server._denials import (
    Denial,
    RoomError,
)
from roomsignal.server._logs import fields
from roomsignal.server._state import (
    CLOSE_NORMAL,
    Member,
    Out,
    Session,
    others,
)

__all__ = ["ChatRules"]

logger = logging.getLogger("roomsignal.server")


class ChatRules(RoomsCore):
    """The handlers of ``sendMessage``, ``sendSyncData``, ``getSessionState``, ``closeSession``."""

    def _send_message(
        self, out: Out, member: Member, request: SendMessageRequest, now: float
    ) -> Model:
        params = request.params
        session = member.session
        if params.to is None:
            recipients = others(session, member)
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
        self, out: Out, member: Member, request: SendSyncDataRequest, now: float
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
            others(member.session, member),
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
        self, out: Out, member: Member, request: GetSessionStateRequest, now: float
    ) -> Model:
        state = self.session_state(member.session.id)
        assert state is not None
        return state

    def _close_session_request(
        self, out: Out, member: Member, request: CloseSessionRequest, now: float
    ) -> Model:
        if "moderator" not in member.roles:
            raise RoomError(Denial.NOT_MODERATOR)
        reason = request.params.reason or "closedByModerator"
        logger.info(
            "session %s closed by %s",
            member.session.id,
            member.id,
            extra=fields(member.session.id, member.id),
        )
        self._close_session(out, member.session, reason, remember=True)
        return EmptyResult()

    def _close_session(self, out: Out, session: Session, reason: str, *, remember: bool) -> None:
        members = list(session.members.values())
        self._session_error(out, members, Denial.SESSION_CLOSED, sessionId=session.id)
        out.notify(
            members,
            SessionClosedNotification(
                params=SessionClosedParams(seq=0, session_id=session.id, reason=reason)
            ),
        )
        counts = self.counts
        for member in members:
            counts.left_seq += member.seq  # (``roomsignal_notifications`` never goes down)
            counts.bump(counts.leaves, "sessionClosed")
            if member.conn is not None:
                out.close(member.conn, CLOSE_NORMAL, "sessionClosed" if remember else reason)
                del self._conns[member.conn]
                member.conn = None
            self._end_media(out, member)
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
