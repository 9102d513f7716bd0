"""The rooms' state and effects: sessions, members, exchanges, and what the transport must do.

Plain data (no sockets, no clock): ``Send``/``Close``/``Abort``/``Burst``
effects, the SDP exchange transition table, and ``Out``, which numbers each
notification per recipient and keeps it in the recipient's replay buffer.
"""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from roomsignal.protocol import (
    IceCandidateNotification,
    Notification,
    Participant,
    Streams,
    SyncState,
)
from roomsignal.server._denials import (
    Denial,
)
from roomsignal.server._frames import stamp, template
from roomsignal.tokens import Grants

__all__ = [
    "CLOSE_NORMAL",
    "CLOSE_REPLACED",
    "EMPTY_ANSWER",
    "EXCHANGE_DENIALS",
    "EXCHANGE_TRANSITIONS",
    "IN_PROGRESS",
    "PARTICIPANT_TYPES",
    "STREAMING_TYPES",
    "Abort",
    "Burst",
    "Close",
    "Effect",
    "Exchange",
    "ExchangeEvent",
    "ExchangeState",
    "MediaFailure",
    "MediaOp",
    "Member",
    "Out",
    "ReplayBuffer",
    "Send",
    "Session",
    "Ticket",
    "Upstream",
    "UpstreamState",
    "others",
]

PARTICIPANT_TYPES = frozenset({"full", "viewer", "screen"})
STREAMING_TYPES = frozenset({"full", "screen"})
CLOSE_NORMAL = 1000
CLOSE_REPLACED = 4001
_TOMBSTONES = 64  # ended exchanges remembered per participant, to answer late requests
# A kept answer that is ``{"jsonrpc":"2.0","id":ID,"result":{}}`` (most requests'):
# kept as this shared empty string and rebuilt when needed, not a frame per request.
EMPTY_ANSWER = ""
_EMPTY_ANSWER_SIZE = 40  # what such a frame costs, about, for the byte bound


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


@dataclass(frozen=True, slots=True)
class Ticket:
    """A request whose answer waits for the media node (PROTOCOL.md section 10)."""

    participant_id: str
    request_id: int | str
    method: str


@dataclass(frozen=True, slots=True)
class MediaOp:
    """Ask the media node for ``kind`` on exchange ``key``; it answers with ``Rooms.media_done``.

    Kinds: ``publish`` (the upstream's ``sdp`` offer; answers an SDP answer),
    ``subscribe`` (a subscription fed by upstream ``feed``; answers an SDP
    offer), ``start`` (the subscriber's ``sdp`` answer), ``trickle`` (one
    candidate; ``""`` ends them) and ``hangup`` (end the exchange's media; no
    answer). Ops on one key are carried out in order.
    """

    kind: str
    key: str
    room: str
    feed: str | None = None
    sdp: str | None = None
    candidate: str | None = None
    sdp_mid: str | None = None
    sdp_m_line_index: int | None = None
    ticket: Ticket | None = None


@dataclass(frozen=True, slots=True)
class MediaFailure:
    """Why a media node request failed: the refusal to answer with, and its ``data`` extras."""

    denial: Denial
    message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


Effect = Send | Close | Abort | Burst | MediaOp


# --- exchanges as a transition table ----------------------------------------------


class ExchangeState(enum.Enum):
    """Where an SDP exchange stands."""

    AWAITING_OFFER = "awaiting-offer"
    AWAITING_ANSWER = "awaiting-answer"
    ESTABLISHED = "established"
    TIMED_OUT = "timed-out"
    ENDED = "ended"


class ExchangeEvent(enum.Enum):
    OFFER = "offer"
    ANSWER = "answer"
    TIMEOUT = "timeout"


_S = ExchangeState
EXCHANGE_TRANSITIONS: dict[tuple[ExchangeState, ExchangeEvent], ExchangeState] = {
    (_S.AWAITING_OFFER, ExchangeEvent.OFFER): _S.AWAITING_ANSWER,
    (_S.AWAITING_ANSWER, ExchangeEvent.OFFER): _S.AWAITING_ANSWER,  # a new offer replaces the old
    (_S.ESTABLISHED, ExchangeEvent.OFFER): _S.AWAITING_ANSWER,  # renegotiation
    (_S.AWAITING_ANSWER, ExchangeEvent.ANSWER): _S.ESTABLISHED,
    (_S.AWAITING_OFFER, ExchangeEvent.TIMEOUT): _S.TIMED_OUT,
    (_S.AWAITING_ANSWER, ExchangeEvent.TIMEOUT): _S.TIMED_OUT,
}
EXCHANGE_DENIALS: dict[ExchangeEvent, Denial] = {ExchangeEvent.ANSWER: Denial.NO_OFFER}
IN_PROGRESS = frozenset({_S.AWAITING_OFFER, _S.AWAITING_ANSWER})


# --- the state ------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class Exchange:
    id: str
    publisher: Member
    subscriber: Member
    state: ExchangeState
    deadline: float | None
    # Candidates held until the offer is relayed, by sender id; None once relayed.
    held: dict[str, list[IceCandidateNotification]] | None = field(default_factory=dict)
    held_bytes: int = 0  # of the candidate strings in ``held``, both directions
    # Through a media node: the upstream feeding this subscription (section 10).
    upstream: Upstream | None = None
    # Through a media node: it said the subscription's media flows (``webrtcup``).
    up: bool = False

    def other(self, member: Member) -> Member:
        return self.subscriber if member is self.publisher else self.publisher


class UpstreamState(enum.Enum):
    """Where a publisher's upstream to the media node stands."""

    AWAITING_OFFER = "awaiting-offer"  # publish answered; the publisher owes its offer
    NEGOTIATING = "negotiating"  # the offer is with the media node
    CONNECTING = "connecting"  # answered; waiting for the media node to say it is up
    UP = "up"  # media flows: subscriptions are served


@dataclass(eq=False, slots=True)
class Upstream:
    """A publisher's one upload to the media node, and the subscriptions it feeds."""

    id: str
    member: Member
    streams: Streams
    state: UpstreamState
    deadline: float | None
    subscriptions: dict[str, Exchange] = field(default_factory=dict)
    # Candidates the publisher sent before its offer, sent on after it.
    held: list[MediaOp] = field(default_factory=list)


def _size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def _answer_size(request_id: int | str, frame: str) -> int:
    """What a kept answer costs for the byte bound: its frame (with the id in it)."""
    if frame:
        return _size(frame)
    return _EMPTY_ANSWER_SIZE + (_size(request_id) if type(request_id) is str else 0)


_STAMP = 9  # what ``stamp`` adds to a template besides the digits: ,"seq": and }}


class ReplayBuffer:
    """A participant's sent notifications, newest last, bounded in count and in bytes.

    Seqs are consecutive, so an entry is just the notification's template
    (``_frames.template``), shared by every recipient of a broadcast: the
    frame is rebuilt with ``stamp`` on a resume. ``nbytes`` counts the
    frames' full UTF-8 size. The oldest are dropped first when either bound
    is passed; a resume that needs a dropped frame is a replay gap.
    """

    __slots__ = ("bases", "last", "max_bytes", "max_count", "nbytes")

    def __init__(self, max_count: int, max_bytes: int) -> None:
        self.bases: deque[str] = deque()
        self.last = 0  # the seq of the newest entry
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self.bases)

    def append(self, base: str, seq: int, size: int) -> None:
        """Keep frame ``seq`` (``size`` bytes, ``seq`` = the previous + 1), within the bounds."""
        self.bases.append(base)
        self.last = seq
        self.nbytes += size
        if self.nbytes > self.max_bytes or len(self.bases) > self.max_count:
            self.trim()

    def trim(self) -> None:
        """Drop the oldest frames until both bounds hold."""
        bases = self.bases
        while bases and (len(bases) > self.max_count or self.nbytes > self.max_bytes):
            seq = self.last - len(bases) + 1
            self.nbytes -= _size(bases.popleft()) + _STAMP + len(str(seq))

    def tail(self, count: int) -> list[str]:
        """The newest ``count`` frames, oldest first (``count`` <= ``len(self)``)."""
        bases = self.bases
        first = self.last - len(bases) + 1
        return [stamp(bases[i], first + i) for i in range(len(bases) - count, len(bases))]


@dataclass(eq=False, slots=True)
class Member:
    id: str
    name: str
    type: str
    roles: tuple[str, ...]
    grants: Grants
    metadata: dict[str, Any]
    secret: str
    session: Session
    replay: ReplayBuffer
    metadata_bytes: int = 0
    conn: int | None = None
    streams: Streams | None = None
    stream_id: str | None = None
    seq: int = 0
    resume_deadline: float | None = None
    exchanges: dict[str, Exchange] = field(default_factory=dict)
    upstream: Upstream | None = None  # through a media node (section 10)
    ended: OrderedDict[str, tuple[Denial, str]] = field(default_factory=OrderedDict)
    # The Participant model, built once and again only when streams change
    # (``set_streams``): a join lists every member without rebuilding them.
    cached: Participant | None = None
    # Responses given to this seat's last requests, by request id, oldest first
    # (docs/protocol.md section 8, "Requests across a drop"); made at the first.
    answered: dict[int | str, str] | None = None
    answered_bytes: int = 0
    # Ids of this seat's requests whose answer waits on the media node (a
    # ``Ticket``): one sent again meanwhile is answered once, when it is ready.
    waiting: set[int | str] | None = None

    def ticket(self, request_id: int | str, method: str) -> Ticket:
        """A ``Ticket`` for a request answered later; its id counts as in flight."""
        if self.waiting is None:
            self.waiting = set()
        self.waiting.add(request_id)
        return Ticket(self.id, request_id, method)

    def wire(self) -> Participant:
        if self.cached is not None:
            return self.cached
        self.cached = Participant(
            participant_id=self.id,
            name=self.name,
            participant_type=self.type,
            roles=list(self.roles),
            streams=self.streams,
            metadata=self.metadata,
        )
        return self.cached

    def set_streams(self, streams: Streams | None) -> None:
        self.streams = streams
        self.cached = None

    def remember(self, request_id: int | str, frame: str, max_count: int, max_bytes: int) -> None:
        """Keep the response ``frame`` to ``request_id``, within the bounds (oldest go first).

        A re-sent request with that id is then answered with it again, not
        handled twice. Bounded like the replay: at most ``max_count``
        responses and ``max_bytes`` of them (a frame alone over that is not
        kept). ``EMPTY_ANSWER`` stands for a ``{}`` result.
        """
        answered = self.answered
        if answered is None:
            answered = self.answered = {}
        old = answered.pop(request_id, None)
        if old is not None:
            self.answered_bytes -= _answer_size(request_id, old)
        answered[request_id] = frame
        total = self.answered_bytes + _answer_size(request_id, frame)
        while answered and (total > max_bytes or len(answered) > max_count):
            oldest = next(iter(answered))
            total -= _answer_size(oldest, answered.pop(oldest))
        self.answered_bytes = total

    def tombstone(self, exchange_id: str, denial: Denial, other_id: str) -> None:
        self.ended[exchange_id] = (denial, other_id)
        while len(self.ended) > _TOMBSTONES:
            self.ended.popitem(last=False)


@dataclass(eq=False, slots=True)
class Session:
    id: str
    max_streaming: int
    members: dict[str, Member] = field(default_factory=dict)
    names: dict[str, Member] = field(default_factory=dict)
    pairs: dict[tuple[str, str], Exchange] = field(default_factory=dict)
    streaming: int = 0
    metadata_bytes: int = 0
    sync_state: SyncState | None = None


class Out:
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

    def notify(self, members: Iterable[Member], notification: Notification) -> None:
        """Number, buffer and (to those connected) send one notification.

        The hot loop of every fan-out (a join notifies every member): the
        stamp is inlined, and a frame is built only for those connected (the
        replay buffer keeps the shared template).
        """
        base = template(notification)
        # Every frame of this notification is base + ASCII digits: its UTF-8
        # size is its length plus what base's non-ASCII characters add.
        size = _size(base) + _STAMP
        effects = self.effects
        for member in members:
            seq = member.seq + 1
            member.seq = seq
            replay = member.replay  # ReplayBuffer.append, inlined
            replay.bases.append(base)
            replay.last = seq
            replay.nbytes += size + len(str(seq))
            if replay.nbytes > replay.max_bytes or len(replay.bases) > replay.max_count:
                replay.trim()
            conn = member.conn
            if conn is not None:
                effects.append(Send(conn, f'{base},"seq":{seq}}}}}'))


def others(session: Session, member: Member) -> list[Member]:
    return [m for m in session.members.values() if m is not member]
