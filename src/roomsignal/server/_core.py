"""What every part of the rooms shares: the indexes and the helpers they all use.

``RoomsCore`` holds the sessions, members, secrets, connections, exchanges
and the deadline heap; the mixins in ``_exchanges`` and ``_chat`` and the
``Rooms`` class itself add the request handlers on top. Pure: no sockets,
the clock is passed in.
"""

from __future__ import annotations

import heapq
import itertools
import secrets
from collections import OrderedDict
from typing import Any

from roomsignal.protocol import (
    EmptyResult,
    Model,
    SessionErrorNotification,
    SessionErrorParams,
    SessionStateResult,
)
from roomsignal.server._config import ServerConfig
from roomsignal.server._denials import (
    Denial,
    RoomError,
)
from roomsignal.server._metrics import Counts
from roomsignal.server._state import (
    EMPTY_ANSWER,
    Exchange,
    ExchangeState,
    Member,
    Out,
    Session,
    Upstream,
)

__all__ = ["RoomsCore"]

_S = ExchangeState


class RoomsCore:
    """The state of every session of one server, and the helpers shared by the handlers."""

    def __init__(self, secret: str, config: ServerConfig | None = None) -> None:
        self._secret = secret
        self._config = config if config is not None else ServerConfig()
        self._sessions: dict[str, Session] = {}
        self._closed: OrderedDict[str, None] = OrderedDict()
        self._members: dict[str, Member] = {}
        self._secrets: dict[str, Member] = {}
        self._conns: dict[int, Member] = {}
        self._exchanges: dict[str, Exchange] = {}
        self._deadlines: list[tuple[float, int, str, str]] = []
        self._tiebreak = itertools.count()
        self._upstreams: dict[str, Upstream] = {}  # through a media node (``_sfu``)
        # Plain-int counters read by /metrics (_metrics.py); the server shares its own.
        self.counts = Counts()

    @property
    def config(self) -> ServerConfig:
        """The limits these rooms enforce."""
        return self._config

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

    @staticmethod
    def _find(session: Session, participant_id: str) -> Member:
        """The member ``participant_id`` of ``session`` (a waiting seat counts)."""
        member = session.members.get(participant_id)
        if member is None:
            raise RoomError(Denial.UNKNOWN_PARTICIPANT, participant_id=participant_id)
        return member

    def _end_media(self, out: Out, member: Member) -> None:
        """End, quietly, what ``member`` has through a media node (its session is closing)."""

    @staticmethod
    def _check_publish(member: Member, audio: bool, video: bool) -> None:
        """Refuse a ``publish`` this member may not make."""
        if member.type == "viewer":
            raise RoomError(Denial.VIEWER_PUBLISH)
        if not (audio or video):
            raise RoomError(Denial.PUBLISH_NOTHING)
        if video and not member.grants.video:
            raise RoomError(Denial.NO_VIDEO_GRANT)
        if audio and not member.grants.audio:
            raise RoomError(Denial.NO_AUDIO_GRANT)

    def _keep(
        self, member: Member, request_id: int | str, frame: str, result: Model | None = None
    ) -> None:
        """Keep ``frame``, ``member``'s answer to ``request_id``, for a re-sent request.

        A ``{}`` ``result`` is kept as ``EMPTY_ANSWER`` (PROTOCOL.md section 8).
        """
        kept = EMPTY_ANSWER if type(result) is EmptyResult else frame
        config = self._config
        member.remember(request_id, kept, config.replay_buffer, config.replay_buffer_bytes)

    def _target(self, member: Member, target_id: str, *, live: bool = True) -> Member:
        """The member ``target_id`` of ``member``'s session, never ``member`` itself.

        ``live``: it must have a connection too (peer to peer, the publisher
        makes the offer). Through a media node it need not: a seat inside its
        resume window keeps its upstream, and the media node makes the offers.
        """
        target = self._find(member.session, target_id)
        if target is member or (live and target.conn is None):
            raise RoomError(Denial.TARGET_UNAVAILABLE, participant_id=target_id)
        return target

    def _end_exchange(self, exchange: Exchange, state: ExchangeState = _S.ENDED) -> None:
        exchange.state = state
        exchange.deadline = None
        self._exchanges.pop(exchange.id, None)
        exchange.publisher.exchanges.pop(exchange.id, None)
        exchange.subscriber.exchanges.pop(exchange.id, None)
        session = exchange.publisher.session
        key = (exchange.publisher.id, exchange.subscriber.id)
        if session.pairs.get(key) is exchange:
            del session.pairs[key]

    def _session_error(
        self,
        out: Out,
        members: Member | list[Member],
        denial: Denial,
        *,
        participant_id: str | None = None,
        exchange_id: str | None = None,
        **extra: Any,
    ) -> None:
        """A ``sessionError`` notification for a refusal that answers no request."""
        error = RoomError(denial, participant_id=participant_id, exchange_id=exchange_id, **extra)
        members = members if isinstance(members, list) else [members]
        self.counts.error(error.code, "push", len(members))
        out.notify(
            members,
            SessionErrorNotification(
                params=SessionErrorParams(
                    seq=0, code=error.code, message=error.message, data=error.data()
                )
            ),
        )

    def _changed(self, session_id: str) -> None:
        """Hook: a session's seats, ``seq``s, streams or sync state may have changed.

        Called before the effects of the change are carried out; nothing
        here. The cluster's ``JournaledRooms`` overrides it to journal the session.
        """

    def _schedule(self, deadline: float, kind: str, key: str) -> None:
        heapq.heappush(self._deadlines, (deadline, next(self._tiebreak), kind, key))

    def _live(self, entry: tuple[float, int, str, str]) -> bool:
        deadline, _, kind, key = entry
        if kind == "resume":
            member = self._members.get(key)
            return member is not None and member.conn is None and member.resume_deadline == deadline
        if kind == "upstream":
            upstream = self._upstreams.get(key)
            return upstream is not None and upstream.deadline == deadline
        exchange = self._exchanges.get(key)
        return exchange is not None and exchange.deadline == deadline

    @staticmethod
    def _new_id(prefix: str, taken: dict[str, Any], nbytes: int = 6) -> str:
        while True:
            candidate = f"{prefix}_{secrets.token_hex(nbytes)}"
            if candidate not in taken:
                return candidate
