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
    "Member",
    "Out",
    "ReplayBuffer",
    "Send",
    "Session",
    "others",
]

PARTICIPANT_TYPES = frozenset({"full", "viewer", "screen"})
STREAMING_TYPES = frozenset({"full", "screen"})
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

    def other(self, member: Member) -> Member:
        return self.subscriber if member is self.publisher else self.publisher


class ReplayBuffer:
    """A participant's sent notifications, newest last, bounded in count and in bytes.

    The oldest frames are dropped first when either bound is passed; a
    resume that needs a dropped frame is a replay gap.
    """

    __slots__ = ("frames", "max_bytes", "max_count", "nbytes")

    def __init__(self, max_count: int, max_bytes: int) -> None:
        self.frames: deque[str] = deque()
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self.frames)

    def append(self, frame: str) -> None:
        """Keep ``frame``, dropping the oldest ones past a bound."""
        frames = self.frames
        frames.append(frame)
        self.nbytes += len(frame) if frame.isascii() else len(frame.encode())
        while frames and (len(frames) > self.max_count or self.nbytes > self.max_bytes):
            old = frames.popleft()
            self.nbytes -= len(old) if old.isascii() else len(old.encode())

    def extend(self, frames: Iterable[str]) -> None:
        for frame in frames:
            self.append(frame)

    def tail(self, count: int) -> list[str]:
        """The newest ``count`` frames, oldest first (``count`` <= ``len(self)``)."""
        frames = self.frames
        return [frames[i] for i in range(len(frames) - count, len(frames))]


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
    ended: OrderedDict[str, tuple[Denial, str]] = field(default_factory=OrderedDict)
    # The Participant model, built once and again only when streams change
    # (``set_streams``): a join lists every member without rebuilding them.
    cached: Participant | None = None

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
        """Number, buffer and (to those connected) send one notification."""
        base = template(notification)
        for member in members:
            member.seq += 1
            frame = stamp(base, member.seq)
            member.replay.append(frame)
            if member.conn is not None:
                self.effects.append(Send(member.conn, frame))


def others(session: Session, member: Member) -> list[Member]:
    return [m for m in session.members.values() if m is not member]
